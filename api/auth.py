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

The pages and API that sign in and out and manage accounts are ``api/accounts.py``; who a
request comes from, and the rules of accounts, are ``services/staff.py``'s. This module imports
no route dependencies (``api.deps`` imports it, for who is acting).
"""

from __future__ import annotations

import secrets
from typing import Annotated
from urllib.parse import quote, urlsplit

from fastapi import FastAPI, Request, Security
from fastapi.security import HTTPBearer
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, RedirectResponse, Response

from api.deps import get_settings, set_acting_staff
from api.page_kit import page
from api.problems import problem
from config.settings import Settings
from services.staff import ROLE_LABELS, Staff, StaffError, identify

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

def required_role(method: str, path: str) -> str | None:
    """The least role that may ``method`` ``path`` (a route's path template); None: anyone."""
    for prefix, methods, role in POLICY:
        if (path == prefix or path.startswith(prefix.rstrip("/") + "/")) and (
                methods is None or method in methods):
            return role
    return DEFAULT_ROLE


class NotSignedIn(Exception):
    pass


class Forbidden(Exception):
    def __init__(self, message: str) -> None:
        self.message = message


def _identify(request: Request, settings: Settings) -> Staff | None:
    header = request.headers.get("authorization", "")
    bearer = header[7:].strip() if header.lower().startswith("bearer ") else None
    return identify(settings=settings, bearer=bearer,
                    cookie=request.cookies.get(SESSION_COOKIE))


async def _csrf_ok(request: Request, staff: Staff) -> bool:
    sent = request.headers.get("x-csrf-token")
    if sent is None:
        ctype = request.headers.get("content-type", "")
        if ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()  # Starlette keeps it for the route's own Form(...)
            value = form.get("csrf_token")
            sent = value if isinstance(value, str) else None
    return bool(sent) and secrets.compare_digest(sent, staff.csrf_token or "")


async def require_csrf(request: Request, staff: Staff) -> None:
    """A signed-in browser's change must carry its session's CSRF token (else 403)."""
    if not await _csrf_ok(request, staff):
        raise Forbidden("This form has expired or did not come from this service. Go back, "
                        "reload the page and try again")


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
    settings = get_settings(request)
    staff = await run_in_threadpool(_identify, request, settings)
    request.state.staff = staff
    if need is PUBLIC:  # a professional's page acts for the professional, whoever is signed in
        set_acting_staff(None)
        return
    set_acting_staff(staff)
    if staff is None:
        raise NotSignedIn()
    if not staff.can(need):
        raise Forbidden(f"This needs the {ROLE_LABELS[need].lower()} role; you are signed in "
                        f"as a {ROLE_LABELS[staff.role].lower()}. Ask an administrator if "
                        "you need it")
    if staff.via == "session" and request.method not in SAFE_METHODS:
        await require_csrf(request, staff)


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
            return JSONResponse(problem("Sign in first: send an API token as 'Authorization: "
                                        "Bearer ehc_…' (made on your account page), or use a "
                                        "signed-in browser session", "not_signed_in"),
                                status_code=401, headers={"WWW-Authenticate": "Bearer"})
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/sign-in?next={quote(target, safe='')}", status_code=303)

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden) -> Response:
        if _is_api(request):
            return JSONResponse(problem(exc.message, "forbidden"), status_code=403)
        return page(request, "pages/forbidden.html", 403, message=exc.message)

    @app.exception_handler(StaffError)
    async def _staff_error(_: Request, exc: StaffError) -> JSONResponse:
        return JSONResponse(problem(exc.message, exc.code), status_code=exc.status)


def cookie_secure(settings: Settings) -> bool:
    if settings.cookie_secure is not None:
        return settings.cookie_secure
    return settings.public_base_url.startswith("https://")


def set_session_cookie(response: Response, settings: Settings, token: str) -> None:
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="lax", path="/",
                        secure=cookie_secure(settings),
                        max_age=int(settings.session_max_hours * 3600))
