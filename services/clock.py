"""Today, in England: the day every deadline's status is judged by (outside workflows, which
have their own clock, ``workflow.now()``)."""

from __future__ import annotations

from datetime import date, datetime, timezone

from statutory import london_date


def today() -> date:
    return london_date(datetime.now(timezone.utc))
