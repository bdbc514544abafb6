from pathlib import Path

import pytest

from hub.configfile import check_config, load_config

REPO = Path(__file__).resolve().parents[2]


def test_example_configuration_is_valid() -> None:
    assert check_config(REPO / "deploy/examples/county.yaml") == []


def test_webhook_example_is_valid_and_pushes_hr_payroll() -> None:
    example = REPO / "deploy/examples/warwickshire-hr-webhook.yaml"
    assert check_config(example) == []
    [(subscriber, target)] = load_config(example).webhook_subscribers()
    assert subscriber.id == "hr-payroll" and target.url.startswith("https://")


def test_a_plain_http_webhook_is_reported_with_its_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "zones: [z]\nsubscribers:\n  - id: hr\n    name: HR\n"
        "    delivery: {type: webhook, url: 'http://payroll.example/sif'}\n"
    )
    [problem] = check_config(bad)
    assert problem.startswith(f"{bad}:5: subscribers[0].delivery.webhook.url")
    assert "https" in problem


def test_errors_name_field_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "zones: [z]\n"
        "subscribers:\n  - id: cme\n    name: CME\n"
        "agreements:\n  - id: A\n    recipients: [cme]\n    rules:\n"
        "      - object: Nonsense\n"
    )
    problems = check_config(bad)
    assert len(problems) == 1
    assert problems[0].startswith(f"{bad}:9: agreements[0].rules[0]")
    assert "unknown object 'Nonsense'" in problems[0]


def test_dangling_references_are_reported(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "zones: [z]\nagreements:\n  - id: A\n    recipients: [ghost]\n"
        "    rules:\n      - object: LearnerPersonal\n"
    )
    assert any("unknown recipient 'ghost'" in p for p in check_config(bad))


def test_identity_can_never_be_routed(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "zones: [z]\nsubscribers:\n  - id: s\n    name: S\nagreements:\n  - id: A\n"
        "    recipients: [s]\n    rules:\n      - object: Identity\n"
    )
    assert any("never routed" in p for p in check_config(bad))


def test_check_config_names_agreement_paths_the_schema_lacks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from hub.cli import main

    text = (REPO / "deploy/examples/county.yaml").read_text()
    bad = tmp_path / "county.yaml"
    bad.write_text(
        text.replace("PersonalInformation/Name/GivenName", "PersonalInformation/Name/NickName")
    )
    assert main(["check-config", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "DSA-VS-2026" in err and "'PersonalInformation/Name/NickName' does not exist" in err
    assert main(["check-config", str(REPO / "deploy/examples/county.yaml")]) == 0
