"""Bringing a council's existing EHC plans in: ``ehc import plans FILE.csv`` and
``POST /api/imports/plans`` (through ``import_upload``) both call ``import_plans``.

1. The file is validated first (``services.plan_file.validate_file``). A file with errors
   imports nothing, unless the caller asks for the bad rows to be skipped.
2. Each good row's child is found or added (``resolve_children``) by the one matcher of
   ``services.children``: on the council's person id (``Child.council_reference``), else on
   given name, family name and date of birth. One pass, in file order, in one process, so two
   rows of the same child never make two records.
3. Each plan's review workflow (``review-<plan reference>``) is started through
   ``PlanStarter.start``, ``concurrency`` at a time, in the state its row describes
   (``plan_start``). Starting is idempotent by plan reference: a plan already in the system
   (running or ended) is reported ``already_imported`` and not touched, so an interrupted
   import can simply be run again.
4. The import writes each started plan's first record itself (plan, review cycle, deadlines,
   events), ``RECORD_BATCH`` plans to a transaction in bulk, from the same computation the
   workflow holds (``domain.review_cycle.first_record`` as of ``today``, which the workflow's
   input carries as ``imported_on``): the workflow does not save it. The workflow is started
   first and its record written after, so a plan is never in the record without the workflow
   that keeps its deadlines. An import stopped between the two leaves workflows whose first
   record is missing; running it again writes them (from each workflow's own input) and
   reports the plans ``already_imported``. The records only ever add what is missing, so a
   later save by the workflow itself is never undone.

Nothing here logs or prints a child's name, date of birth or person id; results name plans by
reference and file line only. ``RowIssue.value`` (in the validation report) may hold personal
data: show it to the person fixing the file, never log it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import date, datetime, timedelta, timezone
from typing import Callable, Iterable, Literal, Sequence

from pydantic import BaseModel, Field
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, select
from temporalio.client import Client
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from services import allocation, children
from services.children import ChildFacts
from services.errors import ServiceError
from services.letters import case_recorder
from store.record import CaseRecorder
from services.reviews import PlanStarter, fifth_birthday
from store import tables as t
from store.db import engine_for
from services.plan_file import (
    ImportReport,
    PlanRow,
    LastReviewStage,
    RowError,
    RowIssue,
    RowWarning,
    Source,
    validate_file,
)
from domain.review_cycle import first_record
from domain.identifiers import review_workflow_id
from domain.case import (
    Event,
    Placement,
    PhaseTransferDue,
    ReviewPolicy,
    ReviewSnapshot,
    StartReview,
)
from domain.identifiers import review_reference
from config.settings import Settings
from statutory import (
    Transfer,
    next_transfer,
    phase_transfer_deadline,
    review_window_opens,
    transfer_move_date,
    transfer_window_opens,
)
from statutory.clock import deadline

log = logging.getLogger("ehc.import")

IMPORT_CONCURRENCY = 32  # workflow starts in flight at once
RECORD_BATCH = 250  # plans' first records written per transaction
CHILD_REFERENCE_MAX = 40  # Child.council_reference (the file allows 50)
SETTING_NAME_MAX = 120  # Placement.setting_name and Plan.setting_name (the file allows 200)
_CHUNK = 500  # rows per database query / commit

Progress = Callable[[int, int], None]


class TemporalUnavailable(Exception):
    """Temporal cannot be reached: nothing was imported."""


# --- what comes out ------------------------------------------------------------------------------


class TransferOut(BaseModel):
    """The phase transfer the imported cycle must be finished before (Reg 18(1))."""

    kind: Literal["school", "post16"]
    transfer_year: int
    due: date
    source: Literal["next_transfer", "year_group"] = Field(
        description="next_transfer: the row's column; year_group: worked out from nc_year and "
        "setting_type (statutory.phase.next_transfer) because the column was empty")


class RowResult(BaseModel):
    """What happened to one valid row. Names plans by reference and line only."""

    line: int
    plan_reference: str
    workflow_id: str
    outcome: Literal["created", "already_imported", "failed"]
    child: Literal["added", "matched"]
    phase_transfer: TransferOut | None = None
    notes: list[str] = Field([], description="choices the import made, and differences from "
                             "the plan already held; nothing personal")
    message: str | None = Field(None, description="why a row failed")


class ImportSummary(BaseModel):
    rows: int = Field(description="data rows in the file")
    valid: int = Field(description="rows without errors")
    imported: int = Field(description="plans whose review workflow this import started")
    already_imported: int = Field(description="plans already in the system: left as they are")
    skipped: int = Field(description="rows with errors, left out")
    failed: int = Field(description="valid rows whose workflow could not be started, or "
                        "whose record could not be written: run the import again")
    errors: int
    warnings: int
    children_added: int
    children_matched: int
    dry_run: bool = False
    seconds: float = 0.0


class ImportResult(BaseModel):
    report: ImportReport
    results: list[RowResult] = []
    summary: ImportSummary
    blocked: bool = Field(description="the file has errors, so nothing was imported")

    @property
    def ok(self) -> bool:
        """Every valid row is in (created now or before), and nothing stopped the import."""
        return not self.blocked and self.summary.failed == 0


# --- one row: the review workflow's input --------------------------------------------------------


def _anniversary(anchor: date) -> date:
    return deadline("review.review_due", anchor).due


def _review_held_by(row: PlanRow, today: date) -> date:
    """The day this cycle's review meeting is (or was) held, as far as the row says: the last
    meeting for a review still in progress, the meeting arranged, or else the latest day the
    review can be held on time (an overdue one: from today)."""
    if row.last_review_stage in (LastReviewStage.AWAITING_DECISION, LastReviewStage.AMENDING):
        assert row.last_review_on is not None
        return row.last_review_on
    if row.next_meeting_on is not None:
        return row.next_meeting_on
    return max(_anniversary(row.review_anchor), today)


def placement_for(row: PlanRow, today: date) -> tuple[Placement | None, str | None]:
    """The row's year group and setting, as of ``today``, for the review (which works out the
    later cycles' phase transfers from it, and the plan record shows it), and a note when the
    year group and setting type give no transfer though they should. None when the row has no
    year group (a child under 2, a young person of 19 or over): ``Placement`` needs one.

    Year group 'EY' is passed as it is: ``statutory.phase`` has no transfer for it, and the
    workflow treats that as none."""
    if row.nc_year is None:
        return None, None
    placement = Placement(nc_year=row.nc_year, nc_year_as_of=today,
                          setting_type=row.setting_type.value,
                          setting_name=row.setting_name[:SETTING_NAME_MAX])
    if row.nc_year == "EY":
        return placement, None
    try:
        next_transfer(row.nc_year, row.setting_type.value, today)
    except ValueError as exc:
        return placement, f"no phase transfer can be worked out from the year group: {exc}"
    return placement, None


def _year_group_transfer(row: PlanRow, today: date) -> Transfer | None:
    if row.nc_year in (None, "EY"):
        return None
    try:
        return next_transfer(row.nc_year, row.setting_type.value, today)
    except ValueError:
        return None


def choose_phase_transfer(row: PlanRow, today: date) -> tuple[TransferOut | None, list[str]]:
    """The phase transfer this (first imported) cycle must be finished before, and notes.

    Which transfer: the row's ``next_transfer`` when it is given, else the one the year group
    and setting type give (``statutory.phase.next_transfer``). The column wins because the
    council knows what the year group cannot (a three-tier area, a special school the child
    leaves at Year 6, a young person staying in the sixth form); an empty column is worked out
    because Reg 18 is a hard duty and "empty" may mean "not known" (the safe side, as in
    ``statutory.phase``).

    Whether it is this cycle's: when this cycle's review meeting falls in the transfer's Reg 18
    window (12 months before the move) or later, that meeting is the phase-transfer review and
    the cycle must end (plan amended) before 15 February / 31 March. A meeting before the window
    opens leaves the transfer to the next cycle. The meeting date is the one held (a review in
    progress), the one arranged, or else the anniversary (the latest it can be on time).
    """
    notes: list[str] = []
    computed = _year_group_transfer(row, today)
    if row.next_transfer is not None:
        pt = row.next_transfer
        kind, year, source = pt.kind, pt.year, "next_transfer"
        opens, move = transfer_window_opens(year), transfer_move_date(year)
        if computed is not None and (computed.kind, computed.transfer_year) != (kind, year):
            notes.append(f"next_transfer {pt} differs from the year group's "
                         f"({computed.from_phase.value}->{computed.to_phase.value} "
                         f"{computed.transfer_year}); the column is used")
    elif computed is not None:
        kind, year, source = computed.kind, computed.transfer_year, "year_group"
        opens, move = review_window_opens(computed), computed.move_date
    else:
        return None, notes
    due = phase_transfer_deadline(kind, year).due
    if move <= today:
        notes.append(f"the transfer of {year} has already happened (1 September {year}); "
                     "not set")
        return None, notes
    if _review_held_by(row, today) < opens:  # a later cycle's: this meeting is before the window
        if source == "next_transfer" and (computed is None or (
                computed.kind, computed.transfer_year) != (kind, year)):
            notes.append(f"next_transfer {row.next_transfer} is for a later review cycle, "
                         "which works its transfer out from the year group and setting type: "
                         "set this transfer on the plan when that cycle starts")
        return None, notes
    return TransferOut(kind=kind, transfer_year=year, due=due, source=source), notes


def plan_start(row: PlanRow, child_id: str, settings: Settings, today: date, *,
               assigned_to: str | None = None
               ) -> tuple[StartReview, TransferOut | None, list[str]]:
    """The review workflow's input for one row, the phase transfer chosen, and notes. The
    input says the import was run on ``today`` (``imported_on``): the import writes the plan's
    first record, and the workflow does not. ``assigned_to``: the name of the staff account
    the row's caseworker matched (``match_caseworkers``), for the timeline."""
    notes: list[str] = []
    placement, problem = placement_for(row, today)
    if problem:
        notes.append(problem)
    if placement is not None and len(row.setting_name) > SETTING_NAME_MAX:
        notes.append(f"setting_name is longer than {SETTING_NAME_MAX} characters; the plan "
                     f"keeps the first {SETTING_NAME_MAX}")
    transfer, transfer_notes = choose_phase_transfer(row, today)
    notes.extend(transfer_notes)
    # Under-fives (CoP 9.178): the row's cycle, else the council's; only while under five.
    months = row.under_five_cycle_months or settings.under_five_review_months
    five = fifth_birthday(row.date_of_birth)
    under_five_until = five if months and five > today else None
    resume = None
    if row.last_review_stage is LastReviewStage.AWAITING_DECISION:
        resume = "awaiting_decision"
    elif row.last_review_stage is LastReviewStage.AMENDING:
        resume = "amending"
    start = StartReview(
        plan_reference=row.plan_reference, child_id=child_id,
        plan_issued_on=row.plan_issued_on, last_review_on=row.last_review_on, cycle=1,
        under_five_until=under_five_until,
        policy=ReviewPolicy(due_soon_days=settings.due_soon_days,
                            under_five_months=months if under_five_until
                            else settings.under_five_review_months),
        meeting_on=row.next_meeting_on, placement=placement,
        phase_transfer=PhaseTransferDue(kind=transfer.kind, transfer_year=transfer.transfer_year)
        if transfer else None,
        origin="import", resume=resume,
        amendments_sent_on=row.amendments_sent_on if resume == "amending" else None,
        imported_on=today, assigned_to=assigned_to,
    )
    return start, transfer, notes


# --- who is responsible: the caseworker column ------------------------------------------------------


def _name_key(text: str) -> str:
    return " ".join(text.split()).casefold()


def match_caseworkers(db_url: str, rows: Sequence[PlanRow]
                      ) -> tuple[dict[int, t.StaffUser], list[RowWarning]]:
    """Each row's ``caseworker`` matched to an account that can hold plans (an active
    caseworker or manager, ``services.allocation.caseworkers``): by email address, else by
    full name, ignoring case and spaces. By line: the account; and a warning for each name
    that matches nobody, or more than one account. An unmatched row is still imported, with
    nobody holding it: one missing account does not hold up the rest of the file."""
    wanted = [r for r in rows if r.caseworker and r.caseworker.strip()]
    if not wanted:
        return {}, []
    with Session(engine_for(db_url)) as s:
        staff = allocation.caseworkers(session=s)
    by_email = {u.email.casefold(): u for u in staff}
    by_name: dict[str, list[t.StaffUser]] = {}
    for u in staff:
        by_name.setdefault(_name_key(u.name), []).append(u)
    matched: dict[int, t.StaffUser] = {}
    warnings: list[RowWarning] = []
    for row in wanted:
        text = row.caseworker.strip()  # type: ignore[union-attr]
        user = by_email.get(text.casefold())
        named = by_name.get(_name_key(text), [])
        if user is None and len(named) == 1:
            user = named[0]
        if user is not None:
            matched[row.line] = user
        elif named:
            warnings.append(RowWarning(
                line=row.line, column="caseworker", value=text,
                message=f"more than one staff account is called '{text}': write the "
                "caseworker's email address instead. The plan is imported without a "
                "caseworker."))
        else:
            warnings.append(RowWarning(
                line=row.line, column="caseworker", value=text,
                message=f"no staff account matches the caseworker '{text}': add them as staff "
                "(or write the email address or full name of their account), or leave the "
                "column blank. The plan is imported without a caseworker."))
    return matched, warnings


def assign_imported(db_url: str, plans: Sequence[tuple[str, str]]) -> list[str]:
    """Give each imported plan (reference, staff id), and its review cycle, to its caseworker,
    as a manager would by hand (``services.allocation.assign_plan``). The references that
    could not be given (the account was deactivated meanwhile): they stay with nobody."""
    failed: list[str] = []
    with Session(engine_for(db_url)) as s:
        for reference, staff_id in plans:
            try:
                allocation.assign_plan(session=s, reference=reference, caseworker_id=staff_id)
            except ServiceError:
                s.rollback()
                failed.append(reference)
    return failed


# --- the children --------------------------------------------------------------------------------


def _chunks(items: Sequence, size: int = _CHUNK) -> Iterable[Sequence]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def resolve_children(db_url: str, rows: Sequence[PlanRow]) -> list[tuple[str, bool, str | None]]:
    """Find or add each row's child with the one matcher (``services.children``):
    ``(child_id, added, note)`` per row, in order. Rows are resolved one after another, so
    the same child twice in a file is one record."""
    wanted = [ChildFacts(r.given_name, r.family_name, r.date_of_birth, r.council_person_id)
              for r in rows]
    with Session(engine_for(db_url), expire_on_commit=False) as s:
        return [(m.child_id, m.added, m.note) for m in children.resolve_children(s, wanted)]


def _differences(db_url: str, pairs: list[tuple[RowResult, PlanRow, str]]) -> None:
    """Notes on plans already held whose record differs from the row (the import changes
    nothing; the correction is made on the plan). Only what is not personal is named."""
    engine = engine_for(db_url)
    with Session(engine) as s:
        for chunk in _chunks(pairs):
            refs = [row.plan_reference for _, row, _ in chunk]
            held = {p.reference: p for p in s.exec(
                select(t.Plan).where(t.Plan.reference.in_(refs)))}  # type: ignore[attr-defined]
            for result, row, child_id in chunk:
                plan = held.get(row.plan_reference)
                if plan is None:
                    continue  # its workflow has not recorded it yet
                if plan.child_id != child_id:
                    result.notes.append("the plan already held is for a different child record "
                                        "than this row's: check the plan and the child")
                if plan.issued_on != row.plan_issued_on:
                    result.notes.append(f"the plan already held was issued on "
                                        f"{plan.issued_on.isoformat()}, the row says "
                                        f"{row.plan_issued_on.isoformat()}; not changed")
                if plan.setting_type and plan.setting_type != row.setting_type.value:
                    result.notes.append(f"the plan already held has setting_type "
                                        f"{plan.setting_type}, the row says "
                                        f"{row.setting_type.value}; not changed")
                if plan.setting_name and plan.setting_name != row.setting_name[:SETTING_NAME_MAX]:
                    result.notes.append("the plan already held names another setting than the "
                                        "row; not changed")


# --- the first records ---------------------------------------------------------------------------


Record = tuple[ReviewSnapshot, list[Event]]


class FirstRecords:
    """Writes the first records of the plans started (``CaseRecorder.record_first_cycles``),
    ``batch`` plans to a transaction, one transaction at a time, in a thread, while the import
    goes on starting plans. A batch that cannot be written fails its rows: their workflows are
    running, and running the import again writes the records."""

    def __init__(self, recorder: CaseRecorder, batch: int = RECORD_BATCH) -> None:
        self.recorder, self.batch = recorder, batch
        self._pending: list[tuple[RowResult, Record]] = []
        self._writes: list[asyncio.Task] = []
        self._one_at_a_time = asyncio.Lock()

    def add(self, result: RowResult, record: Record) -> None:
        self._pending.append((result, record))
        if len(self._pending) >= self.batch:
            self._flush()

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        if batch:
            self._writes.append(asyncio.create_task(self._write(batch)))

    async def _write(self, batch: list[tuple[RowResult, Record]]) -> None:
        async with self._one_at_a_time:
            try:
                await asyncio.to_thread(self.recorder.record_first_cycles,
                                        [record for _, record in batch])
            except Exception as exc:  # noqa: BLE001 - the database: reported on each row
                why = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
                log.error("plans import: %d first records not written (%s)", len(batch),
                          type(exc).__name__)
                for result, _ in batch:
                    result.outcome = "failed"
                    result.message = (f"its review workflow was started but its record could "
                                      f"not be written ({why}); run the import again to write it")

    async def close(self) -> None:
        """Write what is left, and wait for every write."""
        self._flush()
        await asyncio.gather(*self._writes)


def _without_first_events(db_url: str, refs: list[str]) -> set[str]:
    """The plans among ``refs`` whose first cycle has not got its first event in the record."""
    engine = engine_for(db_url)
    missing: set[str] = set()
    with Session(engine) as s:
        for chunk in _chunks(refs):
            cases = [review_reference(r, 1) for r in chunk]
            have = set(s.exec(select(t.CaseEvent.case_reference).where(
                t.CaseEvent.case_reference.in_(cases),  # type: ignore[attr-defined]
                t.CaseEvent.seq == 1)))
            missing.update(r for r, c in zip(chunk, cases) if c not in have)
    return missing


async def _workflow_input(client: Client, workflow_id: str) -> StartReview | None:
    """The input of the plan's review workflow (its current run)."""
    async for event in client.get_workflow_handle(workflow_id).fetch_history_events(page_size=1):
        attrs = event.workflow_execution_started_event_attributes
        found = await client.data_converter.decode(attrs.input.payloads, [StartReview])
        return found[0] if found else None
    return None


async def write_missing_first_records(client: Client, records: FirstRecords, db_url: str,
                                      already: list[RowResult]) -> int:
    """For plans already imported whose first record is not in the database (an import that
    stopped after starting their workflows and before writing their records), write it from
    the workflow's own input, as of the day that import ran. Plans whose workflow records
    itself (started by the assessment, or by an import from before ``imported_on``) are left
    to it. Returns how many were written."""
    missing = await asyncio.to_thread(_without_first_events, db_url,
                                      [r.plan_reference for r in already])
    todo = [r for r in already if r.plan_reference in missing]
    if not todo:
        return 0
    limit = asyncio.Semaphore(IMPORT_CONCURRENCY)

    async def one(result: RowResult) -> bool:
        async with limit:
            try:
                start = await _workflow_input(client, result.workflow_id)
            except RPCError as exc:
                result.outcome = "failed"
                result.message = (f"its first record is missing and its workflow could not be "
                                  f"read ({exc.status.name}); run the import again")
                return False
        if start is None or start.imported_on is None or start.cycle != 1:
            return False  # its workflow records it
        try:
            record = first_record(start, start.imported_on, datetime.now(timezone.utc))
        except ValueError as exc:  # not expected: the workflow built the same
            result.outcome, result.message = "failed", f"{type(exc).__name__}: {exc}"
            return False
        result.notes.append("its first record was missing (an earlier import stopped before "
                            "writing it): written now")
        records.add(result, record)
        return True

    written = sum(await asyncio.gather(*(one(r) for r in todo)))
    await records.close()
    return written


# --- the import ----------------------------------------------------------------------------------


def _storable(report: ImportReport) -> ImportReport:
    """Errors for what validates but the database cannot hold (a person id over 40)."""
    extra = [RowError(line=r.line, column="council_person_id", value=r.council_person_id,
                      message=f"council_person_id is longer than {CHILD_REFERENCE_MAX} "
                      "characters, which the child record cannot hold. Shorten it, or leave it "
                      "empty.")
             for r in report.rows
             if r.council_person_id and len(r.council_person_id) > CHILD_REFERENCE_MAX]
    if not extra:
        return report
    bad = {e.line for e in extra}
    errors = sorted([*report.errors, *extra], key=lambda e: (e.line or 0))
    return report.model_copy(update={"errors": errors,
                                     "rows": [r for r in report.rows if r.line not in bad]})


async def check_temporal(client: Client, timeout: float = 5.0) -> None:
    """Raise ``TemporalUnavailable`` unless Temporal answers now."""
    try:
        ok = await client.service_client.check_health(timeout=timedelta(seconds=timeout))
    except Exception as exc:  # RPCError, or a connection that was never made
        raise TemporalUnavailable(f"Temporal is not reachable: {exc}") from None
    if not ok:
        raise TemporalUnavailable("Temporal is running but not serving workflows")


_LOST = (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED)


async def import_plans(
    source: Source,
    *,
    settings: Settings,
    today: date,
    client: Client | None = None,
    skip_bad_rows: bool = False,
    dry_run: bool = False,
    concurrency: int = IMPORT_CONCURRENCY,
    progress: Progress | None = None,
    starter: PlanStarter | None = None,
) -> ImportResult:
    """Validate ``source`` (what ``validate_file`` takes), then import its plans.

    Nothing is imported when the file has errors (``blocked``), unless ``skip_bad_rows``:
    then the valid rows are. ``dry_run`` validates only. ``today`` is the council's date
    (``london_date``), for validation and the year groups. ``progress(done, total)`` is called
    as each plan is started. Raises ``TemporalUnavailable`` (before anything is written) when
    Temporal does not answer."""
    started_at = time.monotonic()
    report = _storable(await asyncio.to_thread(validate_file, source, today=today))
    # Who is responsible: the caseworker column matched to staff accounts; a name that
    # matches nobody is a warning, and that plan comes in with nobody holding it.
    holders, unmatched = await asyncio.to_thread(match_caseworkers, settings.db_url,
                                                 report.rows)
    if unmatched:
        report = report.model_copy(update={"warnings": sorted(
            [*report.warnings, *unmatched], key=lambda w: (w.line or 0))})
    rows = report.rows
    blocked = bool(report.errors) and (not skip_bad_rows or not rows)

    def summary(results: list[RowResult], **extra) -> ImportSummary:
        return ImportSummary(
            rows=report.total, valid=len(rows),
            imported=sum(r.outcome == "created" for r in results),
            already_imported=sum(r.outcome == "already_imported" for r in results),
            skipped=0 if blocked else report.total - len(rows),
            failed=sum(r.outcome == "failed" for r in results),
            errors=len(report.errors), warnings=len(report.warnings),
            children_added=sum(r.child == "added" for r in results),
            children_matched=sum(r.child == "matched" for r in results),
            seconds=round(time.monotonic() - started_at, 3), **extra)

    if blocked or dry_run or not rows:
        return ImportResult(report=report, summary=summary([], dry_run=dry_run),
                            blocked=blocked)
    if client is None:
        raise ValueError("import_plans needs a Temporal client unless dry_run")
    await check_temporal(client)
    children = await asyncio.to_thread(resolve_children, settings.db_url, rows)
    starter = starter or PlanStarter(client, settings)
    records = FirstRecords(case_recorder(settings.db_url))
    results: list[RowResult | None] = [None] * len(rows)
    done = 0
    lost: str | None = None
    queue = iter(range(len(rows)))

    async def one(i: int) -> RowResult:
        nonlocal lost
        row = rows[i]
        child_id, added, child_note = children[i]
        result = RowResult(line=row.line, plan_reference=row.plan_reference,
                           workflow_id=review_workflow_id(row.plan_reference),
                           outcome="created", child="added" if added else "matched",
                           notes=[child_note] if child_note else [])
        try:
            holder = holders.get(row.line)
            start, result.phase_transfer, notes = plan_start(
                row, child_id, settings, today,
                assigned_to=holder.name if holder is not None else None)
            result.notes.extend(notes)
            # What the workflow will hold (the same code, input and day): worked out before it
            # starts, so a row it cannot take starts nothing.
            record = first_record(start, today, datetime.now(timezone.utc))
        except ValueError as exc:  # a row the review cannot take (pydantic); not expected
            result.outcome, result.message = "failed", f"{type(exc).__name__}: {exc}"
            return result
        if lost is not None:
            result.outcome, result.message = "failed", f"not tried: {lost}"
            return result
        try:
            await starter.start(start, existing_ok=False)
        except WorkflowAlreadyStartedError:  # running or ended: the plan is in already
            result.outcome = "already_imported"
        except RPCError as exc:
            if exc.status in _LOST:
                lost = "Temporal became unreachable during the import; run it again"
            result.outcome, result.message = "failed", f"{exc.status.name}: {exc.message}"
        except Exception as exc:  # noqa: BLE001 - reported per row; the others go on
            result.outcome, result.message = "failed", f"{type(exc).__name__}: {exc}"
        else:
            records.add(result, record)  # written in bulk, after its workflow has started
        return result

    async def runner() -> None:
        nonlocal done
        for i in queue:  # shared: each runner takes the next row
            results[i] = await one(i)
            done += 1
            if progress is not None:
                progress(done, len(rows))

    await asyncio.gather(*(runner() for _ in range(max(1, min(concurrency, len(rows))))))
    await records.close()
    final = [r for r in results if r is not None]
    given = [(r, holders[r.line]) for r in final if r.outcome == "created" and r.line in holders]
    not_given = set(await asyncio.to_thread(
        assign_imported, settings.db_url, [(r.plan_reference, u.id) for r, u in given]))
    for r, u in given:
        r.notes.append(f"not assigned to {u.name}: the account can no longer hold plans"
                       if r.plan_reference in not_given else f"assigned to {u.name}")
    again = [(r, rows[i], children[i][0]) for i, r in enumerate(final)
             if r.outcome == "already_imported"]
    if again:
        await write_missing_first_records(client, records, settings.db_url,
                                          [r for r, _, _ in again])
        await asyncio.to_thread(_differences, settings.db_url, again)
    out = ImportResult(report=report, results=final, summary=summary(final), blocked=False)
    s = out.summary
    log.info("plans import: %d rows, %d imported, %d already imported, %d skipped, %d failed "
             "in %.1fs", s.rows, s.imported, s.already_imported, s.skipped, s.failed, s.seconds)
    return out


def issue_lines(report: ImportReport) -> list[str]:
    """The report as the docs show it: ``error   Line 3, column: message`` (never a value)."""
    return [f"{'error' if isinstance(i, RowError) else 'warning':<7} {i}"
            for i in sorted([*report.errors, *report.warnings],
                            key=lambda i: (i.line or 0, isinstance(i, RowWarning)))]


# --- the API's upload ------------------------------------------------------------------------------


class IssueOut(BaseModel):
    kind: str = Field(description="error (stops the import, or that row with skip_bad_rows) "
                      "or warning")
    line: int | None = Field(description="the file's line; 1 is the header; None: the file")
    column: str | None
    message: str
    value: str | None = Field(None, description="the cell as written; left out (null) when "
                              "the column is personal data (names, date of birth, person id)")
    personal: bool


class ImportOut(BaseModel):
    summary: ImportSummary
    errors: list[IssueOut]
    warnings: list[IssueOut]
    rows: list[RowResult] = Field(description="each valid row: created, already_imported or "
                                  "failed (run the import again), with notes")


class ImportProblem(BaseModel):
    detail: str
    code: str
    summary: ImportSummary
    errors: list[IssueOut]
    warnings: list[IssueOut]


def _issue(issue: RowIssue) -> IssueOut:
    return IssueOut(kind="error" if isinstance(issue, RowError) else "warning", line=issue.line,
                    column=issue.column, message=issue.message, personal=issue.personal,
                    value=None if issue.personal else issue.value)


def _unavailable() -> ServiceError:
    return ServiceError(503, "The case engine (Temporal) is not reachable; nothing was imported. "
                        "Try again shortly", "unavailable")


async def import_upload(*, source: Source, settings: Settings, today: date,
                        client: Client | None, skip_bad_rows: bool = False,
                        dry_run: bool = False) -> ImportOut | ImportProblem:
    """``import_plans`` for an uploaded file: what it did (``ImportOut``), or, for a file with
    errors that imported nothing, the ``ImportProblem`` to answer 422 with. Error and warning
    values are never given for personal columns. Raises ``ServiceError`` 503 when Temporal
    (``client`` None, unless ``dry_run``) or the database cannot be used."""
    if client is None and not dry_run:
        raise _unavailable()
    try:
        result = await import_plans(source, settings=settings, client=client, today=today,
                                    skip_bad_rows=skip_bad_rows, dry_run=dry_run)
    except TemporalUnavailable:
        raise _unavailable() from None
    except SQLAlchemyError as exc:  # not chained or logged: its text can quote the rows
        raise ServiceError(503, f"The database cannot be used ({type(exc).__name__}); plans "
                           "already started are kept, and sending the file again starts only "
                           "the rest", "unavailable") from None
    errors = [_issue(e) for e in result.report.errors]
    warnings = [_issue(w) for w in result.report.warnings]
    if result.blocked:
        s = result.summary
        return ImportProblem(
            detail=f"The file has {s.errors} error{'s' if s.errors != 1 else ''}; nothing was "
            "imported. Fix them and send it again"
            + (f", or send skip_bad_rows=true to import the {s.valid} valid rows" if s.valid
               else "") + ".",
            code="invalid_file", summary=s, errors=errors, warnings=warnings)
    return ImportOut(summary=result.summary, errors=errors, warnings=warnings,
                     rows=result.results)
