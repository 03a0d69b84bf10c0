"""The pages of the ADQA group (the assistant directors' quality-assurance group): the quarterly
report on advice (``/adqa/quarterly``, ``api/stats_pages.py``) with the group's saved
recommendations, and the weekly digest asked for on the web (``/adqa/digest`` and
``/api/adqa/digest``, ``api/adqa.py``; the digest itself is ``services.digest``'s).

The quarterly report's figures are the statistics API's own (``services.statistics
.timeliness_measure`` for the advice measure): the page shows what the API returns, never a
figure of its own.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import lru_cache

from pydantic import BaseModel
from sqlalchemy import func
from sqlmodel import Session, select

from domain.words import long_date
from services.clock import today
from services.digest import Digest, DigestScheduleSettings, build_digest, current_week_ending
from services.errors import ServiceError
from services.periods import (
    last_full_quarters,
    parse_quarter,
    quarter_bounds,
    quarter_label,
    quarter_of,
)
from services.statistics import DeadlineGroup, MeasureReport, timeliness_measure
from store import tables as t

RECOMMENDATIONS_MAX = 20000  # characters kept of what the group writes

# --- the quarterly report -------------------------------------------------------------------------


class Recommendation(BaseModel):
    """The group's recommendations for a quarter, as last saved."""

    text: str
    updated_by: str | None
    updated_at: datetime


class QuarterlyReport(BaseModel):
    quarter: str
    start: date
    end: date
    as_of: date
    agencies: MeasureReport
    services: MeasureReport
    worst: list[DeadlineGroup]
    trend: MeasureReport
    overall: MeasureReport
    year_zero: str
    recommendation: Recommendation | None
    previous: str
    following: str | None


def year_zero(*, session: Session) -> date | None:
    """The first day of the first quarter with any advice recorded: where the trend starts
    (the improvement plan's "year zero" baseline)."""
    first = session.scalar(select(func.min(t.AdviceItem.due)))
    if first is None:
        return None
    first = first if isinstance(first, date) else date.fromisoformat(str(first)[:10])
    return quarter_bounds(*quarter_of(first))[0]


def recommendation(*, session: Session, quarter: str) -> Recommendation | None:
    row = session.get(t.AdqaRecommendation, quarter)
    return Recommendation.model_validate(row, from_attributes=True) if row else None


def quarterly_report(*, session: Session, quarter: tuple[int, int] | None = None,
                     on: date | None = None) -> QuarterlyReport:
    """Advice due in ``quarter`` ((2026, 3); default the last full quarter before ``on``,
    default today) by agency and by service, the services with the most late advice, the
    trend since year zero and the group's recommendations."""
    on = on or today()
    wanted = quarter or quarter_of(last_full_quarters(on, 0)[1])
    start, end = quarter_bounds(*wanted)
    label = f"{wanted[0]}-Q{wanted[1]}"
    as_of = min(on, end + timedelta(days=1)) if end < on else on

    def advice(frm: date, group_by: str | None = None) -> MeasureReport:
        return timeliness_measure(session=session, measure="advice", from_date=frm,
                                  to_date=end, as_of=on, group_by=group_by)

    agencies = advice(start, "agency")
    services = advice(start, "service")
    trend_from = min(year_zero(session=session) or start, start)
    trend = advice(trend_from, "agency")
    overall = advice(trend_from)
    worst = sorted((g for g in services.groups if g.figures.late),
                   key=lambda g: (-g.figures.late, -g.figures.late_open, g.label))[:10]
    following = end + timedelta(days=1)
    return QuarterlyReport(
        quarter=label, start=start, end=end, as_of=as_of, agencies=agencies, services=services,
        worst=worst, trend=trend, overall=overall, year_zero=overall.quarters[0].quarter,
        recommendation=recommendation(session=session, quarter=label),
        previous=quarter_label(start - timedelta(days=1)),
        following=quarter_label(following) if following <= on else None)


def save_recommendation(*, session: Session, quarter: str, text: str,
                        by: str | None) -> None:
    """Keep the group's recommendations for ``quarter`` (the first ``RECOMMENDATIONS_MAX``
    characters, trimmed), replacing what was there; a 404 for a quarter not written
    YYYY-Qn."""
    if parse_quarter(quarter) is None:
        raise ServiceError(404, f"There is no quarter {quarter!r}", "unknown_quarter")
    text = text.strip()
    if len(text) > RECOMMENDATIONS_MAX:
        text = text[:RECOMMENDATIONS_MAX]
    row = session.get(t.AdqaRecommendation, quarter) or t.AdqaRecommendation(quarter=quarter)
    row.text = text
    row.updated_by = by
    row.updated_at = t._now()
    session.add(row)
    session.commit()


# --- the weekly digest on the web ---------------------------------------------------------------


@lru_cache
def _schedule_settings() -> DigestScheduleSettings:
    return DigestScheduleSettings()


def week_digest(*, session: Session, week_ending: date | None = None) -> Digest:
    """The digest for the week ending ``week_ending``; without it, the week the latest digest
    email was for. A 422 for a week that has not happened yet."""
    now = today()
    if week_ending is None:
        try:
            week_ending = current_week_ending(now, _schedule_settings())
        except ValueError as exc:  # EHC_DIGEST_WEEKDAY or EHC_DIGEST_HOUR is not valid
            raise ServiceError(422, str(exc), "invalid_input") from None
    elif week_ending > now:
        raise ServiceError(422, f"The week ending {long_date(week_ending)} is in the future: "
                           "choose a week that has happened", "invalid_input")
    return build_digest(session, week_ending)
