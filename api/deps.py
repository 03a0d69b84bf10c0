"""What a route needs, each defined once: the settings, a database session, the Temporal client,
who is signed in (``api.auth.authorize`` says so before the route runs), and a posted form's
fields."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Annotated

from fastapi import Depends, Header, Request
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


SettingsDep = Annotated[Settings, Depends(get_settings)]
ClientDep = Annotated[Client, Depends(get_client)]
SessionDep = Annotated[Session, Depends(get_session)]
StaffDep = Annotated[Staff | None, Depends(acting_staff)]
ActorDep = Annotated[str | None, Depends(acting_actor)]
FormDep = Annotated[dict[str, str], Depends(form_fields)]
IdempotencyKeyDep = Annotated[str | None, Depends(idempotency_key)]
