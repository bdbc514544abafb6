"""Which school an object belongs to: every school it names must be known and the agent's;
a learner binds an object to its schools; an unknown learner to the agent's only school."""

from __future__ import annotations

import pytest

from hub.core.config import Agent, HubConfig, School
from hub.core.envelope import Action
from hub.core.errors import Category, SifError
from hub.core.schools import Named, SchoolIndex, choose_school

HILLTOP, DOVEDALE, MATLOCK = "8302001", "8304012", "8302105"
HILLTOP_REF = "5A0E1B7C2D3F4E5A6B7C8D9E0F1A2B3C"
UNKNOWN_REF = "00000000000000000000000000000001"
TWO = Agent(id="a", secret_hash="x", schools=[HILLTOP, DOVEDALE])
ONE = Agent(id="b", secret_hash="x", schools=[MATLOCK])
INDEX = SchoolIndex.of(
    HubConfig(
        zones=["z"],
        schools=[
            School(laestab=HILLTOP, name="H", school_info_refid=HILLTOP_REF),
            School(laestab=DOVEDALE, name="D"),
            School(laestab=MATLOCK, name="M"),
        ],
    )
)


def _code(exc: pytest.ExceptionInfo[SifError]) -> tuple[int, int]:
    return int(exc.value.category), exc.value.code


def test_named_resolves_refids_and_dfe_numbers_and_counts_the_unknown() -> None:
    named = INDEX.named([HILLTOP_REF, UNKNOWN_REF], [DOVEDALE, "8309999", HILLTOP])
    assert named == Named(known=(HILLTOP, DOVEDALE), unknown=2)


@pytest.mark.parametrize(
    ("action", "code"),
    [(Action.ADD, 10), (Action.CHANGE, 11), (Action.DELETE, 12), (None, 6)],
)
def test_an_unknown_school_is_refused_on_every_path(action: Action | None, code: int) -> None:
    # Hilltop's own agent, Hilltop's own learner: still refused, never routed as Hilltop.
    named = INDEX.named([UNKNOWN_REF], [])
    with pytest.raises(SifError) as info:
        choose_school(ONE, named, frozenset({MATLOCK}), action)
    assert _code(info) == (int(Category.ACCESS), code)


def test_every_named_school_must_be_the_agents() -> None:
    with pytest.raises(SifError) as info:
        choose_school(TWO, Named(known=(HILLTOP, MATLOCK)), frozenset(), Action.ADD)
    assert _code(info) == (int(Category.ACCESS), 10)
    routing = choose_school(TWO, Named(known=(DOVEDALE, HILLTOP)), frozenset(), Action.ADD)
    assert (routing.school, routing.schools) == (DOVEDALE, (DOVEDALE, HILLTOP))


def test_a_learner_binds_an_object_that_names_no_school() -> None:
    routing = choose_school(TWO, Named(), frozenset({DOVEDALE, MATLOCK}), Action.CHANGE)
    assert routing.school == DOVEDALE
    with pytest.raises(SifError) as info:
        choose_school(ONE, Named(), frozenset({HILLTOP}), Action.CHANGE)
    assert _code(info) == (int(Category.ACCESS), 11)


def test_an_unknown_learner_goes_to_the_agents_only_school() -> None:
    assert choose_school(ONE, Named(), frozenset(), Action.CHANGE).school == MATLOCK
    with pytest.raises(SifError) as info:
        choose_school(TWO, Named(), frozenset(), Action.ADD)
    assert _code(info) == (int(Category.ACCESS), 1)
