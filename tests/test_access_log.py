"""The access log (docs/data-protection.md): every GET route is either logged or says why it
shows no child's record; each logged route, called over real HTTP, writes its row; the rows
cannot be changed or deleted, on SQLite and PostgreSQL; the data protection officer's page
lists them; the subject access export holds every part of a child's record."""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, select, text

from api.access import LOGGED, NOT_A_RECORD
from domain.case import AdviceItem, AdviceSource, CaseSnapshot, Milestone, RequestSource, Stage
from domain.case import AssessmentPolicy
from services import access_log
from services.letters import case_recorder
from services.links import make_advice_token
from store import tables as t
from store.db import engine_for
from tests.conftest import settings_for
from worker.main import build_worker
from tests.http import add_staff, serve_app
from tests.test_auth import all_routes

TODAY = date(2026, 11, 16)


def d(n: int) -> date:
    return TODAY + timedelta(days=n)


def add_child(db_url: str, given: str = "Amara", family: str = "Okafor",
              born: date = date(2015, 3, 2), ref: str | None = None) -> str:
    with Session(engine_for(db_url)) as s:
        child = t.Child(given_name=given, family_name=family, date_of_birth=born,
                        council_reference=ref)
        s.add(child)
        s.commit()
        return child.id


def assessment(db_url: str, ref: str, child_id: str, *, stage: Stage = Stage.ASSESSING,
               milestones=(), advice=()) -> None:
    snap = CaseSnapshot(
        reference=ref, child_id=child_id, stage=stage, request_date=d(-100),
        request_source=RequestSource.PARENT, policy=AssessmentPolicy(),
        milestones=list(milestones), advice=list(advice), version=5,
        closed_on=d(-1) if stage == Stage.CLOSED else None,
        close_reason="Moved out of the area" if stage == Stage.CLOSED else None)
    case_recorder(db_url).record_case(snap, [])


def build(db_url: str) -> dict:
    """One child with a closed case (a letter, an accepted document, an email), an open case
    with late advice, and a ceased plan; another child with a case of their own."""
    child = add_child(db_url, ref="MIS-1001")
    other = add_child(db_url, given="Ben", family="Other")
    assessment(db_url, "EHC-CLOSED", child, stage=Stage.CLOSED, milestones=[
        Milestone(key="decision_due", rule_id="assessment.decision_due", started_on=d(-100),
                  due=d(-58), done_on=d(-60))])
    assessment(db_url, "EHC-OPEN", other, advice=[
        AdviceItem(key="health", source=AdviceSource.HEALTH, requested_on=d(-50),
                   due=d(-8))], milestones=[
        Milestone(key="decision_due", rule_id="assessment.decision_due", started_on=d(-100),
                  due=d(-10))])
    with Session(engine_for(db_url)) as s:
        s.add(t.Letter(case_reference="EHC-CLOSED", kind="refusal_to_assess", dated=d(-60),
                       citation="Reg 5(3)", body="Dear parent of Amara Okafor, ..."))
        sub = t.AdviceSubmission(case_reference="EHC-CLOSED", advice_key="health",
                                 kind="advice", text="Amara's health advice",
                                 submitted_by="Dr Karim", status="accepted")
        s.add(sub)
        s.flush()
        doc = t.AdviceDocument(submission_id=sub.id, filename="health.txt",
                               content_type="text/plain", size=12, sha256="0" * 64,
                               content=b"health words")
        s.add(doc)
        s.add(t.EmailMessage(key=f"k-{uuid.uuid4().hex}", case_reference="EHC-CLOSED",
                             template="advice_request", recipient_role="contact",
                             recipient_address="karim@health.example",
                             subject="Advice for EHC-CLOSED", body_text="Please send advice",
                             message_id="<m1@x>", status="sent"))
        s.add(t.Plan(reference="EHC-PLAN", child_id=child, issued_on=d(-400),
                     origin="import", workflow_id="review-EHC-PLAN", status="ceased",
                     ended_on=d(-30)))
        s.commit()
        return {"child": child, "other": other, "submission": sub.id, "document": doc.id}


def rows_for(db_url: str, child_id: str) -> list[t.AccessLog]:
    with Session(engine_for(db_url)) as s:
        return access_log.access_rows(s, child_id)


# --- every route is classified --------------------------------------------------------------


def test_every_get_route_is_logged_or_says_why_not():
    gets = {(m, p) for m, p in all_routes() if m == "GET"}
    logged, exempt = set(LOGGED), set(NOT_A_RECORD)
    assert not logged & exempt, "a route in both tables"
    assert gets - logged - exempt == set(), "a GET route neither logged nor exempt"
    assert (logged | exempt) - gets == set(), "a table names a route that does not exist"
    # A route that names one case, plan, document or child is logged.
    for method, path in gets - logged:
        assert "{reference}" not in path and "{document_id}" not in path, path


# --- each logged route writes its row, over real HTTP ---------------------------------------


async def test_each_record_route_writes_one_row_and_a_miss_writes_none(dev_env, sqlite_url,
                                                                      executor):
    ids = build(sqlite_url)
    staff_id, token = add_staff(sqlite_url, "manager", name="Dee Manager",
                                email="dee@council.example")
    settings = settings_for(sqlite_url, f"access-{uuid.uuid4().hex[:8]}")
    async with build_worker(dev_env.client, settings, executor), \
            serve_app(settings, dev_env.client, role=None) as http:
        http.headers["Authorization"] = f"Bearer {token}"
        # A live case, for a step's form.
        r = await http.post("/api/assessments", json={
            "child": {"given_name": "Cara", "family_name": "Live", "date_of_birth": "2016-09-01"},
            "request_date": TODAY.isoformat(), "request_source": "parent"})
        assert r.status_code == 201, r.text
        live = r.json()["reference"]
        r = await http.get(f"/cases/{live}/act/decide_to_assess")
        assert r.status_code == 200, r.text[:300]
        with Session(engine_for(sqlite_url)) as s:
            live_child = s.get(t.Case, live).child_id
        assert [x.route for x in rows_for(sqlite_url, live_child)] == [
            "GET /cases/{reference}/act/{action}"]
        doc = (f"/api/cases/EHC-CLOSED/submissions/{ids['submission']}/documents/"
               f"{ids['document']}")
        for url in ("/cases/EHC-CLOSED", "/api/cases/EHC-CLOSED", "/plans/EHC-PLAN",
                    "/api/plans/EHC-PLAN", "/api/cases/EHC-CLOSED/linked-plans", doc):
            r = await http.get(url)
            assert r.status_code == 200, (url, r.text[:300])
        rows = rows_for(sqlite_url, ids["child"])
        assert sorted(r.route for r in rows) == sorted(f"GET {p}" for p in (
            "/cases/{reference}", "/api/cases/{reference}", "/plans/{reference}",
            "/api/plans/{reference}", "/api/cases/{reference}/linked-plans",
            "/api/cases/{reference}/submissions/{submission_id}/documents/{document_id}"))
        assert {(r.staff_id, r.who, r.via) for r in rows} == {
            (staff_id, "Dee Manager <dee@council.example>", "token")}
        kinds = {r.route: r.kind for r in rows}
        assert kinds["GET /cases/{reference}"] == "page"
        assert kinds["GET /api/cases/{reference}"] == "api"
        assert [r.what for r in rows if r.kind == "document"] == [
            f"Document {ids['document']} sent with advice"]
        assert all(r.at.replace(tzinfo=timezone.utc) <= datetime.now(timezone.utc)
                   for r in rows)
        # The child's name is never in a row.
        assert not any("Amara" in " ".join(map(str, r.model_dump().values())) for r in rows)

        # Nothing shown, nothing logged: an unknown case, a refused document, a list.
        before = len(rows)
        assert (await http.get("/cases/EHC-NONE")).status_code == 404
        assert (await http.get(doc.replace(str(ids["document"]), "999"))).status_code == 404
        assert (await http.get("/api/cases")).status_code == 200
        assert len(rows_for(sqlite_url, ids["child"])) == before

        # Exports: one row per child's case in them.
        r = await http.get("/api/worklist/late.csv", params={"today": TODAY.isoformat()})
        assert r.status_code == 200 and "EHC-OPEN" in r.text
        exported = [x for x in rows_for(sqlite_url, ids["other"]) if x.kind == "export"]
        assert [(x.reference, x.route) for x in exported] == [
            ("EHC-OPEN", "GET /api/worklist/{which}.csv")]
        r = await http.get("/api/exports/sen2", params={"from": d(-200).isoformat(),
                                                        "to": TODAY.isoformat(),
                                                        "format": "csv"})
        assert r.status_code == 200, r.text
        sen2 = {x.reference for x in rows_for(sqlite_url, ids["child"]) if x.kind == "export"}
        assert "EHC-CLOSED" in sen2

        # The advice page: a professional through the link.
        link = make_advice_token(settings, "EHC-OPEN", "health")
        http.headers.pop("Authorization")
        r = await http.get(f"/advice/{link}")
        assert r.status_code == 200 and "Send medical advice" in r.text, r.text[:300]
        advice = [x for x in rows_for(sqlite_url, ids["other"]) if x.kind == "advice page"]
        assert [(x.via, x.staff_id, x.reference) for x in advice] == [
            ("advice link", None, "EHC-OPEN")]
    # Every logged route was called and wrote its row (the subject access export: below).
    with Session(engine_for(sqlite_url)) as s:
        seen = {r.route for r in s.exec(select(t.AccessLog))}
    assert {f"GET {p}" for _, p in LOGGED} - seen == {
        "GET /admin/access-log/children/{child_id}/export"}


# --- append-only -----------------------------------------------------------------------------


def test_rows_cannot_be_changed_or_deleted(db_url):
    child = add_child(db_url)
    with Session(engine_for(db_url)) as s:
        access_log.record_access(session=s, staff=access_log.command_viewer(),
                                 child_id=child, reference=None, kind="export", what="test")
    for sql in ("UPDATE access_log SET who = 'someone else'", "DELETE FROM access_log"):
        with Session(engine_for(db_url)) as s:
            with pytest.raises(DBAPIError, match="append-only"):
                s.exec(text(sql))
                s.commit()
    if db_url.startswith("postgresql"):
        with Session(engine_for(db_url)) as s:
            with pytest.raises(DBAPIError, match="append-only"):
                s.exec(text("TRUNCATE access_log"))
                s.commit()
    with Session(engine_for(db_url)) as s:
        assert [r.who for r in s.exec(select(t.AccessLog))] == [
            access_log.command_viewer().who]


# --- the data protection officer's page and the subject access export ------------------------


async def test_the_officer_finds_a_child_sees_who_looked_and_exports_everything(sqlite_url,
                                                                                tmp_path):
    ids = build(sqlite_url)
    settings = settings_for(sqlite_url, "access", temporal_address="127.0.0.1:1")
    _, token = add_staff(sqlite_url, "caseworker", name="Cal Worker", email="cal@council.example")
    with Session(engine_for(sqlite_url)) as s:  # three views, one of them long ago
        for n, when in enumerate((datetime(2026, 10, 13, 13, 5, tzinfo=timezone.utc),
                                  datetime(2026, 11, 1, 9, 0, tzinfo=timezone.utc),
                                  datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc))):
            s.add(t.AccessLog(at=when, who=f"Viewer {n} <v{n}@council.example>", via="session",
                              kind="page", child_id=ids["child"], reference="EHC-CLOSED",
                              what="The case page", route="GET /cases/{reference}"))
        s.commit()
    async with serve_app(settings, None, role="admin") as http:
        r = await http.get("/api/exports/sen2", params={"from": d(-200).isoformat(),
                                                        "to": TODAY.isoformat()})
        assert r.status_code == 200 and "EHC-CLOSED" in r.text
        # A caseworker may not see the log.
        r = await http.get("/admin/access-log", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 403
        r = await http.get("/admin/access-log", params={"reference": "EHC-CLOSED"})
        assert r.status_code == 200 and "Amara Okafor" in r.text
        assert f"/admin/access-log/children/{ids['child']}" in r.text
        r = await http.get("/admin/access-log", params={
            "given_name": "amara", "family_name": "OKAFOR", "date_of_birth-day": "2",
            "date_of_birth-month": "3", "date_of_birth-year": "2015"})
        assert r.status_code == 200 and f"/admin/access-log/children/{ids['child']}" in r.text
        r = await http.get("/admin/access-log", params={"given_name": "Amara"})
        assert r.status_code == 422 and "Enter the child&#39;s date of birth" in r.text
        r = await http.get("/admin/access-log", params={"reference": "EHC-NOBODY"})
        assert "No child found" in r.text

        page = await http.get(f"/admin/access-log/children/{ids['child']}")
        assert page.status_code == 200
        text = page.text
        assert "13 October 2026 at 2:05pm" in text  # British Summer Time: 13:05 UTC
        order = [text.index(f"Viewer {n}") for n in (2, 1, 0)]
        assert order == sorted(order), "newest first"

        r = await http.get(f"/admin/access-log/children/{ids['child']}/export")
        assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
        assert "attachment" in r.headers["content-disposition"]
        z = zipfile.ZipFile(io.BytesIO(r.content))
        names = set(z.namelist())
        root = "subject-access/"
        for part in ("README.txt", "record.txt", "child.json", "access_log.json",
                     "cases/EHC-CLOSED/case.json", "cases/EHC-CLOSED/timeline.json",
                     "cases/EHC-CLOSED/emails.json",
                     "cases/EHC-CLOSED/letters/refusal_to_assess.txt",
                     f"cases/EHC-CLOSED/advice/{ids['submission']}.json",
                     f"cases/EHC-CLOSED/advice/{ids['submission']}-documents/"
                     f"{ids['document']}-health.txt", "plans/EHC-PLAN.json"):
            assert root + part in names, part
        assert not any("EHC-OPEN" in n for n in names), "another child's case"
        child = json.loads(z.read(root + "child.json"))
        assert child["given_name"] == "Amara" and child["date_of_birth"] == "2015-03-02"
        emails = json.loads(z.read(root + "cases/EHC-CLOSED/emails.json"))
        assert emails[0]["body_text"] == "Please send advice"
        assert z.read(root + f"cases/EHC-CLOSED/advice/{ids['submission']}-documents/"
                      f"{ids['document']}-health.txt") == b"health words"
        log = json.loads(z.read(root + "access_log.json"))
        assert log[0]["kind"] == "subject access"  # the export itself, first (newest)
        record = z.read(root + "record.txt").decode()
        assert "Date of birth: 2 March 2015" in record and "Please send advice" in record
        assert "as a subject access export" in z.read(root + "README.txt").decode()
        # The page now lists the export.
        page = await http.get(f"/admin/access-log/children/{ids['child']}")
        assert "Subject access export" in page.text
        assert "Exported<br><span class=\"govuk-body-s\">The SEN2 check export, 30 April 2026 to 16 November 2026" in page.text


def test_the_export_command_writes_the_archive_and_is_logged(sqlite_url, tmp_path, capsys):
    from cli.main import main

    ids = build(sqlite_url)
    out = tmp_path / "sar.zip"
    assert main(["children", "export", "--reference", "MIS-1001", "--out", str(out),
                 "--url", sqlite_url]) == 0
    assert "Amara" not in capsys.readouterr().out
    assert "subject-access/child.json" in zipfile.ZipFile(out).namelist()
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    rows = rows_for(sqlite_url, ids["child"])
    assert [(r.kind, r.via, r.route) for r in rows] == [
        ("subject access", "command", "ehc children export")]
    assert main(["children", "export", "--reference", "EHC-NOBODY", "--out", str(out),
                 "--url", sqlite_url]) == 2
