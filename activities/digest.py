"""Sending the ADQA weekly digest (``services.digest``), started by the weekly Schedule."""

from __future__ import annotations

from datetime import date

from temporalio import activity

from services.digest import DigestSender
from workflows.digest import ACTIVITY_NAME, DigestSummary


class DigestActivities:
    def __init__(self, sender: DigestSender) -> None:
        self.sender = sender

    @activity.defn(name=ACTIVITY_NAME)
    async def send_adqa_digest(self, week_ending: date) -> DigestSummary:
        info = activity.info()
        return await self.sender.send(
            week_ending, f"{info.workflow_run_id}/{info.activity_id}#{info.attempt}",
            heartbeat=activity.heartbeat)
