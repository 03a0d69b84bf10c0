"""The phase-transfer cohort: every active plan whose child changes phase of education in a
given calendar year of transfer (the year of the September move), with where its review stands
against the Reg 18(1) date. See docs/phase-transfers.md.

Each plan's transfer is worked out afresh from its placement (year group, the day that year
group was true, type of setting) with ``statutory.phase.next_transfer`` as of ``today``: the
recorded year group moves up one for each 1 September since the day it was recorded, as the
review workflow does. ``plan.transfer_year`` is not used to pick the cohort, because it is set
only once a review carries the transfer; it says whether the current review already does.

Reads the database only (a session is passed in); no clock (``today`` is passed in) and no
Temporal. Never reads the ``child`` table: the cohort carries plan references, not names.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date
from typing import Literal

from pydantic import BaseModel, Field
from sqlmodel import Session, select

from store import tables as t
from domain.case import OPEN_REVIEW_STAGES
from domain.identifiers import review_reference
from statutory.phase import (
    NCYear,
    Transfer,
    academic_year,
    next_transfer,
    parse_nc_year,
    parse_setting_type,
)

AT_RISK_DAYS = 42  # six weeks: the ordinary review steps need about that before the date

Status = Literal["not_brought_forward", "overdue", "review_overdue", "due_soon", "on_track",
                 "done_on_time", "done_late"]
# The order statuses are shown and counted in: what needs doing first.
STATUSES: tuple[Status, ...] = ("not_brought_forward", "overdue", "review_overdue", "due_soon",
                                "on_track", "done_on_time", "done_late")
STATUS_LABELS: dict[str, str] = {
    "not_brought_forward": "Not brought forward",
    "overdue": "Overdue",
    "review_overdue": "Review overdue",
    "due_soon": "Due soon",
    "on_track": "On track",
    "done_on_time": "Done on time",
    "done_late": "Done late",
}

_OPEN_STAGES = frozenset(s.value for s in OPEN_REVIEW_STAGES)
_CHUNK = 500  # references per IN (...) list, well inside SQLite's and PostgreSQL's limits


class CohortTransfer(BaseModel):
    kind: Literal["school", "post16"]
    from_phase: str
    to_phase: str
    from_year: str = Field(description="the last year group before the move")
    move_date: date = Field(description="1 September of the transfer year")
    transfer_year: int
    deadline: date = Field(description="the last day on time: 14 February (school phases; "
                           "the Regulations say before 15 February) or 30 March (secondary to "
                           "post-16; before 31 March) of the transfer year")
    deadline_citation: str = Field(description="Reg 18(1)(b) or Reg 18(1)(a)")
    citation: str = Field(description="the limb of Reg 2(1) and of Reg 18(1)")
    note: str = ""


class CohortEntry(BaseModel):
    plan_reference: str
    cycle_reference: str = Field(description="the current review cycle, <plan>.R<n>")
    nc_year: str = Field(description="the year group now (the recorded one moved up)")
    nc_year_label: str
    setting_type: str
    setting_name: str | None = None
    transfer: CohortTransfer
    stage: str | None = Field(description="the current cycle's stage; None if not recorded yet")
    review_due: date | None = Field(
        description="the current cycle's earliest open deadline (plan.review_due); None once "
        "its meeting has been held")
    annual_review_due: date | None = Field(
        None, description="the current cycle's own annual review due date (CFA 2014 s.44(1))")
    meeting_held_on: date | None = None
    carries_transfer: bool = Field(
        description="the current review already has this transfer's deadline "
        "(plan.transfer_year is the cohort's year)")
    days_left: int = Field(description="days from today to the deadline; negative once past")
    status: Status
    status_label: str = Field(description="the status in words, as the page shows it")
    done_by: str | None = Field(None, description="for done_on_time and done_late: the cycle "
                                "that carried the transfer and ended")
    done_on: date | None = None


class UnplacedPlan(BaseModel):
    """An active plan whose transfer cannot be worked out: listed so nobody is dropped."""

    plan_reference: str
    cycle_reference: str
    nc_year: str | None
    nc_year_as_of: date | None
    setting_type: str | None
    setting_name: str | None = None
    reason: str


class Cohort(BaseModel):
    year: int = Field(description="the calendar year of transfer: the September move's year")
    today: date
    at_risk_days: int
    total: int
    counts: dict[str, int] = Field(description="plans by status, every status listed")
    status_labels: dict[str, str] = Field(
        default_factory=lambda: dict(STATUS_LABELS),
        description="each status in words, as the page shows it, in the order of the page")
    entries: list[CohortEntry] = Field(description="sorted by deadline, then plan reference")
    unplaced: list[UnplacedPlan] = Field(
        description="active plans whose placement is missing or not understood, whatever "
        "their year of transfer")


class PlacementProblem(ValueError):
    """The placement says nothing usable about the next transfer; the message says why."""


def year_group_now(nc_year: str, recorded_on: date, today: date) -> NCYear:
    """The recorded year group moved up one for each 1 September between the day it was
    recorded and ``today`` (down, if ``today`` is before that day)."""
    year = parse_nc_year(nc_year)
    if year.index is None:
        raise PlacementProblem(
            "the year group is 'EY', which does not say when the child starts school: record "
            "the nursery year, N1 or N2")
    moved = academic_year(today) - academic_year(recorded_on)
    try:
        return NCYear.from_index(year.index + moved)
    except ValueError:
        if year.index + moved > 14:
            raise PlacementProblem(
                f"{year.label} on {recorded_on.isoformat()} would now be past Year 14: record "
                "the young person's current placement, or close the plan") from None
        raise PlacementProblem(
            f"{year.label} on {recorded_on.isoformat()} would have been below N1 on "
            f"{today.isoformat()}") from None


def transfer_for(plan: t.Plan, today: date) -> Transfer | None:
    """The plan's next transfer between phases as of ``today``; None when there is none (a
    young person at a post-16 institution). Raises ``PlacementProblem`` when the placement is
    missing or not understood."""
    missing = [name for name, value in (("year group", plan.nc_year),
                                        ("date of the year group", plan.nc_year_as_of),
                                        ("type of setting", plan.setting_type)) if not value]
    if len(missing) == 3:
        raise PlacementProblem("no placement recorded: record the year group and the setting")
    if missing:
        raise PlacementProblem(f"the placement has no {' and no '.join(missing)}")
    assert plan.nc_year and plan.nc_year_as_of and plan.setting_type
    try:
        setting = parse_setting_type(plan.setting_type)
        now_in = year_group_now(plan.nc_year, plan.nc_year_as_of, today)
        return next_transfer(now_in, setting, today)
    except PlacementProblem:
        raise
    except ValueError as exc:
        raise PlacementProblem(str(exc)) from None


def status_of(*, deadline: date, today: date, done_on: date | None, carries: bool,
              review_due: date | None, cycle_open: bool, meeting_held: bool,
              annual_review_due: date | None = None,
              at_risk_days: int = AT_RISK_DAYS) -> Status:
    """A cohort entry's status; the first that applies:

    - ``done_on_time`` / ``done_late``: a review cycle that carried this transfer ended
      (``done_on``) on or before the deadline, the last day on time / after it;
    - ``overdue``: the deadline has passed and no such cycle has ended;
    - ``not_brought_forward``: the current review does not carry the transfer and is not due by
      the deadline (its due date is after it, or it has none left because its meeting was held
      while the cycle is still open);
    - ``review_overdue``: the current cycle's own annual review date
      (``annual_review_due``) has passed without its meeting;
    - ``due_soon``: the deadline is within ``at_risk_days`` days and the current review's meeting
      has not been held;
    - ``on_track``: otherwise.
    """
    if done_on is not None:
        return "done_on_time" if done_on <= deadline else "done_late"
    if today > deadline:
        return "overdue"
    if not carries and cycle_open and (review_due is None or review_due > deadline):
        return "not_brought_forward"
    if (cycle_open and not meeting_held and annual_review_due is not None
            and today > annual_review_due):
        return "review_overdue"
    if (deadline - today).days <= at_risk_days and not meeting_held:
        return "due_soon"
    return "on_track"


def _chunks(items: list[str]) -> Iterator[list[str]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i:i + _CHUNK]


def _ended_on(review: t.Review, today: date) -> date | None:
    """The day a cycle ended with the plan reviewed: the final amended plan issued, the
    decision not to amend after all (Reg 22(4)), or the decision to maintain."""
    ends = [d for d in (review.amended_plan_issued_on, review.not_amended_on) if d is not None]
    if review.decision == "maintain" and review.decided_on is not None:
        ends.append(review.decided_on)
    ends = [d for d in ends if d <= today]
    return min(ends) if ends else None


def _done_cycles(session: Session, plans: Iterable[str], today: date
                 ) -> dict[str, list[tuple[str, str, int, date]]]:
    """For each plan, its cycles that carried a phase transfer and ended: (cycle reference,
    the transfer's rule id, its year, the day the cycle ended). A cycle whose meeting came
    before the transfer's review window carried it on to the next cycle (its milestone no
    longer applies), so it does not count. The transfer is matched by its rule and year, not
    its recorded due day: a review started before the due day became Reg 18(1)'s last day on
    time recorded the day after (``domain.review_cycle.REG18_LAST_DAY_PATCH``)."""
    out: dict[str, list[tuple[str, str, int, date]]] = {}
    for chunk in _chunks(sorted(plans)):
        rows = session.exec(
            select(t.Review, t.Milestone.rule_id, t.Milestone.due)
            .join(t.Milestone, t.Milestone.case_reference == t.Review.case_reference)
            .where(t.Milestone.key == "phase_transfer_due",
                   t.Milestone.applicable == True,  # noqa: E712 (SQL, not Python)
                   t.Review.plan_reference.in_(chunk))  # type: ignore[attr-defined]
        ).all()
        for review, rule_id, due in rows:
            ended = _ended_on(review, today)
            if ended is not None:
                out.setdefault(review.plan_reference, []).append(
                    (review.case_reference, rule_id, due.year, ended))
    return out


def _annual_reviews_due(session: Session, cycle_refs: list[str]) -> dict[str, date]:
    """Each cycle's own annual review date (its ``review_due`` milestone) while still open."""
    out: dict[str, date] = {}
    for chunk in _chunks(cycle_refs):
        out.update(session.exec(
            select(t.Milestone.case_reference, t.Milestone.due)
            .where(t.Milestone.key == "review_due", t.Milestone.done_on.is_(None),  # type: ignore[union-attr]
                   t.Milestone.case_reference.in_(chunk))).all())  # type: ignore[attr-defined]
    return out


def build_cohort(session: Session, year: int, today: date,
                 at_risk_days: int = AT_RISK_DAYS) -> Cohort:
    """Every active plan transferring phase in ``year`` (its next transfer as of ``today``),
    with its status on ``today``; and the active plans whose transfer cannot be worked out."""
    plans = session.exec(select(t.Plan).where(t.Plan.status == "active")
                         .order_by(t.Plan.reference)).all()
    members: list[tuple[t.Plan, Transfer]] = []
    unplaced: list[UnplacedPlan] = []
    for plan in plans:
        try:
            transfer = transfer_for(plan, today)
        except PlacementProblem as exc:
            unplaced.append(UnplacedPlan(
                plan_reference=plan.reference,
                cycle_reference=review_reference(plan.reference, plan.current_cycle),
                nc_year=plan.nc_year, nc_year_as_of=plan.nc_year_as_of,
                setting_type=plan.setting_type, setting_name=plan.setting_name,
                reason=str(exc)))
            continue
        if transfer is not None and transfer.transfer_year == year:
            members.append((plan, transfer))

    cycle_refs = [review_reference(p.reference, p.current_cycle) for p, _ in members]
    cases: dict[str, t.Case] = {}
    reviews: dict[str, t.Review] = {}
    for chunk in _chunks(cycle_refs):
        cases.update((c.reference, c) for c in session.exec(
            select(t.Case).where(t.Case.reference.in_(chunk))))  # type: ignore[attr-defined]
        reviews.update((r.case_reference, r) for r in session.exec(
            select(t.Review).where(t.Review.case_reference.in_(chunk))))  # type: ignore[attr-defined]
    done_cycles = _done_cycles(session, (p.reference for p, _ in members), today)
    annual_due = _annual_reviews_due(session, cycle_refs)

    entries: list[CohortEntry] = []
    for (plan, tr), cycle_ref in zip(members, cycle_refs):
        due = tr.deadline.due
        done = sorted((ended, ref) for ref, rule_id, carried_year, ended
                      in done_cycles.get(plan.reference, [])
                      if rule_id == tr.deadline.rule.id and carried_year == tr.transfer_year)
        case, review = cases.get(cycle_ref), reviews.get(cycle_ref)
        held = review.meeting_held_on if review is not None else None
        carries = plan.transfer_year == year
        assert plan.nc_year and plan.nc_year_as_of and plan.setting_type
        now_in = year_group_now(plan.nc_year, plan.nc_year_as_of, today)
        entries.append(CohortEntry(
            plan_reference=plan.reference, cycle_reference=cycle_ref,
            nc_year=now_in.value, nc_year_label=now_in.label,
            setting_type=parse_setting_type(plan.setting_type).value,
            setting_name=plan.setting_name,
            transfer=CohortTransfer(
                kind=tr.kind, from_phase=tr.from_phase.value, to_phase=tr.to_phase.value,
                from_year=tr.from_year.value, move_date=tr.move_date,
                transfer_year=tr.transfer_year, deadline=due,
                deadline_citation=tr.deadline.citation, citation=tr.citation, note=tr.note),
            stage=case.stage if case is not None else None,
            review_due=plan.review_due, meeting_held_on=held, carries_transfer=carries,
            days_left=(due - today).days,
            annual_review_due=annual_due.get(cycle_ref),
            status=(status := status_of(
                deadline=due, today=today, done_on=done[0][0] if done else None,
                carries=carries, review_due=plan.review_due,
                cycle_open=case is not None and case.stage in _OPEN_STAGES,
                meeting_held=held is not None and held <= today,
                annual_review_due=annual_due.get(cycle_ref), at_risk_days=at_risk_days)),
            status_label=STATUS_LABELS[status],
            done_by=done[0][1] if done else None, done_on=done[0][0] if done else None,
        ))
    entries.sort(key=lambda e: (e.transfer.deadline, e.plan_reference))
    counts = {s: 0 for s in STATUSES}
    for e in entries:
        counts[e.status] += 1
    return Cohort(year=year, today=today, at_risk_days=at_risk_days, total=len(entries),
                  counts=counts, entries=entries, unplaced=unplaced)


def default_year(today: date) -> int:
    """The cohort whose Reg 18(1) dates fall in the current academic year: the children who
    move next September (from 1 September, the following year's)."""
    return academic_year(today) + 1
