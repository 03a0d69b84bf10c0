"""Every page of the app, checked with axe-core in a real browser (headless Chromium,
tests/browser.py) against WCAG 2.0, 2.1 and 2.2 levels A and AA: no violation anywhere, and
nothing refused by the pages' Content-Security-Policy (api/security_headers.py).

The pages are the app's own GET routes that are not part of the API (``include_in_schema``
False), found from the app itself, so a page added later is checked without editing this test.
A page whose path has parameters needs real URLs from the table ``URLS`` below: a page route
with no entry there fails, so no page can escape the check. The database is seeded as a
council's would be: assessments at several stages (through the API, with a worker on the
Temporal dev server), a plan with its annual review, the demo directory, staff accounts, and a
real signed link to the professionals' advice page. Pages are also checked in their error
states: forms sent empty, a wrong password, bad filters, pages that refuse or find nothing.

Staff pages are opened by an administrator (who may see them all), public ones by nobody
signed in; ``/`` also by the caseworker who holds the cases; a few also 320 CSS pixels wide.
A page with a violation gets a screenshot in tests/screenshots/test_accessibility/ (ignored by
git); ``EHC_TEST_SCREENSHOTS=1`` takes one of every page."""

from __future__ import annotations

import asyncio
import os
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Callable

import httpx
import pytest
from sqlmodel import select

from services.links import make_advice_token
from api.app import create_app
from api.auth import PUBLIC, required_role
from services.clock import today
from cli.seed import seed_demo
from cli.system import upgrade_database
from store import tables as t
from store.db import session_for
from tests.browser import AXE, axe_violations, browser, describe, screenshots, sign_in  # noqa: F401
from tests.conftest import settings_for
from tests.http import PASSWORD, add_staff, serve_app
from tests.test_api import wait_for_record
from tests.test_auth import DOCS
from worker.main import build_worker

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

# GET routes outside the API that answer something other than a page.
NOT_PAGES = {"/healthz", "/admin/access-log/children/{child_id}/export",  # a zip
             # the council sign-in's return legs only redirect (tests/test_council_sign_in.py)
             "/sign-in/council/callback", "/sign-in/council/signed-out"}


def page_routes() -> list[str]:
    """The path template of every page: the app's GET routes left out of the API's schema."""
    app = create_app(settings_for("sqlite://", "routes"))
    out = set()
    for entry in app.routes:
        candidates = entry.effective_candidates() if hasattr(entry, "effective_candidates") \
            else [entry]
        for route in candidates:
            if "GET" in (getattr(route, "methods", None) or ()) \
                    and getattr(route, "include_in_schema", True) is False:
                out.add(route.path_format)
    return sorted(out - DOCS - NOT_PAGES)


@dataclass
class Site:
    """What the seeded database holds, for the URLs of the pages with parameters."""

    cases: dict[str, str] = field(default_factory=dict)  # what it shows -> case reference
    review: str = ""  # the plan's first review cycle (a case of its own)
    plan: str = ""
    caseworker_id: str = ""
    service_id: str = ""
    contact_id: str = ""
    member_id: str = ""
    advice_token: str = ""
    child_id: str = ""  # the child of the case "advice" (the access log's page)
    step_forms: list[str] = field(default_factory=list)  # each step form the case pages link


# The URLs to check for each page route with parameters. A new page with parameters needs a
# line here (the test fails until it has one).
URLS: dict[str, Callable[[Site], list[str]]] = {
    "/cases/{reference}": lambda s: [f"/cases/{r}" for r in s.cases.values()]
    + [f"/cases/{s.review}"],
    "/cases/{reference}/act/{action}": lambda s: s.step_forms,
    "/plans/{reference}": lambda s: [f"/plans/{s.plan}"],
    "/admin/users/{user_id}": lambda s: [f"/admin/users/{s.caseworker_id}"],
    "/directory/services/{service_id}": lambda s: [f"/directory/services/{s.service_id}"],
    "/directory/services/{service_id}/edit":
        lambda s: [f"/directory/services/{s.service_id}/edit"],
    "/directory/contacts/{contact_id}/edit":
        lambda s: [f"/directory/contacts/{s.contact_id}/edit"],
    "/directory/adqa/{member_id}/edit": lambda s: [f"/directory/adqa/{s.member_id}/edit"],
    "/advice/{token}": lambda s: [f"/advice/{s.advice_token}"],
    "/admin/access-log/children/{child_id}": lambda s: [f"/admin/access-log/children/{s.child_id}"],
    "/sign-in/council": lambda s: [],  # in OTHER_STATES: this council has no provider set
}

# The same pages in other states, by whom, and the status each answers with.
OTHER_STATES: list[tuple[Callable[[Site], str], str | None, int]] = [
    (lambda s: "/", "caseworker", 200),  # the cases they hold, with their next deadlines
    (lambda s: "/sign-in?notice=signed-out", None, 200),
    (lambda s: "/late?view=due_soon&days=60", "admin", 200),
    (lambda s: f"/late?today={(today() + timedelta(days=60)).isoformat()}", "admin", 200),
    (lambda s: "/late?min_days_overdue=many&today=someday", "admin", 422),
    (lambda s: "/plans?status=all&overdue=yes&with_child=yes", "admin", 200),
    (lambda s: "/plans?due_before-day=31&due_before-month=2&due_before-year=2027", "admin", 422),
    (lambda s: "/adqa/digest?week_ending=last-week", "admin", 422),
    # a step's form that cannot be opened now: the case page, its error summary saying why
    (lambda s: f"/cases/{s.cases['awaiting']}?cannot=withdraw_exception", "admin", 200),
    (lambda s: "/admin/users", "caseworker", 403),
    (lambda s: "/plans/NO-SUCH-PLAN", "admin", 404),
    (lambda s: "/directory/services/no-such-service", "admin", 404),
    (lambda s: "/advice/not-a-real-link", None, 404),
    (lambda s: "/sign-in/council", None, 404),  # no OpenID provider set: says what to do
    (lambda s: f"/admin/access-log?reference={s.cases['advice']}", "admin", 200),
    (lambda s: "/admin/access-log?given_name=Noah&date_of_birth-day=31", "admin", 422),
]

# Pages also checked 320 CSS pixels wide, where the navigation collapses into a menu button.
NARROW: list[tuple[Callable[[Site], str], str | None]] = [
    (lambda s: "/", "caseworker"),
    (lambda s: "/late", "admin"),
    (lambda s: f"/cases/{s.cases['advice']}", "admin"),
    (lambda s: f"/cases/{s.cases['awaiting']}/act/decide_to_assess", "admin"),
    (lambda s: "/sign-in", None),
    (lambda s: f"/advice/{s.advice_token}", None),
]

# Forms sent empty, to see their error summary and messages: (page, the form's action, whom).
EMPTY_FORMS: list[tuple[Callable[[Site], str], Callable[[Site], str], str | None]] = [
    (lambda s: "/assessments/new", lambda s: "/assessments/new", "admin"),
    (lambda s: "/admin/users/new", lambda s: "/admin/users/new", "admin"),
    (lambda s: "/directory/services/new", lambda s: "/directory/services/new", "admin"),
    (lambda s: f"/directory/services/{s.service_id}",
     lambda s: f"/directory/services/{s.service_id}/contacts", "admin"),
    (lambda s: "/directory/adqa", lambda s: "/directory/adqa", "admin"),
    (lambda s: f"/cases/{s.cases['awaiting']}/act/decide_to_assess",
     lambda s: f"/cases/{s.cases['awaiting']}/act/decide_to_assess", "admin"),
    (lambda s: f"/advice/{s.advice_token}", lambda s: f"/advice/{s.advice_token}", None),
    (lambda s: f"/advice/{s.advice_token}", lambda s: f"/advice/{s.advice_token}/delay", None),
]


def test_every_page_route_has_urls_to_check():
    routes = page_routes()
    assert "/late" in routes and "/advice/{token}" in routes and "/sign-in" in routes
    missing = [p for p in routes if "{" in p and p not in URLS]  # a plain path is itself
    assert not missing, (f"page routes with no URL to check for accessibility: {missing}. Add "
                         "each to URLS in tests/test_accessibility.py")
    stale = sorted(set(URLS) - set(routes))
    assert not stale, f"URLS names routes the app no longer has: {stale}"


# --- the seeded council ---------------------------------------------------------------------------

D0 = today() - timedelta(days=150)  # the oldest request arrived 150 days ago
ADVICE = ("family", "education", "health", "educational_psychologist", "social_care")


def day(n: int) -> str:
    return (D0 + timedelta(days=n)).isoformat()


async def seed_cases(api: httpx.AsyncClient, db_url: str) -> tuple[dict[str, str], str]:
    """Assessments at each stage, through the API as a caseworker; returns them and the
    review cycle the issued plan started."""

    async def post(path: str, body: dict, status: int = 200) -> dict:
        r = await api.post(path, json=body)
        assert r.status_code == status, (path, r.status_code, r.text)
        return r.json()

    async def start(given: str, on: str, source: str = "parent", **extra) -> str:
        child = {"given_name": given, "family_name": f"Example{uuid.uuid4().hex[:6]}",
                 "date_of_birth": "2016-09-01"}
        return (await post("/api/assessments", {"child": child, "request_date": on,
                                                "request_source": source, **extra}, 201)
                )["reference"]

    refs: dict[str, str] = {}
    # Just arrived from a school; its 6-week decision is already late.
    refs["awaiting"] = await start("Amara", day(100), "school", setting_name="Oak Primary School")
    # Assessing: advice asked of every agency, some in, the rest late; an exception recorded.
    ref = refs["advice"] = await start("Noah", day(60))
    await post(f"/api/cases/{ref}/decision-to-assess", {"decision": "assess",
                                                         "decided_on": day(70)})
    await post(f"/api/cases/{ref}/advice-requests",
               {"items": [{"source": s, "requested_on": day(71)} for s in ADVICE]})
    await post(f"/api/cases/{ref}/advice/family/received", {"received_on": day(90)})
    await post(f"/api/cases/{ref}/exceptions", {
        "kind": "reg10_4_c", "reason": "The family were away for a month",
        "starts_on": day(95), "ends_on": day(125)})
    # A draft plan served, a school consulted.
    ref = refs["draft"] = await start("Zoe", day(10))
    await post(f"/api/cases/{ref}/decision-to-assess", {"decision": "assess",
                                                         "decided_on": day(30)})
    await post(f"/api/cases/{ref}/advice-requests",
               {"items": [{"source": s, "requested_on": day(31)} for s in ADVICE]})
    for s in ADVICE:
        await post(f"/api/cases/{ref}/advice/{s}/received", {"received_on": day(60)})
    await post(f"/api/cases/{ref}/plan-decision", {"decision": "issue", "decided_on": day(85)})
    await post(f"/api/cases/{ref}/draft", {"served_on": day(100)})
    await post(f"/api/cases/{ref}/setting-consultations",
               {"setting": "Oakfield Primary School", "sent_on": day(100)})
    # Refused, and closed.
    ref = refs["refused"] = await start("Ola", day(110))
    await post(f"/api/cases/{ref}/decision-to-assess", {
        "decision": "refuse", "decided_on": day(120),
        "reason": "The evidence shows the school can meet the child's needs"})
    ref = refs["closed"] = await start("Kai", day(120))
    await post(f"/api/cases/{ref}/closure", {"reason": "moved_out_of_area",
                                             "closed_on": day(125)})
    # The whole way to a final plan, which starts the plan's annual reviews.
    ref = refs["issued"] = await start("Sam", day(0))
    await post(f"/api/cases/{ref}/decision-to-assess", {"decision": "assess",
                                                         "decided_on": day(30)})
    await post(f"/api/cases/{ref}/advice-requests",
               {"items": [{"source": s, "requested_on": day(31)} for s in ADVICE]})
    for s in ADVICE:
        await post(f"/api/cases/{ref}/advice/{s}/received",
                   {"received_on": day(80 if s == "health" else 60)})
    await post(f"/api/cases/{ref}/plan-decision", {"decision": "issue", "decided_on": day(85)})
    await post(f"/api/cases/{ref}/draft", {"served_on": day(100)})
    await post(f"/api/cases/{ref}/setting-consultations",
               {"setting": "Oakfield Primary School", "sent_on": day(100)})
    await post(f"/api/cases/{ref}/setting-consultations/setting:oakfield-primary-school/response",
               {"received_on": day(110)})
    await post(f"/api/cases/{ref}/family-comments", {"received_on": day(112)})
    await post(f"/api/cases/{ref}/final-plan", {"issued_on": day(130), "setting_name":
                                                "Oakfield Primary School",
                                                "setting_type": "primary", "nc_year": "4"})
    review = f"{ref}.R1"
    await wait_for_record(db_url, review)
    await post(f"/api/cases/{review}/meeting",
               {"meeting_on": (today() + timedelta(days=200)).isoformat()})
    for r in refs.values():
        await wait_for_record(db_url, r)
    return refs, review


async def seed(db_url: str, settings, http: httpx.AsyncClient) -> Site:
    site = Site()
    seed_demo(db_url)
    site.caseworker_id, token = add_staff(db_url, "caseworker", name="Asha Patel",
                                          email="asha@council.example")
    _, admin_token = add_staff(db_url, "admin", name="Alex Admin", email="alex@council.example")
    async with httpx.AsyncClient(base_url=http.base_url, timeout=30,
                                 headers={"Authorization": f"Bearer {token}"}) as api:
        site.cases, site.review = await seed_cases(api, db_url)
    with session_for(db_url) as s:
        service = s.exec(select(t.Service).join(t.Contact, t.Contact.service_id == t.Service.id)
                         .order_by(t.Service.name)).first()
        site.service_id = service.id
        site.contact_id = s.exec(select(t.Contact.id).where(
            t.Contact.service_id == service.id)).first()
        site.member_id = s.exec(select(t.AdqaMember.id)).first()
        site.plan = s.exec(select(t.Plan.reference)).one()
        site.child_id = s.get(t.Case, site.cases["advice"]).child_id
    site.advice_token = make_advice_token(settings, site.cases["advice"], "health")
    # Every step form the case pages offer now (each step's form is drawn differently).
    async with httpx.AsyncClient(base_url=http.base_url, timeout=30,
                                 headers={"Authorization": f"Bearer {admin_token}"}) as admin:
        for ref in [*site.cases.values(), site.review]:
            html = (await admin.get(f"/cases/{ref}")).text
            for href in re.findall(r'href="(/cases/[^"?#]+/act/[^"?#]+)"', html):
                if not any(f.endswith(href[href.rindex("/"):]) for f in site.step_forms):
                    site.step_forms.append(href)  # each step's form once
    assert site.step_forms, "no case page links a step form"
    return site


# --- the check ------------------------------------------------------------------------------------


# What sticks out past the right of a narrow screen, other than data tables (which WCAG 1.4.10
# lets scroll sideways) and text hidden off-screen for screen readers.
TOO_WIDE = """() => [...document.body.querySelectorAll('*')].filter(el => {
    const box = el.getBoundingClientRect();
    return box.right > window.innerWidth + 1 && box.width > 1 && !el.closest('table')
        && getComputedStyle(el).position !== 'absolute';
}).slice(0, 5).map(el => `<${el.tagName.toLowerCase()} class="${el.className}">`).join(', ')"""

TABS = 2  # pages checked at once (one tab each per role): axe-core runs in Chromium's renderers


async def test_every_page_has_no_wcag_violations(
        browser, screenshots, dev_env, executor, tmp_path, smtp_server):  # noqa: F811
    db_url = f"sqlite:///{tmp_path / 'ehc.db'}"
    upgrade_database(db_url)
    settings = settings_for(db_url, f"a11y-{uuid.uuid4().hex[:8]}",
                            link_secret="a11y-test-secret", smtp_host=smtp_server.host,
                            smtp_port=smtp_server.port, council_name="Exampleshire County Council")
    routes = page_routes()
    missing = [p for p in routes if "{" in p and p not in URLS]  # a plain path is itself
    assert not missing, f"page routes with no URL in URLS: {missing}"
    checked: list[str] = []
    failures: list[str] = []
    async with build_worker(dev_env.client, settings, executor):
        async with serve_app(settings, dev_env.client, role=None) as http:
            started = time.monotonic()
            site = await seed(db_url, settings, http)
            seeded = time.monotonic()
            base = str(http.base_url).rstrip("/")
            # A browser per person (its own cookies), at a desktop width and at 320 CSS pixels,
            # where the pages must reflow (WCAG 1.4.10) and the navigation becomes a menu.
            contexts = {}
            for role, email in ((None, None), ("admin", "alex@council.example"),
                                ("caseworker", "asha@council.example")):
                signed_in = None
                for narrow in (False, True):
                    contexts[role, narrow] = context = await browser.new_context(
                        base_url=base, storage_state=signed_in,
                        viewport={"width": 320, "height": 640} if narrow
                        else {"width": 1280, "height": 900})
                    context.set_default_timeout(30_000)
                    await context.add_init_script(path=str(AXE))
                    # Chromium reports what the Content-Security-Policy refused to the console.
                    context.on("console", lambda m: failures.append(
                        f"{m.page.url if m.page else ''}: {m.text}")
                        if "Content Security Policy" in m.text else None)
                    if email and signed_in is None:  # once: the narrow one has its cookies
                        page = await context.new_page()
                        await sign_in(page, email, PASSWORD)
                        assert "/sign-in" not in page.url, f"{email} could not sign in"
                        signed_in = await context.storage_state()
                        await page.close()

            async def axe(page, label: str) -> None:
                if page.viewport_size["width"] < 400:
                    label += " at 320px"
                checked.append(label)
                name = f"{len(checked):02d}-" + re.sub(r"[^A-Za-z0-9]+", "-", label)[:80]
                before = len(failures)
                violations = await axe_violations(page)
                if violations:
                    failures.append(f"{label}:\n{describe(violations)}")
                if page.viewport_size["width"] < 400 and (wide := await page.evaluate(TOO_WIDE)):
                    failures.append(f"{label}: wider than the screen, so it does not reflow "
                                    f"(WCAG 1.4.10; only a data table may scroll): {wide}")
                if len(failures) > before or os.environ.get("EHC_TEST_SCREENSHOTS"):
                    await page.screenshot(path=str(screenshots / f"{name}.png"), full_page=True)

            async def visit(page, url: str, status: int, who: str | None) -> None:
                response = await page.goto(url)
                label = f"GET {url} as {who or 'nobody'}"
                if response.status != status or page.url.split("?")[0] != base + url.split("?")[0]:
                    failures.append(f"{label}: HTTP {response.status} at {page.url}, expected "
                                    f"{status} at {url}")
                kind = response.headers.get("content-type", "")
                if response.status >= 500:
                    return
                if not kind.startswith("text/html"):
                    body = (await response.text())[:200]
                    failures.append(f"{label}: not a page ({kind}: {body!r}); a route that is "
                                    "not meant to be one goes in NOT_PAGES")
                    return
                await axe(page, label)

            async def send_empty(page, url: str, action: str) -> None:
                await page.goto(url)
                form = page.locator(f'form[method="post"][action="{action}"]')
                async with page.expect_response(lambda r: r.request.method == "POST") as sent:
                    await form.locator('[type="submit"]').first.click()
                response = await sent.value
                await page.wait_for_load_state()
                label = f"POST {action} sent empty (HTTP {response.status})"
                if await page.locator(".govuk-error-summary").count() != 1:
                    failures.append(f"{label}: no error summary")
                await axe(page, label)

            async def wrong_password(page) -> None:
                await page.goto("/sign-in")
                await page.get_by_label("Email address").fill("nobody@council.example")
                await page.get_by_label("Password").fill("not the password")
                await page.get_by_role("button", name="Sign in").click()
                await page.locator(".govuk-error-summary").wait_for()
                await axe(page, "POST /sign-in with a wrong password")

            # (whose tab: (whom, narrow), what it is, what to do with the tab)
            jobs: list[tuple[tuple[str | None, bool], str, Callable]] = []
            for path in routes:
                who = None if required_role("GET", path) is PUBLIC else "admin"
                for url in URLS[path](site) if path in URLS else [path]:
                    jobs.append(((who, False), url, lambda p, url=url, who=who:
                                 visit(p, url, 200, who)))
            for url, who, status in OTHER_STATES:
                jobs.append(((who, False), url(site), lambda p, url=url(site), status=status,
                             who=who: visit(p, url, status, who)))
            for url, who in NARROW:
                jobs.append(((who, True), url(site), lambda p, url=url(site), who=who:
                             visit(p, url, 200, who)))
            for url, action, who in EMPTY_FORMS:
                jobs.append(((who, False), f"POST {action(site)}", lambda p, url=url(site),
                             action=action(site): send_empty(p, url, action)))
            jobs.append(((None, False), "POST /sign-in", wrong_password))

            async def tab() -> None:
                pages = {key: await context.new_page() for key, context in contexts.items()}
                while jobs:
                    key, what, job = jobs.pop(0)
                    try:
                        await job(pages[key])
                    except Exception as exc:  # noqa: BLE001 - every page is still checked
                        failures.append(f"{what}: {type(exc).__name__}: {exc}")

            await asyncio.gather(*(tab() for _ in range(TABS)))

            # Last, as it changes the case: the professional sends their advice, and the
            # page says it arrived; the link then says so too.
            page = await contexts[None, False].new_page()
            await page.goto(f"/advice/{site.advice_token}")
            form = page.locator(f'form[action="/advice/{site.advice_token}"]')
            await form.get_by_label("Your advice").fill("Sam's hearing is within normal range.")
            await form.get_by_label("Your name").fill("Dr A. Clinician")
            await form.get_by_role("button", name="Send advice").click()
            await page.get_by_role("heading", level=1).wait_for()
            await axe(page, "POST /advice/{token}: advice sent")
            await page.goto(f"/advice/{site.advice_token}")
            await axe(page, "GET /advice/{token} once the advice is in")
            for context in contexts.values():
                await context.close()
            done = time.monotonic()

    print(f"\nseeded in {seeded - started:.1f} s; axe-core checked {len(checked)} pages in "
          f"{done - seeded:.1f} s:\n  " + "\n  ".join(sorted(checked)))
    assert not failures, (f"WCAG 2.2 AA problems on {len(failures)} of {len(checked)} pages "
                          f"(axe-core; screenshots in {screenshots}):\n\n" + "\n\n".join(failures))
