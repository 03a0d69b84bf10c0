"""Words a person reads, the same on every page, email and letter: dates and times as written,
dates as typed, and file sizes.

- ``long_date``: "13 October 2026" (GOV.UK style: no leading zero, the month in full);
- ``long_time``: "13 October 2026 at 8:15am", in England's time ("midday", "midnight");
- ``parse_date_input``: the three boxes of a GOV.UK date input (day, month, year) as a date,
  or a sentence naming the field as its label does and saying what to write;
- ``file_size``: "14 KB".

Pure (the standard library and ``statutory``), so workflows may use it for their timelines.
"""

from __future__ import annotations

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


def parse_date_input(day: str, month: str, year: str, label: str) -> date | None:
    """A GOV.UK date input's three fields as a date; None when all three are empty. Raises
    ``ValueError`` with a sentence for the page: "<label> must include a month", "<label>
    must be a real date, for example 27 3 2027"."""
    parts = {"day": day.strip(), "month": month.strip(), "year": year.strip()}
    if not any(parts.values()):
        return None
    missing = [k for k, v in parts.items() if not v]
    if missing:
        raise ValueError(f"{label} must include a {' and '.join(missing)}")
    if not all(v.isdigit() for v in parts.values()) or len(parts["year"]) != 4:
        raise ValueError(f"{label} must be a real date, for example {EXAMPLE}")
    try:
        return date(int(parts["year"]), int(parts["month"]), int(parts["day"]))
    except ValueError:
        raise ValueError(f"{label} must be a real date, for example {EXAMPLE}") from None


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
