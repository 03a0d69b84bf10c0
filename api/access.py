"""Which routes show a child's record, and the access log's writer for them
(``services/access_log.py``; docs/data-protection.md, "The access log").

Every GET route of the app is in exactly one of the two tables below (a test walks the app's
routes and checks it, then calls each logged route over HTTP and finds its row), so a new route
cannot show a child's record without being logged, or without saying why it is not:

- ``LOGGED``: the route shows or exports a child's record. ``by="route"``: this module's
  middleware writes the row from the route's ``{reference}``, once the answer is known to be a
  success (its status, before its first byte goes); a reference that names no case or plan
  showed nothing and is not logged. ``by="service"``: the service the route calls writes it,
  because only it knows which children an export holds, or which case an advice link opens.
- ``NOT_A_RECORD``: the route shows no child's record, with the reason. Lists (my cases, all
  cases, the late list, the plans, the phase-transfer cohort) show a reference, dates and at
  most a given name and an initial: they are how staff find a record, and opening it is logged.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi.concurrency import run_in_threadpool

from services import access_log


@dataclass(frozen=True)
class Rule:
    kind: str  # a key of services.access_log.KINDS
    what: str  # in words; "{name}" is the route's path parameter of that name
    by: str = "route"  # "route" (the middleware here) or "service"


LOGGED: dict[tuple[str, str], Rule] = {
    ("GET", "/cases/{reference}"): Rule("page", "The case page"),
    ("GET", "/cases/{reference}/act/{action}"): Rule("page", "The form of a step"),
    ("GET", "/plans/{reference}"): Rule("page", "The plan page"),
    ("GET", "/api/cases/{reference}"): Rule("api", "The case, with its timeline"),
    ("GET", "/api/cases/{reference}/linked-plans"): Rule("api", "The child's other plans"),
    ("GET", "/api/plans/{reference}"): Rule("api", "The plan and its review cycles"),
    ("GET", "/api/cases/{reference}/submissions/{submission_id}/documents/{document_id}"):
        Rule("document", "Document {document_id} sent with advice"),
    ("GET", "/api/worklist/{which}.csv"): Rule("export", "The list as CSV", by="service"),
    ("GET", "/api/exports/sen2"): Rule("export", "The SEN2 check export", by="service"),
    ("GET", "/advice/{token}"): Rule("advice page", "The advice request page", by="service"),
    ("GET", "/admin/access-log/children/{child_id}/export"):
        Rule("subject access", "Subject access export", by="service"),
}

_LIST = "a list: reference, dates and at most a given name and initial (opening one is logged)"
_NONE = "shows no child's record"
NOT_A_RECORD: dict[tuple[str, str], str] = {
    ("GET", "/"): _LIST, ("GET", "/cases"): _LIST, ("GET", "/api/cases"): _LIST,
    ("GET", "/plans"): _LIST, ("GET", "/api/plans"): _LIST, ("GET", "/late"): _LIST,
    ("GET", "/api/worklist/{which}"): _LIST, ("GET", "/phase-transfers"): _LIST,
    ("GET", "/api/phase-transfers"): _LIST, ("GET", "/adqa/digest"): _LIST,
    ("GET", "/api/adqa/digest"): _LIST,
    ("GET", "/admin/access-log"): "finding a child: the matches are listed, not opened",
    ("GET", "/admin/access-log/children/{child_id}"):
        "who viewed the record (the data protection officer's own reading of the log)",
    **{("GET", p): _NONE for p in (
        "/account", "/admin/users", "/admin/users/new", "/admin/users/{user_id}",
        "/adqa/quarterly", "/api/admin/users", "/api/caseworkers", "/api/directory/adqa-members",
        "/api/directory/services", "/api/directory/services/{service_id}", "/api/me",
        "/api/public/summary", "/api/reports/outcomes", "/api/statistics/dfe",
        "/api/statistics/review-outcomes", "/api/statistics/timeliness",
        "/api/statistics/timeliness/{measure}", "/api/timescales/assessment",
        "/assessments/new", "/directory", "/directory/adqa", "/directory/adqa/{member_id}/edit",
        "/directory/contacts/{contact_id}/edit", "/directory/services/new",
        "/directory/services/{service_id}", "/directory/services/{service_id}/edit",
        "/healthz", "/sign-in", "/sign-in/council", "/sign-in/council/callback",
        "/sign-in/council/signed-out", "/statistics", "/summary", "/openapi.json", "/docs",
        "/redoc")},
}


def route_of(scope) -> str:
    """The route's method and path template, as the log names it."""
    route = scope.get("route")
    return f"{scope['method']} {getattr(route, 'path_format', scope.get('path', ''))}"


def _record(scope, rule: Rule) -> None:
    params = scope.get("path_params") or {}
    settings = scope["app"].state.settings
    staff = (scope.get("state") or {}).get("staff")
    try:
        what = rule.what.format(**params)
    except (KeyError, IndexError):
        what = rule.what
    access_log.record_view(db_url=settings.db_url, staff=staff,
                           reference=str(params.get("reference", "")), kind=rule.kind,
                           what=what, route=route_of(scope))


class AccessLogMiddleware:
    """Writes the row of a ``by="route"`` route of ``LOGGED`` when its answer starts with a
    success (2xx), before the answer's first byte is sent: a view that cannot be logged fails
    (500) rather than go unrecorded."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return

        async def logged_send(message) -> None:
            if message["type"] == "http.response.start" and 200 <= message["status"] < 300:
                route = scope.get("route")
                rule = LOGGED.get(("GET", getattr(route, "path_format", "")))
                if rule is not None and rule.by == "route":
                    await run_in_threadpool(_record, scope, rule)
            await send(message)

        await self.app(scope, receive, logged_send)
