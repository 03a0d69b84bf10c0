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
``activities.importer.import_plans``, the function ``ehc import plans`` and the API call.

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
    cpu_seconds,
    log,
    machine,
    new_pg_database,
    postgres_server,
    proc_status,
    project_settings,
    save_results,
    source_version,
    temporal_dev_server,
)

EXAMPLE = ROOT / "docs" / "examples" / "plans.csv"
EXAMPLE_DAY = date(2026, 11, 23)  # the day the example file describes (docs/import.md)


def caseload(plans: int) -> str:
    """``plans`` rows: the example's rows in turn, each copy a different plan and child."""
    with open(EXAMPLE, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        header, templates = reader.fieldnames or [], list(reader)
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

    from models import tables as t
    from models.db import engine_for

    with Session(engine_for(db_url)) as s:
        return s.exec(select(func.count()).select_from(t.Plan)).one()


async def until_recorded(db_url: str, plans: int, t0: float, limit: float) -> float:
    last = -1
    while True:
        n = await asyncio.to_thread(recorded_plans, db_url)
        if n != last:
            log(f"  {time.monotonic() - t0:7.1f}s  {n} plans recorded")
            last = n
        if n >= plans:
            return time.monotonic() - t0
        if time.monotonic() - t0 > limit:
            raise RuntimeError(f"only {n} of {plans} plans recorded after {limit:.0f}s")
        await asyncio.sleep(5)


async def until_idle(pid: int, t0: float, quiet: float = 5.0) -> float:
    """Wait until the process has used under 2% of a CPU for ``quiet`` seconds."""
    while True:
        before = cpu_seconds(pid)
        await asyncio.sleep(quiet)
        if cpu_seconds(pid) - before < 0.02 * quiet:
            return time.monotonic() - t0 - quiet


async def benchmark(opts: argparse.Namespace) -> dict:
    from activities.importer import import_plans
    from cli.system import upgrade_database
    from worker.client import connect
    from worker.codec import new_key

    source = source_version()
    folder = Path(tempfile.mkdtemp(prefix="ehc-bench-import-"))
    os.environ["EHC_PAYLOAD_KEY"] = new_key()  # for this process and the worker
    os.environ["EHC_BENCH_DIR"] = str(folder)
    text = caseload(opts.plans)
    async with AsyncExitStack() as stack:
        stack.callback(shutil.rmtree, folder, ignore_errors=True)
        server, address = stack.enter_context(  # first, while this process has no threads
            temporal_dev_server(folder, persist=opts.temporal_store == "file"))
        if opts.db == "postgres":
            pg, _ = stack.enter_context(postgres_server())
            db_url = new_pg_database(pg)
        else:
            db_url = f"sqlite:///{folder / 'ehc.db'}"
        await asyncio.to_thread(upgrade_database, db_url)
        worker = await asyncio.to_thread(WorkerProcess.start, "project", address, db_url)
        stack.callback(worker.stop)
        settings = project_settings(address, worker.task_queue, db_url)
        client = await connect(settings)
        log(f"dev server {address} ({opts.temporal_store} store), database {opts.db}, "
            f"{opts.plans} plans, {opts.concurrency} starts at a time")

        shown = [0.0]

        def progress(done: int, total: int) -> None:
            if time.monotonic() - shown[0] > 10 or done == total:
                shown[0] = time.monotonic()
                log(f"  {done}/{total} started")

        server_cpu0, worker_cpu0 = cpu_seconds(server.pid), cpu_seconds(worker.proc.pid)
        t0 = time.monotonic()
        result = await import_plans(text, settings=settings, client=client,
                                    today=EXAMPLE_DAY, concurrency=opts.concurrency,
                                    progress=progress)
        started = time.monotonic() - t0
        s = result.summary
        if result.blocked or s.imported != opts.plans:
            raise RuntimeError(f"the import did not start every plan: {s.model_dump()}")
        log(f"  all {opts.plans} started in {started:.1f}s")
        recorded = await until_recorded(db_url, opts.plans, t0, opts.limit)
        settled = await until_idle(worker.proc.pid, t0)
        worker_mem, server_mem = proc_status(worker.proc.pid), proc_status(server.pid)
        worker_cpu = cpu_seconds(worker.proc.pid) - worker_cpu0
        server_cpu = cpu_seconds(server.pid) - server_cpu0
        log(f"  recorded {recorded:.1f}s, settled {settled:.1f}s; worker RSS "
            f"{worker_mem['VmRSS'] / 1024:.0f} MiB (peak {worker_mem['VmHWM'] / 1024:.0f}), "
            f"server RSS {server_mem['VmRSS'] / 1024:.0f} MiB")

        t1 = time.monotonic()
        again = await import_plans(text, settings=settings, client=client, today=EXAMPLE_DAY,
                                   concurrency=opts.concurrency)
        again_s = time.monotonic() - t1
        a = again.summary
        if (a.imported, a.already_imported) != (0, opts.plans):
            raise RuntimeError(f"the second import changed something: {a.model_dump()}")
        log(f"  the same file again: {a.already_imported} already imported in {again_s:.1f}s")

    mib = 1024
    return {
        "benchmark": "import_plans",
        "argv": opts.argv,
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "source": source,
        "machine": machine(),
        "plans": opts.plans,
        "temporal_store": opts.temporal_store,
        "db": opts.db,
        "concurrency": opts.concurrency,
        "worker_cache": os.environ.get("EHC_WORKER_CACHE", "default"),
        "children_added": s.children_added,
        "seconds": {"started": round(started, 1), "recorded": round(recorded, 1),
                    "settled": round(settled, 1), "again": round(again_s, 1)},
        "plans_per_second": {"started": round(opts.plans / started, 1),
                             "recorded": round(opts.plans / recorded, 1)},
        "worker_mib": {"rss": round(worker_mem["VmRSS"] / mib), "peak": round(
            worker_mem["VmHWM"] / mib), "idle_before": round(worker.idle_rss_kib / mib)},
        "server_mib": {"rss": round(server_mem["VmRSS"] / mib),
                       "peak": round(server_mem["VmHWM"] / mib)},
        "cpu_seconds": {"worker": round(worker_cpu, 1), "server": round(server_cpu, 1)},
        "cpu_ms_per_plan": {"worker": round(worker_cpu * 1000 / opts.plans, 1),
                            "server": round(server_cpu * 1000 / opts.plans, 1)},
        "targets": {"recorded_under_10_min": recorded < 600,
                    "worker_under_1_gb": worker_mem["VmHWM"] < 1024 * mib},
    }


def markdown(r: dict) -> str:
    sec, rate = r["seconds"], r["plans_per_second"]
    return "\n".join([
        f"| {r['plans']} plans, {r['temporal_store']} store, {r['db']}, worker cache "
        f"{r['worker_cache']} | |",
        "|---|---:|",
        f"| all started (the command returns) | {sec['started']} s ({rate['started']} plans/s) |",
        f"| all recorded in the case database | {sec['recorded']} s ({rate['recorded']} plans/s) |",
        f"| worker settled | {sec['settled']} s |",
        f"| worker memory, {r['plans']} workflows open: RSS / peak | "
        f"{r['worker_mib']['rss']} / {r['worker_mib']['peak']} MiB |",
        f"| dev server memory: RSS / peak | {r['server_mib']['rss']} / "
        f"{r['server_mib']['peak']} MiB |",
        f"| CPU per plan: worker / server | {r['cpu_ms_per_plan']['worker']} / "
        f"{r['cpu_ms_per_plan']['server']} ms |",
        f"| the same file again (all already imported) | {sec['again']} s |",
    ])


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
    opts = ap.parse_args(argv)
    if opts.concurrency is None:
        from activities.importer import IMPORT_CONCURRENCY

        opts.concurrency = IMPORT_CONCURRENCY
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
