"""Emailing one step of an advice request's escalation ladder (``services.notify``)."""

from __future__ import annotations

from temporalio import activity

from domain.ladder import AdviceNotice, NoticeResult
from services.notify import Notifier
from workflows.casework import SEND_ADVICE_NOTICE


class NotifyActivities:
    def __init__(self, notifier: Notifier) -> None:
        self.notifier = notifier

    @activity.defn(name=SEND_ADVICE_NOTICE)
    async def send_advice_notice(self, n: AdviceNotice) -> NoticeResult:
        info = activity.info()
        return await self.notifier.send(
            n, f"{info.workflow_id}/{info.activity_id}#{info.attempt}",
            heartbeat=activity.heartbeat)
