"""Database engine and sessions (SQLite by default, PostgreSQL supported)."""

from __future__ import annotations

import asyncio
import os
from functools import lru_cache
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, create_engine

from config.settings import get_settings


# Connections kept open, and how many more may be opened under load. The API serves sync routes
# from a pool of 40 threads, each may hold a connection while it reads; async routes give theirs
# back before waiting on Temporal (services.temporal.engine_call). SQLite connections are only
# file handles, so it keeps enough for every thread; a PostgreSQL server shares its
# max_connections (100 by default) between the API and the workers.
POOL = {"sqlite": (20, 40), "postgresql": (10, 20)}


def pool_sizes(url: str) -> tuple[int, int]:
    """(pool_size, max_overflow) for ``url``: ``EHC_DB_POOL_SIZE`` and ``EHC_DB_MAX_OVERFLOW``
    when set, else ``POOL``'s for the database."""
    settings = get_settings()
    size, overflow = POOL["sqlite" if url.startswith("sqlite") else "postgresql"]
    return (settings.db_pool_size if settings.db_pool_size is not None else size,
            settings.db_max_overflow if settings.db_max_overflow is not None else overflow)


def create_private(path: Path) -> None:
    """The SQLite file, made readable by its owner only (in a folder made so too) when it does
    not exist yet, and made so if it was made before with wider permissions: it holds
    children's records. SQLite gives its -wal and -shm files the database file's permissions."""
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        for each in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            try:
                mode = each.stat().st_mode & 0o777
                if mode & 0o077:
                    each.chmod(mode & 0o700)
            except OSError:  # not there, or not ours to change
                pass


def make_engine(url: str, *, foreign_keys: bool = True,
                pool: tuple[int, int] | None = None) -> Engine:
    """An engine for ``url``. SQLite enforces foreign keys unless ``foreign_keys`` is false
    (schema migrations that rebuild a table need them off for the rebuild). ``pool``:
    (pool_size, max_overflow), else ``pool_sizes(url)``."""
    size, overflow = pool or pool_sizes(url)
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            create_private(Path(path))
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30},
                               **({"pool_size": size, "max_overflow": overflow}
                                  if path and path != ":memory:" else {}))

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:  # pragma: no cover - trivial
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")  # the API reads while the worker writes
            cur.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=size, max_overflow=overflow)


@lru_cache
def engine_for(url: str) -> Engine:
    return make_engine(url)


def session_for(url: str) -> Session:
    return Session(engine_for(url), expire_on_commit=False)


# Writes made beside a request, while it holds its own connection (the access log's row of a
# view, written as the answer starts), come from a small pool of their own: taken from the
# requests' pool, a full pool would leave each request waiting for a connection that only
# another waiting request could give back.
SIDE_POOL = (2, 8)


@lru_cache
def side_engine_for(url: str) -> Engine:
    return make_engine(url, pool=SIDE_POOL)


def side_session_for(url: str) -> Session:
    """A session on ``url``'s side pool (see ``SIDE_POOL``)."""
    return Session(side_engine_for(url), expire_on_commit=False)


def release(session: Session | None) -> None:
    """End ``session``'s transaction so its connection goes back to the pool. Anything pending
    is written (a service commits its writes before it waits on something anyway); the objects
    it loaded stay loaded, not expired, and the session begins again when next used."""
    if session is None or not session.in_transaction():
        return
    keep = session.expire_on_commit
    session.expire_on_commit = False
    try:
        session.commit()
    finally:
        session.expire_on_commit = keep


# --- sharing the pool between the requests of an event loop ------------------------------------
#
# A request on the API's event loop that finds the pool empty would block the loop until a
# connection comes back, and the requests holding them need that loop to finish and give them
# back: every request would stand still for the pool's timeout. So a request first takes one
# of as many slots as the pool has connections, waiting for it without blocking the loop
# (``hold_slot``), and gives it back with its connection; while it waits on something else
# (``services.temporal.engine_call``) it gives both back and takes a slot again after.

_SLOTS = "ehc_slots"
_HOLDING = "ehc_holding_slot"


@lru_cache
def _slots(url: str, loop: asyncio.AbstractEventLoop) -> asyncio.Semaphore:
    size, overflow = pool_sizes(url)
    return asyncio.Semaphore(size + overflow)


def slotted_session(url: str) -> Session:
    """A session whose connection use is counted against ``url``'s slots on this event loop;
    ``hold_slot`` before using it, ``drop_slot`` after."""
    session = session_for(url)
    session.info[_SLOTS] = _slots(url, asyncio.get_running_loop())
    return session


async def hold_slot(session: Session) -> None:
    slots = session.info.get(_SLOTS)
    if slots is not None and not session.info.get(_HOLDING):
        await slots.acquire()
        session.info[_HOLDING] = True


def drop_slot(session: Session) -> None:
    """Give back ``session``'s slot (its connection must be back in the pool: ``release``)."""
    slots = session.info.get(_SLOTS)
    if slots is not None and session.info.get(_HOLDING):
        session.info[_HOLDING] = False
        slots.release()
