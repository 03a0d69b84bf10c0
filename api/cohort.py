"""The phase-transfer cohort: the JSON API (``/api/phase-transfers``, OpenAPI tag "reviews"),
the page (``/phase-transfers``), and ``bring_forward``, which the API, the page and ``ehc
phase-transfer bring-forward`` all use to bring reviews forward. See docs/phase-transfers.md.

The cohort itself is worked out by ``store.cohort.build_cohort`` from the database. Bringing a
review forward is the review workflow's ``set_phase_transfer`` update on the plan's current
cycle, sent through ``services.cases.act`` like any caseworker action: the workflow validates it
and says why when it refuses.
"""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Annotated, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel, Field
from sqlmodel import Session
from temporalio.client import Client

from api.page_kit import page
from api.deps import SessionDep, get_client
from api.auth import current_actor
from services import cases
from services.clock import today
from services.errors import ServiceError
from store.cohort import (
    AT_RISK_DAYS,
    STATUS_LABELS,
    STATUSES,
    Cohort,
    CohortEntry,
    build_cohort,
    default_year,
)
from store.db import session_for
from domain.case import PhaseTransferDue, ReviewAction, SetPhaseTransfer

router = APIRouter()

YEARS = (2014, 2100)  # domain.case.PhaseTransferDue's range
CONCURRENCY = 8  # updates in flight at once when bringing a cohort forward


# --- bringing reviews forward ---------------------------------------------------------------------

Outcome = Literal["brought_forward", "already", "rejected", "failed", "would_bring_forward"]


class BringForwardItem(BaseModel):
    plan_reference: str
    cycle_reference: str
    kind: Literal["school", "post16"]
    transfer_year: int
    deadline: date
    outcome: Outcome = Field(description="brought_forward: done; already: the review already "
                             "had it; rejected: the workflow refused (see message); failed: "
                             "Temporal could not be reached or answered with an error; "
                             "would_bring_forward: dry run")
    message: str | None = None
    review_due: date | None = Field(None, description="the phase transfer deadline the review "
                                    "now carries")


class BringForwardResult(BaseModel):
    year: int
    today: date
    dry_run: bool
    items: list[BringForwardItem] = Field(description="one per plan that was not brought "
                                          "forward; none when there is nothing to do")
    counts: dict[str, int]
    ok: bool = Field(description="false when any plan was rejected or failed")


async def _bring_one(client: Client, session: Session, entry: CohortEntry,
                     actor: str | None) -> BringForwardItem:
    tr = entry.transfer
    item = BringForwardItem(plan_reference=entry.plan_reference,
                            cycle_reference=entry.cycle_reference, kind=tr.kind,
                            transfer_year=tr.transfer_year, deadline=tr.deadline,
                            outcome="brought_forward")
    cmd = SetPhaseTransfer(transfer=PhaseTransferDue(kind=tr.kind,
                                                     transfer_year=tr.transfer_year),
                           actor=actor)
    try:
        view = await cases.act(session=session, client=client, reference=entry.cycle_reference,
                               action=ReviewAction.SET_PHASE_TRANSFER, payload=cmd, actor=None)
    except ServiceError as exc:
        # The workflow's own refusal. "Duplicate": the review has had it since the record
        # was read (a run that overlapped this one): nothing to do, not a failure.
        item.outcome = "already" if exc.code == "duplicate" else "rejected"
        item.message = exc.message
        return item
    except Exception as exc:  # Temporal unreachable, timed out: say so, carry on with the rest
        item.outcome, item.message = "failed", f"{type(exc).__name__}: {exc}"
        return item
    m = view.case.milestone("phase_transfer_due")
    item.review_due = m.due if m is not None else None
    return item


async def bring_forward(client: Client | None, session: Session, year: int, *,
                        today: date, dry_run: bool = False, actor: str | None = None,
                        at_risk_days: int = AT_RISK_DAYS) -> BringForwardResult:
    """Send ``set_phase_transfer`` to the current review of every plan in ``year``'s cohort
    whose status is ``not_brought_forward``. Idempotent: a plan brought forward is no longer
    ``not_brought_forward`` once its workflow has recorded it, so a second run finds nothing
    to do. ``client`` may be None for a dry run."""
    cohort = build_cohort(session, year, today, at_risk_days)
    todo = [e for e in cohort.entries if e.status == "not_brought_forward"]
    if dry_run:
        items = [BringForwardItem(plan_reference=e.plan_reference,
                                  cycle_reference=e.cycle_reference, kind=e.transfer.kind,
                                  transfer_year=e.transfer.transfer_year,
                                  deadline=e.transfer.deadline, outcome="would_bring_forward")
                 for e in todo]
    else:
        if todo and client is None:
            raise ValueError("bringing reviews forward needs a Temporal client")
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(entry: CohortEntry) -> BringForwardItem:
            async with gate:
                return await _bring_one(client, session, entry, actor)  # type: ignore[arg-type]

        items = list(await asyncio.gather(*(one(e) for e in todo)))
    counts: dict[str, int] = {}
    for i in items:
        counts[i.outcome] = counts.get(i.outcome, 0) + 1
    return BringForwardResult(year=year, today=today, dry_run=dry_run, items=items,
                              counts=counts,
                              ok=not any(i.outcome in ("rejected", "failed") for i in items))


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
                                       "no meeting held is 'at_risk'")] = AT_RISK_DAYS,
) -> Cohort:
    return build_cohort(session, year, on or today(), at_risk_days)


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
             "due by 15 February or 31 March of the year (Reg 18(1)). One result per plan: "
             "brought_forward, or rejected with the workflow's message. Running it again does "
             "nothing more. 200 even when some plans were rejected: see `ok` and `items`.")
async def bring_forward_route(body: BringForwardIn, session: SessionDep,
                              request: Request) -> BringForwardResult:
    client = None if body.dry_run else get_client(request)
    return await bring_forward(client, session, body.year, today=today(),
                               dry_run=body.dry_run, actor=current_actor() or body.actor)


# --- the page -------------------------------------------------------------------------------------

STATUS_TAGS = {
    "not_brought_forward": "govuk-tag--orange",
    "overdue": "govuk-tag--red",
    "at_risk": "govuk-tag--yellow",
    "on_track": "govuk-tag--blue",
    "done": "govuk-tag--green",
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
    if not (text.isdigit() and YEARS[0] <= int(text) <= YEARS[1]):
        raise ValueError(f"Year of transfer must be a year from {YEARS[0]} to {YEARS[1]}, "
                         "for example 2027")
    return int(text)


@router.get("/phase-transfers", response_class=HTMLResponse, include_in_schema=False)
def cohort_page(request: Request, year: str = "", brought: str = "", already: str = "",
                failed: str = "", failed_refs: str = "") -> HTMLResponse:
    now = today()
    try:
        chosen = _parse_year(year) if year.strip() else default_year(now)
    except ValueError as exc:
        return _page(request, 422, today=now, year_text=year, cohort=None,
                     errors=[{"text": str(exc), "href": "#year"}], year_error=str(exc))
    settings = request.app.state.settings
    with session_for(settings.db_url) as session:
        cohort = build_cohort(session, chosen, now)
    result = None
    if brought or already or failed:
        refs = [r for r in failed_refs.split(",") if r][:MAX_LISTED]
        result = {"brought": _count(brought), "already": _count(already),
                  "failed": _count(failed), "failed_refs": refs}
    return _page(request, today=now, year_text=str(chosen), cohort=cohort, result=result,
                 errors=None, year_error=None, can_act=request.app.state.temporal is not None)


def _count(text: str) -> int:
    return int(text) if text.isdigit() else 0


@router.post("/phase-transfers/bring-forward", include_in_schema=False, response_model=None)
async def bring_forward_form(request: Request) -> HTMLResponse | RedirectResponse:
    form = await request.form()
    raw = form.get("year")
    try:
        year = _parse_year(raw if isinstance(raw, str) else "")
    except ValueError as exc:
        return _page(request, 422, today=today(), year_text=str(raw or ""), cohort=None,
                     errors=[{"text": str(exc), "href": "#year"}], year_error=str(exc))
    client = get_client(request)  # 503 without Temporal
    settings = request.app.state.settings
    with session_for(settings.db_url) as session:
        result = await bring_forward(client, session, year, today=today(),
                                     actor=current_actor() or "phase transfers page")
    failed = [i.plan_reference for i in result.items if i.outcome in ("rejected", "failed")]
    query = {"year": year, "brought": result.counts.get("brought_forward", 0),
             "already": result.counts.get("already", 0), "failed": len(failed)}
    if failed:
        query["failed_refs"] = ",".join(failed[:MAX_LISTED])
    return RedirectResponse(f"/phase-transfers?{urlencode(query)}#result", status_code=303)
