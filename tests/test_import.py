"""The plans import (services/plan_import.py, ``ehc import plans``, ``POST /api/imports/plans``)
against real parts: the example files of docs/import.md into review workflows on Temporal's
time-skipping server (SQLite and PostgreSQL), the command line as a subprocess and the API over
HTTP against the dev server.

Each test gives the example's plan references its own prefix (``EHC-004127`` becomes
``T1A2B3-004127``): the Temporal servers live for the whole session, and a plan reference is
a workflow id there. ``conftest`` ends every workflow a test leaves running."""

from __future__ import annotations

import asyncio
import os
import random
import re
import subprocess
import sys
import uuid
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session, select
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from services.plan_import import (
    choose_phase_transfer,
    import_plans,
    issue_lines,
    plan_start,
    resolve_children,
)
from services.clock import today as api_today
from store import tables as t
from store.db import engine_for
from services.plan_file import COLUMN_NAMES, expected_nc_index, validate_file
from domain.case import Placement, ReviewSnapshot, ReviewStage
from statutory import Status
from tests.conftest import free_port, settings_for
from tests.test_api import serve_api
from tests.test_plan_import import BASE, csv_text
from worker.main import build_worker
from workflows.review import ReviewWorkflow

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "docs" / "examples" / "plans.csv"
WITH_ERRORS = ROOT / "docs" / "examples" / "plans-with-errors.csv"
TODAY = date(2026, 11, 23)  # the day both examples describe (docs/import.md)

def new_prefix(first: str = "T") -> str:
    """A plan-reference prefix of its own for a test: ``first`` and five consonants, so that it
    can never read as a name, a date or a phone number (references are checked for those)."""
    return first + "".join(random.choices("BCDFGHJKLMNPQRSTVWXZ", k=5))


def prefixed(path: Path) -> tuple[str, str]:
    """The file's text with its own plan-reference prefix, and the prefix."""
    prefix = new_prefix()
    return re.sub(r"^EHC-", f"{prefix}-", path.read_text("utf-8"), flags=re.M), prefix


def children(db_url: str) -> list[t.Child]:
    with Session(engine_for(db_url)) as s:
        return list(s.exec(select(t.Child)))


async def snapshot(client: Client, ref: str) -> ReviewSnapshot:
    """The plan's live review (retried while the worker takes its first task)."""
    handle = client.get_workflow_handle(f"review-{ref}")
    for _ in range(100):
        try:
            return await handle.query(ReviewWorkflow.snapshot)
        except RPCError:
            await asyncio.sleep(0.1)
    return await handle.query(ReviewWorkflow.snapshot)


async def run_ids(client: Client, refs: list[str]) -> dict[str, str]:
    return {r: (await client.get_workflow_handle(f"review-{r}").describe()).run_id for r in refs}


def D(text: str) -> date:  # noqa: N802 - reads like the dates in the table
    return date.fromisoformat(text)


# What each row of docs/examples/plans.csv must become, worked by hand from docs/import.md and
# the rules: (anchor, review_due, stage, meeting_on, phase_transfer_due, placement (nc_year,
# setting_type) or None). The review is due on the anchor's anniversary (CFA 2014 s.44(1)); a
# phase transfer's by 14 February (30 March post-16): Reg 18(1) says "before" 15 February (31
# March), so the named day itself is late.
EXPECTED = {
    # N2 at nursery, under five, reviewed every 4 months: 2027 move to school (by 14 February).
    "004127": (D("2026-06-22"), D("2027-06-22"), "awaiting_meeting", None, D("2027-02-14"),
               ("N2", "early_years")),
    # A meeting fixed for 30 November; the Year 2 review is the Reg 18 review of 2027.
    "003981": (D("2025-12-03"), D("2026-12-03"), "meeting_set", D("2026-11-30"),
               D("2027-02-14"), ("2", "infant")),
    # Year 6: the review falls due on 9 February, the amended plan before 15 February.
    "002866": (D("2026-02-09"), D("2027-02-09"), "awaiting_meeting", None, D("2027-02-14"),
               ("6", "primary")),
    # Year 11 to post-16: before 31 March 2027 (Reg 18(1)(a)).
    "001702": (D("2026-03-17"), D("2027-03-17"), "awaiting_meeting", None, D("2027-03-30"),
               ("11", "secondary")),
    "001455": (D("2026-06-25"), D("2027-06-25"), "awaiting_meeting", None, None,
               ("12", "post16")),
    # Never reviewed: counted from the plan's issue.
    "004390": (D("2026-05-14"), D("2027-05-14"), "awaiting_meeting", None, None,
               ("4", "primary")),
    "002204": (D("2025-12-10"), D("2026-12-10"), "meeting_set", D("2026-12-08"), None,
               ("9", "special")),
    # Overdue since 16 September 2026.
    "001938": (D("2025-09-15"), D("2026-09-15"), "awaiting_meeting", None, None,
               ("8", "secondary_with_sixth_form")),
    # Meeting held on 2 November, the decision to come: the cycle a year before the meeting.
    "003317": (D("2025-11-02"), D("2026-11-02"), "meeting_held", None, None, ("4", "junior")),
    # Amendments sent on 15 October after the meeting of 24 September.
    "001276": (D("2025-09-24"), D("2026-09-24"), "amending", None, None,
               ("12", "secondary_with_sixth_form")),
    # 22 years old, no year group: no placement.
    "000812": (D("2026-05-19"), D("2027-05-19"), "awaiting_meeting", None, None, None),
    # Middle school Year 7: the review due by 6 October 2027 is in the window of the 2028 move.
    "002731": (D("2026-10-06"), D("2027-10-06"), "awaiting_meeting", None, D("2028-02-14"),
               ("7", "middle")),
    "003055": (D("2026-04-01"), D("2027-04-01"), "awaiting_meeting", None, None,
               ("8", "other")),
}


async def test_the_example_starts_one_review_per_plan_in_the_state_its_row_describes(
        ts_env, db_url, executor):
    settings = settings_for(db_url, f"imp-{uuid.uuid4().hex[:8]}")
    text, prefix = prefixed(EXAMPLE)
    refs = [f"{prefix}-{n}" for n in EXPECTED]
    progress: list[tuple[int, int]] = []
    async with build_worker(ts_env.client, settings, executor):
        result = await import_plans(text, settings=settings, client=ts_env.client, today=TODAY,
                                    progress=lambda done, total: progress.append((done, total)))
        s = result.summary
        assert result.ok and not result.blocked
        assert (s.rows, s.valid, s.imported, s.already_imported, s.skipped, s.failed) == \
            (13, 13, 13, 0, 0, 0)
        assert (s.children_added, s.children_matched) == (13, 0)
        assert [r.outcome for r in result.results] == ["created"] * 13
        assert progress == [(n, 13) for n in range(1, 14)]
        kids = children(db_url)
        assert len(kids) == 13 and {k.council_reference for k in kids} == {
            line.split(",")[1] for line in text.splitlines()[1:]}

        for n, (anchor, review_due, stage, meeting, transfer, placement) in EXPECTED.items():
            ref = f"{prefix}-{n}"
            snap = await snapshot(ts_env.client, ref)
            where = f"{ref}: {snap.stage.value}"
            assert (snap.cycle, snap.origin, snap.plan_reference) == (1, "import", ref), where
            assert snap.anchor_on == anchor, where
            assert snap.milestone("review_due").due == review_due, where
            assert snap.stage is ReviewStage(stage), where
            assert snap.meeting_on == (meeting or snap.meeting_held_on), where
            pt = snap.milestone("phase_transfer_due")
            assert (pt.due if pt else None) == transfer, where
            row = next(r for r in result.results if r.plan_reference == ref)
            cells = text.splitlines()[row.line - 1].split(",")
            assert snap.placement == (None if placement is None else Placement(
                nc_year=placement[0], nc_year_as_of=TODAY, setting_type=placement[1],
                setting_name=cells[6])), where
            assert (row.phase_transfer.due if row.phase_transfer else None) == transfer, where
            child = next(k for k in kids if k.id == snap.child_id)
            assert child.council_reference == cells[1], where

        # A review in progress resumes where the row says.
        waiting = await snapshot(ts_env.client, f"{prefix}-003317")
        assert waiting.meeting_held_on == D("2026-11-02")
        assert waiting.milestone("decision_due").due == D("2026-11-30")  # Reg 20(10)
        assert waiting.milestone("review_due").done_on == D("2026-11-02")
        amending = await snapshot(ts_env.client, f"{prefix}-001276")
        assert (amending.meeting_held_on, amending.amendments_sent_on) == \
            (D("2026-09-24"), D("2026-10-15"))
        assert amending.milestone("final_amended_plan_due").due == D("2026-12-10")  # Reg 22(3)
        assert amending.milestone("amendment_comments_due").due == D("2026-10-30")  # Reg 22(2)
        # The fixed meeting's invitations (two weeks before it) and the under-fives' review.
        fixed = (await snapshot(ts_env.client, f"{prefix}-003981")).view(TODAY)
        assert {d.key: d.due for d in fixed.deadlines}["invitations_due"] == D("2026-11-16")
        nursery = await snapshot(ts_env.client, f"{prefix}-004127")
        assert nursery.milestone("under_five_review_due").due == D("2026-10-22")
        assert nursery.policy.under_five_months == 4
        # Overdue on the day of the import, like the docs say.
        late = (await snapshot(ts_env.client, f"{prefix}-001938")).view(TODAY)
        status = {d.key: d.status for d in late.deadlines}
        assert status["review_due"] is Status.OVERDUE
        on_time = (await snapshot(ts_env.client, f"{prefix}-004390")).view(TODAY)
        assert {d.key: d.status for d in on_time.deadlines}["review_due"] is Status.PENDING

        # The same file again: nothing new.
        before = await run_ids(ts_env.client, refs)
        again = await import_plans(text, settings=settings, client=ts_env.client, today=TODAY)
        s = again.summary
        assert again.ok and (s.imported, s.already_imported, s.failed) == (0, 13, 0)
        assert (s.children_added, s.children_matched) == (0, 13)
        assert [r.outcome for r in again.results] == ["already_imported"] * 13
        assert await run_ids(ts_env.client, refs) == before
        assert len(children(db_url)) == 13

        # A row that differs from the plan already held: reported, the plan left alone.
        ref = f"{prefix}-004390"
        for _ in range(200):  # the workflow's record activity writes the plan
            with Session(engine_for(db_url)) as db:
                if db.get(t.Plan, ref) is not None:
                    break
            await asyncio.sleep(0.05)
        changed = text.replace(f"{ref},P0021107,Reuben,Ashworth,2018-02-27,4,"
                               "St Anne's CE Primary School,primary,2026-05-14",
                               f"{ref},P0021107,Reuben,Ashworth,2018-02-27,4,"
                               "St Anne's CE Primary School,primary,2026-05-12")
        assert changed != text
        third = await import_plans(changed, settings=settings, client=ts_env.client, today=TODAY)
        row = next(r for r in third.results if r.plan_reference == ref)
        assert row.outcome == "already_imported"
        assert any("issued on 2026-05-14, the row says 2026-05-12" in n for n in row.notes)
        assert (await snapshot(ts_env.client, ref)).plan_issued_on == D("2026-05-14")
        assert await run_ids(ts_env.client, refs) == before


# --- the example for any day, and who holds each plan ---------------------------------------------


def test_the_example_dated_for_any_day_is_the_shipped_one_and_validates_cleanly():
    """``ehc import example`` on 23 November 2026 is docs/examples/plans.csv; on any other day
    (every fifth day over four years, leap days and 1 September included) it has no error and
    no warning as on that day, and every child keeps the year group the example gives."""
    from services.plan_example import EXAMPLE_DAY, example_plans

    assert example_plans(EXAMPLE_DAY) == EXAMPLE.read_text("utf-8")
    shipped = {r.plan_reference: r.nc_year for r in validate_file(EXAMPLE, today=TODAY).rows}
    days = [TODAY + timedelta(days=n) for n in range(-400, 1100, 5)]
    days += [date(2028, 2, 29), date(2027, 9, 1), date(2027, 8, 31), date(2028, 2, 14)]
    for day in days:
        report = validate_file(example_plans(day), today=day)
        assert (report.errors, report.warnings, len(report.rows)) == ([], [], 13), day
        assert {r.plan_reference: r.nc_year for r in report.rows} == shipped, day


async def test_the_example_imports_today_and_each_plan_goes_to_its_caseworker(
        ts_env, db_url, executor):
    """The walk-through of the README on today's real date: the example printed for today
    imports with no errors, without --today; each plan whose caseworker names a staff account
    (by email, or by name in any case) is given to that account with its review, and the
    timeline says so; a name that matches nobody is a warning, and that plan comes in held by
    nobody."""
    from services.plan_example import example_plans
    from services.staff import create_user

    real_today = api_today()
    with Session(engine_for(db_url)) as s:
        alex = create_user(s, email="caseworker@northbridge.example", name="Alex Caseworker",
                           role="caseworker", password="a long enough password 1")
        morgan = create_user(s, email="manager@northbridge.example", name="Morgan Manager",
                             role="manager", password="a long enough password 2")
        holders = {"alex": alex.id, "morgan": morgan.id}
    prefix = new_prefix()
    text = re.sub(r"^EHC-", f"{prefix}-", example_plans(real_today), flags=re.M)
    # One caseworker the council has no account for.
    text = text.replace(",Morgan Manager,4\n", ",J Smith,4\n")
    settings = settings_for(db_url, f"imp-{uuid.uuid4().hex[:8]}")
    async with build_worker(ts_env.client, settings, executor):
        result = await import_plans(text, settings=settings, client=ts_env.client,
                                    today=real_today)
        assert result.ok and result.report.errors == []
        assert [r.outcome for r in result.results] == ["created"] * 13
        assert [str(w) for w in result.report.warnings] == [
            "Line 2, caseworker: no staff account matches the caseworker 'J Smith': add them "
            "as staff (or write the email address or full name of their account), or leave "
            "the column blank. The plan is imported without a caseworker."]
        expected = {}
        for line in text.splitlines()[1:]:
            cells = line.split(",")
            who = cells[14].casefold()
            expected[cells[0]] = (holders["alex"] if "caseworker" in who else
                                  holders["morgan"] if "manager" in who else None)
        names = {holders["alex"]: "Alex Caseworker", holders["morgan"]: "Morgan Manager"}
        for r in result.results:
            want = expected[r.plan_reference]
            assert (f"assigned to {names[want]}" in r.notes) if want else \
                not any(n.startswith("assigned") for n in r.notes), r
        with Session(engine_for(db_url)) as s:
            plans = {p.reference: p for p in s.exec(select(t.Plan).where(
                t.Plan.reference.startswith(prefix)))}  # type: ignore[attr-defined]
            assert {ref: p.caseworker_id for ref, p in plans.items()} == expected
            cycles = {c.reference: c.caseworker_id for c in s.exec(select(t.Case).where(
                t.Case.reference.startswith(prefix)))}  # type: ignore[attr-defined]
            assert cycles == {f"{ref}.R1": who for ref, who in expected.items()}
            said = {e.case_reference: e.summary for e in s.exec(select(t.CaseEvent).where(
                t.CaseEvent.kind == "plan.assigned"))}
        assert said == {f"{ref}.R1": f"Assigned to {names[who]} by the import"
                        for ref, who in expected.items() if who}
        # The workflow holds the same first record (its input names the caseworker).
        ref = next(ref for ref, who in expected.items() if who)
        snap = await snapshot(ts_env.client, ref)
        assert snap.version >= plans[ref].version


def _docs_lines() -> list[str]:
    """The report docs/import.md shows for the example with errors."""
    doc = (ROOT / "docs" / "import.md").read_text("utf-8")
    block = doc.split("### What the example with errors gives", 1)[1]
    return block.split("```text\n", 1)[1].split("```", 1)[0].strip().splitlines()


async def test_a_file_with_errors_imports_nothing_unless_the_bad_rows_are_skipped(
        ts_env, db_url, executor):
    settings = settings_for(db_url, f"imp-{uuid.uuid4().hex[:8]}")
    async with build_worker(ts_env.client, settings, executor):
        result = await import_plans(WITH_ERRORS, settings=settings, client=ts_env.client,
                                    today=TODAY)
        assert result.blocked and not result.ok and result.results == []
        s = result.summary
        # 3 warnings: two from the check, and the caseworker of line 13 matches no account
        assert (s.rows, s.valid, s.errors, s.warnings, s.imported, s.skipped) == \
            (12, 1, 10, 3, 0, 0)
        assert issue_lines(result.report) == _docs_lines()  # every problem, as documented
        assert children(db_url) == []
        with pytest.raises(RPCError) as err:  # the one good row was not started either
            await ts_env.client.get_workflow_handle("review-EHC-005012").describe()
        assert err.value.status == RPCStatusCode.NOT_FOUND

        # Skipping the bad rows imports the good one (line 13) and reports the rest.
        text, prefix = prefixed(WITH_ERRORS)
        skipped = await import_plans(text, settings=settings, client=ts_env.client,
                                     today=TODAY, skip_bad_rows=True)
        s = skipped.summary
        assert skipped.ok and not skipped.blocked
        assert (s.rows, s.imported, s.skipped, s.errors, s.warnings, s.failed) == \
            (12, 1, 11, 10, 3, 0)
        assert [(r.line, r.plan_reference, r.outcome) for r in skipped.results] == \
            [(13, f"{prefix}-005012", "created")]
        assert len(children(db_url)) == 1
        snap = await snapshot(ts_env.client, f"{prefix}-005012")
        assert (snap.anchor_on, snap.stage) == (D("2026-02-03"), ReviewStage.AWAITING_MEETING)

        # The same checks for a dry run: nothing is written or started.
        text, prefix = prefixed(EXAMPLE)
        dry = await import_plans(text, settings=settings, client=ts_env.client, today=TODAY,
                                 dry_run=True)
        assert (dry.summary.valid, dry.summary.imported, dry.results) == (13, 0, [])
        assert len(children(db_url)) == 1


# --- the children and the transfer, without Temporal -----------------------------------------


def rows_of(*rows: dict):
    report = validate_file(csv_text(*rows), today=TODAY)
    assert report.ok, [str(e) for e in report.errors]
    return report.rows


def test_children_are_matched_by_person_id_or_name_and_birth_in_any_case(sqlite_url):
    with Session(engine_for(sqlite_url)) as s:
        s.add(t.Child(id="zoe", given_name="ZOË", family_name="KOWALCZYK",
                      date_of_birth=date(2016, 1, 14)))
        s.add(t.Child(id="pid", given_name="Someone", family_name="Else",
                      date_of_birth=date(2015, 1, 1), council_reference="P1"))
        s.add(t.Child(id="other", given_name="Sam", family_name="Example",
                      date_of_birth=date(2016, 4, 2), council_reference="P9"))
        s.commit()
    rows = rows_of(
        # by name and birth, whatever the case (SQLite's lower() does not fold Ë); the
        # person id is learnt
        {**BASE, "plan_reference": "A-001", "given_name": "Zoë", "family_name": "Kowalczyk",
         "date_of_birth": "14/01/2016", "council_person_id": "P2", "next_transfer": ""},
        # by person id, though the name differs (a note says so)
        {**BASE, "plan_reference": "A-002", "council_person_id": "P1"},
        # same name and birth as 'other' but another person id: another child
        {**BASE, "plan_reference": "A-003", "council_person_id": "P3"},
        # the same new child twice in one file: one record
        {**BASE, "plan_reference": "A-004", "council_person_id": "", "given_name": "Ada",
         "family_name": "Lovelace", "date_of_birth": "2016-05-05"},
        {**BASE, "plan_reference": "A-005", "council_person_id": "", "given_name": "ada",
         "family_name": "LOVELACE", "date_of_birth": "2016-05-05"},
    )
    got = resolve_children(sqlite_url, rows)
    assert [(c, added) for c, added, _ in got[:3]] == [("zoe", False), ("pid", False),
                                                       (got[2][0], True)]
    assert got[2][0] not in ("zoe", "pid", "other")
    assert got[1][2] and "differs" in got[1][2] and got[0][2] is None
    assert got[3][0] == got[4][0] and (got[3][1], got[4][1]) == (True, False)
    by_id = {c.id: c for c in children(sqlite_url)}
    assert by_id["zoe"].council_reference == "P2"
    assert len(by_id) == 5  # three there, two added
    # Run again: everyone is found, nobody added.
    assert [(c, a) for c, a, _ in resolve_children(sqlite_url, rows)] == \
        [(c, False) for c, _, _ in got]
    assert len(children(sqlite_url)) == 5


def _row(**cells):
    return rows_of({**BASE, **cells})[0]


def test_the_phase_transfer_comes_from_the_column_else_the_year_group_when_this_cycle_has_it():
    # Year 6, reviewed 9 February 2026: the next review (by 9 February 2027) is in the window
    # of the September 2027 move, so the cycle must end before 15 February 2027 (Reg 18(1)(b)).
    t1, notes = choose_phase_transfer(_row(last_review_on="2026-02-09"), TODAY)
    assert (t1.kind, t1.transfer_year, t1.due, t1.source, notes) == \
        ("school", 2027, D("2027-02-14"), "next_transfer", [])
    t2, _ = choose_phase_transfer(_row(last_review_on="2026-02-09", next_transfer=""), TODAY)
    assert (t2.due, t2.source) == (D("2027-02-14"), "year_group")
    # The column wins over the year group, and the difference is noted.
    t3, notes = choose_phase_transfer(
        _row(setting_type="special", nc_year="6", next_transfer="primary->secondary 2027"),
        TODAY)
    assert t3.source == "next_transfer" and t3.due == D("2027-02-14")
    assert notes and "differs from the year group's" in notes[0]
    # Year 4: the 2029 move is a later cycle's.
    t4, notes = choose_phase_transfer(_row(nc_year="4", date_of_birth="2018-04-02",
                                           next_transfer=""), TODAY)
    assert t4 is None and notes == []
    # A review in progress whose meeting came before the window opened: not this cycle's.
    t5, _ = choose_phase_transfer(_row(
        nc_year="5", date_of_birth="2017-04-02", next_transfer="primary->secondary 2028",
        last_review_on="2026-06-01", last_review_stage="awaiting_decision"), TODAY)
    assert t5 is None
    # ... and one held in the window is.
    t6, _ = choose_phase_transfer(_row(last_review_on="2026-10-01",
                                       last_review_stage="awaiting_decision"), TODAY)
    assert t6 is not None and t6.due == D("2027-02-14")


def test_the_under_fives_cycle_comes_from_the_row_else_the_council_and_stops_at_five():
    young = dict(date_of_birth="2023-05-10", nc_year="N2", setting_type="early_years",
                 next_transfer="", plan_issued_on="2025-10-15", last_review_on="2026-06-22")
    council = settings_for("sqlite://", "q")
    start, _, _ = plan_start(_row(**young, under_five_cycle_months="4"), "c", council, TODAY)
    assert (start.under_five_until, start.policy.under_five_months) == (D("2028-05-10"), 4)
    start, _, _ = plan_start(_row(**young), "c", council, TODAY)
    assert start.under_five_until is None and start.policy.under_five_months is None
    six = settings_for("sqlite://", "q", under_five_review_months=6)
    start, _, _ = plan_start(_row(**young), "c", six, TODAY)
    assert (start.under_five_until, start.policy.under_five_months) == (D("2028-05-10"), 6)
    start, _, _ = plan_start(_row(), "c", six, TODAY)  # ten years old
    assert start.under_five_until is None
    # The review stage becomes the workflow's resume state.
    start, _, _ = plan_start(_row(last_review_on="2026-10-01", last_review_stage="amending",
                                  amendments_sent_on="2026-10-20"), "c", council, TODAY)
    assert (start.resume, start.amendments_sent_on, start.origin) == \
        ("amending", D("2026-10-20"), "import")


# --- the command line and the API, against the dev server --------------------------------------


def _names_and_births() -> set[str]:
    """Every person id, name and date of birth in both example files, as written and as ISO
    dates."""
    out: set[str] = set()
    for path in (EXAMPLE, WITH_ERRORS):
        for line in path.read_text("utf-8").splitlines()[1:]:
            cells = line.split(",")
            out.update(x for x in cells[1:5] if x)
            try:
                out.add(validate_file(csv_text(dict(zip(COLUMN_NAMES, cells))), today=TODAY)
                        .rows[0].date_of_birth.isoformat())
            except IndexError:
                pass
    return out


def _leaks(text: str) -> list[str]:
    return [x for x in _names_and_births() if re.search(rf"(?<![\w-]){re.escape(x)}(?![\w-])",
                                                         text)]


async def test_the_command_line_imports_reports_and_exits_with_the_right_status(
        dev_env, sqlite_url, executor, tmp_path):
    settings = settings_for(sqlite_url, f"cli-{uuid.uuid4().hex[:8]}")
    env = {**os.environ, "EHC_DATABASE_URL": sqlite_url, "EHC_TASK_QUEUE": settings.task_queue,
           "EHC_TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
           "EHC_DATA_DIR": str(tmp_path / "data")}
    outputs: list[str] = []

    async def ehc(*args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
        done = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "cli.main", *args], capture_output=True,
            text=True, cwd=ROOT, env={**env, **extra_env}, timeout=120)
        outputs.append(done.stdout + done.stderr)
        return done

    text, prefix = prefixed(EXAMPLE)
    good = tmp_path / "plans.csv"
    good.write_text(text, "utf-8")
    async with build_worker(dev_env.client, settings, executor):
        first = await ehc("import", "plans", str(good), "--today", "2026-11-23")
        assert first.returncode == 0, first.stdout + first.stderr
        assert "13 rows: 13 imported, 0 already imported, 0 skipped (errors), 0 failed." \
            in first.stdout
        assert "importing plans: 13/13 (100%)" in first.stderr
        assert len(children(sqlite_url)) == 13
        again = await ehc("import", "plans", str(good), "--today", "2026-11-23")
        assert again.returncode == 0, again.stdout + again.stderr
        assert "13 rows: 0 imported, 13 already imported" in again.stdout
        assert len(children(sqlite_url)) == 13

        bad = await ehc("import", "plans", str(WITH_ERRORS), "--today", "2026-11-23")
        assert bad.returncode == 1
        assert bad.stdout.splitlines()[:13] == _docs_lines()
        assert "Nothing was imported: the file has 10 errors in 12 rows" in bad.stdout
        assert "--skip-bad-rows to import the 1 valid rows" in bad.stdout
        assert len(children(sqlite_url)) == 13

        text2, prefix2 = prefixed(WITH_ERRORS)
        partial = tmp_path / "partial.csv"
        partial.write_text(text2, "utf-8")
        skip = await ehc("import", "plans", str(partial), "--today", "2026-11-23",
                         "--skip-bad-rows")
        assert skip.returncode == 0, skip.stdout + skip.stderr
        assert "12 rows: 1 imported, 0 already imported, 11 skipped (errors), 0 failed." \
            in skip.stdout
        assert (await dev_env.client.get_workflow_handle(f"review-{prefix2}-005012")
                .describe()).id == f"review-{prefix2}-005012"

        text3, prefix3 = prefixed(EXAMPLE)
        fresh = tmp_path / "fresh.csv"
        fresh.write_text(text3, "utf-8")
        dry = await ehc("import", "plans", str(fresh), "--today", "2026-11-23", "--dry-run")
        assert dry.returncode == 0 and "Nothing was imported (--dry-run)" in dry.stdout
        with pytest.raises(RPCError):
            await dev_env.client.get_workflow_handle(f"review-{prefix3}-004127").describe()

        down = await ehc("import", "plans", str(fresh), "--today", "2026-11-23",
                         EHC_TEMPORAL_ADDRESS=f"127.0.0.1:{free_port()}")
        assert down.returncode == 1 and "Nothing was imported" in down.stderr
        assert len(children(sqlite_url)) == 14

        for args in (("import", "plans", str(tmp_path / "missing.csv")),
                     ("import", "plans", str(good), "--today", "23/11/2026"),
                     ("import", "plans"), ("import",)):
            usage = await ehc(*args)
            assert usage.returncode == 2, (args, usage.stdout, usage.stderr)
            assert usage.stderr.startswith("error: ")
    assert _leaks("\n".join(outputs)) == []


def _today_file(prefix: str, *, bad: bool = False) -> bytes:
    """Three good plans (and a bad one) whose dates count from the API's today."""
    now = api_today()

    def born(years: int) -> date:
        return now.replace(year=now.year - years, month=4, day=2)

    def nc(d: date) -> str:
        return str(expected_nc_index(d, now))

    def iso(days: int) -> str:
        return (now + timedelta(days=days)).isoformat()

    rows = [
        {**BASE, "plan_reference": f"{prefix}-1", "council_person_id": f"{prefix}P1",
         "given_name": "Robin", "date_of_birth": born(10).isoformat(), "nc_year": nc(born(10)),
         "plan_issued_on": iso(-1000), "last_review_on": iso(-100), "next_transfer": ""},
        {**BASE, "plan_reference": f"{prefix}-2", "council_person_id": f"{prefix}P2",
         "given_name": "Alex", "date_of_birth": born(9).isoformat(), "nc_year": nc(born(9)),
         "plan_issued_on": iso(-1000), "last_review_on": iso(-20),
         "last_review_stage": "awaiting_decision", "next_transfer": ""},
        {**BASE, "plan_reference": f"{prefix}-3", "council_person_id": f"{prefix}P3",
         "given_name": "Kit", "date_of_birth": born(8).isoformat(), "nc_year": nc(born(8)),
         "plan_issued_on": iso(-1000), "last_review_on": iso(-300),
         "next_meeting_on": iso(30), "next_transfer": ""},
    ]
    if bad:
        rows.append({**BASE, "plan_reference": f"{prefix}-4", "council_person_id": "",
                     "given_name": "Jo", "date_of_birth": "31/02/2015"})
    return csv_text(*rows).encode("utf-8")


async def test_the_api_imports_an_upload_refuses_a_bad_file_and_needs_temporal(
        dev_env, db_url, executor):
    settings = settings_for(db_url, f"api-{uuid.uuid4().hex[:8]}")
    prefix = new_prefix()

    async def upload(http: httpx.AsyncClient, content: bytes, **form: str) -> httpx.Response:
        return await http.post("/api/imports/plans", files={"file": ("plans.csv", content,
                                                                     "text/csv")}, data=form)

    async with build_worker(dev_env.client, settings, executor):
        async with serve_api(settings, dev_env.client) as http:
            spec = (await http.get("/openapi.json")).json()
            assert spec["paths"]["/api/imports/plans"]["post"]["tags"] == ["imports"]

            # A file with an error: 422 with every error, and nothing imported.
            refused = await upload(http, _today_file(prefix, bad=True))
            assert refused.status_code == 422, refused.text
            body = refused.json()
            assert body["code"] == "invalid_file" and "nothing was imported" in body["detail"]
            assert [(e["line"], e["column"]) for e in body["errors"]] == [(5, "date_of_birth")]
            assert body["errors"][0]["personal"] and body["errors"][0]["value"] is None
            assert body["summary"]["imported"] == 0 and children(db_url) == []
            assert "31/02/2015" not in refused.text

            # The good file: 200, a review per plan.
            ok = await upload(http, _today_file(prefix), skip_bad_rows="false")
            assert ok.status_code == 200, ok.text
            out = ok.json()
            assert (out["summary"]["imported"], out["summary"]["already_imported"],
                    out["errors"]) == (3, 0, [])
            assert [r["outcome"] for r in out["rows"]] == ["created"] * 3
            waiting = await snapshot(dev_env.client, f"{prefix}-2")
            assert waiting.stage is ReviewStage.MEETING_HELD
            fixed = await snapshot(dev_env.client, f"{prefix}-3")
            assert fixed.meeting_on == api_today() + timedelta(days=30)

            # Again, with a bad row skipped: the three are already in, the bad one reported.
            again = await upload(http, _today_file(prefix, bad=True), skip_bad_rows="true")
            assert again.status_code == 200, again.text
            s = again.json()["summary"]
            assert (s["imported"], s["already_imported"], s["skipped"], s["errors"]) == \
                (0, 3, 1, 1)
            assert len(children(db_url)) == 3

        # Temporal not reachable: 503, nothing imported.
        gone = await Client.connect(f"127.0.0.1:{free_port()}", lazy=True)
        async with serve_api(settings, gone) as http:
            down = await upload(http, _today_file(new_prefix()))
            assert down.status_code == 503, down.text
            assert "nothing was imported" in down.json()["detail"]
        assert len(children(db_url)) == 3
        async with serve_api(settings_for(db_url, "none",
                                          temporal_address=f"127.0.0.1:{free_port()}"),
                             None) as http:
            down = await upload(http, _today_file(new_prefix()))
            assert down.status_code == 503, down.text
        assert len(children(db_url)) == 3
