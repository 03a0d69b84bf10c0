"""The case record in the database. The workflow writes it (through ``activities``); the API
reads it for lists and for closed cases. Columns mirror ``models.schemas`` so a row validates
straight into the workflow's model."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timezone

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel


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
    open_case_reference: str | None = Field(default=None, max_length=20)
    created_at: datetime = Field(default_factory=_now)


class Case(SQLModel, table=True):
    reference: str = Field(primary_key=True, max_length=20)
    kind: str = Field(default="assessment", max_length=20)
    child_id: str = Field(foreign_key="child.id", index=True, max_length=32)
    workflow_id: str = Field(max_length=60, unique=True)
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


class Milestone(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("case_reference", "key"),)
    id: int | None = Field(default=None, primary_key=True)
    case_reference: str = Field(foreign_key="case.reference", index=True, max_length=20)
    key: str = Field(max_length=80)
    kind: str = Field(default="milestone", max_length=20)  # milestone | setting
    rule_id: str = Field(max_length=60)
    started_on: date
    due: date = Field(index=True)
    done_on: date | None = None
    applicable: bool = True
    alerts_fired: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))


class AdviceItem(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("case_reference", "key"),)
    id: int | None = Field(default=None, primary_key=True)
    case_reference: str = Field(foreign_key="case.reference", index=True, max_length=20)
    key: str = Field(max_length=80)
    source: str = Field(max_length=40, index=True)
    label: str | None = Field(default=None, max_length=80)
    requested_on: date
    due: date = Field(index=True)
    received_on: date | None = None
    reused: bool = False
    alerts_fired: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))


class CaseException(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("case_reference", "id"),)
    pk: int | None = Field(default=None, primary_key=True)
    case_reference: str = Field(foreign_key="case.reference", index=True, max_length=20)
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
    case_reference: str = Field(foreign_key="case.reference", index=True, max_length=20)
    kind: str = Field(max_length=30)
    dated: date
    citation: str = Field(max_length=40)
    body: str


class CaseEvent(SQLModel, table=True):
    """Append-only: every step of every case, in order. Never updated or deleted."""

    __table_args__ = (UniqueConstraint("case_reference", "seq"),)
    id: int | None = Field(default=None, primary_key=True)
    case_reference: str = Field(foreign_key="case.reference", index=True, max_length=20)
    seq: int
    kind: str = Field(max_length=40, index=True)
    on: date
    at: datetime
    actor: str | None = Field(default=None, max_length=120)
    summary: str = Field(max_length=500)
    data: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
