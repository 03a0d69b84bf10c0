"""What ``/healthz`` reports: whether each part the service needs answers now, the database
(``SELECT 1``), Temporal, and a worker polling the case task queue (``services.temporal``). A
load balancer or monitor asks often, so each answer is reused for a couple of seconds; nothing
in it is personal."""

from __future__ import annotations

import asyncio
import time

from pydantic import BaseModel, Field
from sqlalchemy import text
from temporalio.client import Client

from config.settings import Settings
from services.temporal import HEALTH_MAX_AGE, engine_health
from store.db import engine_for

DB_TIMEOUT = 3.0  # seconds the database may take to answer SELECT 1

_db: dict[str, tuple[float, str | None]] = {}  # url -> (when asked, problem or None)


class Health(BaseModel):
    ok: bool = Field(description="true when every part is well (the check answers 200), else "
                     "false (503)")
    database: bool = Field(description="the database answered SELECT 1")
    temporal: bool = Field(description="Temporal answered")
    worker: bool = Field(description="a worker polls the case task queue, so cases move and "
                         "steps can be taken")
    problems: list[str] = Field(description="what is down, in words; empty when all is well")


def _select_one(url: str) -> None:
    with engine_for(url).connect() as conn:
        conn.execute(text("SELECT 1"))


async def _database(url: str) -> str | None:
    known = _db.get(url)
    now = time.monotonic()
    if known is not None and now - known[0] < HEALTH_MAX_AGE:
        return known[1]
    try:
        await asyncio.wait_for(asyncio.to_thread(_select_one, url), DB_TIMEOUT)
        problem = None
    except TimeoutError:
        problem = f"the database did not answer within {DB_TIMEOUT:g} seconds"
    except Exception as exc:  # noqa: BLE001 - its text can hold the URL (a password): not shown
        problem = f"the database cannot be reached ({type(exc).__name__})"
    _db[url] = (now, problem)
    return problem


async def check_health(*, settings: Settings, client: Client | None) -> Health:
    """Each part, asked at once (a part that is down answers within a few seconds)."""
    db_problem = await _database(settings.db_url)
    problems = [db_problem] if db_problem else []
    temporal = worker = False
    if client is None:
        problems.append("Temporal was not reachable when the API started")
    else:
        engine = await engine_health(client, settings.task_queue)
        temporal, worker = engine.reachable, engine.worker
        if engine.problem:
            problems.append(engine.problem)
    return Health(ok=not problems, database=db_problem is None, temporal=temporal,
                  worker=worker, problems=problems)
