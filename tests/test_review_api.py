"""Annual reviews over real HTTP, against a worker on the real Temporal dev server, on SQLite and
PostgreSQL: a whole review cycle through its routes, the next cycle it starts, the plans list
and its filters, the pages, and every kind of bad input getting a 4xx that says what to fix."""

from __future__ import annotations

import asyncio
import re
import uuid
from contextlib import asynccontextmanager
from datetime import date, timedelta

import pytest
from sqlmodel import Session, select

from api.app import create_app
from services.clock import today
from api.reviews import ADVICE_ACTIONS
from store import tables as t
from store.db import engine_for
from domain.case import ReviewAction, StartReview
from domain.words import long_date
from tests.conftest import settings_for
from tests.test_api import new_request, ok, problem, serve_api, wait_for_record
from tests.test_assessment_workflow import add_child
from worker.main import build_worker
from workflows.review import ReviewWorkflow

D0 = today() - timedelta(days=300)  # the plan was issued 300 days ago: every step is backdated


def day(n: int) -> str:
    return (D0 + timedelta(days=n)).isoformat()


def anniversary(d: date) -> date:
    try:
        return d.replace(year=d.year + 1)
    except ValueError:  # 29 February
        return date(d.year + 1, 2, 28)


EDUCATION_TEAM = "senco@oakfield.example"


@asynccontextmanager
async def review_system(dev_env, db_url, executor, smtp=None):
    """A worker and the API on one task queue; the plans started through ``start`` are
    terminated at the end, whatever happened."""
    extra = {"smtp_host": smtp.host, "smtp_port": smtp.port} if smtp else {}
    settings = settings_for(db_url, f"rev-{uuid.uuid4().hex[:8]}",
                            link_secret="test-link-secret", **extra)
    handles = []

    async def start(**fields) -> str:
        ref = f"P-{uuid.uuid4().hex[:8].upper()}"
        handles.append(await dev_env.client.start_workflow(
            ReviewWorkflow.run,
            StartReview(plan_reference=ref, child_id=add_child(db_url), plan_issued_on=D0,
                        **fields),
            id=f"review-{ref}", task_queue=settings.task_queue))
        await wait_for_record(db_url, f"{ref}.R1")
        return ref

    try:
        async with build_worker(dev_env.client, settings, executor):
            async with serve_api(settings, dev_env.client) as http:
                yield http, start
    finally:
        for handle in handles:
            try:
                await handle.terminate("test over")
            except Exception:  # already ended
                pass


def add_education_service(db_url: str) -> str:
    with Session(engine_for(db_url)) as s:
        svc = t.Service(name=f"Oakfield Primary {uuid.uuid4().hex[:6]}", agency="education",
                        team_email=EDUCATION_TEAM, is_default=True)
        s.add(svc)
        s.commit()
        return svc.id


def rows(db_url, model, **where):
    with Session(engine_for(db_url)) as s:
        q = select(model)
        for k, v in where.items():
            q = q.where(getattr(model, k) == v)
        return list(s.exec(q))


async def settle(check, tries: int = 200):
    for _ in range(tries):
        value = check()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


def assert_accessible(html: str) -> None:
    """What these pages promise for WCAG 2.2 AA that a test can see: one h1 and headings that
    never skip a level, a scope on every table header, a label for every field."""
    levels = [int(x) for x in re.findall(r"<h([1-6])[\s>]", html)]
    assert levels and levels[0] == 1 and levels.count(1) == 1, levels
    assert all(b <= a + 1 for a, b in zip(levels, levels[1:])), levels
    headers = re.findall(r"<th\b[^>]*>", html)
    assert all("scope=" in h for h in headers), [h for h in headers if "scope=" not in h]
    for tag, field_id in re.findall(r"<(input|select)\b[^>]*\bid=\"([^\"]+)\"", html):
        assert f'for="{field_id}"' in html, f"{tag} #{field_id} has no label"


def deadline(view: dict, key: str) -> dict:
    return next(d for d in view["deadlines"] if d["key"] == key)


# --- a whole cycle -------------------------------------------------------------------------------


async def test_a_review_cycle_through_every_step_over_http(dev_env, db_url, executor,
                                                          smtp_server):
    add_education_service(db_url)
    async with review_system(dev_env, db_url, executor, smtp_server) as (http, start):
        ref = await start()
        r1, r2 = f"{ref}.R1", f"{ref}.R2"
        base = f"/api/cases/{r1}"
        case = await ok(await http.get(base))
        assert case["view"]["case"]["kind"] == "review" and case["view"]["case"]["cycle"] == 1
        assert case["view"]["case"]["stage"] == "awaiting_meeting"
        assert case["view"]["allowed_actions"][0] == "set_meeting"
        due = deadline(case["view"], "review_due")
        assert (due["due"], due["citation"], due["status"]) == \
            (anniversary(D0).isoformat(), "CFA 2014 s.44(1)", "pending")
        version = case["view"]["case"]["version"]

        # --- bad input: a 4xx that says what to fix, and nothing changes ---------------------
        await problem(await http.post(f"{base}/meeting-held", json={"held_on": day(280)}),
                      409, "“Record the review meeting held, and how each outcome is going” "
                      "cannot be done while the review is at the stage “Awaiting meeting”",
                      "Set the review meeting")
        await problem(await http.post(f"{base}/meeting", json={"meeting_on": "2026-02-30"}),
                      422, "meeting_on", "YYYY-MM-DD")
        await problem(await http.post(f"{base}/meeting", json={"meeting_on": day(-5)}),
                      422, "before this review's year began")
        await problem(await http.post(f"{base}/post16-move", json={"moves_on": day(-5)}),
                      422, "not after this review's year began")
        await problem(await http.post(f"{base}/review-decision", json={
            "decision": "keep", "decided_on": day(280)}), 422, "decision")
        # an assessment's step on a review cycle, a review's step on an assessment
        await problem(await http.post(f"{base}/final-plan", json={
            "issued_on": day(280), "setting_name": "Oak", "setting_type": "primary",
            "nc_year": "4"}),
                      422, f"{r1} is an annual review, not an assessment",
                      "“Record the final plan issued (Reg 13(2))”")
        await problem(await http.post(f"{base}/closure", json={
            "reason": "other", "closed_on": day(280)}), 422, "not an assessment")
        assessment = (await ok(await http.post("/api/assessments", json=new_request()),
                               201))["reference"]
        try:
            await problem(await http.post(f"/api/cases/{assessment}/meeting", json={
                "meeting_on": day(280)}), 422, f"{assessment} is not an annual review",
                "“Set the review meeting, or move it (Reg 20)”")
            # the plan's own reference is not a cycle's either
            await problem(await http.post(f"/api/cases/{ref}/meeting-held", json={
                "held_on": day(280)}), 422, "not an annual review", ".R1")
        finally:
            await dev_env.client.get_workflow_handle(f"assessment-{assessment}").terminate()
        # a cycle that does not exist (yet), and a plan that does not exist
        await problem(await http.post(f"/api/cases/{ref}.R5/meeting", json={
            "meeting_on": day(280)}), 404, f"no review {ref}.R5 yet", f"current review is {r1}")
        await problem(await http.post("/api/cases/P-NOPE.R1/meeting", json={
            "meeting_on": day(280)}), 404, "No case")
        assert (await ok(await http.get(base)))["view"]["case"]["version"] == version

        # --- the cycle, step by step -----------------------------------------------------------
        view = await ok(await http.post(f"{base}/placement", json={"placement": {
            "nc_year": "3", "nc_year_as_of": day(250), "setting_type": "primary",
            "setting_name": "Oakfield Primary School"}, "actor": "caseworker 4"}))
        assert view["case"]["placement"]["setting_name"] == "Oakfield Primary School"
        await problem(await http.post(f"{base}/placement", json={"placement": {
            "nc_year": "Y99", "nc_year_as_of": day(250), "setting_type": "primary"}}), 422)
        transfer_year = today().year + 1
        view = await ok(await http.post(f"{base}/phase-transfer", json={
            "transfer": {"kind": "school", "transfer_year": transfer_year}}))
        pt = deadline(view, "phase_transfer_due")
        # "before 15 February" (Reg 18(1)(b)): the last day on time is 14 February.
        assert (pt["due"], pt["citation"]) == (f"{transfer_year}-02-14", "Reg 18(1)(b)")
        # the same transfer again (a retry): the same answer, nothing added
        again = await ok(await http.post(f"{base}/phase-transfer", json={
            "transfer": {"kind": "school", "transfer_year": transfer_year}}))
        assert again["case"]["version"] == view["case"]["version"]

        view = await ok(await http.post(f"{base}/meeting", json={"meeting_on": day(280)}))
        assert view["case"]["stage"] == "meeting_set"
        assert deadline(view, "invitations_due")["due"] == day(266)
        assert deadline(view, "advice_circulated_due")["citation"] == "Reg 20(4)"
        # advice for the meeting: the assessment's routes, chased by the same ladder
        view = await ok(await http.post(f"{base}/advice-requests", json={"items": [
            {"source": "education", "requested_on": day(250)}]}))
        advice = deadline(view, "education")
        assert (advice["due"], advice["citation"], advice["kind"]) == \
            (day(266), "Reg 20(4)", "advice")
        emails = await settle(lambda: [m for m in rows(db_url, t.EmailMessage,
                                                        case_reference=r1)
                                       if m.status == "sent"])
        assert emails[0].recipient_address == EDUCATION_TEAM
        await ok(await http.post(f"{base}/invitations", json={"on": day(262)}))
        await problem(await http.post(f"{base}/invitations", json={"on": day(263)}), 409,
                      "already recorded")
        await ok(await http.post(f"{base}/advice/education/received",
                                 json={"received_on": day(265)}))
        await ok(await http.post(f"{base}/advice-circulated", json={"on": day(264)}))
        view = await ok(await http.post(f"{base}/meeting-held", json={
            "held_on": day(280), "actor": "caseworker 4", "outcomes": [
                {"outcome": "Reads at age-expected level", "progress": "on_track"},
                {"outcome": "Uses a communication aid", "progress": "achieved",
                 "note": "every lesson"}]}))
        assert view["case"]["stage"] == "meeting_held"
        assert deadline(view, "decision_due")["due"] == day(308)
        await ok(await http.post(f"{base}/review-report", json={"on": day(285)}))
        view = await ok(await http.post(f"{base}/review-decision", json={
            "decision": "amend", "decided_on": day(290)}))
        assert view["case"]["stage"] == "amending"
        assert deadline(view, "amendment_comments_due")["due"] == day(305)
        # out of order: the family's 15 days (Reg 22(2)) have not run, and no comments yet
        await problem(await http.post(f"{base}/amended-plan", json={"on": day(291)}), 409,
                      f"The family has until {long_date(D0 + timedelta(days=305))} to comment")
        await problem(await http.post(f"{base}/meeting", json={"meeting_on": day(299)}), 409,
                      "“Set the review meeting, or move it (Reg 20)” cannot be done",
                      "“Amending”")
        await ok(await http.post(f"{base}/amendment-comments", json={"on": day(295)}))
        view = await ok(await http.post(f"{base}/amended-plan", json={"on": day(298)}))
        assert view["case"]["stage"] == "amended" and view["allowed_actions"] == []

        # --- the next cycle starts, counted from the meeting ----------------------------------
        await wait_for_record(db_url, r2)
        plan = await settle(lambda: (p := rows(db_url, t.Plan, reference=ref)[0])
                            .current_cycle == 2 and p)
        assert (plan.status, plan.review_due) == ("active", anniversary(D0 + timedelta(280)))
        assert (plan.setting_name, plan.nc_year, plan.transfer_year) == \
            ("Oakfield Primary School", "3", None)  # the transfer was R1's
        # R1 is over: read from the record, every deadline met
        done = await ok(await http.get(base))
        c1 = done["view"]["case"]
        assert (c1["stage"], c1["decision"], c1["decided_on"], c1["amended_plan_issued_on"]) \
            == ("amended", "amend", day(290), day(298))
        assert [o["progress"] for o in c1["outcomes"]] == ["on_track", "achieved"]
        statuses = {d["key"]: d["status"] for d in done["view"]["deadlines"]}
        assert statuses == {k: "done_on_time" for k in (
            "review_due", "phase_transfer_due", "invitations_due", "advice_circulated_due",
            "education", "report_due", "decision_due", "amendment_comments_due",
            "final_amended_plan_due")}, statuses
        kinds = [e["kind"] for e in done["timeline"]]
        assert kinds[0] == "review.cycle_started" and kinds[-1] == "review.amended_plan_issued"
        assert "review.meeting_held" in kinds and "review.decided_amend" in kinds
        review = rows(db_url, t.Review, case_reference=r1)[0]
        assert (review.meeting_held_on, review.amendments_sent_on) == \
            (D0 + timedelta(280), D0 + timedelta(290))
        # a step on the finished cycle is refused; the current one takes it
        await problem(await http.post(f"{base}/review-report", json={"on": day(299)}), 409,
                      "already recorded as sent")
        await problem(await http.post(f"{base}/meeting", json={"meeting_on": day(299)}), 409,
                      "This review is over", "the plan's current review")

        detail = await ok(await http.get(f"/api/plans/{ref}"))
        assert (detail["current_cycle"], detail["current_cycle_reference"]) == (2, r2)
        assert [(c["reference"], c["stage"], c["is_open"]) for c in detail["cycles"]] == \
            [(r1, "amended", False), (r2, "awaiting_meeting", True)]
        first = detail["cycles"][0]
        assert (first["meeting_held_on"], first["decision"], first["decided_on"],
                first["amended_plan_issued_on"], first["ceased_on"]) == \
            (day(280), "amend", day(290), day(298), None)
        current = detail["current"]["view"]
        assert (current["case"]["reference"], current["case"]["anchor_on"]) == (r2, day(280))
        assert deadline(current, "review_due")["due"] == \
            anniversary(D0 + timedelta(280)).isoformat()
        assert detail["days_overdue"] is None and detail["issued_on"] == day(0)
        await problem(await http.get("/api/plans/P-NOPE"), 404, "No plan has the reference")
        await problem(await http.get(f"/api/plans/{r1}"), 404, f"its plan is {ref}")
        await problem(await http.post(f"/api/cases/{r2}/meeting-held", json={
            "held_on": day(299)}), 409, "“Awaiting meeting”")

        listed = await ok(await http.get("/api/plans"))
        assert [p["reference"] for p in listed["items"]] == [ref]
        assert listed["items"][0]["current_cycle_reference"] == r2
        assert "Testchild" not in str(listed) and "Amelia" not in str(listed)

        # --- the pages ---------------------------------------------------------------------------
        page = await http.get(f"/cases/{r1}")
        assert page.status_code == 200, page.text
        html = page.text
        for text in (f"Annual review 1 of EHC plan {ref}", f'href="/plans/{ref}"',
                     "Reads at age-expected level", "On track", "every lesson",
                     "Amend the plan", "Final amended plan issued", "Reg 22(3)", "Reg 20(10)",
                     "Done on time", "Review meeting held", EDUCATION_TEAM,
                     "None: this review is over"):
            assert text in html, text
        assert "Request received" not in html
        assert_accessible(html)
        page = await http.get(f"/cases/{r2}")
        assert page.status_code == 200, page.text
        for text in ("Annual review 2", f"/api/cases/{r2}/meeting",
                     f'href="/cases/{r2}/act/set_meeting">Set the review meeting, or move it',
                     "The meeting has not been held yet", "Not due yet",
                     "Oakfield Primary School, primary; year 3"):
            assert text in page.text, text
        assert_accessible(page.text)

        page = await http.get(f"/plans/{ref}")
        assert page.status_code == 200, page.text
        for text in (f'href="/cases/{r1}"', f'href="/cases/{r2}"', "Amend, ",
                     "Amended plan issued", "Current", "Oakfield Primary School",
                     "Annual review completed", "CFA 2014 s.44(1)"):
            assert text in page.text, text
        assert "Testchild" not in page.text
        assert_accessible(page.text)
        page = await http.get("/plans/P-NOPE")
        assert page.status_code == 404 and "Plan not found" in page.text
        page = await http.get("/plans")
        assert page.status_code == 200 and f'href="/cases/{r2}"' in page.text
        assert "Testchild" not in page.text and "Amelia" not in page.text
        assert_accessible(page.text)


def test_every_review_action_has_a_route(sqlite_url):
    spec = create_app(settings_for(sqlite_url, "unused")).openapi()
    named = {op["operationId"].split("_api_cases")[0] for path, ops in spec["paths"].items()
             if path.startswith("/api/cases/{reference}/") for op in ops.values()}
    wanted = {a.value for a in ReviewAction} - {a.value for a in ADVICE_ACTIONS}
    assert wanted <= named, wanted - named


# --- the plans list ------------------------------------------------------------------------------


def add_plans(db_url: str) -> dict[str, str]:
    """Plans as the record holds them (an import writes the same rows), without workflows."""
    now = today()
    specs = {
        "late": dict(review_due=now - timedelta(days=10), transfer_kind="school",
                     transfer_year=2027, transfer_due=date(2027, 2, 14), nc_year="6",
                     setting_type="primary", setting_name="Elm Primary School"),
        "soon": dict(review_due=now + timedelta(days=20)),
        "later": dict(review_due=now + timedelta(days=200), transfer_kind="post16",
                      transfer_year=2028, transfer_due=date(2028, 3, 30)),
        "held": dict(review_due=None),  # meeting held: nothing due until the next cycle
        "ceased": dict(review_due=now - timedelta(days=400), status="ceased",
                       ended_on=now - timedelta(days=30)),
    }
    refs = {}
    with Session(engine_for(db_url)) as s:
        child = t.Child(given_name="Oliver", family_name="Quincey", date_of_birth=date(2015, 1, 2))
        s.add(child)
        s.flush()
        for name, fields in specs.items():
            ref = f"L-{name.upper()}-{uuid.uuid4().hex[:4].upper()}"
            s.add(t.Plan(reference=ref, child_id=child.id, issued_on=now - timedelta(days=500),
                         origin="import", workflow_id=f"review-{ref}", current_cycle=2,
                         **fields))
            refs[name] = ref
        s.commit()
    return refs


async def test_the_plans_list_filters_sorts_and_pages(dev_env, db_url):
    refs = add_plans(db_url)
    now = today()
    async with serve_api(settings_for(db_url, "unused"), dev_env.client) as http:
        async def listed(**params) -> list[str]:
            body = await ok(await http.get("/api/plans", params=params))
            return [p["reference"] for p in body["items"]]

        body = await ok(await http.get("/api/plans"))
        assert [p["reference"] for p in body["items"]] == \
            [refs[k] for k in ("late", "soon", "later", "held")]  # soonest first, none last
        assert (body["total"], body["limit"], body["offset"]) == (4, 50, 0)
        late = body["items"][0]
        assert late == {
            "reference": refs["late"], "status": "active", "current_cycle": 2,
            "current_cycle_reference": f"{refs['late']}.R2",
            "review_due": (now - timedelta(days=10)).isoformat(), "days_overdue": 10,
            "transfer": {"kind": "school", "year": 2027, "due": "2027-02-14"},
            "setting_name": "Elm Primary School", "setting_type": "primary", "nc_year": "6",
            "nc_year_as_of": None, "child": None}
        assert body["items"][1]["days_overdue"] is None and body["items"][1]["transfer"] is None
        assert "Quincey" not in str(body) and "Oliver" not in str(body)

        assert await listed(overdue="true") == [refs["late"]]
        assert await listed(due_before=(now + timedelta(days=21)).isoformat()) == \
            [refs["late"], refs["soon"]]
        assert await listed(due_before=(now + timedelta(days=20)).isoformat()) == [refs["late"]]
        assert await listed(transfer_year=2028) == [refs["later"]]
        assert await listed(status="ceased") == [refs["ceased"]]
        assert await listed(status="ceased", overdue="true") == [refs["ceased"]]
        assert await listed(status="all") == \
            [refs[k] for k in ("ceased", "late", "soon", "later", "held")]
        paged = await ok(await http.get("/api/plans", params={"limit": 2, "offset": 1}))
        assert ([p["reference"] for p in paged["items"]], paged["total"]) == \
            ([refs["soon"], refs["later"]], 4)
        named = await ok(await http.get("/api/plans", params={"with_child": "true"}))
        assert named["items"][0]["child"] == {"given_name": "Oliver", "family_initial": "Q"}
        assert "Quincey" not in str(named)

        await problem(await http.get("/api/plans", params={"due_before": "2027-02-30"}), 422,
                      "due_before", "YYYY-MM-DD")
        await problem(await http.get("/api/plans", params={"transfer_year": "next"}), 422,
                      "transfer_year")
        await problem(await http.get("/api/plans", params={"status": "open"}), 422, "status")
        await problem(await http.get("/api/plans", params={"limit": 0}), 422, "limit")

        # A plan with no cycle recorded (no workflow here) still has a page
        detail = await ok(await http.get(f"/api/plans/{refs['late']}"))
        assert (detail["cycles"], detail["current"], detail["days_overdue"]) == ([], None, 10)
        page = await http.get(f"/plans/{refs['late']}")
        assert page.status_code == 200 and "No review has been recorded yet" in page.text
        assert "10 days overdue" in page.text and "Reg 18(1)(b)" in page.text

        # The page: the same filters as a GET form
        page = await http.get("/plans")
        assert page.status_code == 200
        html = page.text
        assert all(refs[k] in html for k in ("late", "soon", "later", "held"))
        assert refs["ceased"] not in html and "Quincey" not in html and "Oliver" not in html
        assert "10 days overdue" in html and "4 plans" in html
        assert re.search(r'navigation__item--active">\s*<a[^>]*href="/plans"', html), \
            "Plans is the current item of the service navigation"
        assert_accessible(html)
        page = await http.get("/plans", params={"overdue": "yes", "with_child": "yes"})
        assert refs["late"] in page.text and refs["soon"] not in page.text
        assert "Oliver Q." in page.text and "Quincey" not in page.text
        cut = now + timedelta(days=21)
        page = await http.get("/plans", params={
            "due_before-day": str(cut.day), "due_before-month": str(cut.month),
            "due_before-year": str(cut.year), "transfer_year": ""})
        assert refs["soon"] in page.text and refs["later"] not in page.text
        page = await http.get("/plans", params={"transfer_year": "2028", "status": "all"})
        assert refs["later"] in page.text and refs["late"] not in page.text

        page = await http.get("/plans", params={"due_before-day": "30", "due_before-month": "2",
                                                "due_before-year": "2027",
                                                "transfer_year": "twenty"})
        assert page.status_code == 422
        for text in ("There is a problem", "Review due before must be a real date",
                     'href="#due-before-day"', "Phase transfer year must be a year",
                     'href="#transfer-year"', 'value="twenty"'):
            assert text in page.text, text
        page = await http.get("/plans", params={"due_before-month": "2"})
        assert page.status_code == 422 and "must include a day and year" in page.text

        # More plans than a page holds: pagination keeps the filters
        with Session(engine_for(db_url)) as s:
            child_id = s.exec(select(t.Plan.child_id)).first()
            for i in range(55):
                ref = f"M-{i:03d}"
                s.add(t.Plan(reference=ref, child_id=child_id, issued_on=now, origin="import",
                             workflow_id=f"review-{ref}", review_due=now + timedelta(days=30 + i),
                             transfer_year=2030))
            s.commit()
        first = await http.get("/plans", params={"transfer_year": "2030"})
        assert first.status_code == 200
        assert "M-000" in first.text and "M-049" in first.text and "M-050" not in first.text
        assert "Showing 1 to 50 of 55" in first.text and "Page 1 of 2" in first.text
        nxt = re.search(r'href="(/plans\?[^"]*page=2[^"]*)"', first.text)
        assert nxt and "transfer_year=2030" in nxt.group(1)
        second = await http.get(nxt.group(1).replace("&amp;", "&"))
        assert "M-050" in second.text and "M-054" in second.text and "M-000" not in second.text
        assert "Showing 51 to 55 of 55" in second.text
        assert_accessible(second.text)


@pytest.mark.parametrize("reference", ["P-NOPE", "P-NOPE.R1"])
async def test_an_unknown_plan_is_a_404_that_says_so(dev_env, sqlite_url, reference):
    async with serve_api(settings_for(sqlite_url, "unused"), dev_env.client) as http:
        await problem(await http.get(f"/api/plans/{reference}"), 404, "No plan has the "
                      f"reference {reference!r}")
        page = await http.get(f"/plans/{reference}")
        assert page.status_code == 404 and "Plan not found" in page.text
