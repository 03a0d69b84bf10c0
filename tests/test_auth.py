"""Sign-in, roles and CSRF over real HTTP: every route of the app refuses the wrong people, a
browser signs in and out with a session cookie, every form needs its session's CSRF token,
and API tokens, lock-outs, idle sessions and deactivated accounts behave."""

from __future__ import annotations

import re
import uuid
from contextlib import asynccontextmanager
from datetime import timedelta

import httpx
import pytest
from sqlmodel import select

from api.app import create_app
from api.auth import POLICY, PUBLIC, SESSION_COOKIE, required_role, safe_next
from store import tables as t
from store.db import session_for
from services.staff import LOCK_MINUTES, MAX_FAILURES, ROLES, digest, now
from tests.conftest import free_port, settings_for
from tests.http import PASSWORD, add_staff, serve_app

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@asynccontextmanager
async def web(db_url: str, **extra):
    settings = settings_for(db_url, "auth", temporal_address=f"127.0.0.1:{free_port()}", **extra)
    async with serve_app(settings, None, role=None) as anonymous:
        yield anonymous


def client_like(http: httpx.AsyncClient, **kw) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=http.base_url, timeout=30, **kw)


async def sign_in(http: httpx.AsyncClient, email: str, password: str = PASSWORD,
                  next_url: str = "/") -> httpx.Response:
    form = await http.get("/sign-in", params={"next": next_url})
    token = re.search(r'name="sign_in_token" value="([^"]+)"', form.text).group(1)
    return await http.post("/sign-in", data={"email": email, "password": password,
                                             "sign_in_token": token, "next": next_url})


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


# --- the policy -----------------------------------------------------------------------------------


def all_routes():
    """(method, path template) of every route of the app, as FastAPI will match them."""
    app = create_app(settings_for("sqlite://", "routes"))
    out = []
    for entry in app.routes:
        candidates = entry.effective_candidates() if hasattr(entry, "effective_candidates") \
            else [entry]
        for route in candidates:
            for method in sorted(getattr(route, "methods", None) or ()):
                if method != "HEAD":
                    out.append((method, route.path_format))
    return out


DOCS = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}


def test_only_the_sign_in_the_professionals_and_the_public_figures_are_open():
    routes = all_routes()
    assert len(routes) > 90
    public = sorted({p for m, p in routes if required_role(m, p) is PUBLIC} - DOCS)
    for path in public:
        assert path.startswith(("/sign-in", "/sign-out", "/healthz", "/advice", "/summary",
                                "/api/public")), path
    # The professionals' page and sign-in stay open; staff pages do not.
    assert "/advice/{token}" in public and "/sign-in" in public
    assert required_role("GET", "/cases/{reference}") == "caseworker"
    assert required_role("GET", "/late") == "manager"
    assert required_role("POST", "/directory/services/new") == "manager"
    assert required_role("GET", "/directory") == "caseworker"
    assert required_role("GET", "/admin/users") == "admin"
    assert required_role("POST", "/api/imports/plans") == "admin"
    assert required_role("GET", "/adqaz") == "caseworker"  # a prefix is a whole segment
    assert {role for _, _, role in POLICY} <= {PUBLIC, *ROLES}


def sample(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "X1", path)


async def test_every_route_refuses_whoever_may_not_use_it(sqlite_url):
    """Each route of the app, called as nobody, as a caseworker, a manager and an
    administrator: refused (401 / sign-in page / 403) exactly when the policy says so."""
    tokens = {role: add_staff(sqlite_url, role)[1] for role in ROLES}
    routes = [(m, p) for m, p in all_routes() if p not in DOCS]
    async with web(sqlite_url) as anonymous:
        clients = {role: client_like(anonymous, headers={"Authorization": f"Bearer {tok}"})
                   for role, tok in tokens.items()}
        try:
            for method, path in routes:
                need = required_role(method, path)
                url = sample(path)
                r = await anonymous.request(method, url)
                if need is PUBLIC:  # open (a form may still refuse a missing token of its own)
                    # (/healthz says 503 here, truthfully: this app has no Temporal)
                    assert r.status_code < 500 or path == "/healthz", (method, path, r.status_code)
                    assert not r.headers.get("location", "").startswith("/sign-in?next="), path
                    if r.status_code == 401:
                        assert "Sign in first" not in r.text, path
                    continue
                if path.startswith("/api/"):
                    assert r.status_code == 401, (method, path, r.status_code, r.text[:200])
                    assert "Sign in first" in r.json()["detail"]
                else:
                    assert r.status_code == 303, (method, path, r.status_code)
                    assert r.headers["location"].startswith("/sign-in?next=")
                for role, http in clients.items():
                    r = await http.request(method, url)
                    allowed = ROLES.index(role) >= ROLES.index(need)
                    if allowed:
                        assert r.status_code not in (401, 403), (role, method, path,
                                                                 r.status_code, r.text[:300])
                        assert r.status_code < 500 or r.status_code == 503, (
                            role, method, path, r.status_code, r.text[:300])
                    else:
                        assert r.status_code == 403, (role, method, path, r.status_code)
        finally:
            for http in clients.values():
                await http.aclose()


# --- a browser: sign in, forms, sign out ---------------------------------------------------------


async def test_a_browser_signs_in_uses_forms_with_their_token_and_signs_out(sqlite_url):
    user_id, _ = add_staff(sqlite_url, "manager", email="m.jones@council.example",
                           name="Morgan Jones")
    async with web(sqlite_url) as anonymous:
        async with client_like(anonymous) as browser:
            r = await browser.get("/directory/services/new")
            assert r.status_code == 303
            assert r.headers["location"] == "/sign-in?next=%2Fdirectory%2Fservices%2Fnew"

            r = await sign_in(browser, "M.Jones@Council.example", next_url="/directory/services/new")
            assert r.status_code == 303 and r.headers["location"] == "/directory/services/new"
            cookie = next(c for c in r.headers.get_list("set-cookie")
                          if c.startswith(SESSION_COOKIE + "="))
            assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
            assert "Secure" not in cookie  # http://localhost: no HTTPS here
            token = browser.cookies[SESSION_COOKIE]
            with session_for(sqlite_url) as s:  # only the token's hash is kept
                assert s.get(t.StaffSession, digest(token)).user_id == user_id
                assert s.get(t.StaffSession, token) is None

            page = await browser.get("/directory/services/new")
            assert page.status_code == 200 and "Morgan Jones" in page.text
            csrf = csrf_of(page.text)
            form = {"name": f"Hill Top School {uuid.uuid4().hex[:4]}", "agency": "education"}
            r = await browser.post("/directory/services/new", data=form)
            assert r.status_code == 403 and "did not come from this service" in r.text
            r = await browser.post("/directory/services/new",
                                   data={**form, "csrf_token": "not-the-token"})
            assert r.status_code == 403
            with session_for(sqlite_url) as s:
                assert s.exec(select(t.Service).where(t.Service.name == form["name"])).first() \
                    is None  # refused before anything was written
            r = await browser.post("/directory/services/new", data={**form, "csrf_token": csrf})
            assert r.status_code == 303, r.text

            # The JSON API with the session cookie needs the token as a header.
            body = {"name": f"Clinic {uuid.uuid4().hex[:4]}", "agency": "health"}
            r = await browser.post("/api/directory/services", json=body)
            assert r.status_code == 403
            r = await browser.post("/api/directory/services", json=body,
                                   headers={"X-CSRF-Token": csrf})
            assert r.status_code == 201, r.text
            me = (await browser.get("/api/me")).json()
            assert (me["email"], me["role"], me["signed_in_by"]) == (
                "m.jones@council.example", "manager", "session")

            # Signing out needs the token too, ends the session, and the cookie opens nothing.
            assert (await browser.post("/sign-out")).status_code == 403
            r = await browser.post("/sign-out", data={"csrf_token": csrf})
            assert r.status_code == 303 and r.headers["location"] == "/sign-in?notice=signed-out"
            with session_for(sqlite_url) as s:
                assert s.get(t.StaffSession, digest(token)) is None
            browser.cookies.set(SESSION_COOKIE, token)
            assert (await browser.get("/directory")).status_code == 303


async def test_the_session_cookie_is_secure_behind_https(sqlite_url):
    add_staff(sqlite_url, "caseworker", email="c@council.example")
    async with web(sqlite_url, public_base_url="https://ehc.council.example") as anonymous:
        form = await anonymous.get("/sign-in")
        first = form.headers["set-cookie"]
        assert first.startswith("ehc_sign_in=") and "Secure" in first
        # The test talks plain HTTP, so the client keeps Secure cookies to itself: send it.
        token = re.search(r'name="sign_in_token" value="([^"]+)"', form.text).group(1)
        r = await anonymous.post("/sign-in", data={"email": "c@council.example",
                                                   "password": PASSWORD, "sign_in_token": token},
                                 headers={"Cookie": f"ehc_sign_in={token}"})
        assert r.status_code == 303
        cookie = next(c for c in r.headers.get_list("set-cookie")
                      if c.startswith(SESSION_COOKIE + "="))
        assert "Secure" in cookie and "HttpOnly" in cookie


async def test_wrong_passwords_lock_the_account_and_say_nothing_about_who_exists(sqlite_url):
    add_staff(sqlite_url, "caseworker", email="k.lee@council.example")
    async with web(sqlite_url) as anonymous:
        unknown = await sign_in(anonymous, "nobody@council.example")
        wrong = await sign_in(anonymous, "k.lee@council.example", "not my password at all")
        assert unknown.status_code == wrong.status_code == 401
        assert "Enter a correct email address and password" in unknown.text
        assert "Enter a correct email address and password" in wrong.text
        for _ in range(MAX_FAILURES - 1):
            await sign_in(anonymous, "k.lee@council.example", "still not my password")
        locked = await sign_in(anonymous, "k.lee@council.example")  # the right one, too late
        assert locked.status_code == 401 and "locked" in locked.text
        assert SESSION_COOKIE not in anonymous.cookies
        with session_for(sqlite_url) as s:
            user = s.exec(select(t.StaffUser).where(t.StaffUser.email == "k.lee@council.example")
                          ).one()
            assert user.locked_until is not None
            user.locked_until = now() - timedelta(minutes=1)  # LOCK_MINUTES later
            s.add(user)
            s.commit()
        assert LOCK_MINUTES >= 10
        assert (await sign_in(anonymous, "k.lee@council.example")).status_code == 303


async def test_the_sign_in_form_needs_its_own_token_and_goes_only_to_this_site(sqlite_url):
    add_staff(sqlite_url, "caseworker", email="n@council.example")
    async with web(sqlite_url) as anonymous:
        r = await anonymous.post("/sign-in", data={"email": "n@council.example",
                                                   "password": PASSWORD, "sign_in_token": "x"})
        assert r.status_code == 403 and "This form has expired" in r.text
        r = await sign_in(anonymous, "n@council.example", next_url="//evil.example/steal")
        assert r.status_code == 303 and r.headers["location"] == "/"
    for bad in ("https://evil.example/", "//evil.example", "/\\evil.example", "javascript:x",
                ""):
        assert safe_next(bad) == "/"
    assert safe_next("/cases/EHC-1?tab=x") == "/cases/EHC-1?tab=x"


async def test_idle_and_old_sessions_end(sqlite_url):
    add_staff(sqlite_url, "caseworker", email="idle@council.example")
    async with web(sqlite_url, session_idle_minutes=30) as anonymous:
        async with client_like(anonymous) as browser:
            await sign_in(browser, "idle@council.example")
            assert (await browser.get("/")).status_code == 200
            token = browser.cookies[SESSION_COOKIE]
            with session_for(sqlite_url) as s:
                row = s.get(t.StaffSession, digest(token))
                row.last_seen_at = now() - timedelta(minutes=31)
                s.add(row)
                s.commit()
            assert (await browser.get("/")).status_code == 303
            with session_for(sqlite_url) as s:  # the expired session is gone
                assert s.get(t.StaffSession, digest(token)) is None

            await sign_in(browser, "idle@council.example")
            token = browser.cookies[SESSION_COOKIE]
            with session_for(sqlite_url) as s:
                row = s.get(t.StaffSession, digest(token))
                row.expires_at = now() - timedelta(seconds=1)
                s.add(row)
                s.commit()
            assert (await browser.get("/")).status_code == 303


async def test_api_tokens_act_as_their_account_until_revoked(sqlite_url):
    user_id, token = add_staff(sqlite_url, "caseworker")
    async with web(sqlite_url) as anonymous:
        async with client_like(anonymous, headers={"Authorization": f"Bearer {token}"}) as bi:
            me = (await bi.get("/api/me")).json()
            assert (me["id"], me["signed_in_by"]) == (user_id, "token")
            assert (await bi.get("/api/statistics/timeliness")).status_code in (403, 404)
            with session_for(sqlite_url) as s:
                row = s.exec(select(t.ApiToken).where(t.ApiToken.user_id == user_id)).one()
                assert row.token_hash == digest(token) and row.last_used_at is not None
                row.revoked_at = now()
                s.add(row)
                s.commit()
            r = await bi.get("/api/me")
            assert r.status_code == 401
        async with client_like(anonymous, headers={"Authorization": "Bearer ehc_forged"}) as x:
            assert (await x.get("/api/me")).status_code == 401


async def test_an_account_made_and_switched_off_by_an_administrator(sqlite_url):
    add_staff(sqlite_url, "admin", email="root@council.example")
    async with web(sqlite_url) as anonymous:
        async with client_like(anonymous) as admin:
            await sign_in(admin, "root@council.example")
            page = await admin.get("/admin/users/new")
            csrf = csrf_of(page.text)
            r = await admin.post("/admin/users/new", data={
                "name": "Jo Bloggs", "email": "jo@council.example", "role": "caseworker",
                "password": "short", "csrf_token": csrf})
            assert r.status_code == 422 and "at least 12 characters" in r.text
            r = await admin.post("/admin/users/new", data={
                "name": "Jo Bloggs", "email": "Jo@Council.example", "role": "caseworker",
                "password": "a password that is long", "csrf_token": csrf})
            assert r.status_code == 303
            r = await admin.post("/admin/users/new", data={
                "name": "Jo Again", "email": "jo@council.example", "role": "caseworker",
                "password": "a password that is long", "csrf_token": csrf})
            assert r.status_code == 409 and "already an account" in r.text
            with session_for(sqlite_url) as s:
                jo = s.exec(select(t.StaffUser).where(t.StaffUser.email == "jo@council.example")
                            ).one()
                root = s.exec(select(t.StaffUser).where(
                    t.StaffUser.email == "root@council.example")).one()

            async with client_like(anonymous) as jo_browser:
                await sign_in(jo_browser, "jo@council.example", "a password that is long")
                assert (await jo_browser.get("/")).status_code == 200
                assert (await jo_browser.get("/admin/users")).status_code == 403

                # The only administrator cannot demote themselves.
                r = await admin.post(f"/admin/users/{root.id}", data={
                    "name": root.name, "role": "manager", "active": "yes", "csrf_token": csrf})
                assert r.status_code == 409 and "only active administrator" in r.text
                # Switching Jo off signs them out at once.
                r = await admin.post(f"/admin/users/{jo.id}", data={
                    "name": "Jo Bloggs", "role": "caseworker", "csrf_token": csrf})
                assert r.status_code == 303
                assert (await jo_browser.get("/")).status_code == 303
                assert (await sign_in(jo_browser, "jo@council.example",
                                      "a password that is long")).status_code == 401


async def test_changing_your_password_ends_your_other_sessions(sqlite_url):
    add_staff(sqlite_url, "caseworker", email="pw@council.example")
    async with web(sqlite_url) as anonymous:
        async with client_like(anonymous) as laptop, client_like(anonymous) as phone:
            await sign_in(laptop, "pw@council.example")
            await sign_in(phone, "pw@council.example")
            csrf = csrf_of((await laptop.get("/account")).text)
            r = await laptop.post("/account/password", data={
                "current_password": "wrong", "password": "a brand new password",
                "csrf_token": csrf})
            assert r.status_code == 422 and "not right" in r.text
            r = await laptop.post("/account/password", data={
                "current_password": PASSWORD, "password": "a brand new password",
                "csrf_token": csrf})
            assert r.status_code == 303
            assert (await laptop.get("/account")).status_code == 200
            assert (await phone.get("/account")).status_code == 303
            r = await laptop.post("/account/tokens", data={"name": "BI dashboard",
                                                           "csrf_token": csrf})
            assert r.status_code == 201
            made = re.search(r'id="new-token">(ehc_[^<]+)<', r.text).group(1)
            async with client_like(anonymous, headers={"Authorization": f"Bearer {made}"}) as bi:
                assert (await bi.get("/api/me")).json()["email"] == "pw@council.example"


def test_the_ehc_users_command(sqlite_url):
    """The first administrator of a new system, from the command line."""
    import subprocess

    from tests.test_cli import EHC, ROOT

    def ehc(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run([EHC, "users", *args, "--url", sqlite_url], input=stdin,
                              capture_output=True, text=True, cwd=ROOT, timeout=60)

    short = ehc("add", "--email", "first@council.example", "--name", "First Admin", "--role",
                "admin", "--password-stdin", stdin="too short\n")
    assert short.returncode == 2 and "at least 12 characters" in short.stderr
    made = ehc("add", "--email", "First@Council.example", "--name", "First Admin", "--role",
               "admin", "--password-stdin", stdin=f"{PASSWORD}\n")
    assert made.returncode == 0 and "added admin first@council.example" in made.stdout
    again = ehc("add", "--email", "first@council.example", "--name", "Again", "--role",
                "admin", "--password-stdin", stdin=f"{PASSWORD}\n")
    assert again.returncode == 2 and "already an account" in again.stderr
    listed = ehc("list")
    assert "admin" in listed.stdout and "first@council.example" in listed.stdout
    token = ehc("token", "first@council.example", "--name", "script")
    assert token.returncode == 0 and token.stdout.startswith("ehc_")
    with session_for(sqlite_url) as s:
        row = s.exec(select(t.ApiToken).where(t.ApiToken.name == "script")).one()
        assert row.token_hash == digest(token.stdout.strip())
        assert PASSWORD not in (s.exec(select(t.StaffUser)).one().password_hash)
    missing = ehc("token", "nobody@council.example", "--name", "x")
    assert missing.returncode == 2 and "no active account" in missing.stderr
