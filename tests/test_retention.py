"""The retention rule (services/retention.py; docs/data-protection.md): the dry-run report
changes nothing and names no child; apply removes what identifies the children past the rule
with no open case or active plan, keeps the others, and leaves every statistic exactly as it
was."""

from __future__ import annotations

from datetime import date, datetime, timezone

from sqlmodel import Session, select

from cli.main import main
from domain.case import AdviceItem, AdviceSource, Milestone, Stage
from services import access_log, retention
from services import reports
from services import statistics as st
from store import tables as t
from store.db import engine_for
from tests.test_access_log import TODAY, add_child, assessment, build, d

FROM, TO = date(2025, 4, 1), TODAY


def statistics(db_url: str) -> dict:
    """Every figure the statistics and reports give for the period, as JSON."""
    with Session(engine_for(db_url)) as s:
        asked = dict(session=s, from_date=FROM, to_date=TO)
        return {
            "timeliness": st.timeliness(**asked, as_of=TODAY).model_dump(mode="json"),
            "dfe": st.dfe(**asked).model_dump(mode="json"),
            "review_outcomes": st.review_outcomes(**asked).model_dump(mode="json"),
            "outcomes": reports.outcomes_report(**asked).model_dump(mode="json"),
        }


def caseload(db_url: str) -> dict:
    """``build``'s children (born 2015: kept), and three born in 1990 and 1995: one with a
    closed case (late decision, advice on time and late), one with a ceased plan and a
    review's outcomes, one with an open case (kept for it)."""
    ids = build(db_url)
    old = add_child(db_url, "Olive", "Aged", date(1990, 6, 1), ref="MIS-OLD")
    assessment(db_url, "EHC-OLD", old, stage=Stage.CLOSED, milestones=[
        Milestone(key="decision_due", rule_id="assessment.decision_due", started_on=d(-100),
                  due=d(-58), done_on=d(-50)),
        Milestone(key="final_plan_due", rule_id="assessment.final_plan_due",
                  started_on=d(-100), due=d(40), applicable=False)], advice=[
        AdviceItem(key="health", source=AdviceSource.HEALTH, requested_on=d(-60), due=d(-18),
                   received_on=d(-20)),
        AdviceItem(key="education", source=AdviceSource.EDUCATION, requested_on=d(-60),
                   due=d(-18), received_on=d(-10))])
    leap = add_child(db_url, "Lee", "Leap", date(1992, 2, 29))
    busy = add_child(db_url, "Bea", "Busy", date(1990, 1, 1))
    assessment(db_url, "EHC-BUSY", busy, milestones=[
        Milestone(key="decision_due", rule_id="assessment.decision_due", started_on=d(-100),
                  due=d(-58))])
    with Session(engine_for(db_url)) as s:
        s.add(t.Plan(reference="EHC-LEAP", child_id=leap, issued_on=d(-700), origin="import",
                     workflow_id="review-EHC-LEAP", status="ceased", ended_on=d(-20)))
        s.flush()
        s.add(t.Case(reference="EHC-LEAP.R1", kind="review", child_id=leap,
                     workflow_id="review-EHC-LEAP", stage="ceased", is_open=False,
                     request_date=d(-365), request_source="review", closed_on=d(-20),
                     close_reason="Left for Wales with her aunt"))
        s.flush()
        s.add(t.Review(case_reference="EHC-LEAP.R1", plan_reference="EHC-LEAP", cycle=1,
                       anchor_on=d(-365), meeting_on=d(-60), meeting_held_on=d(-60),
                       decision="cease", decided_on=d(-50), ceased_on=d(-20),
                       outcomes=[{"outcome": "Lee reads with her aunt", "progress": "achieved",
                                  "note": "Lee's own words"}]))
        s.add(t.CaseEvent(case_reference="EHC-LEAP.R1", seq=1, kind="plan.closed", on=d(-20),
                          at=datetime(2026, 10, 27, 12, tzinfo=timezone.utc),
                          summary="Plan closed: left for Wales with her aunt",
                          data={"reason": "Wales"}))
        s.commit()
    with Session(engine_for(db_url)) as s:
        for child, ref in ((old, "EHC-OLD"), (ids["child"], "EHC-CLOSED")):
            access_log.record_access(session=s, staff=access_log.command_viewer(),
                                     child_id=child, reference=ref, kind="page", what="x")
    return {**ids, "old": old, "leap": leap, "busy": busy}


def test_report_then_apply_removes_what_passed_and_keeps_the_statistics_exact(db_url, capsys):
    ids = caseload(db_url)
    before = statistics(db_url)
    assert sum(m["figures"]["counted"] for m in before["timeliness"]["measures"]) >= 10
    assert before["outcomes"]["outcomes"] == 1  # the figures have something to lose
    with Session(engine_for(db_url)) as s:
        rep = retention.report(session=s, years=31, on=TODAY)
    # 1990 + 31 = 2021 and 1992-02-29 + 31 = 2023-03-01: past; 2015: not yet; Bea: open case.
    assert [(x.child_id, x.references, x.passed_on) for x in rep.due] == [
        (ids["old"], ["EHC-OLD"], date(2021, 6, 1)),
        (ids["leap"], ["EHC-LEAP.R1", "EHC-LEAP"], date(2023, 3, 1))]
    assert rep.kept_open == 1 and rep.due[0].counts["access log rows"] == 1

    assert main(["retention", "report", "--on", TODAY.isoformat(), "--url", db_url]) == 0
    said = capsys.readouterr().out
    assert "Would remove: record" in said and "EHC-OLD" in said and "EHC-LEAP" in said
    assert not any(name in said for name in ("Olive", "Aged", "Lee", "Leap", "Bea", "Amara"))
    assert "1 past the rule but kept for an open case or an active plan" in said
    with Session(engine_for(db_url)) as s:  # the report changed nothing
        assert s.get(t.Child, ids["old"]).given_name == "Olive"

    assert main(["retention", "apply", "--on", TODAY.isoformat(), "--url", db_url]) == 0
    assert "Removed: record" in capsys.readouterr().out
    assert statistics(db_url) == before, "the statistics moved"

    with Session(engine_for(db_url)) as s:
        old = s.get(t.Child, ids["old"])
        assert (old.given_name, old.family_name, old.date_of_birth, old.council_reference,
                old.anonymised_on) == ("", "", date(1990, 1, 1), None, TODAY)
        assert s.get(t.Child, ids["busy"]).given_name == "Bea"  # an open case: kept
        assert s.get(t.Child, ids["child"]).given_name == "Amara"  # not yet due
        assert s.exec(select(t.AccessLog).where(t.AccessLog.child_id == ids["old"])).all() == []
        assert len(s.exec(select(t.AccessLog)
                          .where(t.AccessLog.child_id == ids["child"])).all()) == 1
        case = s.get(t.Case, "EHC-LEAP.R1")
        assert case.close_reason is None and case.stage == "ceased"
        review = s.get(t.Review, "EHC-LEAP.R1")
        assert review.outcomes == [{"outcome": "Outcome 1", "progress": "achieved",
                                    "note": None}]
        event = s.exec(select(t.CaseEvent).where(
            t.CaseEvent.case_reference == "EHC-LEAP.R1")).one()
        assert (event.summary, event.data) == ("Plan closed", {})
        # The deadlines, advice and dates that the statistics count are all still there.
        assert len(s.exec(select(t.Milestone)
                          .where(t.Milestone.case_reference == "EHC-OLD")).all()) == 2
    # Nothing more passes on a second run.
    with Session(engine_for(db_url)) as s:
        assert retention.report(session=s, years=31, on=TODAY).due == []


def test_retention_removes_the_documents_letters_and_email_bodies(sqlite_url):
    ids = build(sqlite_url)
    with Session(engine_for(sqlite_url)) as s:
        rep = retention.apply(session=s, years=10, on=TODAY)  # born 2015: passed in 2025
    assert {x.child_id for x in rep.due} == {ids["child"], ids["other"]} - {ids["other"]}
    with Session(engine_for(sqlite_url)) as s:
        assert s.exec(select(t.AdviceDocument)).all() == []
        assert s.exec(select(t.Letter)).all() == []
        email = s.exec(select(t.EmailMessage)).one()
        assert email.body_text == retention.REMOVED and email.subject == retention.REMOVED
        assert email.recipient_address == "karim@health.example"  # proof a professional was asked
        assert s.exec(select(t.AdviceSubmission)).one().text == ""
