"""The managers' figures as pages: the statistics dashboard (``/statistics``), the ADQA
group's quarterly report on advice (``/adqa/quarterly``), and the public, family-friendly
summary (``/summary``, and ``/api/public/summary``).

Every figure comes from the statistics API's own functions (``services.statistics``, over
``store.timeliness``; the quarterly report's from ``services.adqa``, which asks the same
functions): a page shows what the API returns, never a figure of its own. The charts
(``api.charts``) are drawn on the server, and each is followed by a table of the same figures.

The public summary's suppression of small numbers is ``services.statistics``'s
(``shown_count``, ``shown_percent``).
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from api.charts import Series, percent_bars, percent_lines
from api.deps import ActorDep, FormDep, SessionDep, SettingsDep
from api.page_kit import error_view, page, see_other
from services import adqa
from services import statistics as st
from services.clock import today
from services.errors import ServiceError
from services.periods import (
    PeriodError,
    default_period,
    parse_quarter,
    period_from_page,
    period_words,
    quarter_words,
)
from services.statistics import PublicSummary

router = APIRouter(include_in_schema=False)
public_api = APIRouter(prefix="/api/public", tags=["public"])

# What the dashboard shows, in the council's order (measures a-h), and its headline trends.
TREND_MEASURES = ("final_plans", "decisions_to_assess", "advice", "review_meetings",
                  "phase_transfers")
SHORT = {"review_meetings": "Review meetings", "review_reports": "Review reports",
         "review_advice_circulated": "Papers circulated", "advice": "All advice",
         "assessment_advice": "Assessment advice", "review_advice": "Review advice",
         "draft_plans": "Draft plans", "final_plans": "Final plans", "amended_plans":
         "Amended plans", "phase_transfers": "Phase transfers", "review_decisions":
         "Review decisions", "decisions_to_assess": "Decisions to assess"}


def _lower(text: str) -> str:
    return text[:1].lower() + text[1:]


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}%"


@router.get("/statistics", response_class=HTMLResponse)
def statistics_page(request: Request, session: SessionDep,
                    frm: Annotated[str, Query(alias="from")] = "", to: str = "",
                    from_day: Annotated[str, Query(alias="from-day")] = "",
                    from_month: Annotated[str, Query(alias="from-month")] = "",
                    from_year: Annotated[str, Query(alias="from-year")] = "",
                    to_day: Annotated[str, Query(alias="to-day")] = "",
                    to_month: Annotated[str, Query(alias="to-month")] = "",
                    to_year: Annotated[str, Query(alias="to-year")] = "") -> HTMLResponse:

    on = today()
    problems: dict[str, str] = {}
    report = dfe = agencies = None
    boxes = {"from": (from_day, from_month, from_year), "to": (to_day, to_month, to_year)}
    try:
        from_date, to_date = period_from_page(boxes, frm, to, on)
        figures = st.dashboard(session=session, from_date=from_date, to_date=to_date, as_of=on)
        report, dfe, agencies = figures.report, figures.dfe, figures.agencies
    except PeriodError as exc:
        problems.update(exc.problems)
        from_date, to_date = default_period(on)
    except ServiceError as exc:
        problems["to"] = exc.message.removeprefix("Please correct: ")
        from_date, to_date = default_period(on)
    errors, field_errors = error_view(problems, {"from": "from-day", "to": "to-day"})
    charts, differs = {}, {}
    if report is not None:
        # The same things counted by another date further down the page: said beside both.
        differs = {"final_plans": "Not the same count as the DfE's “Final plans issued” "
                   f"below, which is {_lower(dfe.counted_by.final_plans)}",
                   "decisions_to_assess": "Not the same count as the DfE's decisions whether "
                   f"to assess below, which are {_lower(dfe.counted_by.decisions)}"}
        measures = {m.measure: m for m in report.measures}
        labels = [q.quarter + (" so far" if q.ends_on == on else "")
                  for q in measures["final_plans"].quarters]
        charts["measures"] = percent_bars(
            "Deadlines met, by measure", "The share of each measure's deadlines met on time, "
            f"{period_words(from_date, to_date, on)}, including exceptions. The table below "
            "has the figures.",
            [(f"{m.council_measure}. {SHORT.get(m.measure, m.measure)}",
              m.figures.percent_on_time) for m in report.measures if m.council_measure])
        charts["trend"] = percent_lines(
            "On time, by quarter", "The share met on time each quarter, for final plans, "
            "decisions whether to assess, advice, annual review meetings and phase transfers. "
            "The tables below have the figures.", labels,
            [Series(SHORT[k], [q.figures.percent_on_time for q in measures[k].quarters])
             for k in TREND_MEASURES if k in measures])
        if agencies is not None:
            charts["agencies"] = percent_lines(
                "Advice received in time, by agency", "The share of advice received within its "
                "time limit each quarter, for each agency. The table below has the figures.",
                labels, [Series(g.label, [q.figures.percent_on_time for q in g.quarters])
                         for g in agencies.groups])
    query = f"from={from_date.isoformat()}&to={to_date.isoformat()}"
    return page(request, "pages/statistics.html", 422 if problems else 200, nav="statistics",
                report=report, dfe=dfe, agencies=agencies, charts=charts, errors=errors,
                field_errors=field_errors, from_date=from_date, to_date=to_date, pct=_pct,
                query=query, values=_boxes(boxes, {"from": frm, "to": to}, from_date, to_date),
                period=period_words(from_date, to_date, on), differs=differs,
                values_given=bool(frm or to or any(any(b) for b in boxes.values())),
                quarter_name=lambda q: quarter_words(q.quarter, q.starts_on, q.ends_on, on))


def _boxes(typed: dict[str, tuple[str, str, str]], links: dict[str, str], from_date,
           to_date) -> dict[str, str]:
    """What the date boxes show: what was typed, else a link's date as day, month and year
    (kept even when it does not exist, so it can be corrected), else the period shown."""
    out: dict[str, str] = {}
    for field, shown in (("from", from_date), ("to", to_date)):
        link = re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})", links[field].strip())
        parts = typed[field] if any(typed[field]) else (
            (link[3].lstrip("0") or "0", link[2].lstrip("0") or "0", link[1]) if link else
            (str(shown.day), str(shown.month), str(shown.year)))
        out.update(zip((f"{field}-day", f"{field}-month", f"{field}-year"), parts))
    return out


# --- the ADQA group's quarterly report -------------------------------------------------------------


@router.get("/adqa/quarterly", response_class=HTMLResponse)
def adqa_quarterly(request: Request, session: SessionDep, quarter: str = "",
                   done: str = "") -> HTMLResponse:
    wanted = parse_quarter(quarter) if quarter else None
    if quarter and wanted is None:
        return page(request, "pages/adqa_quarterly.html", 422, nav="adqa", report=None,
                    problem="Give the quarter as YYYY-Qn, for example 2026-Q3", quarter=quarter)
    r = adqa.quarterly_report(session=session, quarter=wanted)
    labels = [q.quarter for q in r.overall.quarters]
    chart = percent_lines(
        "Advice received in time, by agency, since the first recorded quarter",
        f"The share of advice received within its time limit each quarter from {labels[0]} "
        f"to {labels[-1]}, overall and for each agency. The table below has the figures.",
        labels, [Series("All agencies", [q.figures.percent_on_time for q in r.overall.quarters]),
                 *(Series(g.label, [q.figures.percent_on_time for q in g.quarters])
                   for g in r.trend.groups)])
    return page(request, "pages/adqa_quarterly.html", nav="adqa", quarter=r.quarter,
                start=r.start, end=r.end, as_of=r.as_of, agencies=r.agencies,
                services=r.services, worst=r.worst, trend=r.trend, overall=r.overall,
                chart=chart, pct=_pct, recommendation=r.recommendation, report=True,
                year_zero=r.year_zero, previous=r.previous, following=r.following,
                done=done == "saved")


@router.post("/adqa/quarterly/{quarter}/recommendations", response_class=HTMLResponse)
async def save_recommendations(quarter: str, session: SessionDep, form: FormDep,
                               actor: ActorDep) -> Response:
    adqa.save_recommendation(session=session, quarter=quarter,
                             text=form.get("recommendations") or "", by=actor)
    return see_other(f"/adqa/quarterly?quarter={quarter}&done=saved#recommendations")


# --- the public summary ------------------------------------------------------------------------------


@public_api.get("/summary", response_model=PublicSummary, response_model_by_alias=True,
                summary="The public summary: aggregate figures, small numbers suppressed")
def public_summary_api(session: SessionDep, settings: SettingsDep) -> PublicSummary:
    return st.public_summary(session=session, council=settings.council_name, on=today())


@router.get("/summary", response_class=HTMLResponse)
def public_summary_page(request: Request, session: SessionDep,
                        settings: SettingsDep) -> HTMLResponse:
    summary = st.public_summary(session=session, council=settings.council_name, on=today())
    return page(request, "pages/public_summary.html", summary=summary, public_page=True,
                public_title="How we are doing: EHC plans")

