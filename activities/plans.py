"""Starting a plan's annual reviews once its final plan is issued (``services.reviews``)."""

from __future__ import annotations

from temporalio import activity

from domain.case import PlanIssued
from services.reviews import PlanStarter
from workflows.assessment import START_PLAN_REVIEW


class PlanActivities:
    def __init__(self, starter: PlanStarter) -> None:
        self.starter = starter

    @activity.defn(name=START_PLAN_REVIEW)
    async def start_plan_review(self, plan: PlanIssued) -> str:
        return await self.starter.start_plan_review(plan)
