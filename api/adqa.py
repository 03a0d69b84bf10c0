"""The ADQA weekly digest on the web: ``GET /adqa/digest`` (a GOV.UK page) and
``GET /api/adqa/digest`` (JSON). Both take ``?week_ending=YYYY-MM-DD``; without it, the week
the latest digest email was for."""

from __future__ import annotations

import re
from datetime import date
from functools import lru_cache

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from services.digest import (
    Digest,
    DigestScheduleSettings,
    build_digest,
    current_week_ending,
)
from domain.words import long_date, long_time
from services.rendering import render
from services.clock import today as today_in_england
from services.errors import ServiceError
from store.db import session_for

router = APIRouter(tags=["adqa"])


@lru_cache
def _schedule_settings() -> DigestScheduleSettings:
    return DigestScheduleSettings()


def _check(week_ending: date | None) -> date:
    today = today_in_england()
    if week_ending is None:
        return current_week_ending(today, _schedule_settings())
    if week_ending > today:
        raise ValueError(f"week_ending {week_ending.isoformat()} is in the future: choose a "
                         "week that has happened")
    return week_ending


def _digest(request: Request, week_ending: date) -> Digest:
    with session_for(request.app.state.settings.db_url) as session:
        return build_digest(session, week_ending)


@router.get("/api/adqa/digest", response_model=Digest,
            summary="The ADQA digest: overdue advice by agency and service, and compliance")
def digest_json(request: Request, week_ending: date | None = Query(
        None, description="the last day of the week, YYYY-MM-DD (default: the week just "
        "ended, as in the weekly email)")) -> Digest:
    try:
        day = _check(week_ending)
    except ValueError as exc:
        raise ServiceError(422, str(exc), "invalid_input") from None
    return _digest(request, day)


@router.get("/adqa/digest", response_class=HTMLResponse, include_in_schema=False)
def digest_page(request: Request, week_ending: str | None = None) -> HTMLResponse:
    settings = request.app.state.settings
    text = (week_ending or "").strip()
    ctx = {"nav": "adqa", "council_name": settings.council_name, "long_date": long_date,
           "long_time": long_time, "week_ending_value": text, "d": None, "error": None}
    try:
        day = None
        if text:
            if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
                raise ValueError(f"Enter the week ending as a date in the form YYYY-MM-DD, "
                                 f"for example 2026-11-22 (not {text[:40]!r})")
            try:
                day = date.fromisoformat(text)
            except ValueError:
                raise ValueError(f"{text} is not a real date: enter the week ending as "
                                 "YYYY-MM-DD, for example 2026-11-22") from None
        day = _check(day)
    except ValueError as exc:
        ctx["error"] = str(exc)
        return HTMLResponse(render("pages/adqa_digest.html", **ctx), status_code=422)
    ctx["d"] = _digest(request, day)
    ctx["week_ending_value"] = day.isoformat()
    return HTMLResponse(render("pages/adqa_digest.html", **ctx))
