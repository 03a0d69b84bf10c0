"""The managers' lists: what is late now and what falls due in the next N days, across every
open case (``services/worklist.py``, over ``store/worklist.py``), as JSON, as CSV and as the page
``/late``. Managers only (the policy in ``api/auth.py``). Also who holds a case
(``services/allocation.py``): the caseworkers, and a manager giving a case or a plan to another
caseworker.

The JSON and the page take the same filters, checked by the same model (``Filters``), so a
filtered list on the page can be downloaded as CSV with the same query string.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, StreamingResponse
from pydantic import ValidationError

from api.page_kit import error_view, page
from api.problems import started
from api.deps import MAX_PAGE, SessionDep, StaffDep, page_asked
from services import allocation, worklist
from services.allocation import Assignment, Caseworker
from services.clock import today
from domain.agencies import AGENCY_LABELS
from domain.csv_cells import csv_chunks
from domain.case import OPEN_REVIEW_STAGES, OPEN_STAGES
from services.worklist import (
    MAX_DAYS_OVERDUE,
    MAX_PAGE_SIZE,
    PARTY_LABELS,
    SORTS,
    Filters,
    Which,
    WorkItem,
    WorkPage,
)

router = APIRouter(prefix="/api", tags=["worklist"])
pages = APIRouter(include_in_schema=False)

DEFAULT_DAYS = 14
MAX_DAYS = 366
CSV_COLUMNS = ["case_reference", "case_kind", "stage", "item", "key", "title", "citation",
               "statutory", "due", "days_overdue", "days_left", "party", "owed_by",
               "service_name", "contact_name", "caseworker_name", "school", "excused", "chased"]
STAGES = [s.value for s in sorted(OPEN_STAGES, key=lambda s: s.value)] + \
    [s.value for s in sorted(OPEN_REVIEW_STAGES, key=lambda s: s.value)]


# The filters are a query-parameter model: each of its fields is a query parameter.
FiltersQ = Annotated[Filters, Query()]
TodayQ = Annotated[date | None, Query(alias="today", description="the day to judge by; "
                                      "default today (London)")]
SortQ = Annotated[str, Query(description="; ".join(f"{k}: {v}" for k, v in SORTS.items()))]
PageQ = Annotated[int, Query(ge=1, le=MAX_PAGE)]
SizeQ = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)]
DaysQ = Annotated[int, Query(ge=0, le=MAX_DAYS, description="due within this many days of "
                             "today, today included")]
LISTS: dict[str, Which] = {"late": "late", "due-soon": "due_soon"}


# Before the JSON route: "/worklist/{which}" would take "late.csv" as the name of a list.
@router.get("/worklist/{which}.csv", summary="The same list as CSV: every row, same filters",
            response_class=StreamingResponse,
            responses={200: {"content": {"text/csv": {}}}})
def work_list_csv(session: SessionDep, staff: StaffDep, which: Literal["late", "due-soon"],
                  filters: FiltersQ, today_: TodayQ = None, days: DaysQ = DEFAULT_DAYS,
                  sort: SortQ = "due") -> StreamingResponse:
    on = today_ or today()
    items = started(worklist.export_items(session=session, staff=staff, which=LISTS[which],
                                          on=on, days=days, filters=filters, sort=sort))

    rows = (item.model_dump(mode="json") for item in items)
    return StreamingResponse(csv_chunks(CSV_COLUMNS, rows), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition":
                                      f'attachment; filename="{which}-{on.isoformat()}.csv"'})


@router.get("/worklist/{which}", response_model=WorkPage,
            summary="Late now (every open deadline past its due day), or due soon (due in "
            "the next N days, today included, and not yet done)")
def work_list(session: SessionDep, which: Literal["late", "due-soon"], filters: FiltersQ,
              today_: TodayQ = None, days: DaysQ = DEFAULT_DAYS, sort: SortQ = "due",
              page: PageQ = 1, page_size: SizeQ = 50) -> WorkPage:
    return worklist.work_list(session=session, which=LISTS[which], on=today_ or today(),
                              days=days, filters=filters, sort=sort, page=page,
                              page_size=page_size)


# --- who holds a case ----------------------------------------------------------------------------


@router.get("/caseworkers", response_model=list[Caseworker], tags=["accounts"],
            summary="Who can hold cases")
def list_caseworkers(session: SessionDep) -> list[Caseworker]:
    return [Caseworker.model_validate(u, from_attributes=True)
            for u in allocation.caseworkers(session=session)]


@router.put("/cases/{reference}/caseworker", tags=["cases"],
            summary="Give an assessment to another caseworker (managers)")
def assign_case(reference: str, body: Assignment, session: SessionDep) -> dict:
    return allocation.assign_case(session=session, reference=reference,
                                  caseworker_id=body.caseworker_id)


@router.put("/plans/{reference}/caseworker", tags=["reviews"],
            summary="Give a plan and its reviews to another caseworker (managers)")
def assign_plan(reference: str, body: Assignment, session: SessionDep) -> dict:
    return allocation.assign_plan(session=session, reference=reference,
                                  caseworker_id=body.caseworker_id)


# --- the page ------------------------------------------------------------------------------------

LIST_FIELDS = {"stage": "stage", "case_kind": "case-kind", "agency": "agency",
               "service_id": "service", "caseworker_id": "caseworker", "school": "school",
               "min_days_overdue": "min-days", "max_days_overdue": "max-days", "days": "days",
               "sort": "sort"}
VIEWS = {"late": "Late now", "due_soon": "Due soon"}


def _int(problems: dict, name: str, text: str, low: int = 0,
         high: int = MAX_DAYS_OVERDUE) -> int | None:
    text = (text or "").strip()
    if not text:
        return None
    if not text.isdecimal() or not low <= int(text) <= high:
        problems[name] = f"Enter a whole number from {low} to {high}"
        return None
    return int(text)


@pages.get("/late", response_class=HTMLResponse)
def late_page(
    request: Request, session: SessionDep, view: str = "late", stage: str = "",
    case_kind: str = "", agency: str = "", service_id: str = "", caseworker_id: str = "",
    school: str = "", min_days_overdue: str = "", max_days_overdue: str = "", days: str = "",
    include_excused: str = "", sort: str = "due", page_number: Annotated[
        str, Query(alias="page")] = "1", today_: Annotated[str, Query(alias="today")] = "",
) -> HTMLResponse:

    problems: dict[str, str] = {}
    which: Which = "due_soon" if view == "due_soon" else "late"
    on = today()
    if today_:
        try:
            on = date.fromisoformat(today_)
        except ValueError:
            problems["today"] = "The day must be written as YYYY-MM-DD"
    window = _int(problems, "days", days, 0, MAX_DAYS)
    window = DEFAULT_DAYS if window is None else window
    low = _int(problems, "min_days_overdue", min_days_overdue)
    high = _int(problems, "max_days_overdue", max_days_overdue)
    if low is not None and high is not None and high < low:
        problems["max_days_overdue"] = "The most days overdue must be at least the fewest"
    if sort not in SORTS:
        problems["sort"], sort = "Choose how to sort the list", "due"
    values = {"view": which, "stage": stage, "case_kind": case_kind, "agency": agency,
              "service_id": service_id, "caseworker_id": caseworker_id, "school": school,
              "min_days_overdue": min_days_overdue, "max_days_overdue": max_days_overdue,
              "days": str(window), "include_excused": include_excused == "yes", "sort": sort}
    filters = Filters()
    if not problems:
        try:
            filters = Filters(**{k: v for k, v in dict(
                stage=stage, case_kind=case_kind, agency=agency, service_id=service_id,
                caseworker_id=caseworker_id, school=school, min_days_overdue=low,
                max_days_overdue=high if which == "late" else None,
                include_excused=include_excused == "yes").items() if v not in (None, "")})
        except ValidationError as exc:
            for err in exc.errors():
                problems[str(err["loc"][0])] = "Choose one of the options"
    number = page_asked(page_number)
    size = 50
    listed = worklist.list_page(session=session, which=which, on=on, days=window,
                                filters=None if problems else filters, sort=sort,
                                page=number, page_size=size)
    result = listed.result
    count = -(-result.total // size) or 1
    params = {k: v for k, v in request.query_params.items() if k != "page" and v}

    def href(n: int) -> str:
        return "/late?" + urlencode({**params, "page": n})

    def sort_href(key: str) -> str:
        return "/late?" + urlencode({**params, "sort": key})

    csv_params = {k: ("true" if k == "include_excused" else v) for k, v in params.items()
                  if k != "view" and (k != "days" or which == "due_soon")}
    csv_href = ("/api/worklist/due-soon.csv?" if which == "due_soon"
                else "/api/worklist/late.csv?") + urlencode(csv_params)
    errors, field_errors = error_view(problems, LIST_FIELDS)
    return page(request, "pages/late.html", 422 if problems else 200, nav="late",
                result=result, values=values, errors=errors, field_errors=field_errors,
                views=VIEWS, stages=STAGES, parties=PARTY_LABELS, agency_names=AGENCY_LABELS,
                services=listed.services, caseworkers=listed.caseworkers, sorts=SORTS,
                page_number=number, pages=count, first=(number - 1) * size + 1,
                previous=href(number - 1) if number > 1 else None,
                next=href(number + 1) if number < count else None, sort_href=sort_href,
                csv_href=csv_href, view_href=lambda v: "/late?" + urlencode(
                    {**{k: x for k, x in params.items() if k not in ("view", "sort")},
                     "view": v}))


__all__ = ["router", "pages", "WorkItem"]
