"""The retention rule (docs/data-protection.md, "Retention"): a child's record is kept until
``EHC_RETENTION_YEARS_AFTER_BIRTH`` years after their date of birth (31 by default: the IRMS
Information Management Toolkit for Schools' retention for an EHC plan and the advice behind
it is the child's date of birth + 31 years), and then, if they have no open case and no active
plan, what identifies them is removed.

``report`` says what would go (a dry run); ``apply`` does it. Removed or anonymised:

- the child's names (blank), date of birth (1 January of its year), the council's own
  reference for them; the record is marked ``anonymised_on``;
- the letters (deleted) and the documents sent with advice (deleted); the text of advice, of
  exceptions and of a case's closing reason; the timeline's details (``data``) and a closing
  step's free-text reason;
- the emails' subjects and bodies (the row stays, as proof that a professional was asked, and
  when); the notes of the child's other plans; the outcome wording of their reviews (how each
  went stays, for the outcomes report);
- the access log's rows about the child (the only deletion the database allows there).

Kept, so that the statistics stay exact: every case, deadline, advice item, exception, review
and plan row with its dates, kinds and outcomes (``store.timeliness`` reads these, never the
child). A case reference is made by the system and names nobody.

Temporal: a closed case's workflow history is deleted by the namespace's retention period
(docs/deploy.md); it holds only sealed payloads (``services.codec``) with dates and
references, never names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import delete, exists, func
from sqlmodel import Session, select

from services.clock import today as london_today
from store import tables as t

REMOVED = "Removed under the retention rule"


def passes_on(born: date, years: int) -> date:
    """The day a record made for a child born on ``born`` passes the rule: their birthday
    ``years`` years on (1 March for 29 February in a year without one)."""
    try:
        return born.replace(year=born.year + years)
    except ValueError:
        return date(born.year + years, 3, 1)


@dataclass
class Due:
    """One child whose record has passed the rule, by what the data protection officer needs:
    the record's id, its cases and plans, and the day it passed; what would go, counted."""

    child_id: str
    references: list[str]
    passed_on: date
    counts: dict[str, int] = field(default_factory=dict)


@dataclass
class Report:
    on: date
    years: int
    due: list[Due]
    kept_open: int  # past the rule, but with an open case or an active plan


def _refs(session: Session, child_id: str) -> tuple[list[str], list[str]]:
    cases = list(session.exec(select(t.Case.reference).where(t.Case.child_id == child_id)
                              .order_by(t.Case.reference)).all())
    plans = list(session.exec(select(t.Plan.reference).where(t.Plan.child_id == child_id)
                              .order_by(t.Plan.reference)).all())
    return cases, plans


def _count(session: Session, stmt) -> int:
    return session.exec(stmt).one()


def _subs(case_refs: list[str]):
    return select(t.AdviceSubmission.id).where(
        t.AdviceSubmission.case_reference.in_(case_refs))  # type: ignore[attr-defined]


def _counts(session: Session, child_id: str, case_refs: list[str]) -> dict[str, int]:
    n = func.count()
    inn = lambda col: col.in_(case_refs)  # noqa: E731
    return {
        "letters": _count(session, select(n).select_from(t.Letter)
                          .where(inn(t.Letter.case_reference))),
        "documents": _count(session, select(n).select_from(t.AdviceDocument).where(
            t.AdviceDocument.submission_id.in_(_subs(case_refs)))),  # type: ignore[attr-defined]
        "advice texts": _count(session, select(n).select_from(t.AdviceSubmission)
                               .where(inn(t.AdviceSubmission.case_reference))),
        "emails": _count(session, select(n).select_from(t.EmailMessage)
                         .where(inn(t.EmailMessage.case_reference))),
        "other plans": _count(session, select(n).select_from(t.LinkedPlan)
                              .where(t.LinkedPlan.child_id == child_id)),
        "access log rows": _count(session, select(n).select_from(t.AccessLog)
                                  .where(t.AccessLog.child_id == child_id)),
    }


def report(*, session: Session, years: int, on: date | None = None) -> Report:
    """What the rule would remove on ``on`` (default today): a dry run, changing nothing."""
    on = on or london_today()
    latest = date(on.year - years, 12, 31)  # then each birthday is checked exactly
    open_case = exists().where(t.Case.child_id == t.Child.id, t.Case.is_open)
    active_plan = exists().where(t.Plan.child_id == t.Child.id, t.Plan.status == "active")
    candidates = session.exec(select(t.Child).where(
        t.Child.anonymised_on.is_(None), t.Child.date_of_birth <= latest)  # type: ignore[union-attr]
        .order_by(t.Child.date_of_birth, t.Child.id)).all()
    kept = set(session.exec(select(t.Child.id).where(
        t.Child.anonymised_on.is_(None), t.Child.date_of_birth <= latest,  # type: ignore[union-attr]
        open_case | active_plan)).all())
    due, kept_open = [], 0
    for child in candidates:
        passed = passes_on(child.date_of_birth, years)
        if passed > on:
            continue
        if child.id in kept:
            kept_open += 1
            continue
        cases, plans = _refs(session, child.id)
        due.append(Due(child.id, cases + plans, passed, _counts(session, child.id, cases)))
    return Report(on=on, years=years, due=due, kept_open=kept_open)


def _anonymise(session: Session, child_id: str, on: date) -> None:
    child = session.get(t.Child, child_id)
    assert child is not None
    cases, _ = _refs(session, child_id)
    child.given_name = ""
    child.family_name = ""
    child.date_of_birth = date(child.date_of_birth.year, 1, 1)
    child.council_reference = None
    child.anonymised_on = on
    session.add(child)
    session.flush()  # the access log's trigger lets its rows go once this is seen
    for case in session.exec(select(t.Case).where(t.Case.child_id == child_id)):
        if case.close_reason is not None:
            case.close_reason = None
            session.add(case)
    if cases:
        in_cases = lambda col: col.in_(cases)  # noqa: E731
        session.exec(delete(t.AdviceDocument).where(
            t.AdviceDocument.submission_id.in_(_subs(cases))))  # type: ignore[attr-defined]
        session.exec(delete(t.Letter).where(in_cases(t.Letter.case_reference)))
        for sub in session.exec(select(t.AdviceSubmission)
                                .where(in_cases(t.AdviceSubmission.case_reference))):
            sub.text = ""
            session.add(sub)
        for exc in session.exec(select(t.CaseException)
                                .where(in_cases(t.CaseException.case_reference))):
            exc.reason, exc.evidence = REMOVED, None
            exc.withdrawal_reason = REMOVED if exc.withdrawal_reason else None
            session.add(exc)
        for event in session.exec(select(t.CaseEvent)
                                  .where(in_cases(t.CaseEvent.case_reference))):
            event.data = {}
            if event.kind.endswith("closed") and ":" in event.summary:
                event.summary = event.summary.split(":", 1)[0]  # "Case closed: <reason>"
            session.add(event)
        for email in session.exec(select(t.EmailMessage)
                                  .where(in_cases(t.EmailMessage.case_reference))):
            email.subject, email.body_text, email.recipient_name = REMOVED, REMOVED, None
            session.add(email)
        for review in session.exec(select(t.Review).where(in_cases(t.Review.case_reference))):
            if review.outcomes:
                review.outcomes = [{**o, "outcome": f"Outcome {n}", "note": None}
                                   for n, o in enumerate(review.outcomes, 1)]
                session.add(review)
    for plan in session.exec(select(t.LinkedPlan).where(t.LinkedPlan.child_id == child_id)):
        plan.note, plan.other_system_reference = None, None
        session.add(plan)
    session.exec(delete(t.AccessLog).where(t.AccessLog.child_id == child_id))


def apply(*, session: Session, years: int, on: date | None = None) -> Report:
    """Remove what the rule says has passed on ``on`` (default today), one child per
    transaction; returns what was removed (the report made just before)."""
    done = report(session=session, years=years, on=on)
    for due in done.due:
        _anonymise(session, due.child_id, done.on)
        session.commit()
    return done
