"""The notifier: sends the emails of one step of an advice request's escalation ladder.

The workflow says which step fired and to which roles; ``Notifier.send`` (the activity
``send_advice_notice``) finds the people in the directory now, renders the email from ``templates/email/<template>.{txt,html}.j2``, and sends
each through the outbox (``services.mail``), so a retry or a restarted worker sends nothing
twice. Emails carry the case reference, the advice asked for, its dates and a link; never the
child's name or date of birth (the secure page behind the link shows what the professional
needs).

The ADQA group is not emailed step by step: an escalation to them is queued
(``services.adqa_daily``) and each member gets one daily message listing every case that
reached them since the last. Escalations say only what was actually sent before them, from the
outbox (``sent_before``), never what the ladder assumes.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from typing import Callable

from sqlmodel import Session

from domain.identifiers import is_review_cycle
from domain.words import long_date
from services.links import advice_url
from services.adqa_daily import queue_escalation, sent_before
from services.mail import Outbox, Outgoing
from services.rendering import render
from store import tables as t
from store.db import engine_for
from services.directory import Addressee, addressees
from domain.ladder import RECIPIENT_LABELS, AdviceNotice, NoticeResult, step_label
from config.settings import Settings
from statutory import days_overdue, london_date


SUBJECTS = {
    "advice_request": "Advice requested for {process} {ref}: due {due}",
    # the request of advice entered after its due date: how late it already is
    "advice_request_late": "Advice requested for {process} {ref}: it was due {due}, "
                           "{late} days ago",
    "advice_reminder": "Reminder: advice for {process} {ref} is due {due}",
    "advice_due_tomorrow": "Advice for {process} {ref} is due tomorrow ({due})",
    "advice_overdue": "Overdue: advice for {process} {ref} was due {due}",
    "advice_escalation_lead": "Escalation: advice for {process} {ref} is "
                              "{late} days overdue",
    "advice_repeat": "Still overdue: advice for {process} {ref} ({late} days)",
}


class Notifier:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.outbox = Outbox(settings)
        self.engine = engine_for(settings.db_url)

    def _context(self, n: AdviceNotice) -> tuple[list[Addressee], list[str], dict]:
        roles = [r for r in n.to if r != "adqa"]  # the ADQA group: queued, not emailed
        with Session(self.engine) as s:
            people, nobody = addressees(s, roles, n.service_id, n.contact_id) if roles \
                else ([], [])
            service = s.get(t.Service, n.service_id) if n.service_id else None
            contact = s.get(t.Contact, n.contact_id) if n.contact_id else None
            history = sent_before(s, n.reference, n.advice_key, n.step)
        owed_by = ", ".join(x for x in (contact.name if contact else None,
                                        service.name if service else None) if x)
        return people, nobody, {
            "owed_by": owed_by or "not assigned to a service",
            "service": service.name if service else None,
            "history": history,
            "professional_emailed": any(h["to"] == RECIPIENT_LABELS["professional"]
                                        for h in history),
        }

    async def send(self, n: AdviceNotice, tag: str,
                   heartbeat: Callable[[], None] | None = None) -> NoticeResult:
        """Email one ladder step to the people holding its roles now; ``tag`` names this
        attempt in the outbox, and ``heartbeat`` (an activity's) is called every 2 seconds
        while it works, so a slow mail server is not taken for a dead worker."""
        people, nobody, extra = await asyncio.to_thread(self._context, n)
        today = london_date(datetime.now(timezone.utc))
        late = days_overdue(max(today, n.on), n.due)
        result = NoticeResult(nobody=nobody)
        if "adqa" in n.to:
            result.queued_for, members = await asyncio.to_thread(
                queue_escalation, self.settings, n)
            if not members:
                result.nobody = [*result.nobody, "adqa"]
        beating = asyncio.create_task(_beat(heartbeat)) if heartbeat else None
        try:
            for person in people:
                await self._send_to(n, person, extra, late, tag, result)
        finally:
            if beating is not None:
                beating.cancel()
        return result

    async def _send_to(self, n: AdviceNotice, person: Addressee, extra: dict, late: int,
                       tag: str, result: NoticeResult) -> None:
        context = {
            **extra, "n": n, "person": person, "late": late,
            "step": step_label(n.step), "due": long_date(n.due),
            "requested": long_date(n.requested_on), "expected": long_date(n.expected_on),
            "sent_on": long_date(n.on),
            "link": advice_url(self.settings, n.reference, n.advice_key)
            if person.link else None,
            "council": self.settings.council_name,
            "is_review": is_review_cycle(n.reference),
            "process": "annual review" if is_review_cycle(n.reference)
            else "EHC needs assessment",
            "send_team_email": self.settings.send_team_email,
        }
        kind = f"{n.template}_late" if n.template == "advice_request" and late > 0 \
            else n.template
        subject = SUBJECTS.get(kind, "Advice for {process} {ref}").format(
            ref=n.reference, due=long_date(n.due), late=late, process=context["process"])
        sent = await self.outbox.send_once(Outgoing(
            key=f"advice:{n.reference}:{n.advice_key}:{n.step}:{person.address.lower()}",
            to_address=person.address, to_name=person.name, subject=subject,
            text=render(f"email/{n.template}.txt.j2", **context),
            html=render(f"email/{n.template}.html.j2", **context),
            template=n.template, recipient_role=person.role,
            case_reference=n.reference, advice_key=n.advice_key, step=n.step, step_on=n.on,
        ), tag)
        if sent.already:
            result.already_sent += 1
        elif sent.status == "sent":
            result.sent += 1
        else:
            result.rejected += 1


async def _beat(heartbeat: Callable[[], None], every: float = 2.0) -> None:
    while True:
        heartbeat()
        await asyncio.sleep(every)
