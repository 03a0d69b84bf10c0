"""Errors a caseworker can act on: every 4xx carries a sentence that says what to fix.

A request the API cannot read (422) answers, for a person, ``detail``: every problem in one
sentence; and for a program, ``errors``: each problem's ``field`` (dotted: ``child.date_of_birth``),
``loc`` (where it was in the request, as FastAPI found it) and ``message``, the words the forms
show by the same field (``domain.problems``). The OpenAPI schema documents that body
(``InvalidInput``) in place of FastAPI's default.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from domain.problems import problems as read_problems
from services.errors import ServiceError


class FieldProblemOut(BaseModel):
    field: str = Field(description="the field, dotted for nested ones: 'child.date_of_birth'; "
                       "'body' for the request as a whole")
    loc: list[str | int] = Field(description="where in the request, as FastAPI locates it "
                                 "('body', 'child', 'date_of_birth')")
    message: str = Field(description="what is wrong and what to do, naming the field as the "
                         "web form labels it")


class InvalidInput(BaseModel):
    detail: str = Field(description="every problem, in one sentence for a person")
    code: str = Field("invalid_input", description="always 'invalid_input'")
    errors: list[FieldProblemOut]


def invalid_input(errors) -> dict:
    """The 422 body for pydantic's ``errors()``."""
    found = read_problems(errors)
    items = [FieldProblemOut(field=p.field, loc=list(p.loc), message=p.message) for p in found]
    return InvalidInput(detail="Please correct: " + "; ".join(p.message for p in found),
                        errors=items).model_dump()


def install(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def _service_error(_: Request, exc: ServiceError) -> JSONResponse:
        return JSONResponse({"detail": exc.message, "code": exc.code}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(invalid_input(exc.errors()), status_code=422)

    default_openapi = app.openapi

    def openapi() -> dict:
        """FastAPI's schema, with the 422 body this handler returns (not FastAPI's own)."""
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = default_openapi()
        schemas = schema.get("components", {}).get("schemas", {})
        if "HTTPValidationError" in schemas:
            out = InvalidInput.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, sub in out.pop("$defs", {}).items():
                schemas[name] = sub
            out["title"] = "InvalidInput"
            schemas["HTTPValidationError"] = out
            schemas.pop("ValidationError", None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
