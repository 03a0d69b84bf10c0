"""What is wrong with what someone sent, in words: one table of the fields as the forms label
them, and one function that turns a pydantic validation error into a sentence that names the
field that way and says what to do.

The pages (every form) and the API's 422 answers (``api.errors``) both use ``problems``: a
program reads each problem's ``field``/``loc``, a person its ``message``. A model's own check
that is about one field raises ``FieldProblem(field, sentence)`` (a ``ValueError``, so
pydantic reports it as usual) and the problem is put by that field.

Pure (the standard library), like ``domain.words``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# Each field as its form labels it (for the API, the same words). A dotted name is a nested
# field (``child.given_name``); a field is looked up by its full name, then by its last part.
FIELD_LABELS: dict[str, str] = {
    # starting an assessment (pages/start_assessment.html)
    "child.given_name": "Child's given name", "given_name": "Child's given name",
    "child.family_name": "Child's family name", "family_name": "Child's family name",
    "child.date_of_birth": "Date of birth", "date_of_birth": "Date of birth",
    "child.council_reference": "Council person id", "council_reference": "Council person id",
    "request_date": "Date the request was received",
    "request_source": "Who made the request", "setting_name": "School or setting now",
    "caseworker_id": "Caseworker", "case_reference": "Your own reference",
    # a case's steps (api/action_forms.py draws its forms from these)
    "decision": "Decision", "decided_on": "Date of the decision", "reason": "Reason",
    "served_on": "Date the draft plan was served", "issued_on": "Date the final plan was issued",
    "received_on": "Date it was received", "setting": "School or college",
    "sent_on": "Date the consultation was sent", "kind": "Kind of exception",
    "starts_on": "Exception starts", "ends_on": "Exception ends (optional)",
    "evidence": "Evidence (optional)", "advice_key": "The advice it concerns (Reg 8(2) only)",
    "exception_id": "Exception", "withdrawn_on": "Date withdrawn", "closed_on": "Date closed",
    "note": "Note (optional)", "key": "Which one", "meeting_on": "Date of the meeting",
    "on": "Date", "held_on": "Date the meeting was held", "moves_on": "Date of the move",
    "proceed_with_outstanding_advice": "Go ahead although advice is still outstanding",
    "placement.nc_year": "Year group (N1, N2, R, 1 to 14)",
    "placement.nc_year_as_of": "Year group correct on",
    "placement.setting_type": "Type of setting",
    "placement.setting_name": "Name of the school or setting (optional)",
    "transfer.kind": "Transfer", "transfer.transfer_year": "Calendar year of the transfer",
    # the final-plan step's placement (its form says "named in the plan": api.action_forms)
    "setting_type": "Type of school or setting", "nc_year": "Year group",
    "expected_on": "Expected on (optional)", "outcomes": "Outcomes",
    "outcome": "Outcome", "progress": "How it is going",
    # requesting advice (pages/advice_request_form.html; the API's items)
    "items": "Advice to ask for", "sources": "Advice to ask for", "source": "Kind of advice",
    "requested_on": "Date the requests were sent", "label": "Which advisor",
    "service_id": "Service asked", "contact_id": "Professional asked",
    "reuse_existing": "Reuse existing advice", "send_request_email": "Email the request",
    # the directory (pages/directory_*.html)
    "name": "Name", "agency": "Agency", "team_email": "Team email address",
    "is_default": "Default service", "email": "Email address", "role": "Role",
    "is_lead": "Service lead", "active": "Active", "ladder": "Escalation ladder",
    # the API's query parameters, named as the pages' filters are (with the parameter's name)
    "from": "Start of the period (from)", "to": "End of the period (to)",
    "year": "Year of transfer", "week_ending": "Week ending", "due_before": "Review due before",
    "limit": "Number of rows (limit)", "offset": "Rows to skip (offset)",
}

# What a field that is one of a set of choices is called when nothing was chosen ("Select ...").
CHOICE_FIELDS = frozenset({
    "decision", "kind", "request_source", "caseworker_id", "exception_id", "key", "advice_key",
    "transfer.kind", "placement.setting_type", "agency", "items", "sources", "source",
    "progress", "setting_type", "nc_year",
})

# What a field written in a pattern must look like.
PATTERN_HINTS = {
    "case_reference": "must be 3 to 20 capital letters, digits and hyphens, like EHC-004127 "
                      "(not starting or ending with a hyphen)",
}


class FieldProblem(ValueError):
    """A model's own check that is about one field: ``field`` is its dotted name
    (``child.date_of_birth``), ``message`` a whole sentence naming it as its form does."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field, self.message = field, message


@dataclass(frozen=True)
class Problem:
    """One thing wrong: ``field`` (dotted, for a program and for the form's field), ``loc``
    (pydantic's location, as sent) and ``message`` (an English sentence)."""

    field: str
    loc: tuple[str | int, ...]
    message: str

    @property
    def path(self) -> str:
        """The field with its list positions (``outcomes.0.outcome``): a form's input name."""
        parts = [str(p) for p in self.loc if p not in ("body", "query", "path", "form")]
        return ".".join(parts) if parts and self.field not in ("form", "body") else self.field


def label(field: str, labels: Mapping[str, str] | None = None) -> str:
    """The field's label as its form shows it, without "(optional)"."""
    tables = [labels or {}, FIELD_LABELS]
    leaf = field.rsplit(".", 1)[-1]
    for key in (field, leaf):
        for table in tables:
            if key in table:
                return table[key].removesuffix(" (optional)")
    return leaf.replace("_", " ").capitalize()


def _object(text: str) -> str:
    """A label as the object of "Enter"/"Select": "Enter the date of the decision"."""
    lowered = text[:1].lower() + text[1:] if not text[1:2].isupper() else text
    if lowered.split(" ", 1)[0] in ("the", "a", "an", "your", "who", "which", "how"):
        return lowered
    return f"the {lowered}"


def missing(field_label: str, choose: bool = False) -> str:
    """What a form says of a field left empty: "Enter the date of the decision", "Select the
    decision"."""
    return f"{'Select' if choose else 'Enter'} {_object(field_label.removesuffix(' (optional)'))}"


def _field_of(loc: Iterable[Any]) -> tuple[str, tuple[str | int, ...]]:
    loc = tuple(loc)
    named = [str(p) for p in loc if not isinstance(p, int)
             and p not in ("body", "query", "path", "form")]
    return ".".join(named), loc


def sentence_for(err: Mapping[str, Any], labels: Mapping[str, str] | None = None) -> Problem:
    """One pydantic error (an item of ``ValidationError.errors()``) as a ``Problem``."""
    field, loc = _field_of(err.get("loc", ()))
    kind = str(err.get("type", ""))
    ctx = err.get("ctx") or {}
    error = ctx.get("error")
    if isinstance(error, FieldProblem):
        return Problem(error.field, loc, sentence(error.message))
    if kind == "value_error":
        message = str(err.get("msg", "")).removeprefix("Value error, ")
        return Problem(field or "form", loc, sentence(message))
    if kind == "json_invalid":
        return Problem("body", loc, "The request body is not valid JSON: check its brackets, "
                       "commas and quotes")
    if not field:
        return Problem("body", loc, "Send the details as a JSON object")
    name = label(field, labels)
    choose = field in CHOICE_FIELDS or field.rsplit(".", 1)[-1] in CHOICE_FIELDS
    if kind in ("missing", "string_too_short") and (kind == "missing"
                                                     or ctx.get("min_length") == 1):
        message = missing(name, choose)
    elif kind == "too_short":
        message = f"{'Select' if choose else 'Enter'} at least {ctx.get('min_length', 1)}: " \
                  f"{_object(name)}"
    elif kind == "string_too_short":
        message = f"{name} must be at least {ctx.get('min_length')} characters"
    elif kind in ("string_too_long", "too_long"):
        unit = " characters" if kind == "string_too_long" else ""
        message = f"{name} must be {ctx.get('max_length')}{unit} or fewer"
    elif kind == "string_pattern_mismatch":
        message = f"{name} {PATTERN_HINTS.get(field.rsplit('.', 1)[-1], 'is not written in the form it takes')}"
    elif kind in ("date_parsing", "date_from_datetime_parsing", "date_from_datetime_inexact",
                  "date_type"):
        message = f"{name} must be a real date written as YYYY-MM-DD, for example 2026-03-09"
    elif kind in ("int_parsing", "int_type", "int_from_float"):
        message = f"{name} must be a whole number, like 2027"
    elif kind in ("greater_than_equal", "greater_than"):
        message = f"{name} must be {ctx.get('ge', ctx.get('gt'))} or more"
    elif kind in ("less_than_equal", "less_than"):
        message = f"{name} must be {ctx.get('le', ctx.get('lt'))} or less"
    elif kind in ("bool_parsing", "bool_type"):
        message = f"{name} must be yes or no (true or false)"
    elif kind in ("enum", "literal_error"):
        chosen = err.get("input") not in (None, "")
        message = f"Select {_object(name)}" + (
            f": {_choices(ctx.get('expected', ''))}" if chosen else "")
    elif kind == "extra_forbidden":
        message = f"Leave out {field}: it is not one of the details this takes"
    elif kind in ("model_type", "model_attributes_type", "dict_type"):
        message = f"{name} must be a JSON object"
    elif kind == "list_type":
        message = f"{name} must be a list"
    elif kind in ("string_type",):
        message = f"{name} must be text"
    else:
        message = f"{name}: {err.get('msg', 'is not valid')}"
    positions = [(i, p) for i, p in enumerate(loc) if isinstance(p, int)]
    if positions:  # which one of a list: "Advice to ask for 2: ..."
        i, n = positions[-1]
        parent, _ = _field_of(loc[:i])
        message = f"{label(parent, labels)} {n + 1}: {message}"
    return Problem(field, loc, sentence(message))


def _choices(expected: str) -> str:
    """pydantic's "'assess' or 'refuse'" as "one of assess or refuse"."""
    return f"one of {expected.replace(chr(39), '')}" if expected else "choose one of the options"


def sentence(message: str) -> str:
    """A message as the start of a sentence: a capital first letter, the rest as written (an
    email address that begins it is left as it is written)."""
    first = message.split(" ", 1)[0]
    return message if "@" in first else message[:1].upper() + message[1:]


def problems(errors: Iterable[Mapping[str, Any]],
             labels: Mapping[str, str] | None = None) -> list[Problem]:
    """Every error as a ``Problem``, in order."""
    return [sentence_for(e, labels) for e in errors]


def by_field(errors: Iterable[Mapping[str, Any]],
             labels: Mapping[str, str] | None = None) -> dict[str, str]:
    """{field: message}, the first problem for each field: what a form shows by each field.
    A field in a list is named with its position (``outcomes.0.outcome``), as a form's input."""
    out: dict[str, str] = {}
    for p in problems(errors, labels):
        out.setdefault(p.path if p.loc and any(isinstance(x, int) for x in p.loc)
                       and not isinstance(p.loc[-1], int) else p.field, p.message)
    return out
