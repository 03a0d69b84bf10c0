"""The reference workflow of the assessment throughput benchmark: the shape of
``AssessmentWorkflow`` with none of its work.

Per case it does what the project's on-time lifecycle does to Temporal (checked against a real
history by the benchmark, see ``bench.assessment_throughput.audit``):

* one activity when it starts (the project saves ``request_received``);
* a run loop that waits on ``workflow.wait_condition`` with a timeout, its durable timer, and
  starts a new timer whenever an update moves "the next alert" (the project's ``_next_alert``);
* the same updates, in the same order and number (11 in the lifecycle), each calling one
  activity once, like every project handler calls ``record_case`` once;
* it completes when the last update (``issue_final``) has closed it.

What it leaves out is the project's work: no pydantic models (inputs and results are a string
and a small dict), no statutory date arithmetic, no deadline views, and an activity that does
nothing instead of writing the case record to the database.

Only temporalio and the standard library are imported: the module is loaded inside the
workflow sandbox.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.exceptions import ApplicationError

NOOP_ACTIVITY = "reference_noop"
TASK_QUEUE_PREFIX = "bench-reference"

# The project's timers sleep until a deadline's alert (weeks away); this one never fires either.
TIMER = timedelta(days=30)

# The lifecycle as the benchmark drives it, and whether each update moves the project's next
# alert (so its run loop cancels its timer and starts another). Taken from the project's
# history of the same lifecycle; ``bench.assessment_throughput.audit`` re-checks it every run.
LIFECYCLE: tuple[tuple[str, bool], ...] = (
    ("decide_to_assess", True),
    ("request_advice", True),
    ("record_advice", False),
    ("record_advice", False),
    ("record_advice", False),
    ("record_advice", False),
    ("record_advice", True),
    ("decide_plan", False),  # no_plan_notice and draft_plan_target share their alert
    ("serve_draft", True),
    ("record_family_comments", True),
    ("issue_final", True),
)
STAGES = ("awaiting_decision", "assessing", "drafting", "draft_served", "closed")


@activity.defn(name=NOOP_ACTIVITY)
def noop(reference: str, seq: int) -> None:
    """Stands in for ``record_case``: a synchronous activity on the same thread pool, doing
    nothing."""
    return None


@workflow.defn(name="ReferenceWorkflow")
class ReferenceWorkflow:
    @workflow.init
    def __init__(self, reference: str) -> None:
        self.reference = reference
        self.stage = STAGES[0]
        self.version = 0
        self.clock = 0  # moved by an update where the project's next alert moves
        self._pending = 0
        self._saving = asyncio.Lock()  # as the project: saves one at a time, in order

    @workflow.run
    async def run(self, reference: str) -> dict:
        self._event()
        await self._save()
        while self.stage != "closed":
            clock = self.clock
            try:
                await workflow.wait_condition(
                    lambda: self.stage == "closed" or self.clock != clock, timeout=TIMER
                )
            except asyncio.TimeoutError:
                pass
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self._save()  # nothing pending: no activity, as in the project
        return self._view()

    def _event(self) -> None:
        self.version += 1
        self._pending += 1

    async def _save(self) -> None:
        async with self._saving:
            if not self._pending:
                return
            self._pending = 0
            await workflow.execute_activity(
                NOOP_ACTIVITY, args=[self.reference, self.version],
                start_to_close_timeout=timedelta(seconds=30),
            )

    def _view(self) -> dict:
        return {"reference": self.reference, "stage": self.stage, "version": self.version}

    async def _apply(self, stage: str | None, rearm: bool) -> dict:
        if stage is not None:
            self.stage = stage
        if rearm:
            self.clock += 1
        self._event()
        await self._save()
        return self._view()

    def _require(self, *stages: str) -> None:
        if self.stage not in stages:
            raise ApplicationError(f"not allowed at stage {self.stage}", type="OutOfOrder",
                                   non_retryable=True)

    @workflow.update(name="decide_to_assess")
    async def decide_to_assess(self, rearm: bool) -> dict:
        return await self._apply("assessing", rearm)

    @decide_to_assess.validator
    def _v_decide_to_assess(self, rearm: bool) -> None:
        self._require("awaiting_decision")

    @workflow.update(name="request_advice")
    async def request_advice(self, rearm: bool) -> dict:
        return await self._apply(None, rearm)

    @request_advice.validator
    def _v_request_advice(self, rearm: bool) -> None:
        self._require("assessing")

    @workflow.update(name="record_advice")
    async def record_advice(self, rearm: bool) -> dict:
        return await self._apply(None, rearm)

    @record_advice.validator
    def _v_record_advice(self, rearm: bool) -> None:
        self._require("assessing", "drafting", "draft_served")

    @workflow.update(name="decide_plan")
    async def decide_plan(self, rearm: bool) -> dict:
        return await self._apply("drafting", rearm)

    @decide_plan.validator
    def _v_decide_plan(self, rearm: bool) -> None:
        self._require("assessing")

    @workflow.update(name="serve_draft")
    async def serve_draft(self, rearm: bool) -> dict:
        return await self._apply("draft_served", rearm)

    @serve_draft.validator
    def _v_serve_draft(self, rearm: bool) -> None:
        self._require("drafting")

    @workflow.update(name="record_family_comments")
    async def record_family_comments(self, rearm: bool) -> dict:
        return await self._apply(None, rearm)

    @record_family_comments.validator
    def _v_record_family_comments(self, rearm: bool) -> None:
        self._require("draft_served")

    @workflow.update(name="issue_final")
    async def issue_final(self, rearm: bool) -> dict:
        return await self._apply("closed", rearm)

    @issue_final.validator
    def _v_issue_final(self, rearm: bool) -> None:
        self._require("draft_served")

