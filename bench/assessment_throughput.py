"""Assessment throughput: cases per second taken through the whole assessment lifecycle on a
real Temporal dev server, against ``bench.reference.ReferenceWorkflow`` (the same activities,
updates and timers, none of the project's work) in the same run, on the same server.

Everything is started here and stopped at the end: a dev server (``temporal server start-dev``
on free ports; state in memory, or in a SQLite file as ``ehc up`` keeps it with
``--temporal-store file``), a migrated case database (SQLite, or a throwaway PostgreSQL cluster
with ``--db postgres``), and, for each measured run, one worker in its own process, so that its
peak memory (``VmHWM``) and CPU time can be read from ``/proc``. The project's worker is the
one ``ehc worker`` runs (``worker.main.build_worker``, connected with ``services.temporal.connect``:
pydantic JSON, encrypted with a payload key made for the run); the reference's has the same
executor and activity slots and plain pydantic JSON.

This process is the client. It starts ``--cases`` cases, at most ``--concurrency`` at a time;
waits until each is at rest (request saved, timer set: a caseworker's first decision comes
later than that; ``--back-to-back`` skips the wait); takes it through the lifecycle with
``execute_update``, decoding each result as the API does; and waits for its result. A run's
time is from the first start to the last result. After each run one case's history is read
back on each side to check that both did the same number of activities, updates and timers.

Runs alternate project/reference (P R R P P R ...), ``--repeats`` each, after an untimed
warm-up of both. The summary (medians, ratio, memory, CPU per case, the history check) goes to
stdout as JSON and to ``bench/results/``; progress and a markdown table go to stderr.

Project modules are imported inside functions only, so that the reference worker process
loads nothing but temporalio and the standard library.
"""

from __future__ import annotations

from domain.identifiers import assessment_workflow_id

import argparse
import asyncio
import ctypes
import glob
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
CLK_TCK = os.sysconf("SC_CLK_TCK")

SIDES = ("project", "reference")

# The on-time lifecycle, in days from the request. The dev server runs on the real clock, so
# the request is REQUEST_DAYS_AGO days before today and every step is backdated from it. The
# offsets keep every deadline's first alert (``due_soon``, 5 days before it is due) after
# today, so no alert fires: the case is what the project does on time, one record_case per
# step and nothing else. (With the request ~150 days back, every deadline would already be
# overdue: the run loop then saves alerts of its own, 15 activities and no timer per case.)
REQUEST_DAYS_AGO = 28
DAY = {
    "decide_to_assess": 1,  # decision_due: day 42, alert from day 37
    "request_advice": 2,  # advice due day 44, alert from day 39
    "record_advice": 8,
    "decide_plan": 12,
    "serve_draft": 20,  # family's comments due day 35, alert from day 30
    "record_family_comments": 22,
    "issue_final": 26,  # final_plan_due: day 140
}


# --- small process helpers ------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS/VmHWM and friends from /proc/<pid>/status, in KiB."""
    out: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key.startswith("Vm"):
                out[key] = int(value.split()[0])
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


try:
    _prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved before any fork
except (OSError, AttributeError):  # pragma: no cover - not Linux
    _prctl = None


def machine_cpu_seconds() -> float:
    """CPU time spent by the whole machine (all processes, all CPUs) so far."""
    with open("/proc/stat") as f:
        user, nice, system, _, _, irq, softirq, steal = map(int, f.readline().split()[1:9])
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of a server and its child processes, ended ones included (PostgreSQL)."""
    def times(p: int) -> float:
        with open(f"/proc/{p}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return sum(int(x) for x in fields[11:15]) / CLK_TCK  # utime stime cutime cstime

    total = times(pid)
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(stat) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            if ppid == pid:
                total += times(int(stat.split("/")[2]))
        except (OSError, ValueError):  # gone meanwhile
            pass
    return total


def die_with_parent() -> None:
    """Linux: have the kernel send SIGTERM to this process if the benchmark dies (also used
    as a ``preexec_fn``, so it only calls the already resolved ``prctl``)."""
    if _prctl is not None:
        _prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def stop_process(proc: subprocess.Popen, sig: int = signal.SIGTERM, wait: float = 30) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- infrastructure: dev server, databases -----------------------------------------------------


@contextmanager
def temporal_dev_server(folder: Path, persist: bool = False):
    """``temporal server start-dev`` on free ports, keeping its state in a SQLite file as
    ``ehc up`` does (``persist``), or in memory."""
    from cli.system import temporal_binary, temporal_file_store

    port = free_port()
    store = temporal_file_store(folder / "temporal.db") if persist else []
    with open(folder / "temporal.log", "wb") as server_log:
        proc = subprocess.Popen(
            [temporal_binary(), "server", "start-dev", "--headless", *store, "--ip",
             "127.0.0.1", "--port", str(port), "--ui-port", str(free_port()),
             "--log-level", "error"],
            stdout=subprocess.DEVNULL, stderr=server_log, preexec_fn=die_with_parent,
            cwd=folder,
        )
        try:
            yield proc, f"127.0.0.1:{port}"
        finally:
            stop_process(proc, signal.SIGINT)


def postgres_server():
    """A throwaway PostgreSQL cluster (the same helper the tests use)."""
    from tests.pgserver import pg_bin, throwaway_postgres

    bindir = pg_bin()
    if bindir is None:
        raise SystemExit("PostgreSQL is not installed (./dev.sh bench installs it on Debian)")
    return throwaway_postgres(bindir)


def new_pg_database(server: str) -> str:
    from tests.pgserver import new_database

    return new_database(server, prefix="ehc_bench")


def add_children(db_url: str, refs: list[str]) -> list[str]:
    """The Child rows the cases point at (record_case's foreign key), made before timing,
    each claimed by its case as the API claims it before starting the workflow."""
    from sqlmodel import Session

    from store import tables as t
    from store.db import make_engine

    engine = make_engine(db_url)
    ids = [uuid.uuid4().hex for _ in refs]
    with Session(engine) as s:
        s.add_all([t.Child(id=i, given_name="Bench", family_name=f"Child{k}",
                           date_of_birth=date(2016, 1, 1), open_case_reference=ref)
                   for k, (i, ref) in enumerate(zip(ids, refs))])
        s.commit()
    engine.dispose()
    return ids


# --- the worker process -----------------------------------------------------------------------


async def serve_worker(side: str, address: str, task_queue: str, db_url: str | None) -> None:
    """Run one worker until SIGTERM: the project's (``build_worker``, as ``ehc worker`` runs
    it) or the reference's, with the same executor and activity slots."""
    from concurrent.futures import ThreadPoolExecutor

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    with ThreadPoolExecutor(max_workers=16) as executor:
        if side == "project":
            from services.temporal import connect
            from worker.main import build_worker

            settings = project_settings(address, task_queue, db_url or "")
            client = await connect(settings)
            worker = build_worker(client, settings, executor)
        else:
            from temporalio.client import Client
            from temporalio.contrib.pydantic import pydantic_data_converter
            from temporalio.worker import Worker

            from bench.reference import ReferenceWorkflow, noop

            client = await Client.connect(address, data_converter=pydantic_data_converter)
            worker = Worker(client, task_queue=task_queue, workflows=[ReferenceWorkflow],
                            activities=[noop], activity_executor=executor,
                            max_concurrent_activities=16)
        async with worker:
            print("READY", flush=True)
            await stop.wait()


def project_settings(address: str, task_queue: str, db_url: str):
    """The project's settings for the benchmark: its database, its task queue, and the payload
    key that the benchmark made for this run (``EHC_PAYLOAD_KEY``, set by ``benchmark``), so
    that nothing is read from or written to the project's ``data`` folder."""
    from config.settings import Settings

    return Settings(database_url=db_url, task_queue=task_queue, temporal_address=address,
                    temporal_namespace="default", payload_key=os.environ["EHC_PAYLOAD_KEY"],
                    data_dir=Path(os.environ["EHC_BENCH_DIR"]), _env_file=None)


@dataclass
class WorkerProcess:
    side: str
    task_queue: str
    proc: subprocess.Popen
    idle_rss_kib: int = 0
    # What the worker printed after READY, by kind: Temporal Core writes its warnings (a
    # workflow task over 5 s, a task that timed out before it was completed) to stdout.
    output: Counter = field(default_factory=Counter)

    @classmethod
    def start(cls, side: str, address: str, db_url: str | None) -> WorkerProcess:
        tq = f"bench-{side}-{uuid.uuid4().hex[:8]}"
        argv = [sys.executable, "-m", "bench.assessment_throughput", "worker", side, address, tq]
        if db_url:
            argv.append(db_url)
        proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, text=True,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        w = cls(side, tq, proc)
        for line in proc.stdout or ():
            if line.strip() == "READY":
                break
            w._note(line)
        else:
            stop_process(proc)
            raise RuntimeError(f"the {side} worker did not start (exit {proc.returncode})")
        # Read the rest as it comes. Unread, the pipe fills (64 KiB) and Core's workflow thread
        # blocks writing its next warning: the worker then stops taking workflow tasks, which
        # is the "stall" of docs/benchmarks.md.
        threading.Thread(target=w._drain, name=f"{side}-worker-stdout", daemon=True).start()
        w.idle_rss_kib = proc_status(proc.pid)["VmRSS"]
        return w

    def _drain(self) -> None:
        for line in self.proc.stdout or ():
            self._note(line)

    def _note(self, line: str) -> None:
        text = re.sub(r"\x1b\[[0-9;]*m", "", line).strip()
        if not text:
            return
        code = re.search(r"\[TMPRL\d+\]", text)
        kind = code.group(0) if code else re.sub(r"^\S+\s+", "", text)[:90]
        self.output[kind] += 1
        if self.output[kind] <= 2:
            log(f"  {self.side} worker: {text[:300]}")

    def stop(self) -> dict[str, int]:
        """Read its memory figures, then stop it."""
        status = proc_status(self.proc.pid)
        stop_process(self.proc)
        return status


# --- the driver ----------------------------------------------------------------------------


def london_today() -> date:
    from statutory import london_date

    return london_date(datetime.now(timezone.utc))


def project_case(ref: str, child_id: str, day0: date) -> tuple[object, list[tuple[str, object]]]:
    from domain.case import (
        REQUIRED_ADVICE,
        AdviceRequest,
        DecidePlan,
        DecideToAssess,
        IssueFinal,
        RecordAdvice,
        RecordFamilyComments,
        RequestAdvice,
        ServeDraft,
        StartAssessment,
    )

    def day(step: str) -> date:
        return day0 + timedelta(days=DAY[step])

    start = StartAssessment(reference=ref, child_id=child_id, request_date=day0)
    steps: list[tuple[str, object]] = [
        ("decide_to_assess",
         DecideToAssess(decision="assess", decided_on=day("decide_to_assess"))),
        ("request_advice", RequestAdvice(items=[
            AdviceRequest(source=s, requested_on=day("request_advice"))
            for s in REQUIRED_ADVICE])),
        *[("record_advice", RecordAdvice(key=s.value, received_on=day("record_advice")))
          for s in REQUIRED_ADVICE],
        ("decide_plan", DecidePlan(decision="issue", decided_on=day("decide_plan"))),
        ("serve_draft", ServeDraft(served_on=day("serve_draft"))),
        ("record_family_comments",
         RecordFamilyComments(received_on=day("record_family_comments"))),
        ("issue_final", IssueFinal(issued_on=day("issue_final"))),
    ]
    return start, steps


@dataclass
class RunResult:
    side: str
    label: str
    cases: int
    seconds: float
    update_latencies: list[tuple[str, float]] = field(default_factory=list)
    worker: dict = field(default_factory=dict)
    cpu: dict = field(default_factory=dict)
    audit: dict = field(default_factory=dict)

    @property
    def cases_per_second(self) -> float:
        return self.cases / self.seconds

    def summary(self) -> dict:
        def pct(values: list[float]) -> dict:
            v = sorted(values)
            return {"p50": round(1000 * v[len(v) // 2], 1),
                    "p95": round(1000 * v[int(len(v) * 0.95)], 1),
                    "mean": round(1000 * sum(v) / len(v), 1)} if v else {}

        by_name: dict[str, list[float]] = {}
        for name, seconds in self.update_latencies:
            by_name.setdefault(name, []).append(seconds)
        return {
            "side": self.side, "label": self.label, "cases": self.cases,
            "seconds": round(self.seconds, 3),
            "cases_per_second": round(self.cases_per_second, 3),
            "update_latency_ms": pct([s for _, s in self.update_latencies]),
            "update_latency_ms_by_update": {k: pct(v) for k, v in by_name.items()},
            "worker": self.worker, "cpu_seconds": self.cpu, "audit": self.audit,
        }


async def at_rest(handle) -> None:
    """Wait (long-polling the history) until the case has saved its request and its run loop
    has started its first timer: the state in which a case waits for its first decision."""
    from temporalio.api.enums.v1 import EventType

    async def first_timer() -> None:
        async for e in handle.fetch_history_events(wait_new_event=True):
            if e.event_type == EventType.EVENT_TYPE_TIMER_STARTED:
                return

    try:
        await asyncio.wait_for(first_timer(), timeout=120)
    except asyncio.TimeoutError:
        raise RuntimeError(f"{handle.id} started no timer after its first save") from None


async def drive(client, side: str, task_queue: str, refs: list[str], children: list[str],
                concurrency: int, back_to_back: bool,
                ) -> tuple[float, list[tuple[str, float]], list[str]]:
    """Take every case through the lifecycle; at most ``concurrency`` cases at a time. Unless
    ``back_to_back``, the first update waits until the case is at rest (request saved, timer
    set), as a caseworker's first decision comes well after the request."""
    from workflows.assessment import AssessmentWorkflow

    from bench.reference import LIFECYCLE

    day0 = london_today() - timedelta(days=REQUEST_DAYS_AGO)
    sem = asyncio.Semaphore(concurrency)
    latencies: list[tuple[str, float]] = []
    ids: list[str] = []

    async def one(ref: str, child_id: str) -> None:
        async with sem:
            # The project's updates by their handlers (named as the updates), so each result is
            # decoded as the type the workflow declares, as the API does.
            if side == "project":
                start, steps = project_case(ref, child_id, day0)
                wid = assessment_workflow_id(ref)
                handle = await client.start_workflow(AssessmentWorkflow.run, start, id=wid,
                                                     task_queue=task_queue)
                updates = [(name, getattr(AssessmentWorkflow, name), {}, arg)
                           for name, arg in steps]
            else:
                wid = f"reference-{ref}"
                handle = await client.start_workflow("ReferenceWorkflow", ref, id=wid,
                                                     task_queue=task_queue, result_type=dict)
                updates = [(name, name, {"result_type": dict}, rearm)
                           for name, rearm in LIFECYCLE]
            ids.append(wid)
            if not back_to_back:
                await at_rest(handle)
            for name, update, kwargs, arg in updates:
                t = time.perf_counter()
                await handle.execute_update(update, arg, **kwargs)
                latencies.append((name, time.perf_counter() - t))
            final = await handle.result()
            stage = final.stage.value if side == "project" else final["stage"]
            if stage not in ("final_issued", "closed"):
                raise RuntimeError(f"{wid} ended at stage {stage}")

    t0 = time.perf_counter()
    async with asyncio.TaskGroup() as tg:  # a failed case stops the run
        for r, c in zip(refs, children):
            tg.create_task(one(r, c))
    return time.perf_counter() - t0, latencies, ids


async def audit(client, workflow_id: str) -> dict:
    """What one case did to Temporal, from its history."""
    from temporalio.api.enums.v1 import EventType

    history = await client.get_workflow_handle(workflow_id).fetch_history()
    kinds = Counter(EventType.Name(e.event_type).removeprefix("EVENT_TYPE_")
                    for e in history.events)
    retries = sum(e.activity_task_started_event_attributes.attempt - 1 for e in history.events
                  if e.HasField("activity_task_started_event_attributes"))
    return {
        "activities": kinds["ACTIVITY_TASK_SCHEDULED"],
        "activity_retries": retries,
        "updates": kinds["WORKFLOW_EXECUTION_UPDATE_ACCEPTED"],
        "updates_completed": kinds["WORKFLOW_EXECUTION_UPDATE_COMPLETED"],
        "timers_started": kinds["TIMER_STARTED"],
        "timers_fired": kinds["TIMER_FIRED"],
        "timers_canceled": kinds["TIMER_CANCELED"],
        "workflow_tasks": kinds["WORKFLOW_TASK_COMPLETED"],
        "history_events": len(history.events),
        "history_bytes": sum(e.ByteSize() for e in history.events),
    }


SHAPE = ("activities", "updates", "updates_completed", "timers_started", "timers_fired",
         "timers_canceled")


async def measured_run(clients: dict, side: str, label: str, address: str, db_url: str,
                       meters: dict, n: int, concurrency: int, back_to_back: bool) -> RunResult:
    """One timed run of one side; ``meters`` read the CPU time of the servers."""
    tag = uuid.uuid4().hex[:4].upper()
    refs = [f"B{tag}-{i:05d}" for i in range(n)]
    children = await asyncio.to_thread(add_children, db_url, refs) if side == "project" else \
        [""] * n
    worker = await asyncio.to_thread(WorkerProcess.start, side, address,
                                      db_url if side == "project" else None)
    try:
        cpu0 = {"worker": cpu_seconds(worker.proc.pid),
                **{k: read() for k, read in meters.items()}, "driver": time.process_time(),
                "machine": machine_cpu_seconds()}
        seconds, latencies, ids = await drive(clients[side], side, worker.task_queue, refs,
                                              children, concurrency, back_to_back)
        cpu1 = {"worker": cpu_seconds(worker.proc.pid),
                **{k: read() for k, read in meters.items()}, "driver": time.process_time(),
                "machine": machine_cpu_seconds()}
    finally:
        status = await asyncio.to_thread(worker.stop)
    result = RunResult(side, label, n, seconds, latencies)
    result.worker = {"peak_rss_mib": round(status["VmHWM"] / 1024, 1),
                     "idle_rss_mib": round(worker.idle_rss_kib / 1024, 1),
                     "end_rss_mib": round(status["VmRSS"] / 1024, 1)}
    used = {k: cpu1[k] - cpu0[k] for k in cpu0}
    # Anything else on the machine meanwhile (another test run would show here).
    used["other"] = max(0.0, used.pop("machine") - sum(used.values()))
    result.cpu = {k: round(v, 2) for k, v in used.items()}
    result.audit = await audit(clients[side], ids[0])
    return result


# --- the benchmark ---------------------------------------------------------------------------


CODE = ("activities", "api", "cli", "migrations", "models", "statutory", "templates", "worker",
        "workflows")


def code_fingerprint() -> str:
    """A hash of the project's code as the workers import it (not bench/ or docs)."""
    h = hashlib.sha256()
    for path in sorted(p for d in CODE for p in (ROOT / d).rglob("*")
                       if p.is_file() and "__pycache__" not in p.parts):
        h.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:12]


def source_version() -> dict:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True,
                              text=True).stdout.strip()

    status = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True,
                            text=True).stdout
    changed = [line[3:] for line in status.splitlines() if not line[3:].startswith("bench/")]
    diff = subprocess.run(["git", "diff", "HEAD", "--", ".", ":(exclude)bench"], cwd=ROOT,
                          capture_output=True).stdout
    return {"commit": git("rev-parse", "--short", "HEAD"), "uncommitted_changes": changed,
            "uncommitted_diff_sha256": hashlib.sha256(diff).hexdigest()[:12] if diff else None,
            "code_sha256": code_fingerprint()}


def machine() -> dict:
    mem = {}
    with open("/proc/meminfo") as f:
        for line in f:
            k, _, v = line.partition(":")
            mem[k] = int(v.split()[0])
    cpu_model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    import temporalio

    return {"nproc": os.cpu_count(), "cpu": cpu_model,
            "mem_total_gib": round(mem["MemTotal"] / 2**20, 1),
            "python": platform.python_version(), "temporalio": temporalio.__version__,
            "kernel": platform.release()}


async def benchmark(opts: argparse.Namespace) -> dict:
    from temporalio.client import Client
    from temporalio.contrib.pydantic import pydantic_data_converter

    from cli.system import upgrade_database
    from services.temporal import connect
    from config.settings import new_key

    source = source_version()  # workers import the code as it is when each run starts
    folder = Path(tempfile.mkdtemp(prefix="ehc-bench-"))
    os.environ["EHC_PAYLOAD_KEY"] = new_key()  # for this process and the workers
    os.environ["EHC_BENCH_DIR"] = str(folder)
    async with AsyncExitStack() as stack:
        stack.callback(shutil.rmtree, folder, ignore_errors=True)
        server, address = stack.enter_context(  # first, while this process has no threads
            temporal_dev_server(folder, persist=opts.temporal_store == "file"))
        meters = {"server": lambda: cpu_seconds(server.pid)}
        if opts.db == "postgres":
            pg, postmaster = stack.enter_context(postgres_server())
            db_url = new_pg_database(pg)
            meters["postgres"] = lambda: tree_cpu_seconds(postmaster)
        else:
            db_url = f"sqlite:///{folder / 'ehc.db'}"
        await asyncio.to_thread(upgrade_database, db_url)
        for _ in range(120):
            try:
                plain = await Client.connect(address, data_converter=pydantic_data_converter)
                break
            except Exception:  # noqa: BLE001 - still starting
                if server.poll() is not None:
                    raise RuntimeError("the Temporal dev server exited; see its log") from None
                await asyncio.sleep(0.5)
        else:
            raise RuntimeError("the Temporal dev server did not answer in 60s")
        # The project's side as the API reaches it (its data converter: pydantic JSON,
        # encrypted); the reference's with plain pydantic JSON.
        clients = {"project": await connect(project_settings(address, "unused", db_url)),
                   "reference": plain}
        log(f"dev server {address} (pid {server.pid}), database {opts.db}, "
            f"{opts.cases} cases x {opts.repeats} repeats per side, concurrency "
            f"{opts.concurrency}")

        if opts.warmup:
            for side in SIDES:
                r = await measured_run(clients, side, "warm-up", address, db_url, meters,
                                       opts.warmup, opts.concurrency, opts.back_to_back)
                log(f"  warm-up {side:9s} {r.cases_per_second:7.2f} cases/s")

        order = [SIDES if i % 2 == 0 else SIDES[::-1] for i in range(opts.repeats)]
        runs: list[RunResult] = []
        for i, pair in enumerate(order):
            for side in pair:
                r = await measured_run(clients, side, f"run {i + 1}", address, db_url,
                                       meters, opts.cases, opts.concurrency, opts.back_to_back)
                runs.append(r)
                log(f"  run {i + 1} {side:9s} {r.cases_per_second:7.2f} cases/s "
                    f"({r.seconds:.1f}s; worker peak {r.worker['peak_rss_mib']} MiB; CPU s: "
                    + ", ".join(f"{k} {v}" for k, v in r.cpu.items()) + ")")

    sides = {}
    for side in SIDES:
        mine = [r for r in runs if r.side == side]
        sides[side] = {
            "cases_per_second_median": round(statistics.median(r.cases_per_second
                                                               for r in mine), 3),
            "cases_per_second_runs": [round(r.cases_per_second, 3) for r in mine],
            "worker_peak_rss_mib_max": max(r.worker["peak_rss_mib"] for r in mine),
            "worker_idle_rss_mib_median": statistics.median(r.worker["idle_rss_mib"]
                                                            for r in mine),
            "cpu_ms_per_case_median": {
                k: round(statistics.median(1000 * r.cpu[k] / r.cases for r in mine), 1)
                for k in mine[0].cpu},
            "update_latency_ms_median": " / ".join(
                str(statistics.median(r.summary()["update_latency_ms"][k] for r in mine))
                for k in ("p50", "p95")),
            "per_case_history": mine[0].audit,
        }
    p, ref = sides["project"], sides["reference"]
    ratio = p["cases_per_second_median"] / ref["cases_per_second_median"]
    # A run during which other processes took more than 5% of the CPU that the benchmark's
    # own processes used was disturbed (on a shared machine, someone's test run).
    disturbed = [f"{r.label} {r.side}" for r in runs
                 if r.cpu["other"] > 0.05 * sum(v for k, v in r.cpu.items() if k != "other")]
    shape = {k: (p["per_case_history"][k], ref["per_case_history"][k]) for k in SHAPE}
    return {
        "benchmark": "assessment_throughput",
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["python -m bench", *opts.argv]),
        "options": {"cases": opts.cases, "concurrency": opts.concurrency,
                    "repeats": opts.repeats, "warmup": opts.warmup, "db": opts.db,
                    "back_to_back": opts.back_to_back,
                    "temporal_store": opts.temporal_store},
        "machine": machine(),
        "source": source,
        "source_changed_during_run": code_fingerprint() != source["code_sha256"],
        "disturbed_runs": disturbed,
        "sides": sides,
        "ratio_project_to_reference": round(ratio, 3),
        "target": 0.6,
        "target_met": ratio >= 0.6,
        "shape_matches": all(a == b for a, b in shape.values()),
        "shape": shape,
        "runs": [r.summary() for r in runs],
    }


def markdown(s: dict) -> str:
    p, r = s["sides"]["project"], s["sides"]["reference"]
    rows = [
        ("cases/s (median)", p["cases_per_second_median"], r["cases_per_second_median"]),
        ("cases/s (each run)", ", ".join(map(str, p["cases_per_second_runs"])),
         ", ".join(map(str, r["cases_per_second_runs"]))),
        ("worker peak RSS, MiB (max of runs)", p["worker_peak_rss_mib_max"],
         r["worker_peak_rss_mib_max"]),
        ("worker RSS when idle, MiB", p["worker_idle_rss_mib_median"],
         r["worker_idle_rss_mib_median"]),
        ("worker CPU, ms/case", p["cpu_ms_per_case_median"]["worker"],
         r["cpu_ms_per_case_median"]["worker"]),
        ("dev server CPU, ms/case", p["cpu_ms_per_case_median"]["server"],
         r["cpu_ms_per_case_median"]["server"]),
        *([("PostgreSQL CPU, ms/case", p["cpu_ms_per_case_median"]["postgres"],
            r["cpu_ms_per_case_median"]["postgres"])]
          if "postgres" in p["cpu_ms_per_case_median"] else []),
        ("client (driver) CPU, ms/case", p["cpu_ms_per_case_median"]["driver"],
         r["cpu_ms_per_case_median"]["driver"]),
        ("other processes' CPU meanwhile, ms/case", p["cpu_ms_per_case_median"]["other"],
         r["cpu_ms_per_case_median"]["other"]),
        ("update latency p50 / p95, ms", p["update_latency_ms_median"],
         r["update_latency_ms_median"]),
        *[(f"per case: {k.replace('_', ' ')}", a, b) for k, (a, b) in s["shape"].items()],
        ("per case: activity retries", p["per_case_history"]["activity_retries"],
         r["per_case_history"]["activity_retries"]),
        ("per case: workflow tasks", p["per_case_history"]["workflow_tasks"],
         r["per_case_history"]["workflow_tasks"]),
        ("per case: history events", p["per_case_history"]["history_events"],
         r["per_case_history"]["history_events"]),
        ("per case: history bytes", p["per_case_history"]["history_bytes"],
         r["per_case_history"]["history_bytes"]),
    ]
    o = s["options"]
    out = [f"`{s['command']}`: case database {o['db']}, dev server store "
           f"{o['temporal_store']}, {o['cases']} cases x {o['repeats']} runs per side, "
           f"concurrency {o['concurrency']}; {s['machine']['nproc']} CPUs, commit "
           f"{s['source']['commit']}", "",
           "| | project | reference |", "|---|---:|---:|"]
    out += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    out += ["", f"**ratio project/reference: {s['ratio_project_to_reference']}** (target 0.6: "
            f"{'met' if s['target_met'] else 'NOT met'}; same shape: {s['shape_matches']})"]
    if s["source"]["uncommitted_changes"]:
        src = s["source"]
        out.append(f"\nUncommitted changes measured: {', '.join(src['uncommitted_changes'])} "
                   f"(diff {src['uncommitted_diff_sha256']})")
    if s["disturbed_runs"]:
        out.append("\n**Warning: other processes used the CPU during "
                   f"{', '.join(s['disturbed_runs'])}; rerun on a quiet machine.**")
    if s["source_changed_during_run"]:
        out.append("\n**Warning: the project's code changed during the run; runs measured "
                   "different code.**")
    return "\n".join(out)


def parse(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=200, help="cases per run (default 200)")
    ap.add_argument("--concurrency", type=int, default=50,
                    help="cases in flight at once (default 50)")
    ap.add_argument("--repeats", type=int, default=3, help="runs per side (default 3)")
    ap.add_argument("--warmup", type=int, default=20,
                    help="untimed cases per side first (default 20; 0 for none)")
    ap.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite",
                    help="the project's case database (default sqlite)")
    ap.add_argument("--temporal-store", choices=("memory", "file"), default="memory",
                    help="the dev server keeps its state in memory (default), or in a SQLite "
                    "file as `ehc up` does; the file store caps both sides at a few cases/s")
    ap.add_argument("--back-to-back", action="store_true",
                    help="send the first update as soon as the case has started, without "
                    "waiting for its first save and timer")
    opts = ap.parse_args(argv)
    opts.argv = argv
    return opts


def main(argv: list[str]) -> int:
    if argv[:1] == ["worker"]:  # the worker process, started by the benchmark
        die_with_parent()
        side, address, task_queue, *db = argv[1:]
        asyncio.run(serve_worker(side, address, task_queue, db[0] if db else None))
        return 0
    opts = parse(argv)
    summary = asyncio.run(benchmark(opts))
    save_results(f"assessment-{opts.db}", summary, markdown(summary))
    return 0


def save_results(name: str, summary: dict, table: str) -> None:
    """The summary as JSON on stdout, and with its markdown table in ``bench/results/``."""
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    base = RESULTS / f"{name}-{stamp}"
    base.with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n")
    base.with_suffix(".md").write_text(table + "\n")
    print(json.dumps(summary, indent=2))
    log("\n" + table + f"\n\n(saved to {base.relative_to(ROOT)}.json and .md)")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
