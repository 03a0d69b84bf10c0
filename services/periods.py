"""The periods every report and statistic is asked for: the check of a period (``check_period``),
the period asked for as typed (``period_asked``: the dates read, with a sentence for each that
is wrong, and the default period, ``default_period``) and calendar quarters (2026-Q3 is July
to September), each defined once here for the statistics (``services.statistics``, its API
and its page), the outcomes report (``services.reports``) and the ADQA quarterly report
(``services.adqa``)."""

from __future__ import annotations

import calendar
import re
from datetime import date, timedelta

from domain.words import dates_in_words, long_date, parse_date_input
from services.errors import ServiceError

MAX_DAYS = 3653  # 10 years: a report lists every quarter, so the period is bounded
YEARS = (1900, 2199)  # the years a period may fall in: counting from 9999-12-31 overflows

# The period's two dates as the statistics form labels them (the API's ``from`` and ``to``).
FIELD_LABELS = {"from": "start date", "to": "end date"}


class PeriodError(ServiceError):
    """A period that cannot be counted: a 422 whose message says what is wrong with each date
    and what to write instead; ``problems`` has the same sentences by field (``from``,
    ``to``) for a form."""

    def __init__(self, problems: dict[str, str]) -> None:
        super().__init__(422, ". ".join(problems.values()), "invalid_input")
        self.problems = problems


def check_period(from_date: date, to_date: date) -> None:
    """A 422 that says what to fix unless ``from_date`` to ``to_date`` is a period of at most
    ``MAX_DAYS``, for every report and statistic over a period."""
    if to_date < from_date:
        raise PeriodError({"to": f"The end date, {long_date(to_date)}, is before the start "
                           f"date, {long_date(from_date)}. Give the earlier date as the start "
                           "date"})
    for field, day, which in (("from", from_date, "start"), ("to", to_date, "end")):
        if not YEARS[0] <= day.year <= YEARS[1]:
            raise PeriodError({field: f"The {which} date, {long_date(day)}, is too far off to "
                               f"count. Give a date from {YEARS[0]} to {YEARS[1]}"})
    if (to_date - from_date).days > MAX_DAYS:
        raise PeriodError({"to": f"The period from {long_date(from_date)} to "
                           f"{long_date(to_date)} is longer than 10 years. Ask for 10 years or "
                           "less at a time"})


_ISO = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
_DMY = re.compile(r"(\d{1,2})[/.\- ](\d{1,2})[/.\- ](\d{4})")


def parse_day(text: str, label: str) -> date:
    """A date typed as YYYY-MM-DD. Raises ``ValueError`` with a sentence that names the field
    by ``label`` (e.g. "start date"), says what is wrong and what to write: "The start date 31
    February 2026 does not exist: February 2026 has 28 days. Write it as 2026-02-28 or pick
    another day"."""
    typed = text.strip()
    m = _ISO.fullmatch(typed)
    if m is None:
        hint = "for example 2026-10-01"
        dmy = _DMY.fullmatch(typed)
        if dmy:  # 30/9/2026, as dates are often written: say how to write that day
            d, mo, y = (int(g) for g in dmy.groups())
            if 1 <= mo <= 12 and 1 <= d <= calendar.monthrange(y, mo)[1]:
                hint = f"so {typed} is {date(y, mo, d).isoformat()}"
        raise ValueError(f"The {label} “{typed}” is not a date written as year, month and day. "
                         f"Write it as YYYY-MM-DD, {hint}")
    year, month, day = (int(g) for g in m.groups())
    if year < 1:
        raise ValueError(f"The {label} “{typed}” has no year. Write it as YYYY-MM-DD, for "
                         "example 2026-10-01")
    if not 1 <= month <= 12:
        raise ValueError(f"The {label} “{typed}” does not exist: there is no month {month}, "
                         f"the months are 01 to 12. Write it as YYYY-MM-DD, for example "
                         f"{year:04d}-10-01")
    days = calendar.monthrange(year, month)[1]
    month_year = f"{calendar.month_name[month]} {year}"
    if not 1 <= day <= days:
        nearest = date(year, month, days if day > days else 1)
        what = (f"{day} {month_year}" if day > days else f"“{typed}”")
        why = (f"{month_year} has {days} days" if day > days
               else "the days of a month start at 1")
        raise ValueError(f"The {label} {what} does not exist: {why}. Write it as "
                         f"{nearest.isoformat()} or pick another day")
    return date(year, month, day)


def day_asked(text: str | None, field: str, label: str) -> date | None:
    """One date typed as YYYY-MM-DD, or None when none was given; a ``PeriodError`` (by
    ``field``) with ``parse_day``'s sentence when it is wrong."""
    if not text or not text.strip():
        return None
    try:
        return parse_day(text, label)
    except ValueError as exc:
        raise PeriodError({field: str(exc)}) from None


def default_period(on: date) -> tuple[date, date]:
    """The period the statistics show unless asked for another: the last four calendar
    quarters up to and including the one ``on`` falls in, that one up to ``on`` itself (the
    quarter so far). On 7 December 2026: 1 January 2026 to 7 December 2026."""
    year, q = quarter_of(on)
    for _ in range(3):
        year, q = (year - 1, 4) if q == 1 else (year, q - 1)
    return quarter_bounds(year, q)[0], on


def period_asked(from_text: str | None, to_text: str | None, on: date) -> tuple[date, date]:
    """The period asked for as typed (YYYY-MM-DD; a date left out is ``default_period``'s),
    checked. A ``PeriodError`` with a sentence for each date that is wrong."""
    default = default_period(on)
    problems: dict[str, str] = {}
    out = []
    for field, text, fallback in (("from", from_text, default[0]), ("to", to_text, default[1])):
        if not text or not text.strip():
            out.append(fallback)
            continue
        try:
            out.append(parse_day(text, FIELD_LABELS[field]))
        except ValueError as exc:
            problems[field] = str(exc)
            out.append(fallback)
    if problems:
        raise PeriodError(problems)
    check_period(out[0], out[1])
    return out[0], out[1]


# The period's two dates as the statistics page's date boxes are labelled.
PAGE_LABELS = {"from": "Start date", "to": "End date"}


def period_from_page(boxes: dict[str, tuple[str, str, str]], from_text: str | None,
                     to_text: str | None, on: date) -> tuple[date, date]:
    """The period as the statistics page asks for it: each date typed in its three boxes (day,
    month, year: a GOV.UK date input, ``boxes`` by field), or else carried by a link as
    YYYY-MM-DD (``period_asked``). A ``PeriodError`` whose sentences write dates in words."""
    texts: dict[str, str | None] = {"from": from_text, "to": to_text}
    problems: dict[str, str] = {}
    for field, (day, month, year) in boxes.items():
        try:
            typed = parse_date_input(day, month, year, PAGE_LABELS[field])
        except ValueError as exc:
            problems[field] = str(exc)
            continue
        if typed is not None:
            texts[field] = typed.isoformat()
        link = (texts[field] or "").strip()
        if typed is None and link and not _ISO.fullmatch(link):
            problems[field] = (f"The {FIELD_LABELS[field]} in the link ({link[:40]}) is not a "
                               "date this page can read: type it in the boxes")
    if problems:
        raise PeriodError(problems)
    try:
        return period_asked(texts["from"], texts["to"], on)
    except PeriodError as exc:
        raise PeriodError({k: dates_in_words(v) for k, v in exc.problems.items()}) from None


def period_words(from_date: date, to_date: date, on: date) -> str:
    """The period in words: "1 January 2026 to 30 September 2026", or when it runs to ``on``,
    "1 January 2026 to today (7 December 2026)"."""
    end = f"today ({long_date(on)})" if to_date == on else long_date(to_date)
    return f"{long_date(from_date)} to {end}"


def quarter_words(label: str, starts_on: date, ends_on: date, on: date) -> str:
    """A quarter of a period as a table row names it: its label (2026-Q3), or, for the quarter
    ``on`` falls in when the period runs to ``on``, "1 October 2026 to today (quarter so
    far)"; a quarter cut short otherwise, by its first and last day."""
    year, q = quarter_of(starts_on)
    first, last = quarter_bounds(year, q)
    if ends_on == on and on < last:
        return f"{long_date(starts_on)} to today (quarter so far)"
    if (starts_on, ends_on) != (first, last):
        return f"{label}: {long_date(starts_on)} to {long_date(ends_on)}"
    return label


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
