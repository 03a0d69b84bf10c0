"""The child's other plans (action 3.2) and the outcomes report (action 3.2.5), over real HTTP
on SQLite and PostgreSQL: linked plans recorded with their owner and checked, social care
advice going to the child's social worker through a worker on the real Temporal dev server,
the combine-reviews flag, and the outcomes report counted by hand."""

from __future__ import annotations

import asyncio
import uuid
from contextlib import asynccontextmanager
from datetime import date, timedelta

import pytest
from sqlmodel import Session, func, select

from services.clock import today
from store import tables as t
from store.db import engine_for
from services.directory import load_escalation, resolve_request
from domain.case import AdviceRequest, AdviceSource
from tests.conftest import free_port, settings_for
from tests.test_api import day, new_request, ok, problem, serve_api, wait_for_record
from worker.main import build_worker



def iso(d: date) -> str:
    return d.isoformat()


@asynccontextmanager
async def api_without_temporal(db_url: str):
    # Nothing listens on this port, so the app gives up on Temporal at once.
    settings = settings_for(db_url, "linked-plans", temporal_address=f"127.0.0.1:{free_port()}")
    async with serve_api(settings, None) as http:
        yield http


async def add_service(http, name: str, agency: str, **extra) -> str:
    return (await ok(await http.post("/api/directory/services", json={
        "name": name, "agency": agency, **extra}), 201))["id"]


async def add_contact(http, service_id: str, name: str, email: str) -> str:
    return (await ok(await http.post(f"/api/directory/services/{service_id}/contacts", json={
        "name": name, "email": email, "role": "Social worker"}), 201))["id"]


def add_child(s: Session, **extra) -> t.Child:
    child = t.Child(given_name="Ava", family_name=f"Example{uuid.uuid4().hex[:6]}",
                    date_of_birth=date(2015, 5, 1), **extra)
    s.add(child)
    s.flush()
    return child


def add_review(s: Session, child: t.Child, plan_ref: str, cycle: int, *,
               meeting_on: date | None = None, held_on: date | None = None,
               outcomes: list[tuple[str, str]] = ()) -> str:
    """A plan (made if new), and one review cycle of it, written straight into the record."""
    if s.get(t.Plan, plan_ref) is None:
        s.add(t.Plan(reference=plan_ref, child_id=child.id, issued_on=date(2024, 1, 10),
                     origin="import", workflow_id=f"review-{plan_ref}"))
        s.flush()
    ref = f"{plan_ref}.R{cycle}"
    s.add(t.Case(reference=ref, kind="review", child_id=child.id,
                 workflow_id=f"review-{plan_ref}", stage="awaiting_meeting",
                 request_date=date(2024, 1, 10), request_source="review"))
    s.flush()
    s.add(t.Review(case_reference=ref, plan_reference=plan_ref, cycle=cycle,
                   anchor_on=date(2024, 1, 10), meeting_on=meeting_on or held_on,
                   meeting_held_on=held_on,
                   outcomes=[{"outcome": text, "progress": p, "note": None}
                             for text, p in outcomes]))
    s.flush()
    return ref


# --- linked plans: recorded, checked, listed, changed ---------------------------------------------


async def test_linked_plans_are_recorded_with_their_owner_and_checked(db_url):
    meeting = today() + timedelta(days=30)
    with Session(engine_for(db_url)) as s:
        ava = add_child(s)
        cycle = add_review(s, ava, "EHC-LNK1-AAAA", 1, meeting_on=meeting)
        ben = add_child(s)
        s.add(t.Case(reference="EHC-LNK2-BBBB", child_id=ben.id,
                     workflow_id="assessment-EHC-LNK2-BBBB", stage="assessing",
                     request_date=today() - timedelta(days=40), request_source="parent"))
        # A request just started: the child has claimed it, its record is not written yet.
        cal = add_child(s, open_case_reference="EHC-LNK3-CCCC")
        s.commit()
        ava_id, cal_id = ava.id, cal.id

    async with api_without_temporal(db_url) as http:
        sc = await add_service(http, "Children's Social Care North", "social_care")
        health = await add_service(http, "Community Paediatrics", "health")
        sw1 = await add_contact(http, sc, "Sam Worker", "sam.worker@council.example")
        sw2 = await add_contact(http, sc, "Pat Worker", "pat.worker@council.example")
        nurse = await add_contact(http, health, "Nia Nurse", "nia.nurse@nhs.example")
        gone = await add_contact(http, sc, "Lee Left", "lee.left@council.example")
        await ok(await http.patch(f"/api/directory/contacts/{gone}", json={"active": False}))

        base = f"/api/cases/{cycle}/linked-plans"

        def plan(kind: str, owner: str, **extra) -> dict:
            return {"kind": kind, "owner_contact_id": owner,
                    "started_on": iso(today() - timedelta(days=100)), **extra}

        # Owners: in the directory, active, and a social worker for CIN, CP and LAC.
        for kind in ("child_in_need", "child_protection", "looked_after"):
            await problem(await http.post(base, json=plan(kind, nurse)), 422, "Nia Nurse",
                          "'Community Paediatrics'", "not a social care service")
        await problem(await http.post(base, json=plan("child_in_need", "nobody")), 422,
                      "No contact has the id 'nobody'", "directory")
        await problem(await http.post(base, json=plan("child_in_need", gone)), 422,
                      "Lee Left is no longer active")
        # Dates: not started in the future, not ended before starting or in the future.
        await problem(await http.post(base, json=plan(
            "child_in_need", sw1, started_on=iso(today() + timedelta(days=1)))), 422,
            "started_on", "in the future")
        await problem(await http.post(base, json=plan(
            "child_in_need", sw1, ended_on=iso(today() - timedelta(days=101)))), 422,
            "ended_on", "before the plan started")
        await problem(await http.post(base, json=plan(
            "child_in_need", sw1, ended_on=iso(today() + timedelta(days=1)))), 422,
            "ended_on", "in the future")
        await problem(await http.post(base, json=plan(
            "child_in_need", sw1, next_review_on=iso(today() - timedelta(days=200)))), 422,
            "next_review_on", "before the plan started")
        await problem(await http.post(base, json=plan("child_in_need", sw1, note="x" * 501)),
                      422, "note")
        await problem(await http.post(base, json=plan("respite", sw1)), 422, "kind")
        # The other system's id holds no personal data (the child is Ava, born 1 May 2015).
        for other, found in (("AVA-77", "given name"), ("LAC-01052015", "date of birth"),
                             ("sw@council.test", "email address")):
            await problem(await http.post(base, json=plan(
                "child_in_need", sw1, other_system_reference=other)), 422,
                "other_system_reference", found)
        await problem(await http.post(base, json=plan(
            "child_in_need", sw1, started_on="2026-02-30")), 422, "started_on", "YYYY-MM-DD")
        await problem(await http.post("/api/cases/EHC-NONE-0000/linked-plans",
                                      json=plan("child_in_need", sw1)), 404, "EHC-NONE-0000")
        with Session(engine_for(db_url)) as s:
            assert s.exec(select(func.count()).select_from(t.LinkedPlan)).one() == 0

        # Within 28 days of the meeting (either side, inclusive) the reviews can be combined.
        cin = await ok(await http.post(base, json=plan(
            "child_in_need", sw1, next_review_on=iso(meeting + timedelta(days=28)),
            other_system_reference="MOSAIC-123456", note="reviewed with the family")), 201)
        assert (cin["kind"], cin["is_open"], cin["can_combine"]) == ("child_in_need", True, True)
        assert cin["owner"]["contact_id"] == sw1 and cin["owner"]["service_id"] == sc
        assert cin["owner"]["agency"] == "social_care"
        assert cin["other_system_reference"] == "MOSAIC-123456"
        cp = await ok(await http.post(base, json=plan(
            "child_protection", sw2, next_review_on=iso(meeting + timedelta(days=29)))), 201)
        assert cp["can_combine"] is False
        # Early Help can be owned by anyone in the directory.
        eh = await ok(await http.post(base, json=plan("early_help", nurse)), 201)
        assert eh["can_combine"] is False and eh["owner"]["agency"] == "health"
        # One open plan of each kind per child.
        await problem(await http.post(base, json=plan("child_in_need", sw2)), 409,
                      "already has an open Child in Need plan", cin["id"], "PATCH")

        listed = await ok(await http.get(base))
        assert listed["review_meeting_on"] == iso(meeting) and listed["combine_window_days"] == 28
        assert [(p["kind"], p["can_combine"], p["next_review_on"]) for p in listed["plans"]] == [
            ("child_protection", False, iso(meeting + timedelta(days=29))),
            ("child_in_need", True, iso(meeting + timedelta(days=28))),
            ("early_help", False, None)]

        # The plans are the child's: another child's case does not see them.
        other = await ok(await http.get("/api/cases/EHC-LNK2-BBBB/linked-plans"))
        assert other == {"reference": "EHC-LNK2-BBBB", "review_meeting_on": None,
                         "combine_window_days": 28, "plans": []}
        # An assessment has no review meeting, so nothing can be combined with it.
        await ok(await http.post("/api/cases/EHC-LNK2-BBBB/linked-plans", json=plan(
            "child_in_need", sw1, next_review_on=iso(today()))), 201)
        other = await ok(await http.get("/api/cases/EHC-LNK2-BBBB/linked-plans"))
        assert [(p["kind"], p["can_combine"]) for p in other["plans"]] == [
            ("child_in_need", False)]
        # A case just started, before its record is written, is found through the child.
        await ok(await http.post("/api/cases/EHC-LNK3-CCCC/linked-plans",
                                 json=plan("early_help", nurse)), 201)
        assert len((await ok(await http.get("/api/cases/EHC-LNK3-CCCC/linked-plans")))
                   ["plans"]) == 1

        # Changing a plan: its next review, its owner (same rules), ending it.
        one = f"/api/linked-plans/{cin['id']}"
        moved = await ok(await http.patch(one, json={
            "next_review_on": iso(meeting - timedelta(days=28))}))
        assert moved["next_review_on"] == iso(meeting - timedelta(days=28))
        assert moved["can_combine"] is None  # not read through a case
        await problem(await http.patch(one, json={"owner_contact_id": nurse}), 422,
                      "not a social care service")
        await problem(await http.patch(one, json={"owner_contact_id": gone}), 422,
                      "no longer active")
        changed = await ok(await http.patch(one, json={"owner_contact_id": sw2}))
        assert changed["owner"]["contact_id"] == sw2
        await problem(await http.patch(one, json={}), 422, "Nothing to change")
        await problem(await http.patch(one, json={"owner_contact_id": None}), 422,
                      "owner_contact_id cannot be null")
        await problem(await http.patch(one, json={"ended_on": None}), 422,
                      "ended_on cannot be null")
        await problem(await http.patch(one, json={"ended_on": iso(today() - timedelta(days=101))}),
                      422, "before the plan started")
        await problem(await http.patch(one, json={"ended_on": iso(today() + timedelta(days=1))}),
                      422, "in the future")
        await problem(await http.patch(one, json={"colour": "red"}), 422, "colour")
        await problem(await http.patch("/api/linked-plans/nope", json={"note": "x"}), 404,
                      "No linked plan has the id 'nope'")
        listed = await ok(await http.get(base))
        assert next(p for p in listed["plans"] if p["id"] == cin["id"])["can_combine"] is True

        ended = await ok(await http.patch(one, json={"ended_on": iso(today())}))
        assert (ended["is_open"], ended["ended_on"]) == (False, iso(today()))
        await problem(await http.patch(one, json={"note": "reopened"}), 409,
                      "ended on", "kept as it was")
        listed = await ok(await http.get(base))
        assert [(p["kind"], p["is_open"], p["can_combine"]) for p in listed["plans"]] == [
            ("child_protection", True, False), ("early_help", True, False),
            ("child_in_need", False, False)]  # ended: last, and never combined
        # Once ended, a new plan of that kind may be opened.
        await ok(await http.post(base, json=plan("child_in_need", sw1)), 201)

    with Session(engine_for(db_url)) as s:
        rows = s.exec(select(t.LinkedPlan).where(t.LinkedPlan.child_id == ava_id)).all()
        assert sorted((r.kind, r.ended_on is None) for r in rows) == [
            ("child_in_need", False), ("child_in_need", True), ("child_protection", True),
            ("early_help", True)]
        assert len(s.exec(select(t.LinkedPlan).where(t.LinkedPlan.child_id == cal_id)).all()) \
            == 1


def test_the_database_allows_one_open_plan_of_each_kind(db_url):
    """The rule holds even for writers that skip the API's check (two racing requests)."""
    from sqlalchemy.exc import IntegrityError

    with Session(engine_for(db_url)) as s:
        child = add_child(s)
        service = t.Service(name=f"SC {uuid.uuid4().hex[:6]}", agency="social_care")
        s.add(service)
        s.flush()
        sw = t.Contact(service_id=service.id, name="Sam Worker", email="sw@council.example")
        s.add(sw)
        s.flush()
        start = today() - timedelta(days=10)
        s.add(t.LinkedPlan(child_id=child.id, kind="child_in_need", owner_contact_id=sw.id,
                           started_on=start, ended_on=start))
        s.add(t.LinkedPlan(child_id=child.id, kind="child_in_need", owner_contact_id=sw.id,
                           started_on=start))
        s.add(t.LinkedPlan(child_id=child.id, kind="child_protection", owner_contact_id=sw.id,
                           started_on=start))
        s.commit()
        s.add(t.LinkedPlan(child_id=child.id, kind="child_in_need", owner_contact_id=sw.id,
                           started_on=start))
        with pytest.raises(IntegrityError):
            s.commit()


# --- advice routing -------------------------------------------------------------------------------


def test_social_care_advice_goes_to_the_owner_of_the_childs_plan(sqlite_url):
    """``resolve_request``: looked-after, then CP, then CIN; Early Help and ended plans never;
    an owner who has left is passed over; what the caseworker named is kept."""
    settings = settings_for(sqlite_url, "unused")
    config = load_escalation(settings)
    with Session(engine_for(sqlite_url)) as s:
        child = add_child(s)
        front = t.Service(name="SC Front Door", agency="social_care", is_default=True,
                          team_email="front.door@council.example")
        area = t.Service(name="SC Area Team", agency="social_care")
        family = t.Service(name="Family Hub", agency="other")
        s.add_all([front, area, family])
        s.flush()

        def person(name: str, service: t.Service, active: bool = True) -> t.Contact:
            c = t.Contact(service_id=service.id, name=name, email=f"{name}@x.example",
                          active=active)
            s.add(c)
            s.flush()
            return c

        cin, cp, lac = (person(n, area) for n in ("cin", "cp", "lac"))
        hub = person("hub", family)
        left = person("left", area, active=False)
        s.commit()

        def ask(source=AdviceSource.SOCIAL_CARE, child_id=child.id, **extra) -> AdviceRequest:
            req = AdviceRequest(source=source, requested_on=today(), **extra)
            return resolve_request(s, config, req, child_id=child_id)

        def link(kind: str, owner: t.Contact, ended: bool = False) -> t.LinkedPlan:
            p = t.LinkedPlan(child_id=child.id, kind=kind, owner_contact_id=owner.id,
                             started_on=today() - timedelta(days=50),
                             ended_on=today() if ended else None)
            s.add(p)
            s.commit()
            return p

        def routed(req: AdviceRequest) -> tuple[str | None, str | None]:
            return req.service_id, req.contact_id

        assert routed(ask()) == (front.id, None)  # no plans: the default service's inbox
        link("early_help", hub)
        assert routed(ask()) == (front.id, None)  # Early Help is not a social worker's plan
        link("child_in_need", cin)
        assert routed(ask()) == (area.id, cin.id)
        link("child_protection", cp)
        assert routed(ask()) == (area.id, cp.id)
        gone = link("looked_after", left)  # an owner who has left is passed over
        assert routed(ask()) == (area.id, cp.id)
        gone.ended_on = today()
        s.commit()
        link("looked_after", lac)
        resolved = ask()
        assert routed(resolved) == (area.id, lac.id) and resolved.ladder is not None
        # What the caseworker named is kept; other advice and other calls are unchanged.
        assert routed(ask(service_id=area.id, contact_id=cin.id)) == (area.id, cin.id)
        assert routed(ask(service_id=front.id)) == (front.id, None)
        assert routed(ask(service_id=area.id)) == (area.id, lac.id)
        assert routed(ask(reuse_existing=True)) == (None, None)
        assert routed(ask(child_id=None)) == (front.id, None)
        assert routed(ask(source=AdviceSource.HEALTH)) == (None, None)
        # A service that stops being social care no longer routes its worker's plans.
        area.agency = "other"
        s.commit()
        assert routed(ask()) == (front.id, None)


async def test_a_case_asks_the_childs_social_worker_over_http(dev_env, db_url, executor,
                                                              smtp_server):
    settings = settings_for(db_url, f"lp-{uuid.uuid4().hex[:8]}", smtp_host=smtp_server.host,
                            smtp_port=smtp_server.port, link_secret="test-link-secret")
    async with build_worker(dev_env.client, settings, executor), \
            serve_api(settings, dev_env.client) as http:
        front = await add_service(http, "Social Care Front Door", "social_care",
                                  is_default=True, team_email="front.door@council.example")
        area = await add_service(http, "Social Care Area Team West", "social_care")
        sw = await add_contact(http, area, "Sam Worker", "sam.worker@council.example")

        async def assessing() -> str:
            ref = (await ok(await http.post("/api/assessments", json=new_request()), 201))[
                "reference"]
            await ok(await http.post(f"/api/cases/{ref}/decision-to-assess",
                                     json={"decision": "assess", "decided_on": day(30)}))
            await wait_for_record(db_url, ref)
            return ref

        async def social_care_advice(ref: str) -> dict:
            view = await ok(await http.post(f"/api/cases/{ref}/advice-requests", json={
                "items": [{"source": "social_care", "requested_on": day(31)}]}))
            return next(a for a in view["case"]["advice"] if a["source"] == "social_care")

        with_plan, without = await assessing(), await assessing()
        await ok(await http.post(f"/api/cases/{with_plan}/linked-plans", json={
            "kind": "child_in_need", "owner_contact_id": sw, "started_on": day(10)}), 201)

        item = await social_care_advice(with_plan)
        assert (item["contact_id"], item["service_id"]) == (sw, area)
        item = await social_care_advice(without)
        assert (item["contact_id"], item["service_id"]) == (None, front)
        case = await ok(await http.get(f"/api/cases/{with_plan}"))
        stored = next(a for a in case["view"]["case"]["advice"] if a["source"] == "social_care")
        assert stored["contact_id"] == sw

        # And the chasing emails go to the social worker, not the front door's inbox.
        for _ in range(200):
            if smtp_server.messages("sam.worker@council.example"):
                break
            await asyncio.sleep(0.05)
        to_sw = smtp_server.messages("sam.worker@council.example")
        assert to_sw and all(with_plan in m.subject for m in to_sw)
        assert not [m for m in smtp_server.messages("front.door@council.example")
                    if with_plan in m.subject]
        for ref in (with_plan, without):
            await dev_env.client.get_workflow_handle(f"assessment-{ref}").terminate("test over")


# --- the outcomes report --------------------------------------------------------------------------

SECRET = "Ava will read with her grandmother Rosa"  # an outcome text: never in the report


async def test_the_outcomes_report_counts_by_progress_and_quarter(db_url):
    with Session(engine_for(db_url)) as s:
        child = add_child(s)
        family_name = child.family_name
        p = [f"EHC-OUT{i}-{uuid.uuid4().hex[:4].upper()}" for i in range(1, 6)]
        add_review(s, child, p[0], 1, held_on=date(2025, 8, 15), outcomes=[
            (SECRET, "achieved"), ("Walks to school", "on_track"), ("Sleeps", "not_achieved")])
        add_review(s, child, p[1], 1, held_on=date(2025, 9, 30), outcomes=[
            ("Reads", "achieved"), ("Writes", "achieved"), ("Counts", "partly_achieved"),
            ("Swims", "on_track")])
        add_review(s, child, p[0], 2, held_on=date(2025, 10, 1), outcomes=[
            ("Reads", "achieved"), ("Sleeps", "not_achieved")])
        add_review(s, child, p[2], 1, held_on=date(2025, 12, 31))  # no outcomes recorded
        # Outside the period, or not held yet: not counted.
        add_review(s, child, p[3], 1, held_on=date(2025, 7, 31),
                   outcomes=[("Reads", "achieved")] * 5)
        add_review(s, child, p[3], 2, held_on=date(2026, 1, 1),
                   outcomes=[("Reads", "not_achieved")] * 5)
        add_review(s, child, p[4], 1, meeting_on=date(2025, 9, 1))
        s.commit()

    async with api_without_temporal(db_url) as http:
        report = await ok(await http.get("/api/reports/outcomes",
                                         params={"from": "2025-08-01", "to": "2025-12-31"}))

        def split(figures: dict) -> dict:
            return {k: (v["count"], v["percent"]) for k, v in figures["by_progress"].items()}

        # 9 outcomes from 4 reviews of 3 plans: 4 achieved, 2 on track, 1 partly, 2 not.
        assert (report["from"], report["to"]) == ("2025-08-01", "2025-12-31")
        assert (report["reviews"], report["reviews_with_outcomes"], report["plans"],
                report["outcomes"]) == (4, 3, 3, 9)
        assert split(report) == {"achieved": (4, 44.4), "on_track": (2, 22.2),
                                 "partly_achieved": (1, 11.1), "not_achieved": (2, 22.2)}
        q3, q4 = report["quarters"]
        # Q3 (from 1 August): 7 outcomes from 2 reviews of 2 plans.
        assert (q3["quarter"], q3["starts_on"], q3["ends_on"]) == ("2025-Q3", "2025-08-01",
                                                                   "2025-09-30")
        assert (q3["reviews"], q3["reviews_with_outcomes"], q3["plans"], q3["outcomes"]) == \
            (2, 2, 2, 7)
        assert split(q3) == {"achieved": (3, 42.9), "on_track": (2, 28.6),
                             "partly_achieved": (1, 14.3), "not_achieved": (1, 14.3)}
        # Q4: 2 outcomes from one review; the other recorded none.
        assert (q4["quarter"], q4["starts_on"], q4["ends_on"]) == ("2025-Q4", "2025-10-01",
                                                                   "2025-12-31")
        assert (q4["reviews"], q4["reviews_with_outcomes"], q4["plans"], q4["outcomes"]) == \
            (2, 1, 2, 2)
        assert split(q4) == {"achieved": (1, 50.0), "on_track": (0, 0.0),
                             "partly_achieved": (0, 0.0), "not_achieved": (1, 50.0)}

        raw = (await http.get("/api/reports/outcomes",
                              params={"from": "2025-01-01", "to": "2026-12-31"})).text
        for private in (SECRET, "Rosa", "Walks", "Ava", family_name, p[0]):
            assert private not in raw

        # A period with nothing in it: every quarter listed, no percentages to give.
        empty = await ok(await http.get("/api/reports/outcomes",
                                        params={"from": "2024-02-10", "to": "2024-05-01"}))
        assert [q["quarter"] for q in empty["quarters"]] == ["2024-Q1", "2024-Q2"]
        assert empty["outcomes"] == 0 and split(empty)["achieved"] == (0, None)

        await problem(await http.get("/api/reports/outcomes",
                                     params={"from": "2025-12-31", "to": "2025-08-01"}),
                      422, "The end date, 1 August 2025, is before the start date, 31 "
                      "December 2025")
        await problem(await http.get("/api/reports/outcomes",
                                     params={"from": "2025-13-01", "to": "2025-12-31"}),
                      422, "from", "YYYY-MM-DD")
        await problem(await http.get("/api/reports/outcomes", params={"from": "2025-01-01"}),
                      422, "to", "Enter the end of the period (to)")
        await problem(await http.get("/api/reports/outcomes",
                                     params={"from": "2000-01-01", "to": "2025-12-31"}),
                      422, "longer than 10 years")
