"""How a review cycle begins: its first snapshot and events, from the workflow's input and a day.

``begin_cycle`` is what ``ReviewWorkflow`` holds when a cycle starts: the review due on the
anniversary (earlier for an under-five), this cycle's phase transfer, a review already in
progress (``resume``), a meeting already fixed, and the events that say so. ``first_record``
adds the due-soon and overdue alerts already due on that day (``domain.alerts``): it is what
the plans import writes for each plan it brings in, a few hundred plans per transaction
(``services.plan_import``), and what a review started by the import (``StartReview.imported_on``)
holds, so that the workflow does not save it again.

Pure (pydantic and ``statutory`` only) and deterministic: the workflow passes the day and the
moment from ``workflow.now()`` (or the import's day, from its input), the importer its own. The
state changes the review workflow also makes later (a milestone added or moved, one done, the
phase transfer set, the meeting set) are here too, so that each is written once.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from domain.alerts import fire_as_of, next_event
from domain.case import (
    AdviceItem,
    Event,
    Milestone,
    PhaseTransferDue,
    ReviewSnapshot,
    ReviewStage,
    StartReview,
)
from domain.identifiers import review_reference
from domain.words import long_date
from statutory import RULES
from statutory.clock import deadline
from statutory.phase import NCYear, academic_year, next_transfer, parse_nc_year, \
    transfer_window_opens
from statutory.rules import Months


def add_milestone(case: ReviewSnapshot, key: str, rule_id: str, trigger: date) -> Milestone:
    """Add the milestone, or move it when its trigger moved (a meeting rescheduled)."""
    d = deadline(rule_id, trigger)
    m = case.milestone(key)
    if m is None:
        m = Milestone(key=key, rule_id=rule_id, started_on=trigger, due=d.due)
        case.milestones.append(m)
    elif m.done_on is None and m.due != d.due:
        m.started_on, m.due, m.alerts_fired = trigger, d.due, []
    return m


def complete(case: ReviewSnapshot, key: str, on: date) -> None:
    m = case.milestone(key)
    if m is not None and m.done_on is None:
        m.done_on = on


# A review workflow started before the phase transfer's due day became Reg 18(1)'s last day on
# time (14 February, 30 March) held the named day itself (15 February, 31 March). Replaying such
# a history must compute what it computed then: ``workflows.review`` passes ``legacy_day=True``
# for those (``workflow.patched(REG18_LAST_DAY_PATCH)`` is False) until the cycle ends.
REG18_LAST_DAY_PATCH = "reg18-last-day-before"


def law_due(m: Milestone) -> date:
    """The due day the case record keeps for ``m``: for a phase transfer, the rule table's last
    day on time for its year (14 February, 30 March), even while a workflow started before the
    table said so still holds the day after (``legacy_day``), so the pages, the cohort and
    measure h judge every transfer by Reg 18(1); any other milestone's own day."""
    if m.rule_id.startswith("review.phase_transfer_due."):
        return RULES[m.rule_id].due(m.due.year)
    return m.due


def set_transfer(case: ReviewSnapshot, transfer: PhaseTransferDue, *,
                 legacy_day: bool = False) -> Milestone:
    """The cycle must be finished before ``transfer``'s Reg 18(1) day: by 14 February (by 30
    March post-16). ``legacy_day``: the day after, as a workflow started before the rule table
    said so held it (see ``REG18_LAST_DAY_PATCH``)."""
    rule = RULES[f"review.phase_transfer_due.{transfer.kind}"]
    due = rule.due(transfer.transfer_year)
    if legacy_day:
        due += timedelta(days=1)
    m = case.milestone(rule.key)
    if m is None:
        m = Milestone(key=rule.key, rule_id=rule.id, started_on=case.anchor_on, due=due)
        case.milestones.append(m)
    else:
        m.rule_id, m.due, m.alerts_fired = rule.id, due, []
    return m


def transfer_this_cycle(case: ReviewSnapshot, start: StartReview, review_due: date,
                        today: date) -> PhaseTransferDue | None:
    """The phase transfer this cycle's review must deal with: the child's next one
    (statutory.phase) when the review falls due within its Reg 18(1) window ("within 12
    months of" the move) or later, unless the previous cycle's review already dealt with
    it. A review due before the window leaves the transfer to the next cycle. The importer
    (services.plan_import.choose_phase_transfer) applies the same rule to a plan's first
    imported cycle."""
    p = case.placement
    if p is None:
        return None
    try:
        year = parse_nc_year(p.nc_year)
        if year.index is None:
            return None
        moved_up = academic_year(today) - academic_year(p.nc_year_as_of)
        now_in = NCYear.from_index(year.index + moved_up)
        t = next_transfer(now_in, p.setting_type, today)
    except ValueError:  # past Year 14, or a placement the rules do not cover
        return None
    if t is None or transfer_window_opens(t.transfer_year) > review_due:
        return None  # the next cycle's review will carry it
    transfer = PhaseTransferDue(kind=t.kind, transfer_year=t.transfer_year)
    return None if transfer == start.transfer_done else transfer


def set_meeting(case: ReviewSnapshot, meeting_on: date, actor: str | None, today: date,
                at: datetime) -> Event:
    """Set (or move) the review meeting: invitations and advice due two weeks before it."""
    moved = case.meeting_on is not None
    case.meeting_on = meeting_on
    add_milestone(case, "invitations_due", "review.invitations_due", meeting_on)
    circulate = add_milestone(case, "advice_circulated_due", "review.advice_circulated_due",
                              meeting_on)
    for a in case.advice:
        if a.is_open:
            a.due = circulate.due
    case.stage = ReviewStage.MEETING_SET
    return next_event(case, "review.meeting_moved" if moved else "review.meeting_set", today, at,
                      actor, f"Review meeting {'moved to' if moved else 'set for'} "
                      f"{long_date(meeting_on)}: invitations and advice due by "
                      f"{long_date(circulate.due)} (Reg 20)", {"meeting": meeting_on.isoformat()})


def deadline_items(case: ReviewSnapshot) -> list[tuple[Milestone | AdviceItem, str | None]]:
    """The cycle's open deadlines that still alert, each with its advice key (None: a
    milestone). Paperwork for the meeting is chased until the meeting."""
    out: list[tuple[Milestone | AdviceItem, str | None]] = [
        (m, None) for m in case.milestones if m.done_on is None and m.applicable]
    if case.stage is ReviewStage.MEETING_SET:
        out.extend((a, a.key) for a in case.advice if a.is_open)
    return out


def _resume(case: ReviewSnapshot, held: date, start: StartReview) -> None:
    """An imported plan whose last meeting was held: the decision (or the amended plan) is to
    come."""
    case.meeting_on = case.meeting_held_on = held
    complete(case, "review_due", held)
    add_milestone(case, "report_due", "review.report_due", held)
    add_milestone(case, "decision_due", "review.decision_due", held)
    case.stage = ReviewStage.MEETING_HELD
    if start.resume == "amending" and start.amendments_sent_on is not None:
        sent = start.amendments_sent_on
        case.decision, case.decided_on = "amend", sent
        case.amendments_sent_on = sent
        complete(case, "decision_due", sent)
        add_milestone(case, "amendment_comments_due", "review.amendment_comments_due", sent)
        add_milestone(case, "final_amended_plan_due", "review.final_amended_plan_due", sent)
        case.stage = ReviewStage.AMENDING


def begin_cycle(start: StartReview, today: date, at: datetime, *,
                legacy_day: bool = False) -> tuple[ReviewSnapshot, list[Event]]:
    """The cycle ``start`` begins, as on ``today``, and its first events (stamped ``at``).
    ``legacy_day``: see ``set_transfer``."""
    held = start.last_review_on if start.resume else None
    if held is not None:
        # An imported plan mid-cycle: the meeting was held, the decision (or the amended
        # plan) is still to come. The cycle's own start is not in the file; a year before
        # the meeting stands in for it.
        anchor = max(start.plan_issued_on, held - timedelta(days=365))
    else:
        anchor = start.last_review_on or start.plan_issued_on
    case = ReviewSnapshot(
        reference=review_reference(start.plan_reference, start.cycle),
        plan_reference=start.plan_reference, cycle=start.cycle, child_id=start.child_id,
        stage=ReviewStage.AWAITING_MEETING, anchor_on=anchor,
        plan_issued_on=start.plan_issued_on, policy=start.policy, origin=start.origin,
        placement=start.placement, version=start.version,
    )
    due = deadline("review.review_due", anchor)
    case.milestones.append(Milestone(key=due.key, rule_id=due.rule.id, started_on=anchor,
                                     due=due.due))
    months = start.policy.under_five_months
    if months and start.under_five_until is not None and anchor < start.under_five_until:
        rule = RULES["review.under_five_review_due"]
        case.milestones.append(Milestone(key=rule.key, rule_id=rule.id, started_on=anchor,
                                         due=rule.due(anchor, Months(months))))
    transfer = start.phase_transfer or transfer_this_cycle(case, start, due.due, today)
    if transfer is not None:
        set_transfer(case, transfer, legacy_day=legacy_day)
    if held is not None:
        _resume(case, held, start)

    first = min(case.milestones, key=lambda m: m.due)
    events = [next_event(case, "review.cycle_started", case.anchor_on, at, start.actor,
                         f"Annual review {case.cycle} started: next annual review due by "
                         f"{long_date(first.due)} ({first.citation})",
                         {"cycle": str(case.cycle), "origin": start.origin})]
    if start.resume:
        events.append(next_event(
            case, "review.imported_mid_cycle", case.anchor_on, at, start.actor,
            f"Imported after the review meeting of "
            f"{long_date(case.meeting_held_on)}: "
            + ("the final amended plan is to come" if start.resume == "amending"
               else "the LA's decision is to come"), {}))
    if start.assigned_to:  # the plans import gave the plan to a caseworker (its column)
        events.append(next_event(case, "plan.assigned", today, at, start.actor,
                                 f"Assigned to {start.assigned_to} by the import",
                                 {"by": "import"}))
    if start.meeting_on is not None and not start.resume:  # a meeting already fixed
        events.append(set_meeting(case, start.meeting_on, start.actor, today, at))
    return case, events


def first_record(start: StartReview, today: date, at: datetime, *,
                 legacy_day: bool = False) -> tuple[ReviewSnapshot, list[Event]]:
    """``begin_cycle``, with the alerts already due on ``today`` fired: the first record of an
    imported plan (the import writes it; the workflow holds the same and does not save it).
    It is what the workflow of ``begin_cycle`` records after its first save and the alerts that
    follow it at once, on the same day."""
    case, events = begin_cycle(start, today, at, legacy_day=legacy_day)
    events.extend(fire_as_of(case, deadline_items(case), today, at))
    return case, events
