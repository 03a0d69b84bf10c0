"""The child's other plans (action 3.2): Early Help, Child in Need, Child Protection and the
looked-after "Our Children" plan (care plan / PEP), each with its owner in the directory. The
API's routes (``api/linked_plans.py``) call ``list_linked_plans``, ``add_linked_plan`` and
``update_linked_plan``.

They belong to the child, not to one case: an assessment and every review cycle of the child's
plan see the same linked plans. The owner of an open looked-after, CP or CIN plan is asked for
social care advice by default (``services.directory.resolve_request``), and an open plan whose own
next review falls within 4 weeks of the review meeting can be combined with it
(``can_combine``). See docs/linked-plans.md.

These read and write the database only; they do not need Temporal.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from domain.identifiers import personal_data_in_reference
from services.clock import today
from services.errors import ServiceError
from store import tables as t

Kind = Literal["early_help", "child_in_need", "child_protection", "looked_after"]
KIND_LABELS = {
    "early_help": "Early Help plan",
    "child_in_need": "Child in Need plan",
    "child_protection": "Child Protection plan",
    "looked_after": "looked-after (Our Children) plan",
}
# Plans a social worker owns: their owner must be in a social care service.
SOCIAL_CARE_KINDS = frozenset({"child_in_need", "child_protection", "looked_after"})
# An open plan's own review within this many days of the review meeting, before or after it,
# can be held with it.
COMBINE_WINDOW_DAYS = 28
_ORDER = {"looked_after": 0, "child_protection": 1, "child_in_need": 2, "early_help": 3}

OtherRef = Field(None, min_length=1, max_length=60,
                 description="the plan's id in the council's social care system (Mosaic, LCS, "
                 "...), if it has one")
Note = Field(None, min_length=1, max_length=500,
             description="optional, at most 500 characters; no more personal detail than needed")


class LinkedPlanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Kind = Field(description="early_help | child_in_need | child_protection | "
                       "looked_after (the care plan / PEP)")
    owner_contact_id: str = Field(min_length=1, max_length=32, description=(
        "the plan's owner, a contact in the directory (GET /api/directory/services/{id}); "
        "for child_in_need, child_protection and looked_after, a social worker in a social "
        "care service"))
    other_system_reference: str | None = OtherRef
    started_on: date = Field(description="YYYY-MM-DD, not in the future")
    ended_on: date | None = Field(None, description="only to record a plan that has already "
                                  "ended; not before started_on, not in the future")
    next_review_on: date | None = Field(None, description="the date of that plan's own next "
                                        "review (may be in the future), for combining reviews")
    note: str | None = Note


class LinkedPlanUpdate(BaseModel):
    """Only the fields sent are changed; ``next_review_on``, ``other_system_reference`` and
    ``note`` may be set to null to clear them."""

    model_config = ConfigDict(extra="forbid")
    owner_contact_id: str | None = Field(None, min_length=1, max_length=32,
                                         description="a new owner (same rules as when added)")
    ended_on: date | None = Field(None, description="the plan ended: not before it started, "
                                  "not in the future. An ended plan cannot be reopened")
    next_review_on: date | None = None
    other_system_reference: str | None = OtherRef
    note: str | None = Note


class OwnerOut(BaseModel):
    contact_id: str
    name: str
    email: str
    role: str | None
    active: bool
    service_id: str
    service_name: str
    agency: str


class LinkedPlanOut(BaseModel):
    id: str
    kind: str
    kind_label: str
    owner: OwnerOut
    other_system_reference: str | None
    started_on: date
    ended_on: date | None
    is_open: bool
    next_review_on: date | None
    note: str | None
    created_at: datetime
    can_combine: bool | None = Field(None, description=(
        f"the plan is open and its next review is within {COMBINE_WINDOW_DAYS} days (before or "
        "after) of the case's review meeting, so the two reviews can be held together; null "
        "when not read through a case"))


class LinkedPlansOut(BaseModel):
    reference: str
    review_meeting_on: date | None = Field(description="the review cycle's meeting date (none "
                                           "for an assessment, or before a meeting is set)")
    combine_window_days: int = COMBINE_WINDOW_DAYS
    plans: list[LinkedPlanOut] = Field(description="open plans first (looked-after, CP, CIN, "
                                       "Early Help), then ended ones, most recent first")


# --- helpers --------------------------------------------------------------------------------------


def case_child(session: Session, reference: str) -> tuple[str, t.Case | None]:
    """The child of the case (an assessment or a review cycle), from its ``case`` row; for an
    assessment just started, whose row the workflow has not written yet, from the child's claim
    on it. 404 if neither knows the reference."""
    row = session.get(t.Case, reference)
    if row is not None:
        return row.child_id, row
    child = session.exec(select(t.Child).where(t.Child.open_case_reference == reference)).first()
    if child is not None:
        return child.id, None
    raise ServiceError(404, f"No case has the reference {reference!r}; check the reference (an "
                   "assessment's, e.g. EHC-7QK2-M4TD, or a review cycle's, e.g. "
                   "EHC-7QK2-M4TD.R1)", "unknown_case")


def meeting_on(session: Session, row: t.Case | None) -> date | None:
    if row is None or row.kind != "review":
        return None
    review = session.get(t.Review, row.reference)
    return review.meeting_on if review is not None else None


def can_combine(plan: t.LinkedPlan, meeting: date | None) -> bool:
    return (plan.ended_on is None and plan.next_review_on is not None and meeting is not None
            and abs((plan.next_review_on - meeting).days) <= COMBINE_WINDOW_DAYS)


def _owner(session: Session, contact_id: str, kind: str) -> t.Contact:
    """The contact who will own a plan of this kind; 422 saying what to fix otherwise."""
    contact = session.get(t.Contact, contact_id)
    if contact is None:
        raise ServiceError(422, f"No contact has the id {contact_id!r}: the plan's owner must be in "
                       "the directory (find them with GET /api/directory/services/{id}, or add "
                       "them with POST /api/directory/services/{id}/contacts)", "invalid_input")
    service = session.get(t.Service, contact.service_id)
    if not contact.active:
        raise ServiceError(422, f"{contact.name} is no longer active in the directory: name the "
                       "plan's current owner", "invalid_input")
    if service is None or not service.active:
        raise ServiceError(422, f"{contact.name}'s service is no longer active in the directory: "
                       "name the plan's current owner, or reactivate the service",
                       "invalid_input")
    if kind in SOCIAL_CARE_KINDS and service.agency != "social_care":
        raise ServiceError(422, f"A {KIND_LABELS[kind]} is owned by a social worker, but "
                       f"{contact.name} works in {service.name!r}, which is not a social care "
                       "service: name a contact in a social care service", "invalid_input")
    return contact


def _check_dates(started_on: date, ended_on: date | None, next_review_on: date | None) -> None:
    now = today()
    if started_on > now:
        raise ServiceError(422, f"started_on {started_on} is in the future (today is {now}): record "
                       "the plan once it has started", "invalid_date")
    if ended_on is not None:
        if ended_on < started_on:
            raise ServiceError(422, f"ended_on {ended_on} is before the plan started "
                           f"({started_on}): check the dates", "invalid_date")
        if ended_on > now:
            raise ServiceError(422, f"ended_on {ended_on} is in the future (today is {now}): end "
                           "the plan on or after the day it ends", "invalid_date")
    if next_review_on is not None and next_review_on < started_on:
        raise ServiceError(422, f"next_review_on {next_review_on} is before the plan started "
                       f"({started_on}): check the dates", "invalid_date")


def _conflict(session: Session, child_id: str, kind: str) -> ServiceError:
    open_plan = session.exec(select(t.LinkedPlan).where(
        t.LinkedPlan.child_id == child_id, t.LinkedPlan.kind == kind,
        t.LinkedPlan.ended_on.is_(None))).first()  # type: ignore[union-attr]
    which = f" ({open_plan.id}, since {open_plan.started_on})" if open_plan else ""
    return ServiceError(409, f"This child already has an open {KIND_LABELS[kind]}{which}: change "
                    "its owner or dates with PATCH /api/linked-plans/{id}, or end it (ended_on) "
                    "before adding another", "duplicate_plan")


def _out(session: Session, plan: t.LinkedPlan, combine: bool | None) -> LinkedPlanOut:
    contact = session.get(t.Contact, plan.owner_contact_id)
    assert contact is not None  # a foreign key
    service = session.get(t.Service, contact.service_id)
    assert service is not None
    return LinkedPlanOut(
        id=plan.id, kind=plan.kind, kind_label=KIND_LABELS.get(plan.kind, plan.kind),
        owner=OwnerOut(contact_id=contact.id, name=contact.name, email=contact.email,
                       role=contact.role, active=contact.active, service_id=service.id,
                       service_name=service.name, agency=service.agency),
        other_system_reference=plan.other_system_reference, started_on=plan.started_on,
        ended_on=plan.ended_on, is_open=plan.ended_on is None,
        next_review_on=plan.next_review_on, note=plan.note, created_at=plan.created_at,
        can_combine=combine)


def _commit(session: Session, plan: t.LinkedPlan) -> None:
    session.add(plan)
    try:
        session.commit()
    except IntegrityError:  # another request opened a plan of this kind a moment ago
        session.rollback()
        raise _conflict(session, plan.child_id, plan.kind) from None
    session.refresh(plan)


# --- what the API does ----------------------------------------------------------------------------


def list_linked_plans(*, session: Session, reference: str) -> LinkedPlansOut:
    """The linked plans of the child of case ``reference``, with whether each can be reviewed
    with the case's review meeting. 404 for an unknown reference."""
    child_id, row = case_child(session, reference)
    meeting = meeting_on(session, row)
    plans = session.exec(select(t.LinkedPlan).where(t.LinkedPlan.child_id == child_id)).all()
    plans = sorted(plans, key=lambda p: (p.ended_on is not None, _ORDER.get(p.kind, 9),
                                         -(p.ended_on or p.started_on).toordinal()))
    return LinkedPlansOut(reference=reference, review_meeting_on=meeting,
                          plans=[_out(session, p, can_combine(p, meeting)) for p in plans])


def _check_other_reference(session: Session, child_id: str, value: str | None) -> None:
    """The other system's id of the plan holds none of the child's names or date of birth, no
    phone number or address (``domain.identifiers``; a number that reads as a date is
    allowed: such systems number their records)."""
    child = session.get(t.Child, child_id)
    if not value or child is None:
        return
    found = personal_data_in_reference(value, given_name=child.given_name,
                                       family_name=child.family_name,
                                       date_of_birth=child.date_of_birth)
    if found:
        raise ServiceError(422, f"other_system_reference contains {found}: give the plan's "
                           "id in the other system (for example its Mosaic number), with no "
                           "personal data", "invalid_input")


def add_linked_plan(*, session: Session, reference: str, body: LinkedPlanIn) -> LinkedPlanOut:
    """Record one of the child's other plans: 404 for an unknown case, 409 if the child already
    has an open plan of this kind, 422 for an unsuitable owner or impossible dates."""
    child_id, row = case_child(session, reference)
    _check_dates(body.started_on, body.ended_on, body.next_review_on)
    _check_other_reference(session, child_id, body.other_system_reference)
    _owner(session, body.owner_contact_id, body.kind)
    if body.ended_on is None and session.exec(select(t.LinkedPlan.id).where(
            t.LinkedPlan.child_id == child_id, t.LinkedPlan.kind == body.kind,
            t.LinkedPlan.ended_on.is_(None))).first() is not None:  # type: ignore[union-attr]
        raise _conflict(session, child_id, body.kind)
    plan = t.LinkedPlan(child_id=child_id, **body.model_dump())
    _commit(session, plan)
    return _out(session, plan, can_combine(plan, meeting_on(session, row)))


def update_linked_plan(*, session: Session, plan_id: str,
                       body: LinkedPlanUpdate) -> LinkedPlanOut:
    """Change the fields sent in ``body``: 404 for an unknown plan, 409 once it has ended, 422
    for an unsuitable owner or impossible dates."""
    plan = session.get(t.LinkedPlan, plan_id)
    if plan is None:
        raise ServiceError(404, f"No linked plan has the id {plan_id!r}; GET "
                       "/api/cases/{reference}/linked-plans lists a child's plans",
                       "unknown_linked_plan")
    sent = body.model_fields_set
    if not sent:
        raise ServiceError(422, "Nothing to change: send owner_contact_id, ended_on, "
                       "next_review_on, other_system_reference or note", "invalid_input")
    if plan.ended_on is not None:
        raise ServiceError(409, f"This {KIND_LABELS.get(plan.kind, plan.kind)} ended on "
                       f"{plan.ended_on} and is kept as it was: if the child has a new one, "
                       "add it with POST /api/cases/{reference}/linked-plans", "plan_ended")
    for name in ("owner_contact_id", "ended_on"):
        if name in sent and getattr(body, name) is None:
            hint = ("name the new owner" if name == "owner_contact_id"
                    else "an open plan has no end date already; leave ended_on out")
            raise ServiceError(422, f"{name} cannot be null: {hint}", "invalid_input")
    changes = body.model_dump(include=sent)
    _check_dates(plan.started_on, changes.get("ended_on"),
                 changes.get("next_review_on", plan.next_review_on))
    if changes.get("other_system_reference"):
        _check_other_reference(session, plan.child_id, changes["other_system_reference"])
    if "owner_contact_id" in changes:
        _owner(session, changes["owner_contact_id"], plan.kind)
    for name, value in changes.items():
        setattr(plan, name, value)
    _commit(session, plan)
    return _out(session, plan, None)
