"""What every response carries, and how much of a request the app will read.

Two pure ASGI wrappers (not Starlette's ``BaseHTTPMiddleware``, so streamed responses such as
the CSV exports keep streaming), put around the whole app by ``install``: outside Starlette's
own error middleware, so a 500 carries the headers too, and before anything reads a body or
looks at who is asking.

``SecurityHeaders``: every response (pages, API, the professionals' pages, static files,
errors) gets a Content-Security-Policy (pages may load nothing from elsewhere and run no
inline script but GOV.UK Frontend's one line, allowed by its hash), ``nosniff``, no framing,
a referrer policy (none at all from ``/advice/…``, whose paths carry the professional's
token), a minimal Permissions-Policy, ``Cache-Control: no-store`` on everything but the static
files, and HSTS when the service is served over HTTPS.

``BodyLimit``: a request larger than its route family takes is answered 413 before the app
reads it (by its Content-Length), or as soon as a streamed (chunked) body passes the limit.
The API answers ``{detail, code}``; pages answer a GOV.UK page.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
from urllib.parse import urlsplit

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import advice_portal, imports
from api.page_kit import page
from config.settings import Settings
from services.rendering import jinja_env
from services.uploads import MB

# --- headers ---------------------------------------------------------------------------------


def route_path(scope: Scope) -> str:
    """The path within the app (without the prefix a proxy may serve it under)."""
    path, root = scope.get("path", ""), scope.get("root_path", "")
    return path[len(root):] if root and path.startswith(root) else path


# Files that are the same for everyone and may be cached: the project's own and GOV.UK
# Frontend's, and the API documentation pages' scripts.
STATIC_PREFIXES = ("/static/", "/govuk/", "/assets/", "/docs-assets/")
DOCS_PAGES = ("/docs", "/redoc")


def inline_script_hashes() -> list[str]:
    """The CSP sources of the inline scripts in GOV.UK Frontend's page template (one line that
    marks the page as having JavaScript), by their SHA-256: no other inline script runs."""
    env = jinja_env()
    source, _, _ = env.loader.get_source(env, "govuk_frontend_jinja/template.html")
    return [f"'sha256-{base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()}'"
            for body in re.findall(r"<script(?:\s[^>]*)?>(.*?)</script>", source, re.S)
            if body.strip()]


def origin(url: str | None) -> str | None:
    parts = urlsplit(url or "")
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme in ("https", "http") \
        and parts.netloc else None


def form_targets(settings: Settings) -> list[str]:
    """Where a form may send the browser, beside this site: the council's OpenID provider,
    when sign-in (or sign-out) posts a form that redirects there (browsers apply form-action
    to the redirect after a form's POST)."""
    issuer = origin(getattr(settings, "oidc_issuer", None))
    return [issuer] if issuer else []


def page_csp(settings: Settings) -> str:
    return "; ".join([
        "default-src 'self'",
        "script-src 'self' " + " ".join(inline_script_hashes()),
        "style-src 'self'",
        "img-src 'self'",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "frame-ancestors 'none'",
        "base-uri 'self'",
        "form-action " + " ".join(["'self'", *form_targets(settings)]),
    ])


# The API documentation pages may load nothing from another host: ReDoc's "API docs by
# Redocly" link would fetch its logo from Redocly's server on every view, and is refused (it
# then hides itself). Inline script and styles are the pages' own (FastAPI's page;
# styled-components); ReDoc runs its search in a worker made from a blob.
DOCS_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' "
            "'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; worker-src 'self' "
            "blob:; connect-src 'self'; object-src 'none'; frame-ancestors 'none'; "
            "base-uri 'self'; form-action 'self'")
PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"
HSTS = "max-age=31536000"  # a year; not includeSubDomains: the council's other hosts are theirs


def served_over_https(settings: Settings) -> bool:
    return bool(settings.cookie_secure) or settings.public_base_url.startswith("https://")


class SecurityHeaders:
    """Adds the headers above to every HTTP response the wrapped app sends. A header the app
    set itself is kept (a download's ``sandbox`` policy), except that a page that can carry
    personal data is never cached."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.page_csp = page_csp(settings)
        self.https = served_over_https(settings)

    def headers_for(self, path: str) -> dict[str, str]:
        out = {
            "Content-Security-Policy": DOCS_CSP if path in DOCS_PAGES else self.page_csp,
            "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "DENY",
            # A professional's link is /advice/<token>: no page there names it to another.
            "Referrer-Policy": "no-referrer" if path.startswith("/advice/") else "same-origin",
            "Permissions-Policy": PERMISSIONS_POLICY,
        }
        if self.https:
            out["Strict-Transport-Security"] = HSTS
        return out

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = route_path(scope)
        extra = self.headers_for(path)
        cacheable = path.startswith(STATIC_PREFIXES)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in extra.items():
                    headers.setdefault(name, value)
                if not cacheable and "no-store" not in headers.get("cache-control", ""):
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)


# --- body size -------------------------------------------------------------------------------

FORM_LIMIT = MB  # a staff form or a JSON body: far more than any of them holds
IMPORT_PATH = "/api/imports/plans"
# After a refusal, the rest of a body (up to this much, for up to this long) is read and
# dropped before the answer ends, as a web server's "lingering close" does: a client still
# sending when the connection closed would see it reset and never read the 413.
DRAIN_BYTES = 64 * MB
DRAIN_SECONDS = 5.0


def body_limit(path: str) -> int:
    """The most a request to ``path`` may send: a professional's advice with its documents
    (``api.advice_portal``), a plans CSV (``api.imports``), else a form or JSON body."""
    if path.startswith("/advice/"):
        return advice_portal.MAX_BODY_BYTES
    if path == IMPORT_PATH:
        return imports.MAX_UPLOAD + MB  # the file and its multipart framing
    return FORM_LIMIT


def _megabytes(n: int) -> str:
    return f"{n / MB:g} MB"


def too_large(scope: Scope, limit: int) -> Response:
    """The 413 answer: JSON for the API, a page for a person."""
    path = route_path(scope)
    close = {"Connection": "close"}
    if path.startswith("/api/"):
        what = "Split the file into several (each is safe to import on its own)" \
            if path == IMPORT_PATH else "Send less in one request"
        return JSONResponse({
            "detail": f"The request is larger than {_megabytes(limit)}, the most this address "
                      f"takes. {what}.", "code": "too_large"}, status_code=413, headers=close)
    request = Request(scope)
    settings = request.app.state.settings
    if path.startswith("/advice/"):
        response = advice_portal.message(
            settings, 413, "What you sent is too large",
            f"The files must be smaller than {_megabytes(advice_portal.MAX_TOTAL_BYTES)} in "
            "total. Go back to the page and attach fewer or smaller files.")
    else:
        response = page(request, "pages/problem.html", 413,
                        heading="What you sent is too large",
                        message=f"A form here takes at most {_megabytes(limit)}. Go back, "
                        "shorten what you entered and send it again",
                        back=("/", "Go to the start page"))
    response.headers.update(close)
    return response


async def drain(receive: Receive, most: int) -> None:
    """Reads and drops up to ``most`` bytes more of the request body, for ``DRAIN_SECONDS``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DRAIN_SECONDS
    while most > 0:
        try:
            message = await asyncio.wait_for(receive(), max(0.0, deadline - loop.time()))
        except asyncio.TimeoutError:
            return
        if message["type"] != "http.request":
            return
        most -= len(message.get("body", b""))
        if not message.get("more_body", False):
            return


class BodyLimit:
    """Refuses (413) a request whose body is larger than ``body_limit`` of its path: at once
    when its Content-Length says so, before the app runs; and when a body without one passes
    the limit while the app reads it. The app then reads the end of the body (ASGI's
    ``http.disconnect``), whatever it answers is dropped, and the 413 goes instead. Either
    way the rest of the body is read and dropped first (``drain``), within bounds."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = body_limit(route_path(scope))
        headers = Headers(scope=scope)
        length = headers.get("content-length", "").strip()
        if length.isdigit() and int(length) > limit:
            # A client that waits to be told to go on ("Expect: 100-continue") sends nothing
            # more; one that claims far more than the limit is not waited for.
            if "100-continue" not in headers.get("expect", "").lower() \
                    and int(length) <= limit + DRAIN_BYTES:
                await drain(receive, int(length))
            return await too_large(scope, limit)(scope, receive, send)
        received, over, started = 0, False, False

        async def limited_receive() -> Message:
            nonlocal received, over
            if over:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    over = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if over and not started:
                return  # the app's answer to a body cut short: the 413 goes instead
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not over or started:
                raise
        if over and not started:
            await drain(receive, DRAIN_BYTES)
            await too_large(scope, limit)(scope, receive, send)


def install(app: FastAPI, settings: Settings) -> None:
    """Wraps the app's whole middleware stack, Starlette's error middleware included: the
    headers go on every response, a 500 too, and the body limit applies before anything."""
    build = app.build_middleware_stack

    def build_with_wrappers() -> ASGIApp:
        return SecurityHeaders(BodyLimit(build()), settings)

    app.build_middleware_stack = build_with_wrappers  # type: ignore[method-assign]
