"""File exports in isolation: CSV cells come only from the released copy (a property, over
random objects and random agreement cuts), formula injection is escaped, files and
manifests are written atomically and never replaced, and the file delivery's config."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree
from pydantic import ValidationError

from adapters.file_export import (
    CsvFiles,
    cells,
    csv_bytes,
    escape,
    manifest_name,
    write_atomic,
)
from hub.cli import main
from hub.configfile import load_config
from hub.core.config import FileDelivery, HubConfig
from hub.core.envelope import HUB_VERSION, SIF_UK_NS
from hub.pipeline.export import column_problems
from hub.sif.build import event_copy
from hub.sif.schemas import load_schemas

# A LearnerPersonal-like object: every path a column may name, with where it sits.
PATHS = (
    "LocalId",
    "UPN",
    "PersonalInformation/Name/FamilyName",
    "PersonalInformation/Name/GivenName",
    "PersonalInformation/Demographics/BirthDate",
    "PersonalInformation/Demographics/Gender",
    "CurrentSchoolEnrolment/NCYearGroup",
)
ATTRIBUTES = ("@RefId", "CurrentSchoolEnrolment/@LearnerSchoolEnrolmentRefId")
COLUMNS = {f"col{i}": p for i, p in enumerate(PATHS + ATTRIBUTES)}
# Text an element can hold (XML 1.0 characters, no control characters), as the copy keeps it.
VALUE = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff"),
    max_size=20,
).map(str.strip)


def copy_of(values: dict[str, str]) -> bytes:
    """A released copy holding exactly `values` ({path: text}), as dispatch builds it."""
    root = etree.Element(f"{{{SIF_UK_NS}}}LearnerPersonal")
    for path, value in values.items():
        *steps, last = path.split("/")
        node = root
        for step in steps:
            found = node.find(f"{{{SIF_UK_NS}}}{step}")
            node = found if found is not None else etree.SubElement(node, f"{{{SIF_UK_NS}}}{step}")
        if last.startswith("@"):
            node.set(last[1:], value)
        else:
            etree.SubElement(node, f"{{{SIF_UK_NS}}}{last}").text = value
    return event_copy(HUB_VERSION, "agent", "C1", "LearnerPersonal", "Add", root)


@settings(max_examples=200, deadline=None)
@given(
    full=st.fixed_dictionaries({p: VALUE for p in PATHS + ATTRIBUTES}),
    released=st.sets(st.sampled_from(PATHS + ATTRIBUTES)),
)
def test_every_cell_comes_from_the_copy_and_a_filtered_path_is_empty(
    full: dict[str, str], released: set[str]
) -> None:
    """The school's full record is known here, the copy holds only what the agreement
    released: a column whose path was cut is empty, never filled from anywhere else."""
    body = copy_of({p: v for p, v in full.items() if p in released})
    got = cells(body, COLUMNS)
    assert got == {c: (full[p] if p in released else "") for c, p in COLUMNS.items()}


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(
        st.lists(VALUE | st.sampled_from(["=1+2", "+SUM(A1)", "-3", "@x"]), min_size=3, max_size=3),
        max_size=10,
    )
)
def test_the_csv_reads_back_as_the_cells_and_never_starts_a_formula(
    rows: list[list[str]],
) -> None:
    data = csv_bytes(["a", "b", "c"], rows)
    read = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    assert read[0] == ["a", "b", "c"]
    assert read[1:] == [[escape(v) for v in row] for row in rows]
    for row in read[1:]:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ('=HYPERLINK("http://evil","x")', '\'=HYPERLINK("http://evil","x")'),
        ("+44 1629 000000", "'+44 1629 000000"),
        ("-1", "'-1"),
        ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
        ("\tcmd", "'\tcmd"),
        ("O'Neil", "O'Neil"),
        ("Smith, Jo", "Smith, Jo"),
        ("", ""),
    ],
)
def test_formula_injection_is_escaped(value: str, written: str) -> None:
    assert escape(value) == written


def test_a_header_cell_is_escaped_too() -> None:
    assert csv_bytes(["=x"], []) == b"'=x\r\n"


def test_a_body_without_an_object_gives_no_cells() -> None:
    assert cells(b"not xml", COLUMNS) is None
    assert cells(b"<SIF_Message/>", COLUMNS) is None


def test_files_and_manifests_are_written_whole_and_never_replaced(tmp_path: Path) -> None:
    files = CsvFiles()
    directory = tmp_path / "out"
    manifest = {"rows": 1, "counts": {"LearnerPersonal": 1}}
    written = files.write(str(directory), "f.csv", ["UPN"], [["A123"]], manifest)
    data = (directory / "f.csv").read_bytes()
    described = json.loads((directory / manifest_name("f.csv")).read_text())
    assert data == b"UPN\r\nA123\r\n"
    assert written.sha256 == hashlib.sha256(data).hexdigest() == described["sha256"]
    assert described["file"] == "f.csv" and described["counts"] == {"LearnerPersonal": 1}
    assert written.manifest_name == "f.csv.manifest.json"
    with pytest.raises(FileExistsError):
        files.write(str(directory), "f.csv", ["UPN"], [["B456"]], manifest)
    assert (directory / "f.csv").read_bytes() == data
    assert sorted(p.name for p in directory.iterdir()) == ["f.csv", "f.csv.manifest.json"]
    files.remove(str(directory), ["f.csv", "f.csv.manifest.json", "absent.csv"])
    assert list(directory.iterdir()) == []


def test_an_atomic_write_leaves_no_temporary_file(tmp_path: Path) -> None:
    write_atomic(tmp_path, "x.csv", b"1")
    with pytest.raises(FileExistsError):
        write_atomic(tmp_path, "x.csv", b"2")
    assert [p.name for p in tmp_path.iterdir()] == ["x.csv"]


def _delivery(**extra: object) -> FileDelivery:
    raw = {
        "type": "file",
        "directory": "/srv/exports",
        "export": {"LearnerPersonal": {"UPN": "UPN"}},
    }
    return FileDelivery.model_validate({**raw, **extra})


def test_a_file_delivery_is_checked() -> None:
    assert _delivery().quiet_seconds == 5.0
    assert _delivery(filename="b2b-{created:%Y%m%d}.csv").filename == "b2b-{created:%Y%m%d}.csv"
    for bad in (
        {"directory": "relative/dir"},
        {"filename": "../x-{seq}.csv"},
        {"filename": "{subscriber}-{upn}.csv"},
        {"filename": "same-name.csv"},
        {"filename": "x-{seq}.txt"},
        {"export": {}},
        {"export": {"LearnerPersonal": {"UPN": "UPN/../x"}}},
        {"quiet_seconds": 0},
    ):
        with pytest.raises(ValidationError):
            _delivery(**bad)


def test_a_file_subscriber_must_export_every_object_its_agreements_release() -> None:
    raw = {
        "zones": ["z"],
        "subscribers": [
            {
                "id": "capita",
                "name": "Capita ONE",
                "delivery": {
                    "type": "file",
                    "directory": "/srv/exports",
                    "export": {"LearnerPersonal": {"UPN": "UPN"}},
                },
            }
        ],
        "agreements": [
            {
                "id": "DSA",
                "recipients": ["capita"],
                "rules": [{"object": "LearnerPersonal"}, {"object": "LearnerAttendance"}],
            }
        ],
    }
    with pytest.raises(ValidationError, match="exports no columns for LearnerAttendance"):
        HubConfig.model_validate(raw)
    raw["agreements"][0]["rules"] = [{"object": "LearnerPersonal"}]  # type: ignore[index]
    assert HubConfig.model_validate(raw).file_subscribers()[0][0].id == "capita"


EXAMPLES = ("derbyshire-attendance-export", "somerset-capita-one", "kent-synergy")


@pytest.mark.parametrize("name", EXAMPLES)
def test_the_export_examples_check_against_the_schemas(name: str) -> None:
    path = Path(__file__).resolve().parents[2] / f"deploy/examples/{name}.yaml"
    assert main(["check-config", str(path)]) == 0
    assert load_config(path).file_subscribers()


def test_a_column_the_schemas_do_not_know_is_a_problem() -> None:
    paths_of = load_schemas().element_paths
    target = _delivery(
        export={
            "LearnerPersonal": {"A": "UPN", "B": "PersonalInformation/Name/MiddleName"},
            "LearnerAttendance": {"C": "@LearnerPersonalRefId", "D": "Nope/@X"},
            "NoSuchObject": {"E": "X"},
        }
    )
    assert column_problems("capita", target, paths_of) == [
        "subscriber capita: column 'B': LearnerPersonal has no PersonalInformation/Name/MiddleName",
        "subscriber capita: column 'D': LearnerAttendance has no Nope",
        "subscriber capita: export names unknown object NoSuchObject",
    ]
