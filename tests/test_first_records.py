"""Imported plans' first records, written by the import in bulk (issue 4).

The plans import writes each plan's first record itself (``CaseRecorder.record_first_cycles``)
from ``domain.review_cycle.first_record``, and the plan's review workflow, told so by
``StartReview.imported_on``, holds the same and does not save it. These tests check, against
real parts (Temporal's time-skipping server, SQLite and PostgreSQL):

- the rows the bulk writer writes are the rows ``record_review`` writes for the same snapshot;
- ``first_record`` is what a review workflow started without ``imported_on`` records itself
  (its first save, then the alerts already due), for every kind of row in the example file;
- an imported plan's workflow holds exactly that record and saves nothing;
- an import stopped after starting the workflows and before writing their records is
  repaired by running it again, without undoing anything a workflow saved meanwhile;
- importing the same file again changes no row.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
import uuid
from datetime import date, datetime, timedelta, timezone

from sqlmodel import Session, select
from temporalio.api.enums.v1 import EventType

from services.letters import case_recorder
from store.record import CaseRecorder
from services.plan_import import import_plans, plan_start
from cli.system import upgrade_database
from store import tables as t
from store.db import engine_for
from services.plan_file import validate_file
from domain.review_cycle import begin_cycle, first_record
from domain.case import ReviewSnapshot, StartReview
from statutory import london_date
from tests.conftest import settings_for
from services.plan_example import example_plans
from tests.test_import import children, new_prefix
from worker.main import build_worker
from workflows.review import ReviewWorkflow

TABLES = (t.Plan, t.Case, t.Review, t.Milestone, t.AdviceItem, t.CaseException, t.CaseEvent)


def example_as_of(day: date) -> tuple[str, str]:
    """docs/examples/plans.csv as it would read on ``day`` (``ehc import example``:
    ``services.plan_example``), with its own plan-reference and person-id prefix."""
    prefix = new_prefix("F")
    rows = list(csv.DictReader(io.StringIO(example_plans(day))))
    for row in rows:
        row["plan_reference"] = re.sub(r"^EHC-", f"{prefix}-", row["plan_reference"])
        row["council_person_id"] = f"{prefix}{row['council_person_id']}"
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\r\n")
    w.writeheader()
    w.writerows(rows)
    return out.getvalue(), prefix


def starts(db_url: str, text: str, day: date) -> list[StartReview]:
    """The workflow inputs the import makes for the file's rows on ``day`` (a child each)."""
    report = validate_file(text, today=day)
    assert report.ok, [str(e) for e in report.errors]
    out = []
    with Session(engine_for(db_url)) as s:
        for row in report.rows:
            child = t.Child(given_name="Test", family_name="Child",
                            date_of_birth=row.date_of_birth)
            s.add(child)
            s.flush()
            out.append(plan_start(row, child.id, settings_for(db_url, "q"), day)[0])
        s.commit()
    return out


def record_of(db_url: str, refs: list[str]) -> dict[str, list[dict]]:
    """Every row of these plans, without what differs by nature between two writes of the
    same thing: row ids, ``updated_at`` and each event's ``at``."""
    cases = [f"{r}.R{n}" for r in refs for n in (1, 2)]
    out: dict[str, list[dict]] = {}
    with Session(engine_for(db_url)) as s:
        for model in TABLES:
            if model is t.Plan:
                q = select(model).where(model.reference.in_(refs))
            elif model is t.Case:
                q = select(model).where(model.reference.in_(cases))
            else:
                q = select(model).where(model.case_reference.in_(cases))
            rows = [{k: v for k, v in r.model_dump().items()
                     if k not in ("id", "pk", "updated_at", "at")} for r in s.exec(q)]
            out[model.__name__] = sorted(rows, key=repr)
    return out


def raw_record(db_url: str, refs: list[str]) -> dict[str, list[dict]]:
    """Every row of these plans exactly as stored (ids and timestamps included)."""
    cases = [f"{r}.R1" for r in refs]
    with Session(engine_for(db_url)) as s:
        return {m.__name__: sorted((r.model_dump() for r in s.exec(
            select(m).where((m.reference if m in (t.Plan, t.Case) else m.case_reference)
                            .in_(refs if m is t.Plan else cases)))), key=repr)
                for m in TABLES}


def second_database(tmp_path, name: str) -> str:
    url = f"sqlite:///{tmp_path / name}"
    upgrade_database(url)
    return url


def copy_children(src: str, dst: str) -> None:
    with Session(engine_for(src)) as a, Session(engine_for(dst)) as b:
        for c in a.exec(select(t.Child)):
            b.merge(t.Child(**c.model_dump()))
        b.commit()


async def histories(client, refs: list[str]) -> dict[str, list[str]]:
    out = {}
    for ref in refs:
        history = await client.get_workflow_handle(f"review-{ref}").fetch_history()
        out[ref] = [EventType.Name(e.event_type).removeprefix("EVENT_TYPE_")
                    for e in history.events]
    return out


async def snapshots(client, refs: list[str]) -> dict[str, ReviewSnapshot]:
    out = {}
    for ref in refs:
        handle = client.get_workflow_handle(f"review-{ref}")
        for _ in range(200):  # until the worker has taken its first task
            try:
                out[ref] = await handle.query(ReviewWorkflow.snapshot)
                break
            except Exception:  # noqa: BLE001 - not yet
                await asyncio.sleep(0.05)
        else:
            out[ref] = await handle.query(ReviewWorkflow.snapshot)
    return out


async def until_version(db_url: str, versions: dict[str, int], timeout: float = 20) -> None:
    """Wait until each plan's record has reached its version."""
    for _ in range(int(timeout / 0.05)):
        with Session(engine_for(db_url)) as s:
            held = {p.reference: p.version for p in s.exec(
                select(t.Plan).where(t.Plan.reference.in_(list(versions))))}
        if all(held.get(r, -1) >= v for r, v in versions.items()):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"records not saved: {held} (wanted {versions})")


# --- the bulk writer writes what record_review writes -------------------------------------------


def test_the_bulk_writer_writes_the_rows_record_review_writes(db_url, tmp_path):
    day = date(2026, 11, 23)
    text, prefix = example_as_of(day)
    inputs = starts(db_url, text, day)
    at = datetime(2026, 11, 23, 10, 30, tzinfo=timezone.utc)
    records = [first_record(s, day, at) for s in inputs]
    refs = [s.plan_reference for s in inputs]
    one_by_one = second_database(tmp_path, "orm.db")
    copy_children(db_url, one_by_one)

    case_recorder(db_url).record_first_cycles(records)
    orm = case_recorder(one_by_one)
    for case, events in records:
        orm.record_review(case, events)
    bulk = record_of(db_url, refs)
    assert bulk == record_of(one_by_one, refs)
    assert len(bulk["Plan"]) == len(bulk["Case"]) == len(bulk["Review"]) == 13
    assert {p["origin"] for p in bulk["Plan"]} == {"import"}
    assert len(bulk["CaseEvent"]) == sum(len(e) for _, e in records)

    # Again: nothing is added or changed (ids and timestamps included).
    before = raw_record(db_url, refs)
    case_recorder(db_url).record_first_cycles(records)
    assert raw_record(db_url, refs) == before

    # A later save by the workflow wins, and a late bulk write does not undo it.
    case, events = records[0]
    later = case.model_copy(deep=True)
    later.meeting_on = day + timedelta(days=30)
    later.version += 1
    case_recorder(db_url).record_review(later, [])
    case_recorder(db_url).record_first_cycles([records[0]])
    with Session(engine_for(db_url)) as s:
        assert s.get(t.Plan, case.plan_reference).version == later.version
        assert s.get(t.Review, case.reference).meeting_on == later.meeting_on


# --- first_record is what the workflow records without it ---------------------------------------


async def test_first_record_is_what_a_review_started_without_it_records(ts_env, sqlite_url,
                                                                        executor, tmp_path):
    """Every kind of row: the workflow's own first save, then the alerts already due, equal
    first_record for the day, row for row (event times apart)."""
    now = await ts_env.get_current_time()
    day = london_date(now)
    text, prefix = example_as_of(day)
    inputs = [s.model_copy(update={"imported_on": None}) for s in starts(sqlite_url, text, day)]
    refs = [s.plan_reference for s in inputs]
    expected = [first_record(s, day, now) for s in inputs]
    alerted = [case.plan_reference for s, (case, _) in zip(inputs, expected)
               if case.version > begin_cycle(s, day, now)[0].version]
    assert 0 < len(alerted) < 13  # some rows have alerts due at once, some have none
    settings = settings_for(sqlite_url, f"fr-{uuid.uuid4().hex[:8]}")
    async with build_worker(ts_env.client, settings, executor):
        for s in inputs:
            await ts_env.client.start_workflow(ReviewWorkflow.run, s, id=f"review-{s.plan_reference}",
                                               task_queue=settings.task_queue)
        await until_version(sqlite_url, {c.plan_reference: c.version for c, _ in expected})
        held = await snapshots(ts_env.client, refs)
    for case, _ in expected:
        assert held[case.plan_reference] == case, case.plan_reference
    bulk = second_database(tmp_path, "bulk.db")
    copy_children(sqlite_url, bulk)
    case_recorder(bulk).record_first_cycles(expected)
    assert record_of(sqlite_url, refs) == record_of(bulk, refs)


# --- an imported plan's workflow saves nothing ---------------------------------------------------


async def test_an_imported_plans_workflow_holds_its_first_record_and_saves_nothing(
        ts_env, db_url, executor):
    now = await ts_env.get_current_time()
    day = london_date(now)
    text, prefix = example_as_of(day)
    settings = settings_for(db_url, f"fr-{uuid.uuid4().hex[:8]}")
    async with build_worker(ts_env.client, settings, executor):
        result = await import_plans(text, settings=settings, client=ts_env.client, today=day)
        assert result.ok and result.summary.imported == 13
        refs = [r.plan_reference for r in result.results]
        # The records are written by the import, whether or not the worker has run yet.
        kids = {c.id for c in children(db_url)}
        with Session(engine_for(db_url)) as s:
            plans = list(s.exec(select(t.Plan).where(t.Plan.reference.in_(refs))))
        assert len(plans) == 13 and {p.child_id for p in plans} <= kids
        held = await snapshots(ts_env.client, refs)
        shapes = await histories(ts_env.client, refs)
    inputs = {ref: await _input(ts_env.client, ref) for ref in refs}
    for ref in refs:
        assert inputs[ref].imported_on == day
        case, _ = first_record(inputs[ref], day, now)
        assert held[ref] == case, ref
        # No activity: only a timer for its next alert, if one is left. (The test server
        # adds a workflow task, with nothing in it, for the queries above.)
        assert shapes[ref][:4] == ["WORKFLOW_EXECUTION_STARTED", "WORKFLOW_TASK_SCHEDULED",
                                   "WORKFLOW_TASK_STARTED", "WORKFLOW_TASK_COMPLETED"], ref
        left = any(len(m.alerts_fired) < 2 for m in case.milestones
                   if m.done_on is None and m.applicable)
        # The patch of Reg 18(1)'s last day (workflows/review.py) records its marker, and
        # Temporal's search attribute of patches, once: neither is an activity.
        patch = ["MARKER_RECORDED", "UPSERT_WORKFLOW_SEARCH_ATTRIBUTES"]
        assert [k for k in shapes[ref] if k in patch] == patch, (ref, shapes[ref])
        assert [k for k in shapes[ref] if not k.startswith("WORKFLOW_") and k not in patch] \
            == (["TIMER_STARTED"] if left else []), (ref, shapes[ref])
    # The record is the workflow's state, row for row.
    with Session(engine_for(db_url)) as s:
        for ref in refs:
            plan, row = s.get(t.Plan, ref), s.get(t.Case, f"{ref}.R1")
            assert plan.version == row.version == held[ref].version, ref
            ms = {m.key: (m.due, m.done_on, m.alerts_fired) for m in s.exec(
                select(t.Milestone).where(t.Milestone.case_reference == f"{ref}.R1"))}
            assert ms == {m.key: (m.due, m.done_on, m.alerts_fired)
                          for m in held[ref].milestones}, ref
            seqs = list(s.exec(select(t.CaseEvent.seq).where(
                t.CaseEvent.case_reference == f"{ref}.R1").order_by(t.CaseEvent.seq)))
            assert seqs == list(range(1, held[ref].version + 1)), ref
            assert row.stage == held[ref].stage.value


# --- an interrupted import, run again --------------------------------------------------------------


async def test_an_import_stopped_before_writing_its_records_is_repaired_by_running_it_again(
        ts_env, db_url, executor, monkeypatch):
    """The import starts each workflow, then writes its record. Stopped in between, the
    workflows run but the plans are not in the record; the same import again writes them and
    reports the plans already imported. A workflow that saved meanwhile keeps what it saved
    and gets the first events it lacked: here the import is dated a week back, so the alerts
    of the week fire in the workflows' first tasks and record_review saves them."""
    now = await ts_env.get_current_time()
    day = london_date(now) - timedelta(days=7)
    text, prefix = example_as_of(day)
    settings = settings_for(db_url, f"fr-{uuid.uuid4().hex[:8]}")
    real = CaseRecorder.record_first_cycles

    def down(self, records):
        raise ConnectionError("the database went away")

    async with build_worker(ts_env.client, settings, executor):
        monkeypatch.setattr(CaseRecorder, "record_first_cycles", down)
        first = await import_plans(text, settings=settings, client=ts_env.client, today=day)
        s = first.summary
        assert not first.ok and (s.imported, s.failed) == (0, 13)
        assert all("run the import again" in (r.message or "") for r in first.results)
        refs = [r.plan_reference for r in first.results]
        held = await snapshots(ts_env.client, refs)  # the workflows run
        moved_on = {r for r, c in held.items() if c.version > first_record(
            (await _input(ts_env.client, r)), day, now)[0].version}
        assert moved_on and len(moved_on) < 13  # some saved an alert of the week themselves
        await until_version(db_url, {r: held[r].version for r in moved_on})
        with Session(engine_for(db_url)) as db:
            recorded = {p.reference for p in db.exec(
                select(t.Plan).where(t.Plan.reference.in_(refs)))}
        assert recorded == moved_on  # the others are not in the record yet

        monkeypatch.setattr(CaseRecorder, "record_first_cycles", real)
        again = await import_plans(text, settings=settings, client=ts_env.client, today=day)
        s = again.summary
        assert again.ok and (s.imported, s.already_imported, s.failed) == (0, 13, 0)
        assert all(any("first record was missing" in n for n in r.notes)
                   for r in again.results)

        with Session(engine_for(db_url)) as db:
            for ref in refs:
                plan, row = db.get(t.Plan, ref), db.get(t.Case, f"{ref}.R1")
                assert plan.version == row.version == held[ref].version, ref
                seqs = list(db.exec(select(t.CaseEvent.seq).where(
                    t.CaseEvent.case_reference == f"{ref}.R1").order_by(t.CaseEvent.seq)))
                assert seqs == list(range(1, held[ref].version + 1)), ref
                ms = {m.key: (m.due, m.alerts_fired) for m in db.exec(select(t.Milestone).where(
                    t.Milestone.case_reference == f"{ref}.R1"))}
                assert ms == {m.key: (m.due, m.alerts_fired) for m in held[ref].milestones}, ref

        # Once more: nothing to repair, nothing changed.
        before = raw_record(db_url, refs)
        third = await import_plans(text, settings=settings, client=ts_env.client, today=day)
        assert third.ok and third.summary.already_imported == 13
        assert not any("first record" in n for r in third.results for n in r.notes)
        assert raw_record(db_url, refs) == before


async def _input(client, ref: str) -> StartReview:
    history = await client.get_workflow_handle(f"review-{ref}").fetch_history()
    attrs = history.events[0].workflow_execution_started_event_attributes
    return (await client.data_converter.decode(attrs.input.payloads, [StartReview]))[0]


async def test_importing_the_same_file_again_changes_no_row(ts_env, sqlite_url, executor):
    now = await ts_env.get_current_time()
    day = london_date(now)
    text, prefix = example_as_of(day)
    settings = settings_for(sqlite_url, f"fr-{uuid.uuid4().hex[:8]}")
    async with build_worker(ts_env.client, settings, executor):
        first = await import_plans(text, settings=settings, client=ts_env.client, today=day)
        assert first.ok and first.summary.imported == 13
        refs = [r.plan_reference for r in first.results]
        await snapshots(ts_env.client, refs)  # every workflow has taken its first task
        before = raw_record(sqlite_url, refs)
        kids = sorted(c.model_dump_json() for c in children(sqlite_url))
        again = await import_plans(text, settings=settings, client=ts_env.client, today=day)
        assert again.ok and (again.summary.imported, again.summary.already_imported) == (0, 13)
        assert raw_record(sqlite_url, refs) == before
        assert sorted(c.model_dump_json() for c in children(sqlite_url)) == kids
