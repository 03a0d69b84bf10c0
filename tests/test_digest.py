"""The ADQA weekly digest: the figures on hand-made case records (SQLite and PostgreSQL), the
email through a real SMTP server (once per member and week, through an outage), the Temporal
Schedule and the workflow on the real dev server (with a worker restarted between runs), the
page, the JSON and the command line."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from contextlib import asynccontextmanager
from datetime import date, datetime, timedelta, timezone

import httpx
import pytest
from sqlmodel import Session, select
from temporalio.client import ScheduleOverlapPolicy, ScheduleRange
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from activities.digest import DigestActivities
from domain.agencies import AGENCIES
from services.digest import (
    LONDON,
    DigestScheduleSettings,
    DigestSender,
    build_digest,
    current_week_ending,
    digest_key,
    ensure_digest_schedule,
    next_run_times,
    step_label,
)
from api.app import create_app
from tests.http import staff_headers
from services.clock import today
from store import tables as t
from store.db import engine_for
from tests.conftest import settings_for
from workflows.digest import (
    DAILY_SCHEDULE_ID,
    SCHEDULE_ID,
    AdqaDigestWorkflow,
    DigestRequest,
    DigestSummary,
    week_ending_for,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
W = date(2026, 11, 8)  # a Sunday: the digest sent on Monday 9 November 2026 is for this week
CHILD_NAMES = ("Zebedee", "Quillfeather")
LADDER = {"steps": [], "send_hour": 8}  # the items below were chased by a ladder


def d(month: int, day: int) -> date:
    return date(2026, month, day)


# --- hand-made case records ------------------------------------------------------------------

SERVICES = {  # id: (name, agency)
    "svc-edu": ("Northgate Primary School", "education"),
    "svc-paeds": ("Community Paediatrics", "health"),
    "svc-salt": ("Speech and Language Therapy", "health"),
    "svc-ep": ("Educational Psychology Service", "educational_psychology"),
}

CASES = {  # reference: closed_on (None: open)
    "EHC-TEST-0001": None,
    "EHC-TEST-0002": None,
    "EHC-TEST-0003": d(10, 1),   # closed before the week: its advice is not chased
    "EHC-TEST-0004": d(11, 20),  # closed after the week: as of 8 November it was open
    "EHC-TEST-0005": d(11, 3),   # closed before its advice was due: the advice was moot
}

# (case, key, source, label, service, requested, due, received, reused, alerts_fired)
ADVICE = [
    # 26 days overdue, chased up to the ADQA escalation
    ("EHC-TEST-0001", "education", "education", None, "svc-edu", d(9, 1), d(10, 13), None,
     False, ["request", "reminder", "due_tomorrow", "overdue", "escalate_lead",
             "escalate_adqa"]),
    # due the day before the week's last day: 1 day overdue, and a miss in the week
    ("EHC-TEST-0001", "health", "health", None, "svc-paeds", d(9, 26), d(11, 7), None,
     False, ["request", "reminder", "due_tomorrow"]),
    # due on the week's last day: not overdue, but a miss in the week
    ("EHC-TEST-0001", "health-salt", "health", "speech and language therapy", "svc-salt",
     d(9, 27), d(11, 8), None, False, ["request", "reminder"]),
    # received late, before the week ended: not overdue, a miss in the week
    ("EHC-TEST-0001", "health-ot", "health", "occupational therapy", "svc-paeds", d(9, 24),
     d(11, 5), d(11, 6), False, ["request", "reminder", "due_tomorrow", "overdue"]),
    # received after the week ended: as of 8 November, 7 days overdue
    ("EHC-TEST-0001", "educational_psychologist", "educational_psychologist", None, "svc-ep",
     d(9, 20), d(11, 1), d(11, 10), False, ["request", "reminder", "due_tomorrow", "overdue"]),
    # received on its due day: on time
    ("EHC-TEST-0002", "health", "health", None, "svc-paeds", d(9, 22), d(11, 3), d(11, 3),
     False, ["request", "reminder"]),
    # no service: 9 days overdue, under Education / Not assigned; no ladder (older request)
    ("EHC-TEST-0002", "education", "education", None, None, d(9, 18), d(10, 30), None,
     False, ["due_soon", "overdue"]),
    # excused by a Reg 8(2) exception: left out
    ("EHC-TEST-0002", "social_care", "social_care", None, None, d(9, 8), d(10, 20), None,
     False, ["request", "overdue", "escalate_lead"]),
    # its exception was withdrawn before the week ended: 14 days overdue again
    ("EHC-TEST-0002", "educational_psychologist", "educational_psychologist", None, "svc-ep",
     d(9, 13), d(10, 25), None, False, ["request", "overdue", "escalate_lead", "repeat-2"]),
    # received early: on time in the week
    ("EHC-TEST-0002", "education-college", "education", "college", "svc-edu", d(9, 25),
     d(11, 6), d(11, 2), False, ["request"]),
    # excused and due in the week: left out of the compliance count as well
    ("EHC-TEST-0002", "health-salt", "health", "speech and language therapy", "svc-salt",
     d(9, 23), d(11, 4), None, False, ["request", "reminder", "due_tomorrow"]),
    # reused existing advice (Reg 6(4)): never due, never counted
    ("EHC-TEST-0002", "family", "family", None, None, d(9, 23), d(11, 4), None, True, []),
    # the case closed in October: not listed
    ("EHC-TEST-0003", "education", "education", None, "svc-edu", d(8, 29), d(10, 10), None,
     False, ["request", "overdue"]),
    # its exception was withdrawn after the week ended: excused as of 8 November
    ("EHC-TEST-0004", "education", "education", None, "svc-edu", d(9, 20), d(11, 1), None,
     False, ["request", "overdue", "escalate_lead"]),
    # the case closed after the week: as of 8 November, 10 days overdue
    ("EHC-TEST-0004", "health", "health", None, "svc-paeds", d(9, 17), d(10, 29), None,
     False, ["request", "overdue", "escalate_lead"]),
    # the case closed on 3 November, before this was due on the 4th: moot, not a miss
    ("EHC-TEST-0005", "health", "health", None, "svc-paeds", d(9, 23), d(11, 4), None,
     False, ["request"]),
]

EXCEPTIONS = [  # (case, id, kind, advice_key, starts, ends, withdrawn)
    ("EHC-TEST-0002", "X1", "reg8_2_a", "social_care", d(10, 1), None, None),
    ("EHC-TEST-0002", "X2", "reg8_2_c", "educational_psychologist", d(10, 1), None, d(11, 1)),
    ("EHC-TEST-0002", "X3", "reg8_2_b", "health-salt", d(10, 20), d(10, 30), None),
    # a Reg 10(4) exception excuses the LA's limits, never an advisor's six weeks
    ("EHC-TEST-0001", "X1", "reg10_4_c", None, d(9, 1), None, None),
    # withdrawn after the week ended: in force on 8 November
    ("EHC-TEST-0004", "X1", "reg8_2_a", "education", d(10, 1), None, d(11, 15)),
]

# What the digest for the week ending 8 November must say: agency, its label, its services
# with their items (case, advice key, days overdue); most overdue first at every level.
EXPECTED_GROUPS = [
    ("education", "Education", [
        ("Northgate Primary School", [("EHC-TEST-0001", "education", 26)]),
        ("Not assigned", [("EHC-TEST-0002", "education", 9)]),
    ]),
    ("educational_psychology", "Educational psychology", [
        ("Educational Psychology Service", [("EHC-TEST-0002", "educational_psychologist", 14),
                                            ("EHC-TEST-0001", "educational_psychologist", 7)]),
    ]),
    ("health", "Health", [
        ("Community Paediatrics", [("EHC-TEST-0004", "health", 10),
                                   ("EHC-TEST-0001", "health", 1)]),
    ]),
]
EXPECTED_COMPLIANCE = {  # agency: (on time, due, percent)
    "education": (1, 1, 100.0),
    "health": (1, 4, 25.0),
    "social_care": (0, 0, None),
    "educational_psychology": (0, 0, None),
    "other": (0, 0, None),
}

MEMBERS = [("Alex Director", "Alex.Director@Council.example", True),
           ("Sam Head", "sam.head@council.example", True),
           ("Former Member", "former@council.example", False)]
ACTIVE = ["alex.director@council.example", "sam.head@council.example"]


def seed(db_url: str, members: bool = True) -> None:
    with Session(engine_for(db_url)) as s:
        child = t.Child(given_name=CHILD_NAMES[0], family_name=CHILD_NAMES[1],
                        date_of_birth=date(2016, 4, 2))
        s.add(child)
        for sid, (name, agency) in SERVICES.items():
            s.add(t.Service(id=sid, name=name, agency=agency))
        s.flush()
        for ref, closed in CASES.items():
            s.add(t.Case(reference=ref, child_id=child.id, workflow_id=f"assessment-{ref}",
                         stage="assessing" if closed is None else "closed",
                         is_open=closed is None, closed_on=closed, request_date=d(8, 1),
                         request_source="parent"))
        s.flush()
        for ref, key, source, label, svc, req, due, rec, reused, fired in ADVICE:
            s.add(t.AdviceItem(case_reference=ref, key=key, source=source, label=label,
                               service_id=svc, requested_on=req, due=due, received_on=rec,
                               reused=reused, alerts_fired=fired,
                               ladder=None if "due_soon" in fired else LADDER))
        for ref, xid, kind, key, starts, ends, withdrawn in EXCEPTIONS:
            s.add(t.CaseException(case_reference=ref, id=xid, kind=kind, reason="test",
                                  advice_key=key, starts_on=starts, ends_on=ends,
                                  recorded_on=starts, withdrawn_on=withdrawn))
        # The ladder's emails for the 26-days-overdue item: the last one sent is the ADQA
        # escalation (a later failed attempt at another email does not count).
        for n, (step, sent_at, status) in enumerate([
            ("escalate_lead", datetime(2026, 10, 18, 7, 0, tzinfo=timezone.utc), "sent"),
            ("escalate_adqa", datetime(2026, 10, 23, 7, 0, tzinfo=timezone.utc), "sent"),
            ("repeat-1", datetime(2026, 10, 30, 8, 0, tzinfo=timezone.utc), "failed"),
        ]):
            s.add(t.EmailMessage(key=f"advice:EHC-TEST-0001:education:{step}:{n}",
                                 case_reference="EHC-TEST-0001", advice_key="education",
                                 step=step, template="advice_escalation_lead",
                                 recipient_role="service_lead", recipient_address="x@y.example",
                                 subject="s", body_text="b", message_id=f"<{n}@x>",
                                 status=status, sent_at=sent_at if status == "sent" else None))
        if members:
            for name, email, active in MEMBERS:
                s.add(t.AdqaMember(name=name, email=email, active=active))
        s.commit()

EXPECTED_OVERDUE_COUNT = 6


def shape(digest) -> list:
    return [(a.agency, a.label, [(g.service, [(i.case_reference, i.advice_key, i.days_overdue)
                                              for i in g.items]) for g in a.services])
            for a in digest.agencies]


# --- the figures ---------------------------------------------------------------------------------


def test_week_ending_is_the_last_complete_week_for_any_day_of_the_week():
    assert week_ending_for(d(11, 9)) == d(11, 8)  # Monday: yesterday
    assert week_ending_for(d(11, 10)) == d(11, 8)  # a re-run on Tuesday: the same week
    assert week_ending_for(d(11, 15)) == d(11, 8)  # Sunday: that week is not over yet
    assert week_ending_for(d(11, 16)) == d(11, 15)
    assert {week_ending_for(d(11, 9) + timedelta(days=k)) for k in range(7)} == {d(11, 8)}
    # a Friday digest is for the week ending Thursday
    assert week_ending_for(d(11, 13), digest_weekday=4) == d(11, 12)
    assert week_ending_for(d(11, 12), digest_weekday=4) == d(11, 5)


def test_overdue_advice_grouped_by_agency_and_service_most_overdue_first(db_url):
    seed(db_url)
    with Session(engine_for(db_url)) as s:
        digest = build_digest(s, W)
    assert (digest.week_starting, digest.week_ending) == (d(11, 2), W)
    assert shape(digest) == EXPECTED_GROUPS
    assert digest.overdue_count == EXPECTED_OVERDUE_COUNT
    assert [a.overdue for a in digest.agencies] == [2, 2, 2]
    listed = {(i.case_reference, i.advice_key) for a in digest.agencies for g in a.services
              for i in g.items}
    # the due-day boundary, received, excused, reused, closed and as-of rules
    assert ("EHC-TEST-0001", "health-salt") not in listed  # due on the week's last day
    assert ("EHC-TEST-0001", "health-ot") not in listed  # received (late)
    assert ("EHC-TEST-0002", "social_care") not in listed  # excused by Reg 8(2)(a)
    assert ("EHC-TEST-0003", "education") not in listed  # case closed before the week
    assert ("EHC-TEST-0004", "education") not in listed  # excused on 8 November
    assert ("EHC-TEST-0004", "health") in listed  # the case was still open on 8 November
    assert ("EHC-TEST-0001", "educational_psychologist") in listed  # received on 10 Nov
    assert ("EHC-TEST-0001", "education") in listed  # a Reg 10(4) exception does not excuse

    top = digest.agencies[0].services[0].items[0]
    assert (top.advice, top.requested_on, top.due) == ("Educational advice", d(9, 1),
                                                       d(10, 13))
    assert top.last_escalation == "escalate_adqa"
    assert top.last_escalation_label == "Escalated to the ADQA group"
    # 07:00 UTC on 23 October 2026 was 08:00 in London (summer time)
    assert top.last_email_at == datetime(2026, 10, 23, 8, 0, tzinfo=LONDON)
    assert top.last_email_at.utcoffset() == timedelta(hours=1)
    assert top.last_email_step == "escalate_adqa"
    unassigned = digest.agencies[0].services[1]
    assert (unassigned.service_id, unassigned.service) == (None, "Not assigned")
    old = unassigned.items[0]  # requested before the ladder: its steps sent no email
    assert old.last_escalation_label == "Marked overdue (no email)"
    assert old.last_email_at is None
    ep = digest.agencies[1].services[0].items[0]
    assert ep.last_escalation_label == "Repeat reminder 2"


def test_compliance_per_agency_with_numerator_and_denominator(db_url):
    seed(db_url)
    with Session(engine_for(db_url)) as s:
        digest = build_digest(s, W)
    got = {c.agency: (c.on_time, c.due, c.percent) for c in digest.compliance}
    assert got == EXPECTED_COMPLIANCE
    assert [c.agency for c in digest.compliance] == list(AGENCIES)
    by = {c.agency: c for c in digest.compliance}
    assert by["health"].summary == "1 of 4 on time (25%)"
    assert by["social_care"].summary == "no advice was due"
    total = digest.compliance_total
    assert (total.on_time, total.due, total.percent) == (2, 5, 40.0)


def test_boundaries_one_day_either_side(sqlite_url):
    """The same records as of the day before and the day after the week's last day."""
    seed(sqlite_url)
    with Session(engine_for(sqlite_url)) as s:
        before = build_digest(s, d(11, 7))
        after = build_digest(s, d(11, 9))
    items = lambda dg: {(i.case_reference, i.advice_key): i.days_overdue  # noqa: E731
                        for a in dg.agencies for g in a.services for i in g.items}
    assert ("EHC-TEST-0001", "health") not in items(before)  # due 7 Nov: not yet overdue
    assert items(after)[("EHC-TEST-0001", "health-salt")] == 1  # due 8 Nov: overdue on the 9th
    assert items(after)[("EHC-TEST-0001", "education")] == 27
    # the week 3-9 November: health's 3 November advice (received that day) is still in it
    health = {c.agency: c for c in after.compliance}["health"]
    assert (health.on_time, health.due) == (1, 4)
    # the week 1-7 November: the 8 November item is not yet in it
    health = {c.agency: c for c in before.compliance}["health"]
    assert (health.on_time, health.due) == (1, 3)


def test_rates_round_half_up_to_one_decimal():
    from services.digest import Compliance

    assert Compliance.of("x", "X", 2, 3).percent == 66.7
    assert Compliance.of("x", "X", 1, 8).percent == 12.5
    assert Compliance.of("x", "X", 1, 6).summary == "1 of 6 on time (16.7%)"
    assert Compliance.of("x", "X", 0, 0).percent is None


def test_step_labels():
    assert step_label("escalate_lead") == "Escalated to the service lead"
    assert step_label("repeat-3") == "Repeat reminder 3"
    assert step_label("overdue") == "Overdue notice"
    assert step_label("overdue", has_ladder=False) == "Marked overdue (no email)"
    assert step_label("chase_again") == "Chase again"


# --- the email -----------------------------------------------------------------------------------


def mail_settings(db_url: str, smtp_server, queue: str = "digest-mail"):
    return settings_for(db_url, queue, smtp_host=smtp_server.host, smtp_port=smtp_server.port,
                        public_base_url="https://ehc.council.example")


def assert_no_child_data(*texts: str) -> None:
    for text in texts:
        for name in CHILD_NAMES:
            assert name not in text
        assert "2016-04-02" not in text and "2 April 2016" not in text


async def test_one_email_per_active_member_listing_the_cases_and_no_child_names(
        db_url, smtp_server):
    seed(db_url)
    sender = DigestSender(mail_settings(db_url, smtp_server))
    summary = await sender.send_now(W)
    assert summary == DigestSummary(week_ending=W, recipients=2, sent=2,
                                    overdue_items=EXPECTED_OVERDUE_COUNT)
    got = smtp_server.messages()
    assert sorted(m.to.lower() for m in got) == ACTIVE
    assert not smtp_server.messages(to="former@council.example")
    for m in got:
        assert m.subject == "ADQA digest: week ending 8 November 2026, 6 overdue"
        assert_no_child_data(m.subject, m.text, m.html)
        # every overdue item, with its days overdue; nothing excused, received or not due
        assert ("EHC-TEST-0001: Educational advice. Requested 1 September 2026, due 13 "
                "October 2026, 26 days overdue.") in m.text
        assert "Last escalation: Escalated to the ADQA group. Last email sent 23 October " \
               "2026 at 8am." in m.text
        assert "EHC-TEST-0002: Educational advice. Requested 18 September 2026, due 30 " \
               "October 2026, 9 days overdue." in m.text
        assert "EHC-TEST-0001: Medical advice. Requested 26 September 2026, due 7 November " \
               "2026, 1 day overdue." in m.text
        assert "due 20 October 2026" not in m.text  # excused
        assert "due 8 November 2026" not in m.text  # due on the last day
        assert "EHC-TEST-0003" not in m.text and "EHC-TEST-0005" not in m.text
        text = m.text.replace("\r\n", "\n")
        assert "\nHealth (2 overdue)\n\n  Community Paediatrics\n  - EHC-TEST-0004" in text
        assert "Health: 1 of 4 on time (25%)" in m.text
        assert "Social care: no advice was due" in m.text
        assert "All agencies: 2 of 5 on time (40%)" in m.text
        assert "https://ehc.council.example/adqa/digest?week_ending=2026-11-08" in m.text
        # an accessible HTML table, no images or outside resources
        assert '<html lang="en">' in m.html and "<caption" in m.html
        assert '<th scope="col"' in m.html and '<th scope="row"' in m.html
        assert "<img" not in m.html and "<script" not in m.html and "<link" not in m.html
        assert "Education: Not assigned" in m.html and ">26</td>" in m.html
    by_to = {m.to.lower(): m for m in got}
    assert "Dear Alex Director," in by_to["alex.director@council.example"].text
    assert "Dear Sam Head," in by_to["sam.head@council.example"].text

    again = await sender.send_now(W)
    assert (again.sent, again.already_sent) == (0, 2)
    assert len(smtp_server.messages()) == 2
    with Session(engine_for(db_url)) as s:
        rows = s.exec(select(t.EmailMessage).where(t.EmailMessage.template == "adqa_digest")
                      ).all()
    assert sorted(r.key for r in rows) == [digest_key(W, e) for e in ACTIVE]
    assert all(r.status == "sent" and r.recipient_role == "adqa" for r in rows)
    # another week is another digest
    other = await sender.send_now(W + timedelta(days=7))
    assert other.sent == 2 and len(smtp_server.messages()) == 4


async def test_no_members_sends_nothing(sqlite_url, smtp_server):
    seed(sqlite_url, members=False)
    summary = await DigestSender(mail_settings(sqlite_url, smtp_server)).send_now(W)
    assert (summary.recipients, summary.sent) == (0, 0)
    assert smtp_server.messages() == []


def digest_worker(client, settings) -> Worker:
    return Worker(client, task_queue=settings.task_queue, workflows=[AdqaDigestWorkflow],
                  activities=[DigestActivities(DigestSender(settings)).send_adqa_digest])


async def test_smtp_outage_then_recovery_delivers_each_digest_once(dev_env, sqlite_url,
                                                                   smtp_server):
    seed(sqlite_url)
    settings = mail_settings(sqlite_url, smtp_server, f"digest-{uuid.uuid4().hex[:8]}")
    smtp_server.stop()  # the council's mail server is down when the digest is due
    async with digest_worker(dev_env.client, settings):
        handle = await dev_env.client.start_workflow(
            AdqaDigestWorkflow.run, DigestRequest(week_ending=W),
            id=f"adqa-digest-test-{uuid.uuid4().hex[:8]}", task_queue=settings.task_queue)

        def failed() -> list[t.EmailMessage]:
            with Session(engine_for(sqlite_url)) as s:
                return s.exec(select(t.EmailMessage).where(
                    t.EmailMessage.template == "adqa_digest")).all()

        for _ in range(200):
            rows = failed()
            if rows and rows[0].status == "failed" and rows[0].attempts >= 2:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the activity did not retry while the server was down")
        assert smtp_server.messages() == []
        smtp_server.start()
        summary = await asyncio.wait_for(handle.result(), 60)
    assert summary.sent == 2 and summary.week_ending == W
    assert sorted(m.to.lower() for m in smtp_server.messages()) == ACTIVE
    rows = failed()
    assert all(r.status == "sent" for r in rows)
    assert max(r.attempts for r in rows) >= 3  # two failed attempts, then the sent one


# --- the schedule --------------------------------------------------------------------------------


async def _delete_schedule(client) -> None:
    for schedule_id in (SCHEDULE_ID, DAILY_SCHEDULE_ID):  # ensure_digest_schedule makes both
        try:
            await client.get_schedule_handle(schedule_id).delete()
        except Exception:
            pass


async def _schedule_exists(client) -> bool:
    """Whether the digest's schedule is there, asked of the schedule itself: listing schedules
    reads the visibility store, which catches up a moment after a create or a delete."""
    try:
        await client.get_schedule_handle(SCHEDULE_ID).describe()
    except RPCError as e:
        if e.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


async def test_schedule_weekly_monday_8_london_skip_overlaps_created_once(dev_env,
                                                                           sqlite_url):
    client = dev_env.client
    settings = settings_for(sqlite_url, f"digest-{uuid.uuid4().hex[:8]}")
    await _delete_schedule(client)
    try:
        cfg = DigestScheduleSettings(_env_file=None)
        handle = await ensure_digest_schedule(client, settings, cfg)
        first = await handle.describe()
        await ensure_digest_schedule(client, settings, cfg)
        assert await _schedule_exists(client)
        desc = await handle.describe()
        assert desc.info.last_updated_at == first.info.last_updated_at  # nothing to change
        spec = desc.schedule.spec
        assert spec.time_zone_name == "Europe/London"
        (cal,) = spec.calendars
        assert cal.day_of_week == (ScheduleRange(1),)  # Temporal: 0 is Sunday, 1 Monday
        assert (cal.hour, cal.minute, cal.second) == ((ScheduleRange(8),), (ScheduleRange(0),),
                                                      (ScheduleRange(0),))
        assert desc.schedule.policy.overlap == ScheduleOverlapPolicy.SKIP
        assert desc.schedule.policy.catchup_window == timedelta(days=1)
        action = desc.schedule.action
        assert (action.workflow, action.task_queue) == ("AdqaDigestWorkflow",
                                                        settings.task_queue)
        runs = await next_run_times(handle)
        assert len(runs) == 5
        assert all((r.weekday(), r.hour, r.minute) == (0, 8, 0) for r in runs)
        assert runs[0] > datetime.now(timezone.utc)

        # new settings update it in place, and a pause made by someone is kept
        await handle.pause(note="paused for the Christmas break")
        friday = DigestScheduleSettings(_env_file=None, weekday="friday", hour=16)
        await ensure_digest_schedule(client, settings, friday)
        assert await _schedule_exists(client)
        desc = await handle.describe()
        assert desc.schedule.spec.calendars[0].day_of_week == (ScheduleRange(5),)
        assert desc.schedule.spec.calendars[0].hour == (ScheduleRange(16),)
        assert desc.schedule.state.paused
    finally:
        await _delete_schedule(client)


def test_schedule_settings_from_the_environment(monkeypatch):
    monkeypatch.setenv("EHC_DIGEST_WEEKDAY", "Wednesday")
    monkeypatch.setenv("EHC_DIGEST_HOUR", "7")
    cfg = DigestScheduleSettings(_env_file=None)
    assert (cfg.weekday, cfg.hour) == (2, 7)
    assert cfg.describe() == "every Wednesday at 07:00 (Europe/London)"
    monkeypatch.setenv("EHC_DIGEST_WEEKDAY", "someday")
    with pytest.raises(ValueError, match="not a day of the week"):
        DigestScheduleSettings(_env_file=None)
    monkeypatch.setenv("EHC_DIGEST_WEEKDAY", "0")
    monkeypatch.setenv("EHC_DIGEST_HOUR", "24")
    with pytest.raises(ValueError):
        DigestScheduleSettings(_env_file=None)


async def _run_of_action(client, handle, n: int) -> DigestSummary:
    """Wait for the schedule's ``n``th action and return its workflow's result."""
    deadline = time.monotonic() + 120  # generous: a loaded machine starts workers slowly
    while time.monotonic() < deadline:
        actions = (await handle.describe()).info.recent_actions
        if len(actions) >= n:
            wid = actions[n - 1].action.workflow_id
            return await asyncio.wait_for(
                client.get_workflow_handle(wid, result_type=DigestSummary).result(), 60)
        await asyncio.sleep(0.05)
    raise AssertionError(f"the schedule did not take action {n}")


@asynccontextmanager
async def worker_process(dev_env, settings):
    env = {**os.environ, "EHC_DATABASE_URL": settings.database_url,
           "EHC_TASK_QUEUE": settings.task_queue, "EHC_SMTP_HOST": settings.smtp_host,
           "EHC_SMTP_PORT": str(settings.smtp_port),
           "EHC_TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host}
    proc = subprocess.Popen([sys.executable, "-m", "worker"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def test_triggered_twice_in_a_week_across_a_worker_restart_sends_once(
        dev_env, sqlite_url, smtp_server):
    client = dev_env.client
    seed(sqlite_url)
    settings = mail_settings(sqlite_url, smtp_server, f"digest-{uuid.uuid4().hex[:8]}")
    week = current_week_ending(today(), DigestScheduleSettings(_env_file=None))
    await _delete_schedule(client)
    try:
        handle = await ensure_digest_schedule(client, settings,
                                              DigestScheduleSettings(_env_file=None))
        async with digest_worker(client, settings):
            await handle.trigger()
            first = await _run_of_action(client, handle, 1)
        assert (first.week_ending, first.sent, first.already_sent) == (week, 2, 0)
        assert sorted(m.to.lower() for m in smtp_server.messages()) == ACTIVE
        subject = smtp_server.messages()[0].subject
        assert f"week ending {week.day} {week:%B %Y}" in subject

        # The worker is restarted, as the real `ehc worker` this time, after the schedule was
        # lost: at start the worker makes it again; triggered again in the same week, the
        # digest goes to nobody twice.
        await handle.delete()
        assert not await _schedule_exists(client)
        async with worker_process(dev_env, settings) as proc:
            deadline = time.monotonic() + 120  # a worker's start is slow on a loaded machine
            while not await _schedule_exists(client):
                assert proc.poll() is None, f"the worker exited with status {proc.returncode}"
                if time.monotonic() > deadline:
                    raise AssertionError("the worker did not create the schedule at start")
                await asyncio.sleep(0.05)
            desc = await handle.describe()
            assert desc.schedule.action.task_queue == settings.task_queue
            assert desc.schedule.spec.time_zone_name == "Europe/London"
            await handle.trigger()
            second = await _run_of_action(client, handle, 1)
            await handle.trigger()  # and once more, with the same worker
            third = await _run_of_action(client, handle, 2)
        for run in (second, third):
            assert (run.week_ending, run.sent, run.already_sent) == (week, 0, 2)
        assert await _schedule_exists(client)
        assert sorted(m.to.lower() for m in smtp_server.messages()) == ACTIVE  # still one each
    finally:
        await _delete_schedule(client)


def test_the_worker_runs_the_digest():
    from worker.main import WORKFLOWS

    assert AdqaDigestWorkflow in WORKFLOWS


# --- the page, the JSON and the command line -----------------------------------------------------


@asynccontextmanager
async def web(db_url):
    app = create_app(settings_for(db_url, "digest-web"), client=None)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test",
                                 headers=staff_headers(db_url, "manager")) as http:
        yield http


async def test_page_shows_the_digest_in_govuk_tables(sqlite_url):
    seed(sqlite_url)
    async with web(sqlite_url) as http:
        r = await http.get("/adqa/digest", params={"week_ending": "2026-11-08"})
    assert r.status_code == 200, r.text
    html = r.text
    assert "Week ending 8 November 2026" in html
    assert html.count('class="govuk-table"') == 5  # four services, and compliance
    assert "Education: Not assigned" in html
    assert '<a class="govuk-link" href="/cases/EHC-TEST-0001">EHC-TEST-0001</a>' in html
    assert "Escalated to the ADQA group" in html and "Repeat reminder 2" in html
    assert "25%" in html and "No advice was due" in html
    assert "EHC-TEST-0003" not in html and "EHC-TEST-0005" not in html
    assert_no_child_data(html)


async def test_page_with_a_malformed_date_says_what_to_fix(sqlite_url):
    async with web(sqlite_url) as http:
        bad = await http.get("/adqa/digest", params={"week_ending": "08/11/2026"})
        impossible = await http.get("/adqa/digest", params={
            "week_ending-day": "30", "week_ending-month": "2", "week_ending-year": "2026"})
        later = today() + timedelta(days=30)
        future = await http.get("/adqa/digest", params={
            "week_ending-day": str(later.day), "week_ending-month": str(later.month),
            "week_ending-year": str(later.year)})
        typed = await http.get("/adqa/digest", params={
            "week_ending-day": "8", "week_ending-month": "11", "week_ending-year": "2026"})
        default = await http.get("/adqa/digest")
    # a link whose date cannot be read (the weekly email's links carry 2026-11-08)
    assert bad.status_code == 422 and "govuk-error-summary" in bad.text
    assert "The week in the link is not a date this page can read" in bad.text
    # the page's own date boxes, as every date on the pages is typed
    assert impossible.status_code == 422 and "Week ending must be a real date" in impossible.text
    assert 'name="week_ending-day" type="text" value="30"' in impossible.text
    assert future.status_code == 422 and "is in the future" in future.text
    assert typed.status_code == 200 and "Week ending 8 November 2026" in typed.text
    assert default.status_code == 200
    week = current_week_ending(today(), DigestScheduleSettings(_env_file=None))
    assert f"Week ending {week.day} {week:%B %Y}" in default.text


async def test_json_is_the_same_digest(db_url):
    seed(db_url)
    async with web(db_url) as http:
        r = await http.get("/api/adqa/digest", params={"week_ending": "2026-11-08"})
        bad = await http.get("/api/adqa/digest", params={"week_ending": "banana"})
        future = await http.get("/api/adqa/digest", params={
            "week_ending": (today() + timedelta(days=1)).isoformat()})
        schema = (await http.get("/openapi.json")).json()
    assert r.status_code == 200
    with Session(engine_for(db_url)) as s:
        assert r.json() == json.loads(build_digest(s, W).model_dump_json())
    body = r.json()
    assert body["overdue_count"] == EXPECTED_OVERDUE_COUNT
    assert body["compliance_total"] == {"agency": "all", "label": "All agencies", "on_time": 2,
                                        "due": 5, "percent": 40.0,
                                        "summary": "2 of 5 on time (40%)"}
    assert_no_child_data(r.text)
    assert bad.status_code == 422 and [e["field"] for e in bad.json()["errors"]] == \
        ["week_ending"] and "Week ending must be a real date" in bad.json()["detail"]
    assert "YYYY-MM-DD" in bad.json()["detail"]
    assert future.status_code == 422 and "in the future" in future.json()["detail"]
    assert schema["paths"]["/api/adqa/digest"]["get"]["tags"] == ["adqa"]
    assert "/adqa/digest" not in schema["paths"]


def _ehc(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=ROOT,
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=60)


def test_cli_send_is_idempotent(sqlite_url, smtp_server):
    seed(sqlite_url)
    env = {"EHC_DATABASE_URL": sqlite_url, "EHC_SMTP_HOST": smtp_server.host,
           "EHC_SMTP_PORT": str(smtp_server.port)}
    first = _ehc("digest", "send", "--week-ending", "2026-11-08", **env)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["sent"] == 2
    second = _ehc("digest", "send", "--week-ending", "2026-11-08", **env)
    assert json.loads(second.stdout)["already_sent"] == 2
    assert len(smtp_server.messages()) == 2
    bad = _ehc("digest", "send", "--week-ending", "8 Nov", **env)
    assert bad.returncode == 2 and "YYYY-MM-DD" in bad.stderr
    smtp_server.stop()  # the mail server is down: a clear error, and nothing is lost
    down = _ehc("digest", "send", "--week-ending", "2026-11-15", **env)
    assert down.returncode == 1 and "run this again when the mail server is back" in down.stderr
    smtp_server.start()
    up = _ehc("digest", "send", "--week-ending", "2026-11-15", **env)
    assert json.loads(up.stdout)["sent"] == 2 and len(smtp_server.messages()) == 4


async def test_cli_schedule_prints_the_next_runs(dev_env, sqlite_url):
    address = dev_env.client.service_client.config.target_host
    try:
        out = await asyncio.to_thread(
            _ehc, "digest", "schedule", EHC_TEMPORAL_ADDRESS=address,
            EHC_DATABASE_URL=sqlite_url, EHC_DIGEST_WEEKDAY="tuesday", EHC_DIGEST_HOUR="9")
        assert out.returncode == 0, out.stderr
        assert "every Tuesday at 09:00 (Europe/London)" in out.stdout
        runs = [line for line in out.stdout.splitlines() if line.startswith("  ")]
        weekly, daily = runs[:5], runs[5:]
        assert len(weekly) == 5 and all(line.strip().startswith("Tuesday") and "09:00" in line
                                        for line in weekly)
        desc = await dev_env.client.get_schedule_handle(SCHEDULE_ID).describe()
        assert desc.schedule.spec.calendars[0].day_of_week == (ScheduleRange(2),)
        # The ADQA group's daily message: every day at 17:00 London time.
        assert "schedule adqa-daily-message: every day at 17:00 (Europe/London)" in out.stdout
        assert len(daily) == 5 and all("17:00" in line for line in daily)
        days = [line.strip().split(",")[0] for line in daily]
        assert len(set(days)) == 5  # five days running
    finally:
        await _delete_schedule(dev_env.client)
