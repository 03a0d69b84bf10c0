"""The ADQA weekly digest: every overdue piece of advice, by agency and service, and the
week's compliance rate per agency, for the assistant directors' quality-assurance group.

``build_digest`` reads the database and works the digest out as of a date (the last day of
the week it is for); the definitions are in ``docs/adqa-digest.md`` and the tests pin them
down. ``DigestSender.send`` emails it to each active ADQA member through the outbox, once per
week and member (the activity ``send_adqa_digest`` and ``ehc digest send`` call it). ``ensure_digest_schedule`` creates or
updates the Temporal Schedule that starts ``AdqaDigestWorkflow`` every week.

No personal data about children: the digest names cases by reference only.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Callable
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import or_
from sqlmodel import Session, select
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleCalendarSpec,
    ScheduleHandle,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from domain.words import long_date, long_time
from services.mail import Outbox, Outgoing
from services.rendering import render
from store import tables as t
from store.db import engine_for
from domain.agencies import AGENCIES, advice_agency, agency_label
from domain.ladder import step_label as ladder_step_label
from domain.case import AdviceSource
from config.settings import Settings
from statutory import RULES, ExceptionKind, days_overdue, excusing_exceptions
from workflows.digest import (
    DAILY_RUN_TIMEOUT,
    DAILY_SCHEDULE_ID,
    DAILY_WORKFLOW_NAME,
    DIGEST_RUN_TIMEOUT,
    MONDAY,
    SCHEDULE_ID,
    WORKFLOW_NAME,
    DigestRequest,
    DigestSummary,
    week_ending_for,
)

log = logging.getLogger("ehc.digest")
LONDON = ZoneInfo("Europe/London")
NOT_ASSIGNED = "Not assigned"
NO_ADVICE_DUE = "no advice was due"
ADVICE_RULE = RULES["assessment.advice_due"]

# --- the digest ---------------------------------------------------------------------------------


class OverdueAdvice(BaseModel):
    case_reference: str
    advice_key: str
    advice: str = Field(description="what advice was asked for")
    requested_on: date
    due: date
    days_overdue: int = Field(description="days from the due date to the week's last day")
    last_escalation: str | None = Field(
        None, description="the last step of the chasing ladder fired (from alerts_fired)")
    last_escalation_label: str | None = None
    last_email_at: datetime | None = Field(
        None, description="when the last email about this advice was sent (London time)")
    last_email_step: str | None = None
    last_email_label: str | None = None


class ServiceGroup(BaseModel):
    service_id: str | None
    service: str
    items: list[OverdueAdvice]


class AgencyGroup(BaseModel):
    agency: str
    label: str
    overdue: int
    services: list[ServiceGroup]


class Compliance(BaseModel):
    agency: str
    label: str
    on_time: int = Field(description="numerator: received on or before the due date")
    due: int = Field(description="denominator: due in the week, not excused")
    percent: float | None = Field(description="on_time / due x 100, one decimal place; "
                                  "null when no advice was due")
    summary: str

    @classmethod
    def of(cls, agency: str, label: str, on_time: int, due: int) -> Compliance:
        if due == 0:
            return cls(agency=agency, label=label, on_time=0, due=0, percent=None,
                       summary=NO_ADVICE_DUE)
        pct = float((Decimal(100 * on_time) / Decimal(due)).quantize(
            Decimal("0.1"), rounding=ROUND_HALF_UP))
        return cls(agency=agency, label=label, on_time=on_time, due=due, percent=pct,
                   summary=f"{on_time} of {due} on time ({pct:g}%)")


class Digest(BaseModel):
    week_ending: date = Field(description="the last day of the week; the digest is as of it")
    week_starting: date
    overdue_count: int
    agencies: list[AgencyGroup] = Field(description="agencies with overdue advice, most "
                                        "overdue first")
    compliance: list[Compliance] = Field(description="the week's compliance, per agency")
    compliance_total: Compliance


def step_label(step: str, has_ladder: bool = True) -> str:
    """How far the chasing went: 'escalate_lead' -> 'Escalated to the service lead',
    'repeat-3' -> 'Repeat reminder 3'. Items requested before advice chasing existed only
    mark 'due_soon' and 'overdue' (no email)."""
    if not has_ladder and step in ("due_soon", "overdue"):
        return f"Marked {step.replace('_', ' ')} (no email)"
    return ladder_step_label(step, done=True)


def advice_label(source: str, label: str | None) -> str:
    if label:
        return label[:1].upper() + label[1:]
    try:
        text = AdviceSource(source).label
    except ValueError:
        text = source.replace("_", " ")
    return text[:1].upper() + text[1:]


@dataclass(frozen=True)
class _Exc:
    """An exception as it stood on the digest's date (withdrawn later: still in force)."""

    id: str
    kind: ExceptionKind
    advice_key: str | None
    starts_on: date
    ends_on: date | None
    withdrawn_on: date | None


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)  # SQLite drops the zone


def _chunks(seq: list, n: int = 500):
    for i in range(0, len(seq), n):
        yield seq[i:i + n]


def build_digest(session: Session, week_ending: date) -> Digest:
    """The digest as of ``week_ending`` (see docs/adqa-digest.md for the definitions)."""
    week_starting = week_ending - timedelta(days=6)
    A = t.AdviceItem
    rows = session.exec(
        select(A, t.Case).join(t.Case, t.Case.reference == A.case_reference).where(
            A.due <= week_ending,
            A.reused == False,  # noqa: E712 - SQL
            or_(A.due >= week_starting, A.received_on.is_(None),  # type: ignore[union-attr]
                A.received_on > week_ending),  # type: ignore[operator]
        )
    ).all()
    refs = sorted({case.reference for _, case in rows})

    exceptions: dict[str, list[_Exc]] = {}
    emails: dict[tuple[str, str], t.EmailMessage] = {}
    for chunk in _chunks(refs):
        for e in session.exec(select(t.CaseException).where(
                t.CaseException.case_reference.in_(chunk))):  # type: ignore[attr-defined]
            try:
                kind = ExceptionKind(e.kind)
            except ValueError:
                continue
            withdrawn = e.withdrawn_on if e.withdrawn_on and e.withdrawn_on <= week_ending \
                else None
            exceptions.setdefault(e.case_reference, []).append(
                _Exc(e.id, kind, e.advice_key, e.starts_on, e.ends_on, withdrawn))
        for m in session.exec(select(t.EmailMessage).where(
                t.EmailMessage.case_reference.in_(chunk),  # type: ignore[union-attr]
                t.EmailMessage.status == "sent",
                t.EmailMessage.advice_key.is_not(None))):  # type: ignore[union-attr]
            if m.sent_at is None:
                continue
            k = (m.case_reference or "", m.advice_key or "")
            if k not in emails or _aware(m.sent_at) > _aware(emails[k].sent_at):  # type: ignore[arg-type]
                emails[k] = m
    service_ids = sorted({a.service_id for a, _ in rows if a.service_id})
    services = {s.id: s for chunk in _chunks(service_ids)
                for s in session.exec(select(t.Service).where(
                    t.Service.id.in_(chunk)))}  # type: ignore[attr-defined]

    groups: dict[str, dict[str | None, list[OverdueAdvice]]] = {}
    tally: dict[str, list[int]] = {a: [0, 0] for a in AGENCIES}  # agency: [on_time, due]
    for item, case in rows:
        excused = excusing_exceptions(ADVICE_RULE, item.requested_on, item.due,
                                      exceptions.get(case.reference, []),
                                      advice_key=item.key)
        if excused:
            continue
        service = services.get(item.service_id) if item.service_id else None
        agency = advice_agency(item.source, service.agency if service is not None else None)
        received_by_then = item.received_on is not None and item.received_on <= week_ending
        closed_on = case.closed_on if case.closed_on is not None or case.is_open \
            else date.min  # closed without a date: treat as closed all along
        open_then = closed_on is None or closed_on > week_ending

        if item.due < week_ending and not received_by_then and open_then:
            fired = [str(s) for s in (item.alerts_fired or [])]
            last = fired[-1] if fired else None
            mail = emails.get((case.reference, item.key))
            groups.setdefault(agency, {}).setdefault(
                service.id if service else None, []).append(OverdueAdvice(
                    case_reference=case.reference, advice_key=item.key,
                    advice=advice_label(item.source, item.label),
                    requested_on=item.requested_on, due=item.due,
                    days_overdue=days_overdue(week_ending, item.due),
                    last_escalation=last,
                    last_escalation_label=step_label(last, item.ladder is not None)
                    if last else None,
                    last_email_at=_aware(mail.sent_at).astimezone(LONDON)  # type: ignore[arg-type]
                    if mail else None,
                    last_email_step=mail.step if mail else None,
                    last_email_label=step_label(mail.step) if mail and mail.step else None,
                ))

        if week_starting <= item.due <= week_ending:
            on_time = item.received_on is not None and item.received_on <= item.due
            # A case closed by its due date no longer needed advice that had not come.
            moot = closed_on is not None and closed_on <= item.due and not on_time
            if not moot:
                counts = tally.setdefault(agency, [0, 0])
                counts[0] += on_time
                counts[1] += 1

    agencies: list[AgencyGroup] = []
    for agency, by_service in groups.items():
        svc_groups = []
        for sid, items in by_service.items():
            items.sort(key=lambda i: (-i.days_overdue, i.case_reference, i.advice_key))
            svc_groups.append(ServiceGroup(
                service_id=sid, service=services[sid].name if sid else NOT_ASSIGNED,
                items=items))
        svc_groups.sort(key=lambda g: (-g.items[0].days_overdue, g.service_id is None,
                                       g.service.lower()))
        agencies.append(AgencyGroup(agency=agency, label=agency_label(agency),
                                    overdue=sum(len(g.items) for g in svc_groups),
                                    services=svc_groups))
    order = {a: i for i, a in enumerate(AGENCIES)}
    agencies.sort(key=lambda g: (-g.services[0].items[0].days_overdue,
                                 order.get(g.agency, len(order)), g.agency))
    compliance = [Compliance.of(a, agency_label(a), c[0], c[1]) for a, c in
                  sorted(tally.items(), key=lambda x: (order.get(x[0], len(order)), x[0]))]
    total = Compliance.of("all", "All agencies", sum(c.on_time for c in compliance),
                          sum(c.due for c in compliance))
    return Digest(week_ending=week_ending, week_starting=week_starting,
                  overdue_count=sum(a.overdue for a in agencies), agencies=agencies,
                  compliance=compliance, compliance_total=total)


# --- the email ----------------------------------------------------------------------------------


def digest_url(settings: Settings, week_ending: date) -> str:
    return (f"{settings.public_base_url.rstrip('/')}/adqa/digest"
            f"?week_ending={week_ending.isoformat()}")


def digest_subject(d: Digest) -> str:
    """Short enough never to be folded (folded subjects read badly in some clients)."""
    n = d.overdue_count
    return f"ADQA digest: week ending {long_date(d.week_ending)}, {n or 'none'} overdue"


def digest_key(week_ending: date, email: str) -> str:
    """The outbox key: one digest per week and member, whatever re-runs happen."""
    return f"adqa-digest:{week_ending.isoformat()}:{email.strip().lower()}"


def render_digest_email(settings: Settings, d: Digest, name: str | None) -> tuple[str, str]:
    """(plain text, HTML) of the email to one member."""
    ctx: dict[str, Any] = {
        "d": d, "member_name": name, "council": settings.council_name,
        "send_team_email": settings.send_team_email, "url": digest_url(settings, d.week_ending),
        "long_date": long_date, "long_time": long_time,
    }
    return render("email/adqa_digest.txt.j2", **ctx), render("email/adqa_digest.html.j2", **ctx)


@dataclass(frozen=True)
class _Member:
    name: str
    email: str


class DigestSender:
    """Emails the digest. Safe to retry and to run again for the same week: the outbox sends
    each (week, member) email once."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.outbox = Outbox(settings)
        self.engine = engine_for(settings.db_url)

    def _prepare(self, week_ending: date) -> tuple[Digest, list[_Member]]:
        with Session(self.engine) as s:
            digest = build_digest(s, week_ending)
            members: dict[str, _Member] = {}
            for m in s.exec(select(t.AdqaMember).where(t.AdqaMember.active)
                            .order_by(t.AdqaMember.email)):
                members.setdefault(m.email.strip().lower(), _Member(m.name, m.email.strip()))
        return digest, list(members.values())

    async def send(self, week_ending: date, tag: str,
                   heartbeat: Callable[[str], None] | None = None) -> DigestSummary:
        """Send the week's digest; ``tag`` names this attempt in the outbox, and ``heartbeat``
        (an activity's) is told of each member before their email goes."""
        digest, members = await asyncio.to_thread(self._prepare, week_ending)
        summary = DigestSummary(week_ending=week_ending, recipients=len(members),
                                overdue_items=digest.overdue_count)
        if not members:
            log.warning("ADQA digest for %s: no active ADQA members to send it to", week_ending)
        subject = digest_subject(digest)
        for m in members:
            if heartbeat is not None:
                heartbeat(m.email)
            text, html = render_digest_email(self.settings, digest, m.name)
            sent = await self.outbox.send_once(Outgoing(
                key=digest_key(week_ending, m.email), to_address=m.email, to_name=m.name,
                subject=subject, text=text, html=html, template="adqa_digest",
                recipient_role="adqa", step="adqa_digest",
            ), tag)
            # Nothing sent now: an earlier run or attempt dealt with this week's email.
            if getattr(sent, "already", False) or sent.status == "already_sent":
                summary.already_sent += 1
            elif sent.status == "sent":
                summary.sent += 1
            elif sent.status == "rejected":
                summary.rejected += 1
            else:
                summary.already_sent += 1
        return summary

    async def send_now(self, week_ending: date) -> DigestSummary:
        """Outside Temporal (``ehc digest send``): the same sending, one attempt."""
        return await self.send(week_ending, f"cli-{uuid.uuid4().hex}#1")


# --- the schedule -------------------------------------------------------------------------------

WEEKDAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
TIME_ZONE = "Europe/London"
CATCHUP_WINDOW = timedelta(days=1)


class DigestScheduleSettings(BaseSettings):
    """When the digest goes: ``EHC_DIGEST_WEEKDAY`` (monday ... sunday, or 0-6 with 0 =
    Monday; default monday) and ``EHC_DIGEST_HOUR`` (0-23, London time; default 8)."""

    model_config = SettingsConfigDict(env_prefix="EHC_DIGEST_", env_file=".env",
                                      extra="ignore")

    weekday: int = Field(MONDAY, ge=0, le=6, description="0 = Monday ... 6 = Sunday")
    hour: int = Field(8, ge=0, le=23, description="hour of the day, London time")
    daily_hour: int = Field(17, ge=0, le=23, description="hour of the ADQA group's daily "
                            "message of new escalations, London time (EHC_DIGEST_DAILY_HOUR)")

    @field_validator("weekday", mode="before")
    @classmethod
    def _weekday_name(cls, v: Any) -> Any:
        if isinstance(v, str) and not v.strip().isdecimal():
            name = v.strip().lower()
            for i, day in enumerate(WEEKDAY_NAMES):
                if len(name) >= 3 and day.startswith(name):
                    return i
            raise ValueError(f"{v!r} is not a day of the week: write monday ... sunday")
        return v

    def describe(self) -> str:
        return f"every {WEEKDAY_NAMES[self.weekday].capitalize()} at {self.hour:02d}:00 " \
               f"({TIME_ZONE})"

    def describe_daily(self) -> str:
        return f"every day at {self.daily_hour:02d}:00 ({TIME_ZONE})"


def current_week_ending(today: date, cfg: DigestScheduleSettings | None = None) -> date:
    """The week the digest sent on or before ``today`` is for."""
    return week_ending_for(today, (cfg or DigestScheduleSettings()).weekday)


def digest_schedule(settings: Settings, cfg: DigestScheduleSettings) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            WORKFLOW_NAME, DigestRequest(digest_weekday=cfg.weekday), id=SCHEDULE_ID,
            task_queue=settings.task_queue, execution_timeout=DIGEST_RUN_TIMEOUT,
        ),
        spec=ScheduleSpec(
            calendars=[ScheduleCalendarSpec(
                second=[ScheduleRange(0)], minute=[ScheduleRange(0)],
                hour=[ScheduleRange(cfg.hour)],
                # Temporal counts days of the week from Sunday (0); Python from Monday.
                day_of_week=[ScheduleRange((cfg.weekday + 1) % 7)],
                comment="ADQA weekly digest",
            )],
            time_zone_name=TIME_ZONE,
        ),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP,
                              catchup_window=CATCHUP_WINDOW),
        state=ScheduleState(note=f"ADQA weekly digest, {cfg.describe()}"),
    )


def daily_schedule(settings: Settings, cfg: DigestScheduleSettings) -> Schedule:
    """The ADQA group's daily message (``services.adqa_daily``): every day at
    ``cfg.daily_hour``, London time."""
    return Schedule(
        action=ScheduleActionStartWorkflow(
            DAILY_WORKFLOW_NAME, id=DAILY_SCHEDULE_ID, task_queue=settings.task_queue,
            execution_timeout=DAILY_RUN_TIMEOUT,
        ),
        spec=ScheduleSpec(
            calendars=[ScheduleCalendarSpec(
                second=[ScheduleRange(0)], minute=[ScheduleRange(0)],
                hour=[ScheduleRange(cfg.daily_hour)],
                day_of_week=[ScheduleRange(0, 6)],
                comment="ADQA daily message",
            )],
            time_zone_name=TIME_ZONE,
        ),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP,
                              catchup_window=CATCHUP_WINDOW),
        state=ScheduleState(note=f"ADQA daily message, {cfg.describe_daily()}"),
    )


def _calendar_shape(spec: ScheduleSpec) -> list[tuple]:
    return [(tuple(c.second), tuple(c.minute), tuple(c.hour), tuple(c.day_of_month),
             tuple(c.month), tuple(c.year), tuple(c.day_of_week)) for c in spec.calendars]


async def _same(client: Client, have: Schedule, want: Schedule) -> bool:
    a, b = have.action, want.action
    if not (isinstance(a, ScheduleActionStartWorkflow)
            and isinstance(b, ScheduleActionStartWorkflow)):
        return False
    try:
        args = await client.data_converter.decode(
            list(a.args), [DigestRequest] * len(a.args))  # type: ignore[arg-type]
    except Exception:  # written with another key or shape: rewrite it
        return False
    return (a.workflow == b.workflow and a.task_queue == b.task_queue and a.id == b.id
            and a.execution_timeout == b.execution_timeout and list(args) == list(b.args)
            and _calendar_shape(have.spec) == _calendar_shape(want.spec)
            and not have.spec.intervals and not have.spec.cron_expressions
            and have.spec.time_zone_name == want.spec.time_zone_name
            and have.policy.overlap == want.policy.overlap
            and have.policy.catchup_window == want.policy.catchup_window)


async def ensure_digest_schedule(client: Client, settings: Settings,
                                 cfg: DigestScheduleSettings | None = None, *,
                                 log_errors: bool = False) -> ScheduleHandle | None:
    """Create the weekly schedule and the daily one (the ADQA group's daily message), or
    bring existing ones in line with the settings (keeping one paused if someone paused it).
    Safe to call at every start, from several workers at once. With ``log_errors`` (the
    worker) a failure is logged, not raised: the worker's cases matter more than the digest.
    Returns the weekly schedule's handle."""
    cfg = cfg or DigestScheduleSettings()
    await _ensure(client, DAILY_SCHEDULE_ID, daily_schedule(settings, cfg),
                          cfg.describe_daily(), log_errors)
    weekly = await _ensure(client, SCHEDULE_ID, digest_schedule(settings, cfg),
                           cfg.describe(), log_errors)
    return weekly


async def _ensure(client: Client, schedule_id: str, want: Schedule, describe: str,
                  log_errors: bool) -> ScheduleHandle | None:
    try:
        try:
            return await client.create_schedule(schedule_id, want)
        except ScheduleAlreadyRunningError:
            pass
        handle = client.get_schedule_handle(schedule_id)

        async def updater(inp: ScheduleUpdateInput) -> ScheduleUpdate | None:
            have = inp.description.schedule
            if await _same(client, have, want):
                return None
            log.info("updating schedule %s: %s", schedule_id, describe)
            state = replace(want.state, paused=have.state.paused,
                            note=have.state.note if have.state.paused else want.state.note)
            return ScheduleUpdate(schedule=replace(want, state=state))

        for attempt in range(3):  # another worker updating at the same moment: look again
            try:
                await handle.update(updater)
                break
            except Exception:
                if attempt == 2:
                    raise
                await asyncio.sleep(0.5)
        return handle
    except Exception:
        if not log_errors:
            raise
        log.exception("could not create or update the ADQA schedule %s", schedule_id)
        return None


async def next_run_times(handle: ScheduleHandle, n: int = 5) -> list[datetime]:
    desc = await handle.describe()
    return [dt.astimezone(LONDON) for dt in desc.info.next_action_times[:n]]
