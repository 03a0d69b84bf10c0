"""The case page in a real browser: a case whose advice was chased by twenty emails still shows
its deadlines and its timeline within the first two screens of a laptop, the emails folded
away below them (by the advice each is about: how many, the last sent, the latest), and the
page has no WCAG 2.2 AA violation with the emails folded or open. Screenshots at 1280 and 390
pixels wide are kept in tests/screenshots/test_case_page_layout/ to look at."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

from sqlmodel import Session

from services.clock import today
from statutory import assessment_timescales
from store import tables as t
from store.db import engine_for
from tests.browser import axe_violations, browser, describe, screenshots  # noqa: F401
from tests.conftest import free_port, settings_for
from tests.http import add_staff, serve_app

REFERENCE = "EHC-MAIL-0001"
ADVICE = (("education", "Oak Primary School", "Ms Jo Green"),
          ("health", "Community Paediatrics", "Dr Ravi Patel"),
          ("educational_psychologist", "Educational Psychology", "Dr Sam Lee"),
          ("social_care", "Children's Disability Team", "Alex Moore"))
LADDER = (("request", "advice_request", "professional", 0),
          ("reminder", "advice_reminder", "professional", 28),
          ("due_tomorrow", "advice_due_tomorrow", "professional", 41),
          ("overdue", "advice_overdue", "professional", 43),
          ("escalate_lead", "advice_escalation_lead", "service_lead", 50))


def add_chased_case(db_url: str) -> int:
    """A closed assessment (its page needs no Temporal) whose four pieces of advice were each
    chased by five emails; a few steps on its timeline. Returns how many emails."""
    closed = today() - timedelta(days=5)
    requested = closed - timedelta(days=140)
    asked = requested + timedelta(days=14)
    rules = {k: d.rule.id for k, d in assessment_timescales(requested).items()}
    n = 0
    with Session(engine_for(db_url)) as s:
        child = t.Child(given_name="Mia", family_name="Example", date_of_birth=date(2017, 3, 2))
        s.add(child)
        s.flush()
        s.add(t.Case(reference=REFERENCE, child_id=child.id,
                     workflow_id=f"assessment-{REFERENCE}", stage="final_issued", is_open=False,
                     request_date=requested, request_source="parent", closed_on=closed,
                     policy={}, version=1))
        s.flush()
        for key, due, done in (("decision_due", requested + timedelta(weeks=6),
                                requested + timedelta(days=12)),
                               ("draft_plan_target", requested + timedelta(weeks=16),
                                requested + timedelta(weeks=17)),
                               ("final_plan_due", requested + timedelta(weeks=20), closed)):
            s.add(t.Milestone(case_reference=REFERENCE, key=key, rule_id=rules[key],
                              started_on=requested, due=due, done_on=done, applicable=True))
        for source, service, person in ADVICE:
            svc = t.Service(name=service, agency="education")
            s.add(svc)
            s.flush()
            contact = t.Contact(service_id=svc.id, name=person,
                                email=f"{source}@services.example")
            s.add(contact)
            s.flush()
            s.add(t.AdviceItem(case_reference=REFERENCE, key=source, source=source,
                               requested_on=asked, due=asked + timedelta(weeks=6),
                               received_on=asked + timedelta(days=55), service_id=svc.id,
                               contact_id=contact.id))
            for step, template, role, after in LADDER:
                n += 1
                on = asked + timedelta(days=after)
                at = datetime.combine(on, time(8, 0), timezone.utc)
                s.add(t.EmailMessage(
                    key=f"{REFERENCE}/{source}/{step}", case_reference=REFERENCE,
                    advice_key=source, step=step, step_on=on, template=template,
                    recipient_role=role, recipient_name=person if role == "professional"
                    else f"Lead of {service}", recipient_address=f"{source}@services.example",
                    subject=f"Advice for {REFERENCE}: {step.replace('_', ' ')}", body_text="...",
                    message_id=f"<{n}@ehc.example>", status="sent", attempts=1,
                    created_at=at, sent_at=at))
        for seq, (on, summary) in enumerate((
                (requested, "Request for an assessment received"),
                (requested + timedelta(days=12), "Decided to assess"),
                (asked, "Advice requested from four services"),
                (asked + timedelta(days=55), "All advice received"),
                (requested + timedelta(weeks=17), "Draft plan served"),
                (closed, "Final plan issued")), start=1):
            s.add(t.CaseEvent(case_reference=REFERENCE, seq=seq, kind="note", on=on,
                              at=datetime.combine(on, time(9, 0), timezone.utc),
                              actor="Asha Patel", summary=summary))
        s.commit()
    return n


async def test_the_emails_do_not_push_the_timeline_off_the_screen(
        browser, screenshots, sqlite_url):  # noqa: F811
    sent = add_chased_case(sqlite_url)
    assert sent == 20
    _, token = add_staff(sqlite_url, "caseworker", name="Asha Patel")
    settings = settings_for(sqlite_url, "layout", temporal_address=f"127.0.0.1:{free_port()}")
    async with serve_app(settings, None, role=None) as http:
        base = str(http.base_url).rstrip("/")
        for width, height in ((1280, 800), (390, 844)):
            context = await browser.new_context(
                base_url=base, viewport={"width": width, "height": height},
                extra_http_headers={"Authorization": f"Bearer {token}"})
            try:
                page = await context.new_page()
                response = await page.goto(f"/cases/{REFERENCE}")
                assert response.status == 200
                top = await page.evaluate(
                    "id => document.getElementById(id).getBoundingClientRect().top "
                    "+ window.scrollY", "timeline")
                emails = await page.evaluate(
                    "id => document.getElementById(id).getBoundingClientRect().top "
                    "+ window.scrollY", "emails")
                tall = await page.evaluate("document.documentElement.scrollHeight")
                await page.screenshot(path=str(screenshots / f"case-{width}.png"),
                                      full_page=True)
                assert top < emails  # the timeline first, then the emails
                summary = page.locator(".ehc-emails > summary")
                assert (await summary.inner_text()).strip() == \
                    f"Emails sent for this case ({sent})"
                assert not await page.get_by_text("Every email about the medical advice").\
                    is_visible()
                folded = await page.evaluate(
                    "document.querySelector('.ehc-emails').getBoundingClientRect().height")
                assert folded < 80, folded  # one line, however many emails
                if width == 1280:
                    # The timeline starts at the end of a laptop's second screen (the case's
                    # summary and its seven deadlines come first), and the whole page is
                    # under three: twenty emails add one line, below it.
                    assert top < 2.1 * height, (top, tall)
                    assert tall < 3 * height, tall
                assert not (found := await axe_violations(page)), describe(found)

                await summary.click()
                row = page.locator(".ehc-emails table").first.locator("tbody tr").nth(1)
                cells = [" ".join((await c.inner_text()).split())
                         for c in await row.locator("th, td").all()]
                assert cells[0].startswith("Medical advice") and "Dr Ravi Patel" in cells[0]
                assert cells[1] == "5"
                assert cells[3].startswith("Escalation to the service lead, to Lead of "
                                           "Community Paediatrics")
                await page.get_by_text("Every email about the medical advice (5)").click()
                await page.screenshot(path=str(screenshots / f"case-{width}-emails-open.png"),
                                      full_page=True)
                assert not (found := await axe_violations(page)), describe(found)
            finally:
                await context.close()
