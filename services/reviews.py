"""Starting a plan's annual reviews: after an assessment issues its final plan (and, later,
for each plan imported from a council's caseload).

``PlanStarter.start_plan_review`` (the activity of the same name) reads what the review workflow needs from the database (only the child's fifth
birthday, for the shorter cycle of the under-fives; never a name) and starts the workflow
``review-<plan reference>``. Starting is idempotent: an existing workflow with that ID is
left as it is, so a retried activity or a replayed assessment never starts a second one.
"""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Literal

from pydantic import BaseModel, Field
from sqlalchemy import func
from sqlmodel import Session, select
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from store import tables as t
from store.db import engine_for
from domain.case import PlanIssued, ReviewPolicy, StartReview
from config.settings import Settings
from domain.identifiers import review_reference, review_workflow_id, split_cycle
from services.cases import CaseOut, read_case
from services.clock import today
from services.errors import ServiceError
from services.temporal import refusal
from statutory import days_overdue
from workflows.review import ReviewWorkflow


def fifth_birthday(born: date) -> date:
    try:
        return born.replace(year=born.year + 5)
    except ValueError:  # born on 29 February
        return date(born.year + 5, 3, 1)


class PlanStarter:
    def __init__(self, client: Client, settings: Settings) -> None:
        self.client, self.settings = client, settings
        self.engine = engine_for(settings.db_url)

    def _born(self, child_id: str) -> date | None:
        with Session(self.engine) as s:
            child = s.get(t.Child, child_id)
            return child.date_of_birth if child else None

    async def start(self, start: StartReview, *, existing_ok: bool = True) -> str:
        """Start the plan's review workflow. A plan that already has one (running or ended)
        keeps it: with ``existing_ok`` that is success, otherwise it raises
        ``WorkflowAlreadyStartedError`` (the import reports it as already imported)."""
        handle = await self.client.start_workflow(
            ReviewWorkflow.run, start, id=review_workflow_id(start.plan_reference),
            task_queue=self.settings.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING if existing_ok
            else WorkflowIDConflictPolicy.FAIL,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )
        return handle.id

    async def start_plan_review(self, plan: PlanIssued) -> str:
        born = await asyncio.to_thread(self._born, plan.child_id)
        under_five = fifth_birthday(born) if born else None
        policy = ReviewPolicy(due_soon_days=self.settings.due_soon_days,
                              under_five_months=self.settings.under_five_review_months)
        return await self.start(StartReview(
            plan_reference=plan.plan_reference, child_id=plan.child_id,
            plan_issued_on=plan.issued_on, policy=policy, origin="assessment",
            placement=plan.placement,
            under_five_until=under_five if under_five and under_five > plan.issued_on else None,
        ))


# --- the plans and their review cycles, read -------------------------------------------------------


class TransferOut(BaseModel):
    kind: str = Field(description="school | post16")
    year: int = Field(description="the calendar year of the transfer")
    due: date | None = Field(None, description="the last day on time: 14 February (school; "
                             "the Regulations say before 15 February) or 30 March (post-16; "
                             "before 31 March) of that year (Reg 18(1))")


class ChildInitial(BaseModel):
    given_name: str
    family_initial: str


class PlanSummary(BaseModel):
    reference: str
    status: str
    current_cycle: int
    current_cycle_reference: str
    review_due: date | None = Field(
        description="the current cycle's earliest open deadline: the anniversary (CFA 2014 "
        "s.44(1)), an under-five review or a phase transfer; none once the meeting is held")
    days_overdue: int | None = Field(None, description="how late the review is, if it is")
    transfer: TransferOut | None = None
    setting_name: str | None = None
    setting_type: str | None = None
    nc_year: str | None = None
    nc_year_as_of: date | None = None
    child: ChildInitial | None = Field(None, description="only with with_child=true")


class PlanList(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[PlanSummary]


class CycleOut(BaseModel):
    reference: str
    cycle: int
    stage: str
    is_open: bool
    anchor_on: date = Field(description="the plan's issue or the last review: the 12 months "
                            "count from it")
    meeting_on: date | None
    meeting_held_on: date | None
    decision: str | None
    decided_on: date | None
    amendments_sent_on: date | None
    amended_plan_issued_on: date | None
    not_amended_on: date | None
    ceased_on: date | None
    closed_on: date | None


class PlanOut(PlanSummary):
    issued_on: date
    origin: str
    source_case_reference: str | None
    ended_on: date | None
    cycles: list[CycleOut]
    current: CaseOut | None = Field(
        None, description="the current cycle as GET /api/cases/{reference} gives it; none if "
        "it is not recorded yet")


def _summary(plan: t.Plan, now: date, child: t.Child | None = None, **extra) -> dict:
    late = (plan.status == "active" and plan.review_due is not None and plan.review_due < now)
    return dict(
        reference=plan.reference, status=plan.status, current_cycle=plan.current_cycle,
        current_cycle_reference=review_reference(plan.reference, plan.current_cycle),
        review_due=plan.review_due,
        days_overdue=days_overdue(now, plan.review_due) if late else None,
        transfer=TransferOut(kind=plan.transfer_kind, year=plan.transfer_year,
                             due=plan.transfer_due)
        if plan.transfer_kind and plan.transfer_year else None,
        setting_name=plan.setting_name, setting_type=plan.setting_type, nc_year=plan.nc_year,
        nc_year_as_of=plan.nc_year_as_of,
        child=ChildInitial(given_name=child.given_name,
                           family_initial=child.family_name[:1].upper())
        if child is not None else None,
        **extra,
    )


def list_plans(
    *,
    session: Session,
    status: Literal["active", "ceased", "closed", "all"] = "active",
    due_before: date | None = None,
    transfer_year: int | None = None,
    overdue: bool = False,
    with_child: bool = False,
    limit: int = 50,
    offset: int = 0,
) -> PlanList:
    now = today()
    q = select(t.Plan)
    if status != "all":
        q = q.where(t.Plan.status == status)
    if due_before is not None:
        q = q.where(t.Plan.review_due < due_before)
    if transfer_year is not None:
        q = q.where(t.Plan.transfer_year == transfer_year)
    if overdue:
        q = q.where(t.Plan.review_due < now)
    total = session.exec(select(func.count()).select_from(q.subquery())).one()
    # Soonest due first; plans with nothing due (meeting held, plan ended) last, on both
    # databases (SQLite puts NULL first, PostgreSQL last).
    plans = session.exec(q.order_by(t.Plan.review_due.is_(None),  # type: ignore[union-attr]
                                    t.Plan.review_due, t.Plan.reference)
                         .offset(offset).limit(limit)).all()
    children: dict[str, t.Child] = {}
    if with_child and plans:
        children = {c.id: c for c in session.exec(select(t.Child).where(
            t.Child.id.in_({p.child_id for p in plans})))}  # type: ignore[attr-defined]
    return PlanList(total=total, limit=limit, offset=offset, items=[
        PlanSummary(**_summary(p, now, children.get(p.child_id))) for p in plans])


def unknown_plan(reference: str) -> ServiceError:
    hint = "check the reference (GET /api/plans lists the plans)"
    parts = split_cycle(reference)
    if parts is not None:
        hint = f"{reference} is a review cycle: its plan is {parts[0]}"
    return ServiceError(404, f"No plan has the reference {reference!r}; {hint}", "unknown_plan")


async def read_plan(*, session: Session, client: Client | None, reference: str) -> PlanOut:
    """The plan, every cycle in the record, and the current cycle as its case page shows it.
    An active plan's current cycle is live in its workflow: without Temporal (``client``
    None) that is a 503."""
    plan = session.get(t.Plan, reference)
    if plan is None:
        raise unknown_plan(reference)
    if client is None and plan.status == "active":
        raise refusal(acting=False)
    rows = session.exec(select(t.Review, t.Case)
                        .where(t.Review.plan_reference == reference,
                               t.Case.reference == t.Review.case_reference)
                        .order_by(t.Review.cycle)).all()
    cycles = [CycleOut(
        reference=r.case_reference, cycle=r.cycle, stage=c.stage, is_open=c.is_open,
        anchor_on=r.anchor_on, meeting_on=r.meeting_on, meeting_held_on=r.meeting_held_on,
        decision=r.decision, decided_on=r.decided_on, amendments_sent_on=r.amendments_sent_on,
        amended_plan_issued_on=r.amended_plan_issued_on, not_amended_on=r.not_amended_on,
        ceased_on=r.ceased_on, closed_on=c.closed_on) for r, c in rows]
    current_ref = review_reference(reference, plan.current_cycle)
    row = session.get(t.Case, current_ref)
    current = None
    if client is not None or (row is not None and not row.is_open):
        try:
            current = await read_case(session=session, client=client,  # type: ignore[arg-type]
                                        reference=current_ref)
        except ServiceError as exc:
            if exc.status != 404:
                raise
    return PlanOut(**_summary(plan, today(), issued_on=plan.issued_on, origin=plan.origin,
                              source_case_reference=plan.source_case_reference,
                              ended_on=plan.ended_on, cycles=cycles, current=current))
