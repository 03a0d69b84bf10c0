"""Staff signing in with the council's own accounts, against a real OpenID provider: the
`oidc-provider` package (tests/oidc_provider.mjs) on 127.0.0.1, the app served by uvicorn, and
one httpx client going between them like a browser (the provider's own sign-in and consent
forms are posted to). Authorisation code with PKCE, the ID token verified, just-in-time
accounts with roles from groups, refusals, a replayed answer, and signing out at both ends."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import threading
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlmodel import select

from api.council_sign_in import COUNCIL_COOKIE
from services.council_sign_in import role_for
from services.staff import update_user
from store import tables as t
from store.db import session_for
from tests.conftest import free_port, settings_for
from tests.http import PASSWORD, add_staff, serve_app
from tests.test_auth import sign_in

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.skipif(shutil.which("node") is None,
                       reason="needs Node.js for the OpenID provider (./dev.sh setup)"),
]

PEOPLE = {
    "alice": {"email": "Alice.Able@council.example", "email_verified": True,
              "name": "Alice Able", "groups": ["send-caseworkers", "all-staff"]},
    "maya": {"email": "maya.mann@council.example", "name": "Maya Mann",
             "groups": ["all-staff", "SEND-Managers", "send-caseworkers"]},
    "nobody": {"email": "nobody@council.example", "name": "Noah Body", "groups": ["all-staff"]},
}


class Provider:
    def __init__(self, issuer: str, app_port: int, people: Path) -> None:
        self.issuer, self.app_port, self.people = issuer, app_port, people

    def set_people(self, people: dict) -> None:
        self.people.write_text(json.dumps(people))


@pytest.fixture(scope="module")
def provider(tmp_path_factory):
    port, app_port = free_port(), free_port()
    people = tmp_path_factory.mktemp("oidc") / "people.json"
    people.write_text(json.dumps(PEOPLE))
    proc = subprocess.Popen(
        ["node", str(ROOT / "tests" / "oidc_provider.mjs"), str(port),
         f"http://127.0.0.1:{app_port}", str(people)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ready = threading.Event()
    threading.Thread(target=lambda: proc.stdout.readline() and ready.set(), daemon=True).start()
    if not ready.wait(30):
        proc.kill()
        raise RuntimeError("the OpenID provider did not start: " + proc.stderr.read())
    try:
        yield Provider(f"http://127.0.0.1:{port}", app_port, people)
    finally:
        proc.terminate()
        proc.wait(10)


@asynccontextmanager
async def app(provider: Provider, db_url: str, **extra):
    settings = settings_for(db_url, "oidc", **{
        "temporal_address": f"127.0.0.1:{free_port()}",
        "public_base_url": f"http://127.0.0.1:{provider.app_port}",
        "oidc_issuer": provider.issuer, "oidc_client_id": "ehc-test",
        "oidc_client_secret": "a test client secret, long enough for HS256 use",
        "oidc_caseworker_groups": "send-caseworkers", "oidc_manager_groups": "send-managers",
        "oidc_admin_groups": "send-admins", **extra})
    provider.set_people(PEOPLE)
    async with serve_app(settings, None, role=None, port=provider.app_port) as http:
        http.follow_redirects = True
        yield http


def _form(page: httpx.Response) -> tuple[str, dict[str, str]]:
    """The first form of a page: where it posts and its hidden fields."""
    action = re.search(r'<form[^>]*action="([^"]+)"', page.text).group(1)
    hidden = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
    return str(page.url.join(action.replace("&amp;", "&"))), hidden


async def council_sign_in(http: httpx.AsyncClient, login: str, next_url: str = "/account",
                          meanwhile=lambda: None) -> httpx.Response:
    """Choose the council button, sign in at the provider as ``login`` (after ``meanwhile``),
    consent."""
    r = await http.get("/sign-in/council", params={"next": next_url})
    assert 'name="login"' in r.text, r.text[:500]
    meanwhile()
    action, fields = _form(r)
    r = await http.post(action, data={**fields, "login": login, "password": "any"})
    if 'name="prompt" value="consent"' in r.text:
        action, fields = _form(r)
        r = await http.post(action, data=fields)
    return r


def callback_of(r: httpx.Response) -> str:
    return next(str(h.url) for h in [*r.history, r]
                if h.url.path == "/sign-in/council/callback")


def account(db_url: str, email: str) -> t.StaffUser | None:
    with session_for(db_url) as s:
        return s.exec(select(t.StaffUser).where(t.StaffUser.email == email)).first()


# --- the tests ------------------------------------------------------------------------------------


def test_the_highest_mapped_role_wins():
    settings = settings_for("sqlite://", "oidc", oidc_caseworker_groups="a, b",
                            oidc_manager_groups="M", oidc_admin_groups="z")
    assert role_for(settings=settings, groups=["x", "b"]) == "caseworker"
    assert role_for(settings=settings, groups=["a", "m", "b"]) == "manager"
    assert role_for(settings=settings, groups="z") == "admin"
    assert role_for(settings=settings, groups=["x"]) is None
    assert role_for(settings=settings, groups=None) is None


async def test_first_sign_in_makes_the_account_later_ones_follow_the_claims_and_sign_out(
        provider, db_url):
    async with app(provider, db_url) as http:
        page = await http.get("/sign-in")
        assert "Sign in with your council account" in page.text and 'name="password"' in page.text

        r = await council_sign_in(http, "alice")
        assert r.status_code == 200 and r.url.path == "/account", r.text[:500]
        assert "Alice Able" in r.text
        # no password here to change: the page says so, and a form sent anyway changes nothing
        assert "Change your password" not in r.text
        assert "You sign in with your council account" in html.unescape(r.text)
        token = re.search(r'name="csrf_token" value="([^"]+)"', r.text).group(1)
        sent = await http.post("/account/password", data={
            "csrf_token": token, "current_password": "x", "password": "a-new-password-1"})
        assert sent.status_code == 409 and "no password" in html.unescape(sent.text)
        user = account(db_url, "alice.able@council.example")
        assert user is not None and user.role == "caseworker" and user.name == "Alice Able"
        with session_for(db_url) as s:
            identity = s.exec(select(t.CouncilIdentity)).one()
            assert (identity.issuer, identity.subject, identity.user_id) == \
                (provider.issuer, "alice", user.id)
            assert s.exec(select(t.CouncilSignIn)).all() == []  # used once, gone
        me = (await http.get("/api/me")).json()
        assert (me["role"], me["signed_in_by"]) == ("caseworker", "session")

        # Signing out ends the session here and sends the browser to the provider's end of it.
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', r.text).group(1)
        out = await http.post("/sign-out", data={"csrf_token": csrf}, follow_redirects=False)
        assert out.status_code == 303
        target = urlsplit(out.headers["location"])
        assert f"{target.scheme}://{target.netloc}{target.path}" == f"{provider.issuer}/session/end"
        query = parse_qs(target.query)
        assert query["id_token_hint"][0].count(".") == 2
        assert query["post_logout_redirect_uri"] == [
            f"http://127.0.0.1:{provider.app_port}/sign-in/council/signed-out"]
        assert (await http.get("/api/me")).status_code == 401
        confirm = await http.get(out.headers["location"])  # the provider asks: sign out there?
        action, fields = _form(confirm)
        back = await http.post(action, data={**fields, "logout": "yes"})
        assert back.url.path == "/sign-in" and "You have signed out" in back.text

        # Next time the name and groups come from the provider again: a manager now.
        provider.set_people({**PEOPLE, "alice": {**PEOPLE["alice"], "name": "Alice Baker",
                                                 "groups": ["send-managers"]}})
        r = await council_sign_in(http, "alice")
        assert r.url.path == "/account" and "Alice Baker" in r.text
        user2 = account(db_url, "alice.able@council.example")
        assert (user2.id, user2.role, user2.name) == (user.id, "manager", "Alice Baker")


async def test_a_manager_group_gives_a_manager_and_a_password_account_is_joined(
        provider, sqlite_url):
    user_id, _ = add_staff(sqlite_url, "caseworker", name="Maya Mann",
                           email="maya.mann@council.example")
    async with app(provider, sqlite_url) as http:
        r = await council_sign_in(http, "maya", next_url="/api/me")
        assert r.status_code == 200, r.text[:500]
        assert r.json()["role"] == "manager" and r.json()["id"] == user_id
        # Its password still opens it too.
        http.cookies.clear()
        await sign_in(http, "maya.mann@council.example")
        assert (await http.get("/api/me")).json()["id"] == user_id
        # Switched off here, the council's say-so does not open it.
        with session_for(sqlite_url) as s:
            update_user(s, s.get(t.StaffUser, user_id), active=False)
        http.cookies.clear()
        r = await council_sign_in(http, "maya", next_url="/api/me")
        assert r.status_code == 403 and "switched off" in r.text
        # Someone else whose council account has the address of an account already joined
        # to another council account is not given it.
        with session_for(sqlite_url) as s:
            update_user(s, s.get(t.StaffUser, user_id), active=True)
        provider.set_people({**PEOPLE, "impostor": PEOPLE["maya"]})
        http.cookies.clear()  # signed in at the provider as maya still
        r = await council_sign_in(http, "impostor", next_url="/api/me")
        assert r.status_code == 403 and "cannot be joined" in r.text


async def test_an_unverified_address_is_joined_only_when_the_provider_is_trusted(
        provider, sqlite_url):
    sam_id, _ = add_staff(sqlite_url, "caseworker", email="sam.sharp@council.example")
    alice_id, _ = add_staff(sqlite_url, "caseworker", email="alice.able@council.example")
    async with app(provider, sqlite_url, oidc_trust_email=False) as http:
        provider.set_people({**PEOPLE, "sam": {"email": "sam.sharp@council.example",
                                               "name": "Sam Sharp",
                                               "groups": ["send-caseworkers"]}})
        r = await council_sign_in(http, "sam", next_url="/api/me")
        assert r.status_code == 403 and "cannot be joined" in r.text
        http.cookies.clear()
        r = await council_sign_in(http, "alice", next_url="/api/me")  # email_verified: true
        assert r.status_code == 200 and r.json()["id"] == alice_id
    assert sam_id != alice_id


async def test_someone_in_no_mapped_group_is_refused_with_what_to_do(provider, sqlite_url):
    async with app(provider, sqlite_url) as http:
        r = await council_sign_in(http, "nobody")
        assert r.status_code == 403
        text = html.unescape(r.text)
        assert "Your council account cannot use this service yet" in text
        assert "Ask the council's IT team to add you to the right group" in text
        assert "all-staff" not in text and "nobody" not in text
        assert account(sqlite_url, "nobody@council.example") is None
        assert (await http.get("/api/me")).status_code == 401


async def test_a_wrong_or_replayed_answer_is_refused(provider, sqlite_url):
    async with app(provider, sqlite_url) as http:
        r = await council_sign_in(http, "alice")
        assert r.url.path == "/account"
        answer = callback_of(r)
        state = parse_qs(urlsplit(answer).query)["state"][0]

        async with httpx.AsyncClient(timeout=30) as other:
            # The same answer again, even with its state cookie: used already.
            other.cookies.set(COUNCIL_COOKIE, state, domain="127.0.0.1",
                              path="/sign-in/council")
            replay = await other.get(answer)
            assert replay.status_code == 400
            assert "has expired or has been used already" in replay.text
            assert "Go back to the sign-in page" in replay.text

        # One that comes back after its ten minutes.
        def later():
            with session_for(sqlite_url) as s:
                for row in s.exec(select(t.CouncilSignIn)):
                    row.expires_at = row.expires_at - timedelta(minutes=10)
                    s.add(row)
                s.commit()

        http.cookies.clear()
        late = await council_sign_in(http, "alice", meanwhile=later)
        assert late.status_code == 400 and "has expired" in late.text
        assert (await http.get("/api/me")).status_code == 401

        # A fresh sign-in whose answer carries another state than this browser's cookie.
        start = await http.get("/sign-in/council", follow_redirects=False)
        assert start.status_code == 303 and http.cookies.get(COUNCIL_COOKIE)
        wrong = await http.get("/sign-in/council/callback",
                               params={"state": "not-the-state", "code": "anything"})
        assert wrong.status_code == 400 and "has been used already" in wrong.text
        # ... and with no cookie at all (another browser), the right state is refused too.
        kept = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]
        async with httpx.AsyncClient(timeout=30) as other:
            stray = await other.get(str(http.base_url.join("/sign-in/council/callback")),
                                    params={"state": kept, "code": "anything"})
            assert stray.status_code == 400


async def test_password_sign_in_can_be_turned_off(provider, sqlite_url):
    add_staff(sqlite_url, "admin", email="pat@council.example")
    async with app(provider, sqlite_url, password_sign_in=False) as http:
        page = await http.get("/sign-in")
        assert "Sign in with your council account" in page.text
        assert 'name="password"' not in page.text
        r = await http.post("/sign-in", data={"email": "pat@council.example",
                                              "password": PASSWORD})
        assert r.status_code == 403 and "does not take passwords" in r.text


async def test_a_provider_that_does_not_answer_is_a_page_that_says_what_to_do(provider,
                                                                            sqlite_url):
    async with app(provider, sqlite_url,
                   oidc_issuer=f"http://127.0.0.1:{free_port()}") as http:
        r = await http.get("/sign-in/council")
        assert r.status_code == 502
        text = html.unescape(r.text)
        assert "The council's sign-in service did not answer as expected" in text
        assert "Try again in a few minutes" in text and "IT team" in text
