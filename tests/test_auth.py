"""Sign-in, roles and CSRF over real HTTP: every route of the app refuses the wrong people, a
browser signs in and out with a session cookie, every form needs its session's CSRF token,
and API tokens, lock-outs, idle sessions and deactivated accounts behave."""

from __future__ import annotations

import re
import statistics
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import timedelta

import httpx
import pytest
from argon2 import PasswordHasher
from sqlmodel import select

from api.app import create_app
from api import auth
from api.auth import (POLICY, PUBLIC, PUBLIC_MOUNTS, SESSION_COOKIE, PolicyError, _matches,
                      app_routes, check_policy, required_role, rules_for, safe_next)
from store import tables as t
from store.db import session_for
from services import staff
from services.staff import LOCK_MINUTES, MAX_FAILURES, ROLES, SIGN_IN_FAILED, digest, now
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
    return [(m, p) for m, p, _ in app_routes(app) if m != "*"]


DOCS = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}

# Who may use the routes that matter most, as the people running the service expect: the table
# in api/auth.py must say the same (a wrong path there once let a caseworker bring every
# phase-transfer review forward).
EXPECTED = {
    ("POST", "/api/phase-transfers/bring-forward"): "manager",
    ("POST", "/phase-transfers/bring-forward"): "manager",
    ("PUT", "/api/cases/{reference}/caseworker"): "manager",
    ("PUT", "/api/plans/{reference}/caseworker"): "manager",
    ("GET", "/late"): "manager",
    ("GET", "/statistics"): "manager",
    ("GET", "/api/statistics/timeliness"): "manager",
    ("GET", "/api/exports/sen2"): "manager",
    ("GET", "/api/worklist/{which}.csv"): "manager",
    ("GET", "/api/reports/outcomes"): "manager",
    ("GET", "/adqa/digest"): "manager",
    ("GET", "/api/adqa/digest"): "manager",
    ("POST", "/directory/services/new"): "manager",
    ("POST", "/api/directory/services"): "manager",
    ("PATCH", "/api/directory/contacts/{contact_id}"): "manager",
    ("GET", "/admin/users"): "admin",
    ("POST", "/admin/users/{user_id}/password"): "admin",
    ("GET", "/api/admin/users"): "admin",
    ("PATCH", "/api/admin/users/{user_id}"): "admin",
    ("POST", "/api/imports/plans"): "admin",
    ("GET", "/sign-in"): PUBLIC,
    ("POST", "/sign-in"): PUBLIC,
    ("POST", "/sign-out"): PUBLIC,
    ("GET", "/advice/{token}"): PUBLIC,
    ("POST", "/advice/{token}"): PUBLIC,
    ("GET", "/summary"): PUBLIC,
    ("GET", "/api/public/summary"): PUBLIC,
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/cases/{reference}"): "caseworker",
    ("GET", "/api/cases/{reference}"): "caseworker",
    ("POST", "/cases/{reference}/act/{action}"): "caseworker",
    ("GET", "/directory"): "caseworker",
    ("GET", "/api/phase-transfers"): "caseworker",
}


def test_every_route_has_exactly_one_rule_and_every_rule_a_route():
    app = create_app(settings_for("sqlite://", "routes"))
    routes = app_routes(app)
    assert len(routes) > 90
    for method, path, _ in routes:
        if method == "*":  # a mount: static files, named as open to anyone
            assert path in PUBLIC_MOUNTS, path
            continue
        assert len(rules_for(method, path)) == 1, (method, path, rules_for(method, path))
    for rule, methods, _ in POLICY:  # no rule names a route that does not exist
        assert any(_matches(rule, methods, m, p) for m, p, _ in routes if m != "*"), rule
    assert check_policy(app) == {(m, p): required_role(m, p) for m, p, _ in routes if m != "*"}
    for (method, path), role in EXPECTED.items():
        assert (method, path) in {(m, p) for m, p, _ in routes}, (method, path)
        assert required_role(method, path) == role, (method, path)
    public = sorted({p for m, p, _ in routes if m != "*" and required_role(m, p) is PUBLIC}
                    - DOCS)
    assert public == ["/advice/{token}", "/advice/{token}/delay", "/api/public/summary",
                      "/healthz", "/sign-in", "/sign-in/council", "/sign-in/council/callback",
                      "/sign-in/council/signed-out", "/sign-out", "/summary"]
    assert {role for _, _, role in POLICY} <= {PUBLIC, *ROLES}
    with pytest.raises(LookupError):
        required_role("GET", "/adqaz")  # not a route: no rule, no default


def test_the_app_does_not_start_when_the_table_and_the_routes_disagree(monkeypatch):
    """A rule for a path that does not exist, a route with no rule, a route with two, a
    public prefix: each stops the app, and the message says what to write."""
    policy = [r for r in POLICY if r[0] != "/api/phase-transfers/bring-forward"]
    policy += [("/api/cohort/bring-forward", None, "manager"),
               ("/account/*", None, "manager"), ("/advice/*", None, PUBLIC)]
    monkeypatch.setattr(auth, "POLICY", policy)
    with pytest.raises(PolicyError) as error:
        create_app(settings_for("sqlite://", "routes"))
    message = str(error.value)
    assert ('("/api/cohort/bring-forward", ANY, \'manager\') matches no route of the app'
            in message)
    assert ('No rule names POST /api/phase-transfers/bring-forward: add a line to POLICY in '
            'api/auth.py, such as ("/api/phase-transfers/bring-forward", ANY, ') in message
    assert "POST /account/password matches 2 rules" in message
    assert '("/advice/*", ANY, PUBLIC): a prefix may only close' in message


async def test_only_managers_bring_phase_transfer_reviews_forward(sqlite_url):
    tokens = {role: add_staff(sqlite_url, role)[1] for role in ("caseworker", "manager")}
    async with web(sqlite_url) as anonymous:
        for role, token in tokens.items():
            r = await anonymous.post("/api/phase-transfers/bring-forward",
                                     json={"year": 2027, "dry_run": True},
                                     headers={"Authorization": f"Bearer {token}"})
            if role == "caseworker":
                assert r.status_code == 403, r.text
                assert r.json()["code"] == "forbidden"
                assert "needs the manager role" in r.json()["detail"]
            else:
                assert r.status_code == 200, r.text


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
        for _ in range(MAX_FAILURES - 1):
            await sign_in(anonymous, "k.lee@council.example", "still not my password")
        locked = await sign_in(anonymous, "k.lee@council.example")  # the right one, too late
        # One answer for all three: it never tells whether the address has an account.
        for answer in (unknown, wrong, locked):
            assert answer.status_code == 401
            assert SIGN_IN_FAILED in answer.text.replace("&#39;", "'")
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


GUESSES = 40


def test_parallel_guesses_cannot_race_past_the_lock(db_url, monkeypatch):
    """Forty wrong passwords at once, on forty connections (a SQLite file, then PostgreSQL):
    only MAX_FAILURES of them are checked against the account's hash before it locks, and then
    the right password is refused, unchecked, until the lock ends. (argon2 runs with its
    cheapest parameters here, so that forty tries take no time; the next test uses the real
    ones.)"""
    cheap = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    monkeypatch.setattr(staff, "_hasher", cheap)
    monkeypatch.setattr(staff, "_DUMMY_HASH", cheap.hash("a dummy"))
    checked: list[str] = []  # every password really checked against the account's own hash
    real_check = staff.verify_password

    def counted(user, password):
        checked.append(password)
        return real_check(user, password)

    monkeypatch.setattr(staff, "verify_password", counted)
    email = "race@council.example"
    user_id, _ = add_staff(db_url, "caseworker", email=email)
    together = threading.Barrier(GUESSES)

    def guess(i: int) -> str:
        with session_for(db_url) as s:
            together.wait(timeout=60)
            try:
                staff.authenticate_password(s, email, f"guess number {i}")
            except staff.SignInFailed as exc:
                return exc.message
            return "signed in"

    with ThreadPoolExecutor(GUESSES) as pool:
        answers = list(pool.map(guess, range(GUESSES)))
    assert answers == [SIGN_IN_FAILED] * GUESSES
    assert len(checked) == MAX_FAILURES
    with session_for(db_url) as s:
        with pytest.raises(staff.SignInFailed):
            staff.authenticate_password(s, email, PASSWORD)
        assert len(checked) == MAX_FAILURES  # refused without a look at the password
        user = s.get(t.StaffUser, user_id)
        assert staff._aware(user.locked_until) > now() + timedelta(minutes=LOCK_MINUTES - 1)
        user.locked_until = now() - timedelta(seconds=1)  # LOCK_MINUTES later
        s.add(user)
        s.commit()
    with session_for(db_url) as s:
        assert staff.authenticate_password(s, email, PASSWORD).id == user_id
        user = s.get(t.StaffUser, user_id)
        assert (user.failed_sign_ins, user.locked_until) == (0, None)


def test_unknown_locked_and_wrong_take_as_long(sqlite_url):
    """With argon2's real parameters, an unknown address, a locked account and a wrong password
    each cost one argon2 check: the medians of three tries of each are within 3 times of one
    another (a locked account once answered 25 times faster than an unknown address)."""
    add_staff(sqlite_url, "caseworker", email="locked@council.example")
    add_staff(sqlite_url, "caseworker", email="wrong@council.example")
    with session_for(sqlite_url) as s:
        user = s.exec(select(t.StaffUser).where(t.StaffUser.email == "locked@council.example")
                      ).one()
        user.locked_until = now() + timedelta(minutes=LOCK_MINUTES)
        s.add(user)
        s.commit()

    def took(email: str, password: str) -> float:
        with session_for(sqlite_url) as s:
            began = time.perf_counter()
            with pytest.raises(staff.SignInFailed) as refused:
                staff.authenticate_password(s, email, password)
            spent = time.perf_counter() - began
        assert refused.value.message == SIGN_IN_FAILED
        return spent

    times: dict[str, list[float]] = {"unknown": [], "locked": [], "wrong": []}
    for _ in range(3):  # interleaved, so that a busy moment falls on each kind alike
        times["unknown"].append(took("nobody@council.example", PASSWORD))
        times["locked"].append(took("locked@council.example", PASSWORD))
        times["wrong"].append(took("wrong@council.example", "not the password at all"))
    medians = {kind: statistics.median(spent) for kind, spent in times.items()}
    assert max(medians.values()) < 3 * min(medians.values()), medians


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
