"""A step sent twice happens once: a double-click on Save, the back button and Save again, an
API client retrying the same body all get the first answer again, and the timeline has one
entry. The same step with other values is refused, saying what was recorded. The pages offer
only the steps the case can take now, and a refused step shows the case with the reason.
Real HTTP, a worker on the Temporal dev server."""

from __future__ import annotations

import re
import uuid
from html import unescape

from sqlmodel import select

from domain.words import long_date
from services.clock import today
from store import tables as t
from store.db import session_for
from tests.conftest import settings_for
from tests.http import add_staff, serve_app
from tests.test_api import PLACEMENT, new_request, ok, problem, system, wait_for_record
from tests.test_auth import client_like, csrf_of, sign_in
from tests.test_console import date_parts
from worker.main import build_worker

SNAKE_OR_ISO = re.compile(r"\b[a-z]+_[a-z_]+\b|\d{4}-\d{2}-\d{2}")


def events(db_url: str, ref: str, kind: str) -> int:
    with session_for(db_url) as s:
        return len(s.exec(select(t.CaseEvent).where(t.CaseEvent.case_reference == ref,
                                                    t.CaseEvent.kind == kind)).all())


def error_summary(html: str) -> str:
    """The text of a page's GOV.UK error summary."""
    found = re.search(r'<div class="govuk-error-summary".*?</ul>', html, re.S)
    assert found, "no error summary"
    return unescape(re.sub(r"<[^>]+>", " ", found.group(0)))


async def test_the_same_step_twice_through_the_api_is_done_once(dev_env, db_url, executor):
    async with system(dev_env, db_url, executor) as http:
        now = today()
        body = {**new_request(), "request_date": now.isoformat()}
        ref = (await ok(await http.post("/api/assessments", json=body), 201))["reference"]
        await wait_for_record(db_url, ref)
        base = f"/api/cases/{ref}"
        decision = {"decision": "assess", "decided_on": now.isoformat()}
        first = await ok(await http.post(f"{base}/decision-to-assess", json=decision))
        again = await ok(await http.post(f"{base}/decision-to-assess", json=decision))
        assert again == first
        assert events(db_url, ref, "decision.assess") == 1

        # The same step with another decision: refused, saying what was recorded.
        detail = await problem(await http.post(f"{base}/decision-to-assess", json={
            **decision, "decision": "refuse"}), 409,
            f"The decision whether to assess was already recorded on {long_date(now)} "
            "(to assess)", "tell your SEND manager")
        assert not SNAKE_OR_ISO.search(detail), detail
        r = await http.post(f"{base}/decision-to-assess", json={**decision, "decision": "refuse"})
        assert r.json()["code"] == "duplicate"

        # With an Idempotency-Key, a retry of a step that adds something each time is one too.
        exception = {"kind": "reg10_4_c", "reason": "A bereavement in the family",
                     "starts_on": now.isoformat()}
        headers = {"Idempotency-Key": uuid.uuid4().hex}
        first = await ok(await http.post(f"{base}/exceptions", json=exception, headers=headers))
        again = await ok(await http.post(f"{base}/exceptions", json=exception, headers=headers))
        assert again == first and events(db_url, ref, "exception.recorded") == 1

        request = {"items": [{"source": "health", "requested_on": now.isoformat()}]}
        await ok(await http.post(f"{base}/advice-requests", json=request))
        await ok(await http.post(f"{base}/advice-requests", json=request))
        assert events(db_url, ref, "advice.requested") == 1
        received = {"received_on": now.isoformat()}
        first = await ok(await http.post(f"{base}/advice/health/received", json=received))
        again = await ok(await http.post(f"{base}/advice/health/received", json=received))
        assert again["case"]["advice"] == first["case"]["advice"]
        assert again["case"]["version"] == first["case"]["version"]
        assert events(db_url, ref, "advice.received") == 1

        # Out of order, in the words of the pages, with what can be done now.
        detail = await problem(await http.post(f"{base}/final-plan", json={
            "issued_on": now.isoformat(), **PLACEMENT}), 409,
            "“Record the final plan issued (Reg 13(2))” cannot be done while the case is at "
            "the stage “Assessing”", "Steps you can take now: Request advice")
        assert not SNAKE_OR_ISO.search(detail), detail

        # The step that closes the case, sent again once the workflow has finished: the same.
        closing = {"reason": "request_withdrawn", "closed_on": now.isoformat()}
        first = await ok(await http.post(f"{base}/closure", json=closing))
        for _ in range(200):
            if not (await wait_for_record(db_url, ref)).is_open:
                break
        again = await ok(await http.post(f"{base}/closure", json=closing))
        assert again["case"]["stage"] == first["case"]["stage"] == "closed"
        assert again["case"]["closed_on"] == first["case"]["closed_on"]
        assert again["allowed_actions"] == [] and again["deadlines"] == first["deadlines"]
        assert events(db_url, ref, "case.closed") == 1
        detail = await problem(await http.post(f"{base}/closure", json={
            **closing, "reason": "moved_out_of_area"}), 409, "already closed on")
        detail = await problem(await http.post(f"{base}/draft", json={
            "served_on": now.isoformat()}), 409, "This case is closed")
        assert not SNAKE_OR_ISO.search(detail), detail


async def test_the_same_step_twice_through_the_pages_is_done_once(dev_env, sqlite_url,
                                                                  executor):
    settings = settings_for(sqlite_url, f"repeat-{uuid.uuid4().hex[:8]}")
    add_staff(sqlite_url, "caseworker", email="asha@council.example", name="Asha Patel")
    now = today()
    async with build_worker(dev_env.client, settings, executor):
        async with serve_app(settings, dev_env.client, role=None) as anonymous:
            async with client_like(anonymous) as browser:
                await sign_in(browser, "asha@council.example")
                csrf = csrf_of((await browser.get("/assessments/new")).text)
                r = await browser.post("/assessments/new", data={
                    "csrf_token": csrf, "given_name": "Ali", "family_name": uuid.uuid4().hex[:8],
                    **date_parts("date_of_birth", now.replace(year=now.year - 7)),
                    **date_parts("request_date", now), "request_source": "parent"})
                ref = r.headers["location"].split("/")[2].split("?")[0]
                await wait_for_record(sqlite_url, ref)
                case = (await browser.get(f"/cases/{ref}")).text
                # Only what can be taken now, each a link to its form.
                for step in ("withdraw_exception", "record_advice", "report_advice_delay",
                             "serve_draft"):
                    assert f"act/{step}" not in case, step
                assert f'href="/cases/{ref}/act/decide_to_assess"' in case
                listed = re.search(r'id="actions".*?</ul>', case, re.S).group(0)
                assert listed.count("<li>") == listed.count('<li><a class="govuk-link"')

                # A form that cannot be opened now: the case page, saying why.
                r = await browser.get(f"/cases/{ref}/act/withdraw_exception")
                assert r.status_code == 303
                page = await browser.get(r.headers["location"])
                assert "There is no exception on this case to withdraw" in error_summary(page.text)
                assert "You cannot see this page" not in page.text

                # Save, then the back button and Save again: both land on the case, saved.
                form = {"csrf_token": csrf, "decision": "assess", **date_parts("decided_on", now)}
                for _ in range(2):
                    r = await browser.post(f"/cases/{ref}/act/decide_to_assess", data=form)
                    assert r.status_code == 303 and r.headers["location"].endswith(
                        "?done=decide_to_assess")
                    page = await browser.get(r.headers["location"])
                    assert "Saved: record the decision whether to assess" in page.text
                assert events(sqlite_url, ref, "decision.assess") == 1

                # The same step with another decision: the case page, with what was recorded.
                r = await browser.post(f"/cases/{ref}/act/decide_to_assess",
                                       data={**form, "decision": "refuse"})
                assert r.status_code == 409
                summary = error_summary(r.text)
                assert f"already recorded on {long_date(now)} (to assess)" in summary
                assert not SNAKE_OR_ISO.search(summary), summary
                assert f'href="/cases/{ref}/act/request_advice"' in r.text  # what it can do
                with session_for(sqlite_url) as s:
                    assert s.get(t.Case, ref).stage == "assessing"

                # Advice asked for: now it can be received, or reported late, by its form.
                r = await browser.post(f"/cases/{ref}/act/request_advice", data={
                    "csrf_token": csrf, "sources": ["health"],
                    **date_parts("requested_on", now)})
                assert r.status_code == 303, r.text
                case = (await browser.get(f"/cases/{ref}")).text
                assert f'href="/cases/{ref}/act/report_advice_delay"' in case
                assert f'href="/cases/{ref}/act/record_advice"' in case
                delay = await browser.get(f"/cases/{ref}/act/report_advice_delay")
                assert delay.status_code == 200 and '<option value="health">' in delay.text
                token = re.search(r'name="form_token" value="(\w+)"', delay.text).group(1)
                told = {"csrf_token": csrf, "key": "health", "reason": "The clinic is closed",
                        "form_token": token}
                for _ in range(2):  # Save, back, Save: the form's one-time token
                    r = await browser.post(f"/cases/{ref}/act/report_advice_delay", data=told)
                    assert r.status_code == 303, r.text
                assert events(sqlite_url, ref, "advice.delay_reported") == 1
                # The form opened again is a new report.
                token = re.search(r'name="form_token" value="(\w+)"', (await browser.get(
                    f"/cases/{ref}/act/report_advice_delay")).text).group(1)
                r = await browser.post(f"/cases/{ref}/act/report_advice_delay",
                                       data={**told, "form_token": token})
                assert r.status_code == 303, r.text
                assert events(sqlite_url, ref, "advice.delay_reported") == 2
                received = {"csrf_token": csrf, "key": "health",
                            **date_parts("received_on", now)}
                for _ in range(2):
                    r = await browser.post(f"/cases/{ref}/act/record_advice", data=received)
                    assert r.status_code == 303, r.text
                assert events(sqlite_url, ref, "advice.received") == 1
                # All in: neither is offered, and the delay form says why.
                r = await browser.get(f"/cases/{ref}/act/report_advice_delay")
                page = await browser.get(r.headers["location"])
                assert "All the advice requested has been received" in error_summary(page.text)


async def test_the_decision_that_ends_a_review_sent_again_after_the_next_began(
        dev_env, sqlite_url, executor):
    """A review's decision to maintain ends its cycle and starts the next one: the decision sent
    again is answered from the record of the cycle it ended, and the next cycle is untouched."""
    from tests.test_review_api import review_system

    async with review_system(dev_env, sqlite_url, executor) as (http, start):
        ref = await start()
        r1, base = f"{ref}.R1", f"/api/cases/{ref}.R1"
        on = today().isoformat()
        await ok(await http.post(f"{base}/meeting", json={"meeting_on": on}))
        held = {"held_on": on}
        first = await ok(await http.post(f"{base}/meeting-held", json=held))
        assert await ok(await http.post(f"{base}/meeting-held", json=held)) == first
        assert events(sqlite_url, r1, "review.meeting_held") == 1
        decision = {"decision": "maintain", "decided_on": on}
        first = await ok(await http.post(f"{base}/review-decision", json=decision))
        await wait_for_record(sqlite_url, f"{ref}.R2")
        again = await ok(await http.post(f"{base}/review-decision", json=decision))
        assert again["case"]["stage"] == first["case"]["stage"] == "maintained"
        assert (again["case"]["decision"], again["case"]["decided_on"]) == ("maintain", on)
        assert events(sqlite_url, r1, "review.decided_maintain") == 1
        detail = await problem(await http.post(f"{base}/review-decision", json={
            **decision, "decision": "amend"}), 409,
            f"The LA's decision was already recorded on {long_date(today())} (to maintain the "
            "plan)")
        assert not SNAKE_OR_ISO.search(detail), detail
        detail = await problem(await http.post(f"{base}/invitations", json={"on": on}), 409,
                               "This review is over")
        assert not SNAKE_OR_ISO.search(detail), detail
        r2 = await ok(await http.get(f"/api/cases/{ref}.R2"))
        assert r2["view"]["case"]["stage"] == "awaiting_meeting"
