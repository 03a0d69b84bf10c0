"""Timeliness statistics for managers, ADQA and the SEND Partnership Board (issue 5), and the
per-person export to check the SEN2 return against.

- ``GET /api/statistics/timeliness``: every measure (the council's a-h and two more) for a
  period, overall and by calendar quarter.
- ``GET /api/statistics/timeliness/{measure}``: one measure, and with ``group_by`` broken down
  by setting, agency, service or kind of phase transfer.
- ``GET /api/statistics/review-outcomes``: measure f, what annual reviews decided.
- ``GET /api/statistics/dfe``: the DfE method: plans issued within 20 weeks including and
  excluding exceptions, and decisions whether to assess within 6 weeks.
- ``GET /api/exports/sen2``: one row per request and plan, with SEN2's field names.

Each is JSON, or CSV with ``?format=csv``. The figures (and the CSV rows) are
``services.statistics``'s, over ``store.timeliness``'s counting; every definition is in
``docs/statistics.md``. Who may ask is api/auth.py's POLICY (managers).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from api.deps import SessionDep, StaffDep
from api.problems import started
from domain.csv_cells import csv_chunks
from services import statistics as st
from services.clock import today
from services.periods import day_asked, period_asked
from services.statistics import (
    CsvTable,
    DfeReport,
    MeasureReport,
    OutcomesReport,
    Sen2Export,
    TimelinessReport,
)

router = APIRouter(tags=["statistics"])

# ``format=csv``: the same figures as a CSV file.
CSV_TOO = {200: {"content": {"text/csv": {"schema": {"type": "string"}}}}}
PERIOD_ERRORS = {422: {"description": "a date that is not YYYY-MM-DD or does not exist (the "
                       "`detail` says what is wrong and what to write), `to` before `from`, a "
                       "period over 10 years, or a breakdown the measure does not have"}}


def asked_period(
        frm: Annotated[str | None, Query(
            alias="from", description="first day, YYYY-MM-DD. Default: the first day of the "
            "last four calendar quarters up to and including today's (the quarter so far)",
            examples=["2026-01-01"])] = None,
        to: Annotated[str | None, Query(
            description="last day (included), YYYY-MM-DD. Default: today (in England)",
            examples=["2026-12-31"])] = None) -> tuple[date, date]:
    """The period asked for (``services.periods.period_asked``: the same default and the same
    sentences for a bad date as the statistics page)."""
    return period_asked(frm, to, today())


Period = Annotated[tuple[date, date], Depends(asked_period)]


def asked_as_of(as_of: Annotated[str | None, Query(
        description="the day the figures are as of, YYYY-MM-DD: a deadline not done counts "
        "as late once its due day is before it. Default: today (in England)",
        examples=["2026-12-31"])] = None) -> date | None:
    """The day the figures are as of, if asked (the same sentences for a bad date)."""
    return day_asked(as_of, "as_of", "as-of date")


AsOf = Annotated[date | None, Depends(asked_as_of)]
Format = Annotated[Literal["json", "csv"], Query(
    alias="format", description="json (default) or csv")]


def _csv(table: CsvTable) -> StreamingResponse:
    return StreamingResponse(csv_chunks(table.columns, started(table.rows)),
                             media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition":
                                      f'attachment; filename="{table.filename}"'})


@router.get("/api/statistics/timeliness", response_model=TimelinessReport,
            response_model_by_alias=True, responses={**CSV_TOO, **PERIOD_ERRORS},
            summary="Every timeliness measure for a period, overall and by quarter",
            description="The council's measures a-h (and the review decision and decision to "
            "assess rates) over deadlines due in the period, as on `as_of`; measure f "
            "(review outcomes) by decision date. Each deadline measure is given including and "
            "excluding exceptions; its `counted_by` says in a sentence which date puts a "
            "deadline in a period (the day it was due). Without `from` and `to`: the last four "
            "quarters up to today, the current one so far (the statistics page's default). "
            "Definitions: docs/statistics.md. `format=csv` gives one row per measure and "
            "quarter (and one for the whole period).")
def timeliness(session: SessionDep, period: Period,
               as_of: AsOf = None, fmt: Format = "json"):
    asked = dict(session=session, from_date=period[0], to_date=period[1], as_of=as_of)
    if fmt == "csv":
        return _csv(st.timeliness_csv(**asked))
    return st.timeliness(**asked)


@router.get("/api/statistics/timeliness/{measure}", response_model=MeasureReport,
            response_model_by_alias=True,
            responses={**CSV_TOO, **PERIOD_ERRORS, 404: {"description": "no such measure"}},
            summary="One timeliness measure, optionally broken down",
            description="`group_by`: `setting` (the child's school or setting, as the case "
            "records it), `agency` and `service` (advice: the service asked, or the agency of "
            "the kind of advice), `transfer` (phase transfers: school or post-16). Which a "
            "measure has is in its `breakdowns`. Groups come largest first.")
def timeliness_measure(session: SessionDep, measure: str, period: Period,
                       as_of: AsOf = None,
                       group_by: Annotated[str | None, Query(
                           description="setting, agency, service or transfer")] = None,
                       fmt: Format = "json"):
    asked = dict(session=session, measure=measure, from_date=period[0], to_date=period[1],
                 as_of=as_of, group_by=group_by)
    if fmt == "csv":
        return _csv(st.timeliness_measure_csv(**asked))
    return st.timeliness_measure(**asked)


@router.get("/api/statistics/review-outcomes", response_model=OutcomesReport,
            response_model_by_alias=True, responses={**CSV_TOO, **PERIOD_ERRORS},
            summary="Measure f: annual reviews that maintained, amended or ceased the plan",
            description="Counts and percentages of the LA's review decisions made in the "
            "period (the decision's date puts it in a period). `group_by=setting` breaks them "
            "down by the child's school or setting.")
def review_outcomes(session: SessionDep, period: Period,
                    group_by: Annotated[str | None, Query(description="setting")] = None,
                    fmt: Format = "json"):
    asked = dict(session=session, from_date=period[0], to_date=period[1], group_by=group_by)
    if fmt == "csv":
        return _csv(st.review_outcomes_csv(**asked))
    return st.review_outcomes(**asked)


@router.get("/api/statistics/dfe", response_model=DfeReport, response_model_by_alias=True,
            responses={**CSV_TOO, **PERIOD_ERRORS},
            summary="The DfE method: plans within 20 weeks, decisions within 6 weeks",
            description="As DfE's 'Education, health and care plans' publication counts them "
            "from SEN2: final plans issued in the period (by issue date), within 20 weeks "
            "including and excluding exceptions (a plan an exception applies to is left out "
            "of both the numerator and the denominator of the excluding rate), after 20 weeks "
            "but within a year, after more than a year, and the average weeks to issue; and "
            "requests received and decisions whether to assess made in the period (by "
            "decision date), within 6 weeks (Reg 5(1)). `counted_by` says which date puts each "
            "in a period: not the due day, as the council's measures e and the decision to "
            "assess rate count them, so the same quarter's figures can differ.")
def dfe(session: SessionDep, period: Period, fmt: Format = "json"):
    asked = dict(session=session, from_date=period[0], to_date=period[1])
    if fmt == "csv":
        return _csv(st.dfe_csv(**asked))
    return st.dfe(**asked)


@router.get("/api/exports/sen2", tags=["exports"],
            responses={200: {"description": "the rows, as JSON or CSV",
                             "content": {"application/json": {"schema": Sen2Export
                                                               .model_json_schema(
                                                                   by_alias=True,
                                                                   mode="serialization")},
                                         "text/csv": {}}}, **PERIOD_ERRORS},
            summary="Per-person export with SEN2's field names, to check the return",
            description="One row per request for an EHC needs assessment open at any time in "
            "the period, and per EHC plan maintained at any time in it (a plan on its "
            "assessment's row), as at `to`. SEN2 field names and codes (ReceivedDate, "
            "RequestSource, RequestOutcomeDate, RequestOutcome, AssessmentOutcome, "
            "AssessmentOutcomeDate, Week20, StartDate, CeaseDate, CeaseReason, ReviewMeeting, "
            "ReviewOutcome, LastReview), then the product's own DecisionDue, FinalPlanDue and "
            "WeeksToFinalPlan. The person is the council's own id (PersonId): no names or "
            "dates of birth. Codes and approximations: docs/statistics.md.")
def sen2_export(session: SessionDep, staff: StaffDep, period: Period,
                fmt: Format = "json"):
    from_date, to_date = period
    table = st.sen2_export(session=session, staff=staff, from_date=from_date, to_date=to_date)
    if fmt == "csv":
        return _csv(table)
    rows = started(table.rows)

    def body() -> Iterator[str]:
        yield json.dumps({"from": from_date.isoformat(), "to": to_date.isoformat(),
                          "columns": list(table.columns)})[:-1] + ', "rows": ['
        for n, row in enumerate(rows):
            yield ("," if n else "") + json.dumps(row)
        yield "]}"

    return StreamingResponse(body(), media_type="application/json")
