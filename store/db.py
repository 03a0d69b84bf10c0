"""Database engine and sessions (SQLite by default, PostgreSQL supported)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, create_engine


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


def make_engine(url: str, *, foreign_keys: bool = True) -> Engine:
    """An engine for ``url``. SQLite enforces foreign keys unless ``foreign_keys`` is false
    (schema migrations that rebuild a table need them off for the rebuild)."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            create_private(Path(path))
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:  # pragma: no cover - trivial
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")  # the API reads while the worker writes
            cur.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


@lru_cache
def engine_for(url: str) -> Engine:
    return make_engine(url)


def session_for(url: str) -> Session:
    return Session(engine_for(url), expire_on_commit=False)
