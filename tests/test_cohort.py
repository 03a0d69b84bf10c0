"""The phase-transfer cohort (store/cohort.py, services/cohort.py, api/cohort.py,
cli/phase_transfer.py): plans built by real review workflows in Temporal's time-skipping
server, recorded by the real activity in a real database; the cohort of a year with each
deadline checked against dates worked out by hand; every status as time passes; bringing
reviews forward (and a second run that does nothing) through the function the CLI and the API
use; the CLI; the API and the page over HTTP.

Each test first moves the time-skipping clock to the next 1 October (T0, London), so the dates
are the same whatever the tests before it did: the year of transfer Y is T0's year + 1, the
school deadline is 14 February Y (T0 + 136 days) and the post-16 one 30 March Y: Reg 18(1)
says "before 15 February" and "before 31 March", so those days themselves are late."""

from __future__ import annotations

import asyncio
import csv
import io
import re
from contextlib import asynccontextmanager
from datetime import date, timedelta

import pytest
from sqlmodel import Session, select

from services.cohort import bring_forward
from cli.main import main
from store import tables as t
from store.cohort import (
    STATUSES,
    PlacementProblem,
    Cohort,
    build_cohort,
    status_of,
    transfer_for,
    year_group_now,
)
from store.db import engine_for
from domain.case import ClosePlan, DecideReview, Placement, RecordDate, UpdatePlacement
from statutory import london_date, london_midnight
from statutory.phase import NCYear
from tests.conftest import end_open_workflows, settings_for
from tests.test_api import serve_api
from tests.test_assessment_workflow import running_worker
from tests.test_review_workflow import Plan, hold_on_time, start_plan

NAMES = ("Amelia", "Testchild")  # tests.test_assessment_workflow.add_child's child


@asynccontextmanager
async def plans_worker(env, db_url: str, executor):
    """A worker for one test's plans; the plans are ended before it stops, pass or fail.

    An hour of workflow time passes first, so that the work the last update set off (a new
    cycle's first task, the record activity) is finished, not cut off by the worker stopping:
    a task cut off that way could hold the time-skipping clock still for the next test (seen
    with a cycle that continued as new on the test's last update). ``conftest`` ends anything
    still open after every test as well."""
    async with running_worker(env, db_url, executor) as settings:
        try:
            yield settings
        finally:
            await env.sleep(timedelta(hours=1))
            await end_open_workflows(env.client)


# --- helpers ---------------------------------------------------------------------------------------


async def to_next_october(env) -> date:
    """Move the time-skipping clock to noon (London) on the next 1 October; return that day."""
    now = await env.get_current_time()
    target = date(london_date(now).year, 10, 1)
    if london_midnight(target) + timedelta(hours=12) <= now:
        target = date(target.year + 1, 10, 1)
    await env.sleep(london_midnight(target) + timedelta(hours=12) - now)
    return target


def where(nc_year: str, as_of: date, setting: str, name: str | None = None) -> Placement:
    return Placement(nc_year=nc_year, nc_year_as_of=as_of, setting_type=setting,
                     setting_name=name)


def plan_row(db_url: str, ref: str) -> t.Plan | None:
    with Session(engine_for(db_url)) as s:
        return s.get(t.Plan, ref)


async def settle(db_url: str, ref: str, check, tries: int = 300) -> t.Plan:
    """Wait until the recorded plan row satisfies ``check`` (the record activity runs after
    the workflow's change)."""
    for _ in range(tries):
        row = plan_row(db_url, ref)
        if row is not None and check(row):
            return row
        await asyncio.sleep(0.05)
    raise AssertionError(f"plan {ref} not recorded as expected: {plan_row(db_url, ref)}")


async def settle_review(db_url: str, ref: str, check, tries: int = 300) -> t.Review:
    for _ in range(tries):
        with Session(engine_for(db_url)) as s:
            row = s.get(t.Review, ref)
        if row is not None and check(row):
            return row
        await asyncio.sleep(0.05)
    raise AssertionError(f"review {ref} not recorded as expected")


def cohort_of(db_url: str, year: int, today: date) -> Cohort:
    with Session(engine_for(db_url)) as s:
        return build_cohort(s, year, today)


def statuses(cohort: Cohort) -> dict[str, str]:
    return {e.plan_reference: e.status for e in cohort.entries}


async def transfer_due(plan: Plan) -> date | None:
    m = (await plan.snapshot()).milestone("phase_transfer_due")
    return m.due if m is not None else None


async def run_cli(capsys, *argv: str) -> tuple[int, str]:
    """``ehc`` in a thread (it runs its own event loop), with what it printed."""
    capsys.readouterr()

    def call() -> int:
        try:
            return main(list(argv))
        except SystemExit as exc:
            return int(exc.code or 0)

    code = await asyncio.to_thread(call)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


# --- pure parts: no Temporal ---------------------------------------------------------------------


def test_status_rules_and_their_boundaries():
    d = date(2027, 2, 14)  # the last day on time: Reg 18(1)(b) says "before 15 February"
    base = dict(deadline=d, done_on=None, carries=True, review_due=d, cycle_open=True,
                meeting_held=False)
    assert status_of(today=d - timedelta(days=43), **base) == "on_track"
    assert status_of(today=d - timedelta(days=42), **base) == "due_soon"  # 42 days: due soon
    assert status_of(today=d, **base) == "due_soon"  # the last day itself is still in time
    assert status_of(today=d + timedelta(days=1), **base) == "overdue"  # 15 February: late
    assert status_of(today=d - timedelta(days=10), **{**base, "meeting_held": True}) == \
        "on_track"
    # Done: on time on 14 February, late on 15 February (worked by hand from Reg 18(1)(b)).
    assert status_of(today=d + timedelta(days=30), **{**base, "done_on": d}) == "done_on_time"
    assert status_of(today=d + timedelta(days=30),
                     **{**base, "done_on": d + timedelta(days=1)}) == "done_late"
    late = {**base, "carries": False, "review_due": d + timedelta(days=1)}
    assert status_of(today=d - timedelta(days=100), **late) == "not_brought_forward"
    assert status_of(today=d - timedelta(days=10), **late) == "not_brought_forward"
    assert status_of(today=d + timedelta(days=1), **late) == "overdue"
    # Not carried but due by the deadline anyway: nothing to bring forward.
    early = {**base, "carries": False, "review_due": d - timedelta(days=60)}
    assert status_of(today=d - timedelta(days=100), **early) == "on_track"
    # Meeting held, the cycle still open, the deadline not on it: not brought forward.
    held = {**base, "carries": False, "review_due": None, "meeting_held": True}
    assert status_of(today=d - timedelta(days=100), **held) == "not_brought_forward"
    assert status_of(today=d - timedelta(days=100), **{**held, "cycle_open": False}) == \
        "on_track"
    assert status_of(today=d - timedelta(days=50), at_risk_days=60, **base) == "due_soon"


def test_a_review_46_days_overdue_is_not_on_track():
    """Seen in use: the transfer deadline months away, the current annual review 46 days past
    its own due date with no meeting, shown as "On track". It is "Review overdue"."""
    d = date(2027, 2, 14)
    today = date(2026, 10, 1)
    overdue_review = today - timedelta(days=46)
    entry = dict(deadline=d, today=today, done_on=None, carries=True,
                 review_due=overdue_review, cycle_open=True, meeting_held=False)
    assert status_of(annual_review_due=overdue_review, **entry) == "review_overdue"
    assert status_of(annual_review_due=today, **entry) == "on_track"  # due today: not yet
    # Its meeting held: no longer overdue; nor when the transfer deadline has passed.
    assert status_of(annual_review_due=overdue_review, **{**entry, "meeting_held": True}) == \
        "on_track"
    assert status_of(annual_review_due=overdue_review,
                     **{**entry, "today": d + timedelta(days=1)}) == "overdue"


def test_the_cohort_shows_a_review_46_days_overdue_as_review_overdue(db_url):
    """The case seen in use, from the record: a Year 6 child's plan, its annual review due on 8
    October 2026 and no meeting by 23 November (46 days), the 14 February deadline 83 days
    away. The cohort said "On track"; it says "Review overdue", counted as such."""
    from tests.test_statistics import review

    today = date(2026, 11, 23)
    review(db_url, "OVERDUE46", date(2025, 10, 8), setting="Ash Primary",
           transfer=("school", 2027, None))
    review(db_url, "INTIME", date(2025, 12, 8), setting="Ash Primary",
           transfer=("school", 2027, None))
    with Session(engine_for(db_url)) as s:
        cohort = build_cohort(s, 2027, today)
    by = {e.plan_reference: e for e in cohort.entries}
    late, fine = by["OVERDUE46"], by["INTIME"]
    assert (late.annual_review_due, (today - late.annual_review_due).days) == \
        (date(2026, 10, 8), 46)
    assert (late.status, late.status_label) == ("review_overdue", "Review overdue")
    assert (fine.status, fine.status_label) == ("on_track", "On track")
    assert late.transfer.deadline == date(2027, 2, 14)
    assert cohort.counts["review_overdue"] == 1 and cohort.counts["on_track"] == 1


def test_the_year_group_moves_up_each_september():
    assert year_group_now("5", date(2026, 8, 31), date(2026, 9, 1)) is NCYear.Y6
    assert year_group_now("5", date(2026, 9, 1), date(2027, 8, 31)) is NCYear.Y5
    assert year_group_now("N1", date(2025, 10, 1), date(2027, 10, 1)) is NCYear.R
    assert year_group_now("Y6", date(2027, 1, 10), date(2026, 11, 1)) is NCYear.Y6
    assert year_group_now("Y6", date(2027, 1, 10), date(2026, 8, 31)) is NCYear.Y5  # before
    with pytest.raises(PlacementProblem, match="past Year 14"):
        year_group_now("13", date(2024, 9, 1), date(2026, 9, 1))
    with pytest.raises(PlacementProblem, match="N1 or N2"):
        year_group_now("EY", date(2026, 9, 1), date(2026, 9, 1))


def test_a_plan_row_without_a_usable_placement_says_why():
    def row(**kw) -> t.Plan:
        return t.Plan(reference="P-1", child_id="c", issued_on=date(2026, 1, 1),
                      origin="import", workflow_id="review-P-1", **kw)

    today = date(2026, 11, 23)
    cases = [
        (row(), "no placement recorded"),
        (row(nc_year="6", nc_year_as_of=today), "no type of setting"),
        (row(nc_year="6", setting_type="primary"), "no date of the year group"),
        (row(nc_year="Z", nc_year_as_of=today, setting_type="primary"),
         "not a national curriculum year"),
        (row(nc_year="6", nc_year_as_of=today, setting_type="castle"), "not a setting type"),
        (row(nc_year="9", nc_year_as_of=today, setting_type="primary"), "teaches"),
    ]
    for plan, reason in cases:
        with pytest.raises(PlacementProblem, match=reason):
            transfer_for(plan, today)
    assert transfer_for(row(nc_year="12", nc_year_as_of=today, setting_type="post16"),
                        today) is None  # a post-16 institution: no phase transfer


# --- the cohort of a year, and bringing it forward -------------------------------------------------


async def test_the_cohort_of_a_year_and_bringing_its_reviews_forward(
        ts_env, db_url, executor, capsys, monkeypatch):
    t0 = await to_next_october(ts_env)
    year = t0.year + 1
    feb14, mar30 = date(year, 2, 14), date(year, 3, 30)
    async with plans_worker(ts_env, db_url, executor) as settings:
        go = lambda **kw: start_plan(ts_env, settings, db_url, **kw)  # noqa: E731
        # Year 6 at a primary school, plan issued today: the workflow itself puts the
        # 14 February deadline on the review (its anniversary, 1 October Y, is later).
        y6 = await go(placement=where("6", t0, "primary", "Oakfield Primary"))
        # Year 6, but the plan was issued on 1 December two years before Y: its review is
        # due on 1 December Y-1, inside the transfer's Reg 18(1) window (from 1 September
        # Y-1), so that review deals with the transfer: it carries the deadline, and stays
        # due on 1 December, before it. Nothing to bring forward.
        y6_early = await go(plan_issued_on=date(year - 2, 12, 1),
                            placement=where("6", t0, "primary"))
        # Placements recorded after the plans started: the reviews do not carry the transfer.
        # Year 10 recorded in September Y-2 is Year 11 now; N1 recorded in July Y-1 (the
        # academic year before) is N2 now.
        y11 = await go()
        await y11.do("update_placement", UpdatePlacement(
            placement=where("10", date(year - 2, 9, 20), "secondary", "Hillside High")))
        n2 = await go()
        await n2.do("update_placement", UpdatePlacement(
            placement=where("N1", date(year - 1, 7, 1), "early_years", "Little Acorns")))
        y4 = await go(placement=where("4", t0, "primary"))  # moves in Y+2
        none = await go()  # no placement at all
        ey = await go(placement=where("EY", t0, "early_years"))  # nursery year not known
        gone = await go(placement=where("6", t0, "primary"))
        await gone.do("close_plan", ClosePlan(reason="moved_out_of_area", closed_on=t0))

        for p in (y6, y6_early, y4, none, ey):
            await settle(db_url, p.ref, lambda r: r.current_cycle == 1)
        for p in (y11, n2):
            await settle(db_url, p.ref, lambda r: r.nc_year is not None)
        await settle(db_url, gone.ref, lambda r: r.status == "closed")

        cohort = cohort_of(db_url, year, t0)
        # Sorted by deadline, then reference: the three 14 February ones, then 30 March.
        assert [e.plan_reference for e in cohort.entries] == \
            sorted([y6.ref, y6_early.ref, n2.ref]) + [y11.ref]
        by = {e.plan_reference: e for e in cohort.entries}
        e6, e11, en2, early = by[y6.ref], by[y11.ref], by[n2.ref], by[y6_early.ref]
        assert (e6.nc_year, e6.transfer.kind, e6.transfer.from_phase, e6.transfer.to_phase) == \
            ("6", "school", "primary", "secondary")
        assert (e6.transfer.move_date, e6.transfer.deadline, e6.transfer.deadline_citation,
                e6.transfer.citation) == (date(year, 9, 1), feb14, "Reg 18(1)(b)",
                                          "Reg 2(1)(d); Reg 18(1)(b)")
        assert e6.transfer.deadline == t0 + timedelta(days=136)  # before 15 February
        assert (e6.cycle_reference, e6.stage, e6.setting_name) == \
            (f"{y6.ref}.R1", "awaiting_meeting", "Oakfield Primary")
        assert (e6.carries_transfer, e6.review_due, e6.status) == (True, feb14, "on_track")
        assert (e11.nc_year, e11.transfer.kind, e11.transfer.from_phase,
                e11.transfer.to_phase) == ("11", "post16", "secondary", "post16")
        assert (e11.transfer.move_date, e11.transfer.deadline,
                e11.transfer.deadline_citation) == (date(year, 9, 1), mar30, "Reg 18(1)(a)")
        assert (e11.carries_transfer, e11.review_due, e11.status) == \
            (False, date(year, 10, 1), "not_brought_forward")
        assert (en2.nc_year, en2.transfer.from_phase, en2.transfer.to_phase,
                en2.transfer.deadline, en2.transfer.citation) == \
            ("N2", "early_years", "school", feb14, "Reg 2(1)(a); Reg 18(1)(b)")
        assert (en2.carries_transfer, en2.status) == (False, "not_brought_forward")
        assert (early.carries_transfer, early.review_due, early.status) == \
            (True, date(year - 1, 12, 1), "on_track")
        assert cohort.counts == {"not_brought_forward": 2, "overdue": 0, "review_overdue": 0,
                                 "due_soon": 0, "on_track": 2, "done_on_time": 0,
                                 "done_late": 0}
        assert e6.status_label == "On track" and en2.status_label == "Not brought forward"
        assert cohort.total == 4
        # Nobody dropped: the plans whose transfer is unknown are listed, with why.
        reasons = {u.plan_reference: u.reason for u in cohort.unplaced}
        assert set(reasons) == {none.ref, ey.ref}
        assert "no placement recorded" in reasons[none.ref]
        assert "N1 or N2" in reasons[ey.ref]
        assert y4.ref not in by and gone.ref not in by  # another year; a closed plan
        # The Year 4 child is in Y+2's cohort, and nobody else.
        later = cohort_of(db_url, year + 2, t0)
        assert [(e.plan_reference, e.transfer.deadline) for e in later.entries] == \
            [(y4.ref, date(year + 2, 2, 14))]
        assert cohort_of(db_url, year + 1, t0).entries == []
        assert not any(n in cohort.model_dump_json() for n in NAMES)

        # --- the CLI's list, in its three formats -------------------------------------------------
        cli_settings = settings_for(
            db_url, settings.task_queue,
            temporal_address=ts_env.client.service_client.config.target_host)
        monkeypatch.setattr("config.settings.get_settings", lambda: cli_settings)
        monkeypatch.setattr("cli.phase_transfer._real_today", lambda: t0)
        code, out = await run_cli(capsys, "phase-transfer", "list", "--year", str(year),
                                  "--today", t0.isoformat(), "--format", "csv")
        assert code == 0, out
        rows = list(csv.DictReader(io.StringIO(out)))
        assert [(r["plan_reference"], r["deadline"], r["status"]) for r in rows[:4]] == \
            [(e.plan_reference, e.transfer.deadline.isoformat(), e.status)
             for e in cohort.entries]
        assert {(r["plan_reference"], r["status"]) for r in rows[4:]} == \
            {(none.ref, "placement_unknown"), (ey.ref, "placement_unknown")}
        code, out = await run_cli(capsys, "phase-transfer", "list", "--year", str(year),
                                  "--today", t0.isoformat(), "--format", "json")
        assert code == 0 and Cohort.model_validate_json(out) == cohort
        code, out = await run_cli(capsys, "phase-transfer", "list", "--year", str(year),
                                  "--today", t0.isoformat())
        assert code == 0
        assert f"Phase transfers in {year}, as on {t0.isoformat()}: 4 plans" in out
        assert re.search(rf"{y11.ref}\s+{y11.ref}\.R1\s+11\s+secondary\s+secondary > post16\s+"
                         rf"{mar30.isoformat()} Reg 18\(1\)\(a\)\s+{year}-10-01\s+no\s+"
                         r"not_brought_forward", out), out
        assert ("not brought forward: 2; overdue: 0; review overdue: 0; due soon: 0; on track: 2; "
                    "done on time: 0; done late: 0") in out
        assert f"{none.ref}: no placement recorded" in out
        assert not any(n in out for n in NAMES)
        code, out = await run_cli(capsys, "phase-transfer", "list", "--year", "27")
        assert code == 2 and "--year '27' is not a year" in out
        code, out = await run_cli(capsys, "phase-transfer", "list", "--year", str(year),
                                  "--format", "xml")
        assert code == 2

        # --- a dry run changes nothing ---------------------------------------------------------
        code, out = await run_cli(capsys, "phase-transfer", "bring-forward", "--year",
                                  str(year), "--dry-run")
        assert code == 0, out
        assert f"would do  {n2.ref}.R1 (school transfer {year}): would be due by " \
            f"{feb14.isoformat()}" in out
        assert f"would do  {y11.ref}.R1 (post16 transfer {year})" in out
        assert "2 review(s) would be brought forward. Nothing was changed" in out
        assert await transfer_due(n2) is None and await transfer_due(y11) is None

        # --- bringing them forward: the function the CLI and the API use ----------------------
        before = {p.ref: (await p.snapshot()).version for p in (y6, y6_early)}
        with Session(engine_for(db_url)) as s:
            result = await bring_forward(client=ts_env.client, session=s, year=year, today=t0,
                                         actor="test")
        assert result.ok and result.counts == {"brought_forward": 2}
        assert {(i.plan_reference, i.cycle_reference, i.outcome, i.review_due)
                for i in result.items} == {(n2.ref, f"{n2.ref}.R1", "brought_forward", feb14),
                                           (y11.ref, f"{y11.ref}.R1", "brought_forward", mar30)}
        # The workflows carry the deadline now; the others were not touched.
        assert await transfer_due(n2) == feb14
        assert await transfer_due(y11) == mar30
        assert await transfer_due(y6_early) == feb14
        assert {p.ref: (await p.snapshot()).version for p in (y6, y6_early)} == before
        snap = await n2.snapshot()
        assert snap.view(t0).deadlines and any(
            d.key == "phase_transfer_due" and d.due == feb14 and d.citation == "Reg 18(1)(b)"
            for d in snap.view(t0).deadlines)

        for p, due in ((n2, feb14), (y11, mar30)):
            await settle(db_url, p.ref, lambda r, due=due: (r.transfer_year, r.transfer_due,
                                                            r.review_due) == (year, due, due))
        again = cohort_of(db_url, year, t0)
        assert statuses(again) == {y6.ref: "on_track", y6_early.ref: "on_track",
                                   n2.ref: "on_track", y11.ref: "on_track"}
        assert {e.plan_reference for e in again.entries if e.carries_transfer} == \
            {y6.ref, y6_early.ref, n2.ref, y11.ref}

        # --- a second run finds nothing to do: the function, then the command ------------------
        versions = {p.ref: (await p.snapshot()).version for p in (n2, y11)}
        with Session(engine_for(db_url)) as s:
            second = await bring_forward(client=ts_env.client, session=s, year=year, today=t0)
        assert (second.items, second.ok) == ([], True)
        code, out = await run_cli(capsys, "phase-transfer", "bring-forward", "--year",
                                  str(year))
        assert code == 0, out
        assert f"Nothing to do: no review in the {year} cohort needs bringing forward" in out
        assert {p.ref: (await p.snapshot()).version for p in (n2, y11)} == versions


# --- statuses as time passes ---------------------------------------------------------------------


async def test_statuses_as_the_deadlines_come_and_go(ts_env, sqlite_url, executor):
    t0 = await to_next_october(ts_env)
    year = t0.year + 1
    feb14, mar30 = date(year, 2, 14), date(year, 3, 30)
    d1 = (feb14 - t0).days  # 136: day 0 is T0
    async with plans_worker(ts_env, sqlite_url, executor) as settings:
        go = lambda **kw: start_plan(ts_env, settings, sqlite_url, **kw)  # noqa: E731
        on_time = await go(placement=where("6", t0, "primary"))
        untouched = await go(placement=where("N2", t0, "early_years"))
        amending = await go(placement=where("6", t0, "primary"))
        post16 = await go(placement=where("11", t0, "secondary"))
        for p in (on_time, untouched, amending, post16):
            assert await transfer_due(p) is not None  # all carried by the workflow itself

        # on_time: meeting on day 60, maintained on day 70, well before 14 February.
        await hold_on_time(on_time, 60)
        await on_time.go_to(70)
        await on_time.do("decide_review", DecideReview(decision="maintain",
                                                       decided_on=on_time.day(70)))
        # amending: meeting on day 100; amendments proposed on day 105; no amended plan yet.
        await hold_on_time(amending, 100)
        await amending.go_to(105)
        await amending.do("decide_review", DecideReview(decision="amend",
                                                        decided_on=amending.day(105)))

        # 30 days before 14 February.
        await on_time.go_to(d1 - 30)
        await settle(sqlite_url, on_time.ref, lambda r: r.current_cycle == 2)
        await settle_review(sqlite_url, f"{amending.ref}.R1", lambda r: r.decision == "amend")
        today = on_time.day(d1 - 30)
        cohort = cohort_of(sqlite_url, year, today)
        assert statuses(cohort) == {
            on_time.ref: "done_on_time",  # R1 carried the transfer, maintained on day 70
            untouched.ref: "due_soon",  # 30 days to go, no meeting held
            amending.ref: "on_track",  # its meeting has been held
            post16.ref: "on_track",  # 30 March: 73 or 74 days to go
        }
        done = next(e for e in cohort.entries if e.plan_reference == on_time.ref)
        assert (done.done_by, done.done_on) == (f"{on_time.ref}.R1", on_time.day(70))
        assert done.cycle_reference == f"{on_time.ref}.R2"  # the next cycle is current
        assert next(e.days_left for e in cohort.entries if e.plan_reference == post16.ref) == \
            (mar30 - today).days

        # 15 February, the day after the last day (Reg 18(1)(b) says "before 15 February"):
        # the two that did not finish are overdue.
        await on_time.go_to(d1 + 1)
        cohort = cohort_of(sqlite_url, year, on_time.day(d1 + 1))
        assert statuses(cohort) == {on_time.ref: "done_on_time", untouched.ref: "overdue",
                                    amending.ref: "overdue", post16.ref: "on_track"}
        # 30 March: on track 43 days before, due soon from 42 days before, overdue on 31 March.
        at_risk_from = (mar30 - timedelta(days=42) - t0).days
        await on_time.go_to(at_risk_from)
        assert statuses(cohort_of(sqlite_url, year, on_time.day(at_risk_from - 1)))[
            post16.ref] == "on_track"
        cohort = cohort_of(sqlite_url, year, on_time.day(at_risk_from))
        assert statuses(cohort)[post16.ref] == "due_soon"
        assert cohort.counts == {"not_brought_forward": 0, "overdue": 2, "review_overdue": 0,
                                 "due_soon": 1, "on_track": 0, "done_on_time": 1,
                                 "done_late": 0}
        assert statuses(cohort_of(sqlite_url, year, mar30 + timedelta(days=1)))[
            post16.ref] == "overdue"
        # An amended plan issued after the deadline: done, but late.
        await amending.do("issue_amended_plan", RecordDate(on=amending.day(at_risk_from)))
        await settle(sqlite_url, amending.ref, lambda r: r.current_cycle == 2)
        assert statuses(cohort_of(sqlite_url, year, on_time.day(at_risk_from)))[
            amending.ref] == "done_late"


async def test_a_transfer_is_reviewed_once_and_an_early_meeting_carries_it(
        ts_env, sqlite_url, executor):
    """Reg 18(1): the review "within 12 months of" the move deals with the transfer. A cycle
    whose review falls due in that window carries it; once a cycle has dealt with it the next
    does not impose the same 15 February again; a meeting held before the window opens is not
    that review, so the transfer is carried on to the next cycle and does not count as done."""
    t0 = await to_next_october(ts_env)
    async with plans_worker(ts_env, sqlite_url, executor) as settings:
        go = lambda **kw: start_plan(ts_env, settings, sqlite_url, **kw)  # noqa: E731
        # Year 6 now: moves in September t0.year + 1; the window opened on 1 September t0.year.
        reviewed = await go(placement=where("6", t0, "primary"))
        # Year 5 now: moves in September t0.year + 2; its window opens on 1 September
        # t0.year + 1, and its review falls due on 11 September t0.year + 1, inside it.
        early = await go(placement=where("5", t0, "primary"),
                         plan_issued_on=t0 - timedelta(days=20))
        assert await transfer_due(reviewed) == date(t0.year + 1, 2, 14)
        assert await transfer_due(early) == date(t0.year + 2, 2, 14)

        await hold_on_time(reviewed, 60)
        await reviewed.go_to(70)
        await reviewed.do("decide_review", DecideReview(decision="maintain",
                                                        decided_on=reviewed.day(70)))
        # The early plan's meeting is in June t0.year + 1, before its window opens.
        meeting = (date(t0.year + 1, 6, 10) - t0).days
        await hold_on_time(early, meeting)
        await early.go_to(meeting + 5)
        await early.do("decide_review", DecideReview(decision="maintain",
                                                     decided_on=early.day(meeting + 5)))
        await early.go_to(meeting + 6)
        await settle(sqlite_url, early.ref, lambda r: r.current_cycle == 2)
        await settle(sqlite_url, reviewed.ref, lambda r: r.current_cycle == 2)

        second = await reviewed.snapshot()
        assert second.cycle == 2 and second.milestone("phase_transfer_due") is None
        carried = await early.snapshot()
        assert carried.cycle == 2
        assert carried.milestone("phase_transfer_due").due == date(t0.year + 2, 2, 14)
        with Session(engine_for(sqlite_url)) as s:
            r1, done = (s.exec(select(t.Milestone).where(
                t.Milestone.case_reference == f"{p.ref}.R1",
                t.Milestone.key == "phase_transfer_due")).one() for p in (early, reviewed))
            kinds = [e.kind for e in s.exec(select(t.CaseEvent).where(
                t.CaseEvent.case_reference == f"{early.ref}.R1"))]
        assert (r1.applicable, r1.done_on) == (False, None)
        assert "review.phase_transfer_carried" in kinds
        assert (done.applicable, done.done_on) == (True, reviewed.day(70))

        today = early.day(meeting + 6)
        assert statuses(cohort_of(sqlite_url, t0.year + 2, today)) == {early.ref: "on_track"}
        assert statuses(cohort_of(sqlite_url, t0.year + 1, today)) == {reviewed.ref: "done_on_time"}


# --- the API and the page, over HTTP -------------------------------------------------------------


def assert_accessible(html: str) -> None:
    """What a test can see of WCAG 2.2 AA here: one h1, headings that never skip a level after
    it, a scope on every table header, a caption on every table, a label for every field, and
    a status never shown by colour alone (every tag has text)."""
    levels = [int(x) for x in re.findall(r"<h([1-6])[\s>]", html)]
    assert levels.count(1) == 1, levels
    after = levels[levels.index(1):]
    assert all(b <= a + 1 for a, b in zip(after, after[1:])), levels
    assert all("scope=" in h for h in re.findall(r"<th\b[^>]*>", html))
    assert html.count("<table") == html.count("<caption")
    for field_id in re.findall(r"<input\b(?![^>]*type=\"hidden\")[^>]*\bid=\"([^\"]+)\"", html):
        assert f'for="{field_id}"' in html, field_id
    for tag in re.findall(r"<strong class=\"govuk-tag[^\"]*\">\s*(.*?)\s*</strong>", html, re.S):
        assert tag.strip(), "a tag without text"
    assert '<html lang="en"' in html


async def test_the_api_and_the_page(ts_env, sqlite_url, executor, capsys, monkeypatch):
    t0 = await to_next_october(ts_env)
    year = t0.year + 1
    feb14 = date(year, 2, 14)
    monkeypatch.setattr("api.cohort.today", lambda: t0)  # the API's clock is the workflows'
    async with plans_worker(ts_env, sqlite_url, executor) as settings:
        go = lambda **kw: start_plan(ts_env, settings, sqlite_url, **kw)  # noqa: E731
        carried = await go(placement=where("6", t0, "primary", "Oakfield Primary"))
        n2 = await go()
        await n2.do("update_placement", UpdatePlacement(placement=where("N2", t0, "early_years")))
        # A review already amending: the workflow will not take the transfer now.
        amending = await go(origin="import", plan_issued_on=t0 - timedelta(days=400),
                            last_review_on=t0 - timedelta(days=40),
                            resume="amending", amendments_sent_on=t0 - timedelta(days=20))
        await amending.do("update_placement",
                          UpdatePlacement(placement=where("6", t0, "primary")))
        none = await go()
        for p in (n2, amending):
            await settle(sqlite_url, p.ref, lambda r: r.nc_year is not None)
        for p in (carried, none):
            await settle(sqlite_url, p.ref, lambda r: r.current_cycle == 1)

        async with serve_api(settings, ts_env.client) as http:
            r = await http.get("/api/phase-transfers", params={"year": year})
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["year"] == year and body["today"] == t0.isoformat()
            got = {e["plan_reference"]: (e["status"], e["transfer"]["deadline"],
                                         e["transfer"]["deadline_citation"])
                   for e in body["entries"]}
            assert got == {carried.ref: ("on_track", feb14.isoformat(), "Reg 18(1)(b)"),
                           n2.ref: ("not_brought_forward", feb14.isoformat(), "Reg 18(1)(b)"),
                           amending.ref: ("not_brought_forward", feb14.isoformat(),
                                          "Reg 18(1)(b)")}
            assert [u["plan_reference"] for u in body["unplaced"]] == [none.ref]
            assert not any(n in r.text for n in NAMES)
            for bad in ("1999", "20x7"):
                r = await http.get("/api/phase-transfers", params={"year": bad})
                assert r.status_code == 422 and "Year of transfer" in r.json()["detail"]
                assert [e["field"] for e in r.json()["errors"]] == ["year"]
            r = await http.get("/api/phase-transfers",
                               params={"year": year, "today": (feb14 + timedelta(days=1))
                                       .isoformat()})
            assert {e["status"] for e in r.json()["entries"]} == {"overdue"}
            spec = (await http.get("/openapi.json")).json()["paths"]
            assert spec["/api/phase-transfers"]["get"]["tags"] == ["reviews"]
            assert spec["/api/phase-transfers/bring-forward"]["post"]["tags"] == ["reviews"]
            assert "/phase-transfers" not in spec

            # The page: the cohort, its counts, the form; nothing the law forbids showing.
            r = await http.get("/phase-transfers", params={"year": year})
            assert r.status_code == 200, r.text
            html = r.text
            assert_accessible(html)
            assert f"Phase transfers in {year}" in html
            for ref in (carried.ref, n2.ref, amending.ref, none.ref):
                assert f'href="/plans/{ref}"' in html
            flat = re.sub(r"\s+", " ", html)
            assert flat.count('govuk-tag--orange"> Not brought forward </strong> </td>') == 2
            assert flat.count('govuk-tag--blue"> On track </strong> </td>') == 1
            counts = dict(re.findall(r'govuk-tag--\w+"> ([A-Za-z ]+?) </strong> </th> <td '
                                     r'class="govuk-table__cell govuk-table__cell--numeric">'
                                     r'(\d+)</td>', flat))
            assert counts == {"Not brought forward": "2", "Overdue": "0", "Review overdue": "0",
                              "Due soon": "0", "On track": "1", "Done on time": "0",
                              "Done late": "0"}
            assert "Bring forward 2 reviews" in html
            assert 'action="/phase-transfers/bring-forward"' in html
            assert "no placement recorded" in html.lower()
            assert "14 February " + str(year) in html and "Reg 18(1)(b)" in html
            assert "before 15 February" in html  # what the Regulations say, in words
            assert 'href="/phase-transfers" aria-current="true"' in html  # the navigation
            assert not any(n in html for n in NAMES)
            # Without a year: this academic year's cohort.
            r = await http.get("/phase-transfers")
            assert r.status_code == 200 and f"Phase transfers in {year}" in r.text
            r = await http.get("/phase-transfers", params={"year": "next"})
            assert r.status_code == 422
            assert "There is a problem" in r.text and 'href="#year"' in r.text
            assert "Year of transfer must be a year" in r.text
            assert_accessible(r.text)

            # The form: bring forward, 303 back to the page with a banner.
            r = await http.post("/phase-transfers/bring-forward", data={"year": str(year)})
            assert r.status_code == 303, r.text
            location = r.headers["location"]
            assert location.startswith(f"/phase-transfers?year={year}&brought=1&already=0"
                                       f"&failed=1&failed_refs={amending.ref}")
            assert await transfer_due(n2) == feb14
            assert await transfer_due(amending) is None
            r = await http.get(location)
            assert r.status_code == 200
            flat = re.sub(r"\s+", " ", r.text)
            assert "1 review brought forward." in flat
            assert "Some reviews were not brought forward" in flat
            assert "1 review was not brought forward" in flat
            assert f'<a class="govuk-link" href="/plans/{amending.ref}">' in r.text
            assert_accessible(r.text)
            r = await http.post("/phase-transfers/bring-forward", data={"year": "x"})
            assert r.status_code == 422 and "Year of transfer must be a year" in r.text

            # The API: the one left is refused by the workflow, which says why.
            await settle(sqlite_url, n2.ref, lambda r: r.transfer_year == year)
            r = await http.post("/api/phase-transfers/bring-forward", json={"year": year})
            assert r.status_code == 200, r.text
            out = r.json()
            assert out["ok"] is False and out["counts"] == {"rejected": 1}
            [item] = out["items"]
            assert (item["plan_reference"], item["outcome"]) == (amending.ref, "rejected")
            assert "cannot be done while the review is at the stage “Amending”" in \
                item["message"]
            r = await http.post("/api/phase-transfers/bring-forward",
                                json={"year": year, "dry_run": True})
            assert [i["outcome"] for i in r.json()["items"]] == ["would_bring_forward"]
            r = await http.post("/api/phase-transfers/bring-forward", json={"year": 1999})
            assert r.status_code == 422

        # The command says the same, and exits 1.
        cli_settings = settings_for(
            sqlite_url, settings.task_queue,
            temporal_address=ts_env.client.service_client.config.target_host)
        monkeypatch.setattr("config.settings.get_settings", lambda: cli_settings)
        monkeypatch.setattr("cli.phase_transfer._real_today", lambda: t0)
        code, out = await run_cli(capsys, "phase-transfer", "bring-forward", "--year",
                                  str(year))
        assert code == 1, out
        assert f"rejected  {amending.ref}.R1 (school transfer {year}): " in out
        assert "0 brought forward, 0 already done, 1 rejected, 0 failed." in out


def test_every_status_has_a_label_and_a_tag():
    from api.cohort import STATUS_TAGS
    from store.cohort import STATUS_LABELS

    assert set(STATUSES) == set(STATUS_LABELS) == set(STATUS_TAGS)
