"""The timeliness statistics: the council's measures a-h, the DfE method for the 20-week rate,
and the per-person export with SEN2's field names. ``docs/statistics.md`` defines each one.

Pure query functions: each takes a Session, the periods to count in and (for deadlines) the day
the figures are as of. Nothing here reads a clock, talks to Temporal or knows about HTTP.

**The counting is done by the database** (``GROUP BY`` with ``COUNT``/``CASE``), not in
Python. A deadline query returns one row per rule, due day and whether an exception excuses it
(and group, for a breakdown); Python adds those up into the periods. Without a breakdown, and by
agency, those rows are kept counted by the database as the items change (``deadline_day``,
triggers of migration 0009), so a year of national figures (640,000 plans, 155,000 requests)
is a few thousand rows; the other breakdowns count the items, in the order of their index
(migration 0006). Periods are given as a list of consecutive (first day,
last day) pairs, usually calendar quarters.

**One rule for every deadline** (``deadline_counts``, ``Tally.add``): a deadline is *on time*
when its step was done on or before the due day (the due day itself is on time), *late* when it
was done after it, and *open and late* when it is not done and its due day is before the day
the figures are as of. Not counted: a deadline not done whose due day has not yet passed, and
one whose case ended (request withdrawn, moved away, plan ceased) on or before its due day
without the step. A deadline that an exception excuses (``excused``: worked out by the
recorder with ``statutory.clock.excusing_exceptions`` at every save) is counted as its dates
say in the rate *including* exceptions, and left out of both sides of the rate *excluding*
exceptions.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from datetime import date
from typing import Literal

from sqlalchemy import Date, Integer, String, and_, case, cast, exists, false, func
from sqlalchemy import or_, select, true, union
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement, FunctionElement
from sqlmodel import Session

from store import tables as t
from statutory.rules import RULES
from store.agency import agency_of
from domain.case import AdviceSource

Period = tuple[date, date]  # first and last day, both counted

# --- what is counted ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Measure:
    """A timeliness measure over deadlines: the rules whose deadlines it counts, and how it
    can be broken down. ``council`` is the measure's letter in the council's list (a-h)."""

    key: str
    council: str | None
    title: str
    table: Literal["milestone", "advice"]
    rule_ids: tuple[str, ...]
    definition: str
    statutory: bool = True
    group_by: tuple[str, ...] = ("setting",)

    @property
    def citation(self) -> str:
        """Its rules' citations, from the rules table."""
        return "; ".join(dict.fromkeys(RULES[r].citation for r in self.rule_ids))

    @property
    def counted_by(self) -> str:
        """The date that puts a deadline in a period, in a sentence (``COUNTED_BY``)."""
        return COUNTED_BY[self.key]


REVIEW_ADVICE_RULE = "review.advice_circulated_due"
ASSESSMENT_ADVICE_RULE = "assessment.advice_due"
AMENDED_PLAN_RULE = "review.final_amended_plan_due"
TRANSFER_RULES = ("review.phase_transfer_due.school", "review.phase_transfer_due.post16")

MEASURES: dict[str, Measure] = {m.key: m for m in (
    Measure("review_meetings", "a", "Annual review meetings held within the 12 months",
            "milestone", ("review.review_due",),
            "Review cycles whose review was due (the anniversary of the plan or of the last "
            "review) in the period: on time when the meeting was held on or before that day."),
    Measure("review_reports", "b", "Review reports sent within 2 weeks of the meeting",
            "milestone", ("review.report_due",),
            "Review meetings whose report was due (2 weeks after the meeting) in the period: on "
            "time when the report was sent on or before that day."),
    Measure("review_advice_circulated", "b", "Advice and reports circulated 2 weeks before "
            "the meeting", "milestone", (REVIEW_ADVICE_RULE,),
            "Review meetings whose advice was due to be circulated (2 weeks before the meeting) "
            "in the period: on time when it was circulated on or before that day."),
    Measure("advice", "c", "EHC advice received within statutory timescales", "advice",
            (ASSESSMENT_ADVICE_RULE, REVIEW_ADVICE_RULE),
            "Advice requested from professionals (not the family's own views; not existing "
            "advice reused) due in the period: on time when received on or before its due day.",
            group_by=("agency", "service", "setting")),
    Measure("assessment_advice", "c", "Assessment advice received within 6 weeks", "advice",
            (ASSESSMENT_ADVICE_RULE,),
            "Advice for an EHC needs assessment due (6 weeks after the advisor received the "
            "request) in the period: on time when received on or before that day.",
            group_by=("agency", "service", "setting")),
    Measure("review_advice", "c", "Annual review advice received in time to circulate",
            "advice", (REVIEW_ADVICE_RULE,),
            "Advice for an annual review due (2 weeks before the meeting, to be circulated) in "
            "the period: on time when received on or before that day.",
            group_by=("agency", "service", "setting")),
    Measure("draft_plans", "d", "Draft EHC plans issued within the council's local target",
            "milestone", ("assessment.draft_plan_target",),
            "Assessments that decided to issue a plan, whose draft was due by the council's "
            "local target (EHC_DRAFT_TARGET_WEEKS, default 16 weeks from the request) in the "
            "period: on time when the draft was served on or before that day. The law sets no "
            "limit for the draft.", statutory=False),
    Measure("final_plans", "e", "Final EHC plans issued within 20 weeks", "milestone",
            ("assessment.final_plan_due",),
            "Assessments that decided to issue a plan, whose final plan was due (20 weeks from "
            "the request) in the period: on time when issued on or before that day."),
    Measure("amended_plans", "g", "Amended plans issued within 8 weeks of the proposals",
            "milestone", (AMENDED_PLAN_RULE,),
            "Reviews that decided to amend, whose final amended plan was due (8 weeks after the "
            "proposed amendments were sent) in the period: on time when issued on or before "
            "that day. A decision not to amend after all (Reg 22(4)) is not counted."),
    Measure("phase_transfers", "h", "Phase transfers completed before 15 February / 31 March",
            "milestone", TRANSFER_RULES,
            "Phase transfer reviews due (the Regulations say before 15 February for a school "
            "transfer, before 31 March for secondary to post-16, so the last day on time is 14 "
            "February or 30 March) in the period: on time when the review and any amended plan "
            "were finished on or before that last day; finished on 15 February (31 March) is "
            "late.", group_by=("setting", "transfer")),
    Measure("review_decisions", None, "LA's review decisions within 4 weeks of the meeting",
            "milestone", ("review.decision_due",),
            "Review meetings whose decision (maintain, amend or cease) was due (4 weeks after "
            "the meeting) in the period: on time when notified on or before that day."),
    Measure("decisions_to_assess", None, "Decisions whether to assess within 6 weeks",
            "milestone", ("assessment.decision_due",),
            "Requests whose decision whether to assess was due (6 weeks from the request) in "
            "the period: on time when decided on or before that day."),
)}

# Which date puts each measure's deadlines in a period, as the page shows it beside the figure
# and the API gives it (``counted_by``): always the due day (docs/statistics.md).
COUNTED_BY: dict[str, str] = {
    "review_meetings": "Counted by the day the annual review was due (the anniversary of the "
                       "plan or of the last review)",
    "review_reports": "Counted by the day the review report was due (2 weeks after the "
                      "meeting)",
    "review_advice_circulated": "Counted by the day the advice was due to be circulated (2 "
                                "weeks before the meeting)",
    "advice": "Counted by the day the advice was due",
    "assessment_advice": "Counted by the day the advice was due (6 weeks after the "
                         "professional was asked)",
    "review_advice": "Counted by the day the advice was due (in time to circulate it 2 weeks "
                     "before the meeting)",
    "draft_plans": "Counted by the day the draft plan was due by the council's local target",
    "final_plans": "Counted by the day the final plan was due (20 weeks after the request)",
    "amended_plans": "Counted by the day the final amended plan was due (8 weeks after the "
                     "proposed amendments were sent)",
    "phase_transfers": "Counted by the day the phase transfer review was due",
    "review_decisions": "Counted by the day the decision after the review meeting was due (4 "
                        "weeks after the meeting)",
    "decisions_to_assess": "Counted by the day the decision whether to assess was due (6 weeks "
                           "after the request)",
}

NOT_ADVICE = (AdviceSource.FAMILY.value,)  # the family's views (Reg 6(1)(a)): not Reg 8(1)


class _Counts:
    """Counters that add up field by field (``a += b``), over periods or groups."""

    def __iadd__(self, other):
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
        return self


@dataclass
class Tally(_Counts):
    """Deadlines counted, by what became of them."""

    on_time: int = 0
    late_done: int = 0
    late_open: int = 0
    excused_on_time: int = 0
    excused_late: int = 0
    not_yet_due: int = 0
    ended_before_due: int = 0
    not_amended: int = 0

    def add(self, excused: bool, past_due: bool, n: int, done: int, on_time: int,
            ended: int) -> None:
        """A group of ``n`` deadlines due on one day (``past_due``: before the day the
        figures are as of), ``done`` of them done, ``on_time`` on or before the day; of those
        not done, ``ended`` belong to cases that ended on or before it (``deadline_counts``)."""
        late, not_done = done - on_time, n - done
        late_open = not_done - ended if past_due else 0
        self.on_time += on_time
        self.late_done += late
        self.late_open += late_open
        if excused:
            self.excused_on_time += on_time
            self.excused_late += late + late_open
        self.ended_before_due += ended
        self.not_yet_due += 0 if past_due else not_done - ended

    def not_amending(self, excused: bool, n: int, on_time: int) -> None:
        """Take out ``n`` deadlines (``on_time`` of them on time) that were met by a decision
        not to amend after all (Reg 22(4)) rather than by an amended plan."""
        self.on_time -= on_time
        self.late_done -= n - on_time
        if excused:
            self.excused_on_time -= on_time
            self.excused_late -= n - on_time
        self.not_amended += n

    @property
    def counted(self) -> int:
        return self.on_time + self.late_done + self.late_open

    @property
    def late(self) -> int:
        return self.late_done + self.late_open

    @property
    def excused(self) -> int:
        return self.excused_on_time + self.excused_late


def percent(part: int, whole: int) -> float | None:
    """``part`` of ``whole`` in per cent, to one decimal place; None when there is no whole."""
    return round(100 * part / whole, 1) if whole else None


# --- SQL pieces ---------------------------------------------------------------------------------


class days_between(FunctionElement):
    """``later - earlier`` in whole days, on SQLite and PostgreSQL."""

    type = Integer()
    inherit_cache = True
    name = "days_between"


@compiles(days_between)
def _days_between(element, compiler, **kw):
    later, earlier = list(element.clauses)
    return f"({compiler.process(later, **kw)} - {compiler.process(earlier, **kw)})"


@compiles(days_between, "sqlite")
def _days_between_sqlite(element, compiler, **kw):
    later, earlier = (compiler.process(c, **kw) for c in element.clauses)
    return f"CAST(julianday({later}) - julianday({earlier}) AS INTEGER)"


class year_after(FunctionElement):
    """The first anniversary of a date; 29 February gives 28 February (as
    ``statutory.rules.add_months`` does), on SQLite and PostgreSQL."""

    type = Date()
    inherit_cache = True
    name = "year_after"


@compiles(year_after)
def _year_after(element, compiler, **kw):
    (d,) = (compiler.process(c, **kw) for c in element.clauses)
    return f"CAST(({d} + INTERVAL '1 year') AS DATE)"


@compiles(year_after, "sqlite")
def _year_after_sqlite(element, compiler, **kw):
    (d,) = (compiler.process(c, **kw) for c in element.clauses)
    return (f"(CASE WHEN strftime('%m-%d', {d}) = '02-29' THEN date({d}, '+1 year', '-1 day') "
            f"ELSE date({d}, '+1 year') END)")


def deadline_counts(query, item, done: ColumnElement):
    """``query`` over ``item`` (milestones or advice) with the aggregates every deadline
    measure counts by, for a group of deadlines due on one day (``Tally.add``): how many,
    how many done, and how many done on or before the due day. From the index alone."""
    return query.add_columns(func.count().label("n"), func.count(done).label("done"),
                             func.count(case((done <= item.due, 1))).label("on_time"))


def ended_counts(query, item, done: ColumnElement):
    """``query`` over ``item`` narrowed to the steps not done whose case ended (it is no
    longer open, and closed on or before the due day), with how many: ``Tally.add``'s
    ``ended``. Only those whose case the lists no longer show (``listed`` false: migration
    0007's triggers keep it from the case) can have ended, so the database reads just them
    (``ix_*_unlisted``) and looks up their cases: not every step's."""
    ended_case = t.Case.__table__.alias("ended_case")
    return query.where(done.is_(None), item.listed == false(), exists().where(
        ended_case.c.reference == item.case_reference, ended_case.c.is_open == false(),
        func.coalesce(ended_case.c.closed_on, item.due) <= item.due)).add_columns(
        func.count().label("ended"))


GROUP_COLUMNS = {"setting": t.Case.setting_name, "agency": agency_of(t.AdviceItem.source),
                 "service": t.AdviceItem.service_id, "transfer": t.Milestone.rule_id}


# --- the deadline measures (a, b, c, d, e, g, h and two more) -----------------------------------


def deadline_figures(session: Session, measure_key: str, periods: Sequence[Period],
                     as_of: date, group_by: str | None = None
                     ) -> dict[tuple[str | None, int], Tally]:
    """One measure's deadlines whose due day falls in ``periods``, by (group, period index).
    The group is None when ``group_by`` is None; otherwise the setting's name, the agency,
    the service's id or the transfer's rule id (None where the case does not say)."""
    measure = MEASURES[measure_key]
    if group_by is not None and group_by not in measure.group_by:
        raise ValueError(f"{measure.key} cannot be broken down by {group_by}; it can be by "
                         + ", ".join(measure.group_by))
    out: dict[tuple[str | None, int], Tally] = {}
    for _, group, index, excused, *counts in _deadline_rows(
            session, measure.table, measure.rule_ids, periods, as_of, group_by):
        out.setdefault((group, index), Tally()).add(bool(excused), *counts)
    if AMENDED_PLAN_RULE in measure.rule_ids:
        for group, index, excused, n, on_time in _not_amended_rows(session, periods, group_by):
            out.setdefault((group, index), Tally()).not_amending(bool(excused), n, on_time)
    return out


def all_deadline_figures(session: Session, periods: Sequence[Period], as_of: date
                         ) -> dict[str, dict[int, Tally]]:
    """Every deadline measure at once, by period index: one query over the milestones and one
    over the advice, grouped by rule, however many measures there are."""
    by_rule: dict[tuple[str, str], dict[int, Tally]] = {}  # (table, rule id)
    for table in ("milestone", "advice"):
        rules = sorted({r for m in MEASURES.values() if m.table == table for r in m.rule_ids})
        for rule_id, _, index, excused, *counts in _deadline_rows(
                session, table, tuple(rules), periods, as_of, None):
            by_rule.setdefault((table, rule_id), {}).setdefault(index, Tally()).add(
                bool(excused), *counts)
    for _, index, excused, n, on_time in _not_amended_rows(session, periods, None):
        by_rule.setdefault(("milestone", AMENDED_PLAN_RULE), {}).setdefault(
            index, Tally()).not_amending(bool(excused), n, on_time)
    out: dict[str, dict[int, Tally]] = {}
    for m in MEASURES.values():
        mine: dict[int, Tally] = out.setdefault(m.key, {})
        for rule_id in m.rule_ids:
            for index, tally in by_rule.get((m.table, rule_id), {}).items():
                mine.setdefault(index, Tally()).__iadd__(tally)
    return out


def _grouped(query, group_by: str | None, item, *keys):
    """``query`` with its group column ("grp", for a breakdown), joined to what the group
    needs, and grouped by the first of ``keys``, the due day, the other keys and the group:
    the order of the index the rows are read in, so that without a breakdown the database
    aggregates as it reads (no sort). Grouping by the day (not the period) also lets Python
    tell whether the group is past due. The group is grouped by its label, so that
    PostgreSQL sees the expression the select list has; no constant is grouped by (SQLite
    would sort)."""
    query = query.add_columns(item.due.label("day"))
    if group_by is None:
        return query.group_by(*keys[:1], item.due, *keys[1:])
    if group_by == "setting":
        query = query.join(t.Case, t.Case.reference == item.case_reference)
    elif group_by == "agency":
        query = query.outerjoin(t.Service, t.Service.id == item.service_id)
    return query.add_columns(GROUP_COLUMNS[group_by].label("grp")).group_by(
        *keys[:1], item.due, *keys[1:], "grp")


def _periods_of(periods: Sequence[Period]):
    ends = [end for _, end in periods]
    return lambda day: bisect_left(ends, _day(day))


def _deadline_rows(session: Session, table: str, rule_ids: tuple[str, ...],
                   periods: Sequence[Period], as_of: date, group_by: str | None):
    """(rule id, group, period index, excused, past due, n, done, on time, ended) for each
    day: the deadlines of ``rule_ids`` due in ``periods``, in ``table`` ("milestone" or
    "advice"). Without a breakdown, or by agency, the counts come from the tally the
    database keeps (``deadline_day``, migration 0009: the same counts, added up as the items
    change), with those whose case ended; a breakdown by setting, service or transfer counts
    the items (``deadline_counts``, ``ended_counts``)."""
    first, last = periods[0][0], periods[-1][1]
    if table == "milestone":
        item, done = t.Milestone, t.Milestone.done_on
        extra = [item.applicable == true()]
    else:
        item, done = t.AdviceItem, t.AdviceItem.received_on
        extra = [item.reused == false(), item.source.not_in(NOT_ADVICE)]
    query = select(item.rule_id.label("rule_id"), item.excused.label("excused")).select_from(
        item).where(item.rule_id.in_(rule_ids), item.due >= first, item.due <= last, *extra)
    keys = (item.rule_id, item.excused)
    tallied = group_by in (None, "agency")
    if tallied:  # "ended" is one of its columns
        counts, ended = _tallied(table, rule_ids, first, last, group_by), {}
    else:
        counts = _grouped(deadline_counts(query, item, done), group_by, item, *keys)
        ended = {(r.rule_id, _day(r.day), bool(r.excused), r._mapping.get("grp")): r.ended
                 for r in session.execute(_grouped(ended_counts(query, item, done), group_by,
                                                   item, *keys))}
    period_of = _periods_of(periods)
    for row in session.execute(counts):
        r = row._mapping
        day = _day(r["day"])
        yield (r["rule_id"], r.get("grp"), period_of(day), r["excused"], day < as_of,
               r["n"], r["done"], r["on_time"], r["ended"] if tallied else
               ended.get((r["rule_id"], day, bool(r["excused"]), r.get("grp")), 0))


def _tallied(table: str, rule_ids: tuple[str, ...], first: date, last: date,
             group_by: str | None):
    """``deadline_counts`` and ``ended_counts`` by rule, due day and exception (and agency),
    read from the tally (``t.DeadlineDay``) in the order of its key: no sort, one row per key.
    Rows whose items have all gone (``n`` = 0) are not deadlines, as they would not be a
    group of items."""
    d = t.DeadlineDay
    query = select(d.rule_id.label("rule_id"), d.excused.label("excused"),
                   d.due.label("day"), func.sum(d.n).label("n"),
                   func.sum(d.done).label("done"), func.sum(d.on_time).label("on_time"),
                   func.sum(d.ended).label("ended")
                   ).where(d.item == table, d.rule_id.in_(rule_ids), d.due >= first,
                           d.due <= last, d.n > 0)
    if group_by is None:
        return query.group_by(d.rule_id, d.due, d.excused)
    return query.add_columns(d.agency.label("grp")).group_by(d.rule_id, d.due, d.excused,
                                                             d.agency)


def _not_amended_rows(session: Session, periods: Sequence[Period], group_by: str | None):
    """(group, period index, excused, count, on time) of the final amended plans due in
    ``periods`` whose deadline a decision not to amend after all met (Reg 22(4)): few, found
    from the reviews that say so (``ix_review_not_amended_on``)."""
    first, last = periods[0][0], periods[-1][1]
    m = t.Milestone
    not_amended = select(t.Review.case_reference).where(t.Review.not_amended_on.is_not(None))
    query = select(m.excused.label("excused"), func.count().label("n"),
                   func.count(case((m.done_on <= m.due, 1))).label("on_time")).where(
        m.case_reference.in_(not_amended), m.rule_id == AMENDED_PLAN_RULE,
        m.applicable == true(), m.due >= first, m.due <= last)
    period_of = _periods_of(periods)
    for row in session.execute(_grouped(query, group_by, m, m.excused)):
        r = row._mapping
        yield r.get("grp"), period_of(r["day"]), r["excused"], r["n"], r["on_time"]


def service_names(session: Session, ids: set[str]) -> dict[str, str]:
    """The names of the services with ``ids``, for labelling a breakdown by service."""
    if not ids:
        return {}
    return dict(session.execute(select(t.Service.id, t.Service.name)
                                .where(t.Service.id.in_(sorted(ids)))).all())


# --- f: what annual reviews decided ------------------------------------------------------------

DECISIONS = ("maintain", "amend", "cease")


@dataclass
class OutcomeTally(_Counts):
    maintain: int = 0
    amend: int = 0
    cease: int = 0
    not_amended_after_all: int = 0  # of "amend": the LA decided not to amend (Reg 22(4))

    @property
    def decisions(self) -> int:
        return self.maintain + self.amend + self.cease


def review_outcomes(session: Session, periods: Sequence[Period], group_by: str | None = None
                    ) -> dict[tuple[str | None, int], OutcomeTally]:
    """Review decisions (maintain, amend, cease) made in ``periods``, by (group, period
    index): the period of the day the LA decided. ``group_by`` None or "setting"."""
    if group_by not in (None, "setting"):
        raise ValueError(f"review_outcomes cannot be broken down by {group_by}; it can be by "
                         "setting")
    first, last = periods[0][0], periods[-1][1]
    r = t.Review
    query = select(r.decided_on.label("day"), r.decision.label("decision"),
                   func.count().label("n"), func.count(r.not_amended_on).label("not_amended")
                   ).where(r.decided_on >= first, r.decided_on <= last,
                           r.decision.in_(DECISIONS))
    if group_by:
        query = query.join(t.Case, t.Case.reference == r.case_reference).add_columns(
            t.Case.setting_name.label("grp")).group_by(r.decided_on, r.decision, "grp")
    else:  # by day, in the order of ix_review_decided_on: no sort
        query = query.group_by(r.decided_on, r.decision)
    period_of = _periods_of(periods)
    out: dict[tuple[str | None, int], OutcomeTally] = {}
    for row in session.execute(query):
        x = row._mapping
        tally = out.setdefault((x.get("grp"), period_of(x["day"])), OutcomeTally())
        setattr(tally, x["decision"], getattr(tally, x["decision"]) + x["n"])
        tally.not_amended_after_all += x["not_amended"]
    return out


# --- the DfE method: plans issued within 20 weeks; decisions within 6 weeks --------------------


@dataclass
class PlanTally(_Counts):
    """Final plans issued, the way DfE's "Timeliness" table counts them (its column names in
    ``docs/statistics.md``): ``_ex`` excludes plans an exception applies to."""

    issued: int = 0
    within_20_weeks: int = 0
    within_a_year: int = 0  # after 20 weeks, by the first anniversary of the request
    over_a_year: int = 0
    days: int = 0  # request to issue, summed, for the average
    issued_ex: int = 0
    within_20_weeks_ex: int = 0
    within_a_year_ex: int = 0
    over_a_year_ex: int = 0
    days_ex: int = 0


def dfe_final_plans(session: Session, periods: Sequence[Period]) -> dict[int, PlanTally]:
    """Final EHC plans issued in ``periods`` (the period of the issue date), by period index.
    Counted by issue day in the order of ``ix_milestone_done``."""
    first, last = periods[0][0], periods[-1][1]
    m = t.Milestone
    query = select(
        m.done_on.label("day"), m.excused.label("excused"), func.count().label("issued"),
        func.count(case((m.done_on <= m.due, 1))).label("within_20_weeks"),
        func.count(case((m.done_on <= m.due, None), (m.done_on <= year_after(m.started_on), 1))
                   ).label("within_a_year"),
        func.sum(days_between(m.done_on, m.started_on)).label("days"),
    ).where(m.rule_id == "assessment.final_plan_due", m.done_on >= first, m.done_on <= last,
            m.applicable == true()).group_by(m.done_on, m.excused)
    period_of = _periods_of(periods)
    out: dict[int, PlanTally] = {}
    for row in session.execute(query):
        x = row._mapping
        tally = out.setdefault(period_of(x["day"]), PlanTally())
        counts = dict(issued=x["issued"], within_20_weeks=x["within_20_weeks"],
                      within_a_year=x["within_a_year"],
                      over_a_year=x["issued"] - x["within_20_weeks"] - x["within_a_year"],
                      days=int(x["days"] or 0))
        for suffix in ("", "_ex") if not x["excused"] else ("",):
            for name, n in counts.items():
                setattr(tally, name + suffix, getattr(tally, name + suffix) + n)
    return out


@dataclass
class DecisionTally(_Counts):
    """Requests received, and decisions whether to assess made, in a period."""

    requests: int = 0
    decisions: int = 0
    within_6_weeks: int = 0
    decisions_ex: int = 0
    within_6_weeks_ex: int = 0
    assess: int = 0
    refuse: int = 0


def dfe_decisions(session: Session, periods: Sequence[Period]) -> dict[int, DecisionTally]:
    """Requests for an assessment received in ``periods`` (their request date), and decisions
    whether to assess made in them (the decision's date), by period index; each counted by
    day in the order of its index (``ix_case_kind_request``, ``ix_milestone_done``)."""
    first, last = periods[0][0], periods[-1][1]
    period_of = _periods_of(periods)
    out: dict[int, DecisionTally] = {}
    c, m = t.Case, t.Milestone
    for day, n in session.execute(
            select(c.request_date, func.count()).where(
                c.kind == "assessment", c.request_date >= first, c.request_date <= last)
            .group_by(c.request_date)):
        out.setdefault(period_of(day), DecisionTally()).requests += n
    # A refusal closes the case on the day of the decision (AssessmentWorkflow), so the
    # refused cases to look for are the few closed in the period.
    refused = select(c.reference).where(c.stage == "refused", c.closed_on >= first,
                                        c.closed_on <= last)
    for row in session.execute(
            select(m.done_on.label("day"), m.excused.label("excused"),
                   func.count().label("n"),
                   func.count(case((m.done_on <= m.due, 1))).label("on_time"),
                   func.count(case((m.case_reference.in_(refused), 1))).label("refused"))
            .where(m.rule_id == "assessment.decision_due", m.done_on >= first,
                   m.done_on <= last).group_by(m.done_on, m.excused)):
        x = row._mapping
        tally = out.setdefault(period_of(x["day"]), DecisionTally())
        tally.decisions += x["n"]
        tally.within_6_weeks += x["on_time"]
        if not x["excused"]:
            tally.decisions_ex += x["n"]
            tally.within_6_weeks_ex += x["on_time"]
        tally.refuse += x["refused"]
        tally.assess += x["n"] - x["refused"]
    return out


# --- the per-person export with SEN2's field names ---------------------------------------------

SEN2_COLUMNS = (
    "PersonId", "CaseReference", "PlanReference",
    # Module 2: requests
    "ReceivedDate", "RequestSource", "RequestOutcomeDate", "RequestOutcome",
    # Module 3: assessments
    "AssessmentOutcome", "AssessmentOutcomeDate", "Week20",
    # Module 4: named plan
    "StartDate", "CeaseDate", "CeaseReason",
    # Module 5: active plans
    "ReviewMeeting", "ReviewOutcome", "LastReview",
    # The product's own figures, to check the return against
    "DecisionDue", "FinalPlanDue", "WeeksToFinalPlan",
)

# domain.case.RequestSource -> SEN2 RequestSource (1 parent or young person, 2 school or
# other education setting, 3 health, 4 social care, 5 other).
REQUEST_SOURCE_CODES = {"parent": "1", "young_person": "1", "school": "2", "other": "5"}
# review.decision -> SEN2 ReviewOutcome
REVIEW_OUTCOME_CODES = {"maintain": "M", "amend": "A", "cease": "C"}
# domain.case.ClosePlan.reason -> SEN2 CeaseReason (1 maximum age, 5 transferred to another
# LA, 6 no longer wishes to engage in education or training, 9 other). A plan ceased after a
# review (Regs 29-31) has no coded reason in the product: left blank.
CEASE_REASON_CODES = {"over_25": "1", "moved_out_of_area": "5",
                      "left_education_19_plus": "6", "other": "9"}


def sen2_rows(session: Session, from_date: date, to_date: date) -> Iterator[dict[str, str]]:
    """One row per request for an assessment open at any time from ``from_date`` to
    ``to_date``, and per EHC plan maintained at any time in it (a plan is on its assessment's
    row), as at ``to_date``, with SEN2's field names and codes (``docs/statistics.md``). The
    person is the council's own id (``child.council_reference``): no names or dates of birth.
    Dates are YYYY-MM-DD; a blank is an empty string."""
    c, p = t.Case, t.Plan
    in_scope = union(
        select(c.reference.label("ref")).where(
            c.kind == "assessment", c.request_date <= to_date,
            or_(c.closed_on.is_(None), c.closed_on >= from_date)),
        select(p.reference.label("ref")).where(
            p.issued_on <= to_date, or_(p.ended_on.is_(None), p.ended_on >= from_date)),
    ).subquery()
    dec, nop, fin = (t.Milestone.__table__.alias(a) for a in ("dec", "nop", "fin"))
    latest = select(t.Review.plan_reference, func.max(t.Review.cycle).label("cycle")).where(
        t.Review.meeting_held_on <= to_date).group_by(t.Review.plan_reference).subquery()
    review = t.Review.__table__.alias("rev")
    cycle_case = t.Case.__table__.alias("cyc")
    query = (
        select(in_scope.c.ref, t.Child.council_reference, c.request_date, c.request_source,
               c.stage, c.closed_on, c.plan_decided_on,
               dec.c.done_on.label("decided_on"), dec.c.due.label("decision_due"),
               nop.c.done_on.label("no_plan_on"), nop.c.excused.label("no_plan_excused"),
               fin.c.done_on.label("final_on"), fin.c.due.label("final_due"),
               fin.c.excused.label("final_excused"),
               days_between(fin.c.done_on, fin.c.started_on).label("final_days"),
               p.reference.label("plan"), p.issued_on, p.status, p.ended_on,
               cycle_case.c.close_reason.label("plan_close_reason"),
               review.c.meeting_held_on.label("review_held_on"),
               review.c.decision.label("review_decision"),
               review.c.decided_on.label("review_decided_on"))
        .select_from(in_scope)
        .outerjoin(c, and_(c.reference == in_scope.c.ref, c.kind == "assessment"))
        .outerjoin(p, p.reference == in_scope.c.ref)
        .join(t.Child, t.Child.id == func.coalesce(c.child_id, p.child_id))
        .outerjoin(dec, and_(dec.c.case_reference == c.reference, dec.c.key == "decision_due"))
        .outerjoin(nop, and_(nop.c.case_reference == c.reference,
                             nop.c.key == "no_plan_notice_due"))
        .outerjoin(fin, and_(fin.c.case_reference == c.reference, fin.c.key == "final_plan_due"))
        .outerjoin(cycle_case, and_(
            cycle_case.c.reference == p.reference + ".R" + cast(p.current_cycle, String),
            cycle_case.c.stage == "closed"))
        .outerjoin(latest, latest.c.plan_reference == p.reference)
        .outerjoin(review, and_(review.c.plan_reference == latest.c.plan_reference,
                                review.c.cycle == latest.c.cycle))
        .order_by(in_scope.c.ref)
    )
    for row in session.execute(query).yield_per(1000):
        yield _sen2_row(row._mapping, from_date, to_date)


def _day(value: date | str | None) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _sen2_row(r, frm: date, to: date) -> dict[str, str]:
    def by_end(value) -> date | None:  # a date that had come by the end of the period
        d = _day(value)
        return d if d is not None and d <= to else None

    out = dict.fromkeys(SEN2_COLUMNS, "")
    out.update(PersonId=r["council_reference"] or "", CaseReference="", PlanReference="")
    is_assessment = r["request_date"] is not None
    if is_assessment:
        out["CaseReference"] = r["ref"]
        out.update(_sen2_request(r, frm, to, by_end))
    else:  # a plan brought in without its assessment: that was before this period
        out.update(RequestOutcome="H", AssessmentOutcome="H")
    plan_start = by_end(r["issued_on"])
    if r["plan"] is not None and plan_start is not None:
        out["PlanReference"] = r["plan"]
        out["StartDate"] = plan_start.isoformat()
        ended = by_end(r["ended_on"]) if r["status"] in ("ceased", "closed") else None
        if ended is not None:
            out["CeaseDate"] = ended.isoformat()
            out["CeaseReason"] = CEASE_REASON_CODES.get(r["plan_close_reason"] or "", "")
        out["ReviewMeeting"] = _iso(by_end(r["review_held_on"]))
        decided = by_end(r["review_decided_on"])
        if decided is not None:
            out["ReviewOutcome"] = REVIEW_OUTCOME_CODES.get(r["review_decision"] or "", "")
            out["LastReview"] = decided.isoformat()
    return out


def _sen2_request(r, frm: date, to: date, by_end) -> dict[str, str]:
    out = {"ReceivedDate": _iso(_day(r["request_date"])),
           "RequestSource": REQUEST_SOURCE_CODES.get(r["request_source"], "5"),
           "DecisionDue": _iso(_day(r["decision_due"])),
           "FinalPlanDue": _iso(_day(r["final_due"]))}
    closed = by_end(r["closed_on"]) if r["stage"] == "closed" else None
    decided = by_end(r["decided_on"])
    if decided is None:
        out["RequestOutcome"] = "W" if closed is not None else "A"
        return out
    refused = r["stage"] == "refused"
    if decided < frm:
        out["RequestOutcome"] = "H"
    else:
        out.update(RequestOutcome="N" if refused else "Y", RequestOutcomeDate=decided.isoformat())
    if refused:
        return out
    no_plan = by_end(r["no_plan_on"]) if r["stage"] == "no_plan" else None
    final = by_end(r["final_on"])
    outcome_on, excused = (no_plan, r["no_plan_excused"]) if no_plan else (final, r["final_excused"])
    if outcome_on is not None:
        if outcome_on < frm:
            out["AssessmentOutcome"] = "H"
        else:
            out.update(AssessmentOutcome="N" if no_plan else "Y",
                       AssessmentOutcomeDate=outcome_on.isoformat(),
                       Week20="1" if excused else "0")
        if final is not None and r["final_days"] is not None:
            out["WeeksToFinalPlan"] = f"{r['final_days'] / 7:.1f}"
    elif by_end(r["plan_decided_on"]) is not None:
        out["AssessmentOutcome"] = "Y"  # to issue a plan; not issued yet: no date
    else:
        out["AssessmentOutcome"] = "W" if closed is not None else "A"
    return out


def _iso(d: date | None) -> str:
    return d.isoformat() if d is not None else ""
