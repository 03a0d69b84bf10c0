"""The ADQA weekly digest on the web: ``GET /adqa/digest`` (a GOV.UK page) and
``GET /api/adqa/digest`` (JSON). Both take ``?week_ending=YYYY-MM-DD`` (the page
also its own date boxes); without it, the week the latest digest email was for
(``services.adqa.week_digest``)."""

from __future__ import annotations

import re
from datetime import date

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from api.deps import SessionDep
from domain.words import dates_in_words, long_date, long_time, parse_date_input
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


def _week_ending(link: str, day: str, month: str, year: str) -> date | None:
    """The week ending asked for: typed in the page's date boxes, or carried by a link (the
    weekly email's, ``?week_ending=YYYY-MM-DD``); None when neither is given."""
    if any(x.strip() for x in (day, month, year)):
        return parse_date_input(day, month, year, "Week ending")
    if not link:
        return None
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", link):
        try:
            return date.fromisoformat(link)
        except ValueError:
            pass
    raise ValueError("The week in the link is not a date this page can read: type the last "
                     "day of the week below")


@router.get("/adqa/digest", response_class=HTMLResponse, include_in_schema=False)
def digest_page(request: Request, session: SessionDep, week_ending: str | None = None,
                day: str = Query("", alias="week_ending-day"),
                month: str = Query("", alias="week_ending-month"),
                year: str = Query("", alias="week_ending-year")) -> HTMLResponse:
    link = (week_ending or "").strip()
    typed = {"day": day, "month": month, "year": year}
    ctx = {"nav": "adqa", "long_date": long_date, "long_time": long_time}
    try:
        d = adqa.week_digest(session=session, week_ending=_week_ending(link, day, month, year))
    except (ValueError, ServiceError) as exc:
        message = exc.message if isinstance(exc, ServiceError) else str(exc)
        return page(request, "pages/adqa_digest.html", 422, typed=typed, d=None,
                    error=dates_in_words(message), **ctx)
    shown = {"day": str(d.week_ending.day), "month": str(d.week_ending.month),
             "year": str(d.week_ending.year)}
    return page(request, "pages/adqa_digest.html", typed=shown, d=d, error=None, **ctx)
