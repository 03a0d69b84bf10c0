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

One SQL query per call (a UNION ALL of milestones and advice, each joined to its case), so
the database filters, sorts and counts; the bench (``bench/worklist.py``) measures it at
national scale. Reads the database only; ``today`` is passed in. Never reads ``child``.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Literal

from pydantic import BaseModel, Field
from sqlalchemy import String, case, cast, func, literal, null, or_, select, union_all
from sqlmodel import Session

from models import tables as t
from models.directory import AGENCY_FOR_SOURCE, AGENCY_LABELS
from models.ladder import step_label
from models.schemas import AdviceSource
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
    min_days_overdue: int | None = Field(None, ge=0)
    max_days_overdue: int | None = Field(None, ge=0)
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
    *[(t.AdviceItem.source == src.value, literal(agency))
      for src, agency in AGENCY_FOR_SOURCE.items() if agency],
    (t.AdviceItem.source == AdviceSource.FAMILY.value, literal("family")),
    else_=literal("other"))

# Rules whose deadline is the family's to use (never late), and the setting's steps.
_FAMILY_RULES = [r.id for r in RULES.values() if r.acts is Actor.FAMILY]
_SETTING_RULES = [r.id for r in RULES.values() if r.acts is Actor.SETTING]


def _halves(which: Which, today: date, days: int, filters: Filters) -> list:
    """The two halves of the list, milestones and advice: the same columns, each filtered."""
    c, m, a, sv, ct, u = t.Case, t.Milestone, t.AdviceItem, t.Service, t.Contact, t.StaffUser
    m_party = case((m.rule_id.in_(_SETTING_RULES), literal("setting")), else_=literal("la"))
    a_party = func.coalesce(sv.agency, _SOURCE_AGENCY)
    none = cast(null(), String)
    milestones = select(*(col.label(name) for col, name in zip((
        c.reference, c.kind, c.stage, m.kind, m.key, m.rule_id, m.due, m_party, none, none,
        none, c.caseworker_id, u.name, c.setting_name, m.excused, m.alerts_fired, none, none),
        COLUMNS))).select_from(m).join(c, c.reference == m.case_reference).outerjoin(
        u, u.id == c.caseworker_id).where(
        m.done_on.is_(None), m.applicable, c.is_open, m.rule_id.not_in(_FAMILY_RULES))
    advice = select(*(col.label(name) for col, name in zip((
        c.reference, c.kind, c.stage, literal("advice"), a.key, a.rule_id, a.due, a_party,
        a.service_id, sv.name, ct.name, c.caseworker_id, u.name, c.setting_name, a.excused,
        a.alerts_fired, a.label, a.source), COLUMNS))).select_from(a).join(c, c.reference == a.case_reference).outerjoin(
        sv, sv.id == a.service_id).outerjoin(ct, ct.id == a.contact_id).outerjoin(
        u, u.id == c.caseworker_id).where(
        a.received_on.is_(None), ~a.reused, c.is_open,
        # a review's advice is chased until its meeting; after that it is not owed
        or_(c.kind != "review", c.stage == "meeting_set"))
    halves = []
    for q, party, due, excused in ((milestones, m_party, m.due, m.excused),
                                   (advice, a_party, a.due, a.excused)):
        if filters.service_id:  # only advice has a service
            if q is milestones:
                continue
            q = q.where(a.service_id == filters.service_id)
        if filters.stage:
            q = q.where(c.stage == filters.stage)
        if filters.case_kind:
            q = q.where(c.kind == filters.case_kind)
        if filters.agency:
            q = q.where(party == filters.agency)
        if filters.caseworker_id == "none":
            q = q.where(c.caseworker_id.is_(None))
        elif filters.caseworker_id:
            q = q.where(c.caseworker_id == filters.caseworker_id)
        if filters.school:
            q = q.where(func.lower(c.setting_name) == filters.school.strip().lower())
        if not filters.include_excused:
            q = q.where(~excused)
        if which == "late":
            q = q.where(due < today)
            if filters.min_days_overdue:
                q = q.where(due <= today - timedelta(days=filters.min_days_overdue))
            if filters.max_days_overdue is not None:
                q = q.where(due >= today - timedelta(days=filters.max_days_overdue))
        elif which == "due_soon":
            q = q.where(due >= today, due <= today + timedelta(days=days))
        halves.append(q)
    return halves


def _order(u, sort: str):
    by = {
        "due": [u.c.due], "-days_overdue": [u.c.due], "-due": [u.c.due.desc()],
        "case": [u.c.case_reference], "agency": [u.c.party, u.c.due],
        "service": [u.c.service_name, u.c.due], "caseworker": [u.c.caseworker_name, u.c.due],
        "school": [u.c.school, u.c.due],
    }[sort]
    return [*by, u.c.case_reference, u.c.key]


def query(session: Session, which: Which, today: date, *, days: int = 14,
          filters: Filters | None = None, sort: str = "due", page: int = 1,
          page_size: int = 50, count: bool = True) -> WorkPage:
    """One page of the late (or due-soon) list, and how many there are in all."""
    filters = filters or Filters()
    if sort not in SORTS:
        raise ValueError(f"sort must be one of {', '.join(SORTS)}")
    u = union_all(*_halves(which, today, days, filters)).subquery("work")
    rows = session.exec(select(u).order_by(*_order(u, sort))  # type: ignore[call-overload]
                        .limit(page_size).offset((page - 1) * page_size)).all()
    total = session.scalar(select(func.count()).select_from(u)) if count else len(rows)
    return WorkPage(which=which, today=today, days=days if which == "due_soon" else None,
                    total=total, page=page, page_size=page_size,
                    items=[_item(r, today) for r in rows])


def iter_items(session: Session, which: Which, today: date, *, days: int = 14,
         filters: Filters | None = None, sort: str = "due", batch: int = 2000):
    """Every item of the list, in order, a batch at a time (for the CSV export)."""
    filters = filters or Filters()
    u = union_all(*_halves(which, today, days, filters)).subquery("work")
    result = session.exec(select(u).order_by(*_order(u, sort))  # type: ignore[call-overload]
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
        title = f"Consultation response: {r.key.split(':', 1)[1]}"
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
