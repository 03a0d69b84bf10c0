"""Sending the ADQA weekly digest (``services.digest``) and the group's daily message
(``services.adqa_daily``), each started by its Schedule."""

from __future__ import annotations

from datetime import date

from temporalio import activity

from services.adqa_daily import DailySender
from services.digest import DigestSender
from workflows.digest import ACTIVITY_NAME, DAILY_ACTIVITY_NAME, DailySummary, DigestSummary


class DigestActivities:
    def __init__(self, sender: DigestSender) -> None:
        self.sender = sender

    @activity.defn(name=ACTIVITY_NAME)
    async def send_adqa_digest(self, week_ending: date) -> DigestSummary:
        info = activity.info()
        return await self.sender.send(
            week_ending, f"{info.workflow_run_id}/{info.activity_id}#{info.attempt}",
            heartbeat=activity.heartbeat)


class DailyActivities:
    """Sending the ADQA group's daily message (``services.adqa_daily``)."""

    def __init__(self, sender: DailySender) -> None:
        self.sender = sender

    @activity.defn(name=DAILY_ACTIVITY_NAME)
    async def send_adqa_daily(self, day: date) -> DailySummary:
        info = activity.info()
        return await self.sender.send(
            day, f"{info.workflow_run_id}/{info.activity_id}#{info.attempt}",
            heartbeat=activity.heartbeat)
