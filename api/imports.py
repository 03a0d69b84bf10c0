"""``POST /api/imports/plans``: the plans import of ``ehc import plans`` (docs/import.md), for a
file uploaded through the API (``services.plan_import.import_upload``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse

from api.deps import SettingsDep
from services.clock import today
from services.errors import ServiceError
from services.plan_import import ImportOut, ImportProblem, import_upload

router = APIRouter(prefix="/api/imports", tags=["imports"])

MAX_UPLOAD = 64 * 1024 * 1024  # 20,000 plans are about 5 MB


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
    out = await import_upload(source=file.file, settings=settings,
                              client=request.app.state.temporal,
                              today=today(), skip_bad_rows=skip_bad_rows, dry_run=dry_run)
    if isinstance(out, ImportProblem):
        return JSONResponse(out.model_dump(mode="json"), status_code=422)
    return out
