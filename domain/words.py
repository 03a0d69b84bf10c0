"""Words a person reads, the same on every page, email and letter: dates and times as written,
dates as typed, and file sizes.

- ``long_date``: "13 October 2026" (GOV.UK style: no leading zero, the month in full);
- ``long_time``: "13 October 2026 at 8:15am", in England's time ("midday", "midnight");
- ``parse_date_input``: the three boxes of a GOV.UK date input (day, month, year) as a date,
  or a sentence naming the field as its label does and saying what to write, with an example
  the field would take (``date_example``); every date a person types goes through it;
- ``dates_in_words``: a stored sentence with its ISO dates ("due 2026-10-13") written as
  words ("due 13 October 2026"), for timelines written before dates were;
- ``file_size``: "14 KB".

Pure (the standard library and ``statutory``), so workflows may use it for their timelines.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timezone

from statutory.clock import london_wallclock

EXAMPLE = "27 3 2027"


def long_date(value: date | datetime | None) -> str:
    """13 October 2026. A datetime is read in England's time; None is ""."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = _in_england(value).date()
    return f"{value.day} {value:%B %Y}"


def long_time(value: datetime | None) -> str:
    """13 October 2026 at 8:15am, in England's time; "midday" and "midnight" by name."""
    if value is None:
        return ""
    local = _in_england(value)
    if (local.hour, local.minute) == (12, 0):
        clock = "midday"
    elif (local.hour, local.minute) == (0, 0):
        clock = "midnight"
    else:
        hour = local.hour % 12 or 12
        suffix = "am" if local.hour < 12 else "pm"
        clock = f"{hour}{suffix}" if local.minute == 0 else f"{hour}:{local.minute:02d}{suffix}"
    return f"{long_date(local.date())} at {clock}"


def _in_england(value: datetime) -> datetime:
    if value.tzinfo is None:  # the database hands back UTC without its zone
        value = value.replace(tzinfo=timezone.utc)
    return london_wallclock(value)


def parse_date_input(day: str, month: str, year: str, label: str, *,
                     not_after: date | None = None) -> date | None:
    """A GOV.UK date input's three fields as a date; None when all three are empty. Raises
    ``ValueError`` with a sentence for the page: "<label> must include a month", "<label>
    must be a real date, for example 15 3 2011" (an example the field would take: on or
    before ``not_after`` when given), "<label> cannot be in the future" (after
    ``not_after``, which is today for a date that has happened)."""
    parts = {"day": day.strip(), "month": month.strip(), "year": year.strip()}
    if not any(parts.values()):
        return None
    missing = [k for k, v in parts.items() if not v]
    if missing:
        raise ValueError(f"{label} must include a {' and '.join(missing)}")
    unreal = f"{label} must be a real date, for example {date_example(parts, not_after)}"
    if not all(v.isdecimal() for v in parts.values()) or len(parts["year"]) != 4:
        raise ValueError(unreal)
    try:
        value = date(int(parts["year"]), int(parts["month"]), int(parts["day"]))
    except ValueError:
        raise ValueError(unreal) from None
    if not_after is not None and value > not_after:
        raise ValueError(f"{label} cannot be in the future: today is {long_date(not_after)}")
    return value


def date_example(typed: dict[str, str], not_after: date | None = None) -> str:
    """An example date as typed in the three boxes ("15 3 2011"), close to what was typed
    (its year and month where they can be) and one the field would take: on or before
    ``not_after`` when given."""
    year = int(typed["year"]) if typed.get("year", "").isdecimal() and \
        len(typed["year"]) == 4 and int(typed["year"]) >= 1900 else None
    month = int(typed["month"]) if typed.get("month", "").isdecimal() and \
        1 <= int(typed["month"]) <= 12 else 3
    if year is None:
        year = not_after.year - 1 if not_after else int(EXAMPLE.rsplit(" ", 1)[1])
    example = date(year, month, 15)
    if not_after is not None and example > not_after:
        example = date(not_after.year, month, 15)
        if example > not_after:
            example = date(not_after.year - 1, month, 15)
    return f"{example.day} {example.month} {example.year}"


ISO_DATE = re.compile(r"(?<![\w-])(\d{4})-(\d{2})-(\d{2})(?![\w-])")


def dates_in_words(text: str | None) -> str:
    """A sentence with every ISO date in it ("due 2026-10-13") as a long date ("due 13 October
    2026"); anything that is not a real date is left as it is."""
    if not text:
        return text or ""

    def one(m: re.Match[str]) -> str:
        try:
            return long_date(date(int(m[1]), int(m[2]), int(m[3])))
        except ValueError:
            return m[0]

    return ISO_DATE.sub(one, text)


def file_size(size: int | None) -> str:
    """A file's size in words: "812 bytes", "14 KB", "2.5 MB"."""
    if size is None:
        return ""
    if size < 1024:
        return f"{size} bytes"
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size / (1024 * 1024):.1f} MB"


def transfer_deadline(due: date) -> str:
    """A phase transfer's last day on time in words, with what the Regulations say: "by 14
    February 2027 (the Regulations say before 15 February)". Reg 18(1) sets the day *before*
    which the review must be done; ``due`` is the last day on time (``statutory.rules``)."""
    return f"by {long_date(due)} ({transfer_law(due)})"


def transfer_law(due: date) -> str:
    """What Reg 18(1) says of a phase transfer whose last day on time is ``due``: "the
    Regulations say before 15 February"."""
    # By the month, not the day after ``due``: a review started before the rule table gave
    # the last day on time recorded the named day itself (domain.review_cycle).
    return "the Regulations say before " + ("15 February" if due.month == 2 else "31 March")
