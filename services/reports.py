"""Reports for managers and the partnership board.

The outcomes report (action 3.2.5; ``GET /api/reports/outcomes``, ``api/reports.py``): how the
outcomes in EHC plans are going, as the annual review meetings held in a period found them.
Each review meeting records, per outcome in the plan, whether it is achieved, on track, partly
achieved or not achieved (``domain.case.OutcomeProgress``, kept in the ``review`` table's
``outcomes``). The report counts them, overall and by calendar quarter of the meeting. It
carries counts only: no outcome texts (they may contain personal details), no names, no
references.
"""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, Field
from sqlmodel import Session, select

from services.periods import quarter_label, quarters
from store import tables as t
from store.timeliness import percent

PROGRESS = ("achieved", "on_track", "partly_achieved", "not_achieved")


class ProgressCount(BaseModel):
    count: int
    percent: float | None = Field(description="of the outcomes counted, to one decimal place "
                                  "(so the four may not add up to exactly 100); null when no "
                                  "outcome was counted")


class OutcomeFigures(BaseModel):
    reviews: int = Field(description="review meetings held in the period")
    reviews_with_outcomes: int = Field(description="of those, the ones that recorded at least "
                                       "one outcome's progress")
    plans: int = Field(description="distinct EHC plans those meetings reviewed")
    outcomes: int = Field(description="outcomes whose progress was recorded")
    by_progress: dict[str, ProgressCount] = Field(
        description="achieved, on_track, partly_achieved, not_achieved")


class QuarterFigures(OutcomeFigures):
    quarter: str = Field(description="calendar quarter, e.g. 2026-Q3 (July to September)")
    starts_on: date = Field(description="the quarter's first day, or the report's from date")
    ends_on: date = Field(description="the quarter's last day, or the report's to date")


class OutcomesReport(OutcomeFigures):
    from_date: date = Field(serialization_alias="from")
    to_date: date = Field(serialization_alias="to")
    quarters: list[QuarterFigures] = Field(description="every calendar quarter the period "
                                           "touches, in order, including empty ones")


class _Tally:
    def __init__(self) -> None:
        self.reviews = 0
        self.with_outcomes = 0
        self.plans: set[str] = set()
        self.counts = dict.fromkeys(PROGRESS, 0)

    def add(self, plan_reference: str, outcomes: list) -> None:
        self.reviews += 1
        self.plans.add(plan_reference)
        counted = 0
        for item in outcomes or []:
            progress = item.get("progress") if isinstance(item, dict) else None
            if progress in self.counts:
                self.counts[progress] += 1
                counted += 1
        self.with_outcomes += counted > 0

    def figures(self) -> dict:
        total = sum(self.counts.values())
        return dict(
            reviews=self.reviews, reviews_with_outcomes=self.with_outcomes,
            plans=len(self.plans), outcomes=total,
            by_progress={k: ProgressCount(count=n, percent=percent(n, total))
                         for k, n in self.counts.items()})


def outcomes_report(*, session: Session, from_date: date, to_date: date) -> OutcomesReport:
    """The outcomes of the review meetings held from ``from_date`` to ``to_date`` (both
    counted), overall and by calendar quarter of the meeting; a 422 for a period that is not
    one (``services.periods.check_period``)."""
    qs = quarters(from_date, to_date)
    rows = session.exec(select(t.Review.plan_reference, t.Review.meeting_held_on,
                               t.Review.outcomes).where(
        t.Review.meeting_held_on >= from_date,  # type: ignore[operator]
        t.Review.meeting_held_on <= to_date,  # type: ignore[operator]
    )).all()
    whole = _Tally()
    by_quarter = {label: _Tally() for label, _, _ in qs}
    for plan_reference, held_on, outcomes in rows:
        whole.add(plan_reference, outcomes)
        by_quarter[quarter_label(held_on)].add(plan_reference, outcomes)
    return OutcomesReport(
        from_date=from_date, to_date=to_date, **whole.figures(),
        quarters=[QuarterFigures(quarter=label, starts_on=start, ends_on=end,
                                 **by_quarter[label].figures()) for label, start, end in qs])
