"""The managers' late and due-soon lists (store.worklist), against cases written by the real
recorder, on SQLite and PostgreSQL: what is listed, on which day, who owes it, every filter,
sorting and paging; then the same over HTTP with the CSV export and the page."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta

from sqlmodel import Session

from services.letters import case_recorder
from store import tables as t
from store.db import engine_for, session_for
from domain.case import (
    AdviceItem,
    AdviceSource,
    AssessmentPolicy,
    CaseException,
    CaseSnapshot,
    Milestone,
    RequestSource,
    Stage,
)
from store.worklist import Filters, iter_items, my_cases, query
from statutory import ExceptionKind
from tests.conftest import free_port, settings_for
from tests.http import add_staff, serve_app

TODAY = date(2026, 11, 16)


def d(n: int) -> date:
    return TODAY + timedelta(days=n)


def add_child(db_url: str) -> str:
    with Session(engine_for(db_url)) as s:
        child = t.Child(given_name="Test", family_name="Child", date_of_birth=date(2016, 1, 1))
        s.add(child)
        s.commit()
        return child.id


def assessment(db_url: str, ref: str, *, stage: Stage = Stage.ASSESSING, milestones=(),
               advice=(), exceptions=(), caseworker_id: str | None = None,
               school: str | None = None, version: int = 5) -> None:
    snap = CaseSnapshot(
        reference=ref, child_id=add_child(db_url), stage=stage, request_date=d(-100),
        request_source=RequestSource.PARENT, policy=AssessmentPolicy(), setting_name=school,
        caseworker_id=caseworker_id, milestones=list(milestones), advice=list(advice),
        exceptions=list(exceptions), version=version)
    case_recorder(db_url).record_case(snap, [])


def ms(key: str, rule: str, due: date, done: date | None = None, **kw) -> Milestone:
    return Milestone(key=key, rule_id=rule, started_on=d(-100), due=due, done_on=done, **kw)


def adv(key: str, source: AdviceSource, due: date, received: date | None = None,
        service_id: str | None = None, **kw) -> AdviceItem:
    return AdviceItem(key=key, source=source, requested_on=due - timedelta(days=42), due=due,
                      received_on=received, service_id=service_id, **kw)


def build(db_url: str) -> dict[str, str]:
    """A small caseload with one of everything; returns the staff ids."""
    asha, _ = add_staff(db_url, "caseworker", name="Asha Patel")
    ben, _ = add_staff(db_url, "caseworker", name="Ben Cole")
    with Session(engine_for(db_url)) as s:
        s.add(t.Service(id="svc-paeds", name="Community Paediatrics", agency="health"))
        s.add(t.Service(id="svc-eps", name="Educational Psychology", agency="educational_psychology"))
        s.flush()
        s.add(t.Contact(id="ct-karim", service_id="svc-paeds", name="Dr Karim",
                        email="k@x.example"))
        s.commit()
    # A: decision 10 days late; health advice due yesterday (1 day late); EP advice due
    # today (not late); education advice received late (done: not listed).
    assessment(db_url, "EHC-A", caseworker_id=asha, school="Oak Primary", milestones=[
        ms("decision_due", "assessment.decision_due", d(-10)),
        ms("final_plan_due", "assessment.final_plan_due", d(40)),
    ], advice=[
        adv("health", AdviceSource.HEALTH, d(-1), service_id="svc-paeds",
            contact_id="ct-karim", alerts_fired=["request", "overdue"]),
        adv("educational_psychologist", AdviceSource.EDUCATIONAL_PSYCHOLOGIST, d(0),
            service_id="svc-eps"),
        adv("education", AdviceSource.EDUCATION, d(-5), received=d(-2)),
        adv("family", AdviceSource.FAMILY, d(-30), reused=True),  # reused: never owed
    ])
    # B: social care advice 20 days late but excused (Reg 8(2)(b)); the family's comment
    # window has passed (theirs: never late); a school consulted has not answered (3 late).
    assessment(db_url, "EHC-B", caseworker_id=ben, school="Hill School", stage=Stage.DRAFT_SERVED,
               milestones=[
                   ms("draft_comments_due", "assessment.draft_comments_due", d(-3)),
                   ms("final_plan_due", "assessment.final_plan_due", d(3)),
                   ms("no_plan_notice_due", "assessment.no_plan_notice_due", d(-40),
                      applicable=False),
               ], advice=[
                   adv("social_care", AdviceSource.SOCIAL_CARE, d(-20)),
               ], exceptions=[
                   CaseException(id="X1", kind=ExceptionKind.ADVICE_ABSENT_FROM_AREA,
                                 reason="abroad", starts_on=d(-50), ends_on=None,
                                 advice_key="social_care", recorded_on=d(-40)),
               ])
    with Session(engine_for(db_url)) as s:
        s.add(t.Milestone(case_reference="EHC-B", key="setting:riverside-academy",
                          kind="setting", rule_id="assessment.setting_response_due",
                          started_on=d(-18), due=d(-3)))
        s.commit()
    # C: closed, with a deadline that was missed: not on any list.
    assessment(db_url, "EHC-C", stage=Stage.CLOSED, milestones=[
        ms("decision_due", "assessment.decision_due", d(-60))])
    # D: nobody holds it; its final plan is due in 10 days.
    assessment(db_url, "EHC-D", milestones=[
        ms("final_plan_due", "assessment.final_plan_due", d(10))])
    return {"asha": asha, "ben": ben}


def keys(page) -> list[tuple[str, str]]:
    return [(i.case_reference, i.key) for i in page.items]


def test_late_and_due_soon_on_the_day(db_url):
    staff = build(db_url)
    with session_for(db_url) as s:
        late = query(s, "late", TODAY)
        assert keys(late) == [("EHC-A", "decision_due"), ("EHC-B", "setting:riverside-academy"),
                              ("EHC-A", "health")]
        assert late.total == 3
        decision, school, health = late.items
        assert (decision.days_overdue, decision.days_left, decision.party) == (10, -10, "la")
        assert decision.owed_by == "Asha Patel" and decision.citation == "Reg 5(1)"
        assert decision.school == "Oak Primary" and decision.caseworker_id == staff["asha"]
        assert (health.days_overdue, health.party, health.owed_by, health.chased) == (
            1, "health", "Dr Karim, Community Paediatrics", "Overdue notice")
        assert health.title == "Advice: medical advice"
        assert (school.item, school.party, school.days_overdue) == ("setting", "setting", 3)
        assert school.title == "Consultation response: Riverside Academy"

        # The excused social care advice appears only when asked for, marked excused.
        with_excused = query(s, "late", TODAY, filters=Filters(include_excused=True))
        assert ("EHC-B", "social_care") in keys(with_excused)
        assert next(i for i in with_excused.items if i.key == "social_care").excused

        soon = query(s, "due_soon", TODAY, days=10)
        assert keys(soon) == [("EHC-A", "educational_psychologist"),
                              ("EHC-B", "final_plan_due"), ("EHC-D", "final_plan_due")]
        assert soon.items[0].days_left == 0  # due today: due soon, not late
        assert soon.items[2].owed_by == "SEND team (no caseworker)"
        assert query(s, "due_soon", TODAY, days=9).total == 2  # day 10 is the window's edge

        # The next day, the EP advice due today is late by one day.
        tomorrow = query(s, "late", d(1))
        assert ("EHC-A", "educational_psychologist") in keys(tomorrow)


def test_every_filter_and_sort(db_url):
    staff = build(db_url)
    with session_for(db_url) as s:
        def late(**f):
            return keys(query(s, "late", TODAY, filters=Filters(**f)))

        assert late(agency="health") == [("EHC-A", "health")]
        assert late(agency="la") == [("EHC-A", "decision_due")]
        assert late(agency="setting") == [("EHC-B", "setting:riverside-academy")]
        assert late(service_id="svc-paeds") == [("EHC-A", "health")]
        assert late(caseworker_id=staff["ben"]) == [("EHC-B", "setting:riverside-academy")]
        assert late(caseworker_id="none") == []
        assert late(school="oak primary") == [("EHC-A", "decision_due"), ("EHC-A", "health")]
        assert late(stage="draft_served") == [("EHC-B", "setting:riverside-academy")]
        assert late(min_days_overdue=3) == [("EHC-A", "decision_due"),
                                            ("EHC-B", "setting:riverside-academy")]
        assert late(min_days_overdue=4, max_days_overdue=10) == [("EHC-A", "decision_due")]
        assert late(case_kind="review") == []

        by_case = keys(query(s, "late", TODAY, sort="case"))
        assert by_case == [("EHC-A", "decision_due"), ("EHC-A", "health"),
                           ("EHC-B", "setting:riverside-academy")]
        newest = keys(query(s, "late", TODAY, sort="-due"))
        assert newest[0] == ("EHC-A", "health")
        first, second = (query(s, "late", TODAY, page=n, page_size=2) for n in (1, 2))
        assert (first.total, second.total) == (3, 3)
        assert keys(first) + keys(second) == keys(query(s, "late", TODAY))
        assert [i.key for i in iter_items(s, "late", TODAY, batch=1)] == [
            "decision_due", "setting:riverside-academy", "health"]


def test_a_caseworkers_cases_nearest_deadline_first(db_url):
    staff = build(db_url)
    with session_for(db_url) as s:
        mine = my_cases(s, staff["asha"], TODAY)
        assert [(c.reference, c.next_due, c.late_items) for c in mine] == [("EHC-A", d(-10), 2)]
        assert mine[0].next_title == "Decision whether to assess"
        bens = my_cases(s, staff["ben"], TODAY)
        assert [(c.reference, c.next_due, c.late_items) for c in bens] == [("EHC-B", d(-3), 1)]


async def test_the_list_over_http_as_json_csv_and_a_page(sqlite_url):
    build(sqlite_url)
    settings = settings_for(sqlite_url, "worklist", temporal_address=f"127.0.0.1:{free_port()}")
    async with serve_app(settings, None, role="manager") as http:
        r = await http.get("/api/worklist/late", params={"today": TODAY.isoformat(),
                                                         "agency": "health"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["total"] == 1 and body["items"][0]["owed_by"] == \
            "Dr Karim, Community Paediatrics"
        r = await http.get("/api/worklist/late", params={"today": TODAY.isoformat(),
                                                         "sort": "sideways"})
        assert r.status_code == 422 and "sort must be one of" in r.json()["detail"]
        r = await http.get("/api/worklist/due-soon", params={"today": TODAY.isoformat(),
                                                             "days": 10})
        assert r.json()["total"] == 3

        r = await http.get("/api/worklist/late.csv", params={"today": TODAY.isoformat()})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        assert "attachment" in r.headers["content-disposition"]
        rows = list(csv.DictReader(io.StringIO(r.text)))
        assert [row["case_reference"] for row in rows] == ["EHC-A", "EHC-B", "EHC-A"]
        assert rows[0]["days_overdue"] == "10" and rows[0]["citation"] == "Reg 5(1)"
        assert "given_name" not in rows[0] and "Test" not in r.text  # no child's name

        page = await http.get("/late", params={"today": TODAY.isoformat()})
        assert page.status_code == 200
        assert "EHC-A" in page.text and "Dr Karim, Community Paediatrics" in page.text
        assert "3 late" in page.text
        filtered = await http.get("/late", params={"today": TODAY.isoformat(),
                                                   "agency": "setting"})
        assert "Consultation response: Riverside Academy" in filtered.text and "Dr Karim" not in filtered.text
        bad = await http.get("/late", params={"min_days_overdue": "lots"})
        assert bad.status_code == 422 and "whole number" in bad.text
