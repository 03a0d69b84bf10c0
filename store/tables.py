"""The case record in the database. The workflow writes it (through ``activities``); the API
reads it for lists and for closed cases. Columns mirror ``domain.case`` so a row validates
straight into the workflow's model."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timezone

from sqlalchemy import JSON, Column, Index, LargeBinary, Text, UniqueConstraint, func, text
from sqlalchemy import true as sa_true
from sqlmodel import Field, SQLModel


REF = 40  # a case reference: an assessment's, or a review cycle's ("<plan>.R<n>")


def _now() -> datetime:
    return datetime.now(timezone.utc)


class Child(SQLModel, table=True):
    """The only personal data the product holds about a child: enough to identify them to
    the SEND team. It never leaves the database (not in workflows, IDs, logs or emails)."""

    id: str = Field(default_factory=lambda: uuid.uuid4().hex, primary_key=True, max_length=32)
    given_name: str = Field(max_length=100)
    family_name: str = Field(max_length=100)
    date_of_birth: date
    council_reference: str | None = Field(default=None, max_length=40, unique=True)
    # The child's open assessment, claimed atomically by the API before its workflow starts
    # and released by the workflow's activity when the case closes: one open case per child.
    open_case_reference: str | None = Field(default=None, max_length=REF)
    created_at: datetime = Field(default_factory=_now)
    # The day the retention rule removed what identifies the child (``services.retention``):
    # the names are then blank, the date of birth 1 January of its year, no council id.
    anonymised_on: date | None = None


class Case(SQLModel, table=True):
    """A unit of statutory work with deadlines: an assessment, or one cycle of a plan's annual
    review (``kind`` "review": ``request_date`` is then the date the cycle counts from)."""

    reference: str = Field(primary_key=True, max_length=REF)
    kind: str = Field(default="assessment", max_length=20)
    child_id: str = Field(foreign_key="child.id", index=True, max_length=32)
    workflow_id: str = Field(max_length=60, index=True)  # a plan's cycles share one
    stage: str = Field(max_length=30, index=True)
    is_open: bool = Field(default=True, index=True)
    request_date: date = Field(index=True)
    request_source: str = Field(max_length=20)
    plan_decided_on: date | None = None
    closed_on: date | None = None
    close_reason: str | None = Field(default=None, max_length=2000)
    policy: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    version: int = 0
    updated_at: datetime = Field(default_factory=_now)
    # The child's school or setting: the one the request names (assessment) or the plan's
    # (review). For the managers' lists, filtered by school.
    setting_name: str | None = Field(default=None, max_length=120, index=True)
    # The caseworker who holds the case (a staff account). Set by the API when the case starts
    # and when a manager reassigns it; the workflow's recorder never writes it.
    caseworker_id: str | None = Field(default=None, max_length=32, index=True)


# The managers' lists filter by school ignoring case (store.worklist): migration 0007.
Index("ix_case_setting_name_lower", func.lower(Case.__table__.c.setting_name))


# The family's own periods (statutory.Actor.FAMILY: Reg 13(1), Reg 22(2)), never on the late
# lists; written out for the lists' partial index, which SQLite matches only against the same
# literal list in the query (store.worklist renders it so; a test checks the two agree).
FAMILY_RULE_IDS = ("assessment.draft_comments_due", "review.amendment_comments_due")
_NOT_FAMILY = "rule_id NOT IN ({})".format(", ".join(f"'{r}'" for r in FAMILY_RULE_IDS))


class Milestone(SQLModel, table=True):
    __table_args__ = (
        UniqueConstraint("case_reference", "key"),
        # The late and due-soon lists (store.worklist): what an open case still has to do,
        # in the lists' order, counted from the index alone (migrations 0007, 0008).
        Index("ix_milestone_listed_due", "excused", "due", "case_reference", "key", "rule_id",
              sqlite_where=text(f"done_on IS NULL AND applicable = 1 AND listed = 1 AND "
                                f"{_NOT_FAMILY}"),
              postgresql_where=text(f"done_on IS NULL AND applicable AND listed AND "
                                    f"{_NOT_FAMILY}")),
    )
    id: int | None = Field(default=None, primary_key=True)
    case_reference: str = Field(foreign_key="case.reference", index=True, max_length=REF)
    key: str = Field(max_length=80)
    kind: str = Field(default="milestone", max_length=20)  # milestone | setting
    rule_id: str = Field(max_length=60)
    started_on: date
    due: date = Field(index=True)
    done_on: date | None = None
    applicable: bool = True
    alerts_fired: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    entered_on: date | None = None  # the day the system came to know of it (domain.alerts)
    # An exception that has not been withdrawn excuses this deadline (statutory.clock
    # .excusing_exceptions, worked out by the recorder at each save): counted apart.
    excused: bool = False
    # Whether its case puts it on the managers' lists: the case is open. Kept by the database
    # from the case row (triggers, migration 0007), whoever writes either, so that the lists
    # count what is late from one index without reading every case; nobody else sets it.
    listed: bool = Field(default=True, sa_column_kwargs={"server_default": sa_true()})


class AdviceItem(SQLModel, table=True):
    __table_args__ = (
        UniqueConstraint("case_reference", "key"),
        # The late and due-soon lists: advice still owed, in the lists' order (migrations
        # 0007, 0008); and the same for one service's advice.
        Index("ix_adviceitem_listed_due", "excused", "due", "case_reference", "key", "source",
              "service_id",
              sqlite_where=text("received_on IS NULL AND reused = 0 AND listed = 1"),
              postgresql_where=text("received_on IS NULL AND NOT reused AND listed")),
        Index("ix_adviceitem_listed_service", "service_id", "excused", "due",
              sqlite_where=text("received_on IS NULL AND reused = 0 AND listed = 1"),
              postgresql_where=text("received_on IS NULL AND NOT reused AND listed")),
    )
    id: int | None = Field(default=None, primary_key=True)
    case_reference: str = Field(foreign_key="case.reference", index=True, max_length=REF)
    key: str = Field(max_length=80)
    source: str = Field(max_length=40, index=True)
    label: str | None = Field(default=None, max_length=80)
    requested_on: date
    due: date = Field(index=True)
    received_on: date | None = None
    reused: bool = False
    rule_id: str = Field(default="assessment.advice_due", max_length=60)
    alerts_fired: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    service_id: str | None = Field(default=None, max_length=32, index=True)
    contact_id: str | None = Field(default=None, max_length=32)
    ladder: dict | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    submission_id: str | None = Field(default=None, max_length=32)
    expected_on: date | None = None
    entered_on: date | None = None  # the day the system came to know of it (domain.ladder)
    excused: bool = False  # as Milestone.excused (a Reg 8(2) exception, or the case's)
    # As Milestone.listed: the case is open and still chasing advice (an assessment; a review
    # only until its meeting, stage "meeting_set"). Kept by the database (migration 0007).
    listed: bool = Field(default=True, sa_column_kwargs={"server_default": sa_true()})


class CaseException(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("case_reference", "id"),)
    pk: int | None = Field(default=None, primary_key=True)
    case_reference: str = Field(foreign_key="case.reference", index=True, max_length=REF)
    id: str = Field(max_length=10)
    kind: str = Field(max_length=20)
    reason: str = Field(max_length=2000)
    starts_on: date
    ends_on: date | None = None
    evidence: str | None = Field(default=None, max_length=2000)
    advice_key: str | None = Field(default=None, max_length=80)
    recorded_on: date
    withdrawn_on: date | None = None
    withdrawal_reason: str | None = Field(default=None, max_length=2000)


class Letter(SQLModel, table=True):
    """A decision notice (refusal to assess, no plan) with the appeal rights it must carry."""

    __table_args__ = (UniqueConstraint("case_reference", "kind"),)
    id: int | None = Field(default=None, primary_key=True)
    case_reference: str = Field(foreign_key="case.reference", index=True, max_length=REF)
    kind: str = Field(max_length=30)
    dated: date
    citation: str = Field(max_length=40)
    body: str


class CaseEvent(SQLModel, table=True):
    """Append-only: every step of every case, in order. Never updated or deleted."""

    __table_args__ = (UniqueConstraint("case_reference", "seq"),)
    id: int | None = Field(default=None, primary_key=True)
    case_reference: str = Field(foreign_key="case.reference", index=True, max_length=REF)
    seq: int
    kind: str = Field(max_length=40, index=True)
    on: date
    at: datetime
    actor: str | None = Field(default=None, max_length=120)
    summary: str = Field(max_length=500)
    data: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


# --- the directory of who owes advice ----------------------------------------------------------



def _uid() -> str:
    return uuid.uuid4().hex


class Service(SQLModel, table=True):
    """A team that gives advice: a school or setting, a health team (for example the
    designated clinical officer's), a social care team, educational psychology, others."""

    id: str = Field(default_factory=_uid, primary_key=True, max_length=32)
    name: str = Field(max_length=120, unique=True)
    agency: str = Field(max_length=30, index=True)  # one of domain.agencies.AGENCIES
    team_email: str | None = Field(default=None, max_length=254)
    # The service asked by default for its agency's advice when a caseworker names none.
    is_default: bool = False
    ladder: dict | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    active: bool = True
    created_at: datetime = Field(default_factory=_now)


class Contact(SQLModel, table=True):
    """A named professional in a service; one per service may be its lead."""

    id: str = Field(default_factory=_uid, primary_key=True, max_length=32)
    service_id: str = Field(foreign_key="service.id", index=True, max_length=32)
    name: str = Field(max_length=120)
    email: str = Field(max_length=254)
    role: str | None = Field(default=None, max_length=120)
    is_lead: bool = False
    active: bool = True
    created_at: datetime = Field(default_factory=_now)


class AdqaMember(SQLModel, table=True):
    """A member of the assistant directors' quality-assurance group."""

    id: str = Field(default_factory=_uid, primary_key=True, max_length=32)
    name: str = Field(max_length=120)
    email: str = Field(max_length=254, unique=True)
    role: str | None = Field(default=None, max_length=120)
    active: bool = True
    created_at: datetime = Field(default_factory=_now)


# --- email: the outbox, and the record of what was sent to whom ----------------------------------


class EmailMessage(SQLModel, table=True):
    """One email to one recipient. ``key`` is unique per ladder step (or digest week) and
    recipient, so a retried activity, a restarted worker or a replayed workflow finds the row
    and does not send again. Kept as proof of notification: who, what, when, message id."""

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=400, unique=True)
    case_reference: str | None = Field(default=None, max_length=REF, index=True)
    advice_key: str | None = Field(default=None, max_length=80)
    step: str | None = Field(default=None, max_length=40)
    step_on: date | None = None  # the day the ladder step was due (sent_at: when it went)
    template: str = Field(max_length=60)
    recipient_role: str = Field(max_length=30)
    recipient_name: str | None = Field(default=None, max_length=120)
    recipient_address: str = Field(max_length=254)
    subject: str = Field(max_length=300)
    body_text: str = Field(sa_column=Column(Text, nullable=False))
    message_id: str = Field(max_length=300)
    # sending -> handing_over -> sent; failed (retried); rejected (the server refused the
    # address for good); unconfirmed (a worker died while handing it over: not resent).
    status: str = Field(default="sending", max_length=20, index=True)
    attempts: int = 0
    claimed_at: datetime | None = None
    claimed_by: str | None = Field(default=None, max_length=200)  # "<activity>#<attempt>"
    last_error: str | None = Field(default=None, max_length=500)
    smtp_response: str | None = Field(default=None, max_length=300)
    created_at: datetime = Field(default_factory=_now)
    sent_at: datetime | None = None


class AdqaEscalation(SQLModel, table=True):
    """A piece of advice whose chasing reached the ADQA group: queued by the notifier instead
    of an email to each member, and listed in the group's next daily message
    (``services.adqa_daily``). ``key`` (case, advice, ladder step) makes queueing idempotent."""

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=200, unique=True)
    case_reference: str = Field(max_length=REF, index=True)
    advice_key: str = Field(max_length=80)
    step: str = Field(max_length=40)
    what: str = Field(max_length=120)  # the advice asked for, in words
    service_id: str | None = Field(default=None, max_length=32)
    contact_id: str | None = Field(default=None, max_length=32)
    requested_on: date
    due: date
    step_on: date  # the day the ladder step was for
    queued_at: datetime = Field(default_factory=_now)
    for_day: date = Field(index=True)  # the day of the daily message it is meant for
    listed_on: date | None = Field(default=None, index=True)  # the daily message that listed it


# --- advice submitted by professionals through their link ----------------------------------------


class AdviceSubmission(SQLModel, table=True):
    """Advice (or a reason it will be late) sent through the secure page. It counts once the
    workflow has accepted it: the advice item then names this submission."""

    id: str = Field(default_factory=_uid, primary_key=True, max_length=32)
    case_reference: str = Field(foreign_key="case.reference", index=True, max_length=REF)
    advice_key: str = Field(max_length=80)
    kind: str = Field(max_length=10)  # advice | delay
    text: str = Field(default="", sa_column=Column(Text, nullable=False))
    expected_on: date | None = None
    submitted_by: str | None = Field(default=None, max_length=120)
    status: str = Field(default="pending", max_length=20)  # pending | accepted
    created_at: datetime = Field(default_factory=_now)


class AdviceDocument(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    submission_id: str = Field(foreign_key="advicesubmission.id", index=True, max_length=32)
    filename: str = Field(max_length=255)
    content_type: str = Field(max_length=100)
    size: int
    sha256: str = Field(max_length=64)
    content: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


# --- EHC plans and their annual reviews ----------------------------------------------------------


class Plan(SQLModel, table=True):
    """An EHC plan the council maintains: issued by an assessment here, or imported. Its review
    workflow (``review-<reference>``) runs one cycle after another until the plan ends."""

    reference: str = Field(primary_key=True, max_length=30)
    child_id: str = Field(foreign_key="child.id", index=True, max_length=32)
    issued_on: date
    origin: str = Field(max_length=20)  # assessment | import
    source_case_reference: str | None = Field(default=None, max_length=REF)
    workflow_id: str = Field(max_length=60, unique=True)
    status: str = Field(default="active", max_length=20, index=True)  # active|ceased|closed
    current_cycle: int = 1
    review_due: date | None = Field(default=None, index=True)  # the current cycle's
    # Where the child is (domain.case.Placement), for phase transfers and the cohort view.
    nc_year: str | None = Field(default=None, max_length=4)
    nc_year_as_of: date | None = None
    setting_type: str | None = Field(default=None, max_length=30)
    setting_name: str | None = Field(default=None, max_length=120)
    # The phase transfer the current cycle must finish before (Reg 18), if any.
    transfer_kind: str | None = Field(default=None, max_length=10)  # school | post16
    transfer_year: int | None = Field(default=None, index=True)
    transfer_due: date | None = None
    ended_on: date | None = None
    version: int = 0
    updated_at: datetime = Field(default_factory=_now)
    caseworker_id: str | None = Field(default=None, max_length=32, index=True)  # as Case's


class Review(SQLModel, table=True):
    """One cycle of a plan's annual review: the dates that say whether it was on time, the
    decision, and how the plan's outcomes are going. Its deadlines and events are the case's
    (``case`` row of kind "review" with the same reference)."""

    case_reference: str = Field(foreign_key="case.reference", primary_key=True, max_length=REF)
    plan_reference: str = Field(foreign_key="plan.reference", index=True, max_length=30)
    cycle: int
    anchor_on: date
    meeting_on: date | None = None
    meeting_held_on: date | None = Field(default=None, index=True)
    decision: str | None = Field(default=None, max_length=10)  # maintain | amend | cease
    decided_on: date | None = None
    amendments_sent_on: date | None = None
    amended_plan_issued_on: date | None = None
    not_amended_on: date | None = None
    cease_consulted_on: date | None = None
    ceased_on: date | None = None
    outcomes: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))


# --- the child's other plans (action 3.2) ---------------------------------------------------------

LINKED_PLAN_KINDS = ("early_help", "child_in_need", "child_protection", "looked_after")


class LinkedPlan(SQLModel, table=True):
    """One of the child's other plans: Early Help, Child in Need, Child Protection, or the
    looked-after "Our Children" plan (care plan / PEP). Its owner is a contact in the directory
    (for CIN, CP and LAC, a social worker), so social care advice goes to them and reviews can
    be combined. Ended, never deleted: ``ended_on`` is null while the plan is open, and a child
    has at most one open plan of each kind."""

    __table_args__ = (
        Index("uq_linkedplan_open_kind", "child_id", "kind", unique=True,
              sqlite_where=text("ended_on IS NULL"),
              postgresql_where=text("ended_on IS NULL")),
    )
    id: str = Field(default_factory=_uid, primary_key=True, max_length=32)
    child_id: str = Field(foreign_key="child.id", index=True, max_length=32)
    kind: str = Field(max_length=20)  # one of LINKED_PLAN_KINDS
    owner_contact_id: str = Field(foreign_key="contact.id", index=True, max_length=32)
    # The plan's id in the council's social care system (Mosaic, LCS, ...), if given.
    other_system_reference: str | None = Field(default=None, max_length=60)
    started_on: date
    ended_on: date | None = None
    next_review_on: date | None = None  # that plan's own next review, for combining
    note: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(default_factory=_now)


# --- staff: accounts, sessions, API tokens ---------------------------------------------------------

# Each role can do what the one before it can, and more (api/auth.py): caseworkers run cases
# and reviews; managers also see every late item, the statistics and the reports, and change
# the directory; administrators also manage staff accounts and import caseloads.
ROLES = ("caseworker", "manager", "admin")


class StaffUser(SQLModel, table=True):
    """A member of council staff who signs in. Professionals outside the SEND team do not have
    accounts: they use the signed link in each advice request."""

    id: str = Field(default_factory=_uid, primary_key=True, max_length=32)
    email: str = Field(max_length=254, unique=True)  # kept lower-case
    name: str = Field(max_length=120)
    role: str = Field(max_length=20)  # one of ROLES
    password_hash: str = Field(max_length=200)  # argon2id (argon2-cffi)
    active: bool = True
    failed_sign_ins: int = 0
    locked_until: datetime | None = None
    created_at: datetime = Field(default_factory=_now)
    last_signed_in_at: datetime | None = None


class StaffSession(SQLModel, table=True):
    """A signed-in browser. The cookie holds a random token; only its SHA-256 is kept here, so
    a copy of the database signs nobody in. Ended by signing out, by the account being
    deactivated, or by ``expires_at`` / idle time."""

    id: str = Field(primary_key=True, max_length=64)  # sha256(token), hex
    user_id: str = Field(foreign_key="staffuser.id", index=True, max_length=32)
    csrf_token: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=_now)
    last_seen_at: datetime = Field(default_factory=_now)
    expires_at: datetime
    # A session started by council sign-in keeps the provider's ID token, to name the session
    # it ends at the provider on sign-out (``id_token_hint``). Deleted with the session.
    id_token: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class CouncilIdentity(SQLModel, table=True):
    """Which staff account someone signing in with the council's own accounts (OpenID Connect)
    is: the provider (its issuer) and its subject for them (``sub``), which, unlike an email
    address, never changes (services/council_sign_in.py)."""

    __table_args__ = (UniqueConstraint("issuer", "subject"),)
    id: str = Field(default_factory=_uid, primary_key=True, max_length=32)
    user_id: str = Field(foreign_key="staffuser.id", index=True, max_length=32)
    issuer: str = Field(max_length=300)
    subject: str = Field(max_length=255)
    created_at: datetime = Field(default_factory=_now)


class CouncilSignIn(SQLModel, table=True):
    """A council sign-in under way: the browser went to the provider and has not come back. Its
    ``state`` is in that browser's cookie; only its SHA-256 is kept here, with the nonce and the
    PKCE verifier. Used once (deleted when the browser comes back) and for ten minutes."""

    id: str = Field(primary_key=True, max_length=64)  # sha256(state), hex
    nonce: str = Field(max_length=64)
    code_verifier: str = Field(max_length=128)
    next_url: str = Field(max_length=500)
    expires_at: datetime = Field(index=True)


class ApiToken(SQLModel, table=True):
    """A bearer token for the API (a council's BI team, scripts), acting as its account with
    that account's role. Shown once when made; only its SHA-256 is kept."""

    id: str = Field(default_factory=_uid, primary_key=True, max_length=32)
    user_id: str = Field(foreign_key="staffuser.id", index=True, max_length=32)
    name: str = Field(max_length=120)
    token_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(default_factory=_now)
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None


class AdqaRecommendation(SQLModel, table=True):
    """The ADQA group's recommendations for a quarter, kept with its quarterly report."""

    quarter: str = Field(primary_key=True, max_length=7)  # "2026-Q3"
    text: str = Field(default="", sa_column=Column(Text, nullable=False))
    updated_by: str | None = Field(default=None, max_length=120)
    updated_at: datetime = Field(default_factory=_now)


# --- the statistics (store.timeliness; migration 0006) ----------------------------------------
#
# Each deadline measure reads one range of one index, in its order, without the table: the
# deadlines of some rules due in a period (``ix_*_statistics``), or done in it (DfE's method:
# ``ix_milestone_done``). The columns after the range are those the counting reads, so no row is
# fetched. The steps not done whose case the lists no longer show (``listed`` false) are the
# only ones that may belong to a case that ended before their due day: ``ix_*_unlisted`` holds
# just them, so only their cases are looked up.

Index("ix_milestone_statistics", *(Milestone.__table__.c[name] for name in (
    "rule_id", "due", "excused", "applicable", "done_on", "case_reference")))
Index("ix_milestone_done", *(Milestone.__table__.c[name] for name in (
    "rule_id", "done_on", "excused", "applicable", "due", "started_on", "case_reference")))
Index("ix_adviceitem_statistics", *(AdviceItem.__table__.c[name] for name in (
    "rule_id", "due", "excused", "reused", "source", "received_on", "service_id",
    "case_reference")))
Index("ix_milestone_unlisted", *(Milestone.__table__.c[name] for name in (
    "rule_id", "due", "excused", "applicable", "case_reference")),
    sqlite_where=text("done_on IS NULL AND listed = 0"),
    postgresql_where=text("done_on IS NULL AND NOT listed"))
Index("ix_adviceitem_unlisted", *(AdviceItem.__table__.c[name] for name in (
    "rule_id", "due", "excused", "reused", "source", "service_id", "case_reference")),
    sqlite_where=text("received_on IS NULL AND listed = 0"),
    postgresql_where=text("received_on IS NULL AND NOT listed"))
# Requests for an assessment by the day received (DfE's method).
Index("ix_case_kind_request", Case.__table__.c.kind, Case.__table__.c.request_date)
# Review decisions by the day they were made (measure f); and the few amendments the LA then
# decided against (Reg 22(4)), which measure g leaves out.
Index("ix_review_decided_on", *(Review.__table__.c[name] for name in (
    "decided_on", "decision", "not_amended_on", "case_reference")))
# With their case, so that the table is not read (migration 0009).
Index("ix_review_not_amended_on", Review.__table__.c.not_amended_on,
      Review.__table__.c.case_reference, sqlite_where=text("not_amended_on IS NOT NULL"),
      postgresql_where=text("not_amended_on IS NOT NULL"))
# The refused requests closed in a period (DfE's decisions), from the index alone (0009).
Index("ix_case_stage_closed_on", *(Case.__table__.c[name] for name in (
    "stage", "closed_on", "reference")))


class DeadlineDay(SQLModel, table=True):
    """The deadlines of one rule due on one day, with or without an exception excusing them
    (and, for advice, of one agency), counted: what the deadline measures add up
    (``store.timeliness._deadline_rows``). Kept by the database (triggers on milestone,
    adviceitem and service, migration 0009) from the items, whoever writes them; nobody writes
    it. Only what the measures count is in it: applicable milestones; advice not reused and
    not the family's views. A row whose items have all gone stays with ``n`` = 0. ``ended``
    follows the case too (a trigger on ``case``)."""

    __tablename__ = "deadline_day"
    __table_args__ = {"sqlite_with_rowid": False}
    item: str = Field(primary_key=True, max_length=10)  # "milestone" or "advice"
    rule_id: str = Field(primary_key=True, max_length=60)
    due: date = Field(primary_key=True)
    excused: bool = Field(primary_key=True)
    agency: str = Field(primary_key=True, max_length=30)  # store.agency.agency_of; ''
    n: int
    done: int  # done (advice: received)
    on_time: int  # done on or before ``due``
    ended: int  # not done, and the case ended on or before ``due`` (timeliness.ended_counts)


# --- who looked at a child's record (services/access_log.py; migration 0012) --------------------


class AccessLog(SQLModel, table=True):
    """One view or export of a child's record: who, when, how and what. Append-only: the
    database refuses any UPDATE, and any DELETE except of the rows about a child the retention
    rule has already anonymised (triggers, migration 0012); ``services.retention`` is the only
    code that deletes. It names the child by record id only, never by name."""

    __tablename__ = "access_log"
    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=_now, index=True)  # UTC
    staff_id: str | None = Field(default=None, max_length=32, index=True)
    who: str = Field(max_length=400)  # "Name <email>" as at the time, or the way in
    via: str = Field(max_length=20)  # session | token | advice link | command
    kind: str = Field(max_length=30)  # services.access_log.KINDS
    child_id: str | None = Field(default=None, foreign_key="child.id", max_length=32,
                                 index=True)
    reference: str | None = Field(default=None, max_length=REF)  # the case or plan
    what: str = Field(default="", max_length=300)  # the document, the export, in words
    route: str = Field(default="", max_length=300)  # "GET /cases/{reference}"
