"""Reports for managers and the partnership board.

``GET /api/reports/outcomes`` (action 3.2.5): how the outcomes in EHC plans are going, as the
annual review meetings held in a period found them, overall and by calendar quarter of the
meeting. Counts only: no outcome texts, no names, no references. The counting is
``services.reports``'s.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import SessionDep
from services import reports
from services.reports import OutcomesReport

router = APIRouter(prefix="/api/reports", tags=["reports"])


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
    return reports.outcomes_report(session=session, from_date=from_date, to_date=to_date)
