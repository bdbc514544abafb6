from hub.core.envelope import Action
from hub.core.paths import PathFilter, Verdict, parse_path
from hub.core.policy import Item, build_policy, decide
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


def test_no_agreement_means_no_copy() -> None:
    assert decide(Item("LearnerPersonal", Action.ADD, "8302001"), build_policy([])) == []


def test_backoff_grows_then_caps() -> None:
    waits = [compute_backoff(n) for n in range(12)]
    assert waits == sorted(waits)
    assert waits[0] == 0.5 and waits[-1] == 60.0


def test_backoff_jitter_stays_between_half_and_whole() -> None:
    whole = compute_backoff(4)
    assert compute_backoff(4, jitter=0.0) == whole / 2
    assert whole / 2 <= compute_backoff(4, jitter=0.999) < whole
    assert compute_backoff(20, jitter=0.5) == 60.0 * 0.75  # the cap, jittered
