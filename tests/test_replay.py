"""Replay the saved histories in ``tests/histories/`` against today's workflow code.

A case runs for months; its workflow is replayed from its history whenever a worker picks it up
again, including after every deploy. If the code no longer makes the same decisions the history
records (another activity, a timer fewer, a step moved), Temporal raises a non-determinism error
and the case is stuck. These tests make such a change fail CI first.

If one fails, do not re-record the history: make the change compatible (``workflow.patched``),
then ADD a history of the new behaviour. See ``tests/record_histories.py``.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    import pytest
    from temporalio.client import WorkflowHistory
    from temporalio.contrib.pydantic import pydantic_data_converter
    from temporalio.worker import Replayer
    from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

    from domain.case import CaseSnapshot, ReviewSnapshot, StartAssessment, StartReview
    from workflows.assessment import AssessmentWorkflow
    from workflows.review import ReviewWorkflow

HISTORIES = Path(__file__).parent / "histories"
FILES = sorted(HISTORIES.glob("*.json"))
# The deliberately broken versions below are of the assessment workflow.
ASSESSMENT_FILES = [p for p in FILES if '"AssessmentWorkflow"' in p.read_text()[:4000]]


def load(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(f"replay-{path.stem}", path.read_text())


def replayer(*workflow_classes: type) -> Replayer:
    """The worker's own settings: the default sandbox and the pydantic converter."""
    return Replayer(workflows=list(workflow_classes), data_converter=pydantic_data_converter)


def broken_replayer(workflow_class: type) -> Replayer:
    """As ``replayer``, but this test module is passed through the sandbox rather than imported
    afresh (with pytest's assertion rewriting) for every replay."""
    runner = SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(__name__))
    return Replayer(workflows=[workflow_class], data_converter=pydantic_data_converter,
                    workflow_runner=runner)


def is_open(history: WorkflowHistory) -> bool:
    return not any(e.HasField("workflow_execution_completed_event_attributes")
                   or e.HasField("workflow_execution_failed_event_attributes")
                   for e in history.events)


def test_there_are_histories_to_replay_including_open_cases():
    assert FILES, f"no saved histories in {HISTORIES}: run python -m tests.record_histories"
    histories = [load(p) for p in FILES]
    for h in histories:
        started = h.events[0].workflow_execution_started_event_attributes
        assert started.workflow_type.name in ("AssessmentWorkflow", "ReviewWorkflow")
    # Open cases are what a deploy must not break: keep at least one mid-flight history.
    assert [p.stem for p, h in zip(FILES, histories) if is_open(h)]


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
async def test_saved_history_replays_on_current_code(path: Path):
    result = await replayer(AssessmentWorkflow, ReviewWorkflow).replay_workflow(load(path))
    # replay_workflow raises on a non-determinism error by default; say so if that ever changes
    assert result.replay_failure is None, f"{path.name}: {result.replay_failure}"


# --- the test above can fail: two deliberately incompatible versions of the workflow -----------


@workflow.defn(name="AssessmentWorkflow")
class NotifiesBeforeSaving(AssessmentWorkflow):
    """A new activity call inserted before the first save: an unpatched change."""

    @workflow.run
    async def run(self, start: StartAssessment) -> CaseSnapshot:
        await workflow.execute_activity("notify_family", start.reference,
                                        start_to_close_timeout=timedelta(seconds=30))
        return await super().run(start)


@workflow.defn(name="AssessmentWorkflow")
class SkipsFirstSave(AssessmentWorkflow):
    """The first ``record_case`` activity dropped: an unpatched change."""

    @workflow.run
    async def run(self, start: StartAssessment) -> CaseSnapshot:
        return await super().run(start)

    async def _save(self) -> None:
        if not getattr(self, "_skipped", False):
            self._skipped = True
            return
        await super()._save()


@pytest.mark.parametrize("broken", [NotifiesBeforeSaving, SkipsFirstSave],
                         ids=lambda c: c.__name__)
@pytest.mark.parametrize("path", ASSESSMENT_FILES, ids=[p.stem for p in ASSESSMENT_FILES])
async def test_replay_fails_on_an_incompatible_change(path: Path, broken: type):
    with pytest.raises(workflow.NondeterminismError, match="Nondeterminism error"):
        await broken_replayer(broken).replay_workflow(load(path))


@workflow.defn(name="ReviewWorkflow")
class ReviewSkipsFirstSave(ReviewWorkflow):
    """The review workflow with its first save dropped: an unpatched change."""

    @workflow.run
    async def run(self, start: StartReview) -> ReviewSnapshot:
        return await super().run(start)

    async def _save(self) -> None:
        if not getattr(self, "_skipped", False):
            self._skipped = True
            return
        await super()._save()


REVIEW_FILES = [p for p in FILES if p not in ASSESSMENT_FILES]


@pytest.mark.parametrize("path", REVIEW_FILES, ids=[p.stem for p in REVIEW_FILES])
async def test_review_replay_fails_on_an_incompatible_change(path: Path):
    with pytest.raises(workflow.NondeterminismError, match="Nondeterminism error"):
        await broken_replayer(ReviewSkipsFirstSave).replay_workflow(load(path))
