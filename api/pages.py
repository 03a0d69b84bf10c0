"""Web pages (GOV.UK Design System, server-rendered, no JavaScript needed): the case list, a
case page (an assessment or a review cycle), the plans and their reviews, and the directory of
who owes advice with its forms.

The directory's forms go through the same request models and functions as its JSON API
(``api/directory.py``): a form is turned into the API's body, so the rules and their messages
are the same. A form with a problem is shown again with a GOV.UK error summary and the
message by each field; a form that worked redirects (303) to the page it changed.

A service, a contact and an ADQA member each have a "Change" page (``.../edit``) for their
details; a service's page also shows, read-only, the ladder that chases advice asked of it.
"""

from __future__ import annotations

from typing import Annotated, Callable
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ValidationError
from sqlmodel import Session

from api import directory as d
from api.deps import SessionDep
from api.page_kit import FormProblems, error_view, page, see_other, sentence
from domain.words import parse_date_input
from api.reviews import ACTION_PATHS
from services import cases, reviews
from services.clock import today
from services.errors import ServiceError
from store import tables as t
from domain.agencies import AGENCIES, AGENCY_FOR_SOURCE, AGENCY_LABELS
from services.directory import (
    DEFAULT_ESCALATION_FILE,
    ConfigError,
    escalation_file,
    load_escalation,
)
from domain.ladder import RECIPIENT_LABELS, Ladder, LadderStep, step_label
from domain.case import AdviceSource
from config.settings import Settings

router = APIRouter(include_in_schema=False)

# --- cases ----------------------------------------------------------------------------------------


@router.get("/cases/{reference}", response_class=HTMLResponse)
async def case_page(reference: str, request: Request, session: SessionDep) -> HTMLResponse:
    try:
        facts = await cases.read_case_page(session=session, client=request.app.state.temporal,
                                           reference=reference)
    except ServiceError as exc:
        if exc.status != 404:
            raise
        return page(request, "pages/not_found.html", 404, nav="cases",
                    heading="Case not found", message=exc.message,
                    back=("/cases", "See every case"))
    from api.action_forms import STEPS  # the forms import this module

    case = facts.case
    review = case.view.case.kind == "review"
    steps = {a: STEPS[a][1] for a in case.view.allowed_actions if a in STEPS}
    if "request_advice" in case.view.allowed_actions:
        steps = {"request_advice": "Request advice (Regs 6, 8)", **steps}
    done = request.query_params.get("done")
    notice = "The case has started: its deadlines are below" if \
        request.query_params.get("started") else (
            f"Saved: {STEPS[done][1][0].lower()}{STEPS[done][1][1:]}" if done in STEPS else
            "Saved: advice requested" if done == "request_advice" else None)
    return page(request, "pages/case.html", nav="plans" if review else "cases", c=case,
                owed_by=facts.owed_by, action_paths=ACTION_PATHS if review else {},
                steps=steps, notice=notice, holder=facts.caseworker, school=facts.school)


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
        if text.isdigit() and 2014 <= int(text) <= 2100:
            year = int(text)
        else:
            problems["transfer_year"] = "Phase transfer year must be a year, for example 2027"
    number = int(page_number) if page_number.isdigit() and int(page_number) > 0 else 1
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
    return page(request, "pages/plan.html", nav="plans", p=plan, today=today())


# --- the directory: forms -------------------------------------------------------------------------


async def form_fields(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


FormDep = Annotated[dict[str, str], Depends(form_fields)]

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


def parse(model: type[BaseModel], data: dict[str, object]):
    """The API's request model built from a form: the same rules, the same messages."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise FormProblems(d.field_problems(exc), 422) from None


def apply(session: Session, change: Callable[[], object]) -> object:
    """Run one of ``api.directory``'s changes and commit it; its refusal becomes the form's."""
    try:
        result = change()
        session.commit()
        return result
    except d.DirectoryProblem as exc:
        session.rollback()
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


def not_found(request: Request, exc: d.DirectoryProblem) -> HTMLResponse:
    return page(request, "pages/directory_not_found.html", 404, nav="directory",
                message=NOT_FOUND.get(exc.code, "There is nothing at this address: check "
                                      "the link"))


def _checked(form: dict[str, str], name: str) -> bool:
    return form.get(name) == "yes"


# --- the directory: how a service's advice is chased ---------------------------------------------

# The kind of advice each agency's services give (``AGENCY_FOR_SOURCE`` the other way round),
# whose configured ladder chases advice asked of them. An agency that gives no one kind of
# advice ('other') is chased by the default ladder.
SOURCE_FOR_AGENCY: dict[str, AdviceSource] = {
    agency: source for source, agency in AGENCY_FOR_SOURCE.items() if agency is not None}


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


def chasing(settings: Settings, service: d.ServiceDetail) -> dict[str, object]:
    """What a service's page says about the ladder that chases advice asked of the service:
    the ladder ``services.directory.resolve_request`` would copy onto such a request (the
    service's own, else the configured one for its agency's kind of advice), where it comes
    from, and its steps in words."""
    source = SOURCE_FOR_AGENCY.get(service.agency)
    kind = source.value if source else "default"
    override = Ladder.model_validate(service.ladder) if service.ladder else None
    view: dict[str, object] = {"own": override is not None, "problem": None, "rows": [],
                               "repeat": None}
    if override is None:
        view["summary"] = (f"The council's ladder for {source.label}" if source
                           else "The council's default ladder")
    else:
        view["summary"] = "Its own ladder, instead of the council's"
    try:
        config = load_escalation(settings)
    except ConfigError as exc:
        if override is None:
            view["problem"] = str(exc)
            return view
        ladder = override
    else:
        ladder = config.for_source(kind, override)
    if override is None:
        path = escalation_file(settings)
        view["file"] = "config/escalation.toml" if path == DEFAULT_ESCALATION_FILE else str(path)
        view["table"] = kind if kind in config.ladders else "default"
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


# --- the directory: pages -------------------------------------------------------------------------


@router.get("/directory", response_class=HTMLResponse)
def directory_page(request: Request, session: SessionDep, done: str | None = None):
    services = d.list_services(session, include_inactive=True)
    groups = [(agency, AGENCY_LABELS[agency], [s for s in services if s.agency == agency])
              for agency in AGENCIES]
    return page(request, "pages/directory.html", nav="directory", done=DONE.get(done or ""),
                groups=[g for g in groups if g[2]], members=d.list_members(session))


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
        row = apply(session, lambda: d.create_service(session, body))
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


def _service_page(request: Request, session: Session, service_id: str, status: int = 200,
                  values: dict | None = None, problems: dict[str, str] | None = None,
                  done: str | None = None) -> HTMLResponse:
    try:
        service = d.service_detail(session, d.get_service(session, service_id))
    except d.DirectoryProblem as exc:
        return not_found(request, exc)
    errors, field_errors = error_view(problems or {}, CONTACT_FIELDS)
    return page(request, "pages/directory_service.html", status, nav="directory",
                s=service, values=values or {}, errors=errors, field_errors=field_errors,
                done=DONE.get(done or ""), chasing=chasing(request.app.state.settings, service))


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
        apply(session, lambda: d.create_contact(session, service_id, body))
    except FormProblems as exc:
        return _service_page(request, session, service_id, exc.status, values, exc.problems)
    except d.DirectoryProblem as exc:
        return not_found(request, exc)
    return see_other(f"/directory/services/{service_id}?done=contact-added#contacts")


# Changing details. Each edit route is declared before the action route of the same shape
# (POST .../{id}/{action}), which would otherwise take 'edit' for an unknown action.


def _edit_service_page(request: Request, session: Session, service_id: str, status: int = 200,
                       values: dict | None = None,
                       problems: dict[str, str] | None = None) -> HTMLResponse:
    try:
        row = d.get_service(session, service_id)
    except d.DirectoryProblem as exc:
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
        apply(session, lambda: d.update_service(session, service_id, body))
    except FormProblems as exc:
        return _edit_service_page(request, session, service_id, exc.status, values,
                                  exc.problems)
    except d.DirectoryProblem as exc:
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
        return not_found(request, d.DirectoryProblem(404, "", "unknown_action"))
    change, done = SERVICE_ACTIONS[action]
    try:
        apply(session, lambda: d.update_service(session, service_id,
                                                d.ServiceUpdate.model_validate(change)))
    except FormProblems as exc:
        return _service_page(request, session, service_id, exc.status, problems=exc.problems)
    except d.DirectoryProblem as exc:
        return not_found(request, exc)
    return see_other(f"/directory/services/{service_id}?done={done}")


def _person_values(form: dict[str, str]) -> dict[str, str]:
    return {"name": form.get("name", ""), "email": form.get("email", ""),
            "role": form.get("role", "")}


def _row_values(row: t.Contact | t.AdqaMember) -> dict[str, str]:
    return {"name": row.name, "email": row.email, "role": row.role or ""}


def _edit_contact_page(request: Request, session: Session, contact_id: str, status: int = 200,
                       values: dict | None = None,
                       problems: dict[str, str] | None = None) -> HTMLResponse:
    try:
        contact = d.get_contact(session, contact_id)
        service = d.get_service(session, contact.service_id)
    except d.DirectoryProblem as exc:
        return not_found(request, exc)
    errors, field_errors = error_view(problems or {}, CONTACT_FIELDS)
    return page(request, "pages/directory_person_edit.html", status, nav="directory",
                kind="contact", person=contact, caption=f"{contact.name}, {service.name}",
                heading="Change contact details",
                action=f"/directory/contacts/{contact.id}/edit",
                back=f"/directory/services/{service.id}#contacts",
                back_text=f"Back to {service.name}",
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
        row = apply(session, lambda: d.update_contact(session, contact_id, body))
    except FormProblems as exc:
        return _edit_contact_page(request, session, contact_id, exc.status, values,
                                  exc.problems)
    except d.DirectoryProblem as exc:
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
        return not_found(request, d.DirectoryProblem(404, "", "unknown_action"))
    change, done = CONTACT_ACTIONS[action]
    try:
        contact = d.get_contact(session, contact_id)
        service_id = contact.service_id
        apply(session, lambda: d.update_contact(session, contact_id,
                                                d.ContactUpdate.model_validate(change)))
    except FormProblems as exc:
        return _service_page(request, session, service_id, exc.status, problems=exc.problems)
    except d.DirectoryProblem as exc:
        return not_found(request, exc)
    return see_other(f"/directory/services/{service_id}?done={done}#contacts")


MEMBER_FIELDS = {"name": "member-name", "email": "member-email", "role": "member-role"}


def _adqa_page(request: Request, session: Session, status: int = 200,
               values: dict | None = None, problems: dict[str, str] | None = None,
               done: str | None = None) -> HTMLResponse:
    errors, field_errors = error_view(problems or {}, MEMBER_FIELDS)
    return page(request, "pages/directory_adqa.html", status, nav="directory",
                members=d.list_members(session, include_inactive=True), values=values or {},
                errors=errors, field_errors=field_errors, done=DONE.get(done or ""))


@router.get("/directory/adqa", response_class=HTMLResponse)
def adqa_page(request: Request, session: SessionDep, done: str | None = None):
    return _adqa_page(request, session, done=done)


@router.post("/directory/adqa", response_class=HTMLResponse)
def add_member(request: Request, session: SessionDep, form: FormDep):
    values = _person_values(form)
    try:
        body = parse(d.AdqaMemberIn, values)
        apply(session, lambda: d.create_member(session, body))
    except FormProblems as exc:
        return _adqa_page(request, session, exc.status, values, exc.problems)
    return see_other("/directory/adqa?done=member-added")


def _edit_member_page(request: Request, session: Session, member_id: str, status: int = 200,
                      values: dict | None = None,
                      problems: dict[str, str] | None = None) -> HTMLResponse:
    try:
        member = d.get_member(session, member_id)
    except d.DirectoryProblem as exc:
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
        apply(session, lambda: d.update_member(session, member_id, body))
    except FormProblems as exc:
        return _edit_member_page(request, session, member_id, exc.status, values, exc.problems)
    except d.DirectoryProblem as exc:
        return not_found(request, exc)
    return see_other("/directory/adqa?done=member-changed")


MEMBER_ACTIONS = {
    "deactivate": ({"active": False}, "member-deactivated"),
    "reactivate": ({"active": True}, "member-reactivated"),
}


@router.post("/directory/adqa/{member_id}/{action}", response_class=HTMLResponse)
def member_action(member_id: str, action: str, request: Request, session: SessionDep):
    if action not in MEMBER_ACTIONS:
        return not_found(request, d.DirectoryProblem(404, "", "unknown_action"))
    change, done = MEMBER_ACTIONS[action]
    try:
        apply(session, lambda: d.update_member(session, member_id,
                                               d.AdqaMemberUpdate.model_validate(change)))
    except FormProblems as exc:
        return _adqa_page(request, session, exc.status, problems=exc.problems)
    except d.DirectoryProblem as exc:
        return not_found(request, exc)
    return see_other(f"/directory/adqa?done={done}")
