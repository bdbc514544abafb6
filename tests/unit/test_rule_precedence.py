"""What a rule can and cannot bring back: stripping special category data (without Art 9)
and never-send paths is the filter's last word, an exclude always beats an item filter,
and the child an item filter tests is delivered only when the include list names it."""

from __future__ import annotations

from typing import Any

import pytest
from lxml import etree
from pydantic import ValidationError

from hub.core.agreements.compile import compile_version
from hub.core.agreements.model import Agreement
from hub.core.envelope import SIF_UK_NS
from hub.sif.filter import apply_filter, released_paths

NS = f' xmlns="{SIF_UK_NS}"'
LEARNER = f"""<LearnerPersonal{NS} RefId="53E6F4C0109FDE4DC7E11DB9C0100163">
<UPN>H330950043367</UPN>
<PersonalInformation><Name Type="C"><FamilyName>Smith</FamilyName><GivenName>Ann</GivenName></Name>
<Demographics>
<EthnicityList><Ethnicity><Code>WBRI</Code></Ethnicity></EthnicityList>
<Religion><AffiliationCode>CHR</AffiliationCode></Religion>
<Traveller><Code>TRV</Code></Traveller>
<LanguageList>
<Language><Code>ENG</Code><Fluent>Y</Fluent></Language>
<Language><Code>POL</Code><Fluent>N</Fluent></Language>
</LanguageList>
</Demographics></PersonalInformation></LearnerPersonal>"""
DEMOGRAPHICS = "PersonalInformation/Demographics"
LANGUAGE = f"{DEMOGRAPHICS}/LanguageList/Language"


def _agreement(rule: dict[str, Any], article9: str | None = None) -> dict[str, Any]:
    basis: dict[str, str] = {"article6": "e"}
    if article9:
        basis["article9"] = article9
    return {"id": "A", "recipients": ["cme"], "lawful_basis": basis, "rules": [rule]}


def _released(rule: dict[str, Any]) -> list[str]:
    spec = Agreement.model_validate(_agreement({"object": "LearnerPersonal", **rule}))
    flt = compile_version(spec).rules["LearnerPersonal"].filter
    return released_paths(apply_filter(etree.fromstring(LEARNER), flt))


SPECIAL_RULES = [
    {"keep_items": [{"path": DEMOGRAPHICS, "child": "Religion", "values": ["CHR"]}]},
    {
        "keep_items": [
            {"path": f"{DEMOGRAPHICS}/EthnicityList/Ethnicity", "child": "Code", "values": ["WBRI"]}
        ]
    },
    {"keep_items": [{"path": f"{DEMOGRAPHICS}/Traveller", "child": "Code", "values": ["TRV"]}]},
    {
        "include": ["UPN"],
        "keep_items": [{"path": DEMOGRAPHICS, "child": "Traveller", "values": ["x"]}],
    },
    {"where": [{"path": f"{DEMOGRAPHICS}/Religion/AffiliationCode", "values": ["CHR"]}]},
]


@pytest.mark.parametrize("rule", SPECIAL_RULES)
def test_a_rule_naming_special_category_data_without_art9_is_refused(rule: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="special category data"):
        Agreement.model_validate(_agreement({"object": "LearnerPersonal", **rule}))
    Agreement.model_validate(_agreement({"object": "LearnerPersonal", **rule}, article9="g"))


def test_an_empty_filter_value_is_refused() -> None:
    rule = {
        "object": "LearnerPersonal",
        "keep_items": [{"path": LANGUAGE, "child": "Code", "values": [""]}],
    }
    with pytest.raises(ValidationError, match="at least 1 character"):
        Agreement.model_validate(_agreement(rule))


@pytest.mark.parametrize("rule", SPECIAL_RULES)
def test_even_a_rule_that_bypassed_validation_never_brings_special_data_back(
    rule: dict[str, Any],
) -> None:
    spec = Agreement.model_construct(
        **{
            **dict(Agreement.model_validate(_agreement({"object": "LearnerPersonal"}))),
            "rules": [
                Agreement.model_validate(
                    _agreement({"object": "LearnerPersonal", **rule}, article9="g")
                ).rules[0]
            ],
        }
    )
    flt = compile_version(spec).rules["LearnerPersonal"].filter
    paths = released_paths(apply_filter(etree.fromstring(LEARNER), flt))
    assert not [p for p in paths if any(s in p for s in ("Ethnicity", "Religion", "Traveller"))]


def test_an_exclude_beats_an_item_filter_on_the_same_child() -> None:
    paths = _released(
        {
            "exclude": [f"{LANGUAGE}/Code"],
            "keep_items": [{"path": LANGUAGE, "child": "Code", "values": ["ENG", "POL"]}],
        }
    )
    assert f"{LANGUAGE}/Fluent" in paths
    assert f"{LANGUAGE}/Code" not in paths


def test_the_tested_child_is_not_delivered_unless_included() -> None:
    rule = {
        "include": [f"{LANGUAGE}/Fluent"],
        "keep_items": [{"path": LANGUAGE, "child": "Code", "values": ["ENG", "POL"]}],
    }
    spec = Agreement.model_validate(_agreement({"object": "LearnerPersonal", **rule}))
    flt = compile_version(spec).rules["LearnerPersonal"].filter
    copy = apply_filter(etree.fromstring(LEARNER), flt)
    assert released_paths(copy) == [f"{LANGUAGE}/Fluent"]
    assert len(copy.findall(f".//{{{SIF_UK_NS}}}Language")) == 2  # both items, neither's code
    assert b"ENG" not in etree.tostring(copy) and b"POL" not in etree.tostring(copy)


def test_the_tested_child_is_delivered_when_included() -> None:
    paths = _released(
        {
            "include": [LANGUAGE],
            "keep_items": [{"path": LANGUAGE, "child": "Code", "values": ["ENG"]}],
        }
    )
    assert f"{LANGUAGE}/Code" in paths
