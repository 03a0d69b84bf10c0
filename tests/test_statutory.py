"""The statutory clock: hand-worked dates from the regulations, and properties that must hold
for every date.

Counting (shared/domain/statutory-timescales.md): "N weeks" is N x 7 calendar days from the
trigger date, "15 days" is 15 calendar days; no limit uses working days.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings, strategies as st

from statutory import (
    RULES,
    ExceptionKind,
    Status,
    assessment_timescales,
    excusing_exceptions,
    london_date,
    london_midnight,
    phase_transfer_deadline,
    review_timescales,
    status_on,
)
from statutory.rules import (
    Anniversary,
    Days,
    FixedDateInYear,
    Months,
    Trigger,
    Weeks,
    add_months,
)

LONDON = ZoneInfo("Europe/London")

dates = st.dates(min_value=date(1990, 1, 1), max_value=date(2100, 12, 31))
years = st.integers(min_value=1990, max_value=2100)

DATE_TRIGGERED_RULES = sorted(r for r, rule in RULES.items()
                              if rule.trigger is not Trigger.TRANSFER_YEAR)


# --- hand-worked examples ------------------------------------------------------------------


def test_assessment_hand_worked_2026_01_05():
    t = assessment_timescales(date(2026, 1, 5))
    # Reg 5(1), 6 weeks = 42 days: Jan 5 + 26 = Jan 31; 16 more -> Feb 16.
    assert t["decision_due"].due == date(2026, 2, 16)
    assert t["decision_due"].citation == "Reg 5(1)"
    # Reg 10(1), 16 weeks = 112 days: Jan 5 + 26 = Jan 31 (86 left), + 28 = Feb 28 (58 left),
    # + 31 = Mar 31 (27 left) -> Apr 27.
    assert t["no_plan_notice_due"].due == date(2026, 4, 27)
    assert t["no_plan_notice_due"].citation == "Reg 10(1)"
    # Reg 13(2), 20 weeks = 140 days: Apr 27 (day 112) + 28 -> May 25.
    assert t["final_plan_due"].due == date(2026, 5, 25)
    assert t["final_plan_due"].citation == "Reg 13(2)"
    # default local draft target: 16 weeks, same as day 112.
    assert t["draft_plan_target"].due == date(2026, 4, 27)
    assert "advice_due" not in t and "draft_comments_due" not in t


def test_advice_and_draft_comments_hand_worked():
    t = assessment_timescales(date(2026, 1, 5), advice_requested=date(2026, 2, 1),
                              draft_served=date(2026, 4, 20))
    # Reg 8(1), 6 weeks = 42 days: Feb 1 + 27 = Feb 28 (15 left) -> Mar 15.
    assert t["advice_due"].due == date(2026, 3, 15)
    assert t["advice_due"].citation == "Reg 8(1)"
    # Reg 13(1), 15 days: Apr 20 + 10 = Apr 30 (5 left) -> May 5.
    assert t["draft_comments_due"].due == date(2026, 5, 5)
    assert t["draft_comments_due"].citation == "Reg 13(1)"


def test_draft_target_is_configurable():
    # 18 weeks = 126 days from Jan 5: Apr 27 (day 112) + 14 -> May 11.
    t = assessment_timescales(date(2026, 1, 5), draft_target_weeks=18)
    assert t["draft_plan_target"].due == date(2026, 5, 11)
    assert t["draft_plan_target"].rule.statutory is False
    # the statutory deadlines do not move with it
    assert t["final_plan_due"].due == date(2026, 5, 25)


def test_review_due_leap_day_plan():
    # CFA 2014 s.44(1): plan made 29 Feb 2024; 2025 has no 29 Feb, so the last day of the
    # 12-month period is 28 Feb 2025 (365 days later: 2024-02-29 + 366 would be 2025-03-01).
    t = review_timescales(plan_issued=date(2024, 2, 29))
    assert t["review_due"].due == date(2025, 2, 28)
    assert t["review_due"].citation == "CFA 2014 s.44(1)"


def test_review_due_from_last_review():
    # anniversary of the last review: 2025-11-03 -> 2026-11-03
    t = review_timescales(last_review=date(2025, 11, 3))
    assert set(t) == {"review_due"}
    assert t["review_due"].due == date(2026, 11, 3)


def test_review_meeting_hand_worked():
    t = review_timescales(meeting_date=date(2026, 10, 1))
    # Reg 20(1)-(3) and 20(4): 2 weeks before: Oct 1 - 14 = Sep 17 (Sep has 30 days: 30 - 13).
    assert t["invitations_due"].due == date(2026, 9, 17)
    assert t["invitations_due"].citation == "Reg 20(1)-(3)"
    assert t["advice_circulated_due"].due == date(2026, 9, 17)
    assert t["advice_circulated_due"].citation == "Reg 20(4)"
    # Reg 20(7)-(8): 2 weeks after: Oct 1 + 14 = Oct 15.
    assert t["report_due"].due == date(2026, 10, 15)
    assert t["report_due"].citation == "Reg 20(7)-(8)"
    # Reg 20(10): 4 weeks = 28 days after: Oct 1 + 28 = Oct 29.
    assert t["decision_due"].due == date(2026, 10, 29)
    assert t["decision_due"].citation == "Reg 20(10)"
    assert "review_due" not in t


def test_amendments_hand_worked():
    t = review_timescales(meeting_date=date(2026, 10, 1), amendments_sent=date(2026, 10, 20))
    # Reg 22(2), 15 days: Oct 20 + 11 = Oct 31 (4 left) -> Nov 4.
    assert t["amendment_comments_due"].due == date(2026, 11, 4)
    assert t["amendment_comments_due"].citation == "Reg 22(2)"
    # Reg 22(3), 8 weeks = 56 days: Oct 20 + 11 = Oct 31 (45 left), + 30 = Nov 30 (15 left)
    # -> Dec 15.
    assert t["final_amended_plan_due"].due == date(2026, 12, 15)
    assert t["final_amended_plan_due"].citation == "Reg 22(3)"
    # within 12 weeks of the meeting: Oct 1 + 84 = Dec 24
    assert t["final_amended_plan_due"].due <= date(2026, 12, 24)


@pytest.mark.parametrize(
    "case, transfer, year, expected, citation",
    [
        # Year 6 -> Year 7 in September 2027: school phase, Reg 18(1)(b), 15 Feb 2027
        # The Regulations say "before 15 February" (Reg 18(1)(b)): 14 February is the last day
        # on time (the CoP's "by 15 February" paraphrase does not change the law).
        ("year 6 to secondary", "school", 2027, date(2027, 2, 14), "Reg 18(1)(b)"),
        # nursery (early years) -> reception: school phase, 15 Feb of the year of transfer
        ("early years to school", "school", 2027, date(2027, 2, 14), "Reg 18(1)(b)"),
        ("infant to junior", "school", 2028, date(2028, 2, 14), "Reg 18(1)(b)"),
        # Year 11 -> sixth-form college in September 2027: Reg 18(1)(a), before 31 March 2027
        ("year 11 to post-16", "post16", 2027, date(2027, 3, 30), "Reg 18(1)(a)"),
    ],
)
def test_phase_transfer_hand_worked(case, transfer, year, expected, citation):
    d = phase_transfer_deadline(transfer, year)
    assert d.due == expected, case
    assert d.citation == citation
    assert d.key == "phase_transfer_due"
    t = review_timescales(transfer=transfer, transfer_year=year)
    assert t["phase_transfer_due"].due == expected
    assert t["phase_transfer_due"].citation == citation


@pytest.mark.parametrize("kind, year, on_time, late", [
    # Reg 18(1)(b): "before 15 February". Worked by hand: 14 February is on time, 15 late.
    ("school", 2027, date(2027, 2, 14), date(2027, 2, 15)),
    # A leap year: 29 February comes after the day and changes nothing.
    ("school", 2028, date(2028, 2, 14), date(2028, 2, 15)),
    # Reg 18(1)(a): "before 31 March". 30 March is on time, 31 March late.
    ("post16", 2027, date(2027, 3, 30), date(2027, 3, 31)),
    ("post16", 2028, date(2028, 3, 30), date(2028, 3, 31)),
])
def test_phase_transfer_done_on_the_named_day_is_late(kind, year, on_time, late):
    d = phase_transfer_deadline(kind, year)
    assert d.due == on_time
    assert "before" in d.rule.note
    today = date(year, 6, 1)
    assert status_on(today, d.due, on_time, due_soon_days=42) is Status.DONE_ON_TIME
    assert status_on(today, d.due, late, due_soon_days=42) is Status.DONE_LATE
    # Not done: still due on the last day, overdue on the named day itself.
    assert status_on(on_time, d.due, None, due_soon_days=42) is Status.DUE_SOON
    assert status_on(late, d.due, None, due_soon_days=42) is Status.OVERDUE


def test_post16_move_five_months_before_clamped():
    # Reg 18(2): at least 5 months before 31 July 2027 -> "31 February 2027" does not exist,
    # so the last day of February: 28 Feb 2027 (never 3 March, which would be too late).
    t = review_timescales(post16_move_date=date(2027, 7, 31))
    assert t["post16_move_due"].due == date(2027, 2, 28)
    assert t["post16_move_due"].citation == "Reg 18(2)"
    # leap year: 31 July 2028 -> 29 Feb 2028
    assert review_timescales(post16_move_date=date(2028, 7, 31))["post16_move_due"].due == \
        date(2028, 2, 29)
    # an ordinary day: 15 Jan 2027 -> 15 Aug 2026
    assert review_timescales(post16_move_date=date(2027, 1, 15))["post16_move_due"].due == \
        date(2026, 8, 15)


def test_unknown_transfer_kind_and_bad_combinations_rejected():
    with pytest.raises(ValueError):
        phase_transfer_deadline("college", 2027)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        review_timescales(transfer="school")
    with pytest.raises(ValueError):
        review_timescales(transfer_year=2027)
    with pytest.raises(ValueError):
        review_timescales(last_review=date(2025, 1, 1), plan_issued=date(2025, 1, 1))


def test_review_timescales_empty_when_nothing_given():
    assert review_timescales() == {}


# --- the rule table ------------------------------------------------------------------------


@pytest.mark.parametrize("rule_id", sorted(RULES))
def test_every_rule_has_citation(rule_id):
    rule = RULES[rule_id]
    assert rule.id == rule_id
    assert isinstance(rule.citation, str) and rule.citation.strip()
    assert rule.key and rule.title
    assert rule.offset.describe()


@pytest.mark.parametrize("rule_id", sorted(r for r, rule in RULES.items() if rule.statutory))
def test_statutory_rules_refuse_offset_override(rule_id):
    rule = RULES[rule_id]
    trigger = 2027 if rule.trigger is Trigger.TRANSFER_YEAR else date(2026, 1, 5)
    with pytest.raises(ValueError):
        rule.due(trigger, Weeks(3))
    with pytest.raises(ValueError):
        rule.due(trigger, Days(0))


def test_non_statutory_rules_accept_override():
    non_statutory = [r for r in RULES.values() if not r.statutory]
    assert any(r.id == "assessment.draft_plan_target" for r in non_statutory)
    for rule in non_statutory:
        assert rule.due(date(2026, 1, 5), Weeks(3)) == date(2026, 1, 26)
        assert rule.due(date(2026, 1, 5), Days(0)) == date(2026, 1, 5)


@given(request=dates, advice=dates, draft=dates, weeks=st.integers(1, 52))
def test_assessment_output_json_has_iso_due_and_citation(request, advice, draft, weeks):
    t = assessment_timescales(request, advice_requested=advice, draft_served=draft,
                              draft_target_weeks=weeks)
    assert {"decision_due", "no_plan_notice_due", "final_plan_due", "advice_due",
            "draft_comments_due", "draft_plan_target"} <= set(t)
    for key, d in t.items():
        j = d.as_json()
        assert d.key == key
        assert date.fromisoformat(j["due"]) == d.due
        assert j["due"] == d.due.isoformat() and len(j["due"]) == 10
        assert isinstance(j["citation"], str) and j["citation"].strip()


@given(anchor=dates, meeting=dates, sent=dates, transfer=st.sampled_from(["school", "post16"]),
       year=years, move=dates, use_last=st.booleans())
def test_review_output_json_has_iso_due_and_citation(anchor, meeting, sent, transfer, year,
                                                     move, use_last):
    kw = {"last_review": anchor} if use_last else {"plan_issued": anchor}
    t = review_timescales(meeting_date=meeting, amendments_sent=sent, transfer=transfer,
                          transfer_year=year, post16_move_date=move, **kw)
    assert set(t) == {"review_due", "invitations_due", "advice_circulated_due", "report_due",
                      "decision_due", "amendment_comments_due", "final_amended_plan_due",
                      "phase_transfer_due", "post16_move_due"}
    for key, d in t.items():
        j = d.as_json()
        assert d.key == key
        assert date.fromisoformat(j["due"]) == d.due
        assert j["due"] == d.due.isoformat()
        assert isinstance(j["citation"], str) and j["citation"].strip()


# --- exact day differences -----------------------------------------------------------------


@given(request=dates, advice=dates, draft=dates)
def test_assessment_exact_day_differences(request, advice, draft):
    t = assessment_timescales(request, advice_requested=advice, draft_served=draft)
    assert (t["decision_due"].due - request).days == 42
    assert (t["no_plan_notice_due"].due - request).days == 112
    assert (t["draft_plan_target"].due - request).days == 112
    assert (t["final_plan_due"].due - request).days == 140
    assert (t["advice_due"].due - advice).days == 42
    assert (t["draft_comments_due"].due - draft).days == 15
    # the family's 15 days after a draft served by the target still fit inside week 20
    assert t["draft_plan_target"].due + timedelta(days=15) <= t["final_plan_due"].due


@given(request=dates, weeks=st.integers(min_value=-10, max_value=60))
def test_draft_target_weeks_exact(request, weeks):
    t = assessment_timescales(request, draft_target_weeks=weeks)
    assert (t["draft_plan_target"].due - request).days == 7 * weeks
    assert (t["final_plan_due"].due - request).days == 140


@given(meeting=dates, sent=dates)
def test_review_exact_day_differences(meeting, sent):
    t = review_timescales(meeting_date=meeting, amendments_sent=sent)
    assert (t["invitations_due"].due - meeting).days == -14
    assert (t["advice_circulated_due"].due - meeting).days == -14
    assert (t["report_due"].due - meeting).days == 14
    assert (t["decision_due"].due - meeting).days == 28
    assert (t["amendment_comments_due"].due - sent).days == 15
    assert (t["final_amended_plan_due"].due - sent).days == 56


@given(d=dates)
def test_other_table_rules_exact(d):
    assert (RULES["assessment.setting_response_due"].due(d) - d).days == 15
    assert (RULES["assessment.reassessment_final_due"].due(d) - d).days == 98  # 14 weeks


@given(meeting=dates, lag=st.integers(min_value=0, max_value=28))
def test_final_amended_plan_within_12_weeks_of_meeting(meeting, lag):
    sent = meeting + timedelta(days=lag)
    t = review_timescales(meeting_date=meeting, amendments_sent=sent)
    assert t["final_amended_plan_due"].due <= meeting + timedelta(weeks=12)
    assert t["final_amended_plan_due"].due <= t["decision_due"].due + timedelta(weeks=8)


# --- monotonicity --------------------------------------------------------------------------


@given(rule_id=st.sampled_from(DATE_TRIGGERED_RULES), a=dates, b=dates)
def test_later_trigger_never_earlier_due(rule_id, a, b):
    rule = RULES[rule_id]
    lo, hi = min(a, b), max(a, b)
    assert rule.due(lo) <= rule.due(hi)


@given(rule_id=st.sampled_from(sorted(r for r, rule in RULES.items()
                                      if rule.trigger is Trigger.TRANSFER_YEAR)),
       a=years, b=years)
def test_later_transfer_year_never_earlier_due(rule_id, a, b):
    rule = RULES[rule_id]
    assert rule.due(min(a, b)) <= rule.due(max(a, b))


@given(a=dates, b=dates)
def test_assessment_monotone(a, b):
    lo, hi = assessment_timescales(min(a, b)), assessment_timescales(max(a, b))
    for key in lo:
        assert lo[key].due <= hi[key].due


# --- anniversary, phase transfer, add_months -----------------------------------------------


@given(d=dates)
def test_anniversary_review_due(d):
    due = review_timescales(plan_issued=d)["review_due"].due
    assert due == review_timescales(last_review=d)["review_due"].due
    assert due == Anniversary().apply(d)
    assert (due - d).days in (365, 366)
    assert due.year == d.year + 1
    if (d.month, d.day) == (2, 29):
        assert (due.month, due.day) == (2, 28)
    else:
        assert (due.month, due.day) == (d.month, d.day)
    # never beyond the end of the 12-month period: strictly before the next same-day date
    # (or 1 March after a 29 February)
    assert due < date(d.year + 1, d.month, 1) + timedelta(days=d.day)


@given(year=years)
def test_phase_transfer_fixed_dates(year):
    school = phase_transfer_deadline("school", year)
    post16 = phase_transfer_deadline("post16", year)
    # "before 15 February" / "before 31 March" (Reg 18(1)): the last day on time is the day
    # before, in every year (a leap year's 29 February does not move it).
    assert school.due == date(year, 2, 14) and school.citation == "Reg 18(1)(b)"
    assert post16.due == date(year, 3, 30) and post16.citation == "Reg 18(1)(a)"
    assert school.due == date(year, 2, 15) - timedelta(days=1)
    assert post16.due == date(year, 3, 31) - timedelta(days=1)
    assert FixedDateInYear(2, 15).apply(year) == date(year, 2, 15)


@given(d=dates, months=st.integers(min_value=-120, max_value=120))
def test_add_months_never_overflows(d, months):
    r = add_months(d, months)
    total = d.year * 12 + d.month - 1 + months
    assert (r.year, r.month) == (total // 12, total % 12 + 1)
    last = calendar.monthrange(r.year, r.month)[1]
    assert r.day == min(d.day, last)
    # "naive" date: the same day number counted on from the 1st, which spills into the next
    # month when the day does not exist; the clamped result is never later than that.
    naive = date(r.year, r.month, 1) + timedelta(days=d.day - 1)
    assert r <= naive
    if months < 0:
        assert r < d
    assert Months(months).apply(d) == r


@given(d=dates)
def test_add_months_zero_is_identity(d):
    assert add_months(d, 0) == d


@given(d=dates)
def test_post16_move_at_least_five_months_before(d):
    due = review_timescales(post16_move_date=d)["post16_move_due"].due
    # at least 5 months: not after the naive "same day 5 months earlier"
    idx = d.year * 12 + d.month - 1 - 5
    y, m0 = divmod(idx, 12)
    assert due <= date(y, m0 + 1, 1) + timedelta(days=d.day - 1)
    assert (d - due).days >= 150  # 5 months are at least 150 days (e.g. Feb to Jul: 28+31+30+31+30)


# --- status_on -----------------------------------------------------------------------------


DUE = date(2026, 5, 25)


def test_status_done_boundaries():
    assert status_on(date(2026, 6, 30), DUE, DUE, due_soon_days=7) is Status.DONE_ON_TIME
    assert status_on(date(2026, 6, 30), DUE, DUE - timedelta(days=30),
                     due_soon_days=7) is Status.DONE_ON_TIME
    assert status_on(date(2026, 6, 30), DUE, DUE + timedelta(days=1),
                     due_soon_days=7) is Status.DONE_LATE


def test_status_undone_boundaries():
    assert status_on(DUE, DUE, None, due_soon_days=7) is Status.DUE_SOON
    assert status_on(DUE + timedelta(days=1), DUE, None, due_soon_days=7) is Status.OVERDUE
    assert status_on(DUE - timedelta(days=7), DUE, None, due_soon_days=7) is Status.DUE_SOON
    assert status_on(DUE - timedelta(days=8), DUE, None, due_soon_days=7) is Status.PENDING
    # no warning window: due day itself is not overdue, it is "due soon"
    assert status_on(DUE, DUE, None, due_soon_days=0) is Status.DUE_SOON
    assert status_on(DUE - timedelta(days=1), DUE, None, due_soon_days=0) is Status.PENDING


@given(today=dates, due=dates, done=st.one_of(st.none(), dates),
       soon=st.integers(min_value=0, max_value=60))
def test_status_consistent_with_boundaries(today, due, done, soon):
    s = status_on(today, due, done, due_soon_days=soon)
    if done is not None:
        assert s is (Status.DONE_ON_TIME if done <= due else Status.DONE_LATE)
    elif today > due:
        assert s is Status.OVERDUE
    elif (due - today).days <= soon:
        assert s is Status.DUE_SOON
    else:
        assert s is Status.PENDING
    # a function: same input, same answer
    assert status_on(today, due, done, due_soon_days=soon) is s


@given(due=dates, soon=st.integers(min_value=0, max_value=60),
       a=st.integers(-100, 100), b=st.integers(-100, 100))
def test_status_never_goes_back_in_time(due, soon, a, b):
    order = [Status.PENDING, Status.DUE_SOON, Status.OVERDUE]
    lo, hi = min(a, b), max(a, b)
    s_lo = status_on(due + timedelta(days=lo), due, None, due_soon_days=soon)
    s_hi = status_on(due + timedelta(days=hi), due, None, due_soon_days=soon)
    assert order.index(s_lo) <= order.index(s_hi)


# --- exceptions excuse, never move ----------------------------------------------------------


@dataclass
class Exc:
    kind: ExceptionKind
    starts_on: date
    ends_on: date | None = None
    withdrawn_on: date | None = None
    advice_key: str | None = None


FINAL = RULES["assessment.final_plan_due"]
ADVICE = RULES["assessment.advice_due"]
REQ = date(2026, 1, 5)
FINAL_DUE = date(2026, 5, 25)


def test_la_exception_excuses_final_plan():
    e = Exc(ExceptionKind.PERSONAL_CIRCUMSTANCES, date(2026, 3, 1), date(2026, 3, 31))
    assert excusing_exceptions(FINAL, REQ, FINAL_DUE, [e]) == [e]
    assert excusing_exceptions(RULES["assessment.decision_due"], REQ, date(2026, 2, 16),
                               [Exc(ExceptionKind.ABSENT_FROM_AREA, date(2026, 1, 10))])


def test_withdrawn_exception_excuses_nothing():
    e = Exc(ExceptionKind.PERSONAL_CIRCUMSTANCES, date(2026, 3, 1), date(2026, 3, 31),
            withdrawn_on=date(2026, 4, 1))
    assert excusing_exceptions(FINAL, REQ, FINAL_DUE, [e]) == []


def test_reg8_2_exception_excuses_only_its_advice():
    advice_req = date(2026, 2, 1)
    advice_due = date(2026, 3, 15)
    e = Exc(ExceptionKind.ADVICE_MISSED_APPOINTMENT, date(2026, 2, 10), date(2026, 2, 20),
            advice_key="ep")
    assert excusing_exceptions(ADVICE, advice_req, advice_due, [e], advice_key="ep") == [e]
    assert excusing_exceptions(ADVICE, advice_req, advice_due, [e], advice_key="health") == []
    assert excusing_exceptions(ADVICE, advice_req, advice_due, [e]) == []
    # nor does it excuse the LA's own deadlines
    assert excusing_exceptions(FINAL, REQ, FINAL_DUE, [e]) == []
    assert excusing_exceptions(FINAL, REQ, FINAL_DUE, [e], advice_key="ep") == []


def test_reg10_4_exception_does_not_excuse_advice():
    e = Exc(ExceptionKind.SCHOOL_CLOSURE, date(2026, 2, 10), date(2026, 3, 1))
    assert excusing_exceptions(FINAL, REQ, FINAL_DUE, [e]) == [e]
    assert excusing_exceptions(ADVICE, date(2026, 2, 1), date(2026, 3, 15), [e]) == []
    assert excusing_exceptions(ADVICE, date(2026, 2, 1), date(2026, 3, 15), [e],
                               advice_key="ep") == []


def test_exception_period_must_overlap():
    after = Exc(ExceptionKind.PERSONAL_CIRCUMSTANCES, FINAL_DUE + timedelta(days=1))
    before = Exc(ExceptionKind.PERSONAL_CIRCUMSTANCES, date(2025, 11, 1),
                 REQ - timedelta(days=1))
    on_due = Exc(ExceptionKind.PERSONAL_CIRCUMSTANCES, FINAL_DUE)
    ends_on_start = Exc(ExceptionKind.PERSONAL_CIRCUMSTANCES, date(2025, 11, 1), REQ)
    open_ended = Exc(ExceptionKind.ABSENT_FROM_AREA, date(2025, 11, 1))
    assert excusing_exceptions(FINAL, REQ, FINAL_DUE, [after]) == []
    assert excusing_exceptions(FINAL, REQ, FINAL_DUE, [before]) == []
    assert excusing_exceptions(FINAL, REQ, FINAL_DUE, [on_due]) == [on_due]
    assert excusing_exceptions(FINAL, REQ, FINAL_DUE, [ends_on_start]) == [ends_on_start]
    assert excusing_exceptions(FINAL, REQ, FINAL_DUE, [open_ended]) == [open_ended]
    assert excusing_exceptions(FINAL, REQ, FINAL_DUE,
                               [after, on_due, before, open_ended]) == [on_due, open_ended]


def test_rules_without_exceptions_are_never_excused():
    e = Exc(ExceptionKind.PERSONAL_CIRCUMSTANCES, date(2026, 4, 1))
    for rid in ("assessment.draft_comments_due", "review.decision_due",
                "review.final_amended_plan_due"):
        rule = RULES[rid]
        assert excusing_exceptions(rule, date(2026, 4, 1), date(2026, 6, 1), [e]) == []


excs = st.builds(
    Exc,
    kind=st.sampled_from(list(ExceptionKind)),
    starts_on=dates,
    ends_on=st.one_of(st.none(), dates),
    withdrawn_on=st.one_of(st.none(), dates),
    advice_key=st.one_of(st.none(), st.sampled_from(["ep", "health", "school"])),
)


@settings(max_examples=200)
@given(request=dates, advice=dates, exceptions=st.lists(excs, max_size=6),
       key=st.one_of(st.none(), st.sampled_from(["ep", "health"])))
def test_exceptions_never_move_due_dates(request, advice, exceptions, key):
    before = assessment_timescales(request, advice_requested=advice)
    for d in before.values():
        trigger = advice if d.key == "advice_due" else request
        got = excusing_exceptions(d.rule, trigger, d.due, exceptions, advice_key=key)
        # a subset of the input, in the input's order
        assert all(any(g is e for e in exceptions) for g in got)
        for g in got:
            assert g.withdrawn_on is None
            assert g.kind in d.rule.excusable_by
            assert g.starts_on <= d.due
            assert g.ends_on is None or g.ends_on >= trigger
            if g.kind.applies_to_advice:
                assert d.key == "advice_due" and g.advice_key == key
            else:
                assert d.key != "advice_due"
    after = assessment_timescales(request, advice_requested=advice)
    assert {k: v.due for k, v in after.items()} == {k: v.due for k, v in before.items()}


@given(e=excs, started=dates, length=st.integers(0, 200))
def test_exception_selection_matches_rule_of_law(e, started, length):
    due = started + timedelta(days=length)
    for rule in (FINAL, ADVICE):
        key = e.advice_key
        got = excusing_exceptions(rule, started, due, [e], advice_key=key)
        expected = (
            e.withdrawn_on is None
            and e.kind in rule.excusable_by
            and e.starts_on <= due
            and (e.ends_on is None or e.ends_on >= started)
        )
        assert got == ([e] if expected else [])


# --- London time ---------------------------------------------------------------------------


utc_instants = st.datetimes(min_value=datetime(1996, 1, 1), max_value=datetime(2090, 12, 31),
                            timezones=st.just(timezone.utc))


@settings(max_examples=200)
@given(dt=utc_instants)
def test_london_date_matches_zoneinfo(dt):
    assert london_date(dt) == dt.astimezone(LONDON).date()


@given(dt=utc_instants, hours=st.integers(min_value=-12, max_value=14))
def test_london_date_independent_of_input_zone(dt, hours):
    other = dt.astimezone(timezone(timedelta(hours=hours)))
    assert london_date(other) == dt.astimezone(LONDON).date()


@settings(max_examples=200)
@given(d=st.dates(min_value=date(1996, 1, 2), max_value=date(2090, 12, 31)))
def test_london_midnight_matches_zoneinfo(d):
    m = london_midnight(d)
    assert m.utcoffset() is not None
    local = m.astimezone(LONDON)
    assert local.date() == d and local.time() == time(0)
    assert m == datetime.combine(d, time(0), tzinfo=LONDON)
    assert london_date(m) == d
    assert london_date(m - timedelta(microseconds=1)) == d - timedelta(days=1)


def test_london_date_needs_aware_datetime():
    with pytest.raises(ValueError):
        london_date(datetime(2026, 3, 29, 12, 0))


@pytest.mark.parametrize(
    "utc, expected",
    [
        # spring forward, Sunday 29 March 2026 at 01:00 UTC (01:00 GMT -> 02:00 BST)
        (datetime(2026, 3, 28, 23, 59, 59), date(2026, 3, 28)),  # GMT: still Saturday
        (datetime(2026, 3, 29, 0, 0), date(2026, 3, 29)),
        (datetime(2026, 3, 29, 0, 59, 59), date(2026, 3, 29)),
        (datetime(2026, 3, 29, 1, 0), date(2026, 3, 29)),
        (datetime(2026, 3, 29, 22, 59, 59), date(2026, 3, 29)),
        (datetime(2026, 3, 29, 23, 0), date(2026, 3, 30)),  # BST midnight Monday
        # fall back, Sunday 25 October 2026 at 01:00 UTC (02:00 BST -> 01:00 GMT)
        (datetime(2026, 10, 24, 22, 59, 59), date(2026, 10, 24)),
        (datetime(2026, 10, 24, 23, 0), date(2026, 10, 25)),  # BST midnight Sunday
        (datetime(2026, 10, 25, 0, 59, 59), date(2026, 10, 25)),
        (datetime(2026, 10, 25, 1, 0), date(2026, 10, 25)),
        (datetime(2026, 10, 25, 23, 0), date(2026, 10, 25)),  # GMT now: still Sunday
        (datetime(2026, 10, 25, 23, 59, 59), date(2026, 10, 25)),
        (datetime(2026, 10, 26, 0, 0), date(2026, 10, 26)),
    ],
)
def test_london_date_on_clock_change_sundays(utc, expected):
    dt = utc.replace(tzinfo=timezone.utc)
    assert london_date(dt) == expected
    assert dt.astimezone(LONDON).date() == expected  # the oracle agrees


@pytest.mark.parametrize(
    "d, utc",
    [
        (date(2026, 3, 28), datetime(2026, 3, 28, 0, 0)),   # GMT
        (date(2026, 3, 29), datetime(2026, 3, 29, 0, 0)),   # change day: midnight still GMT
        (date(2026, 3, 30), datetime(2026, 3, 29, 23, 0)),  # BST
        (date(2026, 10, 24), datetime(2026, 10, 23, 23, 0)),  # BST
        (date(2026, 10, 25), datetime(2026, 10, 24, 23, 0)),  # change day: midnight still BST
        (date(2026, 10, 26), datetime(2026, 10, 26, 0, 0)),   # GMT
    ],
)
def test_london_midnight_on_clock_change_sundays(d, utc):
    m = london_midnight(d)
    assert m == utc.replace(tzinfo=timezone.utc)
    local = m.astimezone(LONDON)
    assert (local.date(), local.time()) == (d, time(0))
