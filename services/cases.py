"""Cases: start an assessment, take a step of a case (an assessment's or a review cycle's), read
a case with its timeline, list cases.

The API's routes, the pages' forms, the professionals' advice page and the phase-transfer
cohort all come through here. A step is a Temporal update of the workflow that holds the case
(``domain.identifiers.workflow_id_for``), so the workflow's validators judge it; a refused
step is a ``ServiceError`` whose sentence says what to do, and nothing changes.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field, model_validator
from sqlalchemy import or_, update
from sqlmodel import Session, select
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from config.settings import Settings
from domain.case import (
    Action,
    AdviceItem,
    AssessmentPolicy,
    CaseSnapshot,
    CaseView,
    RequestAdvice,
    RequestSource,
    ReviewAction,
    ReviewSnapshot,
    StartAssessment,
)
from domain.names import clean_name
from domain.problems import FIELD_LABELS, FieldProblem
from domain.words import long_date
from domain.identifiers import (
    REFERENCE_PATTERN,
    date_in_reference,
    is_review_cycle,
    new_reference,
    personal_data_in_reference,
    split_cycle,
    workflow_id_for,
)
from domain.ladder import step_label
from domain.steps import closed_message, repeat_of, title
from services.adqa_daily import daily_messages_for
from services.allocation import holder
from services.children import ChildFacts, find_or_add_child
from services.clock import today
from services.directory import ConfigError, DirectoryError, load_escalation, resolve_request
from services.errors import REJECTION_STATUS, ServiceError
from services.staff import Staff
from services.temporal import EngineTimeout, EngineUnavailable, engine_call, workflow_exists
from statutory import assessment_timescales
from store import tables as t
from store.record import read_snapshot
from workflows.assessment import AssessmentWorkflow

# --- what comes in --------------------------------------------------------------------------------


def _child_name(field: str):
    """A child's name part: trimmed, not blank, one line (``domain.names``), named in a
    refusal as the start form labels it."""
    def check(value: str) -> str:
        return clean_name(value, what=FIELD_LABELS[field], max_length=100)  # type: ignore[return-value]
    return AfterValidator(check)


def _optional_id(value: str | None) -> str | None:
    """The council's person id: trimmed, None (not '') when blank, on one line."""
    return clean_name(value, what=FIELD_LABELS["council_reference"], max_length=40,
                      required=False)


class ChildIn(BaseModel):
    given_name: Annotated[str, _child_name("child.given_name")] = Field(
        min_length=1, max_length=100)
    family_name: Annotated[str, _child_name("child.family_name")] = Field(
        min_length=1, max_length=100)
    date_of_birth: date
    council_reference: Annotated[str | None, AfterValidator(_optional_id)] = Field(
        None, max_length=40, description="the council's own person id, if it has one"
    )


class StartAssessmentIn(BaseModel):
    child: ChildIn
    request_date: date = Field(description="the date the LA received the request (day 0)")
    request_source: RequestSource = RequestSource.PARENT
    case_reference: str | None = Field(
        None, pattern=REFERENCE_PATTERN,
        description="optional: your own reference for this request (capitals, digits, '-'); "
        "sending the same request again with it is safe. It goes into emails to professionals, "
        "so one holding the child's names, date of birth, any date, a phone number or an "
        "email address is refused (422)",
    )
    setting_name: str | None = Field(
        None, max_length=120, description="the child's school or setting now, if any")
    caseworker_id: str | None = Field(
        None, max_length=32, description="the caseworker (staff account id) to give the case "
        "to; default: you, if you are a caseworker")
    actor: str | None = Field(None, max_length=120, description="ignored when signed in: the "
                              "case records the signed-in account")

    @model_validator(mode="after")
    def _reference(self) -> StartAssessmentIn:
        """A reference given goes into the workflow's id, logs and every email to a
        professional: none that holds the child's names, date of birth or any date."""
        ref = self.case_reference
        if not ref:
            return self
        c = self.child
        found = personal_data_in_reference(ref, given_name=c.given_name,
                                           family_name=c.family_name,
                                           date_of_birth=c.date_of_birth)
        if not found and date_in_reference(ref):
            found = "digits that read as a date"
        if found:
            raise FieldProblem("case_reference", f"{FIELD_LABELS['case_reference']} contains "
                               f"{found}. References go into emails to professionals and must "
                               "hold no personal data: use your council's case number, or "
                               "leave it blank and one will be made for you")
        return self

    @model_validator(mode="after")
    def _dates(self) -> StartAssessmentIn:
        now = today()
        if self.request_date > now:
            raise FieldProblem("request_date", "Date the request was received cannot be in the "
                               f"future: today is {long_date(now)}")
        dob = self.child.date_of_birth
        if dob > self.request_date:
            raise FieldProblem("child.date_of_birth", "Date of birth must be on or before the "
                               f"date the request was received ({long_date(self.request_date)})")
        if (self.request_date.year - dob.year) - (
            (self.request_date.month, self.request_date.day) < (dob.month, dob.day)
        ) > 25:
            raise FieldProblem("child.date_of_birth", "Date of birth must be no more than 25 "
                               "years before the date the request was received: EHC needs "
                               "assessments are for children and young people aged 0 to 25")
        return self


# --- what goes out --------------------------------------------------------------------------------


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
    on: date = Field(description="the day it happened")
    at: datetime | None = Field(None, description="when the system recorded it (UTC): later "
                                "than `on` for a step entered after the day it happened")
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


def unknown_case(reference: str) -> ServiceError:
    return ServiceError(404, f"No case has the reference {reference!r}; check the reference",
                        "unknown_case")


# --- reading cases --------------------------------------------------------------------------------


async def live_snapshot(client: Client, reference: str) -> CaseSnapshot | ReviewSnapshot | None:
    """The case as its workflow holds it now; None when no workflow runs it (any more). A
    review cycle is live only while it is its plan's current cycle."""
    handle = client.get_workflow_handle(workflow_id_for(reference))
    kind = ReviewSnapshot if is_review_cycle(reference) else CaseSnapshot
    try:
        snapshot = await handle.query("snapshot", result_type=kind)
    except RPCError as exc:
        if exc.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT):
            return None
        raise
    if snapshot.reference != reference:
        return None  # an earlier review cycle: the record has it
    return snapshot


async def live_view(client: Client, reference: str) -> CaseView | None:
    snapshot = await live_snapshot(client, reference)
    return snapshot.view(today()) if snapshot is not None else None


async def case_view(*, session: Session, client: Client | None, reference: str) -> CaseView:
    """A case's deadlines and allowed steps today: live from its workflow while it is open,
    else from the record (so a closed case is read without Temporal; an open one without
    Temporal, or without a worker to answer, is a 503: ``services.temporal.engine_call``)."""
    row = session.get(t.Case, reference)
    view = None
    if row is None or row.is_open:
        try:
            async with engine_call(session, client, acting=False):
                view = await live_view(client, reference)  # type: ignore[arg-type]
        except EngineUnavailable:
            # Not in the record either: no such case, if Temporal (no worker needed) says so.
            if row is None and client is not None and \
                    await workflow_exists(client, workflow_id_for(reference)) is False:
                raise unknown_case(reference) from None
            raise
    if view is None:
        if row is None:
            raise unknown_case(reference)
        view = read_snapshot(session, row).view(today())
    return view


async def read_case(*, session: Session, client: Client | None, reference: str) -> CaseOut:
    """A case with its child, timeline, letters, emails and accepted submissions."""
    view = await case_view(session=session, client=client, reference=reference)
    child = session.get(t.Child, view.case.child_id)
    events = session.exec(select(t.CaseEvent).where(t.CaseEvent.case_reference == reference)
                          .order_by(t.CaseEvent.seq)).all()
    letters = session.exec(select(t.Letter).where(t.Letter.case_reference == reference)).all()
    emails = session.exec(select(t.EmailMessage).where(t.EmailMessage.case_reference == reference)
                          .order_by(t.EmailMessage.created_at, t.EmailMessage.id)).all()
    # The ADQA group's daily messages that listed this case's escalations, with its own.
    emails = sorted([*emails, *daily_messages_for(session, reference)],
                    key=lambda e: (e.created_at.replace(tzinfo=None), e.id or 0))
    return CaseOut(
        reference=reference,
        child=ChildOut.model_validate(child, from_attributes=True) if child else None,
        view=view,
        timeline=[EventOut.model_validate(e, from_attributes=True) for e in events],
        letters=[LetterOut.model_validate(x, from_attributes=True) for x in letters],
        emails=[EmailOut.model_validate(e, from_attributes=True) for e in emails],
        submissions=accepted_submissions(session, reference),
    )


class EmailGroup(BaseModel):
    """The emails about one piece of advice (or about the case, not one piece of advice), as
    the case page lists them, folded away: how many, when the last went, and the latest."""

    title: str  # "Medical advice" (the advice's label), or "Other emails about the case"
    about: str  # "the medical advice", or "the case"
    owed_by: str | None  # who owes the advice, in words
    count: int
    last_sent_at: datetime | None  # the last that the mail server took
    latest: EmailOut  # the last one made, whatever became of it
    not_sent: int  # not taken by the mail server (yet): sending, failed, rejected, unconfirmed
    emails: list[EmailOut]  # the newest first
    steps: dict[str, str]  # each email's step in words ("Escalation to the service lead")


def email_groups(emails: list[EmailOut], advice: list[AdviceItem], owed: dict[str, str]
                 ) -> list[EmailGroup]:
    """``emails`` (oldest first, as ``read_case`` reads them) by the advice each is about,
    in the case's order of its advice (emails about no piece of advice last)."""
    titles = {a.key: a.label or a.source.label for a in advice}
    by_key: dict[str | None, list[EmailOut]] = {}
    for e in emails:
        by_key.setdefault(e.advice_key if e.advice_key in titles else None, []).append(e)
    order = [*titles, None]
    out = []
    for key in sorted(by_key, key=order.index):
        group = by_key[key][::-1]  # ``emails`` come oldest first
        sent = [e.sent_at for e in group if e.sent_at]
        out.append(EmailGroup(
            title=_capital(titles[key]) if key else "Other emails about the case",
            about=f"the {titles[key]}" if key else "the case",
            owed_by=owed.get(key) if key else None, count=len(group),
            last_sent_at=max(sent) if sent else None, latest=group[0],
            not_sent=sum(e.status != "sent" for e in group), emails=group,
            steps={e.step: _capital(step_label(e.step)) for e in group if e.step}))
    return out


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


class CasePage(BaseModel):
    """What a case's page shows beside the case itself."""

    case: CaseOut
    owed_by: dict[str, str]  # advice key -> who owes it, in words
    caseworker: str | None  # the name of who holds the case
    school: str | None  # the school or setting the case names
    email_groups: list[EmailGroup]  # the case's emails by the advice they are about


async def read_case_page(*, session: Session, client: Client | None,
                         reference: str) -> CasePage:
    case = await read_case(session=session, client=client, reference=reference)
    row = session.get(t.Case, reference)
    holder = session.get(t.StaffUser, row.caseworker_id) if row and row.caseworker_id else None
    owed = owed_by(session, case.view.case.advice)
    return CasePage(case=case, owed_by=owed,
                    caseworker=holder.name if holder else None,
                    school=row.setting_name if row else None,
                    email_groups=email_groups(case.emails, case.view.case.advice, owed))


def owed_by(session: Session, advice: list[AdviceItem]) -> dict[str, str]:
    """Who owes each piece of advice, as the deadlines table names them: the person and the
    service from the directory, or a warning that nobody is chased by email."""
    out: dict[str, str] = {}
    for a in advice:
        if a.reused:
            continue
        service = session.get(t.Service, a.service_id) if a.service_id else None
        contact = session.get(t.Contact, a.contact_id) if a.contact_id else None
        names = [x for x in (contact.name if contact else None,
                             service.name if service else None) if x]
        if names:
            out[a.key] = "Owed by " + ", ".join(names)
        elif a.ladder is not None and a.ladder.steps:
            out[a.key] = "No service named: nobody is emailed about it"
    return out


def accepted_submissions(session: Session, reference: str) -> list[SubmissionOut]:
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


def list_cases(*, session: Session, stage: str | None = None, open_only: bool = True,
               overdue: bool = False, limit: int = 100, offset: int = 0) -> list[CaseSummary]:
    """Assessments (reviews are the plans' own list), oldest request first."""
    now = today()
    open_m = (t.Milestone.done_on.is_(None)) & (t.Milestone.applicable)  # type: ignore[union-attr]
    q = select(t.Case).where(t.Case.kind == "assessment")
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
        snap = read_snapshot(session, c).view(now)
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


# --- starting an assessment -----------------------------------------------------------------------


def caseworker_for(session: Session, wanted: str | None, by: Staff | None) -> str | None:
    """The account a new case is given to: the one named (an active caseworker or manager,
    as for any reassignment), else whoever is starting it when they are a caseworker."""
    if wanted:
        return holder(session, wanted)
    return by.id if by is not None and by.role == "caseworker" else None


async def start_assessment(*, session: Session, client: Client, settings: Settings,
                           body: StartAssessmentIn, by: Staff | None) -> StartedOut:
    """Start the assessment of a request: find or add the child, claim them for this case
    (one open case per child), and start the case's workflow. Refused, with nothing left
    behind: a child with an open case, a reference already used."""
    c = body.child
    reference = body.case_reference or new_reference(
        given_name=c.given_name, family_name=c.family_name, date_of_birth=c.date_of_birth)
    caseworker_id = caseworker_for(session, body.caseworker_id, by)
    match = find_or_add_child(session, ChildFacts(c.given_name, c.family_name, c.date_of_birth,
                                                  c.council_reference))
    child_id = match.child_id
    # Claim the child for this request in one conditional write: of two requests racing for
    # the same child, one wins and the other gets a 409, so there are never two open cases.
    claimed = session.exec(update(t.Child).where(
        t.Child.id == child_id, t.Child.open_case_reference.is_(None)  # type: ignore[union-attr]
    ).values(open_case_reference=reference))
    session.commit()
    if claimed.rowcount != 1:
        child = session.get(t.Child, child_id)
        session.refresh(child)
        raise ServiceError(409, f"This child already has an open assessment, "
                           f"{child.open_case_reference}: continue that case instead of "
                           "starting another", "duplicate_case")

    def undo() -> None:  # leave nothing half-written
        child = session.get(t.Child, child_id)
        if match.added:
            session.delete(child)
        else:
            session.exec(update(t.Child).where(t.Child.id == child_id).values(
                open_case_reference=None))
        session.commit()

    policy = AssessmentPolicy(draft_target_weeks=settings.draft_target_weeks,
                              due_soon_days=settings.due_soon_days)
    actor = by.actor if by is not None else body.actor
    try:
        async with engine_call(session, client, acting=True,
                               repeat_safe=body.case_reference is not None):
            await client.start_workflow(
                AssessmentWorkflow.run,
                StartAssessment(reference=reference, child_id=child_id,
                                request_date=body.request_date,
                                request_source=body.request_source, policy=policy, actor=actor,
                                setting_name=(body.setting_name or "").strip() or None,
                                caseworker_id=caseworker_id),
                id=workflow_id_for(reference),
                task_queue=settings.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            )
    except WorkflowAlreadyStartedError:
        undo()
        raise ServiceError(409, f"A case with the reference {reference} already exists; choose "
                           "another reference or open that case", "duplicate_reference") from None
    except EngineTimeout:
        raise  # it may have started: the child stays claimed for it (never two open cases)
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


# --- the steps ------------------------------------------------------------------------------------

REVIEW_STEPS = {a.value for a in ReviewAction}
ASSESSMENT_STEPS = {a.value for a in Action}


async def act(*, session: Session, client: Client, reference: str,
              action: Action | ReviewAction, payload: BaseModel,
              actor: str | None, key: str | None = None) -> CaseView:
    """Run a caseworker's (or professional's) action as an update of the case's workflow: an
    assessment's, or the review workflow of the plan a review cycle belongs to. An earlier,
    finished review cycle is closed in the record, so it is refused here. ``actor``, when
    given, is who took the step, whatever the payload says.

    ``key`` (an API client's Idempotency-Key, a form's one-time token) makes a repeat of the
    same step with the same body one update: Temporal answers an update whose id it has seen
    with the first one's outcome. Without it, a repeat is still recognised by its content
    (``domain.steps.repeat_of``) unless the step adds something new each time."""
    row = session.get(t.Case, reference)
    review = is_review_cycle(reference)
    check_kind(reference, action, review)
    if row is not None and not row.is_open:
        return settled(session, row, action, payload)
    kind = ReviewSnapshot if review else CaseSnapshot
    if actor is not None and "actor" in type(payload).model_fields:
        payload = payload.model_copy(update={"actor": actor})
    try:
        async with engine_call(session, client, acting=True, repeat_safe=bool(key)):
            handle = client.get_workflow_handle(workflow_id_for(reference))
            if review:
                await check_current_cycle(handle, reference)
            case = await handle.execute_update(action.value, payload, result_type=kind,
                                               id=update_id(action, payload, key))
        return case.view(today())
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        if isinstance(cause, ApplicationError):
            raise ServiceError(REJECTION_STATUS.get(cause.type or "", 409), cause.message,
                               (cause.type or "rejected").lower()) from None
        raise
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            if row is None:
                raise unknown_case(reference) from None
            session.refresh(row)  # the workflow has finished since: the record has the case
            return settled(session, row, action, payload)
        raise


def update_id(action: Action | ReviewAction, payload: BaseModel, key: str | None) -> str | None:
    """The update's id for ``key``: the step and its body are part of it, so a key sent again
    with another body (or for another step) is a new update, judged as usual."""
    if not key:
        return None
    body = hashlib.sha256(payload.model_dump_json(exclude={"actor"}).encode()).hexdigest()
    return f"{action.value}:{key}:{body[:24]}"


def settled(session: Session, row: t.Case, action: Action | ReviewAction,
            payload: BaseModel) -> CaseView:
    """A step sent to a case that is closed (or a review cycle that is over): the same answer
    as the first time when it is the step that closed it, sent again exactly (a double-click,
    the back button, a retried request); else a 409 that says what was recorded, or that the
    case is closed."""
    case = read_snapshot(session, row)
    if case.stage.is_open:  # the workflow has ended but its last record is still being written
        raise ServiceError(409, "This case is being closed: open it again in a moment to see "
                           "what was recorded", "case_closed")
    found = repeat_of(case, action.value, payload)
    if found is not None and found.same:
        return case.view(today())
    if found is not None:
        raise ServiceError(409, found.message, "duplicate")
    raise ServiceError(409, closed_message(case), "case_closed")


def check_kind(reference: str, action: Action | ReviewAction, review: bool) -> None:
    """An assessment's step sent to a review cycle, or a review's to an assessment, is refused
    with a 422 that says so, before it reaches a workflow that has no such update. (Advice
    steps have the same names in both.)"""
    if review and action.value not in REVIEW_STEPS:
        raise ServiceError(422, f"{reference} is an annual review, not an assessment, so "
                           f"“{title(action.value)}” (a step of an assessment) cannot be taken "
                           "on it. The review's page lists the steps it can take now (and GET "
                           f"/api/cases/{reference} in the API)", "not_an_assessment")
    if not review and action.value not in ASSESSMENT_STEPS:
        raise ServiceError(422, f"{reference} is not an annual review, so "
                           f"“{title(action.value)}” (a step of an annual review) cannot be "
                           "taken on it. A review's reference is its plan's followed by .R and "
                           "the review's number, for example EHC-7QK2-M4TD.R1 (the plan's page "
                           "lists them)", "not_a_review")


async def check_current_cycle(handle, reference: str) -> None:
    """A plan's review workflow holds one cycle at a time and would apply a step meant for an
    earlier (or a mistyped, later) cycle to the current one: refuse those."""
    try:
        live = await handle.query("snapshot", result_type=ReviewSnapshot)
    except RPCError as exc:
        if exc.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT):
            return  # no workflow: the update says so
        raise
    if live.reference == reference:
        return
    _, cycle = split_cycle(reference)  # type: ignore[misc]
    if cycle < live.cycle:
        raise ServiceError(409, f"Review {reference} is over: the plan's current review is "
                           f"{live.reference}. Take the step there", "case_closed")
    raise ServiceError(404, f"Plan {live.plan_reference} has no review {reference} yet: its "
                       f"current review is {live.reference}. Take the step there",
                       "unknown_case")


async def request_advice(*, session: Session, client: Client, settings: Settings,
                         reference: str, body: RequestAdvice, actor: str | None,
                         key: str | None = None) -> CaseView:
    """Request advice: each request goes to the service and contact it names, or to the
    default service for its kind of advice (the directory), with the escalation ladder in
    force now."""
    try:
        config = load_escalation(settings)
        row = session.get(t.Case, reference)
        items = [resolve_request(session, config, req,
                                 child_id=row.child_id if row is not None else None)
                 for req in body.items]
    except DirectoryError as exc:
        raise ServiceError(422, str(exc), "invalid_input") from None
    except ConfigError as exc:
        raise ServiceError(500, str(exc), "configuration") from None
    return await act(session=session, client=client, reference=reference,
                     action=Action.REQUEST_ADVICE,
                     payload=body.model_copy(update={"items": items}), actor=actor, key=key)


def accepted_document(*, session: Session, reference: str, submission_id: str,
                      document_id: int) -> t.AdviceDocument:
    """A document a professional sent with accepted advice for the case."""
    sub = session.get(t.AdviceSubmission, submission_id)
    doc = session.get(t.AdviceDocument, document_id)
    if sub is None or sub.case_reference != reference or sub.status != "accepted" \
            or doc is None or doc.submission_id != sub.id:
        raise ServiceError(404, f"Case {reference} has no document {document_id} in submission "
                           f"{submission_id}; see the case's submissions", "unknown_document")
    return doc
