"""What every staff page is drawn with: the page itself (GOV.UK Design System, server-rendered,
with who is signed in and the CSRF token for its forms), a redirect after a change, and the
GOV.UK error summary of a form that has problems.

Dates, times and sizes on every page come from ``domain.words`` through the template
environment's ``day``, ``when``, ``size`` and ``in_words`` (``services.rendering``): "13 October
2026", "13 October 2026 at 8:15am".
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from markupsafe import Markup, escape

from domain.ladder import RECIPIENT_LABELS, step_label
from domain.words import transfer_deadline, transfer_law
from domain.agencies import AGENCY_LABELS
from domain.problems import sentence
from services.rendering import render


def page(request: Request, name: str, status: int = 200, **context: object) -> HTMLResponse:
    """A page, with what every page needs: who is signed in (for the navigation and the
    sign-out button) and their session's CSRF token for every form that posts."""
    settings = request.app.state.settings
    staff = getattr(request.state, "staff", None)
    token = staff.csrf_token if staff is not None and staff.csrf_token else ""
    csrf_input = Markup(f'<input type="hidden" name="csrf_token" value="{escape(token)}">')
    return HTMLResponse(render(
        name, council_name=settings.council_name, agency_labels=AGENCY_LABELS,
        step_label=step_label, recipient_labels=RECIPIENT_LABELS,
        transfer_deadline=transfer_deadline, transfer_law=transfer_law,
        staff=staff, csrf_input=csrf_input, csrf_token=token, **context,
    ), status_code=status)


def see_other(url: str) -> RedirectResponse:
    """After a change: the page it changed (303, so a reload does not post again)."""
    return RedirectResponse(url, status_code=303)


class FormProblems(Exception):
    """What is wrong with a form: {field: message}, and the HTTP status to answer with."""

    def __init__(self, problems: dict[str, str], status: int) -> None:
        self.problems, self.status = problems, status


def error_view(problems: dict[str, str], fields: dict[str, str]) -> tuple[list, dict]:
    """GOV.UK error summary items (in the form's order, each linking to its field) and the
    message by each field. ``fields`` maps a field to the id of its input."""
    order = list(fields)
    items = sorted(problems.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order
                   else len(order))
    summary = [{"text": sentence(msg), "href": f"#{fields[f]}" if f in fields else None}
               for f, msg in items]
    return summary, {f: sentence(msg) for f, msg in problems.items()}
