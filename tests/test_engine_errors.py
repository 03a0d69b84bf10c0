"""The service under load and with its engine gone (issue 16, finding 3): a hundred requests at
once with a deliberately small database pool get no server error and an unrelated page stays
fast; with Temporal stopped, every case read and step answers 503 with a sentence, at once, the
lists still work and ``/healthz`` says what is down; a step sent while no worker runs is refused
before it is sent and never applied later. The API runs as its own process (uvicorn, as ``ehc
api`` runs it) on 127.0.0.1, against a real Temporal dev server, a real worker and SQLite."""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import time
import uuid
from contextlib import asynccontextmanager
from datetime import date, timedelta
from pathlib import Path

import httpx
import uvicorn
from temporalio.testing import WorkflowEnvironment

from api import auth
from api.app import create_app
from cli.system import temporal_binary
from config.settings import Settings
from domain.case import CaseSnapshot, StartAssessment
from domain.identifiers import workflow_id_for
from services.clock import today
from services.temporal import data_converter
from tests.conftest import free_port, settings_for
from tests.http import serve_app, staff_headers
from tests.test_assessment_workflow import add_child
from worker.main import build_worker
from workflows.assessment import AssessmentWorkflow

ROOT = Path(__file__).resolve().parent.parent
SMALL_POOL = {"EHC_DB_POOL_SIZE": "2", "EHC_DB_MAX_OVERFLOW": "1"}  # 3 connections for 100
NOT_RUNNING = "the part of the service that moves cases is not running"


@asynccontextmanager
async def api_process(tmp_path: Path, db_url: str, queue: str, temporal: str, **env):
    """``uvicorn --factory api.app:app_factory`` on a free loopback port, configured as a
    council would (EHC_* variables), with an httpx client signed in as an administrator."""
    port = free_port()
    environ = {**os.environ, "EHC_DATABASE_URL": db_url, "EHC_TASK_QUEUE": queue,
               "EHC_TEMPORAL_ADDRESS": temporal, "EHC_DATA_DIR": str(tmp_path),
               "EHC_LINK_SECRET": "test-link-secret", **env}
    log_path = tmp_path / f"api-{port}.log"
    headers = staff_headers(db_url, "admin")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "api.app:app_factory", "--host",
             "127.0.0.1", "--port", str(port), "--log-level", "warning"],
            cwd=ROOT, env=environ, stdout=log, stderr=subprocess.STDOUT)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60,
                                     headers=headers,
                                     limits=httpx.Limits(max_connections=200,
                                                         max_keepalive_connections=0)) as http:
            deadline = time.monotonic() + 30
            while True:
                assert proc.poll() is None, log_path.read_text()
                try:
                    await http.get("/healthz")
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "the API did not start"
                    await asyncio.sleep(0.1)
            yield http, log_path
    except BaseException:
        print(log_path.read_text()[-4000:])  # what the API said, for the failure's report
        raise
    finally:
        proc.terminate()
        await asyncio.to_thread(proc.wait, 15)


async def health_becomes(http: httpx.AsyncClient, status: int, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        r = await http.get("/healthz")
        if r.status_code == status:
            return r.json()
        assert time.monotonic() < deadline, r.text
        await asyncio.sleep(0.2)


async def start_cases(http: httpx.AsyncClient, n: int) -> list[str]:
    refs = []
    for i in range(n):
        r = await http.post("/api/assessments", json={
            "child": {"given_name": "Load", "family_name": f"Child{chr(65 + i)}",
                      "date_of_birth": (date(2015, 1, 1) + timedelta(days=i)).isoformat()},
            "request_date": (today() - timedelta(days=30)).isoformat()})
        assert r.status_code == 201, r.text
        refs.append(r.json()["reference"])
    return refs


async def start_case_on(client, db_url: str, queue: str):
    """An assessment's workflow started on ``queue`` directly (whether a worker polls it or
    not): its reference and handle."""
    ref = f"W-{uuid.uuid4().hex[:8].upper()}"
    handle = await client.start_workflow(
        AssessmentWorkflow.run,
        StartAssessment(reference=ref, child_id=add_child(db_url),
                        request_date=today() - timedelta(days=30)),
        id=workflow_id_for(ref), task_queue=queue)
    return ref, handle


def decision() -> dict:
    return {"decision": "assess", "decided_on": (today() - timedelta(days=20)).isoformat()}


async def timed(http: httpx.AsyncClient, method: str, url: str, **kw) -> tuple[str, str, int,
                                                                                float, httpx.Response]:
    started = time.monotonic()
    r = await http.request(method, url, **kw)
    return method, url, r.status_code, time.monotonic() - started, r


def mixed_requests(refs: list[str]) -> list[tuple[str, str, dict]]:
    """A hundred: case pages, API case reads, lists, and a step on each case, each sent twice
    with the same Idempotency-Key (a retry)."""
    reqs: list[tuple[str, str, dict]] = []
    for i in range(35):
        reqs.append(("GET", f"/cases/{refs[i % len(refs)]}", {}))
    for i in range(30):
        reqs.append(("GET", f"/api/cases/{refs[i % len(refs)]}", {}))
    lists = ["/cases", "/plans", "/api/cases", "/"]
    for i in range(15):
        reqs.append(("GET", lists[i % len(lists)], {}))
    for i in range(20):
        ref = refs[i % len(refs)]
        reqs.append(("POST", f"/api/cases/{ref}/decision-to-assess",
                     {"json": decision(), "headers": {"Idempotency-Key": f"load-{ref}"}}))
    random.Random(16).shuffle(reqs)
    assert len(reqs) == 100
    return reqs


async def test_a_hundred_requests_at_once_then_with_temporal_stopped(executor, sqlite_url,
                                                                    tmp_path):
    """A dev server of its own, a worker, and the API with 3 database connections.

    A hundred requests at once (case pages, API case reads, lists, a step on each case and its
    retry): none is a 5xx, each step is taken once, and a list page asked for meanwhile answers
    in seconds (holding a connection across each Temporal call, the pool ran out and pages
    waited 30 to 60 seconds, then failed).

    Then Temporal is stopped under the running API: every case page, API case read and step
    answers 503 with a sentence saying what to do (a GOV.UK page for the pages, {detail, code}
    for the API) within seconds; the lists, read from the database, still answer 200;
    ``/healthz`` is 503 and names Temporal."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(), dev_server_log_level="error",
        data_converter=data_converter(Settings(_env_file=None)))
    queue = f"load-{uuid.uuid4().hex[:8]}"
    settings = settings_for(sqlite_url, queue, link_secret="test-link-secret")
    target = env.client.service_client.config.target_host
    begun = time.monotonic()
    try:
        async with api_process(tmp_path, sqlite_url, queue, target, **SMALL_POOL) as (http, log):
            print(f"API up after {time.monotonic() - begun:.1f} s")
            async with build_worker(env.client, settings, executor):
                await health_becomes(http, 200)
                refs = await start_cases(http, 6)
                tasks = [asyncio.create_task(timed(http, m, u, **kw))
                         for m, u, kw in mixed_requests(refs)]
                await asyncio.sleep(0.05)
                _, _, status, unrelated, _ = await timed(http, "GET", "/plans?status=all")
                results = await asyncio.gather(*tasks)
                print(f"100 requests done after {time.monotonic() - begun:.1f} s; the unrelated "
                      f"page took {unrelated:.1f} s")
                server_errors = [(m, u, s, r.text[:200]) for m, u, s, _, r in results if s >= 500]
                assert not server_errors, server_errors
                assert status == 200
                assert unrelated < 15, f"an unrelated page took {unrelated:.1f} s"
                assert all(s == 200 for _, _, s, _, _ in results), \
                    [(m, u, s) for m, u, s, _, _ in results if s != 200]
                for ref in refs:  # each step taken (once: its retry had the same answer)
                    r = await http.get(f"/api/cases/{ref}")
                    assert r.json()["view"]["case"]["stage"] != "awaiting_decision"

            await env.shutdown()
            env = None
            body = await health_becomes(http, 503)
            assert body["temporal"] is False and body["database"] is True
            assert any("Temporal" in p for p in body["problems"])
            started = time.monotonic()
            results = await asyncio.gather(*(timed(http, m, u, **kw)
                                             for m, u, kw in mixed_requests(refs)))
            took = time.monotonic() - started
            print(f"100 requests without Temporal took {took:.1f} s")
            for method, url, status, seconds, r in results:
                assert seconds < 10, (method, url, seconds)
                if url in ("/cases", "/plans", "/api/cases", "/"):
                    assert status == 200, (url, status, r.text[:300])
                    continue
                assert status == 503, (method, url, status, r.text[:300])
                if url.startswith("/api/"):
                    assert r.json()["code"] == "unavailable"
                    assert NOT_RUNNING in r.json()["detail"]
                    if method == "POST":
                        assert r.json()["detail"].startswith("Nothing was changed")
                else:
                    assert r.headers["content-type"].startswith("text/html")
                    assert "Sorry, the service is unavailable" in r.text
                    assert NOT_RUNNING in r.text
            assert took < 20, f"100 requests took {took:.1f} s"
            assert "Traceback" not in log.read_text()
    finally:
        if env is not None:
            await env.shutdown()


async def test_a_step_with_no_worker_is_refused_and_never_applied_later(dev_env, sqlite_url,
                                                                        executor):
    """No worker polls the case's task queue: the step is refused with 503 before it is sent
    (the API's and the form's), ``/healthz`` says no worker polls; when a worker starts, the
    case runs and the refused step is not in it; the same step then works."""
    queue = f"idle-{uuid.uuid4().hex[:8]}"
    settings = settings_for(sqlite_url, queue, link_secret="test-link-secret")
    ref, handle = await start_case_on(dev_env.client, sqlite_url, queue)
    async with serve_app(settings, dev_env.client) as http:
        started = time.monotonic()
        r = await http.post(f"/api/cases/{ref}/decision-to-assess", json=decision(),
                            headers={"Idempotency-Key": "first"})
        assert r.status_code == 503, r.text
        assert r.json()["code"] == "unavailable"
        assert r.json()["detail"].startswith("Nothing was changed: " + NOT_RUNNING)
        day = today() - timedelta(days=20)
        r = await http.post(f"/cases/{ref}/act/decide_to_assess", data={
            "decision": "assess", "decided_on-day": str(day.day),
            "decided_on-month": str(day.month), "decided_on-year": str(day.year)})
        assert r.status_code == 503 and "Nothing was changed" in r.text
        assert time.monotonic() - started < 5
        body = (await http.get("/healthz")).json()
        assert body == {"ok": False, "database": True, "temporal": True, "worker": False,
                        "problems": [f"no worker polls the task queue {queue}"]}

        async with build_worker(dev_env.client, settings, executor):
            first = await handle.query("snapshot", result_type=CaseSnapshot)
            await asyncio.sleep(1.0)  # time for anything sent to arrive
            snapshot = await handle.query("snapshot", result_type=CaseSnapshot)
            assert snapshot.stage.value == first.stage.value == "awaiting_decision"
            assert snapshot.version == first.version
            deadline = time.monotonic() + 10
            while (await http.get("/healthz")).status_code != 200:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.2)
            r = await http.post(f"/api/cases/{ref}/decision-to-assess", json=decision(),
                                headers={"Idempotency-Key": "first"})
            assert r.status_code == 200, r.text
            assert r.json()["case"]["stage"] != "awaiting_decision"


async def test_an_unexpected_error_is_a_proper_500_with_a_reference_and_no_data(sqlite_url,
                                                                                caplog,
                                                                                monkeypatch):
    """Whatever no handler expected: a GOV.UK page or ``{detail, code}`` naming a reference,
    never plain text; the log line with that reference names the exception's type and where,
    never its message (which could quote a child's record)."""
    app = create_app(settings_for(sqlite_url, "unused"))

    def boom() -> None:
        raise RuntimeError("Amelia Testchild, born 4 May 2017")

    app.add_api_route("/api/boom", boom)
    app.add_api_route("/boom", boom)
    # the two routes added here, in the role table as a route of the app would be
    monkeypatch.setattr(auth, "POLICY", [*auth.POLICY, ("/api/boom", auth.ANY, "caseworker"),
                                         ("/boom", auth.ANY, "caseworker")])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(),
                                           log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}",
                                     headers=staff_headers(sqlite_url)) as http:
            api = await http.get("/api/boom")
            page = await http.get("/boom")
    finally:
        server.should_exit = True
        await task
    assert api.status_code == 500 and api.json()["code"] == "internal_error"
    ref = api.json()["detail"].rsplit("reference ", 1)[1].rstrip(")")
    assert page.status_code == 500 and page.headers["content-type"].startswith("text/html")
    assert "Sorry, there is a problem with the service" in page.text
    assert f"error {ref}: RuntimeError at test_engine_errors.py" in caplog.text
    assert "Amelia" not in caplog.text


async def test_a_step_not_confirmed_in_time_is_a_504_and_sending_it_again_applies_it_once(
        dev_env, sqlite_url, executor):
    """The worker stops just before a step (Temporal still lists it as polling): the step is
    sent, waits its bound and answers 504 saying it may still be applied; when a worker runs
    again, it is, and the same step sent again with the same key is answered without being
    applied a second time."""
    queue = f"late-{uuid.uuid4().hex[:8]}"
    settings = settings_for(sqlite_url, queue, link_secret="test-link-secret")
    ref, handle = await start_case_on(dev_env.client, sqlite_url, queue)
    async with build_worker(dev_env.client, settings, executor):
        before = await handle.query("snapshot", result_type=CaseSnapshot)
    step = {"json": decision(), "headers": {"Idempotency-Key": "only-once"}}
    async with serve_app(settings.model_copy(update={"engine_timeout_seconds": 2}),
                         dev_env.client) as http:
        started = time.monotonic()
        r = await http.post(f"/api/cases/{ref}/decision-to-assess", **step)
        assert r.status_code == 504, r.text
        assert time.monotonic() - started < 6
        assert r.json()["code"] == "timeout"
        assert "may still be applied" in r.json()["detail"]
        assert "sending it again is safe" in r.json()["detail"]
    async with build_worker(dev_env.client, settings, executor):
        async with serve_app(settings, dev_env.client) as http:
            r = await http.post(f"/api/cases/{ref}/decision-to-assess", **step)
            assert r.status_code == 200, r.text
            after = await handle.query("snapshot", result_type=CaseSnapshot)
    assert after.stage.value != "awaiting_decision"
    assert after.version == before.version + 1  # applied once
