"""The timeliness statistics as the API returns them and the pages show them: the council's
measures a-h (and two more) by calendar quarter, one measure broken down, the review outcomes
(measure f), DfE's method, the per-person export to check the SEN2 return against, the
statistics dashboard's figures and the public summary.

The counting is ``store.timeliness``'s (SQL aggregates, no clock); every definition is in
``docs/statistics.md``. Here the counts become the response models (``api/statistics.py``
sends them as JSON, or as CSV from the rows here), and the pages (``api/stats_pages.py``) are
drawn from the same functions: a page shows what the API returns, never a figure of its own.

**The public summary** shows aggregate figures only, and suppresses small numbers so that no
child can be recognised in them: a count from 1 to 4 is shown as "fewer than 5", and a
percentage is shown only when what it counts and what it leaves out are each 0 or at least 5
(otherwise it would give a small number away). Nothing else on it identifies anyone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date

from pydantic import BaseModel, Field
from sqlmodel import Session

from domain.agencies import AGENCY_LABELS
from domain.words import long_date
from services import access_log
from services.clock import today
from services.staff import Staff
from services.errors import ServiceError
from services.periods import last_full_quarters, quarters
from store import timeliness as tl

# --- response bodies ----------------------------------------------------------------------------


class ExcludingExceptions(BaseModel):
    counted: int = Field(description="counted, less those an exception excuses")
    on_time: int = Field(description="on time, less those an exception excuses")
    percent_on_time: float | None = Field(description="on_time of counted, %, one decimal "
                                          "place; null when nothing is counted")


class NotCounted(BaseModel):
    not_yet_due: int = Field(description="not done, and the due day has not yet passed")
    ended_before_due: int = Field(description="not done, and the case ended (request "
                                  "withdrawn, moved away, plan ceased) on or before the due day")
    not_amended: int = Field(description="the LA decided not to amend after all (Reg 22(4)); "
                             "amended plans only")


class DeadlineFigures(BaseModel):
    counted: int = Field(description="deadlines due in the period that were done, or are "
                         "past due and not done: the denominator, including exceptions")
    on_time: int = Field(description="done on or before the due day (the due day is on time)")
    late: int = Field(description="done after the due day, or past due and not done")
    late_open: int = Field(description="of late: not done yet")
    excused: int = Field(description="of counted: excused by a recorded exception that has "
                         "not been withdrawn")
    excused_on_time: int = Field(description="of excused: on time all the same")
    percent_on_time: float | None = Field(description="on_time of counted, including "
                                          "exceptions, %, one decimal place")
    excluding_exceptions: ExcludingExceptions
    not_counted: NotCounted

    @classmethod
    def of(cls, tally: tl.Tally) -> DeadlineFigures:
        ex_counted, ex_on_time = tally.counted - tally.excused, tally.on_time - tally.excused_on_time
        return cls(counted=tally.counted, on_time=tally.on_time, late=tally.late,
                   late_open=tally.late_open, excused=tally.excused,
                   excused_on_time=tally.excused_on_time,
                   percent_on_time=tl.percent(tally.on_time, tally.counted),
                   excluding_exceptions=ExcludingExceptions(
                       counted=ex_counted, on_time=ex_on_time,
                       percent_on_time=tl.percent(ex_on_time, ex_counted)),
                   not_counted=NotCounted(not_yet_due=tally.not_yet_due,
                                          ended_before_due=tally.ended_before_due,
                                          not_amended=tally.not_amended))


class Quarter(BaseModel):
    quarter: str = Field(description="calendar quarter, e.g. 2026-Q3 (July to September)")
    starts_on: date = Field(description="the quarter's first day, or the period's from date")
    ends_on: date = Field(description="the quarter's last day, or the period's to date")


class DeadlineQuarter(Quarter):
    figures: DeadlineFigures


class DeadlineGroup(BaseModel):
    group: str | None = Field(description="the setting's name, the agency, the service's id or "
                              "the transfer's rule id; null where the record does not say")
    label: str = Field(description="what to show for the group")
    figures: DeadlineFigures
    quarters: list[DeadlineQuarter]


class MeasureInfo(BaseModel):
    measure: str = Field(description="the measure's key")
    council_measure: str | None = Field(description="its letter in the council's list of "
                                        "measures (a-h), if it is one")
    title: str
    definition: str = Field(description="what is counted, and which date puts it in a period")
    counted_by: str = Field(description="which date puts a deadline in a period, in a sentence "
                            "a person reads beside the figure (for every deadline measure: the "
                            "day it was due)")
    citation: str
    statutory: bool = Field(description="false for the council's local target (draft plans)")
    rule_ids: list[str] = Field(description="statutory/rules.py rules whose deadlines it counts")
    breakdowns: list[str] = Field(description="what it can be broken down by (`group_by`)")


def _info(m: tl.Measure) -> dict:
    """A measure's ``MeasureInfo`` fields."""
    return dict(measure=m.key, council_measure=m.council, title=m.title,
                definition=m.definition, counted_by=m.counted_by, citation=m.citation,
                statutory=m.statutory,
                rule_ids=list(m.rule_ids), breakdowns=list(m.group_by))


class MeasureFigures(MeasureInfo):
    figures: DeadlineFigures = Field(description="the whole period")
    quarters: list[DeadlineQuarter] = Field(description="every calendar quarter the period "
                                            "touches, in order, including empty ones")


class MeasureReport(MeasureFigures):
    from_date: date = Field(serialization_alias="from")
    to_date: date = Field(serialization_alias="to")
    as_of: date
    group_by: str | None
    groups: list[DeadlineGroup] = Field(description="with `group_by`: one per group, largest "
                                        "first; empty without it")


class OutcomeCount(BaseModel):
    count: int
    percent: float | None = Field(description="of the decisions, %, one decimal place")


class OutcomeFigures(BaseModel):
    decisions: int = Field(description="review decisions made in the period")
    maintained: OutcomeCount
    amended: OutcomeCount
    ceased: OutcomeCount
    not_amended_after_all: int = Field(description="of amended: the LA then decided not to "
                                       "amend (Reg 22(4))")

    @classmethod
    def of(cls, tally: tl.OutcomeTally) -> OutcomeFigures:
        n = tally.decisions
        return cls(decisions=n, not_amended_after_all=tally.not_amended_after_all,
                   **{name: OutcomeCount(count=v, percent=tl.percent(v, n)) for name, v in (
                       ("maintained", tally.maintain), ("amended", tally.amend),
                       ("ceased", tally.cease))})


class OutcomeQuarter(Quarter):
    figures: OutcomeFigures


class OutcomeGroup(BaseModel):
    group: str | None = Field(description="the setting's name; null where it is not recorded")
    label: str
    figures: OutcomeFigures
    quarters: list[OutcomeQuarter]


class OutcomesReport(BaseModel):
    measure: str = "review_outcomes"
    council_measure: str = "f"
    title: str = "Annual reviews that maintained, amended or ceased the plan"
    definition: str = ("The LA's decisions after annual review meetings (CFA 2014 s.44; Reg "
                       "20(10)), in the period of the day each decision was made.")
    counted_by: str = Field(default="Counted by the day the decision was made",
                            description="which date puts a decision in a period, in a sentence")
    from_date: date = Field(serialization_alias="from")
    to_date: date = Field(serialization_alias="to")
    figures: OutcomeFigures
    quarters: list[OutcomeQuarter]
    group_by: str | None = None
    groups: list[OutcomeGroup] = []


class TimelinessReport(BaseModel):
    from_date: date = Field(serialization_alias="from")
    to_date: date = Field(serialization_alias="to")
    as_of: date
    measures: list[MeasureFigures]
    review_outcomes: OutcomesReport


class FinalPlanFigures(BaseModel):
    """DfE's "Timeliness of new EHC plans" columns (explore-education-statistics)."""

    plans_issued_den: int = Field(description="final plans issued, including exceptions")
    plans_issued_den_ex: int = Field(description="final plans issued, excluding those an "
                                     "exception applies to")
    plans_issued_within_20_weeks: int
    plans_issued_20_weeks_ex: int
    pc_plans_issued_within_20_weeks: float | None
    pc_plans_issued_20_weeks_ex: float | None
    plans_issued_gt20weeks_ltyear: int = Field(description="after 20 weeks, by the first "
                                               "anniversary of the request")
    plans_issued_gt20weeks_ltyear_ex: int
    plans_issued_gt_1_year: int
    plans_issued_gt_1_year_ex: int
    avg_weeks_issue_plan: float | None = Field(description="mean weeks from request to issue, "
                                               "one decimal place")
    avg_weeks_issue_plan_exc: float | None

    @classmethod
    def of(cls, p: tl.PlanTally) -> FinalPlanFigures:
        return cls(
            plans_issued_den=p.issued, plans_issued_den_ex=p.issued_ex,
            plans_issued_within_20_weeks=p.within_20_weeks,
            plans_issued_20_weeks_ex=p.within_20_weeks_ex,
            pc_plans_issued_within_20_weeks=tl.percent(p.within_20_weeks, p.issued),
            pc_plans_issued_20_weeks_ex=tl.percent(p.within_20_weeks_ex, p.issued_ex),
            plans_issued_gt20weeks_ltyear=p.within_a_year,
            plans_issued_gt20weeks_ltyear_ex=p.within_a_year_ex,
            plans_issued_gt_1_year=p.over_a_year, plans_issued_gt_1_year_ex=p.over_a_year_ex,
            avg_weeks_issue_plan=round(p.days / p.issued / 7, 1) if p.issued else None,
            avg_weeks_issue_plan_exc=round(p.days_ex / p.issued_ex / 7, 1) if p.issued_ex
            else None)


class DecisionFigures(BaseModel):
    requests: int = Field(description="requests for an assessment received in the period")
    decisions: int = Field(description="decisions whether to assess made in the period")
    decided_to_assess: int
    decided_not_to_assess: int
    within_6_weeks: int = Field(description="decided on or before the day 6 weeks after the "
                                "request (Reg 5(1))")
    pc_within_6_weeks: float | None
    decisions_ex: int = Field(description="decisions, excluding those an exception applies to "
                              "(Reg 5(4))")
    within_6_weeks_ex: int
    pc_within_6_weeks_ex: float | None

    @classmethod
    def of(cls, d: tl.DecisionTally) -> DecisionFigures:
        return cls(requests=d.requests, decisions=d.decisions, decided_to_assess=d.assess,
                   decided_not_to_assess=d.refuse, within_6_weeks=d.within_6_weeks,
                   pc_within_6_weeks=tl.percent(d.within_6_weeks, d.decisions),
                   decisions_ex=d.decisions_ex, within_6_weeks_ex=d.within_6_weeks_ex,
                   pc_within_6_weeks_ex=tl.percent(d.within_6_weeks_ex, d.decisions_ex))


class DfeQuarter(Quarter):
    final_plans: FinalPlanFigures
    decisions: DecisionFigures


class DfeCountedBy(BaseModel):
    """Which date puts each of DfE's figures in a period: not the due day (as the council's
    measures) but the day the thing happened."""

    final_plans: str = Field(default="Counted by the day the final plan was issued",
                             description="final plans: the day issued")
    requests: str = Field(default="Counted by the day the request was received",
                          description="requests: the day received")
    decisions: str = Field(default="Counted by the day the decision whether to assess was "
                           "made", description="decisions whether to assess: the day made")


class DfeReport(BaseModel):
    from_date: date = Field(serialization_alias="from")
    to_date: date = Field(serialization_alias="to")
    counted_by: DfeCountedBy = Field(default_factory=DfeCountedBy, description="which date "
                                     "puts each figure in a period, in a sentence a person "
                                     "reads beside it")
    final_plans: FinalPlanFigures = Field(description="final EHC plans issued in the period "
                                          "(the issue date puts a plan in a period), Reg 13(2)")
    decisions: DecisionFigures
    quarters: list[DfeQuarter]


class Sen2Export(BaseModel):
    """The shape of the JSON export (it is streamed)."""

    from_date: date = Field(serialization_alias="from")
    to_date: date = Field(serialization_alias="to")
    columns: list[str] = Field(description="the fields of each row, in order")
    rows: list[dict[str, str]] = Field(description="one per request for an assessment open in "
                                       "the period and per plan maintained in it; blank "
                                       "fields are empty strings")


@dataclass(frozen=True)
class CsvTable:
    """Figures as CSV rows: the columns in order, the rows (dicts; other keys are left out)
    and the file's name. The route streams them."""

    columns: tuple[str, ...]
    rows: Iterable[dict]
    filename: str


# --- the counts as figures ----------------------------------------------------------------------


def _periods(qs: list[tuple[str, date, date]]) -> list[tl.Period]:
    return [(start, end) for _, start, end in qs]


def _total(by_index: dict[int, object], factory: Callable):
    total = factory()
    for tally in by_index.values():
        total += tally
    return total


def _quarter_list(qs, by_index: dict, factory: Callable, model: type, figures: Callable) -> list:
    return [model(quarter=label, starts_on=start, ends_on=end,
                  figures=figures(by_index.get(i, factory())))
            for i, (label, start, end) in enumerate(qs)]


def _measure(key: str) -> tl.Measure:
    measure = tl.MEASURES.get(key)
    if measure is None:
        raise ServiceError(404, f"There is no measure '{key}'. Measures: "
                           + ", ".join(tl.MEASURES), "not_found")
    return measure


def _check_group_by(what: str, group_by: str | None, allowed: Iterable[str]) -> None:
    allowed = list(allowed)
    if group_by is not None and group_by not in allowed:
        raise ServiceError(422, f"Please correct: group_by: {what} can be broken down by "
                           + " or ".join(allowed) + f", not '{group_by}'", "invalid_input")


def _label(group_by: str | None, group: str | None, names: dict[str, str]) -> str:
    if group is None:
        return {"service": "(no service named)"}.get(group_by or "", "(not recorded)")
    if group_by == "agency":
        return AGENCY_LABELS.get(group, group)
    if group_by == "service":
        return names.get(group, group)
    if group_by == "transfer":
        return {"review.phase_transfer_due.school": "School phase (before 15 February)",
                "review.phase_transfer_due.post16": "Secondary to post-16 (before 31 March)"}[group]
    return group


def _grouped(by_key: dict[tuple[str | None, int], object]) -> dict[str | None, dict[int, object]]:
    out: dict[str | None, dict[int, object]] = {}
    for (group, index), tally in by_key.items():
        out.setdefault(group, {})[index] = tally
    return out


def timeliness(*, session: Session, from_date: date, to_date: date,
               as_of: date | None = None) -> TimelinessReport:
    """Every measure over the deadlines due from ``from_date`` to ``to_date``, as on ``as_of``
    (default today), overall and by calendar quarter; and measure f (review outcomes) by
    decision date. A 422 for a period that is not one."""
    qs = quarters(from_date, to_date)
    as_of = as_of or today()
    figures = tl.all_deadline_figures(session, _periods(qs), as_of)
    measures = [MeasureFigures(
        **_info(m), figures=DeadlineFigures.of(_total(figures[m.key], tl.Tally)),
        quarters=_quarter_list(qs, figures[m.key], tl.Tally, DeadlineQuarter,
                               DeadlineFigures.of)) for m in tl.MEASURES.values()]
    outcomes = _outcomes(session, qs, from_date, to_date, None)
    return TimelinessReport(from_date=from_date, to_date=to_date, as_of=as_of,
                            measures=measures, review_outcomes=outcomes)


def timeliness_measure(*, session: Session, measure: str, from_date: date, to_date: date,
                       as_of: date | None = None, group_by: str | None = None
                       ) -> MeasureReport:
    """One measure, and with ``group_by`` broken down (groups largest first). A 404 for a
    measure there is not, a 422 for a breakdown it has not or a period that is not one."""
    m = _measure(measure)
    _check_group_by(m.key, group_by, m.group_by)
    qs = quarters(from_date, to_date)
    as_of = as_of or today()
    by_key = tl.deadline_figures(session, m.key, _periods(qs), as_of, group_by)
    grouped = _grouped(by_key)
    whole: dict[int, tl.Tally] = {}
    for per_group in grouped.values():
        for index, tally in per_group.items():
            whole.setdefault(index, tl.Tally()).__iadd__(tally)
    names = tl.service_names(session, {g for g in grouped if g}) if group_by == "service" else {}
    groups = sorted((DeadlineGroup(
        group=g, label=_label(group_by, g, names),
        figures=DeadlineFigures.of(_total(per, tl.Tally)),
        quarters=_quarter_list(qs, per, tl.Tally, DeadlineQuarter, DeadlineFigures.of))
        for g, per in grouped.items()) if group_by else [],
        key=lambda g: (-g.figures.counted, g.label))
    return MeasureReport(
        **_info(m), from_date=from_date, to_date=to_date, as_of=as_of,
        group_by=group_by, figures=DeadlineFigures.of(_total(whole, tl.Tally)),
        quarters=_quarter_list(qs, whole, tl.Tally, DeadlineQuarter, DeadlineFigures.of),
        groups=groups)


def _outcomes(session, qs, from_date: date, to_date: date, group_by: str | None
              ) -> OutcomesReport:
    by_key = tl.review_outcomes(session, _periods(qs), group_by)
    grouped = _grouped(by_key)
    whole: dict[int, tl.OutcomeTally] = {}
    for per_group in grouped.values():
        for index, tally in per_group.items():
            whole.setdefault(index, tl.OutcomeTally()).__iadd__(tally)
    groups = sorted((OutcomeGroup(
        group=g, label=_label(group_by, g, {}),
        figures=OutcomeFigures.of(_total(per, tl.OutcomeTally)),
        quarters=_quarter_list(qs, per, tl.OutcomeTally, OutcomeQuarter, OutcomeFigures.of))
        for g, per in grouped.items()) if group_by else [],
        key=lambda g: (-g.figures.decisions, g.label))
    return OutcomesReport(
        from_date=from_date, to_date=to_date, group_by=group_by, groups=groups,
        figures=OutcomeFigures.of(_total(whole, tl.OutcomeTally)),
        quarters=_quarter_list(qs, whole, tl.OutcomeTally, OutcomeQuarter, OutcomeFigures.of))


def review_outcomes(*, session: Session, from_date: date, to_date: date,
                    group_by: str | None = None) -> OutcomesReport:
    """Measure f: the LA's review decisions made in the period, by quarter, and with
    ``group_by=setting`` by the child's school or setting."""
    _check_group_by("review_outcomes", group_by, ("setting",))
    return _outcomes(session, quarters(from_date, to_date), from_date, to_date, group_by)


def dfe(*, session: Session, from_date: date, to_date: date) -> DfeReport:
    """DfE's method: final plans issued in the period (within 20 weeks, including and
    excluding exceptions) and decisions whether to assess (within 6 weeks), by quarter."""
    qs = quarters(from_date, to_date)
    plans = tl.dfe_final_plans(session, _periods(qs))
    decisions = tl.dfe_decisions(session, _periods(qs))
    return DfeReport(
        from_date=from_date, to_date=to_date,
        final_plans=FinalPlanFigures.of(_total(plans, tl.PlanTally)),
        decisions=DecisionFigures.of(_total(decisions, tl.DecisionTally)),
        quarters=[DfeQuarter(quarter=label, starts_on=start, ends_on=end,
                             final_plans=FinalPlanFigures.of(plans.get(i, tl.PlanTally())),
                             decisions=DecisionFigures.of(decisions.get(i, tl.DecisionTally())))
                  for i, (label, start, end) in enumerate(qs)])


def sen2_export(*, session: Session, staff: Staff | None, from_date: date,
                to_date: date) -> CsvTable:
    """The SEN2 check rows (``store.timeliness.sen2_rows``: read as they are streamed), after
    the period is checked: an export, logged for every case and plan in it
    (``services.access_log``)."""
    quarters(from_date, to_date)  # checks the period
    rows = access_log.logged_rows(
        tl.sen2_rows(session, from_date, to_date), session=session, staff=staff,
        references_of=lambda row: [row["CaseReference"], row["PlanReference"]],
        what=f"The SEN2 check export, {long_date(from_date)} to {long_date(to_date)}",
        route="GET /api/exports/sen2")
    return CsvTable(tl.SEN2_COLUMNS, rows, f"sen2-check-{from_date}-{to_date}.csv")


# --- CSV ------------------------------------------------------------------------------------------


DEADLINE_CSV = ("measure", "council_measure", "group", "label", "quarter", "starts_on",
                "ends_on", "counted", "on_time", "late", "late_open", "excused",
                "excused_on_time", "percent_on_time", "counted_excluding_exceptions",
                "on_time_excluding_exceptions", "percent_on_time_excluding_exceptions",
                "not_yet_due", "ended_before_due", "not_amended")


def _deadline_csv_row(measure: str, council: str | None, group, label, quarter: str, start,
                      end, f: DeadlineFigures) -> dict:
    return dict(measure=measure, council_measure=council or "", group=group or "",
                label=label, quarter=quarter, starts_on=start, ends_on=end,
                counted=f.counted, on_time=f.on_time, late=f.late, late_open=f.late_open,
                excused=f.excused, excused_on_time=f.excused_on_time,
                percent_on_time=_pc(f.percent_on_time),
                counted_excluding_exceptions=f.excluding_exceptions.counted,
                on_time_excluding_exceptions=f.excluding_exceptions.on_time,
                percent_on_time_excluding_exceptions=_pc(f.excluding_exceptions.percent_on_time),
                not_yet_due=f.not_counted.not_yet_due,
                ended_before_due=f.not_counted.ended_before_due,
                not_amended=f.not_counted.not_amended)


def _pc(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def _measure_csv_rows(m: MeasureFigures, from_date, to_date, group=None, label="all") -> list:
    rows = [_deadline_csv_row(m.measure, m.council_measure, group, label, "whole period",
                              from_date, to_date, m.figures)]
    rows += [_deadline_csv_row(m.measure, m.council_measure, group, label, q.quarter,
                               q.starts_on, q.ends_on, q.figures) for q in m.quarters]
    return rows


def timeliness_csv(*, session: Session, from_date: date, to_date: date,
                   as_of: date | None = None) -> CsvTable:
    """``timeliness`` as CSV: one row per measure and quarter, and one for the whole period."""
    report = timeliness(session=session, from_date=from_date, to_date=to_date, as_of=as_of)
    rows = [r for m in report.measures for r in _measure_csv_rows(m, from_date, to_date)]
    return CsvTable(DEADLINE_CSV, rows, f"timeliness-{from_date}-{to_date}.csv")


def timeliness_measure_csv(*, session: Session, measure: str, from_date: date, to_date: date,
                           as_of: date | None = None, group_by: str | None = None) -> CsvTable:
    """``timeliness_measure`` as CSV: the whole measure's rows, then each group's."""
    report = timeliness_measure(session=session, measure=measure, from_date=from_date,
                                to_date=to_date, as_of=as_of, group_by=group_by)
    m = tl.MEASURES[report.measure]
    rows = _measure_csv_rows(report, from_date, to_date)
    for g in report.groups:
        rows += _measure_csv_rows(MeasureFigures(**_info(m), figures=g.figures,
                                                 quarters=g.quarters),
                                  from_date, to_date, g.group, g.label)
    return CsvTable(DEADLINE_CSV, rows, f"{m.key}-{from_date}-{to_date}.csv")


OUTCOME_CSV = ("group", "label", "quarter", "starts_on", "ends_on", "decisions", "maintained",
               "maintained_percent", "amended", "amended_percent", "ceased", "ceased_percent",
               "not_amended_after_all")


def _outcome_csv_row(group, label, quarter, start, end, f: OutcomeFigures) -> dict:
    return dict(group=group or "", label=label, quarter=quarter, starts_on=start, ends_on=end,
                decisions=f.decisions, not_amended_after_all=f.not_amended_after_all,
                **{k: getattr(f, k).count for k in ("maintained", "amended", "ceased")},
                **{f"{k}_percent": _pc(getattr(f, k).percent)
                   for k in ("maintained", "amended", "ceased")})


def review_outcomes_csv(*, session: Session, from_date: date, to_date: date,
                        group_by: str | None = None) -> CsvTable:
    """``review_outcomes`` as CSV: the whole period and each quarter, overall then by group."""
    report = review_outcomes(session=session, from_date=from_date, to_date=to_date,
                             group_by=group_by)
    rows = []
    for group, label, figures, qs in [(None, "all", report.figures, report.quarters)] + [
            (g.group, g.label, g.figures, g.quarters) for g in report.groups]:
        rows.append(_outcome_csv_row(group, label, "whole period", from_date, to_date, figures))
        rows += [_outcome_csv_row(group, label, q.quarter, q.starts_on, q.ends_on, q.figures)
                 for q in qs]
    return CsvTable(OUTCOME_CSV, rows, f"review-outcomes-{from_date}-{to_date}.csv")


def dfe_csv(*, session: Session, from_date: date, to_date: date) -> CsvTable:
    """``dfe`` as CSV: one row for the whole period, then one per quarter."""
    report = dfe(session=session, from_date=from_date, to_date=to_date)
    columns = ("quarter", "starts_on", "ends_on", *FinalPlanFigures.model_fields,
               *DecisionFigures.model_fields)
    rows = [dict(quarter=label, starts_on=start, ends_on=end, **p.model_dump(), **d.model_dump())
            for label, start, end, p, d in [
                ("whole period", from_date, to_date, report.final_plans, report.decisions),
                *((q.quarter, q.starts_on, q.ends_on, q.final_plans, q.decisions)
                  for q in report.quarters)]]
    return CsvTable(columns, rows, f"dfe-{from_date}-{to_date}.csv")


# --- the statistics dashboard ---------------------------------------------------------------------


class Dashboard(BaseModel):
    """What ``/statistics`` shows: every measure, DfE's figures and advice by agency."""

    report: TimelinessReport
    dfe: DfeReport
    agencies: MeasureReport


def dashboard(*, session: Session, from_date: date, to_date: date,
              as_of: date | None = None) -> Dashboard:
    """The dashboard's figures, by the API's own functions (``bench/national.py``'s
    ``statistics_page`` times the same three)."""
    as_of = as_of or today()
    return Dashboard(
        report=timeliness(session=session, from_date=from_date, to_date=to_date, as_of=as_of),
        dfe=dfe(session=session, from_date=from_date, to_date=to_date),
        agencies=timeliness_measure(session=session, measure="advice", from_date=from_date,
                                    to_date=to_date, as_of=as_of, group_by="agency"))


# --- the public summary ---------------------------------------------------------------------------

SUPPRESS_BELOW = 5


class PublicFigure(BaseModel):
    title: str
    what: str = Field(description="what is counted, in plain words")
    count: str = Field(description="how many were counted: a number, or 'fewer than 5'")
    percent: str | None = Field(description="the share on time, e.g. '62%'; 'not shown' where "
                                "it would give a small number away")


class PublicSummary(BaseModel):
    council: str
    from_date: date = Field(serialization_alias="from")
    to_date: date = Field(serialization_alias="to")
    figures: list[PublicFigure]
    suppression: str = (f"Counts from 1 to {SUPPRESS_BELOW - 1} are shown as 'fewer than "
                        f"{SUPPRESS_BELOW}', and a percentage is not shown where it would let "
                        "someone work out a number that small, so no child can be recognised.")


def shown_count(n: int) -> str:
    return f"fewer than {SUPPRESS_BELOW}" if 0 < n < SUPPRESS_BELOW else f"{n:,}"


def shown_percent(part: int, whole: int) -> str | None:
    """The share, unless the part or the rest is a small number (1 to 4) or nothing counts."""
    if whole == 0:
        return None
    rest = whole - part
    if 0 < part < SUPPRESS_BELOW or 0 < rest < SUPPRESS_BELOW:
        return "not shown"
    return f"{round(100 * part / whole)}%"


def _within(percent: str | None, words: str) -> str | None:
    return f"{percent} {words}" if percent and percent != "not shown" else percent


def public_summary(*, session: Session, council: str, on: date | None = None) -> PublicSummary:
    """The four full quarters before ``on`` (default today), from the API's own figures, with
    small numbers suppressed."""
    on = on or today()
    from_date, to_date = last_full_quarters(on)
    report = timeliness(session=session, from_date=from_date, to_date=to_date, as_of=on)
    dfe_report = dfe(session=session, from_date=from_date, to_date=to_date)
    measures = {m.measure: m for m in report.measures}
    fp = dfe_report.final_plans
    d = dfe_report.decisions
    figures = [
        PublicFigure(title="New EHC plans", what="EHC plans issued after an assessment",
                     count=shown_count(fp.plans_issued_den),
                     percent=_within(shown_percent(fp.plans_issued_20_weeks_ex,
                                                   fp.plans_issued_den_ex), "within 20 weeks")),
        PublicFigure(title="Decisions whether to assess",
                     what="requests for an assessment answered", count=shown_count(d.decisions),
                     percent=_within(shown_percent(d.within_6_weeks_ex, d.decisions_ex),
                                     "within 6 weeks")),
    ]
    for key, title, what in (
            ("review_meetings", "Annual reviews", "annual review meetings that were due"),
            ("phase_transfers", "Moving school or college", "plans to be reviewed before a "
             "move to a new school or college"),
            ("advice", "Advice from professionals", "pieces of advice asked for")):
        m = measures.get(key)
        if m is None:
            continue
        ex = m.figures.excluding_exceptions
        figures.append(PublicFigure(title=title, what=what, count=shown_count(m.figures.counted),
                                    percent=_within(shown_percent(ex.on_time, ex.counted),
                                                    "on time")))
    return PublicSummary(council=council, from_date=from_date, to_date=to_date,
                         figures=figures)
