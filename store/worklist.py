"""What is late, and what is about to be: every open deadline of every open case, as one list
that managers filter, sort, page through and export (``/late``, ``/api/worklist``).

An item is a milestone of a case (the LA's steps, the school's or setting's review steps, a
school's consultation response) or a piece of advice still owed. It is:

- **late** from the day after its due day (done on the due day is on time), while not done;
- **due soon** from today to ``today + days`` inclusive, while not done.

Not listed: items done, not applicable, of a closed case, or advice reused (Reg 6(4)); the
family's comment periods (Reg 13(1), Reg 22(2): theirs to use, never late); a review's advice
once its meeting has been held (it is chased only until then). Items an exception excuses
(``excused``) are listed only when asked for, and say so.

Who owes an item (``owed_by``): advice, its service and contact from the directory; a
school's or setting's step, the setting named on the case; the LA's steps, the caseworker
holding the case (or the SEND team).

The database filters, sorts and counts: a page is one query (a UNION ALL of milestones and
advice, each joined to its case, ordered as a whole so that each half is read in due order
from its index and stops after the page), and the total one count per half that joins only
what its filters need (``listed``, migration 0007, stands for "its case is open"). The bench
(``bench/national.py``, docs/benchmarks.md) measures both at national scale. Reads the
database only; ``today`` is passed in. Never reads ``child``.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Literal

from pydantic import BaseModel, Field
from sqlalchemy import Boolean, Date, String, and_, bindparam, case, cast, func, literal, null, or_
from sqlalchemy import select, true, union_all
from sqlalchemy.dialects.sqlite.base import SQLiteCompiler
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import FunctionElement
from sqlmodel import Session

from store import tables as t
from domain.agencies import AGENCY_FOR_SOURCE, AGENCY_LABELS
from store.agency import source_agency
from domain.ladder import step_label
from domain.case import AdviceSource, consulted_setting
from statutory import RULES, Actor

Which = Literal["late", "due_soon", "open"]  # open: everything still to do
SORTS = {
    "due": "the due date, earliest first",
    "-days_overdue": "most days overdue first (the same as due)",
    "-due": "the due date, latest first",
    "case": "the case reference",
    "agency": "the agency, then the due date",
    "service": "the service, then the due date",
    "caseworker": "the caseworker, then the due date",
    "school": "the school or setting, then the due date",
}
MAX_PAGE_SIZE = 200
MAX_DAYS_OVERDUE = 3650  # ten years: a filter on more is a mistake (and not an overflow)
# Who owes a milestone, by the rule's actor; advice is owed by its agency.
OWNER_LABELS = {"la": "SEND team", "setting": "School or setting"}
PARTY_LABELS = {**AGENCY_LABELS, "la": "SEND team (LA)", "setting": "School or setting",
                "family": "Family"}


class Filters(BaseModel):
    """What a manager narrows the list to. Every filter is optional."""

    stage: str | None = Field(None, description="the case's stage, e.g. assessing, meeting_set")
    case_kind: Literal["assessment", "review"] | None = None
    agency: str | None = Field(None, description="who owes it: education, health, social_care, "
                               "educational_psychology, other, la (the SEND team's own steps) "
                               "or setting (a school's or setting's steps)")
    service_id: str | None = Field(None, description="advice owed by this service")
    caseworker_id: str | None = Field(None, description="cases held by this caseworker; "
                                      "'none' for cases held by nobody")
    school: str | None = Field(None, max_length=120, description="the child's school or "
                               "setting, as named on the case (exact, ignoring case)")
    min_days_overdue: int | None = Field(None, ge=0, le=MAX_DAYS_OVERDUE)
    max_days_overdue: int | None = Field(None, ge=0, le=MAX_DAYS_OVERDUE)
    include_excused: bool = Field(False, description="also list items an exception excuses")


class WorkItem(BaseModel):
    case_reference: str
    case_kind: str
    stage: str
    item: Literal["milestone", "advice", "setting"]
    key: str
    title: str
    citation: str
    statutory: bool
    due: date
    days_overdue: int = Field(description="days since the due day (0: due today or later)")
    days_left: int = Field(description="days until the due day (0: due today; negative: late)")
    party: str = Field(description="education, health, social_care, educational_psychology, "
                       "other, la or setting")
    party_label: str
    owed_by: str = Field(description="who owes it, as the directory or the case names them")
    service_id: str | None
    service_name: str | None
    contact_name: str | None
    caseworker_id: str | None
    caseworker_name: str | None
    school: str | None
    excused: bool
    chased: str | None = Field(description="the latest step of its escalation ladder (or "
                               "alert) already taken, e.g. 'Escalated to the ADQA group'")


class WorkPage(BaseModel):
    which: Which
    today: date
    days: int | None = Field(None, description="due soon: the window, in days from today")
    total: int
    page: int
    page_size: int
    items: list[WorkItem]


COLUMNS = ("case_reference", "case_kind", "stage", "item", "key", "rule_id", "due", "party",
           "service_id", "service_name", "contact_name", "caseworker_id", "caseworker_name",
           "school", "excused", "fired", "label", "source")

# Advice with no service: the agency its kind of advice comes from; the family's own views
# (Reg 6(1)(a)) are the family's.
_SOURCE_AGENCY = case(
    (t.AdviceItem.source == AdviceSource.FAMILY.value, literal("family")),
    else_=source_agency(t.AdviceItem.source))

# Rules whose deadline is the family's to use (never late), and the setting's steps.
_FAMILY_RULES = [r.id for r in RULES.values() if r.acts is Actor.FAMILY]
_SETTING_RULES = [r.id for r in RULES.values() if r.acts is Actor.SETTING]


# The family's periods as the lists' partial index names them (store.tables.FAMILY_RULE_IDS),
# rendered into the SQL as literals: SQLite uses a partial index only for a query that repeats
# its condition, and a bound parameter does not. Any family rule added since is excluded too.
_NOT_FAMILY = [t.Milestone.rule_id.not_in(bindparam(
    "family_rules", list(t.FAMILY_RULE_IDS), expanding=True, literal_execute=True))]
if set(_FAMILY_RULES) - set(t.FAMILY_RULE_IDS):
    _NOT_FAMILY.append(t.Milestone.rule_id.not_in(
        sorted(set(_FAMILY_RULES) - set(t.FAMILY_RULE_IDS))))


def _agency_sources(agency: str):
    """What an advice item's source must be for its party to be ``agency`` when it has no
    service (``_SOURCE_AGENCY``): a condition, or None when no source is counted under it."""
    a = t.AdviceItem
    named = [src.value for src, ag in AGENCY_FOR_SOURCE.items() if ag] + \
        [AdviceSource.FAMILY.value]
    if agency == "other":
        return a.source.not_in(named)
    if agency == "family":
        return a.source == AdviceSource.FAMILY.value
    sources = [src.value for src, ag in AGENCY_FOR_SOURCE.items() if ag == agency]
    return a.source.in_(sources) if sources else None


def _advice_of_agency(agency: str):
    """``party == agency`` for advice, said so that the database need not work out every
    item's party: the service's agency, or with no service the one its source is counted
    under."""
    sv = t.Service
    by_source = _agency_sources(agency)
    if by_source is None:
        return sv.agency == agency
    return or_(sv.agency == agency, and_(sv.id.is_(None), by_source))


class _not_by_index(FunctionElement):  # noqa: N801 - an SQL construct, named as SQL is
    """A column that the database must not look up by its index: ``+due``, SQLite's
    documented way to take a term out of its choice of index, and ``due + 0`` on PostgreSQL.
    A caseworker's or a school's items are then found through their cases, a few hundred,
    not through every open item by due date (or every open case), which SQLite's planner
    prefers when the database has no statistics (the application never runs ANALYZE) and
    both planners chose, even with statistics, for a short due-soon window."""

    inherit_cache = True
    name = "not_by_index"

    def __init__(self, col, type_=None) -> None:
        super().__init__(col)
        self.type = type_ or col.type


@compiles(_not_by_index)
def _not_by_index_default(element, compiler, **kw):
    (col,) = element.clauses
    return compiler.process(col, **kw)


@compiles(_not_by_index, "postgresql")
def _not_by_index_postgresql(element, compiler, **kw):
    """A date plus no days: PostgreSQL estimates a due-date range of the lists' partial
    indexes from the whole column (it cannot know that nearly every item due in the coming
    days is listed), so it took 40,000 items due soon for 1,000 and went through them rather
    than through a caseworker's few hundred cases."""
    (col,) = element.clauses
    sql = compiler.process(col, **kw)
    return f"({sql} + 0)" if isinstance(element.type, Date) else sql


@compiles(_not_by_index, "sqlite")
def _not_by_index_sqlite(element, compiler, **kw):
    (col,) = element.clauses
    return f"+{compiler.process(col, **kw)}"


def _case_filtered(filters: Filters) -> bool:
    return bool(filters.stage or filters.case_kind or filters.caseworker_id or filters.school)


def _half_items(filters: Filters) -> list:
    """The tables of the halves ``_halves`` gives for ``filters``, in its order."""
    milestones = not filters.service_id and filters.agency in (None, "la", "setting")
    return [t.Milestone, t.AdviceItem] if milestones else [t.AdviceItem]


def _key_columns(item) -> list:
    return [item.id.label("id"), item.due.label("due"),
            item.case_reference.label("case_reference"), item.key.label("key")]


# Sorts by the item's own columns: a page's items can be chosen from the items alone.
_ITEM_SORTS = ("due", "-days_overdue", "-due", "case")


def _sqlite_from_hint(self, table, text):
    """SQLite's table hints, ``INDEXED BY`` and ``NOT INDEXED``: SQLAlchemy's SQLite compiler
    renders none."""
    return text if text and text.startswith(("INDEXED BY ", "NOT INDEXED")) else None


if SQLiteCompiler.get_from_hint_text is SQLCompiler.get_from_hint_text:
    SQLiteCompiler.get_from_hint_text = _sqlite_from_hint  # type: ignore[method-assign]


def _halves(which: Which, today: date, days: int, filters: Filters, *,
            counting: bool = False, keys: bool = False, by_index: bool = True) -> list:
    """The two halves of the list, milestones and advice: the same columns, each filtered.

    ``counting``: each half as ``count(*)`` of its items, joining only the tables that a
    filter needs. ``listed`` (kept by the database from the case: migration 0007) says the case
    is open and, for advice, still chasing it, so an unfiltered count reads one index and no
    case. Where the case is joined anyway its own columns are checked as well. ``keys``: the
    same, as each item's id, due date, case reference and key (``_ordered`` picks a page's
    items by them). ``by_index`` False: not by the due date's index (the items are then
    given by id)."""
    c, m, a, sv, ct, u = t.Case, t.Milestone, t.AdviceItem, t.Service, t.Contact, t.StaffUser
    m_party = case((m.rule_id.in_(_SETTING_RULES), literal("setting")), else_=literal("la"))
    a_party = func.coalesce(sv.agency, _SOURCE_AGENCY)
    none = cast(null(), String)
    counting = counting or keys
    by_case = _case_filtered(filters) or not counting
    through_cases = bool(filters.caseworker_id or filters.school)
    m_where = [m.done_on.is_(None), m.applicable, m.listed, *_NOT_FAMILY]
    a_where = [a.received_on.is_(None), ~a.reused, a.listed]
    if by_case:
        # never through ix_case_is_open: nearly half of all cases are open
        is_open = _not_by_index(c.is_open) == true()
        m_where.append(is_open)
        # a review's advice is chased until its meeting; after that it is not owed
        a_where += [is_open, or_(c.kind != "review", c.stage == "meeting_set")]
    if counting:
        milestones = select(*_key_columns(m) if keys else [func.count()]).select_from(m)
        advice = select(*_key_columns(a) if keys else [func.count()]).select_from(a)
        if by_case:
            milestones = milestones.join(c, c.reference == m.case_reference)
            advice = advice.join(c, c.reference == a.case_reference)
        if filters.agency:
            advice = advice.outerjoin(sv, sv.id == a.service_id)
    else:
        # the item's own case_reference (its case's reference): the column its index is in
        milestones = select(*(col.label(name) for col, name in zip((
            m.case_reference, c.kind, c.stage, m.kind, m.key, m.rule_id, m.due, m_party, none, none,
            none, c.caseworker_id, u.name, c.setting_name, m.excused, m.alerts_fired, none,
            none), COLUMNS))).select_from(m).join(c, c.reference == m.case_reference).outerjoin(
            u, u.id == c.caseworker_id)
        advice = select(*(col.label(name) for col, name in zip((
            a.case_reference, c.kind, c.stage, literal("advice"), a.key, a.rule_id, a.due, a_party,
            a.service_id, sv.name, ct.name, c.caseworker_id, u.name, c.setting_name, a.excused,
            a.alerts_fired, a.label, a.source), COLUMNS))).select_from(a).join(
            c, c.reference == a.case_reference).outerjoin(sv, sv.id == a.service_id).outerjoin(
            ct, ct.id == a.contact_id).outerjoin(u, u.id == c.caseworker_id)
    milestones, advice = milestones.where(*m_where), advice.where(*a_where)
    halves = []
    for q, due, excused in ((milestones, m.due, m.excused), (advice, a.due, a.excused)):
        is_milestones = q is milestones
        # an agency no source is counted under: its few services' advice, found through them
        through_services = not is_milestones and filters.agency is not None and \
            _agency_sources(filters.agency) is None
        if through_cases or through_services or not by_index:
            due, excused = _not_by_index(due), _not_by_index(excused, type_=Boolean())
        if not by_index:  # by id only (NOT INDEXED leaves SQLite its rowid lookups)
            q = q.with_hint(m if is_milestones else a, "NOT INDEXED", "sqlite")
        elif through_cases or through_services:
            pass
        elif filters.service_id and not is_milestones:
            q = q.with_hint(a, "INDEXED BY ix_adviceitem_listed_service", "sqlite")
        else:
            # By due date through the lists' own index: with statistics (ANALYZE), SQLite
            # chose a skip-scan of the timeliness indexes instead (migration 0006), which
            # read every open step of a rule, 40 times slower.
            q = q.with_hint(m if is_milestones else a, "INDEXED BY " + (
                "ix_milestone_listed_due" if is_milestones else "ix_adviceitem_listed_due"),
                "sqlite")
        if filters.service_id:  # only advice has a service
            if is_milestones:
                continue
            q = q.where(a.service_id == filters.service_id)
        if filters.stage:
            q = q.where(c.stage == filters.stage)
        if filters.case_kind:
            q = q.where(c.kind == filters.case_kind)
        if filters.agency and is_milestones:
            # a milestone's party is "setting" for the setting's steps and "la" for the rest
            if filters.agency not in ("la", "setting"):
                continue
            rule = _not_by_index(m.rule_id) if through_cases else m.rule_id
            q = q.where(rule.in_(_SETTING_RULES) if filters.agency == "setting"
                        else rule.not_in(_SETTING_RULES))
        elif filters.agency:
            q = q.where(_advice_of_agency(filters.agency))
        if filters.caseworker_id == "none":
            q = q.where(c.caseworker_id.is_(None))
        elif filters.caseworker_id:
            q = q.where(c.caseworker_id == filters.caseworker_id)
        if filters.school:
            q = q.where(func.lower(c.setting_name) == filters.school.strip().lower())
        if not filters.include_excused:
            q = q.where(~excused)
        if which == "late":
            # one upper bound on the due date, so the index's range does all the work
            # (at least N days overdue implies overdue)
            if filters.min_days_overdue:
                q = q.where(due <= today - timedelta(days=filters.min_days_overdue))
            else:
                q = q.where(due < today)
            if filters.max_days_overdue is not None:
                q = q.where(due >= today - timedelta(days=filters.max_days_overdue))
        elif which == "due_soon":
            q = q.where(due >= today, due <= today + timedelta(days=days))
        halves.append(q)
    return halves


def _order(u, sort: str):
    """The ORDER BY of the list, over ``u``'s columns (a compound select's or a subquery's)."""
    cols = u.selected_columns if hasattr(u, "selected_columns") else u.c
    by = {
        "due": lambda: [cols.due], "-days_overdue": lambda: [cols.due],
        "-due": lambda: [cols.due.desc()], "case": lambda: [cols.case_reference],
        "agency": lambda: [cols.party, cols.due],
        "service": lambda: [cols.service_name, cols.due],
        "caseworker": lambda: [cols.caseworker_name, cols.due],
        "school": lambda: [cols.school, cols.due],
    }[sort]()
    return [*by, cols.case_reference, cols.key]


def _ordered(which: Which, today: date, days: int, filters: Filters, sort: str,
             upto: int | None = None):
    """The list in order. With ``upto``: only what a page up to that row needs, the first
    ``upto`` of each half in order, then of both. Each half reads its index in due order and
    stops there; ordering the UNION ALL as a whole instead, PostgreSQL joined and sorted every
    item before it took the first 50. Sorted by the items' own columns and with no filter on
    the case, each half's first ``upto`` are chosen from the items alone (as ``count_items``
    counts them) and only they are joined to their case: PostgreSQL, which cannot know that
    nearly all items due soon are listed, otherwise joined thousands before sorting."""
    halves = _halves(which, today, days, filters)
    if upto is not None:
        if sort in _ITEM_SORTS and not _case_filtered(filters):
            pairs = zip(_halves(which, today, days, filters, by_index=False),
                        _halves(which, today, days, filters, keys=True))
            halves = []
            for item, (rows, ids) in zip(_half_items(filters), pairs):
                first = ids.order_by(*_order(ids, sort)).limit(upto).subquery()
                halves.append(rows.where(item.id.in_(select(first.c.id))))
        halves = [select(h.order_by(*_order(h, sort)).limit(upto).subquery()) for h in halves]
    u = union_all(*halves) if len(halves) > 1 else halves[0]
    return u.order_by(*_order(u, sort))


def count_items(session: Session, which: Which, today: date, *, days: int = 14,
                filters: Filters | None = None) -> int:
    """How many items the list has: each half counted on its own, and added up."""
    halves = _halves(which, today, days, filters or Filters(), counting=True)
    return int(sum(session.scalar(h) or 0 for h in halves))


def query(session: Session, which: Which, today: date, *, days: int = 14,
          filters: Filters | None = None, sort: str = "due", page: int = 1,
          page_size: int = 50, count: bool = True) -> WorkPage:
    """One page of the late (or due-soon) list, and how many there are in all."""
    filters = filters or Filters()
    if sort not in SORTS:
        raise ValueError(f"sort must be one of {', '.join(SORTS)}")
    offset = (page - 1) * page_size
    rows = session.exec(_ordered(which, today, days, filters, sort,  # type: ignore[call-overload]
                                 upto=offset + page_size).limit(page_size).offset(offset)).all()
    total = count_items(session, which, today, days=days, filters=filters) if count \
        else len(rows)
    return WorkPage(which=which, today=today, days=days if which == "due_soon" else None,
                    total=total, page=page, page_size=page_size,
                    items=[_item(r, today) for r in rows])


def iter_items(session: Session, which: Which, today: date, *, days: int = 14,
         filters: Filters | None = None, sort: str = "due", batch: int = 2000):
    """Every item of the list, in order, a batch at a time (for the CSV export)."""
    filters = filters or Filters()
    result = session.exec(_ordered(which, today, days, filters, sort)  # type: ignore[call-overload]
                          .execution_options(yield_per=batch))
    for r in result:
        yield _item(r, today)


def _item(r, today: date) -> WorkItem:
    rule = RULES[r.rule_id]
    due = r.due if isinstance(r.due, date) else date.fromisoformat(str(r.due))
    if r.item == "advice":
        title = f"Advice: {r.label or AdviceSource(r.source).label}"
        owed = ", ".join(x for x in (r.contact_name, r.service_name) if x) or \
            "No service named"
    elif r.item == "setting":
        title = f"Consultation response: {consulted_setting(r.key)}"
        owed = r.key.split(":", 1)[1].replace("-", " ").title()
    else:
        title = rule.title
        owed = (r.school or "The school or setting") if r.party == "setting" else (
            r.caseworker_name or "SEND team (no caseworker)")
    fired = r.fired if isinstance(r.fired, list) else json.loads(r.fired or "[]")
    return WorkItem(
        case_reference=r.case_reference, case_kind=r.case_kind, stage=r.stage, item=r.item,
        key=r.key, title=title, citation=rule.citation, statutory=rule.statutory, due=due,
        days_overdue=max(0, (today - due).days), days_left=(due - today).days,
        party=r.party, party_label=PARTY_LABELS.get(r.party, r.party), owed_by=owed,
        service_id=r.service_id, service_name=r.service_name, contact_name=r.contact_name,
        caseworker_id=r.caseworker_id, caseworker_name=r.caseworker_name, school=r.school,
        excused=bool(r.excused), chased=step_label(fired[-1], done=True) if fired else None)


# --- a caseworker's own cases ---------------------------------------------------------------------


class MyCase(BaseModel):
    reference: str
    kind: str
    stage: str
    school: str | None
    next_due: date | None = Field(description="the earliest open deadline")
    next_title: str | None
    late_items: int


def my_cases(session: Session, caseworker_id: str, today: date, limit: int = 500) -> list[MyCase]:
    """The open cases a caseworker holds, the one with the nearest deadline first."""
    u = union_all(*_halves("open", today, 0, Filters(caseworker_id=caseworker_id))
                  ).subquery("work")
    per_case = select(
        u.c.case_reference, func.min(u.c.due).label("next_due"),
        func.sum(case((u.c.due < today, 1), else_=0)).label("late"),
    ).group_by(u.c.case_reference).subquery("per_case")
    c = t.Case
    found = session.exec(select(c, per_case.c.next_due, per_case.c.late).outerjoin(  # type: ignore[call-overload]
        per_case, per_case.c.case_reference == c.reference).where(
        c.caseworker_id == caseworker_id, c.is_open).order_by(
        per_case.c.next_due.is_(None), per_case.c.next_due, c.reference).limit(limit)).all()
    return [MyCase(reference=row.reference, kind=row.kind, stage=row.stage,
                   school=row.setting_name, next_due=next_due, late_items=int(late or 0),
                   next_title=_next_title(session, row.reference, next_due)
                   if next_due is not None else None)
            for row, next_due, late in found]


def _next_title(session: Session, reference: str, due: date) -> str:
    rule_id = session.scalar(select(t.Milestone.rule_id).where(
        t.Milestone.case_reference == reference, t.Milestone.due == due,
        t.Milestone.done_on.is_(None), t.Milestone.rule_id.not_in(_FAMILY_RULES)).limit(1))  # type: ignore[union-attr]
    return RULES[rule_id].title if rule_id else "Advice due"
