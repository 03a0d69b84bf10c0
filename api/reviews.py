"""The annual review API: each step of a review cycle, and the plans a council maintains.

A review cycle is a case of kind "review" whose reference is its plan's with ``.R<cycle>``
(``EHC-7QK2-M4TD.R2``). Its steps are POST routes on the cycle, built like the assessment's
(``api.cases._step``) and run as updates of the plan's review workflow. A step is taken only
on the plan's current cycle: an earlier cycle is over (409) and a later one does not exist yet
(404), whatever its reference. Advice for a review is requested and recorded through the same
routes as an assessment's (``/advice-requests``, ``/advice/{key}/received``); the case itself
is read with ``GET /api/cases/{reference}``.

The plans list is for managers: it never carries the child's name. ``with_child=true`` adds
the given name and the family name's initial, as the professionals' advice page shows them.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import func
from sqlmodel import Session, select
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from api.cases import (
    CaseOut,
    SessionDep,
    _act,
    _step,
    get_client,
    read_case,
    today,
)
from api.errors import ApiError
from models import tables as t
from models.schemas import (
    CaseView,
    ClosePlan,
    DecideReview,
    HoldMeeting,
    RecordDate,
    ReviewAction,
    ReviewSnapshot,
    SetMeeting,
    SetPhaseTransfer,
    SetPost16Move,
    UpdatePlacement,
    review_reference,
)
from statutory import days_overdue

router = APIRouter(prefix="/api", tags=["reviews"])


def split_cycle(reference: str) -> tuple[str, int] | None:
    """``EHC-X.R2`` -> (``EHC-X``, 2); None for anything that is not a cycle's reference."""
    plan, dot, cycle = reference.rpartition(".R")
    if not dot or not plan or not cycle.isdigit():
        return None
    return plan, int(cycle)


# --- the steps of a review cycle ------------------------------------------------------------------


# Each action's route under /api/cases/{reference}/, for the case page to name.
ACTION_PATHS: dict[str, str] = {
    ReviewAction.REQUEST_ADVICE.value: "advice-requests",
    ReviewAction.RECORD_ADVICE.value: "advice/{key}/received",
}


def _review_step(path: str, action: ReviewAction, model: type[BaseModel], summary: str) -> None:
    _step(path, action, model, summary, on=router)
    ACTION_PATHS[action.value] = path


_review_step("meeting", ReviewAction.SET_MEETING, SetMeeting,
             "Set the review meeting, or move it (Reg 20)")
_review_step("invitations", ReviewAction.RECORD_INVITATIONS, RecordDate,
             "Record the invitations to the meeting sent, 2 weeks ahead (Reg 20(1)-(3))")
_review_step("advice-circulated", ReviewAction.RECORD_CIRCULATED, RecordDate,
             "Record the advice and reports circulated, 2 weeks ahead (Reg 20(4))")
_review_step("meeting-held", ReviewAction.HOLD_MEETING, HoldMeeting,
             "Record the review meeting held, with how each outcome is going")
_review_step("review-report", ReviewAction.RECORD_REPORT, RecordDate,
             "Record the review report sent, within 2 weeks of the meeting (Reg 20(7)-(8))")
_review_step("cease-consultation", ReviewAction.CONSULT_ON_CEASING, RecordDate,
             "Record the family and the setting consulted on ceasing the plan (Reg 31)")
_review_step("review-decision", ReviewAction.DECIDE, DecideReview,
             "Record the LA's decision to maintain, amend or cease, within 4 weeks of the "
             "meeting (Reg 20(10)); for 'amend', the day the proposals were sent (Reg 22(2))")
_review_step("amendment-comments", ReviewAction.RECORD_AMENDMENT_COMMENTS, RecordDate,
             "Record the family's comments on the proposed amendments (Reg 22(2))")
_review_step("amended-plan", ReviewAction.ISSUE_AMENDED_PLAN, RecordDate,
             "Record the final amended plan issued, within 8 weeks of the proposals "
             "(Reg 22(3))")
_review_step("not-amended", ReviewAction.DECIDE_NOT_TO_AMEND, RecordDate,
             "Record the decision not to amend the plan after all (Reg 22(4))")
_review_step("cessation", ReviewAction.CEASE_PLAN, RecordDate,
             "Record the plan ceased (Reg 30)")
_review_step("plan-closure", ReviewAction.CLOSE_PLAN, ClosePlan,
             "Close the plan (moved out of area, over 25, left education at 19 or over)")
_review_step("placement", ReviewAction.UPDATE_PLACEMENT, UpdatePlacement,
             "Record where the child is: year group and setting")
_review_step("phase-transfer", ReviewAction.SET_PHASE_TRANSFER, SetPhaseTransfer,
             "Bring a phase-transfer review forward: this cycle must end by 15 February or "
             "31 March of the transfer year (Reg 18(1))")
_review_step("post16-move", ReviewAction.SET_POST16_MOVE, SetPost16Move,
             "Record a move to another post-16 institution at another time of year: this cycle "
             "must end at least 5 months before it (Reg 18(2))")

# The advice steps are the assessment's routes (api.cases): the same update names.
ADVICE_ACTIONS = (ReviewAction.REQUEST_ADVICE, ReviewAction.RECORD_ADVICE,
                  ReviewAction.REPORT_ADVICE_DELAY)


# --- plans ----------------------------------------------------------------------------------------


class TransferOut(BaseModel):
    kind: str = Field(description="school | post16")
    year: int = Field(description="the calendar year of the transfer")
    due: date | None = Field(None, description="15 February (school) or 31 March (post-16) "
                             "of that year (Reg 18(1))")


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


@router.get("/plans", response_model=PlanList, summary="List EHC plans by when their review "
            "is due", description="For managers: no names, unless with_child=true adds the "
            "given name and the family name's initial. Sorted by review_due, soonest first.")
def plans(
    session: SessionDep,
    status: Literal["active", "ceased", "closed", "all"] = "active",
    due_before: Annotated[date | None, Query(
        description="only reviews due before this day (YYYY-MM-DD)")] = None,
    transfer_year: Annotated[int | None, Query(
        ge=2014, le=2100, description="only plans with a phase transfer in this year")] = None,
    overdue: Annotated[bool, Query(description="only reviews past their due date")] = False,
    with_child: bool = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> PlanList:
    return list_plans(session, status, due_before, transfer_year, overdue, with_child,
                      limit, offset)


def unknown_plan(reference: str) -> ApiError:
    hint = "check the reference (GET /api/plans lists the plans)"
    parts = split_cycle(reference)
    if parts is not None:
        hint = f"{reference} is a review cycle: its plan is {parts[0]}"
    return ApiError(404, f"No plan has the reference {reference!r}; {hint}", "unknown_plan")


async def read_plan(reference: str, session: Session, client: Client | None) -> PlanOut:
    """The plan, every cycle in the record, and the current cycle as its case page shows it.
    Without Temporal (``client`` None) an open current cycle is left out."""
    plan = session.get(t.Plan, reference)
    if plan is None:
        raise unknown_plan(reference)
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
            current = await read_case(current_ref, session, client)  # type: ignore[arg-type]
        except ApiError as exc:
            if exc.status != 404:
                raise
    return PlanOut(**_summary(plan, today(), issued_on=plan.issued_on, origin=plan.origin,
                              source_case_reference=plan.source_case_reference,
                              ended_on=plan.ended_on, cycles=cycles, current=current))


@router.get("/plans/{reference}", response_model=PlanOut,
            summary="A plan, its review cycles, and the current cycle's live state",
            responses={404: {"description": "no plan has this reference"}})
async def plan(reference: str, request: Request, session: SessionDep) -> PlanOut:
    client = request.app.state.temporal
    if client is None:
        plan_row = session.get(t.Plan, reference)
        if plan_row is not None and plan_row.status == "active":
            client = get_client(request)  # 503: the current cycle's live state is needed
    return await read_plan(reference, session, client)
