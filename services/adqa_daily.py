"""The ADQA group's daily message: the escalations that reached them, told once a day.

When a piece of advice's chasing reaches the ADQA group, the notifier does not email each
member: ``queue_escalation`` records it (``AdqaEscalation``, one row per case, advice and
ladder step, so a retried activity queues it once) for the day of the next daily message, and
the workflow records on the case "Escalated to the ADQA group; in their daily message of ...".

``DailySender.send(day)`` (the activity ``send_adqa_daily``, started every day by the Temporal
Schedule ``adqa-daily-message``, and ``ehc digest daily``) takes every escalation queued for
that day or before and not yet listed, marks it listed on ``day``, and emails each active
member one message listing all of them (outbox key ``adqa-daily:<day>:<email>``: at most one
per member and day, however often it runs). A day with nothing new sends nothing. See
docs/adqa-digest.md, "The daily message".

No personal data about children: cases are named by reference only.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import date, datetime, timedelta, timezone
from typing import Callable

from pydantic import BaseModel, Field
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select, update

from config.settings import Settings
from domain.ladder import RECIPIENT_LABELS, AdviceNotice, step_label
from domain.words import long_date
from services.mail import Outbox, Outgoing
from services.rendering import render
from statutory import days_overdue, london_date, london_midnight
from store import tables as t
from store.db import engine_for
from workflows.digest import DailySummary

log = logging.getLogger("ehc.adqa_daily")


def daily_settings():
    from services.digest import DigestScheduleSettings
    return DigestScheduleSettings()


def message_day(now: datetime, hour: int) -> date:
    """The day of the first daily message at or after ``now``: today's if it has not gone
    yet (before ``hour``:00 London time), else tomorrow's."""
    from statutory.clock import london_wallclock
    local = london_wallclock(now)
    return local.date() if local.hour < hour else local.date() + timedelta(days=1)


def escalation_key(reference: str, advice_key: str, step: str) -> str:
    return f"{reference}:{advice_key}:{step}"


def queue_escalation(settings: Settings, n: AdviceNotice,
                     now: datetime | None = None) -> tuple[date, int]:
    """Queue the escalation of ``n`` for the group's daily message, once: returns the day of
    the message it is in, and how many active members the group has now."""
    # The step's own day if it is still to come by the clock (a worker that ran ahead, or the
    # tests' skipped time), else now.
    now = max(now or datetime.now(timezone.utc), london_midnight(n.on))
    key = escalation_key(n.reference, n.advice_key, n.step)
    engine = engine_for(settings.db_url)
    with Session(engine) as s:
        members = len(s.exec(select(t.AdqaMember.id).where(t.AdqaMember.active)).all())
        row = s.exec(select(t.AdqaEscalation).where(t.AdqaEscalation.key == key)).first()
        if row is not None:
            return row.for_day, members
        row = t.AdqaEscalation(
            key=key, case_reference=n.reference, advice_key=n.advice_key, step=n.step,
            what=n.what[:120], service_id=n.service_id, contact_id=n.contact_id,
            requested_on=n.requested_on, due=n.due, step_on=n.on,
            for_day=message_day(now, daily_settings().daily_hour))
        s.add(row)
        try:
            s.commit()
        except IntegrityError:  # queued at the same moment by another attempt
            s.rollback()
            row = s.exec(select(t.AdqaEscalation).where(t.AdqaEscalation.key == key)).one()
        return row.for_day, members


def sent_before(session: Session, reference: str, advice_key: str,
                before_step: str | None = None) -> list[dict]:
    """The emails about one piece of advice that the outbox recorded as sent, oldest first,
    leaving out ``before_step``'s own: what an escalation may truthfully say was done.
    Each: ``step`` (words), ``to`` (the role, in words), ``on`` (the London date)."""
    rows = session.exec(select(t.EmailMessage).where(
        t.EmailMessage.case_reference == reference, t.EmailMessage.advice_key == advice_key,
        t.EmailMessage.status == "sent").order_by(t.EmailMessage.sent_at,
                                                  t.EmailMessage.id)).all()
    out: list[dict] = []
    for r in rows:
        if r.step == before_step or r.sent_at is None:
            continue
        at = r.sent_at if r.sent_at.tzinfo else r.sent_at.replace(tzinfo=timezone.utc)
        # The day it went: never before the step's own day (a clock that runs ahead of the
        # wall clock, as in tests, sends a step "early" by the wall clock).
        day = max(london_date(at), r.step_on or london_date(at))
        item = {"step": step_label(r.step or ""),
                "to": RECIPIENT_LABELS.get(r.recipient_role, r.recipient_role),
                "on": long_date(day), "day": day}
        if not out or (out[-1]["step"], out[-1]["to"], out[-1]["on"]) != \
                (item["step"], item["to"], item["on"]):
            out.append(item)  # one line for the same step to several members of a role
    return out


class DailyItem(BaseModel):
    case_reference: str
    advice: str = Field(description="the advice asked for")
    service: str = Field(description="who owes it")
    requested_on: date
    due: date
    days_overdue: int
    sent_before: list[str] = Field(description="the emails sent about it before, with dates")
    case_url: str


class DailyMessage(BaseModel):
    day: date
    items: list[DailyItem]


def case_url(settings: Settings, reference: str) -> str:
    return f"{settings.public_base_url.rstrip('/')}/cases/{reference}"


def daily_key(day: date, email: str) -> str:
    return f"adqa-daily:{day.isoformat()}:{email.strip().lower()}"


def daily_subject(m: DailyMessage) -> str:
    n = len(m.items)
    return (f"ADQA: {n} piece{'s' if n != 1 else ''} of advice newly escalated to you, "
            f"{long_date(m.day)}")


def build_daily(session: Session, settings: Settings, day: date) -> DailyMessage:
    """Mark every escalation queued for ``day`` or before and not yet listed as listed on
    ``day``, and return the message listing all listed on ``day`` (so a second run on the same
    day lists the same)."""
    session.exec(update(t.AdqaEscalation).where(
        t.AdqaEscalation.for_day <= day,
        t.AdqaEscalation.listed_on.is_(None)).values(listed_on=day))  # type: ignore[union-attr]
    session.commit()
    rows = session.exec(select(t.AdqaEscalation).where(t.AdqaEscalation.listed_on == day)
                        .order_by(t.AdqaEscalation.due, t.AdqaEscalation.case_reference,
                                  t.AdqaEscalation.advice_key)).all()
    items = []
    for r in rows:
        service = session.get(t.Service, r.service_id) if r.service_id else None
        contact = session.get(t.Contact, r.contact_id) if r.contact_id else None
        owed = ", ".join(x for x in (contact.name if contact else None,
                                     service.name if service else None) if x)
        history = [f"{h['on']}: {h['step']} to {h['to']}"
                   for h in sent_before(session, r.case_reference, r.advice_key)
                   if h["day"] <= day]
        items.append(DailyItem(
            case_reference=r.case_reference, advice=r.what[:1].upper() + r.what[1:],
            service=owed or "no service named", requested_on=r.requested_on, due=r.due,
            days_overdue=days_overdue(day, r.due), sent_before=history,
            case_url=case_url(settings, r.case_reference)))
    return DailyMessage(day=day, items=items)


class DailySender:
    """Sends the day's message to each active member, once per member and day."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.outbox = Outbox(settings)
        self.engine = engine_for(settings.db_url)

    def _prepare(self, day: date) -> tuple[DailyMessage, list[tuple[str, str]]]:
        with Session(self.engine) as s:
            message = build_daily(s, self.settings, day)
            members: dict[str, tuple[str, str]] = {}
            for m in s.exec(select(t.AdqaMember).where(t.AdqaMember.active)
                            .order_by(t.AdqaMember.email)):
                members.setdefault(m.email.strip().lower(), (m.name, m.email.strip()))
        return message, list(members.values())

    async def send(self, day: date, tag: str,
                   heartbeat: Callable[[str], None] | None = None) -> DailySummary:
        message, members = await asyncio.to_thread(self._prepare, day)
        summary = DailySummary(day=day, items=len(message.items), recipients=len(members))
        if not message.items:
            return summary  # nothing newly escalated: no email
        if not members:
            log.warning("ADQA daily message for %s: no active ADQA members", day)
        ctx = {"m": message, "council": self.settings.council_name,
               "send_team_email": self.settings.send_team_email, "long_date": long_date}
        for name, email in members:
            if heartbeat is not None:
                heartbeat(email)
            sent = await self.outbox.send_once(Outgoing(
                key=daily_key(day, email), to_address=email, to_name=name,
                subject=daily_subject(message),
                text=render("email/adqa_daily.txt.j2", member_name=name, **ctx),
                html=render("email/adqa_daily.html.j2", member_name=name, **ctx),
                template="adqa_daily", recipient_role="adqa", step="adqa_daily", step_on=day,
            ), tag)
            if sent.already:
                summary.already_sent += 1
            elif sent.status == "sent":
                summary.sent += 1
            else:
                summary.rejected += 1
        return summary

    async def send_now(self, day: date) -> DailySummary:
        """Outside Temporal (``ehc digest daily``): the same sending, one attempt."""
        return await self.send(day, f"cli-{uuid.uuid4().hex}#1")


def daily_messages_for(session: Session, reference: str) -> list[t.EmailMessage]:
    """The daily messages that listed a case's escalations, as sent: the case's email list
    shows them with its own emails."""
    days = {r.listed_on for r in session.exec(select(t.AdqaEscalation).where(
        t.AdqaEscalation.case_reference == reference,
        t.AdqaEscalation.listed_on.is_not(None)))}  # type: ignore[union-attr]
    if not days:
        return []
    return list(session.exec(select(t.EmailMessage).where(
        t.EmailMessage.template == "adqa_daily",
        t.EmailMessage.step_on.in_(days))).all())  # type: ignore[union-attr]
