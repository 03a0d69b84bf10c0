"""Web pages (GOV.UK Design System, server-rendered, no JavaScript needed): a case page (an
assessment or a review cycle), and the plans and their reviews. (The directory's pages are
``api/directory_pages.py``.)
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from statutory.phase import FIRST_TRANSFER_YEAR, LAST_TRANSFER_YEAR
from api.deps import SessionDep, page_asked
from api.page_kit import error_view, page
from domain.words import parse_date_input
from api.reviews import ACTION_PATHS
from statutory.phase import NC_YEAR_CHOICES, SETTING_TYPE_CHOICES
from domain.steps import STEP_TITLES, not_now
from services import cases, reviews
from services.clock import today
from services.errors import ServiceError

SETTING_LABELS = dict(SETTING_TYPE_CHOICES)  # the plan page: the setting type in words
YEAR_LABELS = dict(NC_YEAR_CHOICES)

router = APIRouter(include_in_schema=False)

# --- cases ----------------------------------------------------------------------------------------


@router.get("/cases/{reference}", response_class=HTMLResponse)
async def case_page(reference: str, request: Request, session: SessionDep) -> HTMLResponse:
    return await case_page_response(request, session, reference)


async def case_page_response(request: Request, session, reference: str, status: int = 200,
                             problem: str | None = None) -> HTMLResponse:
    """A case's page: its deadlines, the steps it can take now (each a link to its form), its
    emails and timeline. After a step, ``?done=<step>`` says it was saved; a step's form that
    cannot be opened now sends here with ``?cannot=<step>``, and a step refused when saved is
    drawn here with the refusal as ``problem``: either way the error summary says why."""
    try:
        facts = await cases.read_case_page(session=session, client=request.app.state.temporal,
                                           reference=reference)
    except ServiceError as exc:
        if exc.status != 404:
            raise
        return page(request, "pages/problem.html", 404, nav="cases",
                    heading="Case not found", message=exc.message,
                    back=("/cases", "See every case"))
    case = facts.case
    review = case.view.case.kind == "review"
    steps = {a: STEP_TITLES[a] for a in case.view.allowed_actions if a in STEP_TITLES}
    done = request.query_params.get("done")
    cannot = request.query_params.get("cannot")
    if problem is None and cannot in STEP_TITLES:
        problem = not_now(case.view.case, cannot) or None
    notice = "The case has started: its deadlines are below" if \
        request.query_params.get("started") else (
            None if problem is not None else "Saved: advice requested"
            if done == "request_advice" else
            f"Saved: {STEP_TITLES[done][0].lower()}{STEP_TITLES[done][1:]}"
            if done in STEP_TITLES else None)
    errors = [{"text": problem, "href": "#actions"}] if problem else []
    return page(request, "pages/case.html", status, nav="plans" if review else "cases", c=case,
                owed_by=facts.owed_by, action_paths=ACTION_PATHS if review else {},
                steps=steps, notice=notice, errors=errors, holder=facts.caseworker,
                school=facts.school,
                email_groups=facts.email_groups)


# --- plans and their annual reviews ---------------------------------------------------------------

PLANS_PAGE_SIZE = 50
PLAN_STATUS_LABELS = {"active": "Active", "ceased": "Ceased", "closed": "Closed", "all": "All"}
PLAN_FILTER_FIELDS = {"status": "status", "due_before": "due-before-day",
                      "transfer_year": "transfer-year"}


@router.get("/plans", response_class=HTMLResponse)
def plans_page(
    request: Request, session: SessionDep,
    status: str = "active",
    due_day: Annotated[str, Query(alias="due_before-day")] = "",
    due_month: Annotated[str, Query(alias="due_before-month")] = "",
    due_year: Annotated[str, Query(alias="due_before-year")] = "",
    transfer_year: str = "",
    overdue: str = "",
    with_child: str = "",
    page_number: Annotated[str, Query(alias="page")] = "1",
) -> HTMLResponse:
    """The plans, soonest review first, filtered by a GET form (so a filtered list can be
    bookmarked or shared) and paginated. Names only if asked for, and then as initials."""
    values = {"status": status, "due_day": due_day, "due_month": due_month,
              "due_year": due_year, "transfer_year": transfer_year.strip(),
              "overdue": overdue == "yes", "with_child": with_child == "yes"}
    problems: dict[str, str] = {}
    if status not in PLAN_STATUS_LABELS:
        problems["status"] = "Select active, ceased, closed or all plans"
        status = "active"
    try:
        due_before = parse_date_input(due_day, due_month, due_year, "Review due before")
    except ValueError as exc:
        problems["due_before"], due_before = str(exc), None
    year: int | None = None
    if values["transfer_year"]:
        text = values["transfer_year"]
        if text.isdecimal() and FIRST_TRANSFER_YEAR <= int(text) <= LAST_TRANSFER_YEAR:
            year = int(text)
        else:
            problems["transfer_year"] = "Phase transfer year must be a year, for example 2027"
    number = page_asked(page_number)
    result = reviews.list_plans(
        session=session, status=status, due_before=due_before,  # type: ignore[arg-type]
        transfer_year=year, overdue=bool(values["overdue"]),
        with_child=bool(values["with_child"]), limit=PLANS_PAGE_SIZE,
        offset=(number - 1) * PLANS_PAGE_SIZE)
    pages = max(1, -(-result.total // PLANS_PAGE_SIZE))

    def href(n: int) -> str:
        query = {k: v for k, v in request.query_params.items() if k != "page"}
        return "/plans?" + urlencode({**query, "page": n})

    errors, field_errors = error_view(problems, PLAN_FILTER_FIELDS)
    return page(request, "pages/plans.html", 422 if problems else 200, nav="plans",
                values=values, errors=errors, field_errors=field_errors, result=result,
                statuses=PLAN_STATUS_LABELS, today=today(), page_number=number,
                pages=pages, previous=href(number - 1) if number > 1 else None,
                next=href(number + 1) if number < pages else None,
                first=(number - 1) * PLANS_PAGE_SIZE + 1)


@router.get("/plans/{reference}", response_class=HTMLResponse)
async def plan_page(reference: str, request: Request, session: SessionDep) -> HTMLResponse:
    try:
        plan = await reviews.read_plan(session=session, client=request.app.state.temporal,
                                       reference=reference)
    except ServiceError as exc:
        if exc.status != 404:
            raise
        return page(request, "pages/plan.html", 404, nav="plans", missing=exc.message)
    return page(request, "pages/plan.html", nav="plans", p=plan, today=today(),
                setting_labels=SETTING_LABELS, year_labels=YEAR_LABELS)
