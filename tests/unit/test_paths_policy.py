from hub.core.config import HubConfig
from hub.core.envelope import Action
from hub.core.paths import PathFilter, Verdict, parse_path
from hub.core.policy import Item, compile_policy, decide
from hub.core.retry import compute_backoff


def test_include_keeps_subtree_and_descends_into_ancestors() -> None:
    flt = PathFilter.of(["PersonalInformation/Name", "UPN"])
    assert flt.verdict(parse_path("PersonalInformation")) is Verdict.DESCEND
    assert flt.verdict(parse_path("PersonalInformation/Name")) is Verdict.KEEP
    assert flt.verdict(parse_path("PersonalInformation/Name/FamilyName")) is Verdict.KEEP
    assert flt.verdict(parse_path("PersonalInformation/Demographics")) is Verdict.DROP
    assert flt.verdict(parse_path("UPN")) is Verdict.KEEP
    assert flt.verdict(parse_path("InCare")) is Verdict.DROP


def test_exclude_wins_over_include_and_marks_ancestors_for_descent() -> None:
    flt = PathFilter.of(None, ["PersonalInformation/Demographics/EthnicityList"])
    assert flt.verdict(parse_path("PersonalInformation")) is Verdict.DESCEND
    assert flt.verdict(parse_path("PersonalInformation/Name")) is Verdict.KEEP
    assert (
        flt.verdict(parse_path("PersonalInformation/Demographics/EthnicityList/Ethnicity"))
        is Verdict.DROP
    )


def _config(**agreement: object) -> HubConfig:
    return HubConfig.model_validate(
        {
            "zones": ["z"],
            "subscribers": [{"id": "cme", "name": "CME"}, {"id": "vs", "name": "VS"}],
            "agreements": [agreement] if agreement else [],
        }
    )


def test_no_agreement_means_no_copy() -> None:
    policy = compile_policy(_config())
    assert decide(Item("LearnerPersonal", Action.ADD, "8302001"), policy) == []


def test_copy_only_for_granted_object_and_action() -> None:
    policy = compile_policy(
        _config(
            id="A",
            recipients=["cme"],
            rules=[{"object": "LearnerPersonal", "actions": ["Add"], "include": ["UPN"]}],
        )
    )
    copies = decide(Item("LearnerPersonal", Action.ADD, "8302001"), policy)
    assert [(c.subscriber, c.agreement_id) for c in copies] == [("cme", "A")]
    assert copies[0].filter.verdict(("UPN",)) is Verdict.KEEP
    assert decide(Item("LearnerPersonal", Action.DELETE, "8302001"), policy) == []
    assert decide(Item("LearnerAttendance", Action.ADD, "8302001"), policy) == []


def test_backoff_grows_then_caps() -> None:
    waits = [compute_backoff(n) for n in range(12)]
    assert waits == sorted(waits)
    assert waits[0] == 0.5 and waits[-1] == 60.0
