"""Staff accounts, their sessions and API tokens: the rules, once, for the web pages, the JSON
API and the ``ehc users`` command; and what the sign-in, account and accounts pages and API
ask of them (``api/accounts.py``), and who a request comes from (``api/auth.py``).

- Passwords are hashed with argon2id (``argon2-cffi``, its RFC 9106 defaults) and rehashed on
  sign-in when those defaults change. A password is at least ``MIN_PASSWORD`` characters
  (NCSC: length, not composition rules); nothing else is imposed.
- Five wrong passwords in a row lock the account for ``LOCK_MINUTES``, counted in one
  conditional ``UPDATE`` before each check, so parallel guesses cannot race past the limit.
  An unknown address, a locked account and a wrong password get the same message after the
  same work (one argon2 check): the answer never says whether the address has an account.
- A session is a random token in a cookie; the database keeps only its SHA-256, with the CSRF
  token of that session, its absolute expiry and when it was last seen (idle time-out).
- An API token is ``ehc_`` and 43 random characters, shown once; only its SHA-256 is kept.
- Roles are ranked (``ROLES``): each can do what the one before it can.

Nothing here logs a password, a token or a hash.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import BaseModel, Field
from sqlalchemy import case, func, literal, or_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.attributes import flag_modified
from sqlmodel import Session, select

from config.settings import Settings
from domain.addresses import looks_like_email
from domain.names import clean_name
from store import tables as t
from store.db import session_for

ROLES = t.ROLES
ROLE_RANK = {role: i for i, role in enumerate(ROLES, start=1)}
ROLE_LABELS = {"caseworker": "Caseworker", "manager": "Manager", "admin": "Administrator"}
MIN_PASSWORD = 12
MAX_PASSWORD = 256
MAX_FAILURES = 5
LOCK_MINUTES = 15
TOKEN_PREFIX = "ehc_"
# The password hash of an account the council's sign-in made (services/council_sign_in.py):
# not an argon2 hash, so no password opens it.
NO_PASSWORD = "!council"
TOUCH_SECONDS = 60  # last_seen_at / last_used_at are written at most this often

_hasher = PasswordHasher()
# Checked against when the address has no account, so both answers take as long.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class StaffError(Exception):
    """A request about accounts that cannot be done; the message says what to fix."""

    def __init__(self, status: int, message: str, code: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.field = status, message, code, field


@dataclass(frozen=True)
class Staff:
    """Who is making a request, once signed in (a session) or by API token."""

    id: str
    email: str
    name: str
    role: str
    via: str  # "session" | "token"
    session_id: str | None = None
    csrf_token: str | None = None

    def can(self, role: str) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[role]

    @property
    def actor(self) -> str:
        """How the case record names them as the one who took a step."""
        return f"{self.name} <{self.email}>"[:120]


def now() -> datetime:
    return datetime.now(timezone.utc)


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:  # SQLite hands back naive UTC
        return value.replace(tzinfo=timezone.utc)
    return value


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def normal_email(email: str) -> str:
    return (email or "").strip().lower()


# --- accounts ---------------------------------------------------------------------------------


def check_password_rules(password: str, field: str = "password") -> None:
    if len(password or "") < MIN_PASSWORD:
        raise StaffError(422, f"Enter a password of at least {MIN_PASSWORD} characters. A few "
                         "unrelated words make a long password easy to remember.",
                         "weak_password", field)
    if len(password) > MAX_PASSWORD:
        raise StaffError(422, f"Enter a password of at most {MAX_PASSWORD} characters",
                         "invalid_input", field)


def check_role(role: str) -> str:
    if role not in ROLE_RANK:
        raise StaffError(422, f"Choose a role: one of {', '.join(ROLES)}", "invalid_input",
                         "role")
    return role


def staff_name(name: str | None) -> str:
    """An account's name as stored (trimmed), or a 422 naming the field: blank, over 120
    characters, or holding a line break or control character (``domain.names``)."""
    if not (name or "").strip():
        raise StaffError(422, "Enter the person's full name (at most 120 characters)",
                         "invalid_input", "name")
    try:
        return clean_name(name, what="Full name", max_length=120)  # type: ignore[return-value]
    except ValueError as exc:
        raise StaffError(422, str(exc), "invalid_input", "name") from None


def create_user(s: Session, *, email: str, name: str, role: str, password: str) -> t.StaffUser:
    """Add an account (and commit). A clash of addresses, ignoring case, is a 409."""

    email = normal_email(email)
    if not looks_like_email(email):
        raise StaffError(422, "Enter an email address in the right format, like "
                         "name@council.gov.uk", "invalid_input", "email")
    name = staff_name(name)
    check_role(role)
    check_password_rules(password)
    if s.exec(select(t.StaffUser).where(func.lower(t.StaffUser.email) == email)).first():
        raise StaffError(409, f"There is already an account for {email}", "duplicate_account",
                         "email")
    user = t.StaffUser(email=email, name=name, role=role, password_hash=_hasher.hash(password))
    s.add(user)
    try:
        s.commit()
    except IntegrityError:
        s.rollback()
        raise StaffError(409, f"There is already an account for {email}", "duplicate_account",
                         "email") from None
    s.refresh(user)
    return user


def get_user(s: Session, user_id: str) -> t.StaffUser:
    user = s.get(t.StaffUser, user_id)
    if user is None:
        raise StaffError(404, f"No account has the id {user_id!r}", "unknown_account")
    return user


def _active_admins(s: Session, other_than: str) -> int:
    return len(s.exec(select(t.StaffUser.id).where(
        t.StaffUser.role == "admin", t.StaffUser.active, t.StaffUser.id != other_than)).all())


def update_user(s: Session, user: t.StaffUser, *, name: str | None = None,
                role: str | None = None, active: bool | None = None) -> t.StaffUser:
    """Change an account's name, role or whether it can sign in (and commit). The last active
    administrator cannot be demoted or deactivated: someone must be able to manage accounts.
    Deactivating an account ends its sessions and revokes its API tokens."""
    if name is not None:
        user.name = staff_name(name)
    losing_admin = user.role == "admin" and user.active and (
        (role is not None and role != "admin") or active is False)
    if losing_admin and _active_admins(s, user.id) == 0:
        raise StaffError(409, "This is the only active administrator: make another account an "
                         "administrator first", "last_admin", "role" if role else "active")
    if role is not None:
        user.role = check_role(role)
    if active is not None:
        user.active = active
        if not active:
            end_sessions(s, user.id, commit=False)
            for token in s.exec(select(t.ApiToken).where(t.ApiToken.user_id == user.id,
                                                         t.ApiToken.revoked_at.is_(None))):  # type: ignore[union-attr]
                token.revoked_at = now()
                s.add(token)
        else:
            _clear_failures(user)
    s.add(user)
    s.commit()
    s.refresh(user)
    return user


def _clear_failures(user: t.StaffUser) -> None:
    """End any lock and start the count of wrong passwords again, when ``user`` is next
    written: always, even when the row as loaded showed none (a sign-in may have counted one
    since, by a statement of its own)."""
    user.failed_sign_ins, user.locked_until = 0, None
    flag_modified(user, "failed_sign_ins")
    flag_modified(user, "locked_until")


def set_password(s: Session, user: t.StaffUser, password: str, *,
                 end_other_sessions_than: str | None = None) -> None:
    """A new password (and commit). Every session of the account ends but the one named."""
    check_password_rules(password)
    user.password_hash = _hasher.hash(password)
    _clear_failures(user)
    s.add(user)
    end_sessions(s, user.id, keep=end_other_sessions_than, commit=False)
    s.commit()


def verify_password(user: t.StaffUser, password: str) -> bool:
    try:
        return _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


SIGN_IN_FAILED = (f"Enter a correct email address and password. After {MAX_FAILURES} wrong "
                  f"passwords in a row an account is locked for {LOCK_MINUTES} minutes: then "
                  "try again later, or ask an administrator to set a new password")


class SignInFailed(StaffError):
    """The same words, status and time for an unknown address, a wrong password and a locked
    account: the answer never tells whether an address has an account."""

    def __init__(self, message: str = SIGN_IN_FAILED) -> None:
        super().__init__(401, message, "sign_in_failed", "email")


def _take_a_try(s: Session, user_id: str) -> bool:
    """Count one password check against the account before it is made (and commit); False,
    counting nothing, when the account is locked (or switched off).

    One conditional ``UPDATE``, so the count cannot be raced on SQLite or PostgreSQL however
    many sign-ins run at once: the database takes the row's write lock, and the lock decision
    is the value the statement itself produces. The ``MAX_FAILURES``-th try in a row locks the
    account for ``LOCK_MINUTES`` (and starts the count again for after the lock); a right
    password clears the count (``_signed_in``). So however many guesses arrive at once, at
    most ``MAX_FAILURES`` of them are checked against the account before it locks."""
    u = t.StaffUser
    moment = now()
    tries = u.failed_sign_ins + 1
    until = literal(moment + timedelta(minutes=LOCK_MINUTES),
                    u.locked_until.type)  # type: ignore[union-attr]  # the column's: UTC
    done = s.exec(update(u).where(  # type: ignore[call-overload]
        u.id == user_id, u.active,
        or_(u.locked_until.is_(None), u.locked_until <= moment),  # type: ignore[union-attr]
    ).values(
        failed_sign_ins=case((tries >= MAX_FAILURES, 0), else_=tries),
        locked_until=case((tries >= MAX_FAILURES, until), else_=None),
    ))
    s.commit()
    return done.rowcount == 1


def _signed_in(s: Session, user: t.StaffUser, password: str, signing_in: bool) -> None:
    """A right password: the count of wrong ones starts again (and commit). A statement, not
    the loaded row, since ``_take_a_try`` changed the row behind it."""
    values: dict[str, object] = {"failed_sign_ins": 0, "locked_until": None}
    if signing_in:
        values["last_signed_in_at"] = now()
    if _hasher.check_needs_rehash(user.password_hash):
        values["password_hash"] = _hasher.hash(password)
    s.exec(update(t.StaffUser).where(t.StaffUser.id == user.id).values(**values))  # type: ignore[call-overload]
    s.commit()
    s.refresh(user)


def _check_counted(s: Session, user: t.StaffUser, password: str, *,
                   signing_in: bool = True) -> bool:
    """Whether ``password`` is the account's, counted by ``_take_a_try``: False for a locked
    account. Either way exactly one argon2 check is made (against a dummy hash when locked),
    so a locked account answers in the time a wrong password takes."""
    if not _take_a_try(s, user.id):
        _slow_no()
        return False
    if not verify_password(user, password or ""):
        return False
    _signed_in(s, user, password, signing_in)
    return True


def authenticate_password(s: Session, email: str, password: str) -> t.StaffUser:
    """The account these credentials open, or ``SignInFailed`` (counted, and locking, as
    ``_take_a_try`` says). An unknown address, a switched-off or locked account and a wrong
    password get the same answer after one argon2 check each."""
    user = s.exec(select(t.StaffUser).where(
        func.lower(t.StaffUser.email) == normal_email(email))).first()
    if user is None or not user.active:
        _slow_no()
        raise SignInFailed()
    if not _check_counted(s, user, password):
        raise SignInFailed()
    return user


def _slow_no() -> None:
    """Spend what a real check spends, so an unknown address or a locked account is not told
    apart by time."""
    try:
        _hasher.verify(_DUMMY_HASH, "not the password")
    except VerificationError:
        pass


# --- sessions -----------------------------------------------------------------------------------


def start_session(s: Session, user: t.StaffUser, hours: float, *,
                  id_token: str | None = None) -> tuple[str, t.StaffSession]:
    """A new session for the account (and commit); returns the cookie's token and the row.
    ``id_token``: the council's provider's, when it signed the person in
    (``services/council_sign_in.py``)."""
    token = secrets.token_urlsafe(32)
    row = t.StaffSession(id=digest(token), user_id=user.id,
                         csrf_token=secrets.token_urlsafe(32),
                         expires_at=now() + timedelta(hours=hours), id_token=id_token)
    s.add(row)
    s.commit()
    return token, row


def session_staff(s: Session, token: str, idle_minutes: float) -> Staff | None:
    """Who the session cookie belongs to, if it is still good; marks it seen."""
    row = s.get(t.StaffSession, digest(token))
    if row is None:
        return None
    moment = now()
    seen = _aware(row.last_seen_at)
    if _aware(row.expires_at) <= moment or seen + timedelta(minutes=idle_minutes) <= moment:  # type: ignore[operator]
        s.delete(row)
        s.commit()
        return None
    user = s.get(t.StaffUser, row.user_id)
    if user is None or not user.active:
        return None
    if (moment - seen).total_seconds() > TOUCH_SECONDS:  # type: ignore[operator]
        row.last_seen_at = moment
        s.add(row)
        s.commit()
    return Staff(id=user.id, email=user.email, name=user.name, role=user.role, via="session",
                 session_id=row.id, csrf_token=row.csrf_token)


def end_session(s: Session, session_id: str) -> None:
    row = s.get(t.StaffSession, session_id)
    if row is not None:
        s.delete(row)
        s.commit()


def end_sessions(s: Session, user_id: str, *, keep: str | None = None,
                 commit: bool = True) -> None:
    for row in s.exec(select(t.StaffSession).where(t.StaffSession.user_id == user_id)):
        if row.id != keep:
            s.delete(row)
    if commit:
        s.commit()


# --- API tokens ---------------------------------------------------------------------------------


def create_token(s: Session, user: t.StaffUser, name: str) -> tuple[str, t.ApiToken]:
    name = (name or "").strip()
    if not name or len(name) > 120:
        raise StaffError(422, "Enter a name for the token that says what uses it, like "
                         "'BI team dashboard' (at most 120 characters)", "invalid_input", "name")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = t.ApiToken(user_id=user.id, name=name, token_hash=digest(token))
    s.add(row)
    s.commit()
    s.refresh(row)
    return token, row


def token_staff(s: Session, token: str) -> Staff | None:
    if not token.startswith(TOKEN_PREFIX):
        return None
    row = s.exec(select(t.ApiToken).where(t.ApiToken.token_hash == digest(token))).first()
    if row is None or row.revoked_at is not None:
        return None
    user = s.get(t.StaffUser, row.user_id)
    if user is None or not user.active:
        return None
    moment = now()
    used = _aware(row.last_used_at)
    if used is None or (moment - used).total_seconds() > TOUCH_SECONDS:
        row.last_used_at = moment
        s.add(row)
        s.commit()
    return Staff(id=user.id, email=user.email, name=user.name, role=user.role, via="token")


def revoke_token(s: Session, token_id: str, *, user_id: str | None = None) -> t.ApiToken:
    """Revoke a token (and commit); ``user_id`` limits it to that account's own tokens."""
    row = s.get(t.ApiToken, token_id)
    if row is None or (user_id is not None and row.user_id != user_id):
        raise StaffError(404, f"No API token has the id {token_id!r}", "unknown_token")
    if row.revoked_at is None:
        row.revoked_at = now()
        s.add(row)
        s.commit()
    return row


# --- who a request comes from ---------------------------------------------------------------------


def identify(*, settings: Settings, bearer: str | None, cookie: str | None) -> Staff | None:
    """Who is making a request: the account of the API token ``bearer`` (the Authorization
    header's, when it is a bearer one: then it alone counts), else of the session cookie; None
    when neither is good. Opens its own database session, as it runs before any route."""
    with session_for(settings.db_url) as s:
        if bearer is not None:
            return token_staff(s, bearer)
        if cookie:
            return session_staff(s, cookie, settings.session_idle_minutes)
    return None


def sign_in(*, session: Session, email: str, password: str, hours: float,
            old_cookie: str | None = None) -> str:
    """Check the credentials (``SignInFailed``: counted, and locking, as
    ``authenticate_password`` says) and start a session of ``hours``; returns its cookie's
    token. The session the browser had before (``old_cookie``: another account's, say) ends."""
    user = authenticate_password(session, email, password)
    token, _ = start_session(session, user, hours)
    if old_cookie:
        end_session(session, digest(old_cookie))
    return token


# --- your account ---------------------------------------------------------------------------------


def own_tokens(*, session: Session, user_id: str) -> list[t.ApiToken]:
    """An account's API tokens, revoked ones too, the newest first."""
    return list(session.exec(select(t.ApiToken).where(t.ApiToken.user_id == user_id)
                             .order_by(t.ApiToken.created_at.desc())).all())  # type: ignore[attr-defined]


def has_password(user: t.StaffUser) -> bool:
    """False for an account made by the council's sign-in (``NO_PASSWORD``), until an
    administrator sets it a password."""
    return user.password_hash != NO_PASSWORD


@dataclass(frozen=True)
class OwnAccount:
    """What the account page shows of one's own account beyond who one is."""

    tokens: list[t.ApiToken]
    has_password: bool


def own_account(*, session: Session, staff: Staff) -> OwnAccount:
    return OwnAccount(tokens=own_tokens(session=session, user_id=staff.id),
                      has_password=has_password(get_user(session, staff.id)))


def change_own_password(*, session: Session, staff: Staff, current: str, new: str) -> None:
    """Someone changing their own password (and commit): ``current`` must be right (else a 422
    on ``current_password``; wrong ones count towards the lock, as at sign-in, so a borrowed
    session cannot be used to guess the password), and ``new`` keeps the password rules (on ``password``). Their
    other sessions end; this one goes on."""
    user = get_user(session, staff.id)
    if not has_password(user):
        raise StaffError(409, "You sign in with your council account, so there is no password "
                         "here to change. Your council's IT team looks after that password",
                         "no_password", "form")
    if not _check_counted(session, user, current, signing_in=False):  # counted like a sign-in
        raise StaffError(422, f"Your current password is not right. After {MAX_FAILURES} "
                         f"wrong passwords in a row your account is locked for {LOCK_MINUTES} "
                         "minutes: then try again later", "wrong_password", "current_password")
    set_password(session, user, new, end_other_sessions_than=staff.session_id)


# --- accounts (administrators) --------------------------------------------------------------------


def list_users(*, session: Session, active_first: bool = False) -> list[t.StaffUser]:
    """Every account, by email address; or, ``active_first``, those that can sign in first,
    each part by name (the accounts page)."""
    if active_first:
        order = (t.StaffUser.active.desc(), t.StaffUser.name)  # type: ignore[attr-defined]
    else:
        order = (t.StaffUser.email,)
    return list(session.exec(select(t.StaffUser).order_by(*order)).all())


def change_user(*, session: Session, user: t.StaffUser, name: str | None = None,
                role: str | None = None, active: bool | None = None) -> t.StaffUser:
    """``update_user``, for a form: a refused change is rolled back, so that the form shows
    the account as it is."""
    try:
        return update_user(session, user, name=name, role=role, active=active)
    except StaffError:
        session.rollback()
        raise


# --- what the accounts API takes and gives ------------------------------------------------------


class StaffOut(BaseModel):
    id: str
    email: str
    name: str
    role: str
    active: bool
    created_at: datetime
    last_signed_in_at: datetime | None


class MeOut(BaseModel):
    id: str
    email: str
    name: str
    role: str
    signed_in_by: str = Field(description="session (a browser) or token (an API token)")


class NewStaff(BaseModel):
    email: str = Field(max_length=254)
    name: str = Field(max_length=120)
    role: str = Field(description="caseworker, manager or admin")
    password: str = Field(description="at least 12 characters; give it to the person by a "
                          "safe route and ask them to change it")


class StaffChange(BaseModel):
    name: str | None = Field(None, max_length=120)
    role: str | None = None
    active: bool | None = None
