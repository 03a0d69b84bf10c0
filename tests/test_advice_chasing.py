"""Chasing advice: the escalation ladder in Temporal's time-skipping server, with the real
notifier sending through a real SMTP server (aiosmtpd in the test process) and recording each
email in a real database."""

from __future__ import annotations

import asyncio
import time
import uuid
from contextlib import asynccontextmanager
from datetime import date, timedelta

import pytest
from sqlmodel import Session, select

from store import tables as t
from store.db import engine_for
from services.directory import ConfigError, load_escalation, resolve_request
from domain.ladder import Ladder
from domain.case import (
    AdviceRequest,
    AdviceSource,
    CloseCase,
    DecideToAssess,
    RecordAdvice,
    RecordException,
    ReportAdviceDelay,
    RequestAdvice,
)
from domain.words import long_date
from statutory import ExceptionKind
from tests.conftest import settings_for
from tests.test_assessment_workflow import Case
from tests.test_assessment_workflow import start_case as _start_case
from worker.main import build_worker
from workflows.assessment import AssessmentWorkflow

PRO = "dr.owen@health.example"
LEAD = "lead.paeds@health.example"
TEAM = "paediatrics@health.example"
ADQA = ["ad.education@council.example", "ad.health@council.example"]


def add_directory(db_url: str) -> dict[str, str]:
    with Session(engine_for(db_url)) as s:
        svc = t.Service(name=f"Community Paediatrics {uuid.uuid4().hex[:6]}", agency="health",
                        team_email=TEAM, is_default=True)
        s.add(svc)
        s.flush()
        pro = t.Contact(service_id=svc.id, name="Dr Rhys Owen", email=PRO, role="Paediatrician")
        lead = t.Contact(service_id=svc.id, name="Dr Ann Lead", email=LEAD, is_lead=True)
        s.add_all([pro, lead])
        for i, addr in enumerate(ADQA):
            if s.exec(select(t.AdqaMember).where(t.AdqaMember.email == addr)).first() is None:
                s.add(t.AdqaMember(name=f"Assistant Director {i + 1}", email=addr))
        s.commit()
        return {"service": svc.id, "pro": pro.id, "lead": lead.id}


@asynccontextmanager
async def chasing_worker(env, db_url, executor, smtp, task_queue: str | None = None,
                         terminate: bool = True, **options):
    """A worker with the notifier pointed at ``smtp``. Cases started in it are terminated at
    the end: an open case whose timer fires with no worker left would hold the time-skipping
    server's clock still for the tests after it."""
    settings = settings_for(db_url, task_queue or f"tq-{uuid.uuid4().hex[:8]}",
                            smtp_host=smtp.host,
                            smtp_port=smtp.port, link_secret="test-link-secret",
                            public_base_url="https://ehc.council.example")
    before = set(_started)
    try:
        async with build_worker(env.client, settings, executor, **options):
            yield settings
    finally:
        for handle in [h for h in _started if h not in before and terminate]:
            try:
                await handle.terminate("test over")
            except Exception:  # already closed
                pass


_started: list = []


async def start_case(env, settings, db_url) -> Case:
    case = await _start_case(env, settings, db_url)
    _started.append(case.handle)
    return case


async def request_health_advice(case: Case, settings, ids, day: int = 21, **extra) -> None:
    await case.go_to(day - 1)
    await case.do("decide_to_assess", DecideToAssess(decision="assess",
                                                     decided_on=case.day(day - 1)))
    await case.go_to(day)
    req = AdviceRequest(source=AdviceSource.HEALTH, requested_on=case.day(day),
                        contact_id=ids["pro"], **extra)
    with Session(engine_for(settings.db_url)) as s:
        req = resolve_request(s, load_escalation(settings), req)
    await case.do("request_advice", RequestAdvice(items=[req]))


async def fired(case: Case, key: str = "health") -> list[str]:
    snap = await case.handle.query(AssessmentWorkflow.snapshot)
    return next(a for a in snap.advice if a.key == key).alerts_fired


def emails(db_url: str, ref: str) -> list[t.EmailMessage]:
    with Session(engine_for(db_url)) as s:
        return list(s.exec(select(t.EmailMessage).where(t.EmailMessage.case_reference == ref)
                           .order_by(t.EmailMessage.id)))


async def settle(predicate, timeout: float = 20.0):
    """Wait (real time) for background sends to land."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


def queued(db_url: str, ref: str) -> list[t.AdqaEscalation]:
    with Session(engine_for(db_url)) as s:
        return list(s.exec(select(t.AdqaEscalation).where(
            t.AdqaEscalation.case_reference == ref).order_by(t.AdqaEscalation.id)))


async def daily_message(env, settings, day: date):
    """The ADQA group's daily message for ``day``, as its schedule starts it: the daily
    workflow, on the worker."""
    from workflows.digest import AdqaDailyWorkflow
    return await env.client.execute_workflow(
        AdqaDailyWorkflow.run, day, id=f"adqa-daily-{uuid.uuid4().hex[:8]}",
        task_queue=settings.task_queue)


def received(smtp, ref: str) -> list[tuple[str, str]]:
    """(recipient, step) of each email the server received for case ``ref``, in order."""
    out = []
    for m in smtp.messages():
        if ref in m.subject:
            out.append((m.to, m.text.split('This is step "')[1].split('"')[0]))
    return out


# The default ladder (config/escalation.toml), advice requested on day 21, due day 63.
EXPECTED = [
    (21, PRO, "request"),
    (53, PRO, "reminder"),
    (62, PRO, "due-tomorrow notice"),
    (64, PRO, "overdue notice"),
    (68, LEAD, "escalation to the service lead"),
    # day 73: the escalation to the ADQA group is queued for their daily message, not emailed
    (80, PRO, "repeat reminder 1"),
    (80, LEAD, "repeat reminder 1"),
    (87, PRO, "repeat reminder 2"),
    (87, LEAD, "repeat reminder 2"),
]


async def test_the_whole_ladder_then_stop_on_receipt(ts_env, sqlite_url, executor, smtp_server):
    ids = add_directory(sqlite_url)
    async with chasing_worker(ts_env, sqlite_url, executor, smtp_server) as settings:
        case = await start_case(ts_env, settings, sqlite_url)
        ref = case.handle.id.removeprefix("assessment-")
        await request_health_advice(case, settings, ids)
        seen = 0
        for day in sorted({d for d, _, _ in EXPECTED} | {73}):
            # The day before a step: nothing new has gone.
            await case.go_to(day - 1)
            assert len(received(smtp_server, ref)) == seen, f"early email before day {day}"
            await case.go_to(day)
            todays = [(to, step) for d, to, step in EXPECTED if d == day]
            got = await settle(lambda: (r := received(smtp_server, ref))
                               and len(r) >= seen + len(todays) and r)
            assert sorted(got[seen:]) == sorted(todays), f"day {day}"
            seen += len(todays)
            if day == 73:  # the ADQA group: one daily message each, that afternoon
                await settle(lambda: queued(sqlite_url, ref))
                summary = await daily_message(ts_env, settings, case.day(73))
                assert (summary.items, summary.sent) == (1, 2)
                for member in ADQA:
                    (msg,) = smtp_server.messages(member)
                    assert ref in msg.text and "Medical advice" in msg.text
                    assert "10 days overdue" in msg.text

        # The advice arrives on day 90: no step fires after that, ever.
        await case.go_to(90)
        await case.do("record_advice", RecordAdvice(key="health", received_on=case.day(90)))
        await case.go_to(130)
        await asyncio.sleep(0.5)
        assert len(received(smtp_server, ref)) == seen

    # Every email is recorded: who, what, when, and the server's message id.
    rows = emails(sqlite_url, ref)
    assert [(r.recipient_address, r.status, (r.step_on - case.day0).days) for r in rows] == \
        [(to, "sent", day) for day, to, _ in EXPECTED]
    assert all(r.sent_at and r.message_id and r.smtp_response for r in rows)
    assert {m.message_id for m in smtp_server.messages() if ref in m.subject} == \
        {r.message_id for r in rows}
    # The case's email list shows the ADQA group's daily messages that listed it.
    from services.adqa_daily import daily_messages_for
    with Session(engine_for(sqlite_url)) as s:
        daily = daily_messages_for(s, ref)
    assert sorted(r.recipient_address for r in daily) == sorted(ADQA)
    assert all(r.status == "sent" and r.step_on == case.day(73) for r in daily)
    # The case's timeline shows each step of the ladder on its day.
    with Session(engine_for(sqlite_url)) as s:
        events = s.exec(select(t.CaseEvent).where(t.CaseEvent.case_reference == ref,
                                                  t.CaseEvent.kind.startswith("chase."))
                        .order_by(t.CaseEvent.seq)).all()
    assert [(e.kind, (e.on - case.day0).days) for e in events] == [
        ("chase.request", 21), ("chase.reminder", 53), ("chase.due_tomorrow", 62),
        ("chase.overdue", 64), ("chase.escalate_lead", 68), ("chase.escalate_adqa", 73),
        ("chase.repeat", 80), ("chase.repeat", 87)]
    adqa = events[5].summary
    assert adqa == (f"Medical advice, due {long_date(case.day(63))}: escalated to the ADQA "
                    f"group; in their daily message of {long_date(case.day(73))}")
    assert events[0].summary == (f"Medical advice, due {long_date(case.day(63))}: request "
                                 "emailed to the professional asked for the advice")


async def test_emails_carry_the_case_the_ask_and_a_link_but_not_the_child(
        ts_env, sqlite_url, executor, smtp_server):
    ids = add_directory(sqlite_url)
    async with chasing_worker(ts_env, sqlite_url, executor, smtp_server) as settings:
        case = await start_case(ts_env, settings, sqlite_url)
        ref = case.handle.id.removeprefix("assessment-")
        await request_health_advice(case, settings, ids)
        msg = (await settle(lambda: smtp_server.messages(PRO)))[0]
        await case.go_to(68)
        lead_msg = (await settle(lambda: smtp_server.messages(LEAD)))[0]
        await case.do("close_case", CloseCase(reason="request_withdrawn",
                                              closed_on=case.day(68)))
    due = case.day(63)
    for part in (msg.text, msg.html):
        assert ref in part
        assert "medical advice" in part
        assert f"{due.day} {due:%B %Y}" in part
        assert "https://ehc.council.example/advice/" in part
        # add_child() in the workflow tests names the child Amelia Testchild, born 2017-05-04
        assert "Amelia" not in part and "Testchild" not in part and "2017" not in part
    assert msg.message["To"] == f"Dr Rhys Owen <{PRO}>"
    assert msg.message["Auto-Submitted"] == "auto-generated"
    assert "Dr Rhys Owen" in lead_msg.text and "5 days overdue" in lead_msg.subject


async def test_an_exception_or_closing_the_case_stops_the_ladder(
        ts_env, sqlite_url, executor, smtp_server):
    ids = add_directory(sqlite_url)
    async with chasing_worker(ts_env, sqlite_url, executor, smtp_server) as settings:
        excused = await start_case(ts_env, settings, sqlite_url)
        closed = await start_case(ts_env, settings, sqlite_url)
        for case in (excused, closed):
            await request_health_advice(case, settings, ids)
        await excused.go_to(60)
        await excused.do("record_exception", RecordException(
            kind=ExceptionKind.ADVICE_MISSED_APPOINTMENT, reason="Child unable to attend the appointment",
            starts_on=excused.day(60), advice_key="health"))
        await closed.do("close_case", CloseCase(reason="moved_out_of_area",
                                                closed_on=closed.day(60)))
        await excused.go_to(120)
        await asyncio.sleep(0.5)
        for case in (excused, closed):
            ref = case.handle.id.removeprefix("assessment-")
            steps = [step for _, step in received(smtp_server, ref)]
            assert steps == ["request", "reminder"], ref
        assert await fired(excused) == ["request", "reminder"]


async def test_late_entry_is_chased_from_the_day_it_is_entered(
        ts_env, sqlite_url, executor, smtp_server):
    """Advice recorded on day 58 as requested on day 8 (due day 50), its request sent another
    way: nothing goes at once. The reminder and due-tomorrow notice, whose days had gone, are
    not sent and the timeline says so once; the overdue steps are planned from the day of
    entry (overdue notice 59, service lead 63, ADQA group 68), and the lead is told only what
    was actually sent."""
    ids = add_directory(sqlite_url)
    async with chasing_worker(ts_env, sqlite_url, executor, smtp_server) as settings:
        case = await start_case(ts_env, settings, sqlite_url)
        ref = case.handle.id.removeprefix("assessment-")
        await case.go_to(1)
        await case.do("decide_to_assess", DecideToAssess(decision="assess",
                                                         decided_on=case.day(1)))
        await case.go_to(58)
        req = AdviceRequest(source=AdviceSource.HEALTH, requested_on=case.day(8),
                            contact_id=ids["pro"], send_request_email=False)
        with Session(engine_for(settings.db_url)) as s:
            req = resolve_request(s, load_escalation(settings), req)
        await case.do("request_advice", RequestAdvice(items=[req]))
        await asyncio.sleep(0.5)
        assert received(smtp_server, ref) == []
        assert await fired(case) == ["request", "reminder", "due_tomorrow"]
        await case.go_to(59)
        await settle(lambda: received(smtp_server, ref))
        await case.go_to(62)
        assert received(smtp_server, ref) == [(PRO, "overdue notice")]
        await case.go_to(63)
        await settle(lambda: len(received(smtp_server, ref)) == 2)
        await case.go_to(68)
        await settle(lambda: queued(sqlite_url, ref))
    assert received(smtp_server, ref) == [(PRO, "overdue notice"),
                                          (LEAD, "escalation to the service lead")]
    lead = smtp_server.messages(LEAD)[0].text.replace("\r\n", "\n")
    history = lead.split("What we have sent about this advice before this email:\n")[1]
    assert history.split("\n\n")[0] == \
        f"- {long_date(case.day(59))}: overdue notice to the professional asked for the advice"
    assert "after reminders" not in lead
    assert [(q.step, q.for_day) for q in queued(sqlite_url, ref)] == \
        [("escalate_adqa", case.day(68))]
    with Session(engine_for(sqlite_url)) as s:
        chase = s.exec(select(t.CaseEvent).where(t.CaseEvent.case_reference == ref,
                                                 t.CaseEvent.kind.startswith("chase."))
                       .order_by(t.CaseEvent.seq)).all()
    assert [(e.kind, (e.on - case.day0).days) for e in chase] == [
        ("chase.not_sent", 58), ("chase.overdue", 59), ("chase.escalate_lead", 63),
        ("chase.escalate_adqa", 68)]
    assert chase[0].summary == (
        f"Medical advice: reminder ({long_date(case.day(40))}) and due-tomorrow notice "
        f"({long_date(case.day(49))}) were not sent: this advice was entered on "
        f"{long_date(case.day(58))}, after their days")


async def test_a_service_ladder_overrides_the_default(ts_env, sqlite_url, executor, smtp_server):
    ids = add_directory(sqlite_url)
    custom = Ladder.model_validate({
        "steps": [{"name": "nudge", "days": -3, "to": ["professional"],
                   "template": "advice_reminder"},
                  {"name": "late", "days": 2, "to": ["professional", "service_lead"],
                   "template": "advice_overdue"}],
    })
    with Session(engine_for(sqlite_url)) as s:
        svc = s.get(t.Service, ids["service"])
        svc.ladder = custom.model_dump()
        s.add(svc)
        s.commit()
    async with chasing_worker(ts_env, sqlite_url, executor, smtp_server) as settings:
        case = await start_case(ts_env, settings, sqlite_url)
        ref = case.handle.id.removeprefix("assessment-")
        await request_health_advice(case, settings, ids)
        await case.go_to(70)
        await settle(lambda: len(received(smtp_server, ref)) >= 3)
        await asyncio.sleep(0.3)
    assert received(smtp_server, ref) == [(PRO, "nudge"), (PRO, "late"), (LEAD, "late")]


async def test_a_delay_report_is_recorded_and_the_chasing_goes_on(
        ts_env, sqlite_url, executor, smtp_server):
    ids = add_directory(sqlite_url)
    async with chasing_worker(ts_env, sqlite_url, executor, smtp_server) as settings:
        case = await start_case(ts_env, settings, sqlite_url)
        ref = case.handle.id.removeprefix("assessment-")
        await request_health_advice(case, settings, ids)
        await case.go_to(60)
        view = await case.do("report_advice_delay", ReportAdviceDelay(
            key="health", reason="Clinic appointment not until next month",
            expected_on=case.day(75)))
        assert view.case.advice_item("health").expected_on == case.day(75)
        await case.go_to(68)
        lead = (await settle(lambda: smtp_server.messages(LEAD)))[0]
    expected = case.day(75)
    assert f"{expected.day} {expected:%B %Y}" in lead.text  # the lead sees the promised date
    with Session(engine_for(sqlite_url)) as s:
        kinds = [e.kind for e in s.exec(select(t.CaseEvent).where(
            t.CaseEvent.case_reference == ref).order_by(t.CaseEvent.seq))]
    assert "advice.delay_reported" in kinds


async def test_smtp_outage_then_recovery_sends_each_email_once(
        ts_env, sqlite_url, executor, smtp_server):
    ids = add_directory(sqlite_url)
    async with chasing_worker(ts_env, sqlite_url, executor, smtp_server) as settings:
        case = await start_case(ts_env, settings, sqlite_url)
        ref = case.handle.id.removeprefix("assessment-")
        await request_health_advice(case, settings, ids)
        await settle(lambda: received(smtp_server, ref))
        smtp_server.stop()
        await case.go_to(53)  # the reminder is due while the mail server is down
        await settle(lambda: any(e.status == "failed" and e.step == "reminder"
                                 for e in emails(sqlite_url, ref)))
        assert await fired(case) == ["request", "reminder"]
        smtp_server.start()
        # The retries back off to one every 10 minutes (NOTICE_RETRY): the next one sends.
        await ts_env.sleep(timedelta(minutes=10))
        await settle(lambda: len(received(smtp_server, ref)) == 2, timeout=60)
        await case.go_to(62)
        await settle(lambda: len(received(smtp_server, ref)) == 3, timeout=30)
        await asyncio.sleep(0.3)
    assert [step for _, step in received(smtp_server, ref)] == \
        ["request", "reminder", "due-tomorrow notice"]
    reminder = next(e for e in emails(sqlite_url, ref) if e.step == "reminder")
    assert reminder.status == "sent" and reminder.attempts >= 2


async def test_a_retried_send_activity_sends_nothing_again(
        ts_env, sqlite_url, executor, smtp_server):
    """The same step's activity run again, as Temporal does on a retry (for example when the
    worker died after sending but before reporting back), finds the outbox rows."""
    from temporalio.testing import ActivityEnvironment

    from activities.notify import NotifyActivities
    from services.notify import Notifier
    from domain.ladder import AdviceNotice

    ids = add_directory(sqlite_url)
    async with chasing_worker(ts_env, sqlite_url, executor, smtp_server) as settings:
        case = await start_case(ts_env, settings, sqlite_url)
        ref = case.handle.id.removeprefix("assessment-")
        await request_health_advice(case, settings, ids)
        await case.go_to(73)
        await settle(lambda: len(received(smtp_server, ref)) == 5 and queued(sqlite_url, ref))
    before = len(smtp_server.messages())
    notice = AdviceNotice(reference=ref, advice_key="health", what="medical advice",
                          source="health", service_id=ids["service"], contact_id=ids["pro"],
                          step="escalate_adqa", template="advice_escalation_adqa",
                          to=["adqa"], requested_on=case.day(21), due=case.day(63),
                          on=case.day(73))
    result = await ActivityEnvironment().run(NotifyActivities(Notifier(settings)).send_advice_notice,
                                            notice)
    # The ADQA group's escalation is queued once, for the day's message; nobody is emailed.
    assert (result.sent, result.already_sent, result.queued_for) == (0, 0, case.day(73))
    assert len(smtp_server.messages()) == before
    assert len(queued(sqlite_url, ref)) == 1


async def test_a_new_worker_replays_the_case_and_sends_only_new_steps(
        ts_env, sqlite_url, executor, smtp_server):
    """The worker stops; another starts on the same task queue, replays the case's history,
    and carries on: the steps already sent are not sent again. Neither worker caches the
    workflow, so every task of the case is a replay from history."""
    ids = add_directory(sqlite_url)
    tq = f"tq-{uuid.uuid4().hex[:8]}"
    async with chasing_worker(ts_env, sqlite_url, executor, smtp_server, tq,
                              terminate=False, max_cached_workflows=0) as settings:
        case = await start_case(ts_env, settings, sqlite_url)
        ref = case.handle.id.removeprefix("assessment-")
        await request_health_advice(case, settings, ids)
        await case.go_to(64)
        await settle(lambda: len(received(smtp_server, ref)) == 4)
        await asyncio.sleep(0.3)
    _started.remove(case.handle)  # terminated by the second worker's context
    async with chasing_worker(ts_env, sqlite_url, executor, smtp_server, tq,
                              max_cached_workflows=0):
        _started.append(case.handle)
        await case.go_to(68)
        await settle(lambda: len(received(smtp_server, ref)) == 5, timeout=60)
        await asyncio.sleep(0.3)
    assert [step for _, step in received(smtp_server, ref)] == [
        "request", "reminder", "due-tomorrow notice", "overdue notice",
        "escalation to the service lead"]


async def test_no_one_to_chase_is_recorded_not_fatal(ts_env, sqlite_url, executor, smtp_server):
    """Advice with no service in the directory: the ladder still runs (events) and nobody is
    emailed; the case does not get stuck."""
    async with chasing_worker(ts_env, sqlite_url, executor, smtp_server) as settings:
        case = await start_case(ts_env, settings, sqlite_url)
        ref = case.handle.id.removeprefix("assessment-")
        await case.go_to(20)
        await case.do("decide_to_assess", DecideToAssess(decision="assess",
                                                         decided_on=case.day(20)))
        await case.go_to(21)
        req = AdviceRequest(source=AdviceSource.OTHER, label="Sensory support",
                            requested_on=case.day(21))
        with Session(engine_for(settings.db_url)) as s:
            req = resolve_request(s, load_escalation(settings), req)
        assert req.service_id is None and req.ladder is not None
        await case.do("request_advice", RequestAdvice(items=[req]))
        await case.go_to(68)
        assert await fired(case, "other:sensory-support") == [
            "request", "reminder", "due_tomorrow", "overdue", "escalate_lead"]
        await asyncio.sleep(0.3)
    assert received(smtp_server, ref) == []
    # The case says, once per role, that nobody could be emailed.
    with Session(engine_for(sqlite_url)) as s:
        unsent = s.exec(select(t.CaseEvent).where(t.CaseEvent.case_reference == ref,
                                                  t.CaseEvent.kind == "chase.unsent")
                        .order_by(t.CaseEvent.seq)).all()
    assert [(e.data["step"], e.data["roles"]) for e in unsent] == [
        ("request", "professional"), ("escalate_lead", "service_lead")]
    assert "add them to the directory" in unsent[0].summary


def test_link_days_and_ladder_come_from_the_configuration(tmp_path, sqlite_url):
    cfg = tmp_path / "escalation.toml"
    cfg.write_text('link_days = 14\n[ladders.default]\nsteps = [{name = "only", days = 0, '
                   'to = ["professional"], template = "advice_overdue"}]\n')
    settings = settings_for(sqlite_url, "x", escalation_file=cfg)
    config = load_escalation(settings)
    assert config.link_days == 14
    assert [s.name for s in config.for_source("health").steps] == ["only"]
    cfg.write_text("link_days = 14\n")  # no default ladder
    with pytest.raises(ConfigError, match="(?s)is invalid.*ladders"):
        load_escalation(settings_for(sqlite_url, "x", escalation_file=cfg))


def test_day_arithmetic_of_the_default_ladder():
    from services.directory import DEFAULT_ESCALATION_FILE  # noqa: F401
    from statutory import london_time

    ladder = load_escalation(settings_for("sqlite://", "x")).for_source("health")
    requested, due = date(2026, 9, 14), date(2026, 10, 26)
    steps = ladder.passed(requested, due, [], london_time(due + timedelta(days=30), 12))
    assert [(n, at) for n, at, _ in steps] == [
        ("request", london_time(date(2026, 9, 14), 8)),
        ("reminder", london_time(date(2026, 10, 16), 8)),
        ("due_tomorrow", london_time(date(2026, 10, 25), 8)),  # the day the clocks go back
        ("overdue", london_time(date(2026, 10, 27), 8)),
        ("escalate_lead", london_time(date(2026, 10, 31), 8)),
        ("escalate_adqa", london_time(date(2026, 11, 5), 8)),
        ("repeat-1", london_time(date(2026, 11, 12), 8)),
        ("repeat-2", london_time(date(2026, 11, 19), 8)),
    ]
    assert ladder.next_at(requested, due, [n for n, _, _ in steps]) == \
        london_time(date(2026, 11, 26), 8)


@pytest.mark.parametrize("when", ["before_the_reply", "after_the_reply"])
async def test_a_worker_killed_while_sending_never_sends_twice(when, dev_env, sqlite_url,
                                                               smtp_server):
    """SIGKILL the worker process while the SMTP server has the first email in hand (before
    it replies, or just after), then start another: that email is never sent again, and the
    ladder's next email still goes. Real worker processes on the real dev server."""
    import os
    import signal
    import subprocess
    import sys
    import threading

    from services.clock import today
    from domain.case import StartAssessment
    from tests.test_api import ROOT
    from tests.test_assessment_workflow import add_child
    from workflows.assessment import AssessmentWorkflow

    ids = add_directory(sqlite_url)
    queue = f"kill-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "EHC_DATABASE_URL": sqlite_url, "EHC_TASK_QUEUE": queue,
           "EHC_TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
           "EHC_SMTP_HOST": smtp_server.host, "EHC_SMTP_PORT": str(smtp_server.port),
           "EHC_LINK_SECRET": "test-link-secret"}

    def start_worker() -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "worker"], cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    worker = start_worker()
    killed = threading.Event()

    def kill(_msg) -> None:
        if killed.is_set():
            return
        killed.set()
        if when == "before_the_reply":
            worker.send_signal(signal.SIGKILL)
            worker.wait()
        else:
            threading.Timer(0.01, worker.send_signal, (signal.SIGKILL,)).start()

    smtp_server.on_message = kill
    try:
        # A ladder whose first day emails the professional and then the service lead.
        d0 = today() - timedelta(days=60)
        ref = f"K-{uuid.uuid4().hex[:8].upper()}"
        settings = settings_for(sqlite_url, queue, link_secret="test-link-secret")
        handle = await dev_env.client.start_workflow(
            AssessmentWorkflow.run,
            StartAssessment(reference=ref, child_id=add_child(sqlite_url), request_date=d0),
            id=f"assessment-{ref}", task_queue=queue)
        await handle.execute_update("decide_to_assess", DecideToAssess(
            decision="assess", decided_on=d0 + timedelta(days=5)))
        # Asked for yesterday, entered today: both steps (each on the request day) go the
        # moment it is entered, whatever the hour the test runs at (on its own day they would
        # wait for the ladder's 08:00).
        req = AdviceRequest(source=AdviceSource.HEALTH, requested_on=today() - timedelta(days=1),
                            contact_id=ids["pro"])
        with Session(engine_for(sqlite_url)) as s:
            req = resolve_request(s, load_escalation(settings), req)
        req = req.model_copy(update={"ladder": Ladder.model_validate({"steps": [
            {"name": "request", "anchor": "requested", "days": 0, "to": ["professional"],
             "template": "advice_request"},
            {"name": "tell_lead", "anchor": "requested", "days": 0, "to": ["service_lead"],
             "template": "advice_escalation_lead"}]})})
        await handle.execute_update("request_advice", RequestAdvice(items=[req]))

        await settle(killed.is_set, timeout=30)
        await asyncio.to_thread(worker.wait)
        worker = start_worker()
        # The send is retried on the new worker once the dead one's heartbeat times out.
        await settle(lambda: smtp_server.messages(LEAD), timeout=90)
        await asyncio.sleep(1.0)
        assert len(smtp_server.messages(PRO)) == 1  # never twice
        assert len(smtp_server.messages(LEAD)) == 1
        rows = {r.recipient_address: r for r in emails(sqlite_url, ref)}
        assert rows[LEAD].status == "sent"
        # The first email: recorded sent if the worker got that far, otherwise unconfirmed
        # (the server may have it; sending again could duplicate it).
        assert rows[PRO].status in ({"unconfirmed"} if when == "before_the_reply"
                                    else {"sent", "unconfirmed"})
        assert rows[PRO].message_id == smtp_server.messages(PRO)[0].message_id
        await handle.terminate("test over")
    finally:
        worker.kill()
        worker.wait()


async def test_a_long_subject_stays_on_the_subject_line(sqlite_url, smtp_server):
    """The standard library's folding (78 columns) moved a subject that did not fit whole onto
    the next line, leaving 'Subject:' blank ('Subject: \\n Still overdue ...'). The raw message
    the server receives has the subject on the Subject line, whole."""
    from services.mail import Outbox, Outgoing

    settings = settings_for(sqlite_url, "x", smtp_host=smtp_server.host,
                            smtp_port=smtp_server.port)
    subjects = [
        "Still overdue: advice for EHC needs assessment EHC-2026-000123 (45 days)",
        "ADQA escalation: advice for annual review EHC-2026-000123.R12 is 155 days overdue, "
        "after an overdue notice, a repeat reminder and an escalation to the service lead",
    ]
    for i, subject in enumerate(subjects):
        await Outbox(settings).send_once(Outgoing(
            key=f"fold-test:{i}", to_address=PRO, to_name="Dr Rhys Owen", subject=subject,
            text="Body", html=None, template="advice_repeat", recipient_role="professional"))
    got = smtp_server.messages(PRO)
    assert [m.subject for m in got] == subjects
    for m, subject in zip(got, subjects):
        lines = m.header_lines()
        line = next(x for x in lines if x.lower().startswith("subject:"))
        assert line == f"Subject: {subject}"  # one line, never blank then folded
        assert not any(x.startswith((" ", "\t")) for x in lines), lines


AGENCY_OF = {AdviceSource.EDUCATION: "education", AdviceSource.HEALTH: "health",
             AdviceSource.SOCIAL_CARE: "social_care",
             AdviceSource.EDUCATIONAL_PSYCHOLOGIST: "educational_psychology"}
MEMBERS = ["ad.one@council.example", "ad.two@council.example", "ad.three@council.example"]


def add_four_agencies(db_url: str) -> dict[AdviceSource, tuple[str, str, str]]:
    """A default service for each of four agencies, with a professional and a lead; an ADQA
    group of three. Returns source -> (contact id, professional's address, lead's address)."""
    out = {}
    with Session(engine_for(db_url)) as s:
        for source, agency in AGENCY_OF.items():
            svc = t.Service(name=f"{agency.replace('_', ' ').title()} service", agency=agency,
                            is_default=True)
            s.add(svc)
            s.flush()
            words = agency.replace("_", " ").title()  # a name, not the agency's key
            pro = t.Contact(service_id=svc.id, name=f"Pro {words}",
                            email=f"pro.{agency}@agency.example")
            s.add(pro)
            s.add(t.Contact(service_id=svc.id, name=f"Lead {words}",
                            email=f"lead.{agency}@agency.example", is_lead=True))
            s.flush()
            out[source] = (pro.id, pro.email, f"lead.{agency}@agency.example")
        for i, addr in enumerate(MEMBERS):
            s.add(t.AdqaMember(name=f"Member {i + 1}", email=addr))
        s.commit()
    return out


async def test_a_case_entered_months_late_is_chased_truthfully(
        ts_env, sqlite_url, executor, smtp_server):
    """What was seen: a case entered on 7 December with advice asked for on 6 October sent
    twenty emails at once, false escalations among them. Now, entered today (E) with its
    history (request 97 days ago, decision 63 days ago, advice from four agencies 62 days
    ago, due 20 days ago): the first emails are the four requests, saying when they were asked
    for and how late they are; the overdue notices follow the next day; the leads on E+5 are
    told only what was sent; on E+10 each of the three ADQA members gets one daily message
    listing all four, not twelve emails. The decision, recorded as made on time the same day,
    is never called overdue."""
    from domain.case import StartAssessment
    from tests.test_assessment_workflow import Case, add_child
    from statutory import london_date

    who = add_four_agencies(sqlite_url)
    async with chasing_worker(ts_env, sqlite_url, executor, smtp_server) as settings:
        e = london_date(await ts_env.get_current_time())
        ref = f"T-{uuid.uuid4().hex[:8].upper()}"
        handle = await ts_env.client.start_workflow(
            AssessmentWorkflow.run, StartAssessment(
                reference=ref, child_id=add_child(sqlite_url),
                request_date=e - timedelta(days=97)),
            id=f"assessment-{ref}", task_queue=settings.task_queue)
        _started.append(handle)
        case = Case(ts_env, handle, e)
        await case.do("decide_to_assess", DecideToAssess(decision="assess",
                                                         decided_on=case.day(-63)))
        asked = case.day(-62)
        due = asked + timedelta(days=42)
        with Session(engine_for(settings.db_url)) as s:
            reqs = [resolve_request(s, load_escalation(settings), AdviceRequest(
                source=src, requested_on=asked, contact_id=who[src][0])) for src in AGENCY_OF]
        await case.do("request_advice", RequestAdvice(items=reqs))
        pros = sorted(p for _, p, _ in who.values())
        leads = sorted(lead for _, _, lead in who.values())

        # Entry day: the four requests, and nothing else.
        await settle(lambda: len(smtp_server.messages()) >= 4)
        await asyncio.sleep(0.5)
        first = smtp_server.messages()
        assert sorted(m.to for m in first) == pros
        for m in first:
            assert m.subject.startswith("Advice requested for EHC needs assessment")
            # the subject says how late the request already is
            assert m.subject.endswith(f": it was due {long_date(due)}, 20 days ago"), m.subject
            assert f"on {long_date(asked)}; this is the first email we have sent you" in \
                " ".join(m.text.split())
            assert f"It was due on {long_date(due)} and is 20 days late" in \
                " ".join(m.text.split())
        # Next day: the overdue notices, to the professionals only.
        await case.go_to(1)
        await settle(lambda: len(smtp_server.messages()) >= 8)
        await case.go_to(4)
        assert sorted((m.to, m.subject.split(":")[0]) for m in smtp_server.messages()[4:]) == \
            [(p, "Overdue") for p in pros]
        # E+5: each lead, told what was actually sent, with dates.
        await case.go_to(5)
        await settle(lambda: len(smtp_server.messages()) >= 12)
        await case.go_to(9)
        to_leads = smtp_server.messages()[8:]
        assert sorted(m.to for m in to_leads) == leads
        for m in to_leads:
            text = m.text.replace("\r\n", "\n")
            assert "after reminders" not in text
            history = text.split("What we have sent about this advice before this email:\n")[1]
            assert history.split("\n\n")[0] == (
                f"- {long_date(e)}: request to the professional asked for the advice\n"
                f"- {long_date(case.day(1))}: overdue notice to the professional asked for "
                "the advice")
        # E+10: queued for the ADQA group, not emailed; their daily message lists all four.
        await case.go_to(10)
        await settle(lambda: len(queued(sqlite_url, ref)) == 4)
        assert len(smtp_server.messages()) == 12
        summary = await daily_message(ts_env, settings, case.day(10))
        assert (summary.items, summary.recipients, summary.sent) == (4, 3, 3)
        again = await daily_message(ts_env, settings, case.day(10))  # a second run: nothing
        assert (again.sent, again.already_sent) == (0, 3)
        for member in MEMBERS:
            (msg,) = smtp_server.messages(member)
            text = " ".join(msg.text.split())
            assert msg.subject == (f"ADQA: 4 pieces of advice newly escalated to you, "
                                   f"{long_date(case.day(10))}")
            assert text.count(ref) == 8  # each item: its reference and its link
            for label in ("Educational advice", "Medical advice", "Social care advice",
                          "Psychological advice"):
                assert label in text, label
            assert "30 days overdue" in text
            assert (f"{long_date(e)}: request to the professional asked for the advice; "
                    f"{long_date(case.day(1))}: overdue notice") in text
            assert f"https://ehc.council.example/cases/{ref}" in text
        assert len(smtp_server.messages()) == 15

    with Session(engine_for(sqlite_url)) as s:
        events = s.exec(select(t.CaseEvent).where(t.CaseEvent.case_reference == ref)
                        .order_by(t.CaseEvent.seq)).all()
    kinds = [e_.kind for e_ in events]
    # The decision, recorded as made on time on the day its history was entered, was never
    # called overdue (its alert waited to the end of that day).
    assert not [e_ for e_ in events if e_.data.get("deadline") == "decision_due"]
    assert kinds.count("chase.not_sent") == 4
    adqa = [e_ for e_ in events if e_.kind == "chase.escalate_adqa"]
    assert len(adqa) == 4 and all(
        e_.summary.endswith(f"escalated to the ADQA group; in their daily message of "
                            f"{long_date(case.day(10))}") for e_ in adqa)
    import re
    assert not [e_.summary for e_ in events if e_.kind.startswith("chase.")
                and re.search(r"\d{4}-\d\d-\d\d", e_.summary)]  # dates in words


async def test_an_import_of_late_reviews_claims_no_earlier_chasing(
        ts_env, sqlite_url, executor, smtp_server):
    """The plans import brings in a review overdue since September: importing emails nobody.
    Advice then asked for its meeting, entered as requested three weeks ago, gets a request
    first (saying when it was asked for), and the service lead is told only of what was
    actually sent, with dates."""
    from domain.case import SetMeeting
    from services.plan_import import import_plans
    from statutory import london_date
    from tests.test_import import EXAMPLE, TODAY, prefixed, snapshot
    from workflows.review import ReviewWorkflow  # noqa: F401 - the worker runs it

    ids = add_directory(sqlite_url)
    async with chasing_worker(ts_env, sqlite_url, executor, smtp_server) as settings:
        e = london_date(await ts_env.get_current_time())
        text, prefix = prefixed(EXAMPLE)
        result = await import_plans(text, settings=settings, client=ts_env.client,
                                    today=TODAY)
        assert result.ok and result.summary.imported == 13
        ref = f"{prefix}-001938"  # its review overdue since 16 September
        review = await snapshot(ts_env.client, ref)
        handle = ts_env.client.get_workflow_handle(f"review-{ref}")
        _started.extend(ts_env.client.get_workflow_handle(f"review-{prefix}-{n}")
                        for n in ("004127", "003981", "002866", "001702", "001455", "004390",
                                  "002204", "001938", "003317", "001276", "000812", "002731",
                                  "003055"))
        await asyncio.sleep(0.5)
        assert smtp_server.messages() == []  # importing chases nobody
        case = Case(ts_env, handle, e)
        await handle.execute_update("set_meeting", SetMeeting(meeting_on=case.day(20)))
        asked = case.day(-21)
        req = AdviceRequest(source=AdviceSource.HEALTH, requested_on=asked,
                            contact_id=ids["pro"])
        with Session(engine_for(settings.db_url)) as s:
            req = resolve_request(s, load_escalation(settings), req)
        await handle.execute_update("request_advice", RequestAdvice(items=[req]))
        due = case.day(6)  # circulated two weeks before the meeting (Reg 20(4))
        creq = review.reference
        await settle(lambda: smtp_server.messages(PRO))
        first = smtp_server.messages()
        assert [m.to for m in first] == [PRO]
        assert first[0].subject.startswith("Advice requested for annual review")
        assert f"on {long_date(asked)}; this is the first email we have sent you" in \
            " ".join(first[0].text.split())
        await case.go_to(11)  # due day 6: due-tomorrow 5, overdue 7, the lead 11
        await settle(lambda: smtp_server.messages(LEAD))
        await asyncio.sleep(0.3)
    got = [(m.to, m.subject.split(":")[0]) for m in smtp_server.messages()]
    assert got == [(PRO, f"Advice requested for annual review {creq}"),
                   (PRO, f"Advice for annual review {creq} is due tomorrow ("
                         f"{long_date(due)})"),
                   (PRO, "Overdue"), (LEAD, "Escalation")]
    lead = smtp_server.messages(LEAD)[0].text.replace("\r\n", "\n")
    assert "after reminders" not in lead
    assert lead.split("before this email:\n")[1].split("\n\n")[0] == (
        f"- {long_date(e)}: request to the professional asked for the advice\n"
        f"- {long_date(case.day(5))}: due-tomorrow notice to the professional asked for the "
        "advice\n"
        f"- {long_date(case.day(7))}: overdue notice to the professional asked for the advice")
