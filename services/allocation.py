"""Who holds a case: the accounts that can hold cases (caseworkers and managers), and a manager
giving an assessment, or a plan with every one of its review cycles, to another caseworker (or to
nobody). Managers only: the policy in ``api/auth.py``.
"""

from __future__ import annotations

from pydantic import BaseModel, Field
from sqlmodel import Session, select

from services.errors import ServiceError
from store import tables as t

HOLDER_ROLES = ("caseworker", "manager")


class Caseworker(BaseModel):
    id: str
    name: str
    email: str
    role: str


class Assignment(BaseModel):
    caseworker_id: str | None = Field(description="the account to give it to; null: nobody")


def caseworkers(*, session: Session) -> list[t.StaffUser]:
    """Active accounts that can hold cases (caseworkers and managers), by name."""
    return list(session.exec(select(t.StaffUser).where(
        t.StaffUser.active, t.StaffUser.role.in_(HOLDER_ROLES))  # type: ignore[attr-defined]
        .order_by(t.StaffUser.name)).all())


def holder(session: Session, caseworker_id: str | None) -> str | None:
    """The account named to hold a case or a plan: an active caseworker or manager (the
    people ``caseworkers`` lists); None for nobody."""
    if caseworker_id is None:
        return None
    user = session.get(t.StaffUser, caseworker_id)
    if user is None or not user.active or user.role not in HOLDER_ROLES:
        raise ServiceError(422, f"caseworker_id {caseworker_id!r} is not an active caseworker or "
                           "manager: choose one from GET /api/caseworkers", "invalid_input")
    return user.id


def assign_case(*, session: Session, reference: str, caseworker_id: str | None) -> dict:
    """Give an assessment to ``caseworker_id`` (None: nobody), and commit. A review cycle is
    its plan's to give (``assign_plan``)."""
    row = session.get(t.Case, reference)
    if row is None:
        raise ServiceError(404, f"No case has the reference {reference!r}; check the reference",
                           "unknown_case")
    if row.kind == "review":
        plan = session.get(t.Review, reference).plan_reference  # type: ignore[union-attr]
        raise ServiceError(422, f"{reference} is a review cycle: give its plan to another "
                           f"caseworker instead (PUT /api/plans/{plan}/caseworker)", "not_a_case")
    row.caseworker_id = holder(session, caseworker_id)
    session.add(row)
    session.commit()
    return {"reference": reference, "caseworker_id": row.caseworker_id}


def assign_plan(*, session: Session, reference: str, caseworker_id: str | None) -> dict:
    """Give a plan, and every review cycle of it, to ``caseworker_id`` (None: nobody), and
    commit."""
    plan = session.get(t.Plan, reference)
    if plan is None:
        raise ServiceError(404, f"No plan has the reference {reference!r}; check the reference",
                           "unknown_plan")
    holder_id = holder(session, caseworker_id)
    plan.caseworker_id = holder_id
    session.add(plan)
    for cycle in session.exec(select(t.Case).where(t.Case.workflow_id == plan.workflow_id)):
        cycle.caseworker_id = holder_id  # every cycle, so the lists and statistics agree
        session.add(cycle)
    session.commit()
    return {"reference": reference, "caseworker_id": holder_id}
