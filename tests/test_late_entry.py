"""Entering history is not chasing: the pure rules (domain.ladder, domain.alerts) for deadlines
entered after their day. The workflow only calls these; tests/test_advice_chasing.py runs them
end to end against a real SMTP server."""

from __future__ import annotations

from datetime import date, timedelta

from domain.alerts import fire, ladder
from domain.case import AssessmentPolicy, Milestone
from domain.ladder import Ladder, not_sent_summary
from services.directory import load_escalation
from statutory import london_midnight, london_time
from tests.conftest import settings_for

DEFAULT = load_escalation(settings_for("sqlite://", "x")).for_source("health")
REQUESTED, DUE = date(2026, 10, 6), date(2026, 11, 17)  # six weeks
ENTERED = date(2026, 12, 7)


def planned(entered: date | None, requested: date = REQUESTED, due: date = DUE,
            lad: Ladder = DEFAULT) -> dict[str, date | None]:
    return {s.name: d for s, d in lad.days(requested, due, entered)}


def test_on_time_entry_keeps_the_ladder_as_written():
    written = planned(None)
    assert written == planned(REQUESTED)  # entered on its request day
    assert written == {"request": REQUESTED, "reminder": date(2026, 11, 7),
                       "due_tomorrow": date(2026, 11, 16), "overdue": date(2026, 11, 18),
                       "escalate_lead": date(2026, 11, 22), "escalate_adqa": date(2026, 11, 27)}


def test_late_entry_sends_the_request_that_day_skips_the_gone_and_replans_the_overdue():
    assert planned(ENTERED) == {
        "request": ENTERED,                         # the first email the professional gets
        "reminder": None, "due_tomorrow": None,     # their days had gone: not sent
        "overdue": ENTERED + timedelta(days=1),     # as if it fell due on the day entered
        "escalate_lead": ENTERED + timedelta(days=5),
        "escalate_adqa": ENTERED + timedelta(days=10),
    }
    assert DEFAULT.missed(REQUESTED, DUE, [], ENTERED) == [
        ("reminder", date(2026, 11, 7)), ("due_tomorrow", date(2026, 11, 16))]
    # A request sent another way (already marked) is not listed as missed.
    assert DEFAULT.missed(REQUESTED, DUE, ["request"], ENTERED)[0][0] == "reminder"


def test_repeats_follow_the_replanned_steps():
    fired = ["request", "reminder", "due_tomorrow", "overdue", "escalate_lead",
             "escalate_adqa"]
    assert DEFAULT.next_at(REQUESTED, DUE, fired, ENTERED) == \
        london_time(ENTERED + timedelta(days=17), 8)
    # Nothing at all is due on the day of entry but the request.
    passed = DEFAULT.passed(REQUESTED, DUE, ["reminder", "due_tomorrow"],
                            london_time(ENTERED, 20), ENTERED)
    assert [n for n, _, _ in passed] == ["request"]


def test_a_late_request_goes_the_moment_it_is_entered_whatever_the_hour():
    """Entered at half past midnight (or at 7 in the morning), the request of advice asked
    for weeks ago goes at once: it was owed already, and the caseworker should see it leave.
    The steps after it keep the ladder's hour (08:00)."""
    for hour in (0, 7, 20):
        now = london_midnight(ENTERED) + timedelta(hours=hour, minutes=30)
        passed = DEFAULT.passed(REQUESTED, DUE, ["reminder", "due_tomorrow"], now, ENTERED)
        assert [n for n, _, _ in passed] == ["request"], hour
    assert DEFAULT.next_at(REQUESTED, DUE, ["request", "reminder", "due_tomorrow"],
                           ENTERED) == london_time(ENTERED + timedelta(days=1), 8)
    # Advice asked for today and entered today waits for the ladder's hour, as written.
    assert DEFAULT.next_at(ENTERED, ENTERED + timedelta(days=42), [], ENTERED) == \
        london_time(ENTERED, 8)


def test_entered_before_it_falls_due_only_the_gone_steps_are_skipped():
    entered = date(2026, 11, 10)  # after the reminder's day, before the due date
    assert planned(entered) == {
        "request": entered, "reminder": None, "due_tomorrow": date(2026, 11, 16),
        "overdue": date(2026, 11, 18), "escalate_lead": date(2026, 11, 22),
        "escalate_adqa": date(2026, 11, 27)}


def test_steps_on_the_day_of_entry_go_as_usual():
    entered = DUE + timedelta(days=1)  # the overdue notice's own day
    days = planned(entered)
    assert days["overdue"] == entered and days["escalate_lead"] == DUE + timedelta(days=5)
    assert days["reminder"] is None and days["due_tomorrow"] is None


def test_the_timeline_says_once_what_was_not_sent_in_words():
    missed = DEFAULT.missed(REQUESTED, DUE, [], ENTERED)
    assert not_sent_summary("medical advice", missed, ENTERED) == (
        "Medical advice: reminder (7 November 2026) and due-tomorrow notice (16 November "
        "2026) were not sent: this advice was entered on 7 December 2026, after their days")
    assert not_sent_summary("medical advice", missed[:1], ENTERED).endswith(
        "reminder (7 November 2026) was not sent: this advice was entered on 7 December "
        "2026, after its day")


class _Case:
    def __init__(self) -> None:
        self.version = 0
        self.policy = AssessmentPolicy()


def test_a_milestone_entered_after_its_day_waits_to_the_end_of_that_day():
    """A caseworker entering a case's history on 7 December: the decision (due 13 October)
    is not called overdue that day; at the next midnight, if still not done, it is, and says
    it was noted late."""
    m = Milestone(key="decision_due", rule_id="assessment.decision_due",
                  started_on=date(2026, 9, 1), due=date(2026, 10, 13), entered_on=ENTERED)
    case = _Case()
    end_of_day = london_midnight(ENTERED + timedelta(days=1))
    assert [at for _, at in ladder(m, 14)] == [end_of_day, end_of_day]
    assert fire(case, m, None, london_time(ENTERED, 23)) is None
    event = fire(case, m, None, end_of_day)
    assert event is not None and event.kind == "deadline.overdue"
    assert event.on == ENTERED + timedelta(days=1)
    assert event.summary == (
        "Decision whether to assess is overdue: it was due on 13 October 2026; noted on 8 "
        "December 2026, as it was entered on 7 December 2026, after its day (14 October "
        "2026)")
    assert m.alerts_fired == ["due_soon", "overdue"]


def test_a_milestone_known_in_time_alerts_on_its_day():
    m = Milestone(key="decision_due", rule_id="assessment.decision_due",
                  started_on=date(2026, 9, 1), due=date(2026, 10, 13),
                  entered_on=date(2026, 9, 1))
    old = m.model_copy(update={"entered_on": None})  # made before the day of entry was kept
    for item in (m, old):
        assert [at for _, at in ladder(item, 14)] == [
            london_midnight(date(2026, 9, 29)), london_midnight(date(2026, 10, 14))]
    event = fire(_Case(), m, None, london_midnight(date(2026, 10, 14)))
    assert event.summary == "Decision whether to assess is overdue: it was due on 13 October 2026"
