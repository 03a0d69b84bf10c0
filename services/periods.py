"""The periods every report and statistic is asked for: the check of a period (``check_period``)
and calendar quarters (2026-Q3 is July to September), each defined once here for the
statistics (``services.statistics``), the outcomes report (``services.reports``) and the ADQA
quarterly report (``services.adqa``)."""

from __future__ import annotations

from datetime import date, timedelta

from services.errors import ServiceError

MAX_DAYS = 3653  # 10 years: a report lists every quarter, so the period is bounded


def check_period(from_date: date, to_date: date) -> None:
    """A 422 that says what to fix unless ``from_date`` to ``to_date`` is a period of at most
    ``MAX_DAYS``, for every report and statistic over a period."""
    if to_date < from_date:
        raise ServiceError(422, f"Please correct: to ({to_date}) is before from ({from_date}); "
                           "give the earlier date as from", "invalid_input")
    if (to_date - from_date).days > MAX_DAYS:
        raise ServiceError(422, f"Please correct: the period from {from_date} to {to_date} is "
                           "longer than 10 years; ask for 10 years or less at a time",
                           "invalid_input")


def quarter_of(day: date) -> tuple[int, int]:
    """The calendar quarter ``day`` falls in, as (year, 1 to 4)."""
    return day.year, (day.month - 1) // 3 + 1


def quarter_bounds(year: int, q: int) -> tuple[date, date]:
    """A calendar quarter's first and last day."""
    start = date(year, 3 * q - 2, 1)
    end = date(year + 1, 1, 1) if q == 4 else date(year, 3 * q + 1, 1)
    return start, date.fromordinal(end.toordinal() - 1)


def quarter_label(on: date) -> str:
    """The quarter ``on`` falls in, as 2026-Q3."""
    year, q = quarter_of(on)
    return f"{year}-Q{q}"


def parse_quarter(text: str) -> tuple[int, int] | None:
    """2026-Q3 as (2026, 3); None unless ``text`` is written so."""
    try:
        year, q = text.split("-Q")
        if len(year) == 4 and q in ("1", "2", "3", "4"):
            return int(year), int(q)
    except ValueError:
        pass
    return None


def last_full_quarters(on: date, n: int = 4) -> tuple[date, date]:
    """The n calendar quarters before the one ``on`` falls in, as their first and last day
    (n = 0: the day before that quarter, twice)."""
    year, q = quarter_of(on)
    end = quarter_bounds(year, q)[0] - timedelta(days=1)
    for _ in range(n):
        year, q = (year - 1, 4) if q == 1 else (year, q - 1)
    return quarter_bounds(year, q)[0] if n else end, end


def quarters(from_date: date, to_date: date) -> list[tuple[str, date, date]]:
    """Every calendar quarter from ``from_date`` to ``to_date``, as (label, first day, last
    day), the first and last cut to the period. Checks the period first."""
    check_period(from_date, to_date)
    out = []
    year, q = quarter_of(from_date)
    while (year, q) <= quarter_of(to_date):
        start, end = quarter_bounds(year, q)
        out.append((f"{year}-Q{q}", max(start, from_date), min(end, to_date)))
        year, q = (year + 1, 1) if q == 4 else (year, q + 1)
    return out
