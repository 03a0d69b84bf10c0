"""The annual review API: each step of a review cycle, and the plans a council maintains.

A review cycle is a case of kind "review" whose reference is its plan's with ``.R<cycle>``
(``EHC-7QK2-M4TD.R2``). Its steps are POST routes on the cycle, built like the assessment's
(``api.cases.step_route``) and run as updates of the plan's review workflow. A step is taken only
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

from statutory.phase import FIRST_TRANSFER_YEAR, LAST_TRANSFER_YEAR
from api.cases import step_route
from api.deps import OffsetQ, SessionDep
from api.problems import ASKS_ENGINE
from domain.case import (
    ClosePlan,
    DecideReview,
    HoldMeeting,
    RecordDate,
    ReviewAction,
    SetMeeting,
    SetPhaseTransfer,
    SetPost16Move,
    UpdatePlacement,
)
from services import reviews
from services.reviews import PlanList, PlanOut

router = APIRouter(prefix="/api", tags=["reviews"])


def split_cycle(reference: str) -> tuple[str, int] | None:
    """``EHC-X.R2`` -> (``EHC-X``, 2); None for anything that is not a cycle's reference."""
    plan, dot, cycle = reference.rpartition(".R")
    if not dot or not plan or not cycle.isdecimal():
        return None
    return plan, int(cycle)


# --- the steps of a review cycle ------------------------------------------------------------------


# Each action's route under /api/cases/{reference}/, for the case page to name.
ACTION_PATHS: dict[str, str] = {
    ReviewAction.REQUEST_ADVICE.value: "advice-requests",
    ReviewAction.RECORD_ADVICE.value: "advice/{key}/received",
}


def _review_step(path: str, action: ReviewAction, model, summary: str) -> None:
    step_route(router, path, action, model, summary)
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
             "Bring a phase-transfer review forward: this cycle must end before 15 February "
             "(by 14 February) or before 31 March (by 30 March) of the transfer year "
             "(Reg 18(1))")
_review_step("post16-move", ReviewAction.SET_POST16_MOVE, SetPost16Move,
             "Record a move to another post-16 institution at another time of year: this cycle "
             "must end at least 5 months before it (Reg 18(2))")

# The advice steps are the assessment's routes (api.cases): the same update names.
ADVICE_ACTIONS = (ReviewAction.REQUEST_ADVICE, ReviewAction.RECORD_ADVICE,
                  ReviewAction.REPORT_ADVICE_DELAY)


# --- plans ----------------------------------------------------------------------------------------


@router.get("/plans", response_model=PlanList, summary="List EHC plans by when their review "
            "is due", description="For managers: no names, unless with_child=true adds the "
            "given name and the family name's initial. Sorted by review_due, soonest first.")
def plans(
    session: SessionDep,
    status: Literal["active", "ceased", "closed", "all"] = "active",
    due_before: Annotated[date | None, Query(
        description="only reviews due before this day (YYYY-MM-DD)")] = None,
    transfer_year: Annotated[int | None, Query(
        ge=FIRST_TRANSFER_YEAR, le=LAST_TRANSFER_YEAR,
        description="only plans with a phase transfer in this year")] = None,
    overdue: Annotated[bool, Query(description="only reviews past their due date")] = False,
    with_child: bool = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: OffsetQ = 0,
) -> PlanList:
    return reviews.list_plans(session=session, status=status, due_before=due_before,
                              transfer_year=transfer_year, overdue=overdue,
                              with_child=with_child, limit=limit, offset=offset)


@router.get("/plans/{reference}", response_model=PlanOut,
            summary="A plan, its review cycles, and the current cycle's live state",
            responses={404: {"description": "no plan has this reference"}, **ASKS_ENGINE})
async def plan(reference: str, request: Request, session: SessionDep) -> PlanOut:
    return await reviews.read_plan(session=session, client=request.app.state.temporal,
                                   reference=reference)
