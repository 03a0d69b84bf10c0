"""The plans import file (services/plan_file.py): its format, and every problem it reports.

Pure: no database, no Temporal. ``today`` is fixed, so the example files keep their meaning.
"""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from pathlib import Path

import pytest

from services.plan_file import (
    COLUMN_NAMES,
    COLUMNS,
    PERSONAL_COLUMNS,
    ImportReport,
    PlanRow,
    LastReviewStage,
    SettingType,
    validate_file,
)

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "docs" / "examples"
TODAY = date(2026, 11, 23)  # the day the example files describe

HEADER = ",".join(COLUMN_NAMES)

# A valid row, as a dict so each test changes only what it is about.
BASE = {
    "plan_reference": "EHC-000100",
    "council_person_id": "P0000100",
    "given_name": "Sam",
    "family_name": "Example",
    "date_of_birth": "2016-04-02",  # 10 on 31 August 2026: Year 6 in 2026/27
    "nc_year": "6",
    "setting_name": "Hillside Primary School",
    "setting_type": "primary",
    "plan_issued_on": "2021-06-30",
    "last_review_on": "2025-11-20",
    "last_review_stage": "",
    "amendments_sent_on": "",
    "next_meeting_on": "",
    "next_transfer": "primary->secondary 2027",
    "caseworker": "North team",
    "under_five_cycle_months": "",
}


def csv_text(*rows: dict, header: list[str] | None = None) -> str:
    out = io.StringIO()
    names = header or list(COLUMN_NAMES)
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(names)
    for r in rows:
        w.writerow([r.get(n, "") for n in names])
    return out.getvalue()


def row(**changes: str) -> dict:
    return {**BASE, **changes}


def check(*rows: dict, today: date = TODAY) -> ImportReport:
    return validate_file(csv_text(*rows), today=today)


def issues(found) -> list[tuple]:
    return [(i.line, i.column) for i in found]


def only_error(report: ImportReport):
    assert len(report.errors) == 1, [str(e) for e in report.errors]
    return report.errors[0]


# --- the example files ----------------------------------------------------------------------


def test_the_good_example_validates_with_no_errors_or_warnings():
    report = validate_file(EXAMPLES / "plans.csv", today=TODAY)
    assert report.errors == [] and report.warnings == [], [str(i) for i in
                                                            report.errors + report.warnings]
    assert report.ok and report.encoding == "utf-8"
    assert report.total == len(report.rows) == 13
    by_ref = {r.plan_reference: r for r in report.rows}
    assert len(by_ref) == 13
    assert [r.line for r in report.rows] == list(range(2, 15))

    nursery = by_ref["EHC-004127"]
    assert nursery.setting_type is SettingType.EARLY_YEARS and nursery.nc_year == "N2"
    assert nursery.under_five_cycle_months == 4
    assert nursery.next_transfer is not None and nursery.next_transfer.kind == "school"
    fixed = by_ref["EHC-003981"]  # a meeting already fixed; last_review_stage left empty
    assert fixed.next_meeting_on == date(2026, 11, 30)
    assert fixed.last_review_stage is LastReviewStage.COMPLETE
    year6 = by_ref["EHC-002866"]
    assert year6.given_name == "Zoë" and year6.nc_year == "6"  # "Year 6", UTF-8 kept
    assert str(year6.next_transfer) == "primary->secondary 2027"
    assert by_ref["EHC-001702"].next_transfer.kind == "post16"  # type: ignore[union-attr]
    assert by_ref["EHC-001455"].setting_type is SettingType.POST16
    new = by_ref["EHC-004390"]  # no review yet: the clock counts from the plan
    assert new.last_review_on is None and new.last_review_stage is None
    assert new.review_anchor == new.plan_issued_on == date(2026, 5, 14)
    overdue = by_ref["EHC-001938"]
    assert overdue.review_anchor == date(2025, 9, 15)  # its review was due 15 September 2026
    assert overdue.last_review_stage is LastReviewStage.COMPLETE
    assert by_ref["EHC-003317"].last_review_stage is LastReviewStage.AWAITING_DECISION
    amending = by_ref["EHC-001276"]
    assert amending.last_review_stage is LastReviewStage.AMENDING
    assert amending.amendments_sent_on == date(2026, 10, 15)
    assert by_ref["EHC-000812"].nc_year is None  # 22: no year group needed
    assert by_ref["EHC-003055"].setting_type is SettingType.OTHER


# (line, column, a fragment of the message): every error the example is meant to show.
EXPECTED_ERRORS = [
    (3, "date_of_birth", "is not a real date"),
    (4, "plan_reference", "is also on line 2"),
    (5, "plan_reference", "Use capital letters"),
    (6, "setting_type", "'Secondary school' is not a setting type"),
    (7, "last_review_on", "is before plan_issued_on (2020-06-30)"),
    (8, "date_of_birth", "month/day order"),
    (9, "given_name", "given_name is empty. It is required: give the child's given name."),
    (10, "plan_issued_on", "two-digit year"),
    (11, "amendments_sent_on", "last_review_stage is amending"),
    (12, "next_meeting_on", "is in the past"),
]
EXPECTED_WARNINGS = [
    (13, "nc_year", "more than a year away from the year group for the child's age (Year 7)"),
    (13, "council_person_id", "The same child (council_person_id) as on line 3"),
]


def test_the_error_example_gives_exactly_the_expected_errors():
    report = validate_file(EXAMPLES / "plans-with-errors.csv", today=TODAY)
    assert issues(report.errors) == [(ln, col) for ln, col, _ in EXPECTED_ERRORS]
    for error, (_, _, fragment) in zip(report.errors, EXPECTED_ERRORS):
        assert fragment in error.message, str(error)
        assert str(error).startswith(f"Line {error.line}, {error.column}: ")
    assert issues(report.warnings) == [(ln, col) for ln, col, _ in EXPECTED_WARNINGS]
    for warning, (_, _, fragment) in zip(report.warnings, EXPECTED_WARNINGS):
        assert fragment in warning.message, str(warning)
    assert report.total == 12 and not report.ok
    # Line 2 is valid but shares its reference with line 4: neither is imported.
    assert [r.line for r in report.rows] == [13]
    assert report.error_lines == list(range(3, 13))


def test_messages_never_quote_personal_data():
    report = validate_file(EXAMPLES / "plans-with-errors.csv", today=TODAY)
    personal = [e for e in report.errors if e.personal]
    assert {e.column for e in personal} == {"date_of_birth", "given_name"}
    assert personal[0].value == "31/02/2015"  # kept for the person fixing the file...
    for issue in report.errors + report.warnings:
        assert "31/02/2015" not in str(issue) and "04/23/2016" not in str(issue)
        assert "Marsh" not in issue.message and "P0030002" not in issue.message
    r = check(row(date_of_birth="2030-01-01"), row(plan_reference="EHC-000101",
                                                     given_name="Sam", family_name="X" * 101))
    assert all("2030" not in str(e) and "XXXX" not in str(e) for e in r.errors)
    plan = check(row()).rows[0]
    assert "Sam" not in repr(plan) and "Example" not in repr(plan) and "2016" not in repr(plan)
    assert PERSONAL_COLUMNS == {"council_person_id", "given_name", "family_name",
                                "date_of_birth"}


def test_a_reference_holding_the_childs_name_or_date_of_birth_is_refused():
    for ref in ("EHC-EXAMPLE-01", "SAM-4411", "EHC-20160402", "EHC-02042016", "R-020416"):
        error = only_error(check(row(plan_reference=ref)))
        assert (error.line, error.column) == (2, "plan_reference")
        assert "workflow ids" in error.message
    # Accents and case do not hide a name; a name of 4 letters or more inside a longer word
    # is refused too; the date of birth in any common order, with separators or without.
    for ref, given, family in (("EHC-EXAMPLES", "Sam", "Example"), ("ZOE-0001", "Zoë", "Kay"),
                               ("SMITHJ-0001", "Jo", "Smith"), ("EHC-2016-04-02", "Sam", "X"),
                               ("EHC-242016", "Sam", "X"), ("EHC-07700900123", "Sam", "X")):
        error = only_error(check(row(plan_reference=ref, given_name=given,
                                     family_name=family)))
        assert error.column == "plan_reference" and "workflow ids" in error.message, ref
    # A council's own plan numbers are fine, a 3-letter name inside a longer word too; a digit
    # run that reads as a date, but not the date of birth, is a warning (check it), not an error.
    for ref in ("EHC-000101", "P0019283", "EHC-SAMPLES", "NBC-2026-000123"):
        assert check(row(plan_reference=ref)).ok and not check(row(plan_reference=ref)).warnings
    dated = check(row(plan_reference="EHC-20160403"))
    assert dated.ok and [w.column for w in dated.warnings] == ["plan_reference"]
    assert "read as a date" in dated.warnings[0].message


# --- the header ---------------------------------------------------------------------------


def test_missing_columns_are_named_with_the_expected_list():
    names = [n for n in COLUMN_NAMES if n not in ("nc_year", "caseworker")]
    report = validate_file(csv_text(row(), header=names), today=TODAY)
    error = only_error(report)
    assert error.line == 1
    assert error.message.startswith("Missing columns: nc_year, caseworker.")
    assert "The columns are: " + ", ".join(COLUMN_NAMES) in error.message
    assert report.rows == [] and report.total == 0


def test_unknown_and_repeated_columns_are_named():
    names = [n if n != "last_review_on" else "last_reveiw_on" for n in COLUMN_NAMES]
    names.append("notes")
    names.append("caseworker")
    report = validate_file(csv_text(row(), header=names), today=TODAY)
    messages = [e.message for e in report.errors]
    assert issues(report.errors) == [(1, "caseworker"), (1, "last_reveiw_on"), (1, "notes"),
                                     (1, None)]
    assert "appears more than once" in messages[0]
    assert "Unknown column last_reveiw_on. Did you mean last_review_on?" in messages[1]
    assert "Unknown column notes. Remove it or rename it." in messages[2]
    assert messages[3].startswith("Missing column: last_review_on.")


def test_header_in_any_order_and_case_is_accepted():
    names = list(reversed(COLUMN_NAMES))
    text = csv_text(row(), header=names)
    first, rest = text.split("\r\n", 1)
    text = ",".join(" " + n.replace("_", " ").title() for n in first.split(",")) + "\r\n" + rest
    report = validate_file(text, today=TODAY)
    assert report.ok and len(report.rows) == 1 and report.rows[0].given_name == "Sam"


def test_files_that_are_not_comma_separated_text_say_how_to_save_them(tmp_path):
    semicolons = csv_text(row()).replace(",", ";")
    assert "separated by semicolons" in only_error(validate_file(semicolons, today=TODAY)).message
    xlsx = tmp_path / "plans.xlsx"
    xlsx.write_bytes(b"PK\x03\x04" + b"\0" * 100)
    error = only_error(validate_file(xlsx, today=TODAY))
    assert error.line is None and "Excel workbook" in error.message and "CSV UTF-8" in error.message
    utf16 = csv_text(row()).encode("utf-16")
    assert "UTF-16" in only_error(validate_file(utf16, today=TODAY)).message
    assert "empty" in only_error(validate_file(b"", today=TODAY)).message
    assert "empty" in only_error(validate_file("\r\n\r\n", today=TODAY)).message
    assert "no file" in only_error(validate_file(tmp_path / "nothing.csv", today=TODAY)).message


# --- encodings ------------------------------------------------------------------------------


def test_utf8_with_a_byte_order_mark():
    data = ("\ufeff" + csv_text(row(given_name="Siân", family_name="Ó Briain"))).encode()
    report = validate_file(data, today=TODAY)
    assert report.ok and report.encoding == "utf-8"
    assert report.rows[0].given_name == "Siân" and report.rows[0].family_name == "Ó Briain"
    # The BOM is not part of the first column's name, from bytes or from text.
    assert validate_file(data.decode("utf-8"), today=TODAY).ok


def test_windows_1252_from_excel_is_detected(tmp_path):
    text = csv_text(row(given_name="Zoë", setting_name="St Mary’s C of E – Primary"))
    path = tmp_path / "plans.csv"
    path.write_bytes(text.encode("cp1252"))
    with pytest.raises(UnicodeDecodeError):
        path.read_bytes().decode("utf-8")  # so the fallback is what is being tested
    report = validate_file(path, today=TODAY)
    assert report.ok and report.encoding == "cp1252"
    assert report.rows[0].given_name == "Zoë"
    assert report.rows[0].setting_name == "St Mary’s C of E – Primary"


def test_a_late_non_utf8_byte_still_reads_the_whole_file_as_cp1252():
    rows = [row(plan_reference=f"EHC-{i:06d}", given_name=f"Child{i}",
                council_person_id=f"P{i}") for i in range(3000)]
    rows[-1]["given_name"] = "Renée"
    report = validate_file(csv_text(*rows).encode("cp1252"), today=TODAY)
    assert report.ok and report.encoding == "cp1252" and len(report.rows) == 3000
    assert report.rows[-1].given_name == "Renée"


def test_bytes_in_neither_encoding_are_a_clear_error():
    data = csv_text(row()).encode() + b"EHC-000101,,Sam\x81,Example\r\n"
    error = only_error(validate_file(data, today=TODAY))
    assert error.line is None and "not UTF-8 or Windows-1252" in error.message


def test_a_file_that_is_partly_utf8_is_not_guessed():
    data = ("\ufeff" + csv_text(row(given_name="Zoë"))).encode() + "EHC-000101,Renée\r\n".encode(
        "cp1252")
    error = only_error(validate_file(data, today=TODAY))
    assert error.line is None and "starts as UTF-8" in error.message


def test_an_upload_is_read_from_where_it_stands_and_left_open():
    upload = io.BytesIO(b"ignored prefix|" + csv_text(row(given_name="Zoë")).encode("cp1252"))
    upload.seek(len(b"ignored prefix|"))
    report = validate_file(upload, today=TODAY)
    assert report.ok and report.rows[0].given_name == "Zoë" and not upload.closed


def test_path_as_text_and_as_path(tmp_path):
    path = tmp_path / "plans.csv"
    path.write_text(csv_text(row()), encoding="utf-8")
    assert validate_file(str(path), today=TODAY).rows == validate_file(path, today=TODAY).rows
    with pytest.raises(TypeError):
        validate_file(123, today=TODAY)  # type: ignore[arg-type]


# --- dates ----------------------------------------------------------------------------------


def test_dd_mm_yyyy_dates_as_excel_writes_them():
    iso = check(row()).rows[0]
    uk = check(row(date_of_birth="02/04/2016", plan_issued_on="30/06/2021",
                   last_review_on="20/11/2025")).rows[0]
    assert (uk.date_of_birth, uk.plan_issued_on, uk.last_review_on) == \
        (iso.date_of_birth, iso.plan_issued_on, iso.last_review_on) == \
        (date(2016, 4, 2), date(2021, 6, 30), date(2025, 11, 20))
    short = check(row(date_of_birth="2/4/2016", plan_issued_on="2021-6-30")).rows[0]
    assert (short.date_of_birth, short.plan_issued_on) == (date(2016, 4, 2), date(2021, 6, 30))
    midnight = check(row(plan_issued_on="30/06/2021 00:00", last_review_on="2025-11-20 00:00:00"))
    assert midnight.rows[0].plan_issued_on == date(2021, 6, 30)


@pytest.mark.parametrize("value, fragment", [
    ("2021-06-31", "is not a real date"),
    ("31/06/2021", "is not a real date"),
    ("06/30/2021", "month/day order"),
    ("30/06/21", "two-digit year"),
    ("30 June 2021", "is not a date"),
    ("2021.06.30", "is not a date"),
])
def test_dates_that_are_not_dates(value, fragment):
    error = only_error(check(row(plan_issued_on=value)))
    assert (error.line, error.column, error.value) == (2, "plan_issued_on", value)
    assert fragment in error.message and value in error.message


def test_future_dates_today_is_allowed():
    tomorrow = (TODAY + timedelta(days=1)).isoformat()
    assert check(row(plan_issued_on=TODAY.isoformat(), last_review_on="")).ok
    assert check(row(last_review_on=TODAY.isoformat())).ok
    for column in ("plan_issued_on", "last_review_on"):
        error = only_error(check(row(**{column: tomorrow})))
        assert error.column == column and "in the future" in error.message
    error = only_error(check(row(date_of_birth=tomorrow, nc_year="")))
    assert error.column == "date_of_birth" and "in the future" in error.message


def test_next_meeting_may_be_today_or_later_but_not_past():
    assert check(row(next_meeting_on=TODAY.isoformat())).ok
    assert check(row(next_meeting_on="2027-09-30")).ok
    error = only_error(check(row(next_meeting_on=(TODAY - timedelta(days=1)).isoformat())))
    assert error.column == "next_meeting_on" and "last_review_on" in error.message


def test_the_order_of_the_dates():
    error = only_error(check(row(plan_issued_on="2016-04-02", last_review_on="")))
    assert error.column == "plan_issued_on" and "not after the date of birth" in error.message
    assert check(row(last_review_on="2021-06-30")).ok  # a review on the day the plan was made
    error = only_error(check(row(last_review_on="2021-06-29")))
    assert error.column == "last_review_on" and "before plan_issued_on" in error.message
    # next_meeting_on must come after the last review (or the plan's issue, if none).
    error = only_error(check(row(plan_issued_on="2026-11-23", last_review_on="",
                                 next_meeting_on="2026-11-23")))
    assert error.column == "next_meeting_on" and "not after plan_issued_on" in error.message
    error = only_error(check(row(last_review_on="2026-11-23", next_meeting_on="2026-11-23")))
    assert error.column == "next_meeting_on" and "not after last_review_on" in error.message


def test_plans_began_on_1_september_2014():
    older = dict(date_of_birth="2009-12-08", nc_year="12", setting_type="post16",
                 last_review_on="", next_transfer="")
    assert check(row(plan_issued_on="2014-09-01", **older)).ok
    error = only_error(check(row(plan_issued_on="2014-08-31", **older)))
    assert error.column == "plan_issued_on" and "before EHC plans began" in error.message


def test_age_0_to_25_today():
    def on(born: date, nc: str = "") -> ImportReport:
        return check(row(date_of_birth=born.isoformat(), nc_year=nc,
                         plan_issued_on="2026-11-23", last_review_on="", next_transfer=""))

    assert on(date(2026, 11, 22)).ok  # born yesterday, plan made today (age 0)
    born_26_years_ago = date(2000, 11, 23)
    error = only_error(on(born_26_years_ago))
    assert error.column == "date_of_birth" and "26" in error.message
    assert "0 to 25" in error.message and error.value == "2000-11-23"
    day_before_26th = on(date(2000, 11, 24))  # still 25 today
    assert day_before_26th.ok and len(day_before_26th.rows) == 1
    assert [w.column for w in day_before_26th.warnings] == ["date_of_birth"]
    assert "CFA 2014 s.46" in day_before_26th.warnings[0].message
    twenty_fifth_birthday = on(date(2001, 11, 23))
    assert twenty_fifth_birthday.ok and "is 25" in twenty_fifth_birthday.warnings[0].message
    assert on(date(2001, 11, 24)).warnings == []  # 24 today


# --- the other cells ------------------------------------------------------------------------


@pytest.mark.parametrize("written, stored", [
    ("6", "6"), ("Y6", "6"), ("Year 6", "6"), ("year 6", "6"), ("Yr6", "6"), ("06", "6"),
    ("Y5", "5"), ("Year 7", "7"),
])
def test_nc_year_forms(written, stored):
    report = check(row(nc_year=written))
    assert report.ok and report.warnings == [] and report.rows[0].nc_year == stored


def test_nc_year_against_age():
    error = only_error(check(row(nc_year="Year 15")))
    assert error.column == "nc_year" and "is not a year group" in error.message
    for far in ("4", "8", "R"):
        report = check(row(nc_year=far))
        assert report.ok and [w.column for w in report.warnings] == ["nc_year"], far
        assert "(Year 6)" in report.warnings[0].message
    error = only_error(check(row(nc_year="")))
    assert error.column == "nc_year" and "required" in error.message
    young = dict(date_of_birth="2023-05-10", plan_issued_on="2025-10-15", last_review_on="",
                 next_transfer="", under_five_cycle_months="3")
    for ok in ("N2", "n2", "Nursery 2", "N1", "R", "EY"):
        assert check(row(nc_year=ok, **young)).warnings == [], ok
    assert check(row(nc_year="Reception", **young)).rows[0].nc_year == "R"
    assert [w.column for w in check(row(nc_year="EY")).warnings] == ["nc_year"]
    # 22 on 31 August: no year group is required, and Year 14 is as far as they go.
    adult = dict(date_of_birth="2004-04-11", setting_type="post16", next_transfer="")
    assert check(row(nc_year="", **adult)).ok
    assert check(row(nc_year="14", **adult)).warnings == []
    assert [w.column for w in check(row(nc_year="11", **adult)).warnings] == ["nc_year"]


def test_setting_types():
    """One vocabulary: the import's setting types are statutory.phase's, so every plan the
    import accepts is one the phase-transfer cohort understands (the import once had its own
    list, with 'other' that the cohort refused and without 'special_secondary')."""
    from statutory.phase import SettingType as InLaw

    assert SettingType is InLaw
    assert {s.value for s in SettingType} == {
        "early_years", "infant", "junior", "primary", "first", "middle", "secondary",
        "secondary_with_sixth_form", "all_through", "special", "special_secondary", "post16",
        "other"}
    assert check(row(setting_type="Special secondary")).rows[0].setting_type is \
        SettingType.SPECIAL_SECONDARY
    for written, stored in (("Secondary with sixth form", "secondary_with_sixth_form"),
                            ("Post-16", "post16"), ("ALL-THROUGH", "all_through")):
        assert check(row(setting_type=written)).rows[0].setting_type.value == stored
    error = only_error(check(row(setting_type="academy")))
    assert "is not a setting type" in error.message and "secondary_with_sixth_form" in error.message
    error = only_error(check(row(setting_type="")))
    assert error.column == "setting_type" and "required" in error.message


def test_required_cells():
    for column in ("plan_reference", "given_name", "family_name", "date_of_birth",
                   "setting_name", "setting_type", "plan_issued_on"):
        r = check(row(**{column: "  "}))
        assert column in [e.column for e in r.errors], column
        assert all("empty" in e.message for e in r.errors if e.column == column)
        assert r.rows == []
    required = {c.name for c in COLUMNS if c.required}
    assert required == {"plan_reference", "given_name", "family_name", "date_of_birth",
                        "nc_year", "setting_name", "setting_type", "plan_issued_on"}


@pytest.mark.parametrize("ref", ["EH", "EHC-00000000000000001", "EHC 001", "-EHC1", "EHC1-",
                                 "EHC_001", "ehc-001"])
def test_bad_references(ref):
    error = only_error(check(row(plan_reference=ref)))
    assert error.column == "plan_reference" and "is not a valid reference" in error.message


def test_review_stage_and_amendments():
    ok = check(row(last_review_on="2026-10-01", last_review_stage="Amending",
                   amendments_sent_on="20/10/2026"))
    assert ok.ok and ok.rows[0].last_review_stage is LastReviewStage.AMENDING
    assert ok.rows[0].amendments_sent_on == date(2026, 10, 20)
    waiting = check(row(last_review_on="2026-11-10", last_review_stage="awaiting decision"))
    assert waiting.rows[0].last_review_stage is LastReviewStage.AWAITING_DECISION

    def err(**changes):
        e = only_error(check(row(**changes)))
        return e.column, e.message

    col, msg = err(last_review_on="", last_review_stage="complete")
    assert col == "last_review_stage" and "last_review_on is empty" in msg
    col, msg = err(amendments_sent_on="2026-01-05")
    assert col == "amendments_sent_on" and "only for a review" in msg
    col, msg = err(last_review_stage="amending", amendments_sent_on="2025-11-19")
    assert col == "amendments_sent_on" and "before last_review_on" in msg
    col, msg = err(last_review_stage="amending", amendments_sent_on="2026-11-24")
    assert col == "amendments_sent_on" and "in the future" in msg
    col, msg = err(last_review_stage="done")
    assert col == "last_review_stage" and "awaiting_decision" in msg


def test_next_transfer():
    def transfer(text: str):
        return check(row(next_transfer=text)).rows[0].next_transfer

    t = transfer("Primary -> Secondary 2027")
    assert (t.from_phase, t.to_phase, t.year, t.kind) == ("primary", "secondary", 2027, "school")
    assert transfer("primary to secondary, 2027") == t
    assert transfer("primary→secondary 2027") == t
    assert transfer("").__class__ is type(None)
    assert transfer("secondary->post-16 2030").kind == "post16"
    assert transfer("nursery->school 2027").from_phase == "early_years"
    assert transfer("Primary school to secondary school 2027") == t
    for text, fragment in (("secondary->primary 2027", "not a phase transfer in the regulations"),
                           ("post16->post16 2027", "Reg 18(2)"),
                           ("to secondary school", "is not a phase transfer"),
                           ("primary->secondary 2025", "2025 has passed"),
                           ("primary->secondary 1999", "1999 has passed"),
                           ("primary->secondary 2099", "too far ahead")):
        error = only_error(check(row(next_transfer=text)))
        assert error.column == "next_transfer" and fragment in error.message, text


def test_under_five_cycle():
    young = dict(date_of_birth="2023-05-10", nc_year="N2", plan_issued_on="2025-10-15",
                 last_review_on="", next_transfer="")
    assert check(row(under_five_cycle_months="3", **young)).rows[0].under_five_cycle_months == 3
    for bad in ("2", "7", "4.5", "six"):
        error = only_error(check(row(under_five_cycle_months=bad, **young)))
        assert error.column == "under_five_cycle_months" and "3 to 6" in error.message
    report = check(row(under_five_cycle_months="4"))  # a ten-year-old
    assert report.ok and [w.column for w in report.warnings] == ["under_five_cycle_months"]


def test_caseworker_with_the_childs_name_is_a_warning():
    report = check(row(caseworker="North team re Sam Example"))
    assert report.ok and [w.column for w in report.warnings] == ["caseworker"]
    assert check(row(caseworker="Sam Patel")).warnings == []


def test_long_text_is_refused():
    error = only_error(check(row(setting_name="S" * 201)))
    assert error.column == "setting_name" and "the most is 200" in error.message


# --- duplicates -----------------------------------------------------------------------------


def test_a_duplicate_reference_names_both_lines_and_neither_is_imported():
    report = check(row(), row(plan_reference="EHC-000101", council_person_id="P2",
                              given_name="Ada"),
                   row(council_person_id="P3", given_name="Bea"),
                   row(council_person_id="P4", given_name="Cy"))
    assert issues(report.errors) == [(4, "plan_reference"), (5, "plan_reference")]
    assert "is also on line 2" in report.errors[0].message
    assert "lines 2 and 4" in report.errors[0].message
    assert "lines 2 and 5" in report.errors[1].message
    assert [r.line for r in report.rows] == [3]
    assert report.total == 4


def test_the_same_child_twice_is_a_warning():
    report = check(row(), row(plan_reference="EHC-000101", council_person_id="P2",
                              given_name="SAM", family_name="example"))
    assert report.ok and len(report.rows) == 2
    assert issues(report.warnings) == [(3, None)]
    assert "The same child (name and date of birth) as on line 2" in report.warnings[0].message
    by_id = check(row(), row(plan_reference="EHC-000101", given_name="Samuel"))
    assert issues(by_id.warnings) == [(3, "council_person_id")]
    assert "(council_person_id) as on line 2" in by_id.warnings[0].message
    twins = check(row(), row(plan_reference="EHC-000101", council_person_id="P2",
                             given_name="Alex"))
    assert twins.warnings == []


# --- the shape of the file ------------------------------------------------------------------


def test_line_numbers_count_physical_lines():
    text = csv_text(row(), row(plan_reference="EHC-000101", council_person_id="P2",
                               given_name="Ada", setting_name="Hillside\nPrimary"),
                    row(plan_reference="EHC-000102", council_person_id="P3",
                        given_name="Bea", plan_issued_on="nope"))
    text = text.replace("\r\nEHC-000101", "\r\n\r\n,,,,,,,,,,,,,,,\r\nEHC-000101")
    report = validate_file(text, today=TODAY)
    assert report.total == 3  # a blank line and a row of empty cells are skipped
    assert [r.line for r in report.rows] == [2, 5]
    assert report.rows[1].setting_name == "Hillside\nPrimary"
    assert issues(report.errors) == [(7, "plan_issued_on")]


def test_a_row_with_the_wrong_number_of_cells():
    lines = csv_text(row(), row(plan_reference="EHC-000101", council_person_id="P2")).split("\r\n")
    lines[2] = lines[2].replace("Hillside Primary School", "Hillside, Primary School")
    fifth = lines[1].replace("EHC-000100", "EHC-000104").replace("P0000100", "P4")
    # Line 3's setting name has a comma out of quotes, and its last cell is empty: every cell
    # after the name has moved one column right, and only the count of cells shows it.
    lines[3:] = ["EHC-000103,P3,Ada,Example", fifth + ",", fifth.replace("-000104", "-000105"),
                 ""]
    report = validate_file("\r\n".join(lines), today=TODAY)
    assert issues(report.errors) == [(3, None), (4, None), (5, None)]
    assert "17 values but the first line names 16 columns" in report.errors[0].message
    assert "double quotes" in report.errors[0].message
    assert "has 4 values" in report.errors[1].message
    assert [r.line for r in report.rows] == [2, 6]


def test_a_column_with_no_header_must_be_empty():
    text = csv_text(row(), header=[*COLUMN_NAMES, ""])
    assert validate_file(text, today=TODAY).ok
    text = text.rstrip("\r\n") + "stray\r\n"
    error = only_error(validate_file(text, today=TODAY))
    assert (error.line, error.column) == (2, None) and "Column 17" in error.message


def test_a_generated_file_of_2000_rows(tmp_path):
    path = tmp_path / "plans.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(COLUMN_NAMES)
        for i in range(2000):
            born = date(2008, 9, 1) + timedelta(days=(i * 37) % (365 * 14))  # 3 to 17
            age = 2026 - born.year - ((8, 31) < (born.month, born.day))
            nc = {2: "N1", 3: "N2", 4: "R"}.get(age, str(age - 4))
            issued = max(born + timedelta(days=500), date(2015, 1, 1))
            review = issued + timedelta(days=365 + i % 300)
            w.writerow([f"EHC-{i:06d}", f"P{i}", f"Given{i % 50}", f"Family{i}",
                        born.strftime("%d/%m/%Y") if i % 2 else born.isoformat(), nc,
                        f"School {i % 40}", "special", issued.isoformat(),
                        review.isoformat() if review <= TODAY else "", "", "", "", "",
                        "Team", ""])
        w.writerow([f"EHC-{1999:06d}", "P-dup", "A", "B", "2015-01-01", "7", "S", "special",
                    "2020-01-01", "", "", "", "", "", "", ""])
    report = validate_file(path, today=TODAY)
    assert report.total == 2001
    assert issues(report.errors) == [(2002, "plan_reference")]
    assert "is also on line 2001" in report.errors[0].message
    assert len(report.rows) == 1999 and report.warnings == []
    assert all(isinstance(r, PlanRow) for r in report.rows)
    assert report.rows[0].plan_reference == "EHC-000000" and report.rows[-1].line == 2000


# --- the documentation ----------------------------------------------------------------------


def test_docs_describe_every_column_and_value():
    doc = (ROOT / "docs" / "import.md").read_text(encoding="utf-8")
    for column in COLUMN_NAMES:
        assert f"`{column}`" in doc, column
    for value in [s.value for s in SettingType] + [s.value for s in LastReviewStage]:
        assert f"`{value}`" in doc, value
    example_header = (EXAMPLES / "plans.csv").read_text(encoding="utf-8").splitlines()[0]
    assert example_header == HEADER


def test_a_name_on_two_lines_is_refused():
    """A name goes into emails' headers and onto pages: a line break or control character in
    one is an error (a setting's name may run over two lines: it is not a person's)."""
    for column in ("given_name", "family_name", "caseworker"):
        error = only_error(check(row(**{column: "Sam\nOther"})))
        assert error.column == column and "one line" in error.message
    assert only_error(check(row(family_name="Ex\x00ample"))).column == "family_name"
