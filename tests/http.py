"""The web app over real HTTP for the tests: uvicorn on a free port, and an httpx client that
is signed in as a staff account of the role the test needs (an API token, as a council's BI
team would use; ``tests/test_auth.py`` covers browser sessions, cookies and CSRF)."""

from __future__ import annotations

import asyncio
import uuid
from contextlib import asynccontextmanager

import httpx
import uvicorn

from api.app import create_app
from store.db import session_for
from services.staff import create_token, create_user
from tests.conftest import free_port

PASSWORD = "correct horse battery staple"


def add_staff(db_url: str, role: str = "admin", *, name: str | None = None,
              email: str | None = None) -> tuple[str, str]:
    """A new staff account of ``role`` with an API token: ``(account id, token)``."""
    with session_for(db_url) as s:
        user = create_user(s, email=email or f"{role}-{uuid.uuid4().hex[:8]}@council.example",
                           name=name or f"Test {role.title()}", role=role, password=PASSWORD)
        token, _ = create_token(s, user, "tests")
        return user.id, token


def staff_headers(db_url: str, role: str = "admin", **who) -> dict[str, str]:
    return {"Authorization": f"Bearer {add_staff(db_url, role, **who)[1]}"}


@asynccontextmanager
async def serve_app(settings, client, *, role: str | None = "admin", port: int | None = None):
    """The app on a free port (or ``port``); the client yielded is signed in as ``role``
    (None: nobody)."""
    headers = staff_headers(settings.db_url, role) if role else {}
    server = uvicorn.Server(uvicorn.Config(create_app(settings, client=client), host="127.0.0.1",
                                           port=port or free_port(), log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30,
                                     headers=headers) as http:
            yield http
    finally:
        server.should_exit = True
        await task
