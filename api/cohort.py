"""The phase-transfer cohort: the JSON API (``/api/phase-transfers``, OpenAPI tag "reviews") and
the page (``/phase-transfers``). See docs/phase-transfers.md.

The cohort is read, and reviews are brought forward, by ``services.cohort`` (``read_cohort``,
``bring_forward``), which ``ehc phase-transfer`` uses too.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel, Field

from statutory.phase import FIRST_TRANSFER_YEAR, LAST_TRANSFER_YEAR
from api.page_kit import page
from api.deps import SessionDep, current_actor, get_client
from services.clock import today
from services.cohort import (
    AT_RISK_DAYS,
    STATUS_LABELS,
    STATUSES,
    BringForwardResult,
    Cohort,
    bring_forward,
    default_year,
    read_cohort,
)

router = APIRouter()

YEARS = (FIRST_TRANSFER_YEAR, LAST_TRANSFER_YEAR)


# --- the JSON API ---------------------------------------------------------------------------------

YearQuery = Annotated[int, Query(ge=YEARS[0], le=YEARS[1],
                                 description="the calendar year of transfer: the year of the "
                                 "September move, e.g. 2027")]


@router.get("/api/phase-transfers", response_model=Cohort, tags=["reviews"],
            summary="The phase-transfer cohort of a year: each plan's transfer, Reg 18(1) "
            "deadline and status",
            description="Every active plan whose child's next transfer between phases "
            "(Reg 2(1)) is in `year`, worked out from the plan's year group and setting, sorted "
            "by deadline then reference; and, separately, the active plans whose placement is "
            "missing or not understood. No names. Statuses: docs/phase-transfers.md.")
def phase_transfers(
    session: SessionDep,
    year: YearQuery,
    on: Annotated[date | None, Query(alias="today", description="work the cohort out as on "
                                     "this day (YYYY-MM-DD); default: today")] = None,
    at_risk_days: Annotated[int, Query(ge=0, le=365, description="a deadline this close with "
                                       "no meeting held is 'due_soon'")] = AT_RISK_DAYS,
) -> Cohort:
    return read_cohort(session=session, year=year, today=on or today(),
                       at_risk_days=at_risk_days)


class BringForwardIn(BaseModel):
    year: int = Field(ge=YEARS[0], le=YEARS[1], description="the calendar year of transfer")
    dry_run: bool = Field(False, description="list what would be brought forward; change "
                          "nothing")
    actor: str | None = Field(None, max_length=120)


@router.post("/api/phase-transfers/bring-forward", response_model=BringForwardResult,
             tags=["reviews"],
             summary="Bring forward the review of every plan in the cohort that is "
             "not_brought_forward",
             description="Sends `set_phase_transfer` to each plan's current review, so it is "
             "due by 14 February (the Regulations say before 15 February) or 30 March (before 31 "
             "March) of the year (Reg 18(1)). One result per plan: "
             "brought_forward, or rejected with the workflow's message. Running it again does "
             "nothing more. 200 even when some plans were rejected: see `ok` and `items`.")
async def bring_forward_route(body: BringForwardIn, session: SessionDep,
                              request: Request) -> BringForwardResult:
    client = None if body.dry_run else get_client(request)
    return await bring_forward(client=client, session=session, year=body.year, today=today(),
                               dry_run=body.dry_run, actor=current_actor() or body.actor)


# --- the page -------------------------------------------------------------------------------------

STATUS_TAGS = {
    "not_brought_forward": "govuk-tag--orange",
    "overdue": "govuk-tag--red",
    "review_overdue": "govuk-tag--red",
    "due_soon": "govuk-tag--yellow",
    "on_track": "govuk-tag--blue",
    "done_on_time": "govuk-tag--green",
    "done_late": "govuk-tag--grey",
}
PHASE_LABELS = {
    "early_years": "early years", "school": "school (reception)", "infant": "infant",
    "junior": "junior", "primary": "primary", "first": "first", "middle": "middle",
    "secondary": "secondary", "post16": "post-16",
}
MAX_LISTED = 20  # failed references named in the banner after bringing forward


def _page(request: Request, status: int = 200, **context: object) -> HTMLResponse:

    return page(request, "pages/cohort.html", status, nav="cohort", status_labels=STATUS_LABELS,
                status_tags=STATUS_TAGS, statuses=STATUSES, phase_labels=PHASE_LABELS,
                **context)


def _parse_year(text: str) -> int:
    text = text.strip()
    if not (text.isdecimal() and YEARS[0] <= int(text) <= YEARS[1]):
        raise ValueError(f"Year of transfer must be a year from {YEARS[0]} to {YEARS[1]}, "
                         "for example 2027")
    return int(text)


@router.get("/phase-transfers", response_class=HTMLResponse, include_in_schema=False)
def cohort_page(request: Request, session: SessionDep, year: str = "", brought: str = "",
                already: str = "", failed: str = "", failed_refs: str = "") -> HTMLResponse:
    now = today()
    try:
        chosen = _parse_year(year) if year.strip() else default_year(now)
    except ValueError as exc:
        return _page(request, 422, today=now, year_text=year, cohort=None,
                     errors=[{"text": str(exc), "href": "#year"}], year_error=str(exc))
    cohort = read_cohort(session=session, year=chosen, today=now)
    result = None
    if brought or already or failed:
        refs = [r for r in failed_refs.split(",") if r][:MAX_LISTED]
        result = {"brought": _count(brought), "already": _count(already),
                  "failed": _count(failed), "failed_refs": refs}
    return _page(request, today=now, year_text=str(chosen), cohort=cohort, result=result,
                 errors=None, year_error=None, can_act=request.app.state.temporal is not None)


def _count(text: str) -> int:
    return int(text) if text.isdecimal() else 0


@router.post("/phase-transfers/bring-forward", include_in_schema=False, response_model=None)
async def bring_forward_form(request: Request,
                             session: SessionDep) -> HTMLResponse | RedirectResponse:
    form = await request.form()
    raw = form.get("year")
    try:
        year = _parse_year(raw if isinstance(raw, str) else "")
    except ValueError as exc:
        return _page(request, 422, today=today(), year_text=str(raw or ""), cohort=None,
                     errors=[{"text": str(exc), "href": "#year"}], year_error=str(exc))
    client = get_client(request)  # 503 without Temporal
    result = await bring_forward(client=client, session=session, year=year, today=today(),
                                 actor=current_actor() or "phase transfers page")
    failed = [i.plan_reference for i in result.items if i.outcome in ("rejected", "failed")]
    query = {"year": year, "brought": result.counts.get("brought_forward", 0),
             "already": result.counts.get("already", 0), "failed": len(failed)}
    if failed:
        query["failed_refs"] = ",".join(failed[:MAX_LISTED])
    return RedirectResponse(f"/phase-transfers?{urlencode(query)}#result", status_code=303)
