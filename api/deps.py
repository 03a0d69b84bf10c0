"""What a route needs, each defined once: the settings, a database session, the Temporal client,
who is signed in (``api.auth.authorize`` says so before the route runs), and a posted form's
fields."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Annotated

from fastapi import Depends, Header, Query, Request
from sqlmodel import Session
from temporalio.client import Client

from config.settings import Settings
from services.temporal import refusal
from services.staff import Staff
from store.db import drop_slot, hold_slot, slotted_session


_acting: ContextVar[Staff | None] = ContextVar("ehc_staff", default=None)


def set_acting_staff(staff: Staff | None) -> None:
    """Who is taking this request's steps: ``api.auth.authorize`` sets it for every request
    (None on the public pages, whoever is signed in there)."""
    _acting.set(staff)


def current_staff() -> Staff | None:
    """Who is making the current request, or None (public routes)."""
    return _acting.get()


def current_actor() -> str | None:
    staff = _acting.get()
    return staff.actor if staff else None


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_client(request: Request) -> Client:
    client = request.app.state.temporal
    if client is None:
        raise refusal(acting=request.method not in ("GET", "HEAD"))
    return client


async def get_session(settings: Annotated[Settings, Depends(get_settings)]):
    """The request's database session. It takes a slot first (``store.db.hold_slot``: as many
    as the pool has connections, waited for without blocking the event loop) and gives it back
    when the response has been sent (a CSV streams from it); a service that waits on Temporal
    gives back both the connection and the slot meanwhile (``services.temporal.engine_call``)."""
    session = slotted_session(settings.db_url)
    await hold_slot(session)
    try:
        yield session
    finally:
        session.close()
        drop_slot(session)


async def acting_staff() -> Staff | None:
    """Who is taking a step: the signed-in account (``api.auth.authorize`` set it), or None
    on the public pages (a professional's advice page acts for the professional)."""
    return current_staff()


async def acting_actor() -> str | None:
    return current_actor()


async def idempotency_key(idempotency_key: Annotated[str | None, Header(
        alias="Idempotency-Key", max_length=200,
        description="optional: the same key with the same body, sent again (a retry), gets "
        "the first answer and changes nothing more")] = None) -> str | None:
    return idempotency_key or None


async def form_fields(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


# Every number a request carries has a bound (a bigger one is a 422, not an overflow in the
# database): how far into a list a page may start, and a database row id (INTEGER: 32 bits
# on PostgreSQL).
MAX_OFFSET = 1_000_000
MAX_PAGE = 10_000  # pages of a list: at 200 a page, two million items
MAX_ROW_ID = 2**31 - 1
OffsetQ = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="how many to leave out "
                               "before the first one listed")]


def page_asked(text: str) -> int:
    """A page's ``?page=`` (a list's page number, as typed): 1 unless it is a whole number from
    1, and at most ``MAX_PAGE``."""
    text = (text or "").strip()
    return min(int(text), MAX_PAGE) if text.isdecimal() and int(text) > 0 else 1


SettingsDep = Annotated[Settings, Depends(get_settings)]
ClientDep = Annotated[Client, Depends(get_client)]
SessionDep = Annotated[Session, Depends(get_session)]
StaffDep = Annotated[Staff | None, Depends(acting_staff)]
ActorDep = Annotated[str | None, Depends(acting_actor)]
FormDep = Annotated[dict[str, str], Depends(form_fields)]
IdempotencyKeyDep = Annotated[str | None, Depends(idempotency_key)]
