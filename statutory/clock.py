"""The statutory clock: applies the rules in ``statutory.rules`` to a case's dates.

Pure and deterministic (no I/O, no clock): a workflow passes in ``workflow.now()`` where a
function needs "today".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from enum import Enum
from typing import Iterable, Literal, Protocol

from statutory.rules import RULES, ExceptionKind, Rule, Weeks

# --- deadlines ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Deadline:
    key: str
    due: date
    rule: Rule

    @property
    def citation(self) -> str:
        return self.rule.citation

    def as_json(self) -> dict[str, object]:
        return {
            "due": self.due.isoformat(),
            "citation": self.rule.citation,
            "rule": self.rule.id,
            "title": self.rule.title,
            "trigger": self.rule.trigger.value,
            "offset": self.rule.offset.describe(),
            "statutory": self.rule.statutory,
            "note": self.rule.note,
        }


def deadline(rule_id: str, trigger_value: date | int, *, weeks: int | None = None) -> Deadline:
    rule = RULES[rule_id]
    due = rule.due(trigger_value, Weeks(weeks) if weeks is not None else None)
    return Deadline(rule.key, due, rule)


DEFAULT_DRAFT_TARGET_WEEKS = 16


def assessment_timescales(
    request_date: date,
    *,
    advice_requested: date | None = None,
    draft_served: date | None = None,
    draft_target_weeks: int = DEFAULT_DRAFT_TARGET_WEEKS,
) -> dict[str, Deadline]:
    """The deadlines of an EHC needs assessment (Regs 5-13)."""
    out = [
        deadline("assessment.decision_due", request_date),
        deadline("assessment.no_plan_notice_due", request_date),
        deadline("assessment.draft_plan_target", request_date, weeks=draft_target_weeks),
        deadline("assessment.final_plan_due", request_date),
    ]
    if advice_requested is not None:
        out.append(deadline("assessment.advice_due", advice_requested))
    if draft_served is not None:
        out.append(deadline("assessment.draft_comments_due", draft_served))
    return {d.key: d for d in out}


TransferKind = Literal["school", "post16"]


def review_timescales(
    *,
    last_review: date | None = None,
    plan_issued: date | None = None,
    meeting_date: date | None = None,
    amendments_sent: date | None = None,
    transfer: TransferKind | None = None,
    transfer_year: int | None = None,
    post16_move_date: date | None = None,
) -> dict[str, Deadline]:
    """The deadlines of an annual review (CFA 2014 s.44; Regs 18-22). ``review_due`` counts
    from the last review where there was one, otherwise from the plan's issue."""
    if last_review is not None and plan_issued is not None:
        raise ValueError("give the last review date or the plan issue date, not both")
    if (transfer is None) != (transfer_year is None):
        raise ValueError("a phase transfer needs both its kind and its year")
    out: list[Deadline] = []
    anchor = last_review or plan_issued
    if anchor is not None:
        out.append(deadline("review.review_due", anchor))
    if meeting_date is not None:
        for rid in ("invitations_due", "advice_circulated_due", "report_due", "decision_due"):
            out.append(deadline(f"review.{rid}", meeting_date))
    if amendments_sent is not None:
        out.append(deadline("review.amendment_comments_due", amendments_sent))
        out.append(deadline("review.final_amended_plan_due", amendments_sent))
    if transfer is not None and transfer_year is not None:
        out.append(phase_transfer_deadline(transfer, transfer_year))
    if post16_move_date is not None:
        out.append(deadline("review.post16_move_due", post16_move_date))
    return {d.key: d for d in out}


def phase_transfer_deadline(transfer: TransferKind, transfer_year: int) -> Deadline:
    """The last day on time for a phase transfer review: 14 February (school phases; the
    Regulations say "before 15 February", Reg 18(1)(b)) or 30 March (secondary to post-16;
    "before 31 March", Reg 18(1)(a)) of the calendar year of the transfer."""
    if transfer not in ("school", "post16"):
        raise ValueError(f"unknown transfer kind {transfer!r}: use 'school' or 'post16'")
    return deadline(f"review.phase_transfer_due.{transfer}", transfer_year)


# --- exceptions excuse, they do not move ---------------------------------------------------


class ExceptionLike(Protocol):
    kind: ExceptionKind
    starts_on: date
    ends_on: date | None
    withdrawn_on: date | None
    advice_key: str | None


def excusing_exceptions(
    rule: Rule,
    started_on: date,
    due: date,
    exceptions: Iterable[ExceptionLike],
    *,
    advice_key: str | None = None,
) -> list[ExceptionLike]:
    """The recorded exceptions that excuse a deadline running from ``started_on`` to ``due``.

    An exception counts when its kind is one the rule allows, it has not been withdrawn, it
    concerns this piece of advice (Reg 8(2)) or the whole case (Reg 10(4)), and its period
    overlaps the period the deadline ran over. The due date itself never changes.
    """
    out = []
    for exc in exceptions:
        if exc.withdrawn_on is not None or exc.kind not in rule.excusable_by:
            continue
        if exc.kind.applies_to_advice and exc.advice_key != advice_key:
            continue
        if exc.starts_on > due or (exc.ends_on is not None and exc.ends_on < started_on):
            continue
        out.append(exc)
    return out


# --- status of a deadline on a given day ---------------------------------------------------


class Status(str, Enum):
    PENDING = "pending"
    DUE_SOON = "due_soon"
    OVERDUE = "overdue"
    DONE_ON_TIME = "done_on_time"
    DONE_LATE = "done_late"
    NOT_APPLICABLE = "not_applicable"


def status_on(
    today: date, due: date, done_on: date | None, *, due_soon_days: int
) -> Status:
    """Done on or before the due day is on time; the day after the due day it is overdue; it is
    due soon from ``due_soon_days`` before the due day."""
    if done_on is not None:
        return Status.DONE_ON_TIME if done_on <= due else Status.DONE_LATE
    if today > due:
        return Status.OVERDUE
    if today >= due - timedelta(days=due_soon_days):
        return Status.DUE_SOON
    return Status.PENDING


def days_overdue(today: date, due: date) -> int:
    return max(0, (today - due).days)


# --- the council's local time -------------------------------------------------------------
#
# Deadlines are dates in England. A workflow's clock is UTC and the sandbox has no time-zone
# database, so UK summer time is computed here: it runs from 01:00 UTC on the last Sunday of
# March to 01:00 UTC on the last Sunday of October (Summer Time Order 2002).


def _last_sunday(year: int, month: int) -> date:
    d = date(year, month + 1, 1) - timedelta(days=1) if month < 12 else date(year, 12, 31)
    return d - timedelta(days=(d.weekday() - 6) % 7)


def _uk_offset(instant: datetime) -> timedelta:
    utc = instant.astimezone(timezone.utc).replace(tzinfo=None)
    start = datetime.combine(_last_sunday(utc.year, 3), time(1))
    end = datetime.combine(_last_sunday(utc.year, 10), time(1))
    return timedelta(hours=1) if start <= utc < end else timedelta(0)


def london_date(instant: datetime) -> date:
    """The calendar date in England at an aware instant."""
    if instant.tzinfo is None:
        raise ValueError("london_date needs an aware datetime")
    return (instant.astimezone(timezone.utc) + _uk_offset(instant)).date()


def london_wallclock(instant: datetime) -> datetime:
    """What a clock in England shows at an aware instant (naive: no zone attached)."""
    if instant.tzinfo is None:
        raise ValueError("london_wallclock needs an aware datetime")
    return (instant.astimezone(timezone.utc) + _uk_offset(instant)).replace(tzinfo=None)


def london_midnight(d: date) -> datetime:
    """The UTC instant at which day ``d`` begins in England."""
    return london_time(d, 0)


def london_time(d: date, hour: int) -> datetime:
    """The UTC instant of ``hour``:00 on day ``d`` in England. Clocks change at 01:00 UTC, so
    the offset in force an hour before ``hour``:00 UTC is the offset at that wall-clock hour
    (exact for midnight and for 03:00 onwards; the skipped and repeated hours of the change
    nights are never used here)."""
    if not 0 <= hour <= 23:
        raise ValueError(f"hour must be 0-23, not {hour}")
    probe = datetime.combine(d, time(hour), tzinfo=timezone.utc)
    return probe - _uk_offset(probe - timedelta(hours=1))
