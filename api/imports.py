"""``POST /api/imports/plans``: the plans import of ``ehc import plans`` (docs/import.md), for a
file uploaded through the API."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import SQLAlchemyError
from temporalio.client import Client

from services.plan_import import (
    ImportResult,
    ImportSummary,
    RowResult,
    TemporalUnavailable,
    import_plans,
)
from api.deps import SettingsDep
from services.clock import today
from services.errors import ServiceError
from services.plan_file import RowError, RowIssue

router = APIRouter(prefix="/api/imports", tags=["imports"])

MAX_UPLOAD = 64 * 1024 * 1024  # 20,000 plans are about 5 MB


class IssueOut(BaseModel):
    kind: str = Field(description="error (stops the import, or that row with skip_bad_rows) "
                      "or warning")
    line: int | None = Field(description="the file's line; 1 is the header; None: the file")
    column: str | None
    message: str
    value: str | None = Field(None, description="the cell as written; left out (null) when "
                              "the column is personal data (names, date of birth, person id)")
    personal: bool


class ImportOut(BaseModel):
    summary: ImportSummary
    errors: list[IssueOut]
    warnings: list[IssueOut]
    rows: list[RowResult] = Field(description="each valid row: created, already_imported or "
                                  "failed (run the import again), with notes")


class ImportProblem(BaseModel):
    detail: str
    code: str
    summary: ImportSummary
    errors: list[IssueOut]
    warnings: list[IssueOut]


def _issue(issue: RowIssue) -> IssueOut:
    return IssueOut(kind="error" if isinstance(issue, RowError) else "warning", line=issue.line,
                    column=issue.column, message=issue.message, personal=issue.personal,
                    value=None if issue.personal else issue.value)


def _out(result: ImportResult) -> ImportOut:
    return ImportOut(summary=result.summary,
                     errors=[_issue(e) for e in result.report.errors],
                     warnings=[_issue(w) for w in result.report.warnings],
                     rows=result.results)


@router.post(
    "/plans", response_model=ImportOut,
    summary="Import existing EHC plans from a CSV file; each starts its annual review",
    description="The file of docs/import.md, as a multipart upload (`file`). It is validated "
    "first: a file with errors imports nothing (422, with every error) unless `skip_bad_rows` "
    "is true, which imports the valid rows and reports the others. `dry_run` validates only. "
    "Sending the same file again is safe: plans already in are reported `already_imported` "
    "and left as they are. Error and warning `value`s are never given for personal columns.",
    responses={422: {"model": ImportProblem, "description": "the file has errors: nothing "
                     "was imported"},
               413: {"description": "the file is too large"},
               503: {"description": "Temporal is not reachable: nothing was imported"}},
)
async def import_plans_upload(
    request: Request,
    settings: SettingsDep,
    file: Annotated[UploadFile, File(description="the plans CSV file")],
    skip_bad_rows: Annotated[bool, Form(description="import the valid rows even if others "
                                        "have errors")] = False,
    dry_run: Annotated[bool, Form(description="validate only; import nothing")] = False,
):
    if file.size is not None and file.size > MAX_UPLOAD:
        raise ServiceError(413, f"The file is {file.size // (1024 * 1024)} MB; the limit is "
                       f"{MAX_UPLOAD // (1024 * 1024)} MB. Split it into several files (each "
                       "is safe to import on its own).", "too_large")
    client: Client | None = request.app.state.temporal
    if client is None and not dry_run:
        raise ServiceError(503, "The case engine (Temporal) is not reachable; nothing was imported. "
                       "Try again shortly", "unavailable")
    try:
        result = await import_plans(file.file, settings=settings, client=client, today=today(),
                                    skip_bad_rows=skip_bad_rows, dry_run=dry_run)
    except TemporalUnavailable:
        raise ServiceError(503, "The case engine (Temporal) is not reachable; nothing was imported. "
                       "Try again shortly", "unavailable") from None
    except SQLAlchemyError as exc:  # not chained or logged: its text can quote the rows
        raise ServiceError(503, f"The database cannot be used ({type(exc).__name__}); plans "
                       "already started are kept, and sending the file again starts only the "
                       "rest", "unavailable") from None
    if result.blocked:
        s = result.summary
        problem = ImportProblem(
            detail=f"The file has {s.errors} error{'s' if s.errors != 1 else ''}; nothing was "
            "imported. Fix them and send it again"
            + (f", or send skip_bad_rows=true to import the {s.valid} valid rows" if s.valid
               else "") + ".",
            code="invalid_file", summary=s,
            errors=[_issue(e) for e in result.report.errors],
            warnings=[_issue(w) for w in result.report.warnings])
        return JSONResponse(problem.model_dump(mode="json"), status_code=422)
    return _out(result)
