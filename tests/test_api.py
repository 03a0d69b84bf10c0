"""The caseworker API over real HTTP, against a worker on the real Temporal dev server, on
SQLite and PostgreSQL: every path of a case, and every kind of bad input getting a 4xx that
says what to fix and changes nothing."""

from __future__ import annotations

import asyncio
import time
import re
import os
import signal
import subprocess
import sys
import uuid
from contextlib import asynccontextmanager
from datetime import date, timedelta

import httpx
from sqlmodel import Session, func, select

from services.clock import today
from store import tables as t
from store.db import engine_for
from tests.conftest import settings_for
from tests.http import serve_app
from worker.main import build_worker

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


serve_api = serve_app  # the app over real HTTP, signed in as an administrator


@asynccontextmanager
async def system(dev_env, db_url, executor):
    settings = settings_for(db_url, f"api-{uuid.uuid4().hex[:8]}")
    async with build_worker(dev_env.client, settings, executor):
        async with serve_api(settings, dev_env.client) as http:
            yield http


D0 = today() - timedelta(days=150)  # the request arrived 150 days ago: every step is backdated


def day(n: int) -> str:
    return (D0 + timedelta(days=n)).isoformat()


def new_request(**child) -> dict:
    return {
        "child": {"given_name": "Noah", "family_name": f"Example{uuid.uuid4().hex[:6]}",
                  "date_of_birth": "2016-09-01", **child},
        "request_date": day(0),
        "request_source": "parent",
    }


async def ok(response: httpx.Response, status: int = 200) -> dict:
    assert response.status_code == status, response.text
    return response.json()


# What the final-plan step asks besides the date: the school or setting the plan names, its type
# and the child's year group (the plan's placement; the plans file's column names).
PLACEMENT = {"setting_name": "Oakfield Primary School", "setting_type": "primary", "nc_year": "4"}


async def problem(response: httpx.Response, status: int, *fragments: str) -> str:
    """The answer's sentence holds each fragment; a 422's fragment may instead be the field a
    program reads (``errors[].field``: the sentence names it as the form does)."""
    assert response.status_code == status, response.text
    body = response.json()
    detail = body["detail"]
    fields = [e["field"] for e in body.get("errors", [])]
    for fragment in fragments:
        assert fragment in detail or fragment in fields, (fragment, detail, fields)
    return detail


async def wait_for_record(db_url: str, ref: str, version: int | None = None) -> t.Case:
    for _ in range(200):
        with Session(engine_for(db_url)) as s:
            row = s.get(t.Case, ref)
            if row is not None and (version is None or row.version >= version):
                return row
        await asyncio.sleep(0.05)
    raise AssertionError(f"case {ref} not recorded")


async def test_a_case_through_every_step_over_http(dev_env, db_url, executor):
    async with system(dev_env, db_url, executor) as http:
        started = await ok(await http.post("/api/assessments", json=new_request()), 201)
        ref = started["reference"]
        assert ref.startswith("EHC-") and started["workflow_id"] == f"assessment-{ref}"
        d = started["deadlines"]
        assert d["decision_due"] == {"due": day(42), "citation": "Reg 5(1)",
                                     "title": "Decision whether to assess",
                                     "rule": "assessment.decision_due"}
        assert (d["no_plan_notice_due"]["due"], d["final_plan_due"]["due"]) == (day(112), day(140))

        case = await ok(await http.get(f"/api/cases/{ref}"))
        assert case["view"]["case"]["stage"] == "awaiting_decision"
        assert case["child"]["given_name"] == "Noah"
        assert case["view"]["allowed_actions"][0] == "decide_to_assess"
        # the request is 150 days old and undecided: the live view says so
        assert "decision_due" in case["view"]["overdue"]

        base = f"/api/cases/{ref}"
        await ok(await http.post(f"{base}/decision-to-assess",
                                 json={"decision": "assess", "decided_on": day(30),
                                       "actor": "caseworker 7"}))
        view = await ok(await http.post(f"{base}/advice-requests", json={"items": [
            {"source": s, "requested_on": day(31)} for s in
            ("family", "education", "health", "educational_psychologist", "social_care")]}))
        assert {a["due"] for a in view["case"]["advice"]} == {day(73)}
        for s in ("family", "education", "educational_psychologist", "social_care"):
            await ok(await http.post(f"{base}/advice/{s}/received", json={"received_on": day(60)}))
        view = await ok(await http.post(f"{base}/advice/health/received",
                                        json={"received_on": day(80)}))
        health = next(x for x in view["deadlines"] if x["key"] == "health")
        assert health["status"] == "done_late"
        await ok(await http.post(f"{base}/plan-decision",
                                 json={"decision": "issue", "decided_on": day(85)}))
        await ok(await http.post(f"{base}/draft", json={"served_on": day(100)}))
        await ok(await http.post(f"{base}/setting-consultations",
                                 json={"setting": "Oakfield Primary School", "sent_on": day(100)}))
        await ok(await http.post(f"{base}/setting-consultations/setting:oakfield-primary-school/"
                                 "response", json={"received_on": day(110)}))
        await ok(await http.post(f"{base}/family-comments", json={"received_on": day(112)}))
        # The school named in the plan, its type and the year group are required.
        await problem(await http.post(f"{base}/final-plan", json={"issued_on": day(130)}),
                      422, "setting_name")
        await problem(await http.post(f"{base}/final-plan", json={
            "issued_on": day(130), **PLACEMENT, "nc_year": "9"}), 422,
            "does not teach Year 9")
        view = await ok(await http.post(f"{base}/final-plan", json={"issued_on": day(130),
                                                                    **PLACEMENT}))
        assert view["case"]["stage"] == "final_issued" and view["allowed_actions"] == []
        assert view["case"]["placement"] == {"nc_year": "4", "nc_year_as_of": day(130),
                                             "setting_type": "primary",
                                             "setting_name": "Oakfield Primary School"}

        row = await wait_for_record(db_url, ref)
        for _ in range(100):  # the workflow closes right after the update returns
            case = await ok(await http.get(f"/api/cases/{ref}"))
            if not (row := await wait_for_record(db_url, ref)).is_open:
                break
            await asyncio.sleep(0.05)
        assert row.stage == "final_issued" and not row.is_open
        final = next(x for x in case["view"]["deadlines"] if x["key"] == "final_plan_due")
        assert (final["due"], final["done_on"], final["status"]) == (day(140), day(130),
                                                                    "done_on_time")
        kinds = [e["kind"] for e in case["timeline"]]
        assert kinds[:3] == ["request_received", "deadline.overdue", "decision.assess"] or \
            kinds[0] == "request_received"
        assert kinds[-1] == "final.issued" or kinds[-2:] == ["final.issued",
                                                             "plan.reviews_started"]
        # The plan's first annual review is a case of its own, read the same way.
        review = await wait_for_record(db_url, f"{ref}.R1")
        for _ in range(100):
            case = await ok(await http.get(f"/api/cases/{ref}"))
            if case["timeline"][-1]["kind"] == "plan.reviews_started":
                break
            await asyncio.sleep(0.05)
        assert [e["kind"] for e in case["timeline"]][-2:] == ["final.issued",
                                                              "plan.reviews_started"]
        assert (review.kind, review.stage, review.is_open) == ("review", "awaiting_meeting", True)
        cycle = await ok(await http.get(f"/api/cases/{ref}.R1"))
        assert cycle["view"]["case"]["kind"] == "review" and cycle["view"]["allowed_actions"] \
            == ["set_meeting", "set_phase_transfer", "set_post16_move",
               "update_placement", "close_plan"]
        assert [e["seq"] for e in case["timeline"]] == list(range(1, len(case["timeline"]) + 1))
        # The signed-in account is recorded as who took each step, not what the body says.
        me = await ok(await http.get("/api/me"))
        decided = next(e for e in case["timeline"] if e["kind"] == "decision.assess")
        assert decided["actor"] == f"{me['name']} <{me['email']}>"
        assert not any(e["actor"] == "caseworker 7" for e in case["timeline"])

        listed = await ok(await http.get("/api/cases", params={"open": "false"}))
        assert any(c["reference"] == ref and c["stage"] == "final_issued" for c in listed)
        page = await http.get(f"/cases/{ref}")
        assert page.status_code == 200 and "Final EHC plan issued" in page.text


async def test_a_plan_issued_here_enters_its_phase_transfer_cohort(dev_env, db_url, executor):
    """A Year 6 child at a primary school: the final-plan step records the school, its type and
    the year group, the plan row carries them, and the plan is in the cohort of next 14
    February exactly as an imported plan would be."""
    from statutory.phase import academic_year
    from store.cohort import default_year

    issued = date.fromisoformat(day(130))
    # Year 6 today: a year group recorded in the academic year before moves up on 1 September.
    year6 = "6" if academic_year(issued) == academic_year(today()) else "5"
    async with system(dev_env, db_url, executor) as http:
        ref = (await ok(await http.post("/api/assessments", json=new_request()), 201))["reference"]
        base = f"/api/cases/{ref}"
        await ok(await http.post(f"{base}/decision-to-assess",
                                 json={"decision": "assess", "decided_on": day(30)}))
        await ok(await http.post(f"{base}/advice-requests", json={"items": [
            {"source": s, "requested_on": day(31)} for s in
            ("family", "education", "health", "educational_psychologist", "social_care")]}))
        for s in ("family", "education", "health", "educational_psychologist", "social_care"):
            await ok(await http.post(f"{base}/advice/{s}/received", json={"received_on": day(60)}))
        await ok(await http.post(f"{base}/plan-decision",
                                 json={"decision": "issue", "decided_on": day(85)}))
        await ok(await http.post(f"{base}/draft", json={"served_on": day(100)}))
        await ok(await http.post(f"{base}/family-comments", json={"received_on": day(112)}))
        # The page's final-plan form asks for the school, its type and the year group, the
        # type and year group as lists in words; each is required.
        form = await http.get(f"/cases/{ref}/act/issue_final")
        assert form.status_code == 200, form.text
        assert 'name="setting_name"' in form.text
        assert re.search(r'<option value="primary"\s*>\s*Primary school', form.text)
        assert '<option value="6">Year 6</option>' in form.text
        assert '<option value="N2">Nursery 2 (N2)</option>' in form.text
        parts = date.fromisoformat(day(130))
        when = {"issued_on-day": str(parts.day), "issued_on-month": str(parts.month),
                "issued_on-year": str(parts.year)}
        r = await http.post(f"/cases/{ref}/act/issue_final", data=when)
        assert r.status_code == 422, r.text
        assert "Enter the name of the school or setting named in the plan" in r.text
        assert "Select the type of school or setting" in r.text
        assert "Select the child&#39;s year group" in r.text or \
            "Select the child's year group" in r.text
        r = await http.post(f"/cases/{ref}/act/issue_final", data={
            **when, "setting_name": "Elm Primary School", "setting_type": "primary",
            "nc_year": "9"})
        assert r.status_code == 422 and "does not teach Year 9" in r.text
        r = await http.post(f"/cases/{ref}/act/issue_final", data={
            **when, "setting_name": "Elm Primary School", "setting_type": "primary",
            "nc_year": year6})
        assert r.status_code == 303, r.text
        plan = None
        for _ in range(200):  # the plan row is written by the review's first save
            with Session(engine_for(db_url)) as s:
                plan = s.get(t.Plan, ref)
            if plan is not None and plan.nc_year is not None:
                break
            await asyncio.sleep(0.05)
        assert plan is not None
        assert (plan.setting_name, plan.setting_type, plan.nc_year, plan.nc_year_as_of) == \
            ("Elm Primary School", "primary", year6, issued)
        year = default_year(today())
        cohort = await ok(await http.get("/api/phase-transfers", params={"year": year}))
        entry = next(e for e in cohort["entries"] if e["plan_reference"] == ref)
        assert (entry["nc_year"], entry["setting_type"], entry["setting_name"]) == \
            ("6", "primary", "Elm Primary School")
        # Before 15 February (Reg 18(1)(b)): by 14 February of the year of the move.
        assert entry["transfer"]["deadline"] == f"{year}-02-14"
        assert entry["transfer"]["deadline_citation"] == "Reg 18(1)(b)"
        assert entry["status_label"] in ("Not brought forward", "On track", "Due soon")
        assert not any(u["plan_reference"] == ref for u in cohort["unplaced"])
        # The plan page shows them in words, and offers to change them on the current review.
        page = await http.get(f"/plans/{ref}")
        assert page.status_code == 200
        assert "Elm Primary School, Primary school" in page.text
        assert f'href="/cases/{ref}.R1/act/update_placement"' in page.text


async def test_bad_input_gets_a_clear_4xx_and_changes_nothing(dev_env, db_url, executor):
    async with system(dev_env, db_url, executor) as http:
        # Each problem: the field for a program, and for a person the form's words for it.
        bad = await http.post("/api/assessments", json={**new_request(),
                                                        "request_date": "2026-02-30"})
        await problem(bad, 422, "Date the request was received must be a real date written "
                      "as YYYY-MM-DD, for example 2026-03-09")
        assert [(e["field"], e["loc"]) for e in bad.json()["errors"]] == [
            ("request_date", ["body", "request_date"])]
        bad = await http.post("/api/assessments", json={
            **new_request(), "child": {**new_request()["child"], "date_of_birth": "2030-01-01"}})
        await problem(bad, 422, "Date of birth must be on or before the date the request was "
                      "received")
        assert bad.json()["errors"][0]["field"] == "child.date_of_birth"
        schema = (await ok(await http.get("/openapi.json")))["components"]["schemas"]
        assert set(schema["Problem"]["properties"]) == {"detail", "code", "errors"}
        assert set(schema["FieldProblem"]["properties"]) == {"field", "loc", "message"}
        await problem(await http.post("/api/assessments", json={
            **new_request(), "request_date": (today() + timedelta(days=2)).isoformat()}),
            422, "in the future")
        await problem(await http.post("/api/assessments", content=b"{not json",
                                      headers={"content-type": "application/json"}),
                      422, "not valid JSON")
        with Session(engine_for(db_url)) as s:
            assert s.exec(select(func.count()).select_from(t.Child)).one() == 0

        body = new_request(council_reference=f"P{uuid.uuid4().hex[:8]}")
        ref = (await ok(await http.post("/api/assessments", json=body), 201))["reference"]
        # the same request again: one case, not two
        await problem(await http.post("/api/assessments", json=body), 409,
                      "already has an open assessment", ref)
        await problem(await http.post("/api/assessments", json={
            **new_request(), "case_reference": ref}), 409, "already exists")
        with Session(engine_for(db_url)) as s:
            assert s.exec(select(func.count()).select_from(t.Child)).one() == 1
        # two identical requests at the same moment: one case, one clear conflict
        twin = new_request(council_reference=f"P{uuid.uuid4().hex[:8]}")
        first = await http.post("/api/assessments", json=twin)
        racing = await asyncio.gather(*(http.post("/api/assessments", json=twin)
                                        for _ in range(3)))
        assert first.status_code == 201
        assert sorted(r.status_code for r in racing) == [409, 409, 409]
        both = await asyncio.gather(*(http.post("/api/assessments", json=new_request(
            given_name="Zara", council_reference="SAME-NEW-CHILD")) for _ in range(2)))
        assert sorted(r.status_code for r in both) == [201, 409], [r.text for r in both]

        await problem(await http.get("/api/cases/EHC-NOPE-0000"), 404, "No case")
        await problem(await http.post("/api/cases/EHC-NOPE-0000/draft",
                                      json={"served_on": day(1)}), 404, "No case")
        await wait_for_record(db_url, ref)
        base = f"/api/cases/{ref}"
        await problem(await http.post(f"{base}/final-plan", json={"issued_on": day(10),
                                                                  **PLACEMENT}),
                      409, "Record the final plan issued", "“Awaiting decision”")
        await problem(await http.post(f"{base}/decision-to-assess", json={
            "decision": "assess", "decided_on": day(-1)}), 422, "before the request")
        await problem(await http.post(f"{base}/decision-to-assess", json={
            "decision": "maybe", "decided_on": day(3)}), 422, "decision")
        await problem(await http.post(f"{base}/advice/health/received",
                                      json={"received_on": day(3)}), 409, "Awaiting decision")
        before = await ok(await http.get(base))
        assert [e["kind"] for e in before["timeline"]][0] == "request_received"

        await ok(await http.post(f"{base}/decision-to-assess",
                                 json={"decision": "assess", "decided_on": day(3)}))
        await ok(await http.post(f"{base}/advice-requests", json={"items": [
            {"source": "health", "requested_on": day(4)}]}))
        await problem(await http.post(f"{base}/advice/social_care/received",
                                      json={"received_on": day(5)}), 422,
                      "That advice has not been requested on this case")
        await ok(await http.post(f"{base}/advice/health/received", json={"received_on": day(5)}))
        await problem(await http.post(f"{base}/advice/health/received",
                                      json={"received_on": day(6)}), 409, "already recorded")
        # an exception is named on the page as a person reads it ("Exception 1"), not its id
        await ok(await http.post(f"{base}/exceptions", json={
            "kind": "reg10_4_c", "reason": "A bereavement in the family",
            "starts_on": day(5)}))
        page = await http.get(f"/cases/{ref}")
        assert page.status_code == 200 and ">Exception 1<" in page.text, page.text
        assert ">x1<" not in page.text
        bad = await http.post(f"{base}/advice-requests", json={"items": [
            {"source": "bogus", "requested_on": day(4)}]})
        await problem(bad, 422, "Advice to ask for 1: Select the kind of advice")
        assert bad.json()["errors"][0]["loc"] == ["body", "items", 0, "source"]
        await ok(await http.post(f"{base}/closure", json={"reason": "request_withdrawn",
                                                           "closed_on": day(7)}))
        await wait_for_record(db_url, ref)
        for _ in range(100):
            if not (await wait_for_record(db_url, ref)).is_open:
                break
            await asyncio.sleep(0.05)
        await problem(await http.post(f"{base}/decision-to-assess", json={
            "decision": "assess", "decided_on": day(8)}), 409, "already recorded")
        await problem(await http.post(f"{base}/draft", json={"served_on": day(8)}), 409,
                      "This case is closed")
        after = await ok(await http.get(base))
        kinds = [e["kind"] for e in after["timeline"]]
        assert kinds.count("advice.received") == 1 and kinds[-1] == "case.closed"
        # a new request for the same child is allowed once the first case is closed
        await ok(await http.post("/api/assessments", json=body), 201)


async def test_killing_the_worker_mid_case_loses_nothing_and_does_nothing_twice(
        dev_env, sqlite_url):
    """SIGKILL the worker with an update on its way, restart it: the case carries on."""
    queue = f"kill-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "EHC_DATABASE_URL": sqlite_url, "EHC_TASK_QUEUE": queue,
           "EHC_TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host}

    def start_worker() -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "worker"], cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    # A step waits for its workflow this long before answering 504: here, long enough to wait
    # out the dead worker's sticky queue and the restart.
    settings = settings_for(sqlite_url, queue, engine_timeout_seconds=180)
    worker = start_worker()
    try:
        async with serve_api(settings, dev_env.client) as http:
            deadline = time.monotonic() + 60  # a step is refused until a worker polls
            while (await http.get("/healthz")).status_code != 200:
                assert time.monotonic() < deadline, "the worker did not start polling"
                await asyncio.sleep(0.2)
            ref = (await ok(await http.post("/api/assessments", json=new_request()), 201))[
                "reference"]
            base = f"/api/cases/{ref}"
            await ok(await http.post(f"{base}/decision-to-assess",
                                     json={"decision": "assess", "decided_on": day(10)}))
            worker.send_signal(signal.SIGKILL)
            worker.wait()
            pending = asyncio.create_task(http.post(f"{base}/advice-requests", json={"items": [
                {"source": s, "requested_on": day(11)} for s in
                ("family", "education", "health", "educational_psychologist", "social_care")]},
                # the update waits out the dead worker's sticky queue and the restart
                timeout=180))
            await asyncio.sleep(1.0)
            assert not pending.done()  # nothing runs the case while the worker is down
            worker = start_worker()
            view = await ok(await asyncio.wait_for(pending, 180))
            assert len(view["case"]["advice"]) == 5
            for s in ("family", "education", "health", "educational_psychologist",
                      "social_care"):
                await ok(await http.post(f"{base}/advice/{s}/received",
                                         json={"received_on": day(20)}))
            worker.send_signal(signal.SIGKILL)
            worker.wait()
            worker = start_worker()
            await ok(await http.post(f"{base}/plan-decision",
                                     json={"decision": "no_plan", "decided_on": day(30)}))
            await dev_env.client.get_workflow_handle(f"assessment-{ref}").result()
            row = await wait_for_record(sqlite_url, ref)
            with Session(engine_for(sqlite_url)) as s:
                events = s.exec(select(t.CaseEvent).where(t.CaseEvent.case_reference == ref)
                                .order_by(t.CaseEvent.seq)).all()
                letters = s.exec(select(t.Letter).where(t.Letter.case_reference == ref)).all()
            kinds = [e.kind for e in events]
            assert [e.seq for e in events] == list(range(1, len(events) + 1))
            assert kinds.count("advice.requested") == 5 and kinds.count("advice.received") == 5
            assert kinds.count("plan.not_issued") == 1 and len(letters) == 1
            assert row.stage == "no_plan" and row.version == len(events)
    finally:
        worker.kill()
        worker.wait()
