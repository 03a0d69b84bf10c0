"""The managers' figures as pages: the statistics dashboard (``/statistics``), the ADQA
group's quarterly report on advice (``/adqa/quarterly``), and the public, family-friendly
summary (``/summary``, and ``/api/public/summary``).

Every figure comes from the statistics API's own functions (``api.statistics``, over
``models.timeliness``): a page shows what the API returns, never a figure of its own. The
charts (``api.charts``) are drawn on the server, and each is followed by a table of the same
figures.

**The public summary** shows aggregate figures only, and suppresses small numbers so that no
child can be recognised in them: a count from 1 to 4 is shown as "fewer than 5", and a
percentage is shown only when what it counts and what it leaves out are each 0 or at least 5
(otherwise it would give a small number away). Nothing else on the page identifies anyone.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import func
from sqlmodel import select

from api import statistics as st
from api.deps import SessionDep
from services.clock import today
from api.charts import Series, percent_bars, percent_lines
from services.errors import ServiceError
from api.page_kit import error_view, page, see_other
from api.reports import quarter_bounds, quarter_of
from store import tables as t

router = APIRouter(include_in_schema=False)
public_api = APIRouter(prefix="/api/public", tags=["public"])

SUPPRESS_BELOW = 5
# What the dashboard shows, in the council's order (measures a-h), and its headline trends.
TREND_MEASURES = ("final_plans", "decisions_to_assess", "advice", "review_meetings",
                  "phase_transfers")
SHORT = {"review_meetings": "Review meetings", "review_reports": "Review reports",
         "review_advice_circulated": "Papers circulated", "advice": "All advice",
         "assessment_advice": "Assessment advice", "review_advice": "Review advice",
         "draft_plans": "Draft plans", "final_plans": "Final plans", "amended_plans":
         "Amended plans", "phase_transfers": "Phase transfers", "review_decisions":
         "Review decisions", "decisions_to_assess": "Decisions to assess"}


def _last_full_quarters(on: date, n: int = 4) -> tuple[date, date]:
    """The n calendar quarters before the one ``on`` falls in."""
    year, q = quarter_of(on)
    end = quarter_bounds(year, q)[0] - timedelta(days=1)
    for _ in range(n):
        year, q = (year - 1, 4) if q == 1 else (year, q - 1)
    return quarter_bounds(year, q)[0] if n else end, end


def _period(problems: dict, frm: str, to: str, on: date) -> tuple[date, date]:
    default_from, default_to = _last_full_quarters(on)
    out = []
    for name, text, default in (("from", frm, default_from), ("to", to, default_to)):
        if not text:
            out.append(default)
            continue
        try:
            out.append(date.fromisoformat(text))
        except ValueError:
            problems[name] = f"Write the {name} date as YYYY-MM-DD, for example 2026-04-01"
            out.append(default)
    return out[0], out[1]


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}%"


@router.get("/statistics", response_class=HTMLResponse)
def statistics_page(request: Request, session: SessionDep,
                    frm: Annotated[str, Query(alias="from")] = "", to: str = "") -> HTMLResponse:

    on = today()
    problems: dict[str, str] = {}
    from_date, to_date = _period(problems, frm, to, on)
    report = dfe = agencies = None
    if not problems:
        try:
            report = st.timeliness(session, from_date, to_date, as_of=on)
            dfe = st.dfe(session, from_date, to_date)
            agencies = st.timeliness_measure(session, "advice", from_date, to_date, as_of=on,
                                             group_by="agency")
        except ServiceError as exc:
            problems["to"] = exc.message.removeprefix("Please correct: ")
    errors, field_errors = error_view(problems, {"from": "from", "to": "to"})
    charts = {}
    if report is not None:
        measures = {m.measure: m for m in report.measures}
        labels = [q.quarter for q in measures["final_plans"].quarters]
        charts["measures"] = percent_bars(
            "Deadlines met, by measure", "The share of each measure's deadlines met on time, "
            f"{from_date} to {to_date}, including exceptions. The table below has the figures.",
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
                query=query, values={"from": frm or from_date.isoformat(),
                                     "to": to or to_date.isoformat()})


# --- the ADQA group's quarterly report -------------------------------------------------------------


def _quarter_label(on: date) -> str:
    year, q = quarter_of(on)
    return f"{year}-Q{q}"


def _parse_quarter(text: str) -> tuple[int, int] | None:
    try:
        year, q = text.split("-Q")
        if len(year) == 4 and q in ("1", "2", "3", "4"):
            return int(year), int(q)
    except ValueError:
        pass
    return None


def year_zero(session) -> date | None:
    """The first day of the first quarter with any advice recorded: where the trend starts
    (the improvement plan's "year zero" baseline)."""
    first = session.scalar(select(func.min(t.AdviceItem.due)))
    if first is None:
        return None
    first = first if isinstance(first, date) else date.fromisoformat(str(first)[:10])
    return quarter_bounds(*quarter_of(first))[0]


@router.get("/adqa/quarterly", response_class=HTMLResponse)
def adqa_quarterly(request: Request, session: SessionDep, quarter: str = "",
                   done: str = "") -> HTMLResponse:
    on = today()
    default = _quarter_label(_last_full_quarters(on, 0)[1])
    wanted = _parse_quarter(quarter or default)
    if wanted is None:
        return page(request, "pages/adqa_quarterly.html", 422, nav="adqa", report=None,
                    problem="Give the quarter as YYYY-Qn, for example 2026-Q3", quarter=quarter)
    start, end = quarter_bounds(*wanted)
    label = f"{wanted[0]}-Q{wanted[1]}"
    as_of = min(on, end + timedelta(days=1)) if end < on else on
    agencies = st.timeliness_measure(session, "advice", start, end, as_of=on, group_by="agency")
    services = st.timeliness_measure(session, "advice", start, end, as_of=on, group_by="service")
    zero = year_zero(session) or start
    trend_from = min(zero, start)
    trend = st.timeliness_measure(session, "advice", trend_from, end, as_of=on,
                                  group_by="agency")
    overall = st.timeliness_measure(session, "advice", trend_from, end, as_of=on)
    worst = sorted((g for g in services.groups if g.figures.late),
                   key=lambda g: (-g.figures.late, -g.figures.late_open, g.label))[:10]
    labels = [q.quarter for q in overall.quarters]
    chart = percent_lines(
        "Advice received in time, by agency, since the first recorded quarter",
        f"The share of advice received within its time limit each quarter from {labels[0]} "
        f"to {labels[-1]}, overall and for each agency. The table below has the figures.",
        labels, [Series("All agencies", [q.figures.percent_on_time for q in overall.quarters]),
                 *(Series(g.label, [q.figures.percent_on_time for q in g.quarters])
                   for g in trend.groups)])
    rec = session.get(t.AdqaRecommendation, label)
    previous = quarter_bounds(*wanted)[0] - timedelta(days=1)
    following = end + timedelta(days=1)
    return page(request, "pages/adqa_quarterly.html", nav="adqa", quarter=label,
                start=start, end=end, as_of=as_of, agencies=agencies, services=services,
                worst=worst, trend=trend, overall=overall, chart=chart, pct=_pct,
                recommendation=rec, report=True, year_zero=labels[0],
                previous=_quarter_label(previous),
                following=_quarter_label(following) if following <= on else None,
                done=done == "saved")


@router.post("/adqa/quarterly/{quarter}/recommendations", response_class=HTMLResponse)
async def save_recommendations(quarter: str, request: Request, session: SessionDep) -> Response:
    if _parse_quarter(quarter) is None:
        raise ServiceError(404, f"There is no quarter {quarter!r}", "unknown_quarter")
    form = await request.form()
    text = str(form.get("recommendations") or "").strip()
    if len(text) > 20000:
        text = text[:20000]
    row = session.get(t.AdqaRecommendation, quarter) or t.AdqaRecommendation(quarter=quarter)
    row.text = text
    staff = request.state.staff
    row.updated_by = staff.actor if staff else None
    row.updated_at = t._now()
    session.add(row)
    session.commit()
    return see_other(f"/adqa/quarterly?quarter={quarter}&done=saved#recommendations")


# --- the public summary ------------------------------------------------------------------------------


class PublicFigure(BaseModel):
    title: str
    what: str = Field(description="what is counted, in plain words")
    count: str = Field(description="how many were counted: a number, or 'fewer than 5'")
    percent: str | None = Field(description="the share on time, e.g. '62%'; 'not shown' where "
                                "it would give a small number away")


class PublicSummary(BaseModel):
    council: str
    from_date: date = Field(serialization_alias="from")
    to_date: date = Field(serialization_alias="to")
    figures: list[PublicFigure]
    suppression: str = (f"Counts from 1 to {SUPPRESS_BELOW - 1} are shown as 'fewer than "
                        f"{SUPPRESS_BELOW}', and a percentage is not shown where it would let "
                        "someone work out a number that small, so no child can be recognised.")


def shown_count(n: int) -> str:
    return f"fewer than {SUPPRESS_BELOW}" if 0 < n < SUPPRESS_BELOW else f"{n:,}"


def shown_percent(part: int, whole: int) -> str | None:
    """The share, unless the part or the rest is a small number (1 to 4) or nothing counts."""
    if whole == 0:
        return None
    rest = whole - part
    if 0 < part < SUPPRESS_BELOW or 0 < rest < SUPPRESS_BELOW:
        return "not shown"
    return f"{round(100 * part / whole)}%"


def public_summary(session, council: str, on: date) -> PublicSummary:
    from_date, to_date = _last_full_quarters(on)
    report = st.timeliness(session, from_date, to_date, as_of=on)
    dfe = st.dfe(session, from_date, to_date)
    measures = {m.measure: m for m in report.measures}
    fp = dfe.final_plans
    d = dfe.decisions
    figures = [
        PublicFigure(title="New EHC plans", what="EHC plans issued after an assessment",
                     count=shown_count(fp.plans_issued_den),
                     percent=_within(shown_percent(fp.plans_issued_20_weeks_ex,
                                                   fp.plans_issued_den_ex), "within 20 weeks")),
        PublicFigure(title="Decisions whether to assess",
                     what="requests for an assessment answered", count=shown_count(d.decisions),
                     percent=_within(shown_percent(d.within_6_weeks_ex, d.decisions_ex),
                                     "within 6 weeks")),
    ]
    for key, title, what in (
            ("review_meetings", "Annual reviews", "annual review meetings that were due"),
            ("phase_transfers", "Moving school or college", "plans to be reviewed before a "
             "move to a new school or college"),
            ("advice", "Advice from professionals", "pieces of advice asked for")):
        m = measures.get(key)
        if m is None:
            continue
        ex = m.figures.excluding_exceptions
        figures.append(PublicFigure(title=title, what=what, count=shown_count(m.figures.counted),
                                    percent=_within(shown_percent(ex.on_time, ex.counted),
                                                    "on time")))
    return PublicSummary(council=council, from_date=from_date, to_date=to_date,
                         figures=figures)


def _within(percent: str | None, words: str) -> str | None:
    return f"{percent} {words}" if percent and percent != "not shown" else percent


@public_api.get("/summary", response_model=PublicSummary, response_model_by_alias=True,
                summary="The public summary: aggregate figures, small numbers suppressed")
def public_summary_api(request: Request, session: SessionDep) -> PublicSummary:
    return public_summary(session, request.app.state.settings.council_name, today())


@router.get("/summary", response_class=HTMLResponse)
def public_summary_page(request: Request, session: SessionDep) -> HTMLResponse:
    summary = public_summary(session, request.app.state.settings.council_name, today())
    return page(request, "pages/public_summary.html", summary=summary, public_page=True,
                public_title="How we are doing: EHC plans")
