"""The caseworker API: start an assessment, take each step, read a case and its timeline."""

from __future__ import annotations

import secrets
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field, model_validator
from sqlalchemy import func, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from activities.case_record import REVIEW_FIELDS, workflow_id_for
from api.auth import current_actor, current_staff
from api.errors import REJECTION_STATUS, ApiError
from models import tables as t
from models.db import session_for
from models.directory import ConfigError, DirectoryError, load_escalation, resolve_request
from models.schemas import (
    Action,
    AdviceItem,
    AssessmentPolicy,
    CaseException,
    CaseSnapshot,
    CaseView,
    CloseCase,
    ConsultSetting,
    DecidePlan,
    DecideToAssess,
    IssueFinal,
    Letter,
    Milestone,
    RecordAdvice,
    RecordException,
    RecordFamilyComments,
    RecordSettingResponse,
    RequestAdvice,
    RequestSource,
    ReviewAction,
    ReviewPolicy,
    ReviewSnapshot,
    ServeDraft,
    StartAssessment,
    WithdrawException,
)
from models.settings import Settings
from statutory import assessment_timescales, london_date
from workflows.assessment import AssessmentWorkflow

router = APIRouter(prefix="/api", tags=["cases"])

# Crockford's base-32 alphabet: no I, L, O or U, so a reference read over the phone survives.
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
REFERENCE_PATTERN = r"^[A-Z0-9][A-Z0-9-]{2,19}$"


def new_reference() -> str:
    body = "".join(secrets.choice(_ALPHABET) for _ in range(8))
    return f"EHC-{body[:4]}-{body[4:]}"


def today() -> date:
    from datetime import datetime, timezone

    return london_date(datetime.now(timezone.utc))


# --- dependencies ---------------------------------------------------------------------------


def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


def get_client(request: Request) -> Client:
    client = request.app.state.temporal
    if client is None:
        raise ApiError(503, "The case engine (Temporal) is not reachable; try again shortly",
                       "unavailable")
    return client


def get_session(settings: Annotated[Settings, Depends(get_settings_dep)]):
    with session_for(settings.db_url) as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
ClientDep = Annotated[Client, Depends(get_client)]
SessionDep = Annotated[Session, Depends(get_session)]


# --- request and response bodies --------------------------------------------------------------


class ChildIn(BaseModel):
    given_name: str = Field(min_length=1, max_length=100)
    family_name: str = Field(min_length=1, max_length=100)
    date_of_birth: date
    council_reference: str | None = Field(
        None, max_length=40, description="the council's own person id, if it has one"
    )


class StartAssessmentIn(BaseModel):
    child: ChildIn
    request_date: date = Field(description="the date the LA received the request (day 0)")
    request_source: RequestSource = RequestSource.PARENT
    case_reference: str | None = Field(
        None, pattern=REFERENCE_PATTERN,
        description="optional: your own reference for this request (capitals, digits, '-'); "
        "sending the same request again with it is safe",
    )
    setting_name: str | None = Field(
        None, max_length=120, description="the child's school or setting now, if any")
    caseworker_id: str | None = Field(
        None, max_length=32, description="the caseworker (staff account id) to give the case "
        "to; default: you, if you are a caseworker")
    actor: str | None = Field(None, max_length=120, description="ignored when signed in: the "
                              "case records the signed-in account")

    @model_validator(mode="after")
    def _dates(self) -> StartAssessmentIn:
        now = today()
        if self.request_date > now:
            raise ValueError(f"request_date {self.request_date} is in the future (today is {now})")
        dob = self.child.date_of_birth
        if dob > self.request_date:
            raise ValueError(f"date_of_birth {dob} is after request_date {self.request_date}")
        if (self.request_date.year - dob.year) - (
            (self.request_date.month, self.request_date.day) < (dob.month, dob.day)
        ) > 25:
            raise ValueError("EHC needs assessments are for children and young people aged 0 "
                             "to 25: check date_of_birth")
        return self


class DeadlineOut(BaseModel):
    due: date
    citation: str
    title: str
    rule: str


class StartedOut(BaseModel):
    reference: str
    workflow_id: str
    stage: str
    deadlines: dict[str, DeadlineOut]


class ChildOut(BaseModel):
    id: str
    given_name: str
    family_name: str
    date_of_birth: date
    council_reference: str | None


class EventOut(BaseModel):
    seq: int
    kind: str
    on: date
    actor: str | None
    summary: str
    data: dict[str, Any]


class LetterOut(BaseModel):
    kind: str
    dated: date
    citation: str
    body: str


class EmailOut(BaseModel):
    """One email sent (or being sent) for the case: proof of who was told what, and when."""

    created_at: datetime
    sent_at: datetime | None
    recipient_role: str
    recipient_name: str | None
    recipient_address: str
    subject: str
    template: str
    step: str | None
    step_on: date | None = Field(None, description="the day the ladder step was due")
    advice_key: str | None
    status: str
    attempts: int
    message_id: str


class DocumentOut(BaseModel):
    id: int
    filename: str
    content_type: str
    size: int


class SubmissionOut(BaseModel):
    id: str
    advice_key: str
    kind: str
    text: str
    expected_on: date | None
    submitted_by: str | None
    created_at: datetime
    documents: list[DocumentOut]


class CaseOut(BaseModel):
    reference: str
    child: ChildOut | None
    view: CaseView
    timeline: list[EventOut]
    letters: list[LetterOut]
    emails: list[EmailOut] = []
    submissions: list[SubmissionOut] = []


class CaseSummary(BaseModel):
    reference: str
    stage: str
    is_open: bool
    request_date: date
    final_plan_due: date | None
    next_due: date | None
    overdue_items: int


class DateBody(BaseModel):
    actor: str | None = Field(None, max_length=120)


class ReceivedBody(DateBody):
    received_on: date


class WithdrawBody(DateBody):
    withdrawn_on: date
    reason: str = Field(min_length=3, max_length=2000)


# --- reading cases ----------------------------------------------------------------------------


def _snapshot_from_db(session: Session, row: t.Case) -> CaseSnapshot | ReviewSnapshot:
    ref = row.reference

    def rows(model, **where):
        q = select(model).where(model.case_reference == ref)
        for k, v in where.items():
            q = q.where(getattr(model, k) == v)
        return session.exec(q).all()

    if row.kind == "review":
        review = session.get(t.Review, ref)
        plan = session.get(t.Plan, review.plan_reference) if review else None
        assert review is not None and plan is not None
        return ReviewSnapshot(
            reference=ref, plan_reference=review.plan_reference, cycle=review.cycle,
            child_id=row.child_id, stage=row.stage, anchor_on=review.anchor_on,
            plan_issued_on=plan.issued_on, policy=ReviewPolicy(**row.policy),
            closed_on=row.closed_on, close_reason=row.close_reason, version=row.version,
            outcomes=review.outcomes,
            **{name: getattr(review, name) for name in REVIEW_FIELDS},
            milestones=[Milestone.model_validate(m, from_attributes=True)
                        for m in rows(t.Milestone, kind="milestone")],
            advice=[AdviceItem.model_validate(a, from_attributes=True)
                    for a in rows(t.AdviceItem)],
        )
    return CaseSnapshot(
        reference=ref, child_id=row.child_id, stage=row.stage, request_date=row.request_date,
        request_source=row.request_source, policy=AssessmentPolicy(**row.policy),
        plan_decided_on=row.plan_decided_on, closed_on=row.closed_on,
        close_reason=row.close_reason, version=row.version,
        milestones=[Milestone.model_validate(m, from_attributes=True)
                    for m in rows(t.Milestone, kind="milestone")],
        settings_consulted=[Milestone.model_validate(m, from_attributes=True)
                            for m in rows(t.Milestone, kind="setting")],
        advice=[AdviceItem.model_validate(a, from_attributes=True) for a in rows(t.AdviceItem)],
        exceptions=[CaseException.model_validate(e, from_attributes=True)
                    for e in rows(t.CaseException)],
        letters=[Letter.model_validate(x, from_attributes=True) for x in rows(t.Letter)],
    )


async def _live_view(client: Client, reference: str) -> CaseView | None:
    """The case as its workflow holds it now; None when no workflow runs it (any more). A
    review cycle is live only while it is its plan's current cycle."""
    handle = client.get_workflow_handle(workflow_id_for(reference))
    kind = ReviewSnapshot if workflow_id_for(reference).startswith("review-") else CaseSnapshot
    try:
        snapshot = await handle.query("snapshot", result_type=kind)
        if snapshot.reference != reference:
            return None  # an earlier review cycle: the record has it
        return snapshot.view(today())
    except RPCError as exc:
        if exc.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT):
            return None
        raise


@router.get("/cases/{reference}", response_model=CaseOut, summary="A case, with its timeline")
async def read_case(reference: str, session: SessionDep, client: ClientDep) -> CaseOut:
    row = session.get(t.Case, reference)
    view = None
    if row is None or row.is_open:
        view = await _live_view(client, reference)  # live state from the workflow
    if view is None:
        if row is None:
            raise ApiError(404, f"No case has the reference {reference!r}; check the reference",
                           "unknown_case")
        view = _snapshot_from_db(session, row).view(today())
    child = session.get(t.Child, view.case.child_id)
    events = session.exec(select(t.CaseEvent).where(t.CaseEvent.case_reference == reference)
                          .order_by(t.CaseEvent.seq)).all()
    letters = session.exec(select(t.Letter).where(t.Letter.case_reference == reference)).all()
    emails = session.exec(select(t.EmailMessage).where(t.EmailMessage.case_reference == reference)
                          .order_by(t.EmailMessage.created_at, t.EmailMessage.id)).all()
    return CaseOut(
        reference=reference,
        child=ChildOut.model_validate(child, from_attributes=True) if child else None,
        view=view,
        timeline=[EventOut.model_validate(e, from_attributes=True) for e in events],
        letters=[LetterOut.model_validate(x, from_attributes=True) for x in letters],
        emails=[EmailOut.model_validate(e, from_attributes=True) for e in emails],
        submissions=_accepted_submissions(session, reference),
    )


def _accepted_submissions(session: Session, reference: str) -> list[SubmissionOut]:
    """Submissions through the secure page that the workflow accepted (pending ones, left by
    a request that failed half-way, are not part of the case)."""
    subs = session.exec(select(t.AdviceSubmission).where(
        t.AdviceSubmission.case_reference == reference, t.AdviceSubmission.status == "accepted",
    ).order_by(t.AdviceSubmission.created_at)).all()
    if not subs:
        return []
    docs = session.exec(select(t.AdviceDocument).where(
        t.AdviceDocument.submission_id.in_([x.id for x in subs]))).all()  # type: ignore[attr-defined]
    return [SubmissionOut(
        id=x.id, advice_key=x.advice_key, kind=x.kind, text=x.text, expected_on=x.expected_on,
        submitted_by=x.submitted_by, created_at=x.created_at,
        documents=[DocumentOut(id=d.id, filename=d.filename, content_type=d.content_type,
                               size=d.size) for d in docs if d.submission_id == x.id],
    ) for x in subs]


@router.get("/cases", response_model=list[CaseSummary], summary="List cases")
def list_cases(
    session: SessionDep,
    stage: str | None = None,
    open_only: Annotated[bool, Query(alias="open")] = True,
    overdue: bool = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[CaseSummary]:
    now = today()
    open_m = (t.Milestone.done_on.is_(None)) & (t.Milestone.applicable)  # type: ignore[union-attr]
    q = select(t.Case).where(t.Case.kind == "assessment")  # reviews: the plans' own list
    if open_only:
        q = q.where(t.Case.is_open)
    if stage:
        q = q.where(t.Case.stage == stage)
    if overdue:
        late_m = select(t.Milestone.case_reference).where(open_m, t.Milestone.due < now)
        late_a = select(t.AdviceItem.case_reference).where(
            t.AdviceItem.received_on.is_(None), t.AdviceItem.due < now)  # type: ignore[union-attr]
        q = q.where(or_(t.Case.reference.in_(late_m), t.Case.reference.in_(late_a)))  # type: ignore[attr-defined]
    cases = session.exec(q.order_by(t.Case.request_date, t.Case.reference)
                         .offset(offset).limit(limit)).all()
    out = []
    for c in cases:
        snap = _snapshot_from_db(session, c).view(now)
        open_dues = [d.due for d in snap.deadlines if d.done_on is None
                     and d.status.value not in ("not_applicable",)]
        final = snap.case.milestone("final_plan_due")
        out.append(CaseSummary(
            reference=c.reference, stage=c.stage, is_open=c.is_open,
            request_date=c.request_date, final_plan_due=final.due if final else None,
            next_due=min(open_dues) if open_dues and c.is_open else None,
            overdue_items=len(snap.overdue) if c.is_open else 0,
        ))
    return out


# --- starting an assessment ----------------------------------------------------------------------


def _find_or_add_child(session: Session, child: ChildIn) -> tuple[t.Child, bool]:
    """The child's record, matched on the council's reference or on name and date of birth;
    created if new. Returns (child, created)."""
    found = _find_child(session, child)
    if found is not None:
        return found, False
    new = t.Child(given_name=child.given_name.strip(), family_name=child.family_name.strip(),
                  date_of_birth=child.date_of_birth, council_reference=child.council_reference)
    session.add(new)
    try:
        session.commit()
    except IntegrityError:  # the same council reference added a moment ago by another request
        session.rollback()
        found = _find_child(session, child)
        if found is None:
            raise
        return found, False
    return new, True


def _find_child(session: Session, child: ChildIn) -> t.Child | None:
    if child.council_reference:
        found = session.exec(select(t.Child).where(
            t.Child.council_reference == child.council_reference)).first()
        if found is not None:
            return found
    return session.exec(select(t.Child).where(
        func.lower(t.Child.given_name) == child.given_name.strip().lower(),
        func.lower(t.Child.family_name) == child.family_name.strip().lower(),
        t.Child.date_of_birth == child.date_of_birth,
    )).first()


@router.post("/assessments", response_model=StartedOut, status_code=201,
             summary="Start an EHC needs assessment for a request",
             responses={409: {"description": "the child already has an open assessment, or "
                                             "the reference is taken"}})
async def start_assessment(body: StartAssessmentIn, session: SessionDep, client: ClientDep,
                           settings: SettingsDep) -> StartedOut:
    reference = body.case_reference or new_reference()
    caseworker_id = _caseworker_for(session, body.caseworker_id)
    child, created = _find_or_add_child(session, body.child)
    # Claim the child for this request in one conditional write: of two requests racing for
    # the same child, one wins and the other gets a 409, so there are never two open cases.
    claimed = session.exec(update(t.Child).where(
        t.Child.id == child.id, t.Child.open_case_reference.is_(None)  # type: ignore[union-attr]
    ).values(open_case_reference=reference))
    session.commit()
    if claimed.rowcount != 1:
        session.refresh(child)
        raise ApiError(409, f"This child already has an open assessment, "
                       f"{child.open_case_reference}: continue that case instead of starting "
                       "another", "duplicate_case")

    def undo() -> None:  # leave nothing half-written
        if created:
            session.delete(child)
        else:
            session.exec(update(t.Child).where(t.Child.id == child.id).values(
                open_case_reference=None))
        session.commit()

    policy = AssessmentPolicy(draft_target_weeks=settings.draft_target_weeks,
                              due_soon_days=settings.due_soon_days)
    try:
        await client.start_workflow(
            AssessmentWorkflow.run,
            StartAssessment(reference=reference, child_id=child.id,
                            request_date=body.request_date,
                            request_source=body.request_source, policy=policy,
                            actor=current_actor() or body.actor,
                            setting_name=(body.setting_name or "").strip() or None,
                            caseworker_id=caseworker_id),
            id=workflow_id_for(reference),
            task_queue=settings.task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        )
    except WorkflowAlreadyStartedError:
        undo()
        raise ApiError(409, f"A case with the reference {reference} already exists; choose "
                       "another reference or open that case", "duplicate_reference") from None
    except BaseException:
        undo()
        raise
    deadlines = assessment_timescales(body.request_date,
                                      draft_target_weeks=policy.draft_target_weeks)
    return StartedOut(
        reference=reference, workflow_id=workflow_id_for(reference), stage="awaiting_decision",
        deadlines={k: DeadlineOut(due=d.due, citation=d.citation, title=d.rule.title,
                                  rule=d.rule.id) for k, d in deadlines.items()},
    )


def _caseworker_for(session: Session, wanted: str | None) -> str | None:
    """The account a new case is given to: the one named (it must be an active account that
    can hold cases), else whoever is starting it when they are a caseworker."""
    if wanted:
        user = session.get(t.StaffUser, wanted)
        if user is None or not user.active:
            raise ApiError(422, f"caseworker_id {wanted!r} is not an active staff account: "
                           "choose one from GET /api/caseworkers", "invalid_input")
        return user.id
    staff = current_staff()
    return staff.id if staff is not None and staff.role == "caseworker" else None


# --- the steps ------------------------------------------------------------------------------------


async def _act(client: Client, session: Session, reference: str,
               action: Action | ReviewAction, payload: BaseModel) -> CaseView:
    """Run a caseworker's (or professional's) action as an update of the case's workflow: an
    assessment's, or the review workflow of the plan a review cycle belongs to. An earlier,
    finished review cycle is closed in the record, so it is refused here."""
    row = session.get(t.Case, reference)
    if row is not None and not row.is_open:
        raise ApiError(409, f"Case {reference} is closed ({row.stage}); no further actions can "
                       "be taken", "case_closed")
    workflow_id = workflow_id_for(reference)
    review = workflow_id.startswith("review-")
    _check_kind(reference, action, review)
    handle = client.get_workflow_handle(workflow_id)
    if review and (row is None or row.is_open):
        await _check_current_cycle(handle, reference)
    kind = ReviewSnapshot if review else CaseSnapshot
    actor = current_actor()  # a signed-in account is who took the step, whatever the body says
    if actor is not None and "actor" in type(payload).model_fields:
        payload = payload.model_copy(update={"actor": actor})
    try:
        case = await handle.execute_update(action.value, payload, result_type=kind)
        return case.view(today())
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        if isinstance(cause, ApplicationError):
            raise ApiError(REJECTION_STATUS.get(cause.type or "", 409), cause.message,
                           (cause.type or "rejected").lower()) from None
        raise
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            if row is None:
                raise ApiError(404, f"No case has the reference {reference!r}; check the "
                               "reference", "unknown_case") from None
            raise ApiError(409, f"Case {reference} is closed; no further actions can be taken",
                           "case_closed") from None
        raise


REVIEW_STEPS = {a.value for a in ReviewAction}
ASSESSMENT_STEPS = {a.value for a in Action}


def _check_kind(reference: str, action: Action | ReviewAction, review: bool) -> None:
    """An assessment's step sent to a review cycle, or a review's to an assessment, is refused
    with a 422 that says so, before it reaches a workflow that has no such update. (Advice
    steps have the same names in both.)"""
    if review and action.value not in REVIEW_STEPS:
        raise ApiError(422, f"{reference} is an annual review cycle, not an assessment, so "
                       f"'{action.value}' (a step of an assessment) cannot be taken on it. The "
                       f"review's steps allowed now are its allowed_actions (GET "
                       f"/api/cases/{reference})", "not_an_assessment")
    if not review and action.value not in ASSESSMENT_STEPS:
        raise ApiError(422, f"{reference} is not an annual review cycle, so '{action.value}' "
                       "(a step of an annual review) cannot be taken on it. A review cycle's "
                       "reference is its plan's followed by .R and the cycle's number, e.g. "
                       "EHC-7QK2-M4TD.R1 (GET /api/plans/<plan reference> lists them)",
                       "not_a_review")


async def _check_current_cycle(handle, reference: str) -> None:
    """A plan's review workflow holds one cycle at a time and would apply a step meant for an
    earlier (or a mistyped, later) cycle to the current one: refuse those."""
    try:
        live = await handle.query("snapshot", result_type=ReviewSnapshot)
    except RPCError as exc:
        if exc.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT):
            return  # no workflow: the update below says so
        raise
    if live.reference == reference:
        return
    cycle = int(reference.rpartition(".R")[2])
    if cycle < live.cycle:
        raise ApiError(409, f"Review {reference} is over; the plan's current review is "
                       f"{live.reference}: take the step there", "case_closed")
    raise ApiError(404, f"Plan {live.plan_reference} has no review {reference} yet; its "
                   f"current review is {live.reference}", "unknown_case")


def _step(path: str, action: Action | ReviewAction, model: type[BaseModel], summary: str,
          on: APIRouter | None = None) -> None:
    """A POST route for one action, on ``on`` (this router by default), run by ``_act``."""

    async def endpoint(reference: str, body: model, session: SessionDep,  # type: ignore[valid-type]
                       client: ClientDep) -> CaseView:
        return await _act(client, session, reference, action, body)

    endpoint.__name__ = action.value
    endpoint.__annotations__["body"] = model  # resolved now: it is a variable, not a name
    (router if on is None else on).add_api_route(f"/cases/{{reference}}/{path}", endpoint, methods=["POST"],
                         response_model=CaseView, summary=summary)


_step("decision-to-assess", Action.DECIDE_TO_ASSESS, DecideToAssess,
      "Record the decision whether to assess (Reg 5)")


@router.post("/cases/{reference}/advice-requests", response_model=CaseView,
             summary="Request advice, or record existing advice reused (Regs 6, 8)",
             description="Each request goes to the named service and contact, or to the "
             "default service for that kind of advice (the directory), and is chased by the "
             "escalation ladder in force now (config/escalation.toml or the service's own).")
async def request_advice(reference: str, body: RequestAdvice, session: SessionDep,
                         client: ClientDep, settings: SettingsDep) -> CaseView:
    try:
        config = load_escalation(settings)
        items = [resolve_request(session, config, req, child_id=getattr(
            session.get(t.Case, reference), "child_id", None)) for req in body.items]
    except DirectoryError as exc:
        raise ApiError(422, str(exc), "invalid_input") from None
    except ConfigError as exc:
        raise ApiError(500, str(exc), "configuration") from None
    return await _act(client, session, reference, Action.REQUEST_ADVICE,
                      body.model_copy(update={"items": items}))
_step("plan-decision", Action.DECIDE_PLAN, DecidePlan,
      "Record the decision whether to issue a plan (Reg 10)")
_step("draft", Action.SERVE_DRAFT, ServeDraft, "Record the draft plan served (Reg 13(1))")
_step("setting-consultations", Action.CONSULT_SETTING, ConsultSetting,
      "Record a school or college consulted (CFA 2014 s.39)")
_step("family-comments", Action.RECORD_FAMILY_COMMENTS, RecordFamilyComments,
      "Record the family's comments on the draft")
_step("final-plan", Action.ISSUE_FINAL, IssueFinal, "Record the final plan issued (Reg 13(2))")
_step("exceptions", Action.RECORD_EXCEPTION, RecordException,
      "Record an exception to a time limit (Reg 8(2), Reg 10(4))")
_step("closure", Action.CLOSE_CASE, CloseCase, "Close the case (request withdrawn, moved away)")


@router.post("/cases/{reference}/advice/{key}/received", response_model=CaseView,
             summary="Record advice received")
async def record_advice(reference: str, key: str, body: ReceivedBody, session: SessionDep,
                        client: ClientDep) -> CaseView:
    cmd = RecordAdvice(key=key, received_on=body.received_on, actor=body.actor)
    return await _act(client, session, reference, Action.RECORD_ADVICE, cmd)


@router.post("/cases/{reference}/setting-consultations/{key}/response", response_model=CaseView,
             summary="Record a school or college's response to consultation")
async def record_setting_response(reference: str, key: str, body: ReceivedBody,
                                  session: SessionDep, client: ClientDep) -> CaseView:
    cmd = RecordSettingResponse(key=key, received_on=body.received_on, actor=body.actor)
    return await _act(client, session, reference, Action.RECORD_SETTING_RESPONSE, cmd)


@router.post("/cases/{reference}/exceptions/{exception_id}/withdrawal", response_model=CaseView,
             summary="Withdraw an exception recorded in error or no longer relied on")
async def withdraw_exception(reference: str, exception_id: str, body: WithdrawBody,
                             session: SessionDep, client: ClientDep) -> CaseView:
    cmd = WithdrawException(exception_id=exception_id, withdrawn_on=body.withdrawn_on,
                            reason=body.reason, actor=body.actor)
    return await _act(client, session, reference, Action.WITHDRAW_EXCEPTION, cmd)


@router.get("/cases/{reference}/submissions/{submission_id}/documents/{document_id}",
            summary="Download a document a professional sent through the secure page",
            response_class=Response, responses={200: {"content": {"application/octet-stream": {}},
                                                      "description": "the document, as sent"}})
def download_document(reference: str, submission_id: str, document_id: int,
                      session: SessionDep) -> Response:
    from api.advice_portal import attachment_headers  # the portal imports this module

    sub = session.get(t.AdviceSubmission, submission_id)
    doc = session.get(t.AdviceDocument, document_id)
    if sub is None or sub.case_reference != reference or sub.status != "accepted" \
            or doc is None or doc.submission_id != sub.id:
        raise ApiError(404, f"Case {reference} has no document {document_id} in submission "
                       f"{submission_id}; see the case's submissions", "unknown_document")
    return Response(doc.content, media_type=doc.content_type,
                    headers=attachment_headers(doc.filename))
