"""The caseworker's own pages: their cases with the next deadline of each (``/``), every case
(``/cases``), and the form that starts an assessment (``/assessments/new``).

The form goes through the API's own request model (``services.cases.StartAssessmentIn``) and the
same start function, so it refuses what the API refuses, with the same words, shown by the
field; a start that works lands on the new case's page.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from api.deps import SessionDep, current_staff, get_client
from services import cases, worklist
from services.allocation import caseworkers
from services.clock import today
from services.cases import StartAssessmentIn
from services.errors import ServiceError
from api.page_kit import error_view, page, see_other
from domain.problems import by_field, missing
from domain.words import parse_date_input
from domain.case import RequestSource

router = APIRouter(include_in_schema=False)

SOURCE_LABELS = {RequestSource.PARENT.value: "A parent",
                 RequestSource.YOUNG_PERSON.value: "The young person (16 to 25)",
                 RequestSource.SCHOOL.value: "A school, college or early years setting",
                 RequestSource.OTHER.value: "Someone else (brought to the LA's attention)"}
START_FIELDS = {"given_name": "given-name", "family_name": "family-name",
                "date_of_birth": "date-of-birth-day", "council_reference": "council-reference",
                "setting_name": "setting-name", "request_date": "request-date-day",
                "request_source": "request-source", "caseworker_id": "caseworker",
                "case_reference": "case-reference", "form": "given-name"}


@router.get("/", response_class=HTMLResponse)
def my_cases_page(request: Request, session: SessionDep) -> HTMLResponse:
    staff = request.state.staff
    rows = worklist.my_cases(session=session, caseworker_id=staff.id, on=today())
    return page(request, "pages/my_cases.html", nav="mine", rows=rows, today=today())


@router.get("/cases", response_class=HTMLResponse)
def all_cases_page(request: Request, session: SessionDep) -> HTMLResponse:
    rows = cases.list_cases(session=session, open_only=False, limit=200)
    return page(request, "pages/cases.html", nav="cases", cases=rows, today=today())


def _start_form(request: Request, session, status: int = 200, values: dict | None = None,
                problems: dict[str, str] | None = None) -> HTMLResponse:
    errors, field_errors = error_view(problems or {}, START_FIELDS)
    return page(request, "pages/start_assessment.html", status, nav="mine",
                values=values or {}, errors=errors, field_errors=field_errors,
                sources=SOURCE_LABELS, caseworkers=caseworkers(session=session), today=today())


@router.get("/assessments/new", response_class=HTMLResponse)
def new_assessment_page(request: Request, session: SessionDep) -> HTMLResponse:
    return _start_form(request, session)


@router.post("/assessments/new", response_class=HTMLResponse)
async def start_assessment_page(request: Request, session: SessionDep) -> Response:
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    values = {k: v.strip() for k, v in form.items() if k != "csrf_token"}
    problems: dict[str, str] = {}
    dates = {}
    for name, label in (("date_of_birth", "Date of birth"),
                        ("request_date", "Date the request was received")):
        try:
            dates[name] = parse_date_input(values.get(f"{name}-day", ""),
                                           values.get(f"{name}-month", ""),
                                           values.get(f"{name}-year", ""), label,
                                           not_after=today())
            if dates[name] is None:
                problems[name] = missing(label)
        except ValueError as exc:
            problems[name] = str(exc)
    body = {
        "child": {"given_name": values.get("given_name", ""),
                  "family_name": values.get("family_name", ""),
                  "date_of_birth": dates.get("date_of_birth"),
                  "council_reference": values.get("council_reference") or None},
        "request_date": dates.get("request_date"),
        "request_source": values.get("request_source") or None,
        "setting_name": values.get("setting_name") or None,
        "caseworker_id": values.get("caseworker_id") or None,
        "case_reference": (values.get("case_reference") or "").upper() or None,
    }
    try:
        parsed = StartAssessmentIn.model_validate(body)
    except ValidationError as exc:
        for field, message in _flat(exc).items():
            problems.setdefault(field, message)
        parsed = None
    if problems or parsed is None:
        return _start_form(request, session, 422, values, problems)
    try:
        started = await cases.start_assessment(
            session=session, client=get_client(request), settings=request.app.state.settings,
            body=parsed, by=current_staff())
    except ServiceError as exc:
        field = {"duplicate_case": "given_name", "duplicate_reference": "case_reference",
                 "invalid_input": "caseworker_id"}.get(exc.code, "form")
        status = exc.status if exc.status < 500 or exc.status == 504 else 503  # 504: sent
        return _start_form(request, session, status, values, {field: exc.message})
    return see_other(f"/cases/{started.reference}?started=1")


def _flat(exc: ValidationError) -> dict[str, str]:
    """The API's words for each problem (``domain.problems``), by the form's field names
    (``child.given_name`` is the form's ``given_name``)."""
    out: dict[str, str] = {}
    for field, message in by_field(exc.errors()).items():
        out.setdefault(field.removeprefix("child.") if field != "body" else "form", message)
    return out
