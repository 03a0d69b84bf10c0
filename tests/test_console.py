"""The caseworkers' pages over real HTTP, with a worker on the Temporal dev server: a signed-in
caseworker starts an assessment with the form (which refuses what the API refuses, changing
nothing), finds it among their cases with its next deadline, and a manager gives it to someone
else."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

from sqlmodel import select

from domain.words import long_date
from services.clock import today
from store import tables as t
from store.db import session_for
from tests.conftest import settings_for, wait_until
from tests.http import add_staff, serve_app
from tests.test_api import wait_for_record
from tests.test_auth import client_like, csrf_of, sign_in
from tests.words_check import visible_text
from worker.main import build_worker


def date_parts(prefix: str, day) -> dict[str, str]:
    return {f"{prefix}-day": str(day.day), f"{prefix}-month": str(day.month),
            f"{prefix}-year": str(day.year)}


async def test_a_caseworker_starts_an_assessment_with_the_form(dev_env, sqlite_url, executor):
    settings = settings_for(sqlite_url, f"console-{uuid.uuid4().hex[:8]}")
    me, _ = add_staff(sqlite_url, "caseworker", email="asha@council.example", name="Asha Patel")
    other, _ = add_staff(sqlite_url, "caseworker", email="ben@council.example", name="Ben Cole")
    add_staff(sqlite_url, "manager", email="boss@council.example", name="Morgan Boss")
    received = today() - timedelta(days=50)
    family = f"Example{uuid.uuid4().hex[:6]}"
    async with build_worker(dev_env.client, settings, executor):
        async with serve_app(settings, dev_env.client, role=None) as anonymous:
            async with client_like(anonymous) as browser:
                await sign_in(browser, "asha@council.example")
                mine = await browser.get("/")
                assert mine.status_code == 200 and "You hold no open cases" in mine.text
                missing = await browser.get("/cases/EHC-NONE-0000")
                assert missing.status_code == 404 and "Case not found" in missing.text
                assert "govuk-template" in missing.text
                form = await browser.get("/assessments/new")
                assert form.status_code == 200 and 'name="request_source"' in form.text
                csrf = csrf_of(form.text)

                # Every problem at once, by its field, and nothing started.
                r = await browser.post("/assessments/new", data={
                    "csrf_token": csrf, "given_name": "", "family_name": family,
                    **date_parts("date_of_birth", received + timedelta(days=3)),
                    "request_date-day": "31", "request_date-month": "2",
                    "request_date-year": str(received.year)})
                assert r.status_code == 422
                html = r.text
                assert "There is a problem" in html
                assert "Enter the child&#39;s given name" in html
                assert "Date the request was received must be a real date" in html
                assert "Select who made the request" in html
                assert 'href="#request-date-day"' in html
                with session_for(sqlite_url) as s:
                    assert s.exec(select(t.Child).where(t.Child.family_name == family)).first() \
                        is None

                # The API's own date rules, by the date they are about.
                r = await browser.post("/assessments/new", data={
                    "csrf_token": csrf, "given_name": "Sam", "family_name": family,
                    **date_parts("date_of_birth", received + timedelta(days=3)),
                    **date_parts("request_date", received), "request_source": "parent"})
                assert r.status_code == 422
                assert ("Date of birth must be on or before the date the request was received "
                        f"({long_date(received)})") in r.text
                assert 'href="#date-of-birth-day"' in r.text and "request_date" not in \
                    visible_text(r.text)

                # An impossible date of birth gets an example a date of birth could be; one in
                # the future is told so.
                r = await browser.post("/assessments/new", data={
                    "csrf_token": csrf, "given_name": "Sam", "family_name": family,
                    "date_of_birth-day": "31", "date_of_birth-month": "2",
                    "date_of_birth-year": "2011", **date_parts("request_date", received),
                    "request_source": "parent"})
                assert r.status_code == 422
                assert "Date of birth must be a real date, for example 15 2 2011" in r.text
                r = await browser.post("/assessments/new", data={
                    "csrf_token": csrf, "given_name": "Sam", "family_name": family,
                    **date_parts("date_of_birth", today() + timedelta(days=40)),
                    **date_parts("request_date", received), "request_source": "parent"})
                assert r.status_code == 422
                assert "Date of birth cannot be in the future" in r.text

                good = {"csrf_token": csrf, "given_name": "Sam", "family_name": family,
                        **date_parts("date_of_birth", received.replace(year=received.year - 9)),
                        **date_parts("request_date", received), "request_source": "school",
                        "setting_name": "Oak Primary School"}
                r = await browser.post("/assessments/new", data=good)
                assert r.status_code == 303, r.text
                ref = re.fullmatch(r"/cases/(EHC-[0-9A-Z]{4}-[0-9A-Z]{4})\?started=1",
                                   r.headers["location"]).group(1)
                await wait_for_record(sqlite_url, ref)
                with session_for(sqlite_url) as s:
                    row = s.get(t.Case, ref)
                    assert (row.caseworker_id, row.setting_name) == (me, "Oak Primary School")
                    assert row.request_source == "school"

                page = await browser.get(f"/cases/{ref}")
                assert page.status_code == 200 and ref in page.text
                mine = await browser.get("/")
                assert ref in mine.text and "Oak Primary School" in mine.text
                decision_due = received + timedelta(weeks=6)
                assert f"Decision whether to assess: {decision_due.day} " in mine.text

                # The same child again: the API's 409, on the form.
                r = await browser.post("/assessments/new", data=good)
                assert r.status_code == 409 and "already has an open assessment" in r.text
                assert ref in r.text

            # A manager gives the case to Ben; it leaves Asha's list and joins his.
            async with client_like(anonymous) as manager:
                await sign_in(manager, "boss@council.example")
                csrf = csrf_of((await manager.get("/late")).text)
                r = await manager.put(f"/api/cases/{ref}/caseworker",
                                      json={"caseworker_id": other},
                                      headers={"X-CSRF-Token": csrf})
                assert r.status_code == 200, r.text
                r = await manager.put(f"/api/cases/{ref}/caseworker",
                                      json={"caseworker_id": "nobody"},
                                      headers={"X-CSRF-Token": csrf})
                assert r.status_code == 422 and "GET /api/caseworkers" in r.json()["detail"]
                late = await manager.get("/late", params={"caseworker_id": other})
                assert ref in late.text and "Ben Cole" in late.text  # its decision is late
            async with client_like(anonymous) as asha:
                await sign_in(asha, "asha@council.example")
                assert ref not in (await asha.get("/")).text
                r = await asha.put(f"/api/cases/{ref}/caseworker", json={"caseworker_id": me},
                                   headers={"X-CSRF-Token": "x"})
                assert r.status_code == 403


async def test_the_steps_of_a_case_through_its_forms(dev_env, sqlite_url, executor,
                                                     smtp_server):
    """Each step's form asks what the API asks; the workflow's own refusals come back on the
    form and change nothing; done steps show on the case page."""
    settings = settings_for(sqlite_url, f"console-{uuid.uuid4().hex[:8]}",
                            smtp_port=smtp_server.port)
    add_staff(sqlite_url, "caseworker", email="asha@council.example", name="Asha Patel")
    from cli.seed import seed_demo

    seed_demo(sqlite_url)  # the directory the advice requests go to
    received = today() - timedelta(days=30)
    async with build_worker(dev_env.client, settings, executor):
        async with serve_app(settings, dev_env.client, role=None) as anonymous:
            async with client_like(anonymous) as browser:
                await sign_in(browser, "asha@council.example")
                csrf = csrf_of((await browser.get("/assessments/new")).text)
                r = await browser.post("/assessments/new", data={
                    "csrf_token": csrf, "given_name": "Ali", "family_name": uuid.uuid4().hex[:8],
                    **date_parts("date_of_birth", received.replace(year=received.year - 7)),
                    **date_parts("request_date", received), "request_source": "parent"})
                ref = r.headers["location"].split("/")[2].split("?")[0]
                await wait_for_record(sqlite_url, ref)
                case = await browser.get(r.headers["location"])
                assert "The case has started" in case.text
                assert f'href="/cases/{ref}/act/decide_to_assess"' in case.text
                assert f'href="/cases/{ref}/act/serve_draft"' not in case.text  # not yet

                form = await browser.get(f"/cases/{ref}/act/decide_to_assess")
                assert form.status_code == 200 and 'name="decision"' in form.text
                assert 'name="decided_on-day"' in form.text and 'name="actor"' not in form.text
                r = await browser.post(f"/cases/{ref}/act/decide_to_assess",
                                       data={"csrf_token": csrf})
                assert r.status_code == 422 and "Select the decision" in r.text
                assert "Enter the date of the decision" in r.text
                # A date before the request: the workflow's validator refuses it.
                before = received - timedelta(days=2)
                r = await browser.post(f"/cases/{ref}/act/decide_to_assess", data={
                    "csrf_token": csrf, "decision": "assess", **date_parts("decided_on", before)})
                assert r.status_code == 422 and "before" in r.text and "request" in r.text
                with session_for(sqlite_url) as s:
                    assert s.get(t.Case, ref).stage == "awaiting_decision"
                on = received + timedelta(days=10)
                r = await browser.post(f"/cases/{ref}/act/decide_to_assess", data={
                    "csrf_token": csrf, "decision": "assess", **date_parts("decided_on", on)})
                assert r.status_code == 303 and r.headers["location"].endswith(
                    "?done=decide_to_assess")
                # Out of order now: the form is not offered; the case page says why.
                again = await browser.get(f"/cases/{ref}/act/decide_to_assess")
                assert again.status_code == 303 and again.headers["location"].endswith(
                    "?cannot=decide_to_assess#actions")
                again = await browser.get(again.headers["location"])
                assert again.status_code == 200 and "There is a problem" in again.text
                assert "cannot be done while the case is at the stage" in again.text

                form = await browser.get(f"/cases/{ref}/act/request_advice")
                assert form.status_code == 200
                assert 'value="health" checked' in form.text and "Community Paediatrics" in form.text
                r = await browser.post(f"/cases/{ref}/act/request_advice", data={
                    "csrf_token": csrf, "sources": ["health", "education"],
                    **date_parts("requested_on", on + timedelta(days=1))})
                assert r.status_code == 303, r.text
                case = await browser.get(r.headers["location"])
                assert "Saved: advice requested" in case.text
                assert "Advice: medical advice" in case.text
                assert "Owed by" in case.text and "Asha Patel" in case.text

                form = await browser.get(f"/cases/{ref}/act/record_advice")
                assert '<option value="health">' in form.text
                r = await browser.post(f"/cases/{ref}/act/record_advice", data={
                    "csrf_token": csrf, "key": "health",
                    **date_parts("received_on", on + timedelta(days=5))})
                assert r.status_code == 303, r.text
                r = await browser.post(f"/cases/{ref}/act/record_advice", data={
                    "csrf_token": csrf, "key": "health",
                    **date_parts("received_on", on + timedelta(days=6))})
                assert r.status_code in (409, 422)  # already received: refused, unchanged
                with session_for(sqlite_url) as s:
                    item = s.exec(select(t.AdviceItem).where(
                        t.AdviceItem.case_reference == ref, t.AdviceItem.key == "health")).one()
                    assert item.received_on == on + timedelta(days=5)
        # The requests went by email to the directory's default services.
        wait_until(lambda: len(smtp_server.received) >= 2, timeout=20)
        assert {m.to for m in smtp_server.received} >= {"dco@northbridge-icb.example",
                                                        "senco@northbridge-primary.example"}
