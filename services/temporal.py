"""One way to reach Temporal, shared by the worker, the API and the tools."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
import weakref
from datetime import timedelta
from typing import AsyncIterator

from sqlmodel import Session
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes

from config.settings import Settings
from services.codec import EncryptionCodec, parse_key
from services.errors import ServiceError
from store.db import drop_slot, hold_slot, release
from temporalio.service import RPCError, RPCStatusCode


def data_converter(settings: Settings) -> DataConverter:
    """Pydantic JSON, then encrypted with the council's payload key; failure messages and
    stack traces are encrypted too (they can quote the data that caused them)."""
    codec = EncryptionCodec(parse_key(settings.resolved_payload_key()),
                            [parse_key(k) for k in settings.payload_retired_keys])
    return dataclasses.replace(pydantic_data_converter, payload_codec=codec,
                               failure_converter_class=DefaultFailureConverterWithEncodedAttributes)


async def connect(settings: Settings) -> Client:
    return bind(await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=data_converter(settings),
    ), settings)


# --- every call the API makes to Temporal: no database connection held, a bounded wait ----------
#
# A request reads the database, then asks a case's workflow (a query or an update), then may read
# the database again. While it waits on Temporal it must not hold a pooled connection: twenty
# requests waiting on a slow or absent worker would empty the pool and stall every page. So
# ``engine_call`` first ends the session's transaction (its connection goes back to the pool; the
# objects it loaded stay readable, as the API's sessions keep them on commit), then checks that
# Temporal answers and a worker polls the task queue (cached for ``HEALTH_MAX_AGE`` seconds), and
# only then lets the call run, for at most the bound the settings give. What a person is told
# when it cannot: ``EngineUnavailable`` (503, nothing was sent) and ``EngineTimeout`` (504, an
# action was sent and may still be applied).

HEALTH_MAX_AGE = 2.0  # seconds a health answer is reused
HEALTH_RPC_TIMEOUT = 2.0  # seconds the health call itself may take
# A worker long-polls its task queue for up to a minute, and Temporal lists a poller until its
# history expires (minutes after it stopped): a poller whose last poll began more than this long
# ago has stopped.
POLLER_FRESH_SECONDS = 75.0

# No worker polling: asked again this many times, this far apart, before a request is refused.
WORKER_RECHECKS = 2
WORKER_RECHECK_DELAY = 0.5

log = logging.getLogger("ehc.engine")

UNREACHABLE = ("the part of the service that moves cases is not running. Try again in a few "
               "minutes; if this goes on, tell your system administrator")


class EngineUnavailable(ServiceError):
    """Temporal cannot be reached, or no worker polls the case task queue: nothing was sent."""

    def __init__(self, message: str) -> None:
        super().__init__(503, message, "unavailable")


class EngineTimeout(ServiceError):
    """An action was sent but its workflow did not answer in time: it may still be applied."""

    def __init__(self, message: str) -> None:
        super().__init__(504, message, "timeout")


@dataclasses.dataclass(frozen=True)
class Bounds:
    task_queue: str
    read_timeout: float
    act_timeout: float

    @classmethod
    def of(cls, settings: Settings) -> Bounds:
        return cls(settings.task_queue, settings.engine_read_timeout_seconds,
                   settings.engine_timeout_seconds)


_bounds: weakref.WeakKeyDictionary[Client, Bounds] = weakref.WeakKeyDictionary()


def bind(client: Client, settings: Settings) -> Client:
    """Let ``engine_call`` know the task queue and the time limits for ``client`` (``connect``
    does this; an app given a client of its own binds it)."""
    _bounds[client] = Bounds.of(settings)
    return client


def bounds_for(client: Client) -> Bounds:
    found = _bounds.get(client)
    if found is None:
        found = Bounds.of(Settings(_env_file=None))  # type: ignore[call-arg]
    return found


@dataclasses.dataclass(frozen=True)
class EngineHealth:
    reachable: bool  # Temporal answered
    worker: bool  # a worker polls the case task queue
    checked: float  # time.monotonic() when asked
    problem: str | None = None  # what is wrong, for the health check (no personal data)

    @property
    def ok(self) -> bool:
        return self.reachable and self.worker


_health: weakref.WeakKeyDictionary[Client, dict[str, EngineHealth]] = weakref.WeakKeyDictionary()


async def engine_health(client: Client, task_queue: str, *,
                        max_age: float = HEALTH_MAX_AGE) -> EngineHealth:
    """Whether Temporal answers and a worker polls ``task_queue``: one DescribeTaskQueue call,
    not retried, with a short timeout; the answer is reused for ``max_age`` seconds."""
    cache = _health.setdefault(client, {})
    known = cache.get(task_queue)
    now = time.monotonic()
    if known is not None and now - known.checked < max_age:
        return known
    try:
        described = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(namespace=client.namespace,
                                     task_queue=TaskQueue(name=task_queue),
                                     task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW),
            timeout=timedelta(seconds=HEALTH_RPC_TIMEOUT))
    except RPCError as exc:
        if exc.status == RPCStatusCode.UNIMPLEMENTED:  # a test server: it cannot say; it runs
            health = EngineHealth(True, True, now)
        else:
            health = EngineHealth(False, False, now, f"Temporal not reachable ({_why(exc)})")
    except Exception as exc:  # noqa: BLE001 - whatever it is, Temporal did not answer
        health = EngineHealth(False, False, now, f"Temporal not reachable ({_why(exc)})")
    else:
        wall = time.time()
        fresh = [p for p in described.pollers
                 if wall - p.last_access_time.ToSeconds() < POLLER_FRESH_SECONDS]
        health = EngineHealth(True, bool(fresh), now, None if fresh else
                              f"no worker polls the task queue {task_queue}")
    cache[task_queue] = health
    return health


def forget_health(client: Client) -> None:
    """Ask again next time (after a call found Temporal gone)."""
    _health.pop(client, None)


def _why(exc: BaseException) -> str:
    if isinstance(exc, RPCError):
        return f"{exc.status.name if exc.status else 'error'}"
    return type(exc).__name__


@contextlib.asynccontextmanager
async def engine_call(session: Session | None, client: Client | None, *, acting: bool,
                      repeat_safe: bool = False) -> AsyncIterator[None]:
    """Around every call to a case's workflow: ``async with engine_call(...): await ...``.

    The session's connection is released first; then, if Temporal is not reachable or no worker
    polls the task queue, ``EngineUnavailable`` (503) before anything is sent (so an action
    refused here can never be applied later). The call then has ``engine_read_timeout_seconds``
    (a read) or ``engine_timeout_seconds`` (``acting``: an update or a start); past it, or if
    Temporal goes away meanwhile, a read is ``EngineUnavailable`` and an action
    ``EngineTimeout`` (504: it was sent and may still be applied). ``repeat_safe``: the action
    carries a key (a form's token, an Idempotency-Key) that makes sending it again apply it
    once, and the 504 says so."""
    if session is not None:  # its connection and its slot go back while it waits
        release(session)
        drop_slot(session)
    try:
        async with _bounded(client, acting=acting, repeat_safe=repeat_safe):
            yield
    finally:
        if session is not None:
            await hold_slot(session)


@contextlib.asynccontextmanager
async def _bounded(client: Client | None, *, acting: bool,
                   repeat_safe: bool) -> AsyncIterator[None]:
    if client is None:
        raise refusal(acting)
    bounds = bounds_for(client)
    health = await engine_health(client, bounds.task_queue)
    for _ in range(WORKER_RECHECKS):  # a worker starting now polls within a moment: ask again
        if health.ok or not health.reachable:
            break
        await asyncio.sleep(WORKER_RECHECK_DELAY)
        health = await engine_health(client, bounds.task_queue, max_age=0)
    if not health.ok:
        log.warning("refused a %s before sending it: %s", "step" if acting else "read",
                    health.problem)
        raise refusal(acting)
    try:
        async with asyncio.timeout(bounds.act_timeout if acting else bounds.read_timeout):
            yield
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError) as exc:
        log.warning("a %s had no answer within its bound (%s)", "step" if acting else "read",
                    type(exc).__name__)
        forget_health(client)
        raise _late(acting, repeat_safe) from None
    except RPCError as exc:
        if exc.status not in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED,
                              RPCStatusCode.CANCELLED):
            raise
        log.warning("Temporal went away during a %s (%s)", "step" if acting else "read",
                    _why(exc))
        forget_health(client)
        raise _late(acting, repeat_safe) from None


async def workflow_exists(client: Client, workflow_id: str) -> bool | None:
    """Whether Temporal has a workflow of that id (asking needs no worker); None if it cannot
    say now."""
    try:
        async with asyncio.timeout(HEALTH_RPC_TIMEOUT):  # the client retries an absent server
            await client.get_workflow_handle(workflow_id).describe(
                rpc_timeout=timedelta(seconds=HEALTH_RPC_TIMEOUT))
    except RPCError as exc:
        return False if exc.status == RPCStatusCode.NOT_FOUND else None
    except Exception:  # noqa: BLE001 - cannot say
        return None
    return True


def refusal(acting: bool) -> EngineUnavailable:
    """The 503 when Temporal or its worker is not there: nothing was sent."""
    if acting:
        return EngineUnavailable(f"Nothing was changed: {UNREACHABLE}")
    return EngineUnavailable(f"The case cannot be shown just now: {UNREACHABLE}")


def _late(acting: bool, repeat_safe: bool) -> ServiceError:
    if not acting:
        return EngineUnavailable("The case could not be read in time: the part of the service "
                                 "that moves cases is slow or not running. Try again in a few "
                                 "minutes; if this goes on, tell your system administrator")
    again = ("sending it again is safe: it is applied once" if repeat_safe else
             "reload the case before sending it again")
    return EngineTimeout("The change was sent but not confirmed in time, so it may still be "
                         f"applied: reload the case to see whether it has been; {again}")
