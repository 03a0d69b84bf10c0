"""Every response carries the security headers (api/security_headers.py), a request larger
than its route family takes is refused 413 before anything reads it, and in a real browser
the pages run under their Content-Security-Policy with no violation: GOV.UK Frontend's
JavaScript still starts and axe-core still finds nothing."""

from __future__ import annotations

import asyncio
import uuid
from contextlib import asynccontextmanager

import httpx
import pytest
import uvicorn

from api.app import create_app
from api.security_headers import DOCS_CSP, FORM_LIMIT, body_limit, inline_script_hashes
from services.uploads import MB
from tests.browser import axe_violations, browser, describe, sign_in  # noqa: F401 - fixture
from tests.conftest import free_port, settings_for
from tests.http import PASSWORD, add_staff, serve_app, staff_headers
from tests.test_api import wait_for_record
from worker.main import build_worker

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

ALWAYS = {"x-content-type-options": "nosniff", "x-frame-options": "DENY",
          "permissions-policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()"}


def quiet_settings(db_url: str, **extra):
    """Settings whose Temporal address refuses at once: these pages read the database only."""
    return settings_for(db_url, "headers", temporal_address=f"127.0.0.1:{free_port()}", **extra)


def asgi_client(app, **headers) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app, raise_app_exceptions=False),
                             base_url="http://testserver", headers=headers)


def check_headers(r: httpx.Response, *, cacheable: bool = False, referrer: str = "same-origin",
                  csp: str | None = None) -> None:
    what = f"{r.request.method} {r.request.url.path} ({r.status_code})"
    for name, value in ALWAYS.items():
        assert r.headers.get(name) == value, (what, name, r.headers.get(name))
    assert r.headers.get("referrer-policy") == referrer, what
    policy = r.headers.get("content-security-policy", "")
    if csp is not None:
        assert policy == csp, (what, policy)
    else:
        for part in ("default-src 'self'", "frame-ancestors 'none'", "base-uri 'self'",
                     "form-action 'self'", "object-src 'none'"):
            assert part in policy, (what, policy)
        assert "unsafe-inline" not in policy, (what, policy)
    if cacheable:
        assert "no-store" not in r.headers.get("cache-control", ""), what
    else:
        assert "no-store" in r.headers.get("cache-control", ""), what
    assert "strict-transport-security" not in r.headers, what  # served over plain HTTP


async def test_every_kind_of_response_carries_the_security_headers(sqlite_url):
    settings = quiet_settings(sqlite_url)
    app = create_app(settings)

    async def boom(_request):
        raise RuntimeError("a fault in a route")

    app.add_route("/api/boom", boom)  # a server error, answered by Starlette's last resort
    admin = staff_headers(sqlite_url, "admin")
    async with asgi_client(app) as anyone, asgi_client(app, **admin) as staff:
        for client, path, status in [
            (staff, "/", 200), (staff, "/cases", 200), (staff, "/plans", 200),
            (staff, "/statistics", 200), (staff, "/assessments/new", 200),
            (staff, "/plans/NO-SUCH-PLAN", 404), (staff, "/account", 200),
            (anyone, "/", 303), (anyone, "/sign-in", 200), (anyone, "/summary", 200),
            (anyone, "/no-such-page", 404),
            (staff, "/api/cases", 200), (staff, "/api/plans/NO-SUCH-PLAN", 404),
            (anyone, "/api/cases", 401), (anyone, "/healthz", 503),  # no Temporal here: it says so
            (anyone, "/openapi.json", 200), (anyone, "/api/boom", 500),
        ]:
            r = await client.get(path)
            assert r.status_code == status, (path, r.status_code, r.text[:300])
            check_headers(r)
        # the professionals' pages: their path carries the token, so no referrer at all
        r = await anyone.get("/advice/not-a-real-link")
        assert r.status_code == 404
        check_headers(r, referrer="no-referrer")
        # a form sent, and refused
        r = await anyone.post("/sign-in", data={"email": "x@council.example", "password": "x"})
        check_headers(r)
        # static files may be cached; the API's documentation pages keep their own policy
        for path in ("/static/ehc.css", "/govuk/govuk-frontend.min.js", "/assets/manifest.json",
                     "/docs-assets/swagger-ui/swagger-ui.css"):
            r = await anyone.get(path)
            assert r.status_code == 200, path
            check_headers(r, cacheable=True)
        for path in ("/docs", "/redoc"):
            r = await anyone.get(path)
            assert r.status_code == 200, path
            check_headers(r, csp=DOCS_CSP)


async def test_hsts_only_when_served_over_https(sqlite_url):
    for settings, expected in [
        (quiet_settings(sqlite_url, public_base_url="https://ehc.council.example"), True),
        (quiet_settings(sqlite_url, cookie_secure=True), True),
        (quiet_settings(sqlite_url), False),
    ]:
        async with asgi_client(create_app(settings)) as http:
            r = await http.get("/sign-in")
        assert ("strict-transport-security" in r.headers) is expected, settings
        if expected:
            assert r.headers["strict-transport-security"].startswith("max-age=")


def test_the_policy_allows_the_one_inline_script_of_the_govuk_template():
    # GOV.UK Frontend's page template marks the page as having JavaScript in one inline line.
    assert inline_script_hashes() == ["'sha256-GUQ5ad8JK5KmEWmROf3LZd9ge94daqNvd8xy9YS1iDw='"]


# --- body size ----------------------------------------------------------------------------------


@asynccontextmanager
async def served(app):
    """``app`` over real HTTP: uvicorn on a free port."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(),
                                           log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            yield http
    finally:
        server.should_exit = True
        await task


async def raw_request(http: httpx.AsyncClient, head: str) -> bytes:
    """Only a request's head, claiming a body that is never sent: the whole answer (the
    server closes the connection after a refusal)."""
    host, port = http.base_url.host, http.base_url.port
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(head.format(host=host).encode())
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    return answer


def chunks(total: int, size: int = 64 * 1024):
    """A body sent in chunks without a Content-Length (Transfer-Encoding: chunked)."""
    async def gen():
        sent = 0
        while sent < total:
            yield b" " * min(size, total - sent)
            sent += size
    return gen()


def test_each_route_family_has_its_limit():
    assert body_limit("/api/assessments") == body_limit("/cases/EHC-1/act/x") == FORM_LIMIT
    assert body_limit("/advice/some-token") > 50 * MB  # the documents a professional attaches
    assert body_limit("/api/imports/plans") > 64 * MB  # a plans CSV


async def test_bodies_too_large_are_refused_before_sign_in_or_reading(sqlite_url):
    settings = quiet_settings(sqlite_url)
    token = staff_headers(sqlite_url, "caseworker")
    async with served(create_app(settings)) as http:
        big = b"{" + b" " * (2 * MB) + b"}"
        # Too large by its Content-Length: 413 before the missing sign-in is even noticed.
        r = await http.post("/api/assessments", content=big,
                            headers={"Content-Type": "application/json"})
        assert r.status_code == 413, r.text
        body = r.json()
        assert body["code"] == "too_large" and "1 MB" in body["detail"], body
        check_headers(r)
        # The same body within the limit is read as usual (then refused for who is asking).
        r = await http.post("/api/assessments", content=b"{}",
                            headers={"Content-Type": "application/json"})
        assert r.status_code == 401
        # Streamed without a Content-Length, signed in: cut off as it passes the limit.
        r = await http.post("/api/assessments", content=chunks(3 * MB),
                            headers={"Content-Type": "application/json", **token})
        assert r.status_code == 413 and r.json()["code"] == "too_large", r.text
        # A page's form: a GOV.UK page that says what to do.
        for body in (b"email=" + b"a" * (2 * MB), chunks(2 * MB)):
            r = await http.post("/sign-in", content=body,
                                headers={"Content-Type": "application/x-www-form-urlencoded"})
            assert r.status_code == 413, r.text[:300]
            assert "text/html" in r.headers["content-type"]
            assert "What you sent is too large" in r.text and "govuk-template" in r.text
            check_headers(r)
        # A plans CSV may be larger than a form (its own limit), but not without end.
        csv = b"plan_reference\n" + b"x" * (2 * MB)
        r = await http.post("/api/imports/plans", files={"file": ("plans.csv", csv)})
        assert r.status_code == 401  # read, then refused for who is asking
        head = await raw_request(http, (
            "POST /api/imports/plans HTTP/1.1\r\nHost: {host}\r\nContent-Type: multipart/"
            f"form-data; boundary=x\r\nContent-Length: {10 ** 9}\r\n\r\n"))
        assert head.startswith(b"HTTP/1.1 413") and b'"code":"too_large"' in head, head
        # The professionals' page: its own page, before the link is looked at.
        answer = await raw_request(http, (
            "POST /advice/not-a-real-link HTTP/1.1\r\nHost: {host}\r\nContent-Type: "
            f"multipart/form-data; boundary=x\r\nContent-Length: {10 ** 9}\r\n\r\n"))
        assert answer.startswith(b"HTTP/1.1 413"), answer[:300]
        assert b"What you sent is too large" in answer
        assert b"referrer-policy: no-referrer" in answer.lower()
        # and the server still answers
        assert (await http.get("/sign-in")).status_code == 200


# --- in a real browser ----------------------------------------------------------------------------


async def test_pages_run_under_their_policy_with_no_violation(
        browser, dev_env, sqlite_url, executor):  # noqa: F811
    """Chromium reports every Content-Security-Policy violation to the console: the sign-in
    page, the start form, a case page and a page with charts have none, GOV.UK Frontend's
    JavaScript starts, and axe-core finds nothing."""
    settings = settings_for(sqlite_url, f"csp-{uuid.uuid4().hex[:8]}")
    add_staff(sqlite_url, "manager", email="morgan@council.example", name="Morgan Jones")
    async with build_worker(dev_env.client, settings, executor):
        async with serve_app(settings, dev_env.client, role="caseworker") as api:
            r = await api.post("/api/assessments", json={
                "child": {"given_name": "Sam", "family_name": f"Example{uuid.uuid4().hex[:6]}",
                          "date_of_birth": "2016-09-01"},
                "request_date": "2026-01-05", "request_source": "parent"})
            assert r.status_code == 201, r.text
            ref = r.json()["reference"]
            await wait_for_record(sqlite_url, ref)
            context = await browser.new_context(base_url=str(api.base_url).rstrip("/"))
            context.set_default_timeout(30_000)
            page = await context.new_page()
            console: list[str] = []
            page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
            await page.add_init_script(
                "document.addEventListener('securitypolicyviolation', e => "
                "console.error('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI))")
            problems: list[str] = []

            async def check(what: str) -> None:
                await page.wait_for_load_state("networkidle")
                # The inline line (allowed by its hash) marks the page; the module starts
                # each component, which marks it data-<module>-init (the header has no
                # navigation of its own, so nothing of it to start).
                not_started = await page.evaluate(
                    "() => [document.body.classList.contains('govuk-frontend-supported') ? "
                    "null : 'govuk-frontend-supported', ...[...document.querySelectorAll("
                    "'[data-module]:not([data-module=govuk-header])')].filter(el => !el."
                    "hasAttribute('data-' + el.dataset.module + '-init')).map(el => "
                    "el.dataset.module)].filter(Boolean)")
                started = await page.locator("[data-govuk-service-navigation-init]").count()
                if not_started or not started:
                    problems.append(f"{what}: GOV.UK Frontend's JavaScript did not start: "
                                    f"{not_started or 'the service navigation'}")
                bad = [m for m in console if "Content Security Policy" in m or "CSP" in m]
                problems.extend(f"{what}: {m}" for m in bad)
                console.clear()
                if violations := await axe_violations(page):
                    problems.append(f"{what}:\n{describe(violations)}")

            await page.goto("/sign-in")
            await check("the sign-in page")
            await sign_in(page, "morgan@council.example", PASSWORD)
            await page.goto("/assessments/new")
            await check("the start form")
            await page.goto(f"/cases/{ref}")
            await check("a case page")
            await page.goto("/statistics")
            assert await page.locator("svg[role=img]").count() > 0, "no chart on the page"
            await check("the statistics, with charts")
            await context.close()
    assert not problems, "\n".join(problems)
