"""Errors a caseworker can act on: every 4xx carries a sentence that says what to fix.

A request the API cannot read (422) answers, for a person, ``detail``: every problem in one
sentence; and for a program, ``errors``: each problem's ``field`` (dotted: ``child.date_of_birth``),
``loc`` (where it was in the request, as FastAPI found it) and ``message``, the words the forms
show by the same field (``domain.problems``). Every error body is ``api.problems.Problem``,
and the OpenAPI document says so (``api.problems.describe_errors``).

A ``ServiceError`` on a page (any path outside ``/api/``) is a GOV.UK page saying the same
sentence (``problem_response``); the 503 and 504 of an unreachable Temporal come from
``services.temporal``. Whatever else goes wrong is caught last (``CatchAll``): logged without
personal data under a short reference, and answered with a 500 page or body naming it, never
plain text.
"""

from __future__ import annotations

import logging
import traceback
import uuid
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from markupsafe import escape
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.page_kit import page

from api.problems import FieldProblem, problem
from domain.problems import problems as read_problems
from services.errors import ServiceError

log = logging.getLogger("ehc.api")


def invalid_input(errors) -> dict:
    """The 422 body for pydantic's ``errors()``."""
    found = read_problems(errors)
    items = [FieldProblem(field=p.field, loc=list(p.loc), message=p.message) for p in found]
    return problem("Please correct: " + "; ".join(p.message for p in found), "invalid_input",
                   items)


HEADINGS = {404: "Page not found", 409: "This cannot be done now",
            500: "Sorry, there is a problem with the service",
            503: "Sorry, the service is unavailable", 504: "The change was not confirmed"}
UNEXPECTED = ("Something went wrong and nothing more was done. Try again; if it happens again, "
              "tell your system administrator")


def is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def problem_response(request: Request, status: int, message: str, code: str,
                     log_reference: str | None = None) -> Response:
    """``{detail, code}`` for the API; for a page, a GOV.UK page saying the same."""
    if is_api(request):
        detail = message + (f" (reference {log_reference})" if log_reference else "")
        return JSONResponse(problem(detail, code), status_code=status)
    heading = HEADINGS.get(status, "There is a problem" if status < 500 else HEADINGS[500])
    try:
        return page(request, "pages/problem.html", status, heading=heading, message=message,
                    log_reference=log_reference)
    except Exception:  # noqa: BLE001 - the page itself failed: plain words, still HTML
        log.exception("the problem page could not be drawn")
        return HTMLResponse(f"<!DOCTYPE html><title>{escape(heading)}</title><h1>"
                            f"{escape(heading)}</h1><p>{escape(message)}.</p>",
                            status_code=status)


def _where(exc: BaseException) -> str:
    """Where it was raised, as file:line of the last few frames: the code, never the data."""
    frames = traceback.extract_tb(exc.__traceback__)[-4:]
    return " < ".join(f"{Path(f.filename).name}:{f.lineno}" for f in reversed(frames))


class CatchAll:
    """The last resort: an exception nothing else handled is logged (its type and where, with
    a reference; never its message or values, which can quote a child's record) and answered
    with a proper 500 page or ``{detail, code}`` naming that reference, never plain text."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception as exc:  # noqa: BLE001 - the point of this class
            ref = uuid.uuid4().hex[:8].upper()
            route = getattr(scope.get("route"), "path", None) or "an unknown route"
            log.error("error %s: %s at %s, on %s %s", ref, type(exc).__name__, _where(exc),
                      scope.get("method"), route)
            if started:
                return  # the answer had begun: nothing more can be said on it
            response = problem_response(Request(scope), 500, UNEXPECTED, "internal_error",
                                        log_reference=ref)
            await response(scope, receive, send)


def install(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, exc: ServiceError) -> Response:
        return problem_response(request, exc.status, exc.message, exc.code)

    app.add_middleware(CatchAll)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(invalid_input(exc.errors()), status_code=422)
