"""Signing in and out, your account (password, API tokens), and the accounts administrators
manage, as pages and as the JSON API (``/api/me``, ``/api/admin/users``).

Who may use each of these is ``api/auth.py``'s POLICY, checked before the route runs; the
rules of accounts, passwords, sessions and tokens are ``services/staff.py``'s. The sign-in
form carries its own CSRF token (a double-submit cookie, ``SIGN_IN_COOKIE``), as nobody is
signed in yet; signing out checks the session's own CSRF token.
"""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.auth import (
    SESSION_COOKIE,
    SIGN_IN_COOKIE,
    cookie_secure,
    require_csrf,
    safe_next,
    set_session_cookie,
)
from api.deps import SessionDep, get_settings
from api.page_kit import error_view, page
from services import council_sign_in as council
from services import staff as accounts
from services.staff import (
    ROLE_LABELS,
    ROLES,
    MeOut,
    NewStaff,
    Staff,
    StaffChange,
    StaffError,
    StaffOut,
)

# --- the pages: sign in, sign out, your account, accounts (administrators) ------------------------

router = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api", tags=["accounts"])

SIGN_IN_FIELDS = {"email": "email", "password": "password"}


def _sign_in_form(request: Request, status: int = 200, problems: dict[str, str] | None = None,
                  email: str = "", next_url: str = "/", notice: str | None = None) -> Response:
    token = secrets.token_urlsafe(32)
    errors, field_errors = error_view(problems or {}, SIGN_IN_FIELDS)
    choices = council.sign_in_choices(settings=get_settings(request))
    response = page(request, "pages/sign_in.html", status, sign_in_token=token, email=email,
                    next_url=next_url, errors=errors, field_errors=field_errors,
                    notice=notice, choices=choices)
    response.set_cookie(SIGN_IN_COOKIE, token, httponly=True, samesite="strict",
                        secure=cookie_secure(get_settings(request)), path="/sign-in",
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
async def sign_in(request: Request, session: SessionDep) -> Response:
    form = await request.form()
    email = str(form.get("email") or "").strip()
    password = str(form.get("password") or "")
    next_url = safe_next(str(form.get("next") or "/"))
    sent, kept = str(form.get("sign_in_token") or ""), request.cookies.get(SIGN_IN_COOKIE, "")
    if not council.sign_in_choices(settings=get_settings(request)).passwords:
        return _sign_in_form(request, 403, {"form": "This service does not take passwords: "
                                            "sign in with your council account"},
                             next_url=next_url)
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
    settings = get_settings(request)
    try:  # argon2 takes its time: off the event loop
        token = await run_in_threadpool(
            accounts.sign_in, session=session, email=email, password=password,
            hours=settings.session_max_hours, old_cookie=request.cookies.get(SESSION_COOKIE))
    except StaffError as exc:
        return _sign_in_form(request, 401, {"email": exc.message}, email, next_url)
    response = RedirectResponse(next_url, status_code=303)
    set_session_cookie(response, settings, token)
    response.delete_cookie(SIGN_IN_COOKIE, path="/sign-in")
    return response


@router.post("/sign-out")
async def sign_out(request: Request, session: SessionDep) -> Response:
    staff: Staff | None = request.state.staff
    response = RedirectResponse("/sign-in?notice=signed-out", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    if staff is None or staff.via != "session":
        return response
    await require_csrf(request, staff)
    # A session begun at the council's provider is ended there too, when it can be.
    response.headers["location"] = await run_in_threadpool(
        council.sign_out, session=session, settings=get_settings(request),
        session_id=staff.session_id or "")
    return response


def _me(request: Request) -> Staff:
    staff = request.state.staff
    assert staff is not None  # authorize has checked
    return staff


def _account_view(request: Request, session, status: int = 200,
                  problems: dict[str, str] | None = None, new_token: str | None = None,
                  done: str | None = None, values: dict[str, str] | None = None) -> Response:
    me = _me(request)
    own = accounts.own_account(session=session, staff=me)
    errors, field_errors = error_view(problems or {}, {"current_password": "current-password",
                                                       "password": "new-password",
                                                       "name": "token-name"})
    return page(request, "pages/account.html", status, nav="account", me=me, tokens=own.tokens,
                has_password=own.has_password,
                new_token=new_token, done=ACCOUNT_DONE.get(done or ""), errors=errors,
                field_errors=field_errors, values=values or {}, role_labels=ROLE_LABELS)


ACCOUNT_DONE = {"password": "Your password has been changed",
                "token-revoked": "The API token has been revoked"}


@router.get("/account", response_class=HTMLResponse)
def account_page(request: Request, session: SessionDep, done: str = "") -> Response:
    return _account_view(request, session, done=done)


@router.post("/account/password", response_class=HTMLResponse)
async def change_password(request: Request, session: SessionDep) -> Response:
    form = await request.form()
    try:
        accounts.change_own_password(session=session, staff=_me(request),
                            current=str(form.get("current_password") or ""),
                            new=str(form.get("password") or ""))
    except StaffError as exc:
        if exc.field not in ("current_password", "password", "form"):
            raise  # no such account: the API's answer
        return _account_view(request, session, exc.status, {exc.field: exc.message})
    return RedirectResponse("/account?done=password", status_code=303)


@router.post("/account/tokens", response_class=HTMLResponse)
async def new_token_page(request: Request, session: SessionDep) -> Response:
    form = await request.form()
    name = str(form.get("name") or "")
    try:
        token, _ = accounts.create_token(session, accounts.get_user(session, _me(request).id),
                                         name)
    except StaffError as exc:
        return _account_view(request, session, exc.status, {"name": exc.message},
                             values={"name": name})
    return _account_view(request, session, 201, new_token=token)


@router.post("/account/tokens/{token_id}/revoke", response_class=HTMLResponse)
def revoke_own_token(token_id: str, request: Request, session: SessionDep) -> Response:
    accounts.revoke_token(session, token_id, user_id=_me(request).id)
    return RedirectResponse("/account?done=token-revoked", status_code=303)


USER_FIELDS = {"name": "name", "email": "email", "role": "role", "password": "password",
               "active": "active"}
ADMIN_DONE = {"added": "Account added", "changed": "The account has been changed",
              "password": "A new password has been set; give it to the person by a safe route, "
                          "and ask them to change it"}


@router.get("/admin/users", response_class=HTMLResponse)
def users_page(request: Request, session: SessionDep, done: str = "") -> Response:
    users = accounts.list_users(session=session, active_first=True)
    return page(request, "pages/admin_users.html", nav="admin", users=users,
                role_labels=ROLE_LABELS, done=ADMIN_DONE.get(done))


def _new_user_form(request: Request, status: int = 200, problems=None, values=None) -> Response:
    errors, field_errors = error_view(problems or {}, USER_FIELDS)
    return page(request, "pages/admin_user_new.html", status, nav="admin", roles=ROLES,
                role_labels=ROLE_LABELS, errors=errors, field_errors=field_errors,
                values=values or {"role": "caseworker"})


@router.get("/admin/users/new", response_class=HTMLResponse)
def new_user_page(request: Request) -> Response:
    return _new_user_form(request)


@router.post("/admin/users/new", response_class=HTMLResponse)
async def add_user_page(request: Request, session: SessionDep) -> Response:
    form = await request.form()
    values = {k: str(form.get(k) or "") for k in ("name", "email", "role")}
    try:
        accounts.create_user(session, password=str(form.get("password") or ""), **values)
    except StaffError as exc:
        return _new_user_form(request, exc.status, {exc.field or "form": exc.message}, values)
    return RedirectResponse("/admin/users?done=added", status_code=303)


def _user_form(request: Request, user, status: int = 200, problems=None):
    errors, field_errors = error_view(problems or {}, USER_FIELDS)
    return page(request, "pages/admin_user.html", status, nav="admin", user=user, roles=ROLES,
                role_labels=ROLE_LABELS, errors=errors, field_errors=field_errors)


@router.get("/admin/users/{user_id}", response_class=HTMLResponse)
def user_page(user_id: str, request: Request, session: SessionDep) -> Response:
    return _user_form(request, accounts.get_user(session, user_id))


@router.post("/admin/users/{user_id}", response_class=HTMLResponse)
async def change_user_page(user_id: str, request: Request, session: SessionDep) -> Response:
    form = await request.form()
    user = accounts.get_user(session, user_id)
    try:
        accounts.change_user(session=session, user=user, name=str(form.get("name") or ""),
                    role=str(form.get("role") or ""), active=form.get("active") == "yes")
    except StaffError as exc:  # rolled back: the form shows the account as it is
        return _user_form(request, user, exc.status, {exc.field or "form": exc.message})
    return RedirectResponse("/admin/users?done=changed", status_code=303)


@router.post("/admin/users/{user_id}/password", response_class=HTMLResponse)
async def reset_password_page(user_id: str, request: Request, session: SessionDep) -> Response:
    form = await request.form()
    user = accounts.get_user(session, user_id)
    try:
        accounts.set_password(session, user, str(form.get("password") or ""))
    except StaffError as exc:
        return _user_form(request, user, exc.status, {"password": exc.message})
    return RedirectResponse("/admin/users?done=password", status_code=303)


# --- the JSON API ---------------------------------------------------------------------------------


@api.get("/me", response_model=MeOut, summary="Who you are signed in as")
def me(request: Request) -> MeOut:
    staff = _me(request)
    return MeOut(id=staff.id, email=staff.email, name=staff.name, role=staff.role,
                 signed_in_by=staff.via)


@api.get("/admin/users", response_model=list[StaffOut], summary="Staff accounts")
def list_users(session: SessionDep) -> list[StaffOut]:
    return [StaffOut.model_validate(u, from_attributes=True)
            for u in accounts.list_users(session=session)]


@api.post("/admin/users", response_model=StaffOut, status_code=201,
          summary="Add a staff account")
def add_user(body: NewStaff, session: SessionDep) -> StaffOut:
    return StaffOut.model_validate(accounts.create_user(session, **body.model_dump()),
                                   from_attributes=True)


@api.patch("/admin/users/{user_id}", response_model=StaffOut,
           summary="Change an account's name, role or whether it can sign in")
def change_user(user_id: str, body: StaffChange, session: SessionDep) -> StaffOut:
    user = accounts.update_user(session, accounts.get_user(session, user_id),
                                **body.model_dump())
    return StaffOut.model_validate(user, from_attributes=True)
