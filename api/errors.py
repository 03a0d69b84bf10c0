"""Errors a caseworker can act on: every 4xx carries a sentence that says what to fix."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from services.errors import ServiceError

_HINTS = {
    "date_from_datetime_parsing": "write the date as YYYY-MM-DD, e.g. 2026-03-09",
    "date_parsing": "write the date as YYYY-MM-DD, e.g. 2026-03-09",
    "date_type": "write the date as YYYY-MM-DD, e.g. 2026-03-09",
    "missing": "this field is required",
    "json_invalid": "the request body is not valid JSON",
}


def _field(loc: tuple) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    return ".".join(parts) or "body"


def install(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def _service_error(_: Request, exc: ServiceError) -> JSONResponse:
        return JSONResponse({"detail": exc.message, "code": exc.code}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for err in exc.errors():
            hint = _HINTS.get(err.get("type", ""), err.get("msg", "invalid"))
            if err.get("type") == "value_error":
                hint = str(err.get("msg", "")).removeprefix("Value error, ")
            problems.append({"field": _field(tuple(err.get("loc", ()))), "message": hint})
        summary = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
        return JSONResponse(
            {"detail": f"Please correct: {summary}", "code": "invalid_input", "errors": problems},
            status_code=422,
        )
