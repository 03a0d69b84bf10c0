"""``listed`` on milestones and advice (migration 0007): the database keeps it from the case,
whoever writes, on SQLite and PostgreSQL; and the late list's SQL is the kind SQLite answers
from the partial indexes that depend on it."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select, update
from sqlmodel import Session

from services.letters import case_recorder
from store import tables as t
from store.db import engine_for
from domain.case import (
    AdviceItem,
    AdviceSource,
    AssessmentPolicy,
    CaseSnapshot,
    Milestone,
    RequestSource,
    Stage,
)
from store.worklist import _FAMILY_RULES, Filters, _halves, _ordered, query

TODAY = date(2026, 11, 16)


def d(n: int) -> date:
    return TODAY + timedelta(days=n)


def snapshot(db_url: str, ref: str, stage: Stage, version: int) -> CaseSnapshot:
    with Session(engine_for(db_url)) as s:
        child = s.get(t.Child, ref) or t.Child(id=ref, given_name="Test", family_name="Child",
                                               date_of_birth=date(2016, 1, 1))
        s.add(child)
        s.commit()
    return CaseSnapshot(
        reference=ref, child_id=ref, stage=stage, request_date=d(-100),
        request_source=RequestSource.PARENT, policy=AssessmentPolicy(), version=version,
        milestones=[Milestone(key="decision_due", rule_id="assessment.decision_due",
                              started_on=d(-100), due=d(-10))],
        advice=[AdviceItem(key="health", source=AdviceSource.HEALTH, requested_on=d(-50),
                           due=d(-8))])


def listed(db_url: str, ref: str) -> dict[str, bool]:
    with Session(engine_for(db_url)) as s:
        rows = [*s.execute(select(t.Milestone.key, t.Milestone.listed).where(
            t.Milestone.case_reference == ref)),
            *s.execute(select(t.AdviceItem.key, t.AdviceItem.listed).where(
                t.AdviceItem.case_reference == ref))]
    return {key: bool(value) for key, value in rows}


def test_listed_follows_the_case(db_url):
    recorder = case_recorder(db_url)
    recorder.record_case(snapshot(db_url, "EHC-L", Stage.ASSESSING, 3), [])
    assert listed(db_url, "EHC-L") == {"decision_due": True, "health": True}
    with Session(engine_for(db_url)) as s:
        assert query(s, "late", TODAY).total == 2

    # the recorder closes the case: its items leave the lists, counted or shown
    recorder.record_case(snapshot(db_url, "EHC-L", Stage.CLOSED, 4), [])
    assert listed(db_url, "EHC-L") == {"decision_due": False, "health": False}
    with Session(engine_for(db_url)) as s:
        assert query(s, "late", TODAY).total == 0
        # an item added to a closed case (by any writer) is not listed either
        s.add(t.Milestone(case_reference="EHC-L", key="final_plan_due",
                          rule_id="assessment.final_plan_due", started_on=d(-100), due=d(-1)))
        s.commit()
    assert listed(db_url, "EHC-L")["final_plan_due"] is False

    # a review's advice is listed only while its meeting is to come; its deadlines while open
    with Session(engine_for(db_url)) as s:
        s.add(t.Child(id="child-r", given_name="T", family_name="C",
                      date_of_birth=date(2016, 1, 1)))
        s.commit()
        s.add(t.Case(reference="P-1.R1", kind="review", child_id="child-r",
                     workflow_id="review-P-1", stage="meeting_set", request_date=d(-300),
                     request_source="review"))
        s.flush()
        s.add(t.Milestone(case_reference="P-1.R1", key="review_due", rule_id="review.review_due",
                          started_on=d(-300), due=d(-5)))
        s.add(t.AdviceItem(case_reference="P-1.R1", key="health", source="health",
                           requested_on=d(-40), due=d(-3),
                           rule_id="review.advice_circulated_due"))
        s.commit()
        assert listed(db_url, "P-1.R1") == {"review_due": True, "health": True}
        s.execute(update(t.Case).where(t.Case.reference == "P-1.R1").values(
            stage="meeting_held"))
        s.commit()
        assert listed(db_url, "P-1.R1") == {"review_due": True, "health": False}
        assert {i.key for i in query(s, "late", TODAY).items} == {"review_due"}
        s.execute(update(t.Case).where(t.Case.reference == "P-1.R1").values(
            stage="maintained", is_open=False))
        s.commit()
        assert listed(db_url, "P-1.R1") == {"review_due": False, "health": False}


def test_the_family_periods_are_the_indexs(sqlite_url):
    """The partial index names the family's periods; the query must name the same ones, as
    literals, for SQLite to use it (a bound parameter would not match)."""
    assert sorted(t.FAMILY_RULE_IDS) == sorted(_FAMILY_RULES)
    engine = engine_for(sqlite_url)
    with engine.connect() as conn:
        for which in ("late", "due_soon"):
            for counting in (True, False):
                for stmt in (_halves(which, TODAY, 14, Filters(), counting=True) if counting
                             else [_ordered(which, TODAY, 14, Filters(), "due", upto=50)]):
                    sql = str(stmt.compile(engine, compile_kwargs={"literal_binds": True}))
                    plan = " ".join(str(r[3]) for r in conn.exec_driver_sql(
                        "EXPLAIN QUERY PLAN " + sql))
                    assert "ix_milestone_listed_due" in plan or \
                        "ix_adviceitem_listed_due" in plan, plan
