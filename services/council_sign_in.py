"""Staff signing in with the council's own accounts (Microsoft Entra ID, or any OpenID Connect
provider), instead of a password kept here: the rules, once; ``api/council_sign_in.py`` is its
pages, and docs/access.md ("Signing in with the council's accounts") its settings.

The flow is OpenID Connect's authorisation code flow with PKCE (S256), done by Authlib:

- ``begin``: the provider's endpoints come from its discovery document
  (``<issuer>/.well-known/openid-configuration``; HTTPS, but on this machine). A random ``state``, ``nonce`` and PKCE
  verifier are made; the state goes in a cookie of this browser (``api/council_sign_in.py``),
  and only its SHA-256, the nonce and the verifier are kept here (``CouncilSignIn``), for
  ``FLOW_MINUTES``. The browser is sent to the provider.
- ``finish``: the browser comes back with a code and the state. The state must be the one in
  its cookie and be found here; it is deleted at once, so it works once. The code is exchanged
  (with the verifier) for tokens, and the ID token is verified: its signature against the
  provider's published keys (JWKS), its issuer, its audience (this client), its expiry, and
  its nonce. Claims the ID token does not carry (some providers put them only there) are read
  from the provider's userinfo endpoint, for the same subject.
- The person's role is the highest one that their groups (the ``oidc_groups_claim``) are
  mapped to in the settings; someone in no mapped group is refused. Their account is found by
  the provider's issuer and subject (``CouncilIdentity``); at the first sign-in it is made
  from the claims (email address and name), or an existing password account with the same
  email address is linked (when the provider says the address is verified, or the settings
  trust the provider's addresses). At each sign-in the name, email address and role follow
  the claims.
- The session is the ordinary staff session (``services/staff.py``), which keeps the ID token
  so that signing out (``sign_out``) can end the session at the provider too, when it has an
  ``end_session_endpoint``.

Nothing here logs a token, a claim or an address; a refusal's message says what to do, in
words, never a claim or an id.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Mapping
from urllib.parse import urlencode, urlsplit

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.base_client import BaseApp, OAuth2Mixin, OpenIDMixin
from authlib.integrations.requests_client import OAuth2Session
from joserfc.errors import JoseError
from sqlalchemy import delete, func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from config.settings import Settings
from domain.addresses import looks_like_email
from services.staff import NO_PASSWORD, ROLE_RANK, _aware, digest, end_session, normal_email, \
    now, start_session
from store import tables as t

log = logging.getLogger(__name__)

CALLBACK_PATH = "/sign-in/council/callback"
SIGNED_OUT_PATH = "/sign-in/council/signed-out"
FLOW_MINUTES = 10
METADATA_SECONDS = 3600  # the discovery document (and keys) are read again after this
HTTP_SECONDS = 10

IT_TEAM = "If it keeps happening, tell the council's IT team"


class CouncilSignInError(Exception):
    """A council sign-in that cannot go on: a page with ``title`` and ``message`` (which says
    what to do), answered with ``status``."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status, self.title, self.message = status, title, message


def _try_again(message: str) -> CouncilSignInError:
    return CouncilSignInError(400, "You have not been signed in", message)


def _provider_trouble() -> CouncilSignInError:
    return CouncilSignInError(
        502, "The council's sign-in service did not answer as expected",
        f"You have not been signed in. Try again in a few minutes. {IT_TEAM}")


# --- the settings ---------------------------------------------------------------------------------


def configured(settings: Settings) -> bool:
    return bool(settings.oidc_issuer.strip() and settings.oidc_client_id.strip())


@dataclass(frozen=True)
class SignInChoices:
    """What the sign-in page offers: the council button's words (None: no button), and
    whether the password form is there."""

    council_label: str | None
    passwords: bool


def sign_in_choices(*, settings: Settings) -> SignInChoices:
    on = configured(settings)
    return SignInChoices(council_label=settings.oidc_button_label if on else None,
                         passwords=settings.password_sign_in or not on)


def _groups(setting: str) -> set[str]:
    return {g.strip().casefold() for g in setting.split(",") if g.strip()}


def role_for(*, settings: Settings, groups: object) -> str | None:
    """The highest role that any of ``groups`` (a claim's value: a list or one string) is
    mapped to; None when none is."""
    values = [groups] if isinstance(groups, str) else groups if isinstance(groups, list) else []
    held = {str(g).strip().casefold() for g in values}
    best = None
    for role, setting in (("caseworker", settings.oidc_caseworker_groups),
                          ("manager", settings.oidc_manager_groups),
                          ("admin", settings.oidc_admin_groups)):
        if held & _groups(setting) and (best is None or ROLE_RANK[role] > ROLE_RANK[best]):
            best = role
    return best


# --- the provider (Authlib) -------------------------------------------------------------------------


class _Provider(OAuth2Mixin, OpenIDMixin, BaseApp):
    """Authlib's OpenID Connect client (the parts its framework clients share), on
    requests."""

    client_cls = OAuth2Session


_providers: dict[tuple[str, str, str, str], tuple[float, _Provider]] = {}
_providers_lock = threading.Lock()


def _issuer(settings: Settings) -> str:
    return settings.oidc_issuer.strip().rstrip("/")


def _provider(settings: Settings) -> _Provider:
    """The provider of the settings, its discovery document read (and kept for
    ``METADATA_SECONDS``); ``CouncilSignInError`` when it cannot be read or is not the
    configured issuer's."""
    issuer = _issuer(settings)
    parts = urlsplit(issuer)
    if parts.scheme != "https" and parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        log.warning("council sign-in: EHC_OIDC_ISSUER must be an https:// address")
        raise _provider_trouble()
    key = (issuer, settings.oidc_client_id, settings.oidc_client_secret, settings.oidc_scopes)
    with _providers_lock:
        kept = _providers.get(key)
        if kept is not None and time.monotonic() - kept[0] < METADATA_SECONDS:
            return kept[1]
    provider = _Provider(
        framework=None, client_id=settings.oidc_client_id.strip(),
        client_secret=settings.oidc_client_secret or None,
        server_metadata_url=f"{issuer}/.well-known/openid-configuration",
        client_kwargs={"scope": settings.oidc_scopes, "code_challenge_method": "S256",
                       "default_timeout": HTTP_SECONDS})
    try:
        metadata = provider.load_server_metadata()
    except (requests.RequestException, ValueError) as exc:
        log.warning("council sign-in: the provider's discovery document could not be read "
                    "(%s)", type(exc).__name__)
        raise _provider_trouble() from None
    if str(metadata.get("issuer", "")).rstrip("/") != issuer:
        log.warning("council sign-in: the discovery document names another issuer than "
                    "EHC_OIDC_ISSUER")
        raise _provider_trouble()
    provider.client_kwargs["token_endpoint_auth_method"] = _client_auth(settings, metadata)
    with _providers_lock:
        _providers[key] = (time.monotonic(), provider)
    return provider


def _client_auth(settings: Settings, metadata: Mapping) -> str:
    if not settings.oidc_client_secret:
        return "none"
    offered = metadata.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
    return "client_secret_basic" if "client_secret_basic" in offered else "client_secret_post"


def _redirect_uri(settings: Settings) -> str:
    return settings.public_base_url.rstrip("/") + CALLBACK_PATH


# --- signing in -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Started:
    """Where to send the browser (the provider), and the state for its cookie."""

    url: str
    state: str


def begin(*, session: Session, settings: Settings, next_url: str) -> Started:
    """Start a council sign-in (and commit): see the module's docstring."""
    if not configured(settings):
        raise CouncilSignInError(404, "Signing in with a council account is not set up",
                                 "Sign in with your email address and password")
    provider = _provider(settings)
    state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    verifier = secrets.token_urlsafe(64)
    made = provider.create_authorization_url(
        redirect_uri=_redirect_uri(settings), state=state, nonce=nonce,
        code_verifier=verifier)
    moment = now()
    session.execute(delete(t.CouncilSignIn).where(  # sign-ins never finished
        t.CouncilSignIn.expires_at < moment))  # type: ignore[arg-type]
    session.add(t.CouncilSignIn(id=digest(state), nonce=nonce, code_verifier=verifier,
                                next_url=next_url[:500],
                                expires_at=moment + timedelta(minutes=FLOW_MINUTES)))
    session.commit()
    return Started(url=made["url"], state=state)


@dataclass(frozen=True)
class SignedIn:
    token: str  # the session cookie's
    next_url: str


PROVIDER_REFUSED = {
    "access_denied": "You chose not to sign in, or the council's sign-in service did not let "
                     "you. Try again; if you are not allowed to use this service, ask the "
                     "council's IT team",
    "login_required": "Sign in to your council account, then try again",
}


def finish(*, session: Session, settings: Settings, params: Mapping[str, str],
           cookie_state: str | None, old_cookie: str | None = None) -> SignedIn:
    """The browser is back from the provider with ``params`` (the query): check it, verify
    the ID token, find or make the account, and start a session (and commit). Refusals are
    ``CouncilSignInError``; see the module's docstring."""
    if not configured(settings):
        raise CouncilSignInError(404, "Signing in with a council account is not set up",
                                 "Sign in with your email address and password")
    state = params.get("state") or ""
    started = None
    if state and cookie_state and secrets.compare_digest(state, cookie_state):
        row = session.get(t.CouncilSignIn, digest(state))
        if row is not None:  # once only, whatever happens next: the one that deletes it
            pending = Pending(nonce=row.nonce, code_verifier=row.code_verifier,
                              next_url=row.next_url, expires_at=_aware(row.expires_at))
            gone = session.execute(delete(t.CouncilSignIn).where(
                t.CouncilSignIn.id == digest(state))).rowcount  # type: ignore[arg-type]
            session.commit()
            started = pending if gone == 1 else None
    if started is None or started.expires_at <= now():
        raise _try_again("This sign-in link has expired or has been used already. Go back to "
                         "the sign-in page and choose to sign in with your council account "
                         "again")
    if params.get("error"):
        raise CouncilSignInError(
            403, "You have not been signed in",
            PROVIDER_REFUSED.get(params["error"], "The council's sign-in service did not sign "
                                 f"you in. Try again. {IT_TEAM}"))
    if not params.get("code"):
        raise _try_again("The council's sign-in service sent you back without signing you in. "
                         "Go back to the sign-in page and try again")
    id_token, claims = _verified_claims(settings, params, started)
    role = role_for(settings=settings, groups=claims.get(settings.oidc_groups_claim.strip()))
    if role is None:
        raise CouncilSignInError(
            403, "Your council account cannot use this service yet",
            "You are not in any of the groups that give access to this service. Ask the "
            "council's IT team to add you to the right group for your job (caseworker, "
            "manager or administrator), then sign in again")
    user = _account(session, settings, claims, role)
    token, _ = start_session(session, user, settings.session_max_hours, id_token=id_token)
    if old_cookie:
        end_session(session, digest(old_cookie))
    return SignedIn(token=token, next_url=started.next_url)


@dataclass(frozen=True)
class Pending:
    nonce: str
    code_verifier: str
    next_url: str
    expires_at: datetime


def _verified_claims(settings: Settings, params: Mapping[str, str],
                     started: Pending) -> tuple[str, dict]:
    """The raw ID token and the verified claims (with the userinfo endpoint's, for those
    the ID token lacks)."""
    provider = _provider(settings)
    issuer = provider.server_metadata["issuer"]
    # RFC 9207: a provider that names itself in its answers must be the one named.
    if (params.get("iss") or provider.server_metadata.get(
            "authorization_response_iss_parameter_supported")) and params.get("iss") != issuer:
        raise _try_again("The answer did not come from the council's sign-in service. Go back "
                         "to the sign-in page and try again")
    try:
        token = provider.fetch_access_token(redirect_uri=_redirect_uri(settings),
                                            code=params["code"],
                                            code_verifier=started.code_verifier)
        if "id_token" not in token:
            raise ValueError("no ID token")
        claims = dict(provider.parse_id_token(token, nonce=started.nonce, claims_options={
            "iss": {"essential": True, "value": issuer},
            "aud": {"essential": True, "value": provider.client_id},
            "sub": {"essential": True},
            "exp": {"essential": True}}))
        wanted = ("email", "name", settings.oidc_groups_claim.strip())
        if any(k not in claims for k in wanted) and provider.server_metadata.get(
                "userinfo_endpoint") and token.get("access_token"):
            more = provider.userinfo(token=token)
            if more.get("sub") == claims["sub"]:
                claims = {**more, **claims}
    except (requests.RequestException, AuthlibBaseError, JoseError, ValueError, KeyError) as exc:
        log.warning("council sign-in refused: %s", type(exc).__name__)
        raise _provider_trouble() from None
    return token["id_token"], claims


def _email(claims: Mapping) -> str | None:
    for key in ("email", "preferred_username", "upn"):  # Entra ID: the sign-in name
        value = normal_email(str(claims.get(key) or ""))
        if looks_like_email(value):
            return value
    return None


def _name(claims: Mapping, email: str) -> str:
    name = str(claims.get("name") or "").strip() or " ".join(
        str(claims.get(k) or "").strip() for k in ("given_name", "family_name")).strip()
    return " ".join((name or email.split("@")[0]).split())[:120]


def _account(s: Session, settings: Settings, claims: Mapping, role: str) -> t.StaffUser:
    """The account of the person the claims name, made or updated (not committed)."""
    issuer, subject = _issuer(settings), str(claims["sub"])
    email = _email(claims)
    identity = s.exec(select(t.CouncilIdentity).where(
        t.CouncilIdentity.issuer == issuer, t.CouncilIdentity.subject == subject)).first()
    user = s.get(t.StaffUser, identity.user_id) if identity is not None else None
    if user is None:
        if email is None:
            raise CouncilSignInError(
                403, "Your council account cannot use this service yet",
                "Your council account does not give this service your email address. Ask "
                "the council's IT team to make it do so, then sign in again")
        user = s.exec(select(t.StaffUser).where(
            func.lower(t.StaffUser.email) == email)).first()
        if user is not None and (
                not (claims.get("email_verified") is True or settings.oidc_trust_email)
                or s.exec(select(t.CouncilIdentity.id).where(  # another person's, before
                    t.CouncilIdentity.user_id == user.id,
                    t.CouncilIdentity.issuer == issuer)).first()):
            raise CouncilSignInError(
                403, "Your council account cannot be joined to your account here",
                "There is already an account for your email address on this service. Ask "
                "an administrator of this service to look into it")
        if user is None:
            user = t.StaffUser(email=email, name=_name(claims, email), role=role,
                               password_hash=NO_PASSWORD)
            s.add(user)
            s.flush()
        s.add(t.CouncilIdentity(user_id=user.id, issuer=issuer, subject=subject))
    if not user.active:
        raise CouncilSignInError(
            403, "Your account on this service is switched off",
            "Ask an administrator of this service to switch your account back on")
    if email and email != user.email and not s.exec(select(t.StaffUser.id).where(
            func.lower(t.StaffUser.email) == email)).first():
        user.email = email
    if claims.get("name") or claims.get("given_name"):
        user.name = _name(claims, user.email)
    user.role = role
    user.last_signed_in_at = now()
    s.add(user)
    try:
        s.flush()
    except IntegrityError:  # the same person signing in twice at once
        s.rollback()
        raise _try_again("You were signing in twice at once. Go back to the sign-in page and "
                         "sign in again") from None
    return user


# --- signing out -------------------------------------------------------------------------------------


def sign_out(*, session: Session, settings: Settings, session_id: str) -> str:
    """End this session (and commit); where to send the browser: the provider's
    ``end_session_endpoint`` when the session began there and it has one (back to the
    sign-in page after), else the sign-in page."""
    row = session.get(t.StaffSession, session_id)
    id_token = row.id_token if row is not None else None
    end_session(session, session_id)
    here = "/sign-in?notice=signed-out"
    if not id_token or not configured(settings):
        return here
    try:
        provider = _provider(settings)
    except CouncilSignInError:
        return here
    endpoint = provider.server_metadata.get("end_session_endpoint")
    if not endpoint:
        return here
    query = urlencode({"id_token_hint": id_token, "client_id": provider.client_id,
                       "post_logout_redirect_uri":
                           settings.public_base_url.rstrip("/") + SIGNED_OUT_PATH})
    return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"
