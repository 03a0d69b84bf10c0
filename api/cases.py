"""The caseworker API: start an assessment, take each step, read a case and its timeline.
Each route parses its request and calls one function of ``services.cases``."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from api.advice_portal import attachment_headers
from api.deps import (
    ActorDep,
    ClientDep,
    MAX_ROW_ID,
    IdempotencyKeyDep,
    OffsetQ,
    SessionDep,
    SettingsDep,
    StaffDep,
)
from domain.case import (
    Action,
    CaseView,
    CloseCase,
    ConsultSetting,
    DecidePlan,
    DecideToAssess,
    IssueFinalIn,
    RecordAdvice,
    RecordException,
    RecordFamilyComments,
    RecordSettingResponse,
    RequestAdvice,
    ReviewAction,
    ServeDraft,
    WithdrawException,
)
from services import cases
from services.cases import CaseOut, CaseSummary, StartAssessmentIn, StartedOut

router = APIRouter(prefix="/api", tags=["cases"])


class DateBody(BaseModel):
    actor: str | None = Field(None, max_length=120)


class ReceivedBody(DateBody):
    received_on: date


class WithdrawBody(DateBody):
    withdrawn_on: date
    reason: str = Field(min_length=3, max_length=2000)


@router.get("/cases/{reference}", response_model=CaseOut, summary="A case, with its timeline")
async def read_case(reference: str, session: SessionDep, client: ClientDep) -> CaseOut:
    return await cases.read_case(session=session, client=client, reference=reference)


@router.get("/cases", response_model=list[CaseSummary], summary="List cases")
def list_cases(
    session: SessionDep,
    stage: str | None = None,
    open_only: Annotated[bool, Query(alias="open")] = True,
    overdue: bool = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: OffsetQ = 0,
) -> list[CaseSummary]:
    return cases.list_cases(session=session, stage=stage, open_only=open_only,
                            overdue=overdue, limit=limit, offset=offset)


@router.post("/assessments", response_model=StartedOut, status_code=201,
             summary="Start an EHC needs assessment for a request",
             responses={409: {"description": "the child already has an open assessment, or "
                                             "the reference is taken"}})
async def start_assessment(body: StartAssessmentIn, session: SessionDep, client: ClientDep,
                           settings: SettingsDep, staff: StaffDep) -> StartedOut:
    return await cases.start_assessment(session=session, client=client, settings=settings,
                                        body=body, by=staff)


def step_route(router: APIRouter, path: str, action: Action | ReviewAction,
               model: type[BaseModel], summary: str) -> None:
    """A POST route on ``router`` for one action whose body is the action's own input
    model, run by ``services.cases.act``."""

    async def endpoint(reference: str, body: model, session: SessionDep,  # type: ignore[valid-type]
                       client: ClientDep, actor: ActorDep,
                       key: IdempotencyKeyDep) -> CaseView:
        return await cases.act(session=session, client=client, reference=reference,
                               action=action, payload=body, actor=actor, key=key)

    endpoint.__name__ = action.value
    endpoint.__annotations__["body"] = model  # resolved now: it is a variable, not a name
    router.add_api_route(f"/cases/{{reference}}/{path}", endpoint, methods=["POST"],
                         response_model=CaseView, summary=summary)


step_route(router, "decision-to-assess", Action.DECIDE_TO_ASSESS, DecideToAssess,
           "Record the decision whether to assess (Reg 5)")


@router.post("/cases/{reference}/advice-requests", response_model=CaseView,
             summary="Request advice, or record existing advice reused (Regs 6, 8)",
             description="Each request goes to the named service and contact, or to the "
             "default service for that kind of advice (the directory), and is chased by the "
             "escalation ladder in force now (config/escalation.toml or the service's own).")
async def request_advice(reference: str, body: RequestAdvice, session: SessionDep,
                         client: ClientDep, settings: SettingsDep, actor: ActorDep,
                         key: IdempotencyKeyDep) -> CaseView:
    return await cases.request_advice(session=session, client=client, settings=settings,
                                      reference=reference, body=body, actor=actor, key=key)


step_route(router, "plan-decision", Action.DECIDE_PLAN, DecidePlan,
           "Record the decision whether to issue a plan (Reg 10)")
step_route(router, "draft", Action.SERVE_DRAFT, ServeDraft,
           "Record the draft plan served (Reg 13(1))")
step_route(router, "setting-consultations", Action.CONSULT_SETTING, ConsultSetting,
           "Record a school or college consulted (CFA 2014 s.39)")
step_route(router, "family-comments", Action.RECORD_FAMILY_COMMENTS, RecordFamilyComments,
           "Record the family's comments on the draft")
step_route(router, "final-plan", Action.ISSUE_FINAL, IssueFinalIn,
           "Record the final plan issued (Reg 13(2)), with the school or setting it names, its "
           "type and the child's year group (the plan's placement, for its phase transfer)")
step_route(router, "exceptions", Action.RECORD_EXCEPTION, RecordException,
           "Record an exception to a time limit (Reg 8(2), Reg 10(4))")
step_route(router, "closure", Action.CLOSE_CASE, CloseCase,
           "Close the case (request withdrawn, moved away)")


@router.post("/cases/{reference}/advice/{key}/received", response_model=CaseView,
             summary="Record advice received")
async def record_advice(reference: str, key: str, body: ReceivedBody, session: SessionDep,
                        client: ClientDep, actor: ActorDep,
                        idempotency: IdempotencyKeyDep) -> CaseView:
    cmd = RecordAdvice(key=key, received_on=body.received_on, actor=body.actor)
    return await cases.act(session=session, client=client, reference=reference,
                           action=Action.RECORD_ADVICE, payload=cmd, actor=actor,
                           key=idempotency)


@router.post("/cases/{reference}/setting-consultations/{key}/response", response_model=CaseView,
             summary="Record a school or college's response to consultation")
async def record_setting_response(reference: str, key: str, body: ReceivedBody,
                                  session: SessionDep, client: ClientDep, actor: ActorDep,
                                  idempotency: IdempotencyKeyDep) -> CaseView:
    cmd = RecordSettingResponse(key=key, received_on=body.received_on, actor=body.actor)
    return await cases.act(session=session, client=client, reference=reference,
                           action=Action.RECORD_SETTING_RESPONSE, payload=cmd, actor=actor,
                           key=idempotency)


@router.post("/cases/{reference}/exceptions/{exception_id}/withdrawal", response_model=CaseView,
             summary="Withdraw an exception recorded in error or no longer relied on")
async def withdraw_exception(reference: str, exception_id: str, body: WithdrawBody,
                             session: SessionDep, client: ClientDep, actor: ActorDep,
                             idempotency: IdempotencyKeyDep) -> CaseView:
    cmd = WithdrawException(exception_id=exception_id, withdrawn_on=body.withdrawn_on,
                            reason=body.reason, actor=body.actor)
    return await cases.act(session=session, client=client, reference=reference,
                           action=Action.WITHDRAW_EXCEPTION, payload=cmd, actor=actor,
                           key=idempotency)


@router.get("/cases/{reference}/submissions/{submission_id}/documents/{document_id}",
            summary="Download a document a professional sent through the secure page",
            response_class=Response, responses={200: {"content": {"application/octet-stream": {}},
                                                      "description": "the document, as sent"}})
def download_document(reference: str, submission_id: str,
                      document_id: Annotated[int, Path(ge=1, le=MAX_ROW_ID)],
                      session: SessionDep) -> Response:
    doc = cases.accepted_document(session=session, reference=reference,
                                  submission_id=submission_id, document_id=document_id)
    return Response(doc.content, media_type=doc.content_type,
                    headers=attachment_headers(doc.filename))
