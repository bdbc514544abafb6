"""The CSV mapping (adapters/csv_upload.py) and its row checks: rows become objects the
hub's XSDs accept, bad values are reported by line and column, never by value."""

from __future__ import annotations

import io
from datetime import date
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from stdnum.gb import upn as upn_check

from adapters.csv_upload import (
    CsvFileError,
    MappedRow,
    MappingError,
    RowMapper,
    learner_refid,
    load_mapping,
    read_rows,
)
from hub.sif.schemas import load_schemas

MAPPING = load_mapping()
SCHOOLS = {"8302001": "5A0E1B7C2D3F4E5A6B7C8D9E0F1A2B3C", "8309999": None}
UPN = upn_check.calc_check_digit("830200124001") + "830200124001"


def rows(kind: str, text: str) -> list[MappedRow]:
    return list(read_rows(io.StringIO(text), RowMapper(MAPPING, kind, SCHOOLS)))


def one(kind: str, header: str, line: str) -> MappedRow:
    [row] = rows(kind, f"{header}\n{line}\n")
    return row


ATTENDANCE = "UPN,DfE No,Date,Session,Mark"
EXCLUSIONS = "UPN,DfE No,Type,Reason,Start Date,Number of Sessions"
PUPILS = "UPN,DfE No,Surname,Forename,Gender,DOB,NC Year,In Care"


@pytest.mark.parametrize(
    ("kind", "header", "line", "name"),
    [
        ("attendance", ATTENDANCE, f"{UPN},8302001,2026-09-08,AM,/", "LearnerAttendance"),
        ("exclusions", EXCLUSIONS, f"{UPN},830/2001,FIXD,DB,01/10/2026,4", "LearnerExclusion"),
        ("pupils", PUPILS, f"{UPN},8302001,Smith,Ann,F,2015-01-02,5,yes", "LearnerPersonal"),
    ],
)
def test_each_kind_becomes_the_sif_object_the_schemas_accept(
    kind: str, header: str, line: str, name: str
) -> None:
    row = one(kind, header, line)
    assert row.errors == () and row.element is not None
    assert row.element.tag.endswith("}" + name)
    load_schemas().validate_object(row.element)  # strict: an Add's full object
    assert (row.laestab, row.upn) == ("8302001", UPN)


def test_the_learner_is_the_same_in_every_kind_and_school_bound() -> None:
    mark = one("attendance", ATTENDANCE, f"{UPN},8302001,2026-09-08,AM,/")
    pupil = one("pupils", PUPILS, f"{UPN},8302001,Smith,Ann,F,2015-01-02,5,No")
    assert mark.element is not None and pupil.element is not None
    assert mark.element.get("LearnerPersonalRefId") == pupil.element.get("RefId")
    assert learner_refid("8302001", UPN) != learner_refid("8304012", UPN)


def test_a_mark_sent_again_is_the_same_object_and_each_session_its_own() -> None:
    got = rows(
        "attendance",
        f"{ATTENDANCE}\n{UPN},8302001,2026-09-08,AM,/\n"
        f"{UPN},8302001,08/09/2026,am,N\n{UPN},8302001,2026-09-08,PM,/\n",
    )
    refids = [r.element.get("RefId") for r in got if r.element is not None]
    assert refids[0] == refids[1] != refids[2]


def test_bad_values_are_reported_by_line_and_column_never_by_value() -> None:
    text = (
        f"{ATTENDANCE}\n{UPN},8302001,2026-09-08,AM,/\n"
        "Q830200124001,8302001,2026-13-45,EV,ZZ\n"
        f"{UPN},8304012,2026-09-08,AM,/\n"
        f"{UPN},8309999,2026-09-08,AM,/\n"
        f",8302001,2026-09-08,AM,/\n"
    )
    got = {r.line: r for r in rows("attendance", text)}
    assert got[2].errors == ()
    assert {(e.column, e.problem) for e in got[3].errors} == {
        ("UPN", "not a valid UPN (format or check letter)"),
        ("Date", "not a date (YYYY-MM-DD or DD/MM/YYYY)"),
        ("Session", "not a session (AM or PM)"),
        ("Mark", "not a code of the list attendance"),
    }
    assert [(e.column, e.problem) for e in got[4].errors] == [
        ("DfE No", "not a school this hub knows")
    ]
    assert [(e.column, e.problem) for e in got[5].errors] == [
        ("DfE No", "the hub has no SchoolInfo RefId for this school")
    ]
    assert [(e.column, e.problem) for e in got[6].errors] == [("UPN", "missing")]
    for row in got.values():
        assert (row.element is None) == bool(row.errors)
        for error in row.errors:
            assert "8304012" not in error.problem and "Q830" not in error.problem


def test_headers_match_ignoring_case_spaces_and_underscores_extra_columns_ignored() -> None:
    row = one(
        "attendance", "upn,DFE_NO, date ,SESSION,mark,Teacher", f"{UPN},8302001,2026-09-08,PM,L,x"
    )
    assert row.errors == () and row.element is not None


def test_a_missing_mandatory_column_refuses_the_file() -> None:
    with pytest.raises(CsvFileError) as refused:
        rows("attendance", f"UPN,DfE No,Date,Mark\n{UPN},8302001,2026-09-08,/\n")
    assert refused.value.type == "missing-columns" and "Session" in refused.value.detail


def test_an_empty_file_or_bad_quoting_refuses_the_file() -> None:
    with pytest.raises(CsvFileError) as empty:
        rows("attendance", "")
    assert empty.value.type == "empty"
    with pytest.raises(CsvFileError) as malformed:
        rows("attendance", f'{ATTENDANCE}\n{UPN},8302001,"2026-09-08,AM,/\n')
    assert malformed.value.type == "malformed"


def test_optional_columns_fill_defaults_and_are_left_out_when_empty() -> None:
    row = one("exclusions", EXCLUSIONS + ",End Date", f"{UPN},8302001,PERM,PP,2026-10-01,,")
    assert row.element is not None
    names = [child.tag.split("}")[1] for child in row.element]
    assert names == ["Category", "Reason", "StartDate", "StartSession"]  # StartSession: 1


def test_a_mapping_that_places_a_value_outside_its_order_is_refused(tmp_path: Path) -> None:
    text = (
        Path(MAPPING_FILE)
        .read_text()
        .replace(
            "order: [Category, Reason, StartDate, StartSession, EndDate, ActualSessions]",
            "order: [Category, Reason, StartDate, StartSession, EndDate]",
        )
    )
    bad = tmp_path / "mapping.yaml"
    bad.write_text(text)
    with pytest.raises(MappingError, match="ActualSessions"):
        load_mapping(bad)


MAPPING_FILE = Path(__file__).resolve().parents[2] / "deploy/examples/csv-mapping-v1.yaml"

# --- properties: the checks decide validity exactly as the standards say ---------------

upn_bodies = st.from_regex(r"[0-9]{11}[0-9A-Z]", fullmatch=True)


@given(body=upn_bodies, letter=st.sampled_from("ABCDEFGHJKLMNPQRTUVWXYZ"))
@settings(max_examples=300, deadline=None)
@example(body="830200124001", letter=UPN[0])
def test_a_upn_is_accepted_exactly_when_its_check_letter_and_format_are_valid(
    body: str, letter: str
) -> None:
    candidate = letter + body
    row = one("attendance", ATTENDANCE, f"{candidate},8302001,2026-09-08,AM,/")
    upn_errors = [e for e in row.errors if e.column == "UPN"]
    assert (not upn_errors) == upn_check.is_valid(candidate)
    assert all(candidate not in e.problem for e in row.errors)


@given(day=st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 12, 31)))
@settings(max_examples=200, deadline=None)
def test_both_date_forms_give_the_same_calendar_date(day: date) -> None:
    for written in (day.isoformat(), day.strftime("%d/%m/%Y")):
        row = one("attendance", ATTENDANCE, f"{UPN},8302001,{written},AM,/")
        assert row.element is not None
        assert row.element.findtext("{*}AttendanceDate") == day.isoformat()


@given(
    value=st.text(
        alphabet=st.characters(min_codepoint=33, max_codepoint=126, blacklist_characters='",'),
        min_size=4,
        max_size=12,
    )
)
@settings(max_examples=200, deadline=None)
def test_a_bad_value_in_any_column_is_never_echoed(value: str) -> None:
    # A value may happen to spell a word of the fixed texts ("Date" is a column name, and
    # in "not a date"): what must hold is that no text varies with the value.
    sentinel = "Zq~q~Zq"
    for position in range(5):
        fields = [UPN, "8302001", "2026-09-08", "AM", "/"]
        fields[position] = value
        row = one("attendance", ATTENDANCE, ",".join(fields))
        fields[position] = sentinel
        fixed = {
            (e.column, e.problem) for e in one("attendance", ATTENDANCE, ",".join(fields)).errors
        }
        for error in row.errors:
            assert sentinel not in error.problem
            echoed = value in error.problem or value in error.column
            assert not echoed or (error.column, error.problem) in fixed


@given(code=st.text(min_size=1, max_size=3).map(str.strip).filter(bool))
@settings(max_examples=200, deadline=None)
def test_a_mark_is_accepted_exactly_when_it_is_a_dfe_attendance_code(code: str) -> None:
    if "," in code or '"' in code or "\n" in code or "\r" in code:
        return
    row = one("attendance", ATTENDANCE, f"{UPN},8302001,2026-09-08,AM,{code}")
    assert (not row.errors) == (code.upper() in MAPPING.codes["attendance"])
