"""Reports for managers and the partnership board.

``GET /api/reports/outcomes`` (action 3.2.5): how the outcomes in EHC plans are going, as the
annual review meetings held in a period found them. Each review meeting records, per outcome
in the plan, whether it is achieved, on track, partly achieved or not achieved
(``domain.case.OutcomeProgress``, kept in the ``review`` table's ``outcomes``). The report
counts them, overall and by calendar quarter of the meeting. It carries counts only: no outcome
texts (they may contain personal details), no names, no references.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from sqlmodel import select

from api.deps import SessionDep
from services.errors import ServiceError
from store import tables as t

router = APIRouter(prefix="/api/reports", tags=["reports"])

PROGRESS = ("achieved", "on_track", "partly_achieved", "not_achieved")
MAX_DAYS = 3653  # 10 years: the report lists every quarter, so the period is bounded


def check_period(from_date: date, to_date: date) -> None:
    """A 422 that says what to fix unless ``from_date`` to ``to_date`` is a period of at most
    ``MAX_DAYS``, for every report and statistic over a period."""
    if to_date < from_date:
        raise ServiceError(422, f"Please correct: to ({to_date}) is before from ({from_date}); "
                       "give the earlier date as from", "invalid_input")
    if (to_date - from_date).days > MAX_DAYS:
        raise ServiceError(422, f"Please correct: the period from {from_date} to {to_date} is "
                       "longer than 10 years; ask for 10 years or less at a time",
                       "invalid_input")


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


def quarter_of(day: date) -> tuple[int, int]:
    return day.year, (day.month - 1) // 3 + 1


def quarter_bounds(year: int, q: int) -> tuple[date, date]:
    start = date(year, 3 * q - 2, 1)
    end = date(year + 1, 1, 1) if q == 4 else date(year, 3 * q + 1, 1)
    return start, date.fromordinal(end.toordinal() - 1)


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
            by_progress={k: ProgressCount(count=n, percent=round(100 * n / total, 1)
                                          if total else None)
                         for k, n in self.counts.items()})


@router.get("/outcomes", response_model=OutcomesReport, response_model_by_alias=True,
            summary="How plans' outcomes are going, from the review meetings held in a period "
            "(action 3.2.5)",
            description="Counts only: no outcome texts, no names, no references. A review "
            "counts in the period (and the quarter) of the day its meeting was held. "
            "Percentages are of the outcomes counted, rounded to one decimal place.",
            responses={422: {"description": "a date that is not YYYY-MM-DD, or `to` before "
                             "`from`"}})
def outcomes_report(
    session: SessionDep,
    from_date: Annotated[date, Query(alias="from", description="first day, YYYY-MM-DD")],
    to_date: Annotated[date, Query(alias="to", description="last day (included), YYYY-MM-DD")],
) -> OutcomesReport:
    check_period(from_date, to_date)
    rows = session.exec(select(t.Review.plan_reference, t.Review.meeting_held_on,
                               t.Review.outcomes).where(
        t.Review.meeting_held_on >= from_date,  # type: ignore[operator]
        t.Review.meeting_held_on <= to_date,  # type: ignore[operator]
    )).all()
    whole = _Tally()
    quarters: dict[tuple[int, int], _Tally] = {}
    year, q = quarter_of(from_date)
    while (year, q) <= quarter_of(to_date):
        quarters[(year, q)] = _Tally()
        year, q = (year + 1, 1) if q == 4 else (year, q + 1)
    for plan_reference, held_on, outcomes in rows:
        whole.add(plan_reference, outcomes)
        quarters[quarter_of(held_on)].add(plan_reference, outcomes)
    out = []
    for (year, q), tally in quarters.items():
        start, end = quarter_bounds(year, q)
        out.append(QuarterFigures(quarter=f"{year}-Q{q}", starts_on=max(start, from_date),
                                  ends_on=min(end, to_date), **tally.figures()))
    return OutcomesReport(from_date=from_date, to_date=to_date, quarters=out, **whole.figures())
