"""Who may do what: staff sign-in, sessions, roles, CSRF, and API tokens.

**Every route is checked here, once.** ``authorize`` is a dependency of the whole app: it
finds the route's minimum role in ``POLICY`` (by path and method; anything not listed needs a
signed-in caseworker, so a new route is closed until it is opened on purpose) and refuses the
request before the route runs:

- not signed in: a page redirects to ``/sign-in?next=…``; the API answers 401;
- signed in without the role: 403, as a page or as JSON;
- a signed-in browser's POST (or PUT, PATCH, DELETE) without its session's CSRF token (the
  form field ``csrf_token`` or the header ``X-CSRF-Token``): 403. Requests with an API token
  (``Authorization: Bearer ehc_…``) carry no cookie for another site to ride on, so they need
  no CSRF token.

Professionals outside the SEND team have no accounts: the signed link in each advice request
opens that one request (``api/advice_portal.py``), so ``/advice/…`` is public here.

The session cookie is ``HttpOnly``, ``SameSite=Lax``, and ``Secure`` whenever the service is
served over HTTPS (``EHC_PUBLIC_BASE_URL``) or ``EHC_COOKIE_SECURE`` says so.
"""

from __future__ import annotations

import secrets
from contextvars import ContextVar
from datetime import datetime
from typing import Annotated
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Depends, FastAPI, Request, Security
from fastapi.security import HTTPBearer
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlmodel import Session, select

from api.page_kit import error_view, page
from store import tables as t
from store.db import session_for
from config.settings import Settings
from services.staff import (
    ROLE_LABELS,
    ROLES,
    Staff,
    StaffError,
    authenticate_password,
    create_token,
    create_user,
    end_session,
    get_user,
    revoke_token,
    session_staff,
    set_password,
    start_session,
    token_staff,
    update_user,
    verify_password,
)

SESSION_COOKIE = "ehc_session"
SIGN_IN_COOKIE = "ehc_sign_in"  # the sign-in form's own CSRF token (double submit)
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
PUBLIC = None

# (path prefix, methods or None for all, minimum role or PUBLIC); the first match wins, and a
# path that matches nothing needs a caseworker. A prefix matches the path itself and what is
# under it ("/adqa" matches "/adqa" and "/adqa/digest", not "/adqaz").
POLICY: list[tuple[str, frozenset[str] | None, str | None]] = [
    ("/sign-in", None, PUBLIC),
    ("/sign-out", None, PUBLIC),  # it checks its own session and CSRF token
    ("/healthz", None, PUBLIC),
    ("/advice", None, PUBLIC),  # professionals: each signed link opens one request
    ("/summary", None, PUBLIC),  # the family-friendly public figures (action 1.1.5)
    ("/api/public", None, PUBLIC),
    # administrators: accounts, and bringing in a caseload
    ("/admin", None, "admin"),
    ("/api/admin", None, "admin"),
    ("/api/imports", None, "admin"),
    # managers: every late item, the statistics, the reports; changing the directory and
    # bringing phase-transfer reviews forward in bulk
    ("/late", None, "manager"),
    ("/due-soon", None, "manager"),
    ("/statistics", None, "manager"),
    ("/reports", None, "manager"),
    ("/adqa", None, "manager"),
    ("/api/worklist", None, "manager"),
    ("/api/statistics", None, "manager"),
    ("/api/reports", None, "manager"),
    ("/api/adqa", None, "manager"),
    ("/api/exports", None, "manager"),
    ("/api/cohort/bring-forward", None, "manager"),
    ("/phase-transfers/bring-forward", None, "manager"),
    ("/api/cases/{reference}/caseworker", frozenset({"PUT", "POST"}), "manager"),
    ("/api/plans/{reference}/caseworker", frozenset({"PUT", "POST"}), "manager"),
    ("/directory", frozenset({"POST", "PUT", "PATCH", "DELETE"}), "manager"),
    ("/api/directory", frozenset({"POST", "PUT", "PATCH", "DELETE"}), "manager"),
]
DEFAULT_ROLE = "caseworker"

_current: ContextVar[Staff | None] = ContextVar("ehc_staff", default=None)


def required_role(method: str, path: str) -> str | None:
    """The least role that may ``method`` ``path`` (a route's path template); None: anyone."""
    for prefix, methods, role in POLICY:
        if (path == prefix or path.startswith(prefix.rstrip("/") + "/")) and (
                methods is None or method in methods):
            return role
    return DEFAULT_ROLE


def current_staff() -> Staff | None:
    """Who is making the current request (set by ``authorize``), or None (public routes)."""
    return _current.get()


def current_actor() -> str | None:
    staff = _current.get()
    return staff.actor if staff else None


class NotSignedIn(Exception):
    pass


class Forbidden(Exception):
    def __init__(self, message: str) -> None:
        self.message = message


def _settings(request: Request) -> Settings:
    return request.app.state.settings


def _identify(request: Request, settings: Settings) -> Staff | None:
    header = request.headers.get("authorization", "")
    with session_for(settings.db_url) as s:
        if header.lower().startswith("bearer "):
            return token_staff(s, header[7:].strip())
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie:
            return session_staff(s, cookie, settings.session_idle_minutes)
    return None


async def _csrf_ok(request: Request, staff: Staff) -> bool:
    sent = request.headers.get("x-csrf-token")
    if sent is None:
        ctype = request.headers.get("content-type", "")
        if ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()  # Starlette keeps it for the route's own Form(...)
            value = form.get("csrf_token")
            sent = value if isinstance(value, str) else None
    return bool(sent) and secrets.compare_digest(sent, staff.csrf_token or "")


# Declares the bearer token in the OpenAPI document (the docs page's "Authorize" button); the
# check itself is ``authorize``'s.
bearer = HTTPBearer(auto_error=False, scheme_name="API token", description=(
    "An API token (ehc_…) made on your account page or with `ehc users token`. A signed-in "
    "browser session works too (with the X-CSRF-Token header on changes)."))


async def authorize(request: Request,
                    _: Annotated[object, Security(bearer)] = None) -> None:
    """The app-wide check (see the module's docstring)."""
    route = request.scope.get("route")
    path = getattr(route, "path_format", None) or request.url.path
    need = required_role(request.method, path)
    settings = _settings(request)
    staff = await run_in_threadpool(_identify, request, settings)
    request.state.staff = staff
    if need is PUBLIC:  # a professional's page acts for the professional, whoever is signed in
        _current.set(None)
        return
    _current.set(staff)
    if staff is None:
        raise NotSignedIn()
    if not staff.can(need):
        raise Forbidden(f"This needs the {ROLE_LABELS[need].lower()} role; you are signed in "
                        f"as a {ROLE_LABELS[staff.role].lower()}. Ask an administrator if "
                        "you need it")
    if staff.via == "session" and request.method not in SAFE_METHODS \
            and not await _csrf_ok(request, staff):
        raise Forbidden("This form has expired or did not come from this service. Go back, "
                        "reload the page and try again")


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def safe_next(target: str | None) -> str:
    """A redirect target after sign-in: a path on this site only (never //host or a URL)."""
    if not target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") \
            or "\\" in target:
        return "/"
    return target


def install(app: FastAPI) -> None:
    @app.exception_handler(NotSignedIn)
    async def _not_signed_in(request: Request, _: NotSignedIn) -> Response:
        if _is_api(request):
            return JSONResponse({"detail": "Sign in first: send an API token as "
                                 "'Authorization: Bearer ehc_…' (made on your account page), "
                                 "or use a signed-in browser session", "code": "not_signed_in"},
                                status_code=401, headers={"WWW-Authenticate": "Bearer"})
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/sign-in?next={quote(target, safe='')}", status_code=303)

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden) -> Response:
        if _is_api(request):
            return JSONResponse({"detail": exc.message, "code": "forbidden"}, status_code=403)

        return page(request, "pages/forbidden.html", 403, message=exc.message)

    @app.exception_handler(StaffError)
    async def _staff_error(_: Request, exc: StaffError) -> JSONResponse:
        return JSONResponse({"detail": exc.message, "code": exc.code}, status_code=exc.status)


def cookie_secure(settings: Settings) -> bool:
    if settings.cookie_secure is not None:
        return settings.cookie_secure
    return settings.public_base_url.startswith("https://")


def set_session_cookie(response: Response, settings: Settings, token: str) -> None:
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="lax", path="/",
                        secure=cookie_secure(settings),
                        max_age=int(settings.session_max_hours * 3600))


# --- the pages: sign in, sign out, your account, accounts (administrators) ------------------------

router = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api", tags=["accounts"])


def _db(request: Request) -> Session:
    return session_for(_settings(request).db_url)


def _page(request: Request, name: str, status: int = 200, **context):

    return page(request, name, status, **context)


def _errors(problems: dict[str, str], fields: dict[str, str]):

    return error_view(problems, fields)


SIGN_IN_FIELDS = {"email": "email", "password": "password"}


def _sign_in_form(request: Request, status: int = 200, problems: dict[str, str] | None = None,
                  email: str = "", next_url: str = "/", notice: str | None = None) -> Response:
    token = secrets.token_urlsafe(32)
    errors, field_errors = _errors(problems or {}, SIGN_IN_FIELDS)
    response = _page(request, "pages/sign_in.html", status, sign_in_token=token, email=email,
                     next_url=next_url, errors=errors, field_errors=field_errors,
                     notice=notice)
    response.set_cookie(SIGN_IN_COOKIE, token, httponly=True, samesite="strict",
                        secure=cookie_secure(_settings(request)), path="/sign-in",
                        max_age=3600)
    return response


NOTICES = {"signed-out": "You have signed out",
           "expired": "You were signed out because you had not done anything for a while"}


@router.get("/sign-in", response_class=HTMLResponse)
def sign_in_page(request: Request, next: str = "/", notice: str = "") -> Response:
    if request.state.staff is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return _sign_in_form(request, next_url=safe_next(next), notice=NOTICES.get(notice))


@router.post("/sign-in", response_class=HTMLResponse)
async def sign_in(request: Request) -> Response:
    form = await request.form()
    email = str(form.get("email") or "").strip()
    password = str(form.get("password") or "")
    next_url = safe_next(str(form.get("next") or "/"))
    sent, kept = str(form.get("sign_in_token") or ""), request.cookies.get(SIGN_IN_COOKIE, "")
    if not sent or not kept or not secrets.compare_digest(sent, kept):
        return _sign_in_form(request, 403, {"form": "This form has expired. Enter your email "
                                            "address and password again"}, email, next_url)
    problems = {}
    if not email:
        problems["email"] = "Enter your email address"
    if not password:
        problems["password"] = "Enter your password"
    if problems:
        return _sign_in_form(request, 422, problems, email, next_url)
    settings = _settings(request)

    def check() -> str:
        with session_for(settings.db_url) as s:
            user = authenticate_password(s, email, password)
            token, _ = start_session(s, user, settings.session_max_hours)
            return token

    try:
        token = await run_in_threadpool(check)
    except StaffError as exc:
        return _sign_in_form(request, 401, {"email": exc.message}, email, next_url)
    response = RedirectResponse(next_url, status_code=303)
    set_session_cookie(response, settings, token)
    response.delete_cookie(SIGN_IN_COOKIE, path="/sign-in")
    # A session from before this sign-in (another account on this browser) ends.
    old = request.cookies.get(SESSION_COOKIE)
    if old:
        from services.staff import digest

        with _db(request) as s:
            end_session(s, digest(old))
    return response


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    staff: Staff | None = request.state.staff
    response = RedirectResponse("/sign-in?notice=signed-out", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    if staff is None or staff.via != "session":
        return response
    if not await _csrf_ok(request, staff):
        raise Forbidden("This form has expired or did not come from this service. Go back, "
                        "reload the page and try again")
    with _db(request) as s:
        end_session(s, staff.session_id or "")
    return response


def _me(request: Request) -> Staff:
    staff = request.state.staff
    assert staff is not None  # authorize has checked
    return staff


def _account_view(request: Request, status: int = 200, problems: dict[str, str] | None = None,
                  new_token: str | None = None, done: str | None = None,
                  values: dict[str, str] | None = None) -> Response:
    me = _me(request)
    with _db(request) as s:
        tokens = s.exec(select(t.ApiToken).where(t.ApiToken.user_id == me.id)
                        .order_by(t.ApiToken.created_at.desc())).all()  # type: ignore[attr-defined]
    errors, field_errors = _errors(problems or {}, {"current_password": "current-password",
                                                     "password": "new-password",
                                                     "name": "token-name"})
    return _page(request, "pages/account.html", status, nav="account", me=me, tokens=tokens,
                 new_token=new_token, done=ACCOUNT_DONE.get(done or ""), errors=errors,
                 field_errors=field_errors, values=values or {}, role_labels=ROLE_LABELS)


ACCOUNT_DONE = {"password": "Your password has been changed",
                "token-revoked": "The API token has been revoked"}


@router.get("/account", response_class=HTMLResponse)
def account_page(request: Request, done: str = "") -> Response:
    return _account_view(request, done=done)


@router.post("/account/password", response_class=HTMLResponse)
async def change_password(request: Request) -> Response:
    form = await request.form()
    current = str(form.get("current_password") or "")
    new = str(form.get("password") or "")
    me = _me(request)
    with _db(request) as s:
        user = get_user(s, me.id)
        if not verify_password(user, current):
            return _account_view(request, 422, {"current_password": "Your current password is "
                                                "not right"})
        try:
            set_password(s, user, new, end_other_sessions_than=me.session_id)
        except StaffError as exc:
            return _account_view(request, exc.status, {"password": exc.message})
    return RedirectResponse("/account?done=password", status_code=303)


@router.post("/account/tokens", response_class=HTMLResponse)
async def new_token_page(request: Request) -> Response:
    form = await request.form()
    name = str(form.get("name") or "")
    with _db(request) as s:
        try:
            token, _ = create_token(s, get_user(s, _me(request).id), name)
        except StaffError as exc:
            return _account_view(request, exc.status, {"name": exc.message}, values={"name": name})
    return _account_view(request, 201, new_token=token)


@router.post("/account/tokens/{token_id}/revoke", response_class=HTMLResponse)
def revoke_own_token(token_id: str, request: Request) -> Response:
    with _db(request) as s:
        revoke_token(s, token_id, user_id=_me(request).id)
    return RedirectResponse("/account?done=token-revoked", status_code=303)


USER_FIELDS = {"name": "name", "email": "email", "role": "role", "password": "password",
               "active": "active"}
ADMIN_DONE = {"added": "Account added", "changed": "The account has been changed",
              "password": "A new password has been set; give it to the person by a safe route, "
                          "and ask them to change it"}


@router.get("/admin/users", response_class=HTMLResponse)
def users_page(request: Request, done: str = "") -> Response:
    with _db(request) as s:
        users = s.exec(select(t.StaffUser).order_by(t.StaffUser.active.desc(),  # type: ignore[attr-defined]
                                                    t.StaffUser.name)).all()
    return _page(request, "pages/admin_users.html", nav="admin", users=users,
                 role_labels=ROLE_LABELS, done=ADMIN_DONE.get(done))


def _new_user_form(request: Request, status: int = 200, problems=None, values=None) -> Response:
    errors, field_errors = _errors(problems or {}, USER_FIELDS)
    return _page(request, "pages/admin_user_new.html", status, nav="admin", roles=ROLES,
                 role_labels=ROLE_LABELS, errors=errors, field_errors=field_errors,
                 values=values or {"role": "caseworker"})


@router.get("/admin/users/new", response_class=HTMLResponse)
def new_user_page(request: Request) -> Response:
    return _new_user_form(request)


@router.post("/admin/users/new", response_class=HTMLResponse)
async def add_user_page(request: Request) -> Response:
    form = await request.form()
    values = {k: str(form.get(k) or "") for k in ("name", "email", "role")}
    with _db(request) as s:
        try:
            create_user(s, password=str(form.get("password") or ""), **values)
        except StaffError as exc:
            return _new_user_form(request, exc.status, {exc.field or "form": exc.message},
                                  values)
    return RedirectResponse("/admin/users?done=added", status_code=303)


def _user_form(request: Request, user: t.StaffUser, status: int = 200, problems=None):
    errors, field_errors = _errors(problems or {}, USER_FIELDS)
    return _page(request, "pages/admin_user.html", status, nav="admin", user=user, roles=ROLES,
                 role_labels=ROLE_LABELS, errors=errors, field_errors=field_errors)


@router.get("/admin/users/{user_id}", response_class=HTMLResponse)
def user_page(user_id: str, request: Request) -> Response:
    with _db(request) as s:
        return _user_form(request, get_user(s, user_id))


@router.post("/admin/users/{user_id}", response_class=HTMLResponse)
async def change_user_page(user_id: str, request: Request) -> Response:
    form = await request.form()
    with _db(request) as s:
        user = get_user(s, user_id)
        try:
            update_user(s, user, name=str(form.get("name") or ""),
                        role=str(form.get("role") or ""),
                        active=form.get("active") == "yes")
        except StaffError as exc:
            s.rollback()
            return _user_form(request, get_user(s, user_id), exc.status,
                              {exc.field or "form": exc.message})
    return RedirectResponse("/admin/users?done=changed", status_code=303)


@router.post("/admin/users/{user_id}/password", response_class=HTMLResponse)
async def reset_password_page(user_id: str, request: Request) -> Response:
    form = await request.form()
    with _db(request) as s:
        user = get_user(s, user_id)
        try:
            set_password(s, user, str(form.get("password") or ""))
        except StaffError as exc:
            return _user_form(request, user, exc.status, {"password": exc.message})
    return RedirectResponse("/admin/users?done=password", status_code=303)


# --- the JSON API ---------------------------------------------------------------------------------


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


def _db_dep(request: Request):
    with _db(request) as s:
        yield s


DbDep = Annotated[Session, Depends(_db_dep)]


@api.get("/me", response_model=MeOut, summary="Who you are signed in as")
def me(request: Request) -> MeOut:
    staff = _me(request)
    return MeOut(id=staff.id, email=staff.email, name=staff.name, role=staff.role,
                 signed_in_by=staff.via)


@api.get("/admin/users", response_model=list[StaffOut], summary="Staff accounts")
def list_users(s: DbDep) -> list[StaffOut]:
    return [StaffOut.model_validate(u, from_attributes=True)
            for u in s.exec(select(t.StaffUser).order_by(t.StaffUser.email)).all()]


@api.post("/admin/users", response_model=StaffOut, status_code=201,
          summary="Add a staff account")
def add_user(body: NewStaff, s: DbDep) -> StaffOut:
    return StaffOut.model_validate(create_user(s, **body.model_dump()), from_attributes=True)


@api.patch("/admin/users/{user_id}", response_model=StaffOut,
           summary="Change an account's name, role or whether it can sign in")
def change_user(user_id: str, body: StaffChange, s: DbDep) -> StaffOut:
    user = update_user(s, get_user(s, user_id), **body.model_dump())
    return StaffOut.model_validate(user, from_attributes=True)
