"""The ADQA weekly digest on the web: ``GET /adqa/digest`` (a GOV.UK page) and
``GET /api/adqa/digest`` (JSON). Both take ``?week_ending=YYYY-MM-DD``; without it, the week
the latest digest email was for (``services.adqa.week_digest``)."""

from __future__ import annotations

import re
from datetime import date

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from api.deps import SessionDep
from domain.words import long_date, long_time
from services import adqa
from services.digest import Digest
from services.errors import ServiceError
from api.page_kit import page

router = APIRouter(tags=["adqa"])


@router.get("/api/adqa/digest", response_model=Digest,
            summary="The ADQA digest: overdue advice by agency and service, and compliance")
def digest_json(session: SessionDep, week_ending: date | None = Query(
        None, description="the last day of the week, YYYY-MM-DD (default: the week just "
        "ended, as in the weekly email)")) -> Digest:
    return adqa.week_digest(session=session, week_ending=week_ending)


def _week_ending(text: str) -> date | None:
    """The week ending as written on the page's form; None when it is left blank."""
    if not text:
        return None
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        raise ValueError(f"Enter the week ending as a date in the form YYYY-MM-DD, "
                         f"for example 2026-11-22 (not {text[:40]!r})")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError("Week ending must be a real date, written as YYYY-MM-DD, for example "
                         "2026-11-22") from None


@router.get("/adqa/digest", response_class=HTMLResponse, include_in_schema=False)
def digest_page(request: Request, session: SessionDep,
                week_ending: str | None = None) -> HTMLResponse:
    text = (week_ending or "").strip()
    ctx = {"nav": "adqa", "long_date": long_date, "long_time": long_time}
    try:
        d = adqa.week_digest(session=session, week_ending=_week_ending(text))
    except (ValueError, ServiceError) as exc:
        return page(request, "pages/adqa_digest.html", 422, week_ending_value=text, d=None,
                    error=str(exc), **ctx)
    return page(request, "pages/adqa_digest.html", week_ending_value=d.week_ending.isoformat(),
                d=d, error=None, **ctx)
