"""The data protection officer's pages (administrators; ``/admin`` in api/auth.py's POLICY):
find a child, see who viewed or exported their record (the access log, newest first), and
download everything held about them as one archive (a subject access export).
docs/data-protection.md."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from api.advice_portal import attachment_headers
from api.deps import SessionDep, StaffDep
from api.page_kit import error_view, page
from domain.words import parse_date_input
from services import access_log, subject_access
from services.errors import ServiceError

router = APIRouter(include_in_schema=False)

FIND_FIELDS = {"reference": "reference", "given_name": "given-name",
               "family_name": "family-name", "date_of_birth": "date-of-birth-day"}


@router.get("/admin/access-log", response_class=HTMLResponse)
def find_child(
    request: Request, session: SessionDep,
    reference: str = "", given_name: str = "", family_name: str = "",
    dob_day: Annotated[str, Query(alias="date_of_birth-day", max_length=10)] = "",
    dob_month: Annotated[str, Query(alias="date_of_birth-month", max_length=10)] = "",
    dob_year: Annotated[str, Query(alias="date_of_birth-year", max_length=10)] = "",
) -> HTMLResponse:
    """Find a child by a case or plan reference (or the council's own id for the child), or
    by name and date of birth; the matches link to their access log."""
    values = {"reference": reference.strip()[:60], "given_name": given_name.strip()[:100],
              "family_name": family_name.strip()[:100], "date_of_birth-day": dob_day,
              "date_of_birth-month": dob_month, "date_of_birth-year": dob_year}
    asked = any(values.values())
    problems: dict[str, str] = {}
    born = None
    try:
        born = parse_date_input(dob_day, dob_month, dob_year, "Date of birth")
    except ValueError as exc:
        problems["date_of_birth"] = str(exc)
    if asked and not values["reference"] and not problems:
        if not values["given_name"]:
            problems["given_name"] = "Enter the child's given name, or a reference above"
        if not values["family_name"]:
            problems["family_name"] = "Enter the child's family name, or a reference above"
        if born is None:
            problems["date_of_birth"] = "Enter the child's date of birth, or a reference above"
    found = None
    if asked and not problems:
        found = access_log.find_children(
            session=session, reference=values["reference"] or None,
            given_name=values["given_name"], family_name=values["family_name"],
            date_of_birth=born)
    errors, field_errors = error_view(problems, FIND_FIELDS)
    return page(request, "pages/access_find.html", 422 if problems else 200, nav="access",
                values=values, errors=errors, field_errors=field_errors, found=found)


@router.get("/admin/access-log/children/{child_id}", response_class=HTMLResponse)
def child_access_page(request: Request, session: SessionDep, child_id: str,
                      page_number: Annotated[int, Query(alias="page", ge=1, le=100000)] = 1
                      ) -> HTMLResponse:
    """Who viewed or exported the child's record, newest first, a page at a time."""
    try:
        result = access_log.child_access(session=session, child_id=child_id[:32],
                                         page=page_number)
    except ServiceError as exc:
        if exc.status != 404:
            raise
        return page(request, "pages/problem.html", 404, nav="access",
                    heading="Child not found", message=exc.message,
                    back=("/admin/access-log", "Find a child"))
    base = f"/admin/access-log/children/{child_id}"
    return page(request, "pages/access_child.html", nav="access", r=result,
                previous=f"{base}?page={result.page - 1}" if result.page > 1 else None,
                next=f"{base}?page={result.page + 1}" if result.page < result.pages else None,
                export=f"{base}/export")


@router.get("/admin/access-log/children/{child_id}/export")
def subject_access_export(request: Request, session: SessionDep, staff: StaffDep,
                          child_id: str) -> Response:
    """Everything held about the child, as one zip archive (logged as a subject access
    export)."""
    name, data = subject_access.build_archive(
        session=session, staff=staff, child_id=child_id[:32],
        council=request.app.state.settings.council_name,
        route="GET /admin/access-log/children/{child_id}/export")
    return Response(data, media_type="application/zip", headers=attachment_headers(name))
