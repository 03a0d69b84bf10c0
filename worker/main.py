"""``ehc worker`` / ``python -m worker``: run the workflows and activities of this project."""

from __future__ import annotations

import asyncio
import compileall
import logging
import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from temporalio.client import Client
from temporalio.worker import Worker

from activities.case_record import CaseRecordActivities
from activities.digest import DailyActivities, DigestActivities
from activities.notify import NotifyActivities
from activities.plans import PlanActivities
from services.adqa_daily import DailySender
from services.digest import DigestSender, ensure_digest_schedule
from services.letters import case_recorder
from services.notify import Notifier
from services.reviews import PlanStarter
from config.settings import Settings, get_settings
from services.temporal import connect
from workflows.assessment import AssessmentWorkflow
from workflows.review import ReviewWorkflow
from workflows.digest import AdqaDailyWorkflow, AdqaDigestWorkflow

WORKFLOWS = [AssessmentWorkflow, ReviewWorkflow, AdqaDigestWorkflow, AdqaDailyWorkflow]
log = logging.getLogger("ehc.worker")


def cache_workflow_bytecode() -> None:
    """Write the bytecode of the ``workflows`` package, if it is not there already.

    Temporal's sandbox imports a workflow's module afresh for every workflow run (its global
    state isolation). Python reads that module's cached bytecode when it exists, but
    ``PYTHONDONTWRITEBYTECODE`` (set on this project's build machine, and in many container
    images) stops it ever being written. Then every run compiles the source again, which took
    a third of the worker's CPU when importing 20,000 plans (docs/benchmarks.md). An install
    that cannot write there goes on without the cache."""
    try:
        compileall.compile_dir(Path(__file__).resolve().parent.parent / "workflows",
                               quiet=2, maxlevels=0)
    except OSError:  # a read-only install
        pass


# Workflow tasks the worker takes at once. Their activations run one at a time (the GIL), so
# more only wait inside the worker: with Temporal's default of 100, when an import brought
# tasks faster than the worker could take them, tasks waited there for over 5 s (Core's
# [TMPRL1104] warning) and some outlived the server's 10 s and were taken again
# (docs/benchmarks.md). 20 keeps the pollers ahead of the worker without that.
WORKFLOW_TASK_SLOTS = 20


def workflow_task_slots(cache: int) -> int:
    """``WORKFLOW_TASK_SLOTS``, but no more than the cache holds and at least 2 (Core's
    minimum with a cache). Core takes no more tasks than it can cache, and in temporalio 1.35
    slots above the cache size can starve the poll for new workflows (sdk-rust #1534)."""
    return WORKFLOW_TASK_SLOTS if cache == 0 else max(2, min(WORKFLOW_TASK_SLOTS, cache))


def build_worker(client: Client, settings: Settings, executor: ThreadPoolExecutor,
                 **options) -> Worker:
    """The worker for this project's workflows and activities; ``options`` go to
    ``temporalio.worker.Worker`` (e.g. ``max_cached_workflows=0`` to replay every task).

    The cache (``EHC_WORKER_CACHE``, default 100) keeps the workflows that are in the middle
    of something: a caseworker's action and the save that follows it, an alert and its
    emails. Cases otherwise sleep for days and reviews for months, so a larger cache would
    only hold memory (about 0.3 MiB a workflow) and, during an import, evict one workflow for
    each new one."""
    cache_workflow_bytecode()
    records = CaseRecordActivities(case_recorder(settings.db_url))
    notices = NotifyActivities(Notifier(settings))
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=WORKFLOWS,
        activities=[records.record_case, records.record_review,
                    PlanActivities(PlanStarter(client, settings)).start_plan_review,
                    notices.send_advice_notice,
                    DigestActivities(DigestSender(settings)).send_adqa_digest,
                    DailyActivities(DailySender(settings)).send_adqa_daily],
        activity_executor=executor,
        max_concurrent_activities=16,
        **{"max_cached_workflows": settings.worker_cache,
           "max_concurrent_workflow_tasks": workflow_task_slots(settings.worker_cache),
           **options},
    )


async def run(settings: Settings | None = None) -> None:
    settings = settings or get_settings()
    client = await connect(settings)
    await ensure_digest_schedule(client, settings, log_errors=True)  # the ADQA digest and daily message
    with ThreadPoolExecutor(max_workers=16) as executor:
        worker = build_worker(client, settings, executor)
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):  # finish in-flight tasks, then stop
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        log.info("worker polling task queue %s on %s", settings.task_queue,
                 settings.temporal_address)
        async with worker:
            await stop.wait()
        log.info("worker stopped")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
