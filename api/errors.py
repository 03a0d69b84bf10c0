"""Errors a caseworker can act on: every 4xx carries a sentence that says what to fix.

A request the API cannot read (422) answers, for a person, ``detail``: every problem in one
sentence; and for a program, ``errors``: each problem's ``field`` (dotted: ``child.date_of_birth``),
``loc`` (where it was in the request, as FastAPI found it) and ``message``, the words the forms
show by the same field (``domain.problems``). Every error body is ``api.problems.Problem``,
and the OpenAPI document says so (``api.problems.describe_errors``).
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from api.problems import FieldProblem, problem
from domain.problems import problems as read_problems
from services.errors import ServiceError


def invalid_input(errors) -> dict:
    """The 422 body for pydantic's ``errors()``."""
    found = read_problems(errors)
    items = [FieldProblem(field=p.field, loc=list(p.loc), message=p.message) for p in found]
    return problem("Please correct: " + "; ".join(p.message for p in found), "invalid_input",
                   items)


def install(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def _service_error(_: Request, exc: ServiceError) -> JSONResponse:
        return JSONResponse(problem(exc.message, exc.code), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(invalid_input(exc.errors()), status_code=422)
