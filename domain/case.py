"""The case as the workflow holds it, and the messages that move it.

Only pydantic and the pure ``statutory`` package are imported here: workflows import this
module inside Temporal's sandbox. No personal data appears in any of these models; the child
is referred to by an opaque id whose record lives only in the database.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from enum import Enum
from typing import Literal

from pydantic import BaseModel, Field, ValidationInfo, field_validator

from domain.words import long_date

from domain.ladder import Ladder
from statutory import ExceptionKind, Status, days_overdue, excusing_exceptions, status_on
from statutory.phase import (
    FIRST_TRANSFER_YEAR,
    LAST_TRANSFER_YEAR,
    NCYear,
    SettingType,
    parse_nc_year,
    parse_setting_type,
)
from statutory.rules import RULES


class AdviceSource(str, Enum):
    """Whom advice is sought from (Reg 6(1))."""

    FAMILY = "family"
    EDUCATION = "education"
    HEALTH = "health"
    EDUCATIONAL_PSYCHOLOGIST = "educational_psychologist"
    SOCIAL_CARE = "social_care"
    OTHER = "other"
    PREPARING_FOR_ADULTHOOD = "preparing_for_adulthood"
    FAMILY_REQUESTED = "family_requested"

    @property
    def citation(self) -> str:
        return ADVICE_SOURCE_INFO[self][1]

    @property
    def label(self) -> str:
        return ADVICE_SOURCE_INFO[self][0]


ADVICE_SOURCE_INFO: dict[AdviceSource, tuple[str, str]] = {
    AdviceSource.FAMILY: ("the family's views", "Reg 6(1)(a)"),
    AdviceSource.EDUCATION: ("educational advice", "Reg 6(1)(b)"),
    AdviceSource.HEALTH: ("medical advice", "Reg 6(1)(c)"),
    AdviceSource.EDUCATIONAL_PSYCHOLOGIST: ("psychological advice", "Reg 6(1)(d)"),
    AdviceSource.SOCIAL_CARE: ("social care advice", "Reg 6(1)(e)"),
    AdviceSource.OTHER: ("other advice", "Reg 6(1)(f)"),
    AdviceSource.PREPARING_FOR_ADULTHOOD: ("preparing for adulthood advice", "Reg 6(1)(g)"),
    AdviceSource.FAMILY_REQUESTED: ("advice the family asked for", "Reg 6(1)(h)"),
}

# Every assessment seeks these (Reg 6(1)(a)-(e)); the others where they apply.
REQUIRED_ADVICE = (
    AdviceSource.FAMILY,
    AdviceSource.EDUCATION,
    AdviceSource.HEALTH,
    AdviceSource.EDUCATIONAL_PSYCHOLOGIST,
    AdviceSource.SOCIAL_CARE,
)


class Stage(str, Enum):
    AWAITING_DECISION = "awaiting_decision"
    ASSESSING = "assessing"
    DRAFTING = "drafting"
    DRAFT_SERVED = "draft_served"
    FINAL_ISSUED = "final_issued"
    REFUSED = "refused"
    NO_PLAN = "no_plan"
    CLOSED = "closed"

    @property
    def is_open(self) -> bool:
        return self in OPEN_STAGES


OPEN_STAGES = frozenset(
    {Stage.AWAITING_DECISION, Stage.ASSESSING, Stage.DRAFTING, Stage.DRAFT_SERVED}
)


class RequestSource(str, Enum):
    PARENT = "parent"
    YOUNG_PERSON = "young_person"
    SCHOOL = "school"
    OTHER = "other"


class Action(str, Enum):
    """The caseworker actions; each is a Temporal update of the same name."""

    DECIDE_TO_ASSESS = "decide_to_assess"
    REQUEST_ADVICE = "request_advice"
    RECORD_ADVICE = "record_advice"
    REPORT_ADVICE_DELAY = "report_advice_delay"
    DECIDE_PLAN = "decide_plan"
    SERVE_DRAFT = "serve_draft"
    CONSULT_SETTING = "consult_setting"
    RECORD_SETTING_RESPONSE = "record_setting_response"
    RECORD_FAMILY_COMMENTS = "record_family_comments"
    ISSUE_FINAL = "issue_final"
    RECORD_EXCEPTION = "record_exception"
    WITHDRAW_EXCEPTION = "withdraw_exception"
    CLOSE_CASE = "close_case"


# What a caseworker may do at each stage (the workflow's validators enforce it).
ALLOWED_ACTIONS: dict[Stage, tuple[Action, ...]] = {
    Stage.AWAITING_DECISION: (Action.DECIDE_TO_ASSESS,),
    Stage.ASSESSING: (Action.REQUEST_ADVICE, Action.RECORD_ADVICE, Action.REPORT_ADVICE_DELAY,
                      Action.DECIDE_PLAN),
    Stage.DRAFTING: (Action.RECORD_ADVICE, Action.REPORT_ADVICE_DELAY, Action.SERVE_DRAFT,
                     Action.CONSULT_SETTING),
    Stage.DRAFT_SERVED: (
        Action.RECORD_ADVICE, Action.REPORT_ADVICE_DELAY, Action.CONSULT_SETTING, Action.RECORD_SETTING_RESPONSE,
        Action.RECORD_FAMILY_COMMENTS, Action.ISSUE_FINAL,
    ),
}
ALWAYS_WHILE_OPEN = (Action.RECORD_EXCEPTION, Action.WITHDRAW_EXCEPTION, Action.CLOSE_CASE)


def allowed_actions(stage: Stage) -> list[Action]:
    return [*ALLOWED_ACTIONS[stage], *ALWAYS_WHILE_OPEN] if stage.is_open else []


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60]


# Why a case or a plan was closed (CloseCase, ClosePlan), as the forms offer it.
CLOSE_REASONS = {
    "request_withdrawn": "The request was withdrawn", "moved_out_of_area": "Moved out of the area",
    "over_25": "Over 25", "left_education_19_plus": "Left education at 19 or over",
    "other": "Other",
}


def advice_label(key: str) -> str:
    """An advice item's key as words, when the item itself is not at hand: ``social_care`` ->
    "social care advice", ``health:speech-and-language`` -> "speech and language"."""
    source, _, named = key.partition(":")
    if named:
        return named.replace("-", " ")
    try:
        return AdviceSource(source).label
    except ValueError:
        return source.replace("_", " ")


def consulted_setting(key: str) -> str:
    """A consulted school's name as a page shows it, from its deadline's key
    (``setting:oakfield-primary-school`` -> "Oakfield Primary School"): the key keeps only the
    name's slug."""
    return key.split(":", 1)[-1].replace("-", " ").title()


# --- settings a workflow is started with -----------------------------------------------------


class AssessmentPolicy(BaseModel):
    """The council's local choices, fixed for a case when it starts."""

    draft_target_weeks: int = Field(16, ge=1, le=20)
    due_soon_days: int = Field(5, ge=0, le=42)


class StartAssessment(BaseModel):
    reference: str
    child_id: str
    request_date: date
    request_source: RequestSource = RequestSource.PARENT
    policy: AssessmentPolicy = AssessmentPolicy()
    actor: str | None = None
    setting_name: str | None = Field(None, max_length=120)  # the child's school or setting
    # The staff account the case is given to when it starts (a manager may reassign it later:
    # that is the record's, ``case.caseworker_id``, not the workflow's).
    caseworker_id: str | None = None


# --- the case -------------------------------------------------------------------------------


class Milestone(BaseModel):
    key: str
    rule_id: str
    started_on: date
    due: date
    done_on: date | None = None
    applicable: bool = True
    alerts_fired: list[str] = []
    # The (London) day the system came to know of it: a milestone entered after its day
    # had passed waits to the end of that day before it is called overdue (domain.alerts).
    # None on milestones made before this was kept: they alert as they always did.
    entered_on: date | None = None

    @property
    def title(self) -> str:
        return RULES[self.rule_id].title

    @property
    def citation(self) -> str:
        return RULES[self.rule_id].citation


class AdviceItem(BaseModel):
    key: str
    source: AdviceSource
    label: str | None = None
    # The rule its due date comes from: Reg 8(1) for an assessment's advice, Reg 20(4) for a
    # review's advice and reports (due in time to circulate them two weeks before the meeting).
    rule_id: str = "assessment.advice_due"
    requested_on: date
    due: date
    received_on: date | None = None
    reused: bool = False
    alerts_fired: list[str] = []
    # Who owes it (the directory), and the escalation ladder that chases it. Without a ladder
    # (requests made before advice chasing existed) the item only records due-soon/overdue.
    service_id: str | None = None
    contact_id: str | None = None
    ladder: Ladder | None = None
    submission_id: str | None = None  # advice sent through the professional's secure page
    expected_on: date | None = None  # when the professional said late advice will come
    # The (London) day the system came to know of it. Advice entered after its request day is
    # chased from that day (domain.ladder: steps whose day had gone are not sent, the overdue
    # steps are planned afresh). None on advice requested before this was kept.
    entered_on: date | None = None

    @property
    def is_open(self) -> bool:
        return self.received_on is None


class CaseException(BaseModel):
    id: str
    kind: ExceptionKind
    reason: str
    starts_on: date
    ends_on: date | None = None
    evidence: str | None = None
    advice_key: str | None = None
    recorded_on: date
    withdrawn_on: date | None = None
    withdrawal_reason: str | None = None


class Letter(BaseModel):
    """A decision notice that carries appeal rights; its text is rendered from a template by
    the activity that records it."""

    kind: Literal["refusal_to_assess", "no_plan_notice"]
    dated: date
    citation: str


class Event(BaseModel):
    seq: int
    kind: str
    on: date
    at: datetime
    actor: str | None = None
    summary: str
    data: dict[str, str] = {}


class Placement(BaseModel):
    """Where the child is, as the council records it: enough to know the next phase transfer
    (statutory.phase). The year group is as of ``nc_year_as_of`` and moves up each September."""

    nc_year: str = Field(description="national curriculum year: N1, N2, R, 1-14")
    nc_year_as_of: date = Field(description="the day the year group was true")
    setting_type: str = Field(description="statutory.phase.SettingType")
    setting_name: str | None = Field(None, max_length=120)


class _InWords:
    """How pages name a case's closing reason and its advice; shared by both snapshots."""

    @property
    def close_reason_text(self) -> str | None:
        """Why it closed, in words: a reason chosen on the form by its label, one written (a
        refusal's reasons) as written."""
        return CLOSE_REASONS.get(self.close_reason or "", self.close_reason)

    def advice_name(self, key: str) -> str:
        """An advice item as a page names it: its label, else its kind ("medical advice")."""
        item = self.advice_item(key)
        return (item.label or item.source.label) if item else advice_label(key)


class CaseSnapshot(_InWords, BaseModel):
    reference: str
    child_id: str
    kind: Literal["assessment"] = "assessment"
    stage: Stage
    request_date: date
    request_source: RequestSource
    policy: AssessmentPolicy
    setting_name: str | None = None  # the child's school or setting, if the request names one
    caseworker_id: str | None = None  # who it was given to when it started (StartAssessment)
    # The school or setting the final plan names, its type and the child's year group on the
    # day it was issued (IssueFinal): the placement the plan's reviews start with.
    placement: Placement | None = None
    plan_decided_on: date | None = None
    closed_on: date | None = None
    close_reason: str | None = None
    milestones: list[Milestone] = []
    advice: list[AdviceItem] = []
    settings_consulted: list[Milestone] = []
    exceptions: list[CaseException] = []
    letters: list[Letter] = []
    version: int = 0  # the seq of the last event applied

    def milestone(self, key: str) -> Milestone | None:
        return next((m for m in self.milestones if m.key == key), None)

    def advice_item(self, key: str) -> AdviceItem | None:
        return next((a for a in self.advice if a.key == key), None)

    def view(self, today: date) -> CaseView:
        """Every deadline's status on ``today``. Callers pass the real date: a workflow query's
        clock stops at the workflow's last task, so the workflow returns the snapshot and the
        reader works out the view."""
        return CaseView.build(self, today)


# --- what a caseworker sees ------------------------------------------------------------------


class DeadlineView(BaseModel):
    key: str
    title: str
    citation: str
    due: date
    done_on: date | None
    status: Status
    days_overdue: int
    excused_by: list[str] = []
    kind: Literal["milestone", "advice", "setting"]
    source: AdviceSource | None = None


class CaseView(BaseModel):
    case: CaseSnapshot | ReviewSnapshot = Field(discriminator="kind")
    today: date
    deadlines: list[DeadlineView]
    overdue: list[str]
    allowed_actions: list[str]

    @classmethod
    def build(cls, case: CaseSnapshot | ReviewSnapshot, today: date) -> CaseView:
        soon = case.policy.due_soon_days
        out: list[DeadlineView] = []

        def add(item, kind, done_on, source=None, advice_key=None, title=None, citation=None):
            rule = RULES[item.rule_id]
            applicable = getattr(item, "applicable", True)
            started = item.requested_on if kind == "advice" else item.started_on
            excused = excusing_exceptions(rule, started, item.due, case.exceptions,
                                          advice_key=advice_key)
            if not applicable:
                status = Status.NOT_APPLICABLE
            elif not case.stage.is_open and done_on is None:
                # A closed case's unmet deadlines stay as they were when it closed.
                closed = case.closed_on or today
                status = status_on(closed, item.due, None, due_soon_days=soon)
            else:
                status = status_on(today, item.due, done_on, due_soon_days=soon)
            overdue_days = (
                days_overdue(today if case.stage.is_open else (case.closed_on or today), item.due)
                if status is Status.OVERDUE
                else 0
            )
            out.append(DeadlineView(
                key=item.key, title=title or rule.title, citation=citation or rule.citation,
                due=item.due, done_on=done_on, status=status, days_overdue=overdue_days,
                excused_by=[e.id for e in excused], kind=kind, source=source,
            ))

        for m in case.milestones:
            add(m, "milestone", m.done_on)
        for a in case.advice:
            add(a, "advice", a.received_on, source=a.source, advice_key=a.key,
                title=f"Advice: {a.label or a.source.label}")
        for s in case.settings_consulted:
            add(s, "setting", s.done_on, title=f"Consultation response: {consulted_setting(s.key)}")
        out.sort(key=lambda d: (d.due, d.key))
        return cls(
            case=case, today=today, deadlines=out,
            overdue=[d.key for d in out if d.status is Status.OVERDUE],
            allowed_actions=available_actions(case),
        )


# --- update inputs (one per Action) ----------------------------------------------------------


class _ActionInput(BaseModel):
    actor: str | None = Field(None, max_length=120, description="who did it (staff name or id)")


class DecideToAssess(_ActionInput):
    decision: Literal["assess", "refuse"]
    decided_on: date
    reason: str | None = Field(None, max_length=2000)


class AdviceRequest(BaseModel):
    source: AdviceSource
    label: str | None = Field(
        None, max_length=80,
        description="which advisor, where a source is asked more than once (e.g. 'speech and "
        "language therapy'); no personal names",
    )
    requested_on: date = Field(description="the date the advisor received the request")
    reuse_existing: bool = Field(
        False, description="existing advice is sufficient and reused (Reg 6(4))"
    )
    service_id: str | None = Field(
        None, description="the service asked (the directory); default: the default service "
        "for this kind of advice",
    )
    contact_id: str | None = Field(
        None, description="the named professional asked; default: the service's team inbox"
    )
    send_request_email: bool = Field(
        True, description="email the request with a secure link; false if it went another way"
    )
    ladder: Ladder | None = Field(
        None, description="set by the API from the escalation configuration", exclude=False,
    )

    @property
    def key(self) -> str:
        return self.source.value if not self.label else f"{self.source.value}:{slug(self.label)}"


class RequestAdvice(_ActionInput):
    items: list[AdviceRequest] = Field(min_length=1)

    @field_validator("items")
    @classmethod
    def _distinct(cls, items: list[AdviceRequest]) -> list[AdviceRequest]:
        keys = [i.key for i in items]
        dupes = [i for n, i in enumerate(items) if keys.count(i.key) > 1
                 and keys.index(i.key) == n]
        if dupes:
            names = " and ".join(i.label or i.source.label for i in dupes)
            raise ValueError(f"{names[:1].upper() + names[1:]} "
                             f"{'is' if len(dupes) == 1 else 'are each'} asked for twice: ask "
                             "once, or name which advisor each request is for")
        return items


class RecordAdvice(_ActionInput):
    key: str
    received_on: date
    submission_id: str | None = Field(
        None, description="the professional's submission through the secure page, if any")


class ReportAdviceDelay(_ActionInput):
    """A professional says why advice will be late; the chasing goes on until it arrives."""

    key: str
    reason: str = Field(min_length=3, max_length=2000)
    expected_on: date | None = None


class DecidePlan(_ActionInput):
    decision: Literal["issue", "no_plan"]
    decided_on: date
    reason: str | None = Field(None, max_length=2000)
    proceed_with_outstanding_advice: bool = False


class ServeDraft(_ActionInput):
    served_on: date


class ConsultSetting(_ActionInput):
    setting: str = Field(min_length=2, max_length=120, description="school or college name")
    sent_on: date


class RecordSettingResponse(_ActionInput):
    key: str
    received_on: date


class RecordFamilyComments(_ActionInput):
    received_on: date


class IssueFinal(_ActionInput):
    """The final plan issued. ``setting_name``, ``setting_type`` and ``nc_year`` are the school
    or setting the plan names, its type and the child's year group on the issue day, in the
    plans file's words (``services.plan_file``): the plan's placement, from which its phase
    transfer is worked out. Optional here so that histories from before they were asked still
    decode; the API and the page require them (``IssueFinalIn``)."""

    issued_on: date
    setting_name: str | None = Field(None, max_length=120)
    setting_type: str | None = Field(None, description="statutory.phase.SettingType")
    nc_year: str | None = Field(None, description="national curriculum year: N1, N2, R, 1-14")

    def placement(self) -> Placement | None:
        """The placement the plan names, its year group as on the issue day; None when the
        step was recorded without one."""
        if self.setting_type is None or self.nc_year is None:
            return None
        return Placement(nc_year=self.nc_year, nc_year_as_of=self.issued_on,
                         setting_type=self.setting_type, setting_name=self.setting_name)


def _year_groups() -> list[NCYear]:
    return [y for y in NCYear if y is not NCYear.EY]


class IssueFinalIn(IssueFinal):
    """``IssueFinal`` as a caseworker records it now (the API and the page): the school or
    setting named in the plan, its type and the child's year group are required, the type and
    year group in the vocabulary of ``statutory.phase``, and the year group one that kind of
    setting teaches."""

    setting_name: str = Field(min_length=1, max_length=120,
                              description="the school or setting named in the plan")
    setting_type: str = Field(description="the type of setting: "
                              + ", ".join(t.value for t in SettingType))
    nc_year: str = Field(description="the child's year group on the issue day: "
                         + ", ".join(y.value for y in _year_groups()))

    @field_validator("setting_name")
    @classmethod
    def _name(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("Enter the name of the school or setting named in the plan")
        return value

    @field_validator("setting_type")
    @classmethod
    def _setting_type(cls, value: str) -> str:
        try:
            return parse_setting_type(value).value
        except ValueError:
            raise ValueError("Select the type of school or setting from the list") from None

    @field_validator("nc_year")
    @classmethod
    def _nc_year(cls, value: str, info: ValidationInfo) -> str:
        try:
            year = parse_nc_year(value)
        except ValueError:
            year = NCYear.EY
        if year is NCYear.EY:
            raise ValueError("Select the child's year group from the list: Nursery 1, "
                             "Nursery 2, Reception or Year 1 to Year 14")
        setting = info.data.get("setting_type")
        if setting is not None:  # the type was understood: is this year group taught there?
            kind = SettingType(setting).info
            last = max(kind.final_years, key=lambda y: y.index or 0)
            if not (kind.first_year.index or 0) <= (year.index or 0) <= (last.index or 0):
                raise ValueError(
                    f"The type of setting chosen ({kind.label.split(':')[0]}) does not teach "
                    f"{year.label}: check the year group and the type of setting")
        return year.value


class RecordException(_ActionInput):
    kind: ExceptionKind
    reason: str = Field(min_length=3, max_length=2000)
    starts_on: date
    ends_on: date | None = None
    evidence: str | None = Field(None, max_length=2000)
    advice_key: str | None = Field(
        None, description="the advice item a Reg 8(2) exception excuses"
    )


class WithdrawException(_ActionInput):
    exception_id: str
    withdrawn_on: date
    reason: str = Field(min_length=3, max_length=2000)


class CloseCase(_ActionInput):
    reason: Literal["request_withdrawn", "moved_out_of_area", "other"]
    closed_on: date
    note: str | None = Field(None, max_length=2000)


# --- annual reviews (CFA 2014 s.44; Regs 18-22, 29-31) ----------------------------------------


class ReviewStage(str, Enum):
    """One review cycle of a plan, from the anniversary it counts from to the LA's decision
    and what follows it."""

    AWAITING_MEETING = "awaiting_meeting"
    MEETING_SET = "meeting_set"
    MEETING_HELD = "meeting_held"
    AMENDING = "amending"
    CEASING = "ceasing"
    MAINTAINED = "maintained"  # the cycle ends; the next one starts from the meeting
    AMENDED = "amended"  # the cycle ends with the final amended plan (or none after all)
    CEASED = "ceased"  # the plan ends
    CLOSED = "closed"  # the plan ends for another reason (moved away, over 25)

    @property
    def is_open(self) -> bool:
        return self in OPEN_REVIEW_STAGES


OPEN_REVIEW_STAGES = frozenset({ReviewStage.AWAITING_MEETING, ReviewStage.MEETING_SET,
                                ReviewStage.MEETING_HELD, ReviewStage.AMENDING,
                                ReviewStage.CEASING})
PLAN_ENDED_STAGES = frozenset({ReviewStage.CEASED, ReviewStage.CLOSED})


class ReviewAction(str, Enum):
    """The review's actions; each is a Temporal update of the same name."""

    SET_MEETING = "set_meeting"
    REQUEST_ADVICE = "request_advice"  # the same names as the assessment's: the advice page
    # and the API record advice the same way whichever workflow holds it
    RECORD_ADVICE = "record_advice"
    REPORT_ADVICE_DELAY = "report_advice_delay"
    RECORD_INVITATIONS = "record_invitations_sent"
    RECORD_CIRCULATED = "record_advice_circulated"
    HOLD_MEETING = "hold_meeting"
    RECORD_REPORT = "record_review_report"
    CONSULT_ON_CEASING = "consult_on_ceasing"
    DECIDE = "decide_review"
    RECORD_AMENDMENT_COMMENTS = "record_amendment_comments"
    ISSUE_AMENDED_PLAN = "issue_amended_plan"
    DECIDE_NOT_TO_AMEND = "decide_not_to_amend"
    CEASE_PLAN = "cease_plan"
    CLOSE_PLAN = "close_plan"
    UPDATE_PLACEMENT = "update_placement"
    SET_PHASE_TRANSFER = "set_phase_transfer"
    SET_POST16_MOVE = "set_post16_move"


REVIEW_ALLOWED: dict[ReviewStage, tuple[ReviewAction, ...]] = {
    ReviewStage.AWAITING_MEETING: (ReviewAction.SET_MEETING,),
    ReviewStage.MEETING_SET: (
        ReviewAction.SET_MEETING, ReviewAction.REQUEST_ADVICE, ReviewAction.RECORD_ADVICE,
        ReviewAction.REPORT_ADVICE_DELAY, ReviewAction.RECORD_INVITATIONS,
        ReviewAction.RECORD_CIRCULATED, ReviewAction.HOLD_MEETING,
    ),
    ReviewStage.MEETING_HELD: (
        ReviewAction.RECORD_ADVICE, ReviewAction.RECORD_REPORT, ReviewAction.CONSULT_ON_CEASING,
        ReviewAction.DECIDE,
    ),
    ReviewStage.AMENDING: (
        ReviewAction.RECORD_REPORT, ReviewAction.RECORD_AMENDMENT_COMMENTS,
        ReviewAction.ISSUE_AMENDED_PLAN, ReviewAction.DECIDE_NOT_TO_AMEND,
    ),
    ReviewStage.CEASING: (ReviewAction.RECORD_REPORT, ReviewAction.CEASE_PLAN),
}


def review_actions(stage: ReviewStage) -> list[ReviewAction]:
    if not stage.is_open:
        return []
    extra = [ReviewAction.SET_PHASE_TRANSFER, ReviewAction.SET_POST16_MOVE] if stage in (
        ReviewStage.AWAITING_MEETING, ReviewStage.MEETING_SET, ReviewStage.MEETING_HELD) else []
    return [*REVIEW_ALLOWED[stage], *extra, ReviewAction.UPDATE_PLACEMENT,
            ReviewAction.CLOSE_PLAN]


class ReviewPolicy(BaseModel):
    due_soon_days: int = Field(5, ge=0, le=42)
    under_five_months: int | None = Field(
        None, ge=3, le=6, description="review a child under five every N months (CoP 9.178); "
        "None: yearly like everyone else")


class PlanIssued(BaseModel):
    """An assessment's final plan, whose annual reviews are to start."""

    plan_reference: str
    child_id: str
    issued_on: date
    placement: Placement | None = Field(
        None, description="the setting the plan names and the child's year group on the issue "
        "day (IssueFinal); None for a plan issued before they were asked")


class PhaseTransferDue(BaseModel):
    kind: Literal["school", "post16"]
    transfer_year: int = Field(ge=FIRST_TRANSFER_YEAR, le=LAST_TRANSFER_YEAR)


class StartReview(BaseModel):
    """Starts a plan's review workflow, and each of its later cycles (continue-as-new)."""

    plan_reference: str
    child_id: str
    plan_issued_on: date
    last_review_on: date | None = Field(
        None, description="the last review meeting; None: the plan has not been reviewed yet")
    cycle: int = Field(1, ge=1)
    under_five_until: date | None = Field(
        None, description="the child's fifth birthday, for the shorter cycle of the under-fives "
        "(CoP 9.178); None: over five, or no shorter cycle")
    phase_transfer: PhaseTransferDue | None = Field(
        None, description="a phase transfer this cycle must be finished before (Reg 18(1))")
    policy: ReviewPolicy = ReviewPolicy()
    meeting_on: date | None = Field(None, description="a meeting already fixed (import)")
    placement: Placement | None = None
    resume: Literal["awaiting_decision", "amending"] | None = Field(
        None, description="an imported plan whose last review meeting (last_review_on) is "
        "still awaiting the LA's decision, or whose amendments are under way")
    amendments_sent_on: date | None = Field(
        None, description="with resume='amending': when the proposed amendments were sent")
    version: int = Field(0, description="the seq of the plan's last event, across cycles")
    transfer_done: PhaseTransferDue | None = Field(
        None, description="the phase transfer the previous cycle's review dealt with (Reg 18): "
        "this cycle does not take it on again")
    origin: Literal["assessment", "import", "next_cycle"] = "assessment"
    actor: str | None = None
    assigned_to: str | None = Field(
        None, max_length=120, description="the plans import only: the name of the staff account "
        "its caseworker column matched, to whom the import gives the plan (the timeline says "
        "so); None for every later cycle")
    imported_on: date | None = Field(
        None, description="set by the plans import: the day it was run. The import writes the "
        "cycle's first record itself (domain.review_cycle.first_record as of that day); the "
        "workflow holds the same and does not save it again. None: the workflow saves it")


class OutcomeProgress(BaseModel):
    """How one outcome in the plan is going, as the review meeting found (action 3.2.5)."""

    outcome: str = Field(min_length=2, max_length=300)
    progress: Literal["achieved", "on_track", "partly_achieved", "not_achieved"]
    note: str | None = Field(None, max_length=1000)


class ReviewSnapshot(_InWords, BaseModel):
    reference: str  # the cycle: review_reference(plan_reference, cycle)
    plan_reference: str
    cycle: int
    child_id: str
    kind: Literal["review"] = "review"
    stage: ReviewStage
    anchor_on: date  # the plan's issue or the last review: the 12 months count from it
    plan_issued_on: date
    origin: Literal["assessment", "import", "next_cycle"] = "assessment"
    policy: ReviewPolicy
    placement: Placement | None = None
    meeting_on: date | None = None
    meeting_held_on: date | None = None
    decision: Literal["maintain", "amend", "cease"] | None = None
    decided_on: date | None = None
    amendments_sent_on: date | None = None
    amended_plan_issued_on: date | None = None
    not_amended_on: date | None = None
    cease_consulted_on: date | None = None
    ceased_on: date | None = None
    closed_on: date | None = None
    close_reason: str | None = None
    outcomes: list[OutcomeProgress] = []
    milestones: list[Milestone] = []
    advice: list[AdviceItem] = []
    settings_consulted: list[Milestone] = []  # (none in a review; the view reads it)
    exceptions: list[CaseException] = []  # (no exceptions apply to review limits)
    letters: list[Letter] = []
    version: int = 0

    def milestone(self, key: str) -> Milestone | None:
        return next((m for m in self.milestones if m.key == key), None)

    def advice_item(self, key: str) -> AdviceItem | None:
        return next((a for a in self.advice if a.key == key), None)

    def view(self, today: date) -> CaseView:
        return CaseView.build(self, today)


class SetMeeting(_ActionInput):
    meeting_on: date = Field(description="the date of the review meeting")


class RecordDate(_ActionInput):
    on: date


class HoldMeeting(_ActionInput):
    held_on: date
    outcomes: list[OutcomeProgress] = []


class DecideReview(_ActionInput):
    decision: Literal["maintain", "amend", "cease"]
    decided_on: date = Field(description="the date the decision was sent to the family; for "
                             "'amend', with the proposed amendments (Reg 22(2))")
    reason: str | None = Field(None, max_length=2000)


class UpdatePlacement(_ActionInput):
    placement: Placement


class SetPhaseTransfer(_ActionInput):
    """Bring a phase-transfer review forward: this cycle must end by the transfer's date."""

    transfer: PhaseTransferDue


class SetPost16Move(_ActionInput):
    """A move from one post-16 institution to another at a time other than the phase transfer:
    this cycle's review (and any amended plan) must be done at least 5 months before it
    (Reg 18(2))."""

    moves_on: date = Field(description="the day the young person starts at the new "
                           "post-16 institution")


class ClosePlan(_ActionInput):
    reason: Literal["moved_out_of_area", "over_25", "left_education_19_plus", "other"]
    closed_on: date
    note: str | None = Field(None, max_length=2000)


# --- what a case can take now --------------------------------------------------------------------
# The stage's steps (ALLOWED_ACTIONS, REVIEW_ALLOWED) whose preconditions hold: the case page
# lists these and their forms open only for these (domain.steps names them and says why not).


def _milestone_open(case: CaseSnapshot | ReviewSnapshot, key: str) -> bool:
    m = case.milestone(key)
    return m is not None and m.done_on is None and m.applicable


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def unmet_need(case: CaseSnapshot | ReviewSnapshot, action: str) -> str | None:
    """Why a step its stage allows cannot be taken on this case now; None: it can."""
    if action in (Action.RECORD_ADVICE.value, Action.REPORT_ADVICE_DELAY.value):
        if not case.advice:
            return "No advice has been requested yet: request advice first."
        if not any(a.is_open for a in case.advice):
            return "All the advice requested has been received."
    elif action == Action.WITHDRAW_EXCEPTION.value:
        if not any(e.withdrawn_on is None for e in case.exceptions):
            return "There is no exception on this case to withdraw."
    elif action == Action.RECORD_SETTING_RESPONSE.value:
        if not case.settings_consulted:
            return "No school or college has been consulted yet: record a consultation first."
        if not any(s.done_on is None for s in case.settings_consulted):
            return "Every school or college consulted has already responded."
    elif action == Action.RECORD_FAMILY_COMMENTS.value and not isinstance(case, ReviewSnapshot):
        if not _milestone_open(case, "draft_comments_due"):
            return "The family's comments on the draft have already been recorded."
    elif action == Action.DECIDE_PLAN.value and not isinstance(case, ReviewSnapshot):
        asked = {a.source for a in case.advice}
        missing = [s.label for s in REQUIRED_ADVICE if s not in asked]
        if missing:
            return ("Advice has not been asked for yet from every source the law requires "
                    f"(Reg 6(1)(a)-(e)): request {_join(missing)}, or record existing advice as "
                    "reused (Reg 6(4)), first.")
    elif isinstance(case, ReviewSnapshot):
        once = {ReviewAction.RECORD_INVITATIONS.value: ("invitations_due", "The invitations"),
                ReviewAction.RECORD_CIRCULATED.value: ("advice_circulated_due",
                                                       "The circulation of the advice"),
                ReviewAction.RECORD_REPORT.value: ("report_due", "The review report"),
                ReviewAction.RECORD_AMENDMENT_COMMENTS.value: (
                    "amendment_comments_due", "The family's comments on the amendments")}
        if action in once:
            key, what = once[action]
            m = case.milestone(key)
            if m is not None and m.done_on is not None:
                return f"{what} {'were' if what.endswith('s') else 'was'} already recorded " \
                       f"on {long_date(m.done_on)}."
        if action == ReviewAction.CONSULT_ON_CEASING.value and case.cease_consulted_on:
            return ("The consultation on ceasing was already recorded on "
                    f"{long_date(case.cease_consulted_on)}.")
    return None


def stage_actions(case: CaseSnapshot | ReviewSnapshot) -> list[str]:
    if isinstance(case, ReviewSnapshot):
        return [a.value for a in review_actions(case.stage)]
    return [a.value for a in allowed_actions(case.stage)]


def available_actions(case: CaseSnapshot | ReviewSnapshot) -> list[str]:
    """The steps ``case`` can take now, in the order the case page lists them: those its stage
    allows whose preconditions hold (advice waiting to be received, an exception to withdraw, a
    consultation awaiting its response, …)."""
    return [a for a in stage_actions(case) if unmet_need(case, a) is None]


CaseView.model_rebuild()
