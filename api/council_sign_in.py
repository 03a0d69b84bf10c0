"""Signing in with the council's own accounts (OpenID Connect): the pages the browser passes
through. The rules are ``services/council_sign_in.py``'s; the sign-in page's button and
signing out are ``api/accounts.py``'s.

These routes are public (``/sign-in`` in ``api/auth.py``'s POLICY): nobody is signed in yet.
The sign-in's ``state`` travels in a cookie of its own (``COUNCIL_COOKIE``: HttpOnly, only
sent to ``/sign-in/council``, ten minutes), so that the provider's answer is taken only in
the browser that started it. It is ``SameSite=Lax``: the provider's redirect back is a
top-level navigation from another site, which a strict cookie would not come with.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.auth import SESSION_COOKIE, cookie_secure, safe_next, set_session_cookie
from api.deps import SessionDep, get_settings
from api.page_kit import page
from services import council_sign_in as council
from services.council_sign_in import CouncilSignInError

router = APIRouter(include_in_schema=False)

COUNCIL_COOKIE = "ehc_council_sign_in"
COOKIE_PATH = "/sign-in/council"


def _problem(request: Request, exc: CouncilSignInError) -> Response:
    response = page(request, "pages/problem.html", exc.status, heading=exc.title,
                    message=exc.message, back=("/sign-in", "Go to the sign-in page"))
    response.delete_cookie(COUNCIL_COOKIE, path=COOKIE_PATH)
    return response


@router.get("/sign-in/council", response_class=HTMLResponse)
def start_council_sign_in(request: Request, session: SessionDep, next: str = "/") -> Response:
    """Off to the council's provider to sign in."""
    settings = get_settings(request)
    try:
        started = council.begin(session=session, settings=settings, next_url=safe_next(next))
    except CouncilSignInError as exc:
        return _problem(request, exc)
    response = RedirectResponse(started.url, status_code=303)
    response.set_cookie(COUNCIL_COOKIE, started.state, httponly=True, samesite="lax",
                        secure=cookie_secure(settings), path=COOKIE_PATH,
                        max_age=council.FLOW_MINUTES * 60)
    return response


@router.get(council.CALLBACK_PATH, response_class=HTMLResponse)
def council_callback(request: Request, session: SessionDep) -> Response:
    """Back from the provider: signed in, or a page that says why not and what to do."""
    settings = get_settings(request)
    try:
        done = council.finish(session=session, settings=settings,
                              params=dict(request.query_params),
                              cookie_state=request.cookies.get(COUNCIL_COOKIE),
                              old_cookie=request.cookies.get(SESSION_COOKIE))
    except CouncilSignInError as exc:
        return _problem(request, exc)
    response = RedirectResponse(safe_next(done.next_url), status_code=303)
    set_session_cookie(response, settings, done.token)
    response.delete_cookie(COUNCIL_COOKIE, path=COOKIE_PATH)
    return response


@router.get(council.SIGNED_OUT_PATH, response_class=HTMLResponse)
def council_signed_out() -> Response:
    """Where the provider sends the browser after signing out there too."""
    return RedirectResponse("/sign-in?notice=signed-out", status_code=303)
