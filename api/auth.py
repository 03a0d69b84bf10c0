"""Who may do what: staff sign-in, sessions, roles, CSRF, and API tokens.

**Every route is checked here, once.** ``authorize`` is a dependency of the whole app: it
finds the route's minimum role in ``POLICY`` (by its path template and method; the app does not
start unless every route has exactly one rule there and every rule a route, ``check_policy``,
so a new route is closed until someone gives it a rule) and refuses the request before the
route runs:

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
from fastapi.routing import APIRoute
from starlette.routing import Mount

from api.deps import get_settings, set_acting_staff
from api.page_kit import page
from api.problems import problem
from config.settings import Settings
from services.staff import ROLE_LABELS, Staff, StaffError, identify

SESSION_COOKIE = "ehc_session"
SIGN_IN_COOKIE = "ehc_sign_in"  # the sign-in form's own CSRF token (double submit)
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
PUBLIC = None
ANY = None  # every method the route has
WRITE = frozenset({"POST", "PUT", "PATCH", "DELETE"})

# Who may use each route: (route, methods or ANY, least role or PUBLIC). ``route`` is a route's
# path template exactly as it is declared ("/api/cases/{reference}/caseworker"), or a prefix
# ending in "/*" ("/admin/*": every route under /admin/). Every route of the app must match
# exactly one rule (by path and method) and every rule must match a route, or the app does not
# start (``check_policy``, run by ``create_app``): a new route is closed until someone names it
# here, and a rule cannot name a route that does not exist. A prefix may only close (manager or
# administrator): public and caseworker routes are named one by one, so that nothing new is
# opened by accident. A GET rule covers HEAD. A new route needs one line here, in its group:
# its path template as declared, ANY (or the methods), and the least role; the error the app
# stops with names each route that has none.
POLICY: list[tuple[str, frozenset[str] | None, str | None]] = [
    # --- anyone: signing in, the professionals' signed links, the public figures, the docs ---
    ("/sign-in", ANY, PUBLIC),
    ("/sign-in/council", ANY, PUBLIC),  # the council's accounts (OpenID Connect)
    ("/sign-in/council/callback", ANY, PUBLIC),
    ("/sign-in/council/signed-out", ANY, PUBLIC),
    ("/sign-out", ANY, PUBLIC),  # it checks its own session and CSRF token
    ("/healthz", ANY, PUBLIC),
    ("/advice/{token}", ANY, PUBLIC),  # professionals: each signed link opens one request
    ("/advice/{token}/delay", ANY, PUBLIC),
    ("/summary", ANY, PUBLIC),  # the family-friendly public figures (action 1.1.5)
    ("/api/public/summary", ANY, PUBLIC),
    ("/openapi.json", ANY, PUBLIC),  # the API's description and its two pages
    ("/docs", ANY, PUBLIC),
    ("/redoc", ANY, PUBLIC),
    # --- administrators: accounts, and bringing in a caseload ---
    ("/admin/*", ANY, "admin"),
    ("/api/admin/*", ANY, "admin"),
    ("/api/imports/*", ANY, "admin"),
    # --- managers: every late item, the statistics, the reports; giving a case or plan to
    # another caseworker, changing the directory, bringing phase-transfer reviews forward ---
    ("/late", ANY, "manager"),
    ("/statistics", ANY, "manager"),
    ("/adqa/*", ANY, "manager"),
    ("/api/adqa/*", ANY, "manager"),
    ("/api/worklist/*", ANY, "manager"),
    ("/api/statistics/*", ANY, "manager"),
    ("/api/reports/*", ANY, "manager"),
    ("/api/exports/*", ANY, "manager"),
    ("/api/phase-transfers/bring-forward", ANY, "manager"),
    ("/phase-transfers/bring-forward", ANY, "manager"),
    ("/api/cases/{reference}/caseworker", ANY, "manager"),
    ("/api/plans/{reference}/caseworker", ANY, "manager"),
    ("/directory/*", WRITE, "manager"),
    ("/api/directory/*", WRITE, "manager"),
    # --- caseworkers: their own account ---
    ("/account", ANY, "caseworker"),
    ("/account/password", ANY, "caseworker"),
    ("/account/tokens", ANY, "caseworker"),
    ("/account/tokens/{token_id}/revoke", ANY, "caseworker"),
    ("/api/me", ANY, "caseworker"),
    # --- caseworkers: cases and reviews, as pages ---
    ("/", ANY, "caseworker"),
    ("/cases", ANY, "caseworker"),
    ("/cases/{reference}", ANY, "caseworker"),
    ("/cases/{reference}/act/{action}", ANY, "caseworker"),
    ("/assessments/new", ANY, "caseworker"),
    ("/plans", ANY, "caseworker"),
    ("/plans/{reference}", ANY, "caseworker"),
    ("/phase-transfers", ANY, "caseworker"),
    # --- caseworkers: cases and reviews, by the API ---
    ("/api/cases", ANY, "caseworker"),
    ("/api/cases/{reference}", ANY, "caseworker"),
    ("/api/assessments", ANY, "caseworker"),
    ("/api/cases/{reference}/decision-to-assess", ANY, "caseworker"),
    ("/api/cases/{reference}/advice-requests", ANY, "caseworker"),
    ("/api/cases/{reference}/advice/{key}/received", ANY, "caseworker"),
    ("/api/cases/{reference}/advice-circulated", ANY, "caseworker"),
    ("/api/cases/{reference}/plan-decision", ANY, "caseworker"),
    ("/api/cases/{reference}/draft", ANY, "caseworker"),
    ("/api/cases/{reference}/setting-consultations", ANY, "caseworker"),
    ("/api/cases/{reference}/setting-consultations/{key}/response", ANY, "caseworker"),
    ("/api/cases/{reference}/family-comments", ANY, "caseworker"),
    ("/api/cases/{reference}/final-plan", ANY, "caseworker"),
    ("/api/cases/{reference}/exceptions", ANY, "caseworker"),
    ("/api/cases/{reference}/exceptions/{exception_id}/withdrawal", ANY, "caseworker"),
    ("/api/cases/{reference}/closure", ANY, "caseworker"),
    ("/api/cases/{reference}/submissions/{submission_id}/documents/{document_id}", ANY,
     "caseworker"),
    ("/api/cases/{reference}/meeting", ANY, "caseworker"),
    ("/api/cases/{reference}/invitations", ANY, "caseworker"),
    ("/api/cases/{reference}/meeting-held", ANY, "caseworker"),
    ("/api/cases/{reference}/review-report", ANY, "caseworker"),
    ("/api/cases/{reference}/cease-consultation", ANY, "caseworker"),
    ("/api/cases/{reference}/review-decision", ANY, "caseworker"),
    ("/api/cases/{reference}/amendment-comments", ANY, "caseworker"),
    ("/api/cases/{reference}/amended-plan", ANY, "caseworker"),
    ("/api/cases/{reference}/not-amended", ANY, "caseworker"),
    ("/api/cases/{reference}/cessation", ANY, "caseworker"),
    ("/api/cases/{reference}/plan-closure", ANY, "caseworker"),
    ("/api/cases/{reference}/placement", ANY, "caseworker"),
    ("/api/cases/{reference}/phase-transfer", ANY, "caseworker"),
    ("/api/cases/{reference}/post16-move", ANY, "caseworker"),
    ("/api/cases/{reference}/linked-plans", ANY, "caseworker"),
    ("/api/linked-plans/{plan_id}", ANY, "caseworker"),
    ("/api/plans", ANY, "caseworker"),
    ("/api/plans/{reference}", ANY, "caseworker"),
    ("/api/phase-transfers", ANY, "caseworker"),
    ("/api/caseworkers", ANY, "caseworker"),
    ("/api/timescales/assessment", ANY, "caseworker"),
    # --- caseworkers: the directory, to read (changing it is the managers' rule above) ---
    ("/directory", frozenset({"GET"}), "caseworker"),
    ("/directory/services/new", frozenset({"GET"}), "caseworker"),
    ("/directory/services/{service_id}", frozenset({"GET"}), "caseworker"),
    ("/directory/services/{service_id}/edit", frozenset({"GET"}), "caseworker"),
    ("/directory/contacts/{contact_id}/edit", frozenset({"GET"}), "caseworker"),
    ("/directory/adqa", frozenset({"GET"}), "caseworker"),
    ("/directory/adqa/{member_id}/edit", frozenset({"GET"}), "caseworker"),
    ("/api/directory/services", frozenset({"GET"}), "caseworker"),
    ("/api/directory/services/{service_id}", frozenset({"GET"}), "caseworker"),
    ("/api/directory/adqa-members", frozenset({"GET"}), "caseworker"),
]
# Mounted apps (static files) are served without ``authorize``: each must be named here, as
# open to anyone. A mount that is not named stops the app starting. (Not every one is there on
# every server: the GOV.UK and docs assets are mounted only when installed.)
PUBLIC_MOUNTS = frozenset({"/static", "/govuk", "/assets", "/docs-assets/swagger-ui",
                           "/docs-assets/redoc"})


class PolicyError(RuntimeError):
    """The role table and the app's routes disagree; the message says what to change."""


def _matches(rule: str, methods: frozenset[str] | None, method: str, path: str) -> bool:
    if methods is not None and method not in methods and not (
            method == "HEAD" and "GET" in methods):
        return False
    if rule.endswith("/*"):
        return path.startswith(rule[:-1])
    return path == rule


def rules_for(method: str, path: str) -> list[tuple[str, frozenset[str] | None, str | None]]:
    """The rules of ``POLICY`` that match ``method`` ``path`` (a route's path template):
    exactly one, for every route of the app (``check_policy``)."""
    return [rule for rule in POLICY if _matches(rule[0], rule[1], method, path)]


def required_role(method: str, path: str) -> str | None:
    """The least role that may ``method`` ``path`` (a route's path template); None: anyone.
    ``LookupError`` for a path the table does not name (never a route of the app)."""
    rules = rules_for(method, path)
    if not rules:
        raise LookupError(f"api/auth.py POLICY has no rule for {method} {path}")
    return rules[0][2]


def _methods(route: object) -> list[str]:
    if getattr(route, "methods", None) is None:  # a websocket: it may only be PUBLIC (below)
        return ["WEBSOCKET"]
    methods = set(route.methods)  # type: ignore[attr-defined]
    if "GET" in methods:
        methods.discard("HEAD")
    return sorted(methods)


def app_routes(app: FastAPI) -> list[tuple[str, str, bool]]:
    """Every (method, path template, checked) of the app, as it matches requests: ``checked``
    when ``authorize`` runs for it (a FastAPI route), not when it is a plain Starlette route
    (the docs pages) or a websocket (method ``WEBSOCKET``). Mounts are ``("*", mount path,
    False)``."""
    out: list[tuple[str, str, bool]] = []

    def walk(entries) -> None:  # type: ignore[no-untyped-def]
        for entry in entries:
            if hasattr(entry, "effective_route_contexts"):  # FastAPI's included router
                for ctx in entry.effective_route_contexts():
                    route = ctx.original_route
                    if isinstance(route, APIRoute) and route.path_format != ctx.path_format:
                        raise PolicyError(
                            f"The route {ctx.path_format} was included with a prefix: "
                            "authorize looks a route up by its own path, so give the prefix "
                            "to APIRouter(prefix=...), not to include_router")
                    out.extend((m, ctx.path_format, isinstance(route, APIRoute))
                               for m in _methods(route))
            elif isinstance(entry, Mount):
                out.append(("*", entry.path, False))
            elif not hasattr(entry, "path_format"):
                raise PolicyError(f"api/auth.py cannot check a {type(entry).__name__} route: "
                                  "serve it with FastAPI routes or a mount")
            else:
                out.extend((m, entry.path_format, isinstance(entry, APIRoute))
                           for m in _methods(entry))

    walk(app.routes)
    return out


def _show(rule: tuple[str, frozenset[str] | None, str | None]) -> str:
    path, methods, role = rule
    shown = "ANY" if methods is None else (
        "WRITE" if methods == WRITE else f"frozenset({set(sorted(methods))!r})")
    return f'("{path}", {shown}, {"PUBLIC" if role is PUBLIC else repr(role)})'


def check_policy(app: FastAPI) -> dict[tuple[str, str], str | None]:
    """Check ``POLICY`` against the app's routes (``PolicyError`` naming every rule to add,
    correct or remove) and return the least role of each (method, path template)."""
    problems: list[str] = []
    for rule in POLICY:
        path, methods, role = rule
        if role is not PUBLIC and role not in ROLE_LABELS:
            problems.append(f"{_show(rule)}: the role must be PUBLIC, "
                            f"{', '.join(map(repr, ROLE_LABELS))}")
        if path.endswith("/*") and role in (PUBLIC, "caseworker"):
            problems.append(f"{_show(rule)}: a prefix may only close (manager or admin); name "
                            "each public or caseworker route by its path")
    routes = app_routes(app)
    used: set[int] = set()
    roles: dict[tuple[str, str], str | None] = {}
    missing: dict[str, list[str]] = {}
    for method, path, checked in routes:
        if method == "*":
            if path not in PUBLIC_MOUNTS:
                problems.append(f"The mount {path} is served without the role check: if it "
                                "serves files anyone may read, add it to PUBLIC_MOUNTS in "
                                "api/auth.py; otherwise serve it with routes")
            continue
        found = [i for i, rule in enumerate(POLICY) if _matches(rule[0], rule[1], method, path)]
        used.update(found)
        if not found:
            missing.setdefault(path, []).append(method)
        elif len(found) > 1:
            problems.append(f"{method} {path} matches {len(found)} rules, "
                            f"{' and '.join(_show(POLICY[i]) for i in found)}: a route must "
                            "match exactly one; narrow one of them (by its methods or path)")
        else:
            role = POLICY[found[0]][2]
            roles[(method, path)] = role
            if not checked and role is not PUBLIC:
                problems.append(f"{method} {path} is a plain Starlette route, served without "
                                f"the role check, but {_show(POLICY[found[0]])} says it needs "
                                "a role: make it a FastAPI route, or make its rule PUBLIC")
    for path, methods in missing.items():
        problems.append(f"No rule names {', '.join(methods)} {path}: add a line to POLICY in "
                        f'api/auth.py, such as ("{path}", ANY, "caseworker"), with the least '
                        'role that may use it (PUBLIC, "caseworker", "manager" or "admin")')
    for i, rule in enumerate(POLICY):
        if i not in used:
            problems.append(f"{_show(rule)} matches no route of the app: write the route's "
                            "path template as the route declares it, or remove the rule")
    if problems:
        raise PolicyError("The role table (POLICY in api/auth.py) does not fit the app's "
                          "routes:\n- " + "\n- ".join(problems))
    return roles


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
    try:
        need = required_role(request.method, path)
    except LookupError:  # never, for a route of an app that started (check_policy)
        raise Forbidden("This address is not in the service's table of who may use what. "
                        "Tell the service's administrators which address you used") from None
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
