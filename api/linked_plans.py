"""The child's other plans (action 3.2): the API's routes (tag "linked plans"). The models, the
rules and the queries are ``services.linked_plans``'s; see docs/linked-plans.md.

These routes read and write the database only; they do not need Temporal.
"""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import SessionDep
from services import linked_plans
from services.linked_plans import LinkedPlanIn, LinkedPlanOut, LinkedPlansOut, LinkedPlanUpdate

router = APIRouter(prefix="/api", tags=["linked plans"])


# --- routes ---------------------------------------------------------------------------------------


@router.get("/cases/{reference}/linked-plans", response_model=LinkedPlansOut,
            summary="The child's other plans (Early Help, CIN, CP, looked-after), with whether "
            "each can be reviewed with this review cycle's meeting",
            responses={404: {"description": "no case has this reference"}})
def list_linked_plans(reference: str, session: SessionDep) -> LinkedPlansOut:
    return linked_plans.list_linked_plans(session=session, reference=reference)


@router.post("/cases/{reference}/linked-plans", response_model=LinkedPlanOut, status_code=201,
             summary="Record one of the child's other plans and its owner",
             responses={404: {"description": "no case has this reference"},
                        409: {"description": "the child already has an open plan of this kind"},
                        422: {"description": "an unknown, inactive or unsuitable owner, or "
                              "impossible dates"}})
def add_linked_plan(reference: str, body: LinkedPlanIn, session: SessionDep) -> LinkedPlanOut:
    return linked_plans.add_linked_plan(session=session, reference=reference, body=body)


@router.patch("/linked-plans/{plan_id}", response_model=LinkedPlanOut,
              summary="End a linked plan, change its owner or its next review date",
              responses={404: {"description": "no linked plan has this id"},
                         409: {"description": "the plan has ended"},
                         422: {"description": "an unsuitable owner or impossible dates"}})
def update_linked_plan(plan_id: str, body: LinkedPlanUpdate,
                       session: SessionDep) -> LinkedPlanOut:
    return linked_plans.update_linked_plan(session=session, plan_id=plan_id, body=body)
