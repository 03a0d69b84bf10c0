"""A review workflow started before the rule table took Reg 18(1)'s "before" literally still
holds 15 February (31 March) as its phase transfer's day until its cycle ends (the patch
``reg18-last-day-before``). The case record keeps the law's last day on time for it anyway, so
the pages, the cohort and measure h judge every transfer alike: 14 February (30 March)."""

from __future__ import annotations

from datetime import date

from domain.case import Milestone
from domain.review_cycle import law_due


def _milestone(rule: str, due: date) -> Milestone:
    return Milestone(key="phase_transfer_due", rule_id=rule, started_on=date(2026, 9, 1), due=due)


def test_a_legacy_school_transfer_is_recorded_with_the_last_day_on_time():
    assert law_due(_milestone("review.phase_transfer_due.school", date(2027, 2, 15))) \
        == date(2027, 2, 14)
    assert law_due(_milestone("review.phase_transfer_due.school", date(2027, 2, 14))) \
        == date(2027, 2, 14)


def test_a_legacy_post16_transfer_is_recorded_with_30_march():
    assert law_due(_milestone("review.phase_transfer_due.post16", date(2028, 3, 31))) \
        == date(2028, 3, 30)


def test_other_milestones_keep_their_own_day():
    m = Milestone(key="review_due", rule_id="review.review_due", started_on=date(2026, 1, 1),
                  due=date(2026, 12, 31))
    assert law_due(m) == date(2026, 12, 31)


def test_the_record_writes_the_law_s_day_for_a_legacy_transfer():
    from store.record import item_rows

    class _Case:  # just what item_rows reads
        milestones = [_milestone("review.phase_transfer_due.school", date(2027, 2, 15))]
        settings_consulted: list = []
        advice: list = []
        exceptions: list = []

    (_, _, columns), = item_rows(_Case())  # type: ignore[arg-type]
    assert columns["due"] == date(2027, 2, 14)
