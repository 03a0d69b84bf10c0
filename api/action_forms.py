"""A form for each step a caseworker can take on a case, on its page: ``/cases/{ref}/act/{step}``.

Each form is drawn from the step's own input model (``domain.case``: ``DecideToAssess``,
``ServeDraft``, ``SetMeeting``, …), so it asks for exactly what the API asks for: a date is a
GOV.UK date input, a choice is radios, a yes/no a checkbox, a piece of advice or an exception
of this case a list to choose from. What is sent goes through the same model and the same
``services.cases.act`` as the API, so the workflow's validators judge it: an impossible date
comes back on the form with the workflow's own sentence and what was typed; a step out of order,
on a closed case or already recorded otherwise shows the case page with the reason; nothing is
changed. Saved twice (a double-click, the back button) the step is taken once: the workflow
knows a step already taken exactly so (``domain.steps.repeat_of``), and each form carries a
one-time token that is the update's id. A form opens only for a step the case can take now (the
steps the case page lists); otherwise the case page says why. Requesting advice has a form of
its own (several pieces at once, each to the directory's default service or one chosen).
"""

from __future__ import annotations

import types
import typing
import uuid
from datetime import date
from enum import Enum
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ValidationError

from api.deps import SessionDep, current_actor, get_client
from services import cases
from services.directory import active_services
from services.clock import today
from services.errors import ServiceError
from services.temporal import EngineUnavailable, refusal
from api.page_kit import error_view, page, see_other
from api.pages import case_page_response
from domain.problems import FIELD_LABELS, by_field, missing
from domain.words import dates_in_words, parse_date_input
from domain.agencies import AGENCY_FOR_SOURCE
from statutory.phase import NC_YEAR_CHOICES, SETTING_TYPE_CHOICES
from domain.case import (
    ADVICE_SOURCE_INFO,
    CLOSE_REASONS,
    REQUIRED_ADVICE,
    Action,
    AdviceRequest,
    AdviceSource,
    RequestAdvice,
    ReviewAction,
    consulted_setting,
)
from domain.steps import STEP_TITLES

router = APIRouter(include_in_schema=False)

OUTCOME_ROWS = 6  # rows for outcomes on the "meeting held" form

# The final-plan step's placement, as its form labels it (the start form's "setting_name" is
# where the child is now: domain.problems.FIELD_LABELS).
FINAL_PLAN_LABELS = {
    "setting_name": "Name of the school or setting named in the plan",
    "setting_type": "Type of school or setting",
    "nc_year": "The child's year group on the day the plan was issued",
}
LABELS = {**FIELD_LABELS, **FINAL_PLAN_LABELS}  # the forms' labels: the API's fields in words
CHOICES = {
    **CLOSE_REASONS,
    "assess": "Assess", "refuse": "Refuse to assess (a notice with appeal rights follows, "
    "Reg 5(3))", "issue": "Issue a plan", "no_plan": "Not issue a plan (a notice with appeal "
    "rights follows, Reg 10)", "maintain":
    "Maintain the plan", "amend": "Amend the plan (send the proposed amendments with the "
    "decision, Reg 22(2))", "cease": "Cease the plan", "school": "A school phase "
    "(by 14 February: the Regulations say before 15 February)", "post16": "Secondary to "
    "post-16 (by 30 March: the Regulations say before 31 March)",
    "achieved": "Achieved", "on_track": "On track", "partly_achieved": "Partly achieved",
    "not_achieved": "Not achieved",
}


class Field_(BaseModel):
    """One input of a form, as the template draws it."""

    name: str
    label: str
    widget: Literal["date", "radios", "checkbox", "text", "textarea", "select", "number"]
    required: bool
    choices: list[tuple[str, str]] = []
    hint: str | None = None


# step -> (its input model, the form's title). The models are the API's own; the titles are
# the steps' names everywhere (domain.steps.STEP_TITLES). Requesting advice has a form of its own.
def _collect() -> dict[str, tuple[type[BaseModel], str]]:
    import domain.case as s

    models: dict[Action | ReviewAction, type[BaseModel]] = {
        Action.DECIDE_TO_ASSESS: s.DecideToAssess, Action.RECORD_ADVICE: s.RecordAdvice,
        Action.REPORT_ADVICE_DELAY: s.ReportAdviceDelay, Action.DECIDE_PLAN: s.DecidePlan,
        Action.SERVE_DRAFT: s.ServeDraft, Action.CONSULT_SETTING: s.ConsultSetting,
        Action.RECORD_SETTING_RESPONSE: s.RecordSettingResponse,
        Action.RECORD_FAMILY_COMMENTS: s.RecordFamilyComments, Action.ISSUE_FINAL: s.IssueFinalIn,
        Action.RECORD_EXCEPTION: s.RecordException,
        Action.WITHDRAW_EXCEPTION: s.WithdrawException, Action.CLOSE_CASE: s.CloseCase,
        ReviewAction.SET_MEETING: s.SetMeeting, ReviewAction.RECORD_INVITATIONS: s.RecordDate,
        ReviewAction.RECORD_CIRCULATED: s.RecordDate, ReviewAction.HOLD_MEETING: s.HoldMeeting,
        ReviewAction.RECORD_REPORT: s.RecordDate, ReviewAction.CONSULT_ON_CEASING: s.RecordDate,
        ReviewAction.DECIDE: s.DecideReview, ReviewAction.RECORD_AMENDMENT_COMMENTS: s.RecordDate,
        ReviewAction.ISSUE_AMENDED_PLAN: s.RecordDate, ReviewAction.DECIDE_NOT_TO_AMEND:
        s.RecordDate, ReviewAction.CEASE_PLAN: s.RecordDate, ReviewAction.CLOSE_PLAN: s.ClosePlan,
        ReviewAction.UPDATE_PLACEMENT: s.UpdatePlacement, ReviewAction.SET_PHASE_TRANSFER:
        s.SetPhaseTransfer, ReviewAction.SET_POST16_MOVE: s.SetPost16Move,
    }
    return {a.value: (model, STEP_TITLES[a.value]) for a, model in models.items()}


STEPS: dict[str, tuple[type[BaseModel], str]] = _collect()


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """(the type, whether None is allowed)."""
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return rest[0], True
    return annotation, False


def fields_of(model: type[BaseModel], case_view, prefix: str = "") -> list[Field_]:
    """The inputs of a form for ``model``, from its fields (``actor`` is the signed-in
    account, never asked)."""
    out: list[Field_] = []
    for name, info in model.model_fields.items():
        if name in ("actor", "submission_id"):
            continue
        full = prefix + name
        kind, optional = _unwrap(info.annotation)
        required = info.is_required()
        label = LABELS.get(full, name.replace("_", " ").capitalize())
        if optional and not required and "(optional)" not in label and kind is not bool:
            label += " (optional)"
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            out.extend(fields_of(kind, case_view, prefix=f"{full}."))
            continue
        if kind is date:
            out.append(Field_(name=full, label=label, widget="date", required=required))
        elif kind is bool:
            out.append(Field_(name=full, label=label, widget="checkbox", required=False))
        elif kind is int:
            out.append(Field_(name=full, label=label, widget="number", required=required))
        elif typing.get_origin(kind) is Literal:
            out.append(Field_(name=full, label=label, widget="radios", required=required,
                              choices=[(v, CHOICES.get(v, v.replace("_", " ").capitalize()))
                                       for v in typing.get_args(kind)]))
        elif isinstance(kind, type) and issubclass(kind, Enum) and name == "kind":
            out.append(Field_(name=full, label=label, widget="radios", required=required,
                              choices=[(k.value, f"{k.description} ({k.citation})")
                                       for k in kind]))
        elif name in ("setting_type", "nc_year"):
            out.append(Field_(name=full, label=label, widget="select", required=required,
                              choices=SETTING_TYPE_CHOICES if name == "setting_type"
                              else NC_YEAR_CHOICES))
        elif name in ("key", "advice_key", "exception_id"):
            out.append(Field_(name=full, label=label, widget="select", required=required,
                              choices=_case_choices(model, name, case_view)))
        elif typing.get_origin(kind) is list:
            continue  # the outcomes: rows of their own (see ``outcome_rows``)
        else:
            long = any(getattr(m, "max_length", 0) and m.max_length >= 500
                       for m in info.metadata)
            out.append(Field_(name=full, label=label, widget="textarea" if long else "text",
                              required=required))
    return out


def _case_choices(model: type[BaseModel], name: str, view) -> list[tuple[str, str]]:
    case = view.case
    if name == "exception_id":
        return [(e.id, f"Exception {e.id.removeprefix('x')}: {e.kind.description[:80]}")
                for e in case.exceptions
                if e.withdrawn_on is None] if hasattr(case, "exceptions") else []
    if model.__name__ == "RecordSettingResponse":
        return [(s.key, consulted_setting(s.key))
                for s in getattr(case, "settings_consulted", []) if s.done_on is None]
    items = [a for a in case.advice if not a.reused and (name == "advice_key" or a.is_open)]
    return [(a.key, a.label or a.source.label.capitalize()) for a in items]


def _values_to_body(fields: list[Field_], form: dict[str, str], problems: dict[str, str],
                    model: type[BaseModel]) -> dict:
    """The form's strings as the model's input: dates from their three parts, nested names
    (``placement.nc_year``) as nested objects, empty optional fields left out."""
    body: dict[str, Any] = {}
    for f in fields:
        if f.widget == "date":
            try:
                value: Any = parse_date_input(form.get(f"{f.name}-day", ""),
                                              form.get(f"{f.name}-month", ""),
                                              form.get(f"{f.name}-year", ""),
                                              f.label.removesuffix(" (optional)"))
            except ValueError as exc:
                problems[f.name] = str(exc)
                continue
            if value is None:
                if f.required:
                    problems[f.name] = missing(f.label)
                continue
        elif f.widget == "checkbox":
            value = form.get(f.name) == "yes"
        else:
            value = (form.get(f.name) or "").strip()
            if not value:
                if f.required:
                    problems[f.name] = missing(f.label, f.widget in ("radios", "select"))
                continue
        target = body
        *parents, leaf = f.name.split(".")
        for p in parents:
            target = target.setdefault(p, {})
        target[leaf] = value
    if "outcomes" in model.model_fields:
        body["outcomes"] = outcome_rows(form, problems)
    return body


def outcome_rows(form: dict[str, str], problems: dict[str, str]) -> list[dict]:
    rows = []
    for i in range(OUTCOME_ROWS):
        text = (form.get(f"outcomes.{i}.outcome") or "").strip()
        progress = form.get(f"outcomes.{i}.progress") or ""
        if not text and not progress:
            continue
        if not text or not progress:
            problems[f"outcomes.{i}.outcome"] = f"Outcome {i + 1}: give both the outcome and " \
                "how it is going, or neither"
            continue
        rows.append({"outcome": text, "progress": progress,
                     "note": (form.get(f"outcomes.{i}.note") or "").strip() or None})
    return rows


def _messages(exc: ValidationError) -> dict[str, str]:
    """The API's words for each problem (``domain.problems``), by the form's field names."""
    return {("form" if k == "body" else k): v
            for k, v in by_field(exc.errors(), LABELS).items()}


async def _view(request: Request, session, reference: str, *, acting: bool = False):
    """The case now; ``acting``: read before a step, so a 503 says the step was not taken."""
    try:
        return await cases.case_view(session=session, client=request.app.state.temporal,
                                     reference=reference)
    except EngineUnavailable:
        if acting:
            raise refusal(acting=True) from None
        raise


def _form(request: Request, reference: str, action: str, view, status: int = 200,
          values: dict | None = None, problems: dict | None = None) -> HTMLResponse:
    model, title = STEPS[action]
    fields = fields_of(model, view)
    ids = {f.name: f.name.replace(".", "-").replace("_", "-") + ("-day" if f.widget == "date"
                                                                else "") for f in fields}
    errors, field_errors = error_view(problems or {}, {**ids, "form": ids.get(
        fields[0].name, "main-content") if fields else "main-content"})
    return page(request, "pages/action_form.html", status, nav="cases", reference=reference,
                action=action, title=title, fields=fields, ids=ids, values=values or {},
                form_token=form_token(values),
                errors=errors, field_errors=field_errors, view=view,
                outcomes="outcomes" in model.model_fields, outcome_rows=OUTCOME_ROWS,
                progress=[(k, CHOICES[k]) for k in ("achieved", "on_track", "partly_achieved",
                                                    "not_achieved")],
                today=today())


def form_token(values: dict | None) -> str:
    """The one-time token a form carries: Save pressed twice, or again after the back button,
    sends the same token, and the step is taken once (``services.cases.act``'s ``key``). A form
    drawn again with its problems keeps its token: nothing was taken."""
    kept = (values or {}).get("form_token")
    return kept if isinstance(kept, str) and kept else uuid.uuid4().hex


def _has_form(action: str) -> bool:
    return action in STEPS or action == Action.REQUEST_ADVICE.value


# A refusal that is about the case, not about what was typed: the case page shows it, with what
# the case can do now; anything else comes back on the form, with what was typed kept.
ABOUT_THE_CASE = {"outoforder", "caseclosed", "case_closed", "duplicate"}


@router.get("/cases/{reference}/act/{action}", response_class=HTMLResponse)
async def action_page(reference: str, action: str, request: Request,
                      session: SessionDep) -> Response:
    """A step's form, when the case can take the step now (``view.allowed_actions``, the list
    the case page links); otherwise the case page, saying why not."""
    view = await _view(request, session, reference)
    if not _has_form(action):
        return see_other(f"/cases/{reference}")
    if action not in view.allowed_actions:
        return see_other(f"/cases/{reference}?cannot={action}#actions")
    if action == Action.REQUEST_ADVICE.value:
        return _advice_form(request, session, reference, view)
    return _form(request, reference, action, view)


async def _refused(request: Request, session, reference: str, exc: ServiceError) -> Response:
    """The case page with the refusal in its error summary (409: nothing was changed)."""
    return await case_page_response(request, session, reference, status=exc.status,
                                    problem=exc.message)


@router.post("/cases/{reference}/act/{action}", response_class=HTMLResponse)
async def action_submit(reference: str, action: str, request: Request,
                        session: SessionDep) -> Response:
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    view = await _view(request, session, reference, acting=True)
    if action == Action.REQUEST_ADVICE.value:
        return await _advice_submit(request, session, reference, view, form)
    if action not in STEPS:
        return see_other(f"/cases/{reference}")
    model, _ = STEPS[action]
    problems: dict[str, str] = {}
    body = _values_to_body(fields_of(model, view), form, problems, model)
    payload = None
    if not problems:
        try:
            payload = model.model_validate(body)
        except ValidationError as exc:
            problems.update(_messages(exc))
    if problems or payload is None:
        return _form(request, reference, action, view, 422, form, problems)
    kind = Action if view.case.kind == "assessment" else ReviewAction
    try:
        await cases.act(session=session, client=get_client(request), reference=reference,
                        action=kind(action), payload=payload, actor=current_actor(),
                        key=form.get("form_token") or None)
    except ServiceError as exc:  # the workflow's validator said no: nothing was changed
        if exc.code in ABOUT_THE_CASE:
            return await _refused(request, session, reference, exc)
        # (its sentence with any ISO date in it written as words, as on every page)
        return _form(request, reference, action, view, exc.status, form,
                     {"form": dates_in_words(exc.message)})
    return see_other(f"/cases/{reference}?done={action}")


# --- requesting advice ----------------------------------------------------------------------------


def _advice_form(request: Request, session, reference: str, view, status: int = 200,
                 values: dict | None = None, problems: dict | None = None) -> HTMLResponse:
    asked = {a.key for a in view.case.advice}
    services = active_services(session=session)
    sources = [(s, ADVICE_SOURCE_INFO[s][0], ADVICE_SOURCE_INFO[s][1],
                [x for x in services if x.agency == AGENCY_FOR_SOURCE.get(s)] if
                AGENCY_FOR_SOURCE.get(s) else [])
               for s in AdviceSource if s.value not in asked]
    errors, field_errors = error_view(problems or {}, {"sources": "sources",
                                                       "requested_on": "requested-on-day",
                                                       "form": "sources"})
    checked = set((values or {}).get("sources", [])) if values else {
        s.value for s in REQUIRED_ADVICE}
    return page(request, "pages/advice_request_form.html", status, nav="cases",
                reference=reference, sources=sources, checked=checked,
                form_token=form_token(values),
                values=values or {}, errors=errors, field_errors=field_errors,
                today=today())


async def _advice_submit(request: Request, session, reference: str, view,
                         form: dict[str, str]) -> Response:
    raw = await request.form()
    chosen = [v for v in raw.getlist("sources") if isinstance(v, str)]
    reused = {v for v in raw.getlist("reused") if isinstance(v, str)}
    values = {**form, "sources": chosen}
    problems: dict[str, str] = {}
    try:
        on = parse_date_input(form.get("requested_on-day", ""),
                              form.get("requested_on-month", ""),
                              form.get("requested_on-year", ""), "Date the requests were sent")
        if on is None:
            problems["requested_on"] = "Enter the date the requests were sent"
    except ValueError as exc:
        problems["requested_on"], on = str(exc), None
    if not chosen:
        problems["sources"] = "Select the advice to ask for"
    body = None
    if not problems:
        try:
            body = RequestAdvice(items=[AdviceRequest(
                source=AdviceSource(src), requested_on=on,  # type: ignore[arg-type]
                service_id=form.get(f"service.{src}") or None,
                reuse_existing=src in reused) for src in chosen])
        except (ValidationError, ValueError) as exc:
            problems["sources"] = str(exc).splitlines()[-1] if not isinstance(
                exc, ValidationError) else next(iter(_messages(exc).values()))
    if problems or body is None:
        return _advice_form(request, session, reference, view, 422, values, problems)
    try:
        await cases.request_advice(session=session, client=get_client(request),
                                   settings=request.app.state.settings, reference=reference,
                                   body=body, actor=current_actor(),
                                   key=form.get("form_token") or None)
    except ServiceError as exc:
        if exc.code in ABOUT_THE_CASE:
            return await _refused(request, session, reference, exc)
        return _advice_form(request, session, reference, view, exc.status, values,
                            {"form": dates_in_words(exc.message)})
    return see_other(f"/cases/{reference}?done=request_advice")
