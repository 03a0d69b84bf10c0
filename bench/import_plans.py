"""Importing a large council's caseload: ``python -m bench import [--plans 20000]``.

What a council does on day one, on the embedded default that ``ehc up`` runs: the Temporal dev
server keeping its state in a SQLite file (``--temporal-store memory`` to compare), the case
database in SQLite (``--db postgres`` for a throwaway PostgreSQL cluster), and one project
worker in its own process (``ehc worker``'s ``build_worker``, pydantic JSON encrypted with a
payload key made for the run), so that its memory can be read from ``/proc``.

The file is ``--plans`` rows made from the 13 rows of ``docs/examples/plans.csv`` (every kind
of row the format has: nurseries on a shorter cycle, a meeting already fixed, plans waiting for
the LA's decision or for their amended plan, reviews overdue, phase transfers due), each copy
with its own plan reference, person id and name. This process imports it with
``services.plan_import.import_plans``, the function ``ehc import plans`` and the API call.

Three times are measured, from the moment the import is called:

- **started**: ``import_plans`` has returned: every row validated, every child added, every
  plan's review workflow started. This is what the command's progress bar shows.
- **recorded**: every plan has its first cycle recorded in the case database (the workflow's
  first task and its ``record_review`` activity): the plans list, the cohort and the reports
  can see all of them.
- **settled**: the worker has had nothing to do for a few seconds.

Then memory: the worker's resident memory (``VmRSS``) and its peak (``VmHWM``) with the
``--plans`` review workflows open; the dev server's likewise. Last, the same file is imported
again, and every row must come back ``already_imported`` with nothing started.

The summary goes to stdout as JSON and to ``bench/results/``; progress to stderr. The figures
are in docs/benchmarks.md.
"""

from __future__ import annotations

from domain.identifiers import review_workflow_id

import argparse
import asyncio
import csv
import io
import os
import shutil
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from datetime import date, datetime, timezone
from pathlib import Path

from bench.assessment_throughput import (
    ROOT,
    WorkerProcess,
    code_fingerprint,
    cpu_seconds,
    log,
    machine,
    machine_cpu_seconds,
    new_pg_database,
    postgres_server,
    proc_status,
    project_settings,
    save_results,
    source_version,
    temporal_dev_server,
    tree_cpu_seconds,
)

EXAMPLE = ROOT / "docs" / "examples" / "plans.csv"
EXAMPLE_DAY = date(2026, 11, 23)  # the day the example file describes (docs/import.md)
DATE_COLUMNS = ("date_of_birth", "plan_issued_on", "last_review_on", "amendments_sent_on",
                "next_meeting_on")


def caseload(plans: int, today: date = EXAMPLE_DAY) -> str:
    """``plans`` rows: the example's rows in turn, each copy a different plan and child, with
    every date moved on by as many days as ``today`` is after ``EXAMPLE_DAY``, so that the file
    says on ``today`` what the example says on its day (a meeting fixed for next week, a review
    overdue since September)."""
    with open(EXAMPLE, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        header, templates = reader.fieldnames or [], list(reader)
    shift = today - EXAMPLE_DAY
    for row in templates:
        for column in DATE_COLUMNS:
            if row[column]:
                row[column] = (date.fromisoformat(row[column]) + shift).isoformat()
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=header, lineterminator="\r\n")
    w.writeheader()
    for n in range(plans):
        row = dict(templates[n % len(templates)])
        row["plan_reference"] = f"BENCH-{n:06d}"
        row["council_person_id"] = f"B{n:07d}"
        row["family_name"] = f"Bench{n}"
        w.writerow(row)
    return out.getvalue()


def recorded_plans(db_url: str) -> int:
    from sqlalchemy import func
    from sqlmodel import Session, select

    from store import tables as t
    from store.db import engine_for

    with Session(engine_for(db_url)) as s:
        return s.exec(select(func.count()).select_from(t.Plan)).one()


async def until_recorded(db_url: str, plans: int, pid: int, t0: float, limit: float,
                         stall_after: float) -> tuple[float | None, dict | None]:
    """Wait until every plan is in the case database. (With code from before the import
    wrote the records, the worker's first tasks wrote them: if the count stops while the
    worker is idle for ``stall_after`` seconds, that is a stall, and what was seen is
    returned instead of the time.)"""
    last, shown, quiet_since = -1, -100.0, None
    last_cpu = cpu_seconds(pid)
    while True:
        n = await asyncio.to_thread(recorded_plans, db_url)
        now = time.monotonic() - t0
        if n != last and (now - shown >= 10 or n >= plans):
            log(f"  {now:7.1f}s  {n} plans recorded")
            shown = now
        if n >= plans:
            return now, None
        cpu = cpu_seconds(pid)
        idle = cpu - last_cpu < 0.02 * 1
        last_cpu = cpu
        quiet_since = (quiet_since or now) if idle and n == last else None
        last = n
        if quiet_since is not None and now - quiet_since >= stall_after:
            return None, {"at_seconds": round(now, 1), "recorded": n,
                          "idle_for_seconds": round(now - quiet_since, 1)}
        if now > limit:
            raise RuntimeError(f"only {n} of {plans} plans recorded after {limit:.0f}s")
        await asyncio.sleep(1)


async def task_queue(client, name: str) -> tuple[int, int]:
    """The workflow tasks waiting on the task queue (approximately, as the server counts
    them) and the pollers it has seen lately."""
    from temporalio.api.enums.v1 import TaskQueueType
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

    r = await client.workflow_service.describe_task_queue(DescribeTaskQueueRequest(
        namespace=client.namespace, task_queue=TaskQueue(name=name),
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, report_stats=True))
    return r.stats.approximate_backlog_count, len(r.pollers)


async def until_worked(client, queue: str, pid: int, t0: float, limit: float,
                       stall_after: float) -> tuple[float | None, dict | None]:
    """Wait until the worker has taken every workflow task (the task queue's backlog is empty
    twice running and the worker is idle): each plan's first task, which sets its timers.
    Returns the time, or ``None`` and what was seen if the worker stopped taking tasks: a
    backlog while the worker used under 2% of a CPU for ``stall_after`` seconds."""
    quiet_since, empty = None, 0
    last_cpu, last_shown, shown_at = cpu_seconds(pid), -1, -100.0
    while True:
        await asyncio.sleep(2)
        backlog, pollers = await task_queue(client, queue)
        cpu = cpu_seconds(pid)
        idle = cpu - last_cpu < 0.02 * 2
        last_cpu = cpu
        now = time.monotonic() - t0
        if backlog != last_shown and (now - shown_at >= 10 or backlog == 0):
            log(f"  {now:7.1f}s  {backlog} workflow tasks waiting, {pollers} pollers")
            last_shown, shown_at = backlog, now
        empty = empty + 1 if backlog == 0 else 0
        if empty >= 2 and idle:
            return now, None
        quiet_since = (quiet_since or now) if idle and backlog > 0 else None
        if quiet_since is not None and now - quiet_since >= stall_after:
            return None, {"at_seconds": round(now, 1), "backlog": backlog, "pollers": pollers,
                          "idle_for_seconds": round(now - quiet_since, 1)}
        if now > limit:
            raise RuntimeError(f"workflow tasks still waiting after {limit:.0f}s: {backlog}")


async def until_idle(pid: int, t0: float, quiet: float = 5.0) -> float:
    """Wait until the process has used under 2% of a CPU for ``quiet`` seconds."""
    while True:
        before = cpu_seconds(pid)
        await asyncio.sleep(quiet)
        if cpu_seconds(pid) - before < 0.02 * quiet:
            return time.monotonic() - t0 - quiet


async def first_tasks(client, plans: int) -> dict:
    """What the first plans (one of each kind of row) did to Temporal, from their histories:
    per plan, on average."""
    from bench.assessment_throughput import audit

    sample = [await audit(client, review_workflow_id(f"BENCH-{n:06d}")) for n in range(min(plans, 13))]
    return {k: round(sum(a[k] for a in sample) / len(sample), 2)
            for k in ("history_events", "workflow_tasks", "activities", "timers_started",
                      "history_bytes")}


async def benchmark(opts: argparse.Namespace) -> dict:
    from services.plan_import import import_plans
    from cli.system import upgrade_database
    from services.temporal import connect
    from config.settings import new_key

    source = source_version()
    folder = Path(tempfile.mkdtemp(prefix="ehc-bench-import-"))
    os.environ["EHC_PAYLOAD_KEY"] = new_key()  # for this process and the worker
    os.environ["EHC_BENCH_DIR"] = str(folder)
    text = caseload(opts.plans, opts.today)
    async with AsyncExitStack() as stack:
        stack.callback(shutil.rmtree, folder, ignore_errors=True)
        server, address = stack.enter_context(  # first, while this process has no threads
            temporal_dev_server(folder, persist=opts.temporal_store == "file"))
        if opts.db == "postgres":
            pg, pg_pid = stack.enter_context(postgres_server())
            db_url = new_pg_database(pg)
        else:
            db_url, pg_pid = f"sqlite:///{folder / 'ehc.db'}", None
        await asyncio.to_thread(upgrade_database, db_url)
        worker = await asyncio.to_thread(WorkerProcess.start, "project", address, db_url)
        stack.callback(worker.stop)
        settings = project_settings(address, worker.task_queue, db_url)
        client = await connect(settings)
        log(f"dev server {address} ({opts.temporal_store} store), database {opts.db}, "
            f"{opts.plans} plans as on {opts.today}, {opts.concurrency} starts at a time, "
            f"worker cache {os.environ.get('EHC_WORKER_CACHE', 'default')}")

        shown = [0.0]

        def progress(done: int, total: int) -> None:
            if time.monotonic() - shown[0] > 10 or done == total:
                shown[0] = time.monotonic()
                log(f"  {done}/{total} started")

        def cpu_now() -> dict[str, float]:
            out = {"worker": cpu_seconds(worker.proc.pid), "server": cpu_seconds(server.pid),
                   "importer": time.process_time(), "machine": machine_cpu_seconds()}
            if pg_pid is not None:
                out["postgres"] = tree_cpu_seconds(pg_pid)
            return out

        cpu0 = cpu_now()
        t0 = time.monotonic()
        result = await import_plans(text, settings=settings, client=client,
                                    today=opts.today, concurrency=opts.concurrency,
                                    progress=progress)
        started = time.monotonic() - t0
        s = result.summary
        if result.blocked or s.imported != opts.plans:
            raise RuntimeError(f"the import did not start every plan: {s.model_dump()}")
        log(f"  all {opts.plans} started in {started:.1f}s")
        recorded, stalled = await until_recorded(db_url, opts.plans, worker.proc.pid, t0,
                                                 opts.limit, opts.stall_after)
        worked = None
        if not stalled:
            worked, stalled = await until_worked(client, worker.task_queue, worker.proc.pid,
                                                 t0, opts.limit, opts.stall_after)
        if stalled:
            stalled["backlog"], stalled["pollers"] = await task_queue(client, worker.task_queue)
            log(f"  STALLED: {stalled}")
        settled = await until_idle(worker.proc.pid, t0) if not stalled else None
        cpu1 = cpu_now()
        elapsed = time.monotonic() - t0
        worker_mem, server_mem = proc_status(worker.proc.pid), proc_status(server.pid)
        used = {k: cpu1[k] - cpu0[k] for k in cpu0}
        # Anything else on the machine meanwhile (someone's test run would show here).
        used["other"] = max(0.0, used.pop("machine") - sum(used.values()))
        busy = used["other"] / (elapsed * (os.cpu_count() or 1))
        log(f"  recorded {recorded}, first tasks done {worked}, settled {settled}; "
            f"worker RSS {worker_mem['VmRSS'] / 1024:.0f} MiB "
            f"(peak {worker_mem['VmHWM'] / 1024:.0f}), server RSS "
            f"{server_mem['VmRSS'] / 1024:.0f} MiB; other processes used {busy:.0%} of the "
            "machine")
        history = await first_tasks(client, opts.plans)

        again_s, a = None, None
        if not stalled:
            t1 = time.monotonic()
            again = await import_plans(text, settings=settings, client=client,
                                       today=opts.today, concurrency=opts.concurrency)
            again_s = time.monotonic() - t1
            a = again.summary
            if (a.imported, a.already_imported, a.failed) != (0, opts.plans, 0):
                raise RuntimeError(f"the second import changed something: {a.model_dump()}")
            log(f"  the same file again: {a.already_imported} already imported in "
                f"{again_s:.1f}s")

    mib = 1024
    done = worked if worked is not None else None
    return {
        "benchmark": "import_plans",
        "argv": opts.argv,
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "source": source,
        "source_changed_during_run": code_fingerprint() != source["code_sha256"],
        "machine": machine(),
        "plans": opts.plans,
        "import_day": opts.today.isoformat(),
        "temporal_store": opts.temporal_store,
        "db": opts.db,
        "concurrency": opts.concurrency,
        "worker_cache": os.environ.get("EHC_WORKER_CACHE", "default"),
        "children_added": s.children_added,
        "seconds": {"started": round(started, 1),
                    "recorded": None if recorded is None else round(recorded, 1),
                    "first_tasks_done": None if done is None else round(done, 1),
                    "settled": None if settled is None else round(settled, 1),
                    "again": None if again_s is None else round(again_s, 1)},
        "plans_per_second": {"started": round(opts.plans / started, 1),
                             "recorded": None if recorded is None
                             else round(opts.plans / recorded, 1),
                             "first_tasks_done": None if done is None
                             else round(opts.plans / done, 1)},
        "stalled": stalled,
        "per_plan_history": history,
        "worker_mib": {"rss": round(worker_mem["VmRSS"] / mib), "peak": round(
            worker_mem["VmHWM"] / mib), "idle_before": round(worker.idle_rss_kib / mib)},
        "server_mib": {"rss": round(server_mem["VmRSS"] / mib),
                       "peak": round(server_mem["VmHWM"] / mib)},
        "cpu_seconds": {k: round(v, 1) for k, v in used.items()},
        "cpu_ms_per_plan": {k: round(v * 1000 / opts.plans, 1) for k, v in used.items()},
        "worker_output": dict(worker.output.most_common()),
        "other_processes_share_of_machine": round(busy, 3),
        "machine_busy": busy > 0.05,
        "targets": {"recorded_under_10_min": recorded is not None and recorded < 600,
                    "first_tasks_done_under_10_min": done is not None and done < 600,
                    "worker_under_1_gb": worker_mem["VmHWM"] < 1024 * mib},
    }


def markdown(r: dict) -> str:
    sec, rate, cpu = r["seconds"], r["plans_per_second"], r["cpu_ms_per_plan"]
    h = r["per_plan_history"]
    done = (f"{sec['first_tasks_done']} s ({rate['first_tasks_done']} plans/s)"
            if sec["first_tasks_done"] is not None else f"**stalled**: {r['stalled']}")
    lines = [
        f"| {r['plans']} plans as on {r['import_day']}, {r['temporal_store']} store, {r['db']}, "
        f"worker cache {r['worker_cache']} | |",
        "|---|---:|",
        f"| all started (the command returns) | {sec['started']} s ({rate['started']} plans/s) |",
        "| all recorded in the case database | "
        + (f"{sec['recorded']} s ({rate['recorded']} plans/s) |" if sec["recorded"] is not None
           else f"**stalled**: {r['stalled']} |"),
        f"| every plan's first workflow task done | {done} |",
        f"| worker settled | {sec['settled']} s |",
        f"| per plan: history events / workflow tasks / activities | {h['history_events']} / "
        f"{h['workflow_tasks']} / {h['activities']} |",
        f"| worker memory, {r['plans']} workflows open: RSS / peak | "
        f"{r['worker_mib']['rss']} / {r['worker_mib']['peak']} MiB |",
        f"| dev server memory: RSS / peak | {r['server_mib']['rss']} / "
        f"{r['server_mib']['peak']} MiB |",
        f"| CPU per plan: worker / server / importer | {cpu['worker']} / {cpu['server']} / "
        f"{cpu['importer']} ms |",
        f"| other processes meanwhile (share of the machine) | "
        f"{r['other_processes_share_of_machine']:.0%}"
        f"{' (busy)' if r['machine_busy'] else ''} |",
        f"| the same file again (all already imported) | {sec['again']} s |",
        "| Temporal Core's warnings (worker stdout) | "
        + (", ".join(f"{n} × {k}" for k, n in r["worker_output"].items()) or "none") + " |",
    ]
    return "\n".join(lines)


def parse(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench import",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--plans", type=int, default=20000, help="rows in the file (default 20000)")
    ap.add_argument("--concurrency", type=int, default=None,
                    help="plans started at a time (default: the import's own)")
    ap.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    ap.add_argument("--temporal-store", choices=("file", "memory"), default="file",
                    help="the dev server's state in a SQLite file as `ehc up` keeps it "
                    "(default), or in memory")
    ap.add_argument("--limit", type=float, default=3600,
                    help="give up if the plans are not all recorded after this many seconds")
    ap.add_argument("--today", type=date.fromisoformat, default=None,
                    help="the day the import is run as (default: today in London); the "
                    "example's dates are moved on to match it")
    ap.add_argument("--stall-after", type=float, default=60,
                    help="report a stall when workflow tasks wait while the worker has been "
                    "idle this many seconds (default 60)")
    opts = ap.parse_args(argv)
    if opts.concurrency is None:
        from services.plan_import import IMPORT_CONCURRENCY

        opts.concurrency = IMPORT_CONCURRENCY
    if opts.today is None:
        from bench.assessment_throughput import london_today

        opts.today = london_today()
    opts.argv = argv
    return opts


def main(argv: list[str]) -> int:
    opts = parse(argv)
    summary = asyncio.run(benchmark(opts))
    save_results(f"import-{opts.plans}-{opts.temporal_store}-{opts.db}", summary,
                 markdown(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
