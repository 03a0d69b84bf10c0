"""Starting a plan's annual reviews: after an assessment issues its final plan (and, later,
for each plan imported from a council's caseload).

The activity reads what the review workflow needs from the database (only the child's fifth
birthday, for the shorter cycle of the under-fives; never a name) and starts the workflow
``review-<plan reference>``. Starting is idempotent: an existing workflow with that ID is
left as it is, so a retried activity or a replayed assessment never starts a second one.
"""

from __future__ import annotations

import asyncio
from datetime import date

from sqlmodel import Session
from temporalio import activity
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from models import tables as t
from models.db import engine_for
from models.schemas import PlanIssued, ReviewPolicy, StartReview
from models.settings import Settings
from workflows.review import ReviewWorkflow, workflow_id_for_plan


def fifth_birthday(born: date) -> date:
    try:
        return born.replace(year=born.year + 5)
    except ValueError:  # born on 29 February
        return date(born.year + 5, 3, 1)


class PlanStarter:
    def __init__(self, client: Client, settings: Settings) -> None:
        self.client, self.settings = client, settings
        self.engine = engine_for(settings.db_url)

    def _born(self, child_id: str) -> date | None:
        with Session(self.engine) as s:
            child = s.get(t.Child, child_id)
            return child.date_of_birth if child else None

    async def start(self, start: StartReview, *, existing_ok: bool = True) -> str:
        """Start the plan's review workflow. A plan that already has one (running or ended)
        keeps it: with ``existing_ok`` that is success, otherwise it raises
        ``WorkflowAlreadyStartedError`` (the import reports it as already imported)."""
        handle = await self.client.start_workflow(
            ReviewWorkflow.run, start, id=workflow_id_for_plan(start.plan_reference),
            task_queue=self.settings.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING if existing_ok
            else WorkflowIDConflictPolicy.FAIL,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )
        return handle.id

    @activity.defn(name="start_plan_review")
    async def start_plan_review(self, plan: PlanIssued) -> str:
        born = await asyncio.to_thread(self._born, plan.child_id)
        under_five = fifth_birthday(born) if born else None
        policy = ReviewPolicy(due_soon_days=self.settings.due_soon_days,
                              under_five_months=self.settings.under_five_review_months)
        return await self.start(StartReview(
            plan_reference=plan.plan_reference, child_id=plan.child_id,
            plan_issued_on=plan.issued_on, policy=policy, origin="assessment",
            under_five_until=under_five if under_five and under_five > plan.issued_on else None,
        ))
