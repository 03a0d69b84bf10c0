"""The directory of who owes advice as web pages (GOV.UK Design System, server-rendered, no
JavaScript needed): the services by agency, a service with its contacts, the ADQA group, and
their forms.

The forms go through the same request models and functions as the JSON API
(``services/directory_admin.py``): a form is turned into the API's body, so the rules and
their messages are the same. A form with a problem is shown again with a GOV.UK error summary
and the message by each field; a form that worked redirects (303) to the page it changed.

A service, a contact and an ADQA member each have a "Change" page (``.../edit``) for their
details; a service's page also shows, read-only, the ladder that chases advice asked of it.
"""

from __future__ import annotations

from typing import Callable, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ValidationError

from api.deps import FormDep, SessionDep
from api.page_kit import FormProblems, error_view, page, see_other, sentence
from domain.agencies import AGENCIES, AGENCY_LABELS
from domain.problems import by_field
from domain.ladder import RECIPIENT_LABELS, LadderStep, step_label
from services import directory_admin as d
from services.directory import ServiceLadder
from services.directory_admin import AdqaMemberOut, ContactOut, DirectoryProblem

router = APIRouter(include_in_schema=False)
T = TypeVar("T")

# --- forms ----------------------------------------------------------------------------------------

# What a redirect after a change says on the page it lands on (?done=...).
DONE = {
    "service-added": "Service added",
    "service-default": "The default service for the agency has been changed",
    "service-deactivated": "Service deactivated",
    "service-reactivated": "Service reactivated",
    "contact-added": "Contact added",
    "lead-changed": "The service lead has been changed",
    "contact-deactivated": "Contact deactivated",
    "contact-reactivated": "Contact reactivated",
    "member-added": "Member added to the ADQA group",
    "member-deactivated": "Member deactivated",
    "member-reactivated": "Member reactivated",
    "service-changed": "The service's details have been changed",
    "contact-changed": "The contact's details have been changed",
    "member-changed": "The member's details have been changed",
}


def field_problems(exc: ValidationError) -> dict[str, str]:
    """A request model's validation errors as {field: message}, the first for each field, in
    the words the API's error handler uses (``domain.problems``)."""
    return {("form" if k == "body" else k): v for k, v in by_field(exc.errors()).items()}


def parse(model: type[BaseModel], data: dict[str, object]):
    """The API's request model built from a form: the same rules, the same messages."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise FormProblems(field_problems(exc), 422) from None


def apply(change: Callable[[], T]) -> T:
    """Run one of ``services.directory_admin``'s changes (each commits itself, or changes
    nothing); its refusal becomes the form's, except a 404, which is the page's."""
    try:
        return change()
    except DirectoryProblem as exc:
        if exc.status == 404:
            raise
        raise FormProblems({exc.field or "form": exc.message}, exc.status) from None


NOT_FOUND = {
    "unknown_service": "There is no service at this address: check the link, or find the "
                       "service in the directory",
    "unknown_contact": "There is no contact at this address: check the link, or find the "
                       "contact on their service's page",
    "unknown_adqa_member": "There is no ADQA member at this address: check the link",
}


def not_found(request: Request, exc: DirectoryProblem) -> HTMLResponse:
    return page(request, "pages/directory_not_found.html", 404, nav="directory",
                message=NOT_FOUND.get(exc.code, "There is nothing at this address: check "
                                      "the link"))


def _checked(form: dict[str, str], name: str) -> bool:
    return form.get(name) == "yes"


# --- how a service's advice is chased, in words ---------------------------------------------------


def fmt_hour(hour: int) -> str:
    """8 -> '8am', 12 -> 'midday', 15 -> '3pm' (GOV.UK style)."""
    if hour % 24 == 0:
        return "midnight"
    if hour == 12:
        return "midday"
    return f"{hour % 12 or 12}{'am' if hour < 12 else 'pm'}"


def _days(n: int) -> str:
    return f"{n} day{'' if n == 1 else 's'}"


def step_when(step: LadderStep) -> str:
    """'10 days before the due date', 'the day it is requested', '5 days after the due date'."""
    if step.days == 0:
        return "the day it is requested" if step.anchor == "requested" else "the due date"
    anchor = "it is requested" if step.anchor == "requested" else "the due date"
    return f"{_days(abs(step.days))} {'before' if step.days < 0 else 'after'} {anchor}"


def recipients(roles: list[str]) -> str:
    """'the service lead', 'the professional asked for the advice and the service lead'."""
    words = [RECIPIENT_LABELS.get(r, r) for r in roles]
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def chasing(found: ServiceLadder) -> dict[str, object]:
    """What a service's page says about the ladder that chases advice asked of the service
    (``services.directory.service_ladder``): where it comes from, and its steps in words."""
    source = found.source
    view: dict[str, object] = {"own": found.own, "problem": found.problem, "rows": [],
                               "repeat": None}
    if not found.own:
        view["summary"] = (f"The council's ladder for {source.label}" if source
                           else "The council's default ladder")
    else:
        view["summary"] = "Its own ladder, instead of the council's"
    ladder = found.ladder
    if ladder is None:  # the configuration cannot be read: ``problem`` says why
        return view
    if not found.own:
        view["file"], view["table"] = found.file, found.table
        view["kind"] = source.label if source else None
    view["hour"] = fmt_hour(ladder.send_hour)
    view["rows"] = [{"step": sentence(step_label(step.name)),
                     "when": sentence(step_when(step)),
                     "to": sentence(recipients(list(step.to)))} for step in ladder.steps]
    if ladder.repeat_every_days and ladder.steps:
        view["repeat"] = {"step": sentence(step_label("repeat")),
                          "when": f"Then every {_days(ladder.repeat_every_days)} after the "
                                  "last step, until the advice arrives",
                          "to": sentence(recipients(list(ladder.repeat_to)))}
    return view


# --- the pages ------------------------------------------------------------------------------------


@router.get("/directory", response_class=HTMLResponse)
def directory_page(request: Request, session: SessionDep, done: str | None = None):
    services = d.list_services(session=session, include_inactive=True)
    groups = [(agency, AGENCY_LABELS[agency], [s for s in services if s.agency == agency])
              for agency in AGENCIES]
    return page(request, "pages/directory.html", nav="directory", done=DONE.get(done or ""),
                groups=[g for g in groups if g[2]], members=d.list_members(session=session))


SERVICE_FIELDS = {"name": "name", "agency": "agency", "team_email": "team-email",
                  "is_default": "is-default", "form": "name"}


@router.get("/directory/services/new", response_class=HTMLResponse)
def new_service_page(request: Request):
    return page(request, "pages/directory_service_new.html", nav="directory", values={},
                errors=[], field_errors={}, agencies=AGENCIES)


@router.post("/directory/services/new", response_class=HTMLResponse)
def new_service(request: Request, session: SessionDep, form: FormDep):
    values = {"name": form.get("name", ""), "agency": form.get("agency", ""),
              "team_email": form.get("team_email", ""),
              "is_default": _checked(form, "is_default")}
    try:
        body = parse(d.ServiceIn, values)
        row = apply(lambda: d.create_service(session=session, body=body))
    except FormProblems as exc:
        if "agency" in exc.problems and not values["agency"]:  # the radios say what the
            exc.problems["agency"] = "select the agency the service belongs to"  # choices are
        errors, field_errors = error_view(exc.problems, SERVICE_FIELDS)
        return page(request, "pages/directory_service_new.html", exc.status, nav="directory",
                    values=values, errors=errors, field_errors=field_errors,
                    agencies=AGENCIES)
    return see_other(f"/directory/services/{row.id}?done=service-added")


CONTACT_FIELDS = {"name": "contact-name", "email": "contact-email", "role": "contact-role",
                  "is_lead": "contact-is-lead"}


def _service_page(request: Request, session: SessionDep, service_id: str, status: int = 200,
                  values: dict | None = None, problems: dict[str, str] | None = None,
                  done: str | None = None) -> HTMLResponse:
    try:
        found = d.read_service_page(session=session, settings=request.app.state.settings,
                                    service_id=service_id)
    except DirectoryProblem as exc:
        return not_found(request, exc)
    errors, field_errors = error_view(problems or {}, CONTACT_FIELDS)
    return page(request, "pages/directory_service.html", status, nav="directory",
                s=found.service, values=values or {}, errors=errors, field_errors=field_errors,
                done=DONE.get(done or ""), chasing=chasing(found.chasing))


@router.get("/directory/services/{service_id}", response_class=HTMLResponse)
def service_page(service_id: str, request: Request, session: SessionDep,
                 done: str | None = None):
    return _service_page(request, session, service_id, done=done)


@router.post("/directory/services/{service_id}/contacts", response_class=HTMLResponse)
def add_contact(service_id: str, request: Request, session: SessionDep, form: FormDep):
    values = {"name": form.get("name", ""), "email": form.get("email", ""),
              "role": form.get("role", ""), "is_lead": _checked(form, "is_lead")}
    try:
        body = parse(d.ContactIn, values)
        apply(lambda: d.create_contact(session=session, service_id=service_id, body=body))
    except FormProblems as exc:
        return _service_page(request, session, service_id, exc.status, values, exc.problems)
    except DirectoryProblem as exc:
        return not_found(request, exc)
    return see_other(f"/directory/services/{service_id}?done=contact-added#contacts")


# Changing details. Each edit route is declared before the action route of the same shape
# (POST .../{id}/{action}), which would otherwise take 'edit' for an unknown action.


def _edit_service_page(request: Request, session: SessionDep, service_id: str,
                       status: int = 200, values: dict | None = None,
                       problems: dict[str, str] | None = None) -> HTMLResponse:
    try:
        row = d.read_service(session=session, service_id=service_id)
    except DirectoryProblem as exc:
        return not_found(request, exc)
    if values is None:
        values = {"name": row.name, "team_email": row.team_email or ""}
    errors, field_errors = error_view(problems or {}, SERVICE_FIELDS)
    return page(request, "pages/directory_service_edit.html", status, nav="directory", s=row,
                values=values, errors=errors, field_errors=field_errors)


@router.get("/directory/services/{service_id}/edit", response_class=HTMLResponse)
def edit_service_page(service_id: str, request: Request, session: SessionDep):
    return _edit_service_page(request, session, service_id)


@router.post("/directory/services/{service_id}/edit", response_class=HTMLResponse)
def edit_service(service_id: str, request: Request, session: SessionDep, form: FormDep):
    values = {"name": form.get("name", ""), "team_email": form.get("team_email", "")}
    try:
        body = parse(d.ServiceUpdate, values)
        apply(lambda: d.update_service(session=session, service_id=service_id, body=body))
    except FormProblems as exc:
        return _edit_service_page(request, session, service_id, exc.status, values,
                                  exc.problems)
    except DirectoryProblem as exc:
        return not_found(request, exc)
    return see_other(f"/directory/services/{service_id}?done=service-changed")


SERVICE_ACTIONS = {
    "default": ({"is_default": True}, "service-default"),
    "deactivate": ({"active": False}, "service-deactivated"),
    "reactivate": ({"active": True}, "service-reactivated"),
}


@router.post("/directory/services/{service_id}/{action}", response_class=HTMLResponse)
def service_action(service_id: str, action: str, request: Request, session: SessionDep):
    if action not in SERVICE_ACTIONS:
        return not_found(request, DirectoryProblem(404, "", "unknown_action"))
    change, done = SERVICE_ACTIONS[action]
    try:
        apply(lambda: d.update_service(session=session, service_id=service_id,
                                       body=d.ServiceUpdate.model_validate(change)))
    except FormProblems as exc:
        return _service_page(request, session, service_id, exc.status, problems=exc.problems)
    except DirectoryProblem as exc:
        return not_found(request, exc)
    return see_other(f"/directory/services/{service_id}?done={done}")


def _person_values(form: dict[str, str]) -> dict[str, str]:
    return {"name": form.get("name", ""), "email": form.get("email", ""),
            "role": form.get("role", "")}


def _row_values(row: ContactOut | AdqaMemberOut) -> dict[str, str]:
    return {"name": row.name, "email": row.email, "role": row.role or ""}


def _edit_contact_page(request: Request, session: SessionDep, contact_id: str,
                       status: int = 200, values: dict | None = None,
                       problems: dict[str, str] | None = None) -> HTMLResponse:
    try:
        found = d.read_contact(session=session, contact_id=contact_id)
    except DirectoryProblem as exc:
        return not_found(request, exc)
    contact, service_name = found.contact, found.service_name
    errors, field_errors = error_view(problems or {}, CONTACT_FIELDS)
    return page(request, "pages/directory_person_edit.html", status, nav="directory",
                kind="contact", person=contact, caption=f"{contact.name}, {service_name}",
                heading="Change contact details",
                action=f"/directory/contacts/{contact.id}/edit",
                back=f"/directory/services/{contact.service_id}#contacts",
                back_text=f"Back to {service_name}",
                values=_row_values(contact) if values is None else values, errors=errors,
                field_errors=field_errors)


@router.get("/directory/contacts/{contact_id}/edit", response_class=HTMLResponse)
def edit_contact_page(contact_id: str, request: Request, session: SessionDep):
    return _edit_contact_page(request, session, contact_id)


@router.post("/directory/contacts/{contact_id}/edit", response_class=HTMLResponse)
def edit_contact(contact_id: str, request: Request, session: SessionDep, form: FormDep):
    values = _person_values(form)
    try:
        body = parse(d.ContactUpdate, values)
        row = apply(lambda: d.update_contact(session=session, contact_id=contact_id,
                                             body=body))
    except FormProblems as exc:
        return _edit_contact_page(request, session, contact_id, exc.status, values,
                                  exc.problems)
    except DirectoryProblem as exc:
        return not_found(request, exc)
    return see_other(f"/directory/services/{row.service_id}?done=contact-changed#contacts")


CONTACT_ACTIONS = {
    "lead": ({"is_lead": True}, "lead-changed"),
    "deactivate": ({"active": False}, "contact-deactivated"),
    "reactivate": ({"active": True}, "contact-reactivated"),
}


@router.post("/directory/contacts/{contact_id}/{action}", response_class=HTMLResponse)
def contact_action(contact_id: str, action: str, request: Request, session: SessionDep):
    if action not in CONTACT_ACTIONS:
        return not_found(request, DirectoryProblem(404, "", "unknown_action"))
    change, done = CONTACT_ACTIONS[action]
    try:
        contact = apply(lambda: d.update_contact(session=session, contact_id=contact_id,
                                                 body=d.ContactUpdate.model_validate(change)))
    except FormProblems as exc:  # shown on the page of the contact's service
        service_id = d.read_contact(session=session, contact_id=contact_id).contact.service_id
        return _service_page(request, session, service_id, exc.status, problems=exc.problems)
    except DirectoryProblem as exc:
        return not_found(request, exc)
    return see_other(f"/directory/services/{contact.service_id}?done={done}#contacts")


MEMBER_FIELDS = {"name": "member-name", "email": "member-email", "role": "member-role"}


def _adqa_page(request: Request, session: SessionDep, status: int = 200,
               values: dict | None = None, problems: dict[str, str] | None = None,
               done: str | None = None) -> HTMLResponse:
    errors, field_errors = error_view(problems or {}, MEMBER_FIELDS)
    return page(request, "pages/directory_adqa.html", status, nav="directory",
                members=d.list_members(session=session, include_inactive=True),
                values=values or {},
                errors=errors, field_errors=field_errors, done=DONE.get(done or ""))


@router.get("/directory/adqa", response_class=HTMLResponse)
def adqa_page(request: Request, session: SessionDep, done: str | None = None):
    return _adqa_page(request, session, done=done)


@router.post("/directory/adqa", response_class=HTMLResponse)
def add_member(request: Request, session: SessionDep, form: FormDep):
    values = _person_values(form)
    try:
        body = parse(d.AdqaMemberIn, values)
        apply(lambda: d.create_member(session=session, body=body))
    except FormProblems as exc:
        return _adqa_page(request, session, exc.status, values, exc.problems)
    return see_other("/directory/adqa?done=member-added")


def _edit_member_page(request: Request, session: SessionDep, member_id: str,
                      status: int = 200, values: dict | None = None,
                      problems: dict[str, str] | None = None) -> HTMLResponse:
    try:
        member = d.read_member(session=session, member_id=member_id)
    except DirectoryProblem as exc:
        return not_found(request, exc)
    errors, field_errors = error_view(problems or {}, MEMBER_FIELDS)
    return page(request, "pages/directory_person_edit.html", status, nav="directory",
                kind="member", person=member, caption=f"{member.name}, ADQA group",
                heading="Change ADQA member details", action=f"/directory/adqa/{member.id}/edit",
                back="/directory/adqa", back_text="Back to the ADQA group",
                values=_row_values(member) if values is None else values, errors=errors,
                field_errors=field_errors)


@router.get("/directory/adqa/{member_id}/edit", response_class=HTMLResponse)
def edit_member_page(member_id: str, request: Request, session: SessionDep):
    return _edit_member_page(request, session, member_id)


@router.post("/directory/adqa/{member_id}/edit", response_class=HTMLResponse)
def edit_member(member_id: str, request: Request, session: SessionDep, form: FormDep):
    values = _person_values(form)
    try:
        body = parse(d.AdqaMemberUpdate, values)
        apply(lambda: d.update_member(session=session, member_id=member_id, body=body))
    except FormProblems as exc:
        return _edit_member_page(request, session, member_id, exc.status, values, exc.problems)
    except DirectoryProblem as exc:
        return not_found(request, exc)
    return see_other("/directory/adqa?done=member-changed")


MEMBER_ACTIONS = {
    "deactivate": ({"active": False}, "member-deactivated"),
    "reactivate": ({"active": True}, "member-reactivated"),
}


@router.post("/directory/adqa/{member_id}/{action}", response_class=HTMLResponse)
def member_action(member_id: str, action: str, request: Request, session: SessionDep):
    if action not in MEMBER_ACTIONS:
        return not_found(request, DirectoryProblem(404, "", "unknown_action"))
    change, done = MEMBER_ACTIONS[action]
    try:
        apply(lambda: d.update_member(session=session, member_id=member_id,
                                      body=d.AdqaMemberUpdate.model_validate(change)))
    except FormProblems as exc:
        return _adqa_page(request, session, exc.status, problems=exc.problems)
    except DirectoryProblem as exc:
        return not_found(request, exc)
    return see_other(f"/directory/adqa?done={done}")
