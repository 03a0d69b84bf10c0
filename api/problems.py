"""The body of every error the API answers with, defined once: ``Problem``, ``{detail, code,
errors?}``. The handlers (``api/errors.py``, ``api/auth.py``) answer with it, and the OpenAPI
document (``describe_errors``) declares it for each status an operation can answer with:

- 401 and 403 on every operation that needs a signed-in account (``api.auth``'s table);
- 404 where the path names something (a case, a plan, a service...);
- 409 on every change (a step out of order, a duplicate, a closed case);
- 400 (a body that cannot be decoded) and 413 where there is a request body; 422 wherever
  there is input;
- 503 and 504 where the case engine (Temporal) is asked (``api.deps.ClientDep``, or a route's
  own ``responses=ASKS_ENGINE``);
- 500 everywhere (a fault of the service's own: never expected, and then logged).

Statuses a route declares itself (``responses=``) keep their description; their body is this
one. ``tests/test_fuzz_api.py`` checks that each real answer matches what is declared.
"""

from __future__ import annotations

import itertools
from http import HTTPStatus
from typing import Any, Callable, Iterable, Iterator, TypeVar

from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel, Field


T = TypeVar("T")


class FieldProblem(BaseModel):
    field: str = Field(description="the field, dotted for nested ones: 'child.date_of_birth'; "
                       "'body' for the request as a whole")
    loc: list[str | int] = Field(description="where in the request, as FastAPI locates it "
                                 "('body', 'child', 'date_of_birth')")
    message: str = Field(description="what is wrong and what to do, naming the field as the "
                         "web form labels it")


class Problem(BaseModel):
    """Every error the API answers with (4xx and 5xx)."""

    detail: str = Field(description="what went wrong and what to do, in a sentence for a "
                        "person (for invalid input: every problem, in one sentence)")
    code: str = Field(description="a short code for a program: 'invalid_input', "
                      "'not_signed_in', 'forbidden', 'not_found', 'conflict', 'unavailable'...")
    errors: list[FieldProblem] = Field(
        default_factory=list, description="invalid input only: each problem, by field")


def problem(detail: str, code: str, errors: list[FieldProblem] | None = None) -> dict:
    """The JSON body of an error (``errors`` only when there are some)."""
    return Problem(detail=detail, code=code, errors=errors or []).model_dump(
        exclude_defaults=True)


# status: what it means, in the document
MEANINGS = {
    400: "The request cannot be read (its headers or form)",
    401: "Not signed in: send an API token as 'Authorization: Bearer ehc_…'",
    403: "Signed in without the role this needs (or a browser change without its CSRF token)",
    404: "Nothing has that reference or id",
    409: "It conflicts with what is recorded (a step out of order, a duplicate, a closed case)",
    413: "The request body is too large",
    422: "The input is not valid: `detail` says what to fix, `errors` each field's problem",
    500: "A fault of the service's own (logged); try again, and report it if it persists",
    503: "The case engine (Temporal) is not reachable or not running; try again shortly",
    504: "The case engine did not answer in time; what happens next is in `detail`",
}
CHANGES = {"post", "put", "patch", "delete"}
# ``responses=`` for a route that asks the case engine without ``api.deps.ClientDep`` (which
# ``describe_errors`` finds by itself): it may answer 503 or 504 too.
ASKS_ENGINE: dict[int | str, dict[str, Any]] = {503: {}, 504: {}}


def _calls(dependant, wanted: Callable) -> bool:
    return dependant.call is wanted or any(_calls(d, wanted) for d in dependant.dependencies)


def statuses(route: APIRoute, method: str, needs_role: bool, asks_engine: bool) -> set[int]:
    """The error statuses an operation can answer with (the module's docstring)."""
    found = {500}
    dependant = route.dependant
    has_input = bool(dependant.path_params or dependant.query_params or dependant.header_params
                     or dependant.cookie_params or dependant.body_params) or any(
        d.path_params or d.query_params or d.header_params or d.body_params
        for d in dependant.dependencies)
    if needs_role:
        found |= {401, 403}
    if dependant.path_params:
        found |= {404}
    if method in CHANGES:
        found |= {409}
    if dependant.body_params:
        found |= {400, 413}  # 400: a body that cannot be decoded
    if has_input or dependant.body_params:
        found |= {422}
    if asks_engine:
        found |= {503, 504}
    return found


def describe_errors(app: FastAPI, needs_role: Callable[[str, str], bool],
                    engine: Callable) -> None:
    """Make ``app.openapi()`` declare ``Problem`` for every error status of every operation
    (``needs_role(method, path)``: whether the route needs a signed-in account; ``engine``:
    the dependency that hands a route the Temporal client)."""
    default_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = default_openapi()
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        out = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, sub in out.pop("$defs", {}).items():
            schemas[name] = sub
        schemas["Problem"] = out
        for name in ("HTTPValidationError", "ValidationError"):
            schemas.pop(name, None)
        ref = {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
        routes = {(m.lower(), c.path): c.original_route
                  for c in iter_route_contexts(app.routes)
                  if isinstance(c.original_route, APIRoute) for m in c.methods or ()}
        for path, operations in schema.get("paths", {}).items():
            for method, operation in operations.items():
                route = routes.get((method, path))
                if route is None:
                    continue
                responses = operation.setdefault("responses", {})
                signed_in = needs_role(method.upper(), path)
                if not signed_in:  # open to anyone: no token asked for
                    operation.pop("security", None)
                wanted = statuses(route, method, signed_in, _calls(route.dependant, engine))
                wanted |= {int(s) for s in responses if s.isdigit() and int(s) >= 400}
                for status in sorted(wanted):
                    given = responses.get(str(status), {})
                    description = given.get("description")
                    if not description or description in ("Validation Error",
                                                          HTTPStatus(status).phrase):
                        description = MEANINGS.get(status, "An error")
                    body = ref
                    own = given.get("content", {}).get("application/json", {}).get("schema")
                    if own and own.get("$ref", "").rpartition("/")[2] not in (
                            "HTTPValidationError", "Problem"):
                        # the route's own error body (an import's rows), or a Problem
                        body = {"application/json": {"schema": {"anyOf": [
                            own, {"$ref": "#/components/schemas/Problem"}]}}}
                    responses[str(status)] = {**given, "description": description,
                                              "content": body}
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def started(rows: Iterable[T]) -> Iterator[T]:
    """``rows``, the first one read now: a streamed body (a CSV) whose query the database
    refuses answers with an error, instead of a file cut off after its headers were sent."""
    rows = iter(rows)
    try:
        first = next(rows)
    except StopIteration:
        return iter(())
    return itertools.chain((first,), rows)


OUT_OF_RANGE = ("A date in this request is too far in the past or the future to count from. "
                "Use a date within a few years of today.")


# Starlette's own refusals (no such path, a method the path does not take), in the same shape.
HTTP_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed",
              413: "too_large"}


def install(app: FastAPI, *, needs_role: Callable[[str, str], bool], engine: Callable) -> None:
    """Starlette's refusals answer with a ``Problem``; the OpenAPI document declares it
    (``describe_errors``)."""
    from starlette.exceptions import HTTPException
    from starlette.requests import Request
    from starlette.responses import JSONResponse

    @app.exception_handler(HTTPException)
    async def _http_error(_: Request, exc: HTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404 and detail == "Not Found":
            detail = "Nothing is at this address: check it against the API's documentation"
        elif exc.status_code == 405:
            detail = "This address does not take that method: see the API's documentation"
        return JSONResponse(problem(detail, HTTP_CODES.get(exc.status_code, "error")),
                            status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(OverflowError)
    async def _out_of_range(request: Request, _: OverflowError):
        """Numbers are bounded by their schemas; what is left to overflow is a day asked for
        so far off (9999-12-31, 0001-01-01) that a date counted from it has no year."""
        if not request.url.path.startswith("/api/"):
            from api.page_kit import page
            return page(request, "pages/problem.html", 422, heading="Date out of range",
                        message=OUT_OF_RANGE[:-1], back=("/", "Go to your cases"))
        return JSONResponse(problem(OUT_OF_RANGE, "invalid_input"), status_code=422)

    describe_errors(app, needs_role, engine)
