"""The whole assessment lifecycle in Temporal's time-skipping server, with the real activity
writing a real database: on time, late advice, refused, no plan, exceptions, and every kind of
rejected caseworker action."""

from __future__ import annotations

import uuid
from contextlib import asynccontextmanager
from datetime import date, timedelta

import pytest
from sqlmodel import Session, select
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError

from store import tables as t
from store.db import engine_for
from domain.case import (
    REQUIRED_ADVICE,
    AdviceRequest,
    CaseSnapshot,
    CaseView,
    CloseCase,
    DecidePlan,
    DecideToAssess,
    IssueFinal,
    RecordAdvice,
    RecordException,
    RecordFamilyComments,
    RequestAdvice,
    ServeDraft,
    Stage,
    StartAssessment,
    WithdrawException,
)
from domain.words import long_date
from statutory import ExceptionKind, Status, london_date, london_midnight
from tests.conftest import settings_for
from worker.main import build_worker
from workflows.assessment import AssessmentWorkflow


@asynccontextmanager
async def running_worker(env, db_url, executor):
    settings = settings_for(db_url, f"tq-{uuid.uuid4().hex[:8]}")
    async with build_worker(env.client, settings, executor):
        yield settings


def add_child(db_url: str) -> str:
    with Session(engine_for(db_url)) as s:
        child = t.Child(given_name="Amelia", family_name="Testchild",
                        date_of_birth=date(2017, 5, 4))
        s.add(child)
        s.commit()
        return child.id


class Case:
    """Drives one assessment through its steps, each on a day counted from the request."""

    def __init__(self, env, handle: WorkflowHandle, day0: date) -> None:
        self.env, self.handle, self.day0 = env, handle, day0

    def day(self, n: int) -> date:
        return self.day0 + timedelta(days=n)

    async def go_to(self, n: int) -> None:
        """Let time pass until day ``n`` of the case (noon, London)."""
        now = await self.env.get_current_time()
        noon = london_midnight(self.day(n)) + timedelta(hours=12)
        if noon > now:
            await self.env.sleep(noon - now)

    async def do(self, update: str, arg) -> CaseView:
        case = await self.handle.execute_update(update, arg, result_type=CaseSnapshot)
        return case.view(london_date(await self.env.get_current_time()))

    async def view(self) -> CaseView:
        snapshot = await self.handle.query(AssessmentWorkflow.snapshot)
        return snapshot.view(london_date(await self.env.get_current_time()))


async def start_case(env, settings, db_url, **policy) -> Case:
    now = await env.get_current_time()
    day0 = london_date(now)
    ref = f"T-{uuid.uuid4().hex[:8].upper()}"
    handle = await env.client.start_workflow(
        AssessmentWorkflow.run,
        StartAssessment(reference=ref, child_id=add_child(db_url), request_date=day0),
        id=f"assessment-{ref}", task_queue=settings.task_queue,
    )
    return Case(env, handle, day0)


ALL_ADVICE = [s for s in REQUIRED_ADVICE]


async def assess_and_request_advice(case: Case, decided: int = 20, requested: int = 21):
    await case.go_to(decided)
    await case.do("decide_to_assess", DecideToAssess(decision="assess", decided_on=case.day(decided)))
    await case.go_to(requested)
    return await case.do("request_advice", RequestAdvice(items=[
        AdviceRequest(source=s, requested_on=case.day(requested)) for s in ALL_ADVICE]))


def db_events(db_url: str, ref: str) -> list[t.CaseEvent]:
    with Session(engine_for(db_url)) as s:
        return list(s.exec(select(t.CaseEvent).where(t.CaseEvent.case_reference == ref)
                           .order_by(t.CaseEvent.seq)))


def db_row(db_url: str, model, ref: str, **where):
    with Session(engine_for(db_url)) as s:
        q = select(model).where(model.case_reference == ref)
        for k, v in where.items():
            q = q.where(getattr(model, k) == v)
        return s.exec(q).first()


def status(view: CaseView, key: str) -> Status:
    return next(d for d in view.deadlines if d.key == key).status


async def test_on_time_case_runs_request_to_final_plan(ts_env, db_url, executor):
    async with running_worker(ts_env, db_url, executor) as settings:
        case = await start_case(ts_env, settings, db_url)
        view = await assess_and_request_advice(case)
        assert {a.due for a in view.case.advice} == {case.day(21 + 42)}
        await case.go_to(50)
        for s in ALL_ADVICE:
            await case.do("record_advice", RecordAdvice(key=s.value, received_on=case.day(50)))
        await case.go_to(65)
        await case.do("decide_plan", DecidePlan(decision="issue", decided_on=case.day(65)))
        await case.go_to(90)
        view = await case.do("serve_draft", ServeDraft(served_on=case.day(90)))
        assert view.case.milestone("draft_comments_due").due == case.day(105)
        await case.go_to(95)  # before the comment period is "due soon" (day 100)
        await case.do("record_family_comments", RecordFamilyComments(received_on=case.day(95)))
        await case.go_to(120)
        await case.do("issue_final", IssueFinal(issued_on=case.day(120)))
        final = CaseSnapshot.model_validate((await final_result(ts_env, case)).model_dump())

    assert final.stage is Stage.FINAL_ISSUED
    view = final.view(case.day(120))
    assert status(view, "final_plan_due") is Status.DONE_ON_TIME
    assert status(view, "decision_due") is Status.DONE_ON_TIME
    assert status(view, "no_plan_notice_due") is Status.NOT_APPLICABLE
    assert all(status(view, s.value) is Status.DONE_ON_TIME for s in ALL_ADVICE)

    events = db_events(db_url, final.reference)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))  # none lost, none twice
    kinds = [e.kind for e in events]
    assert kinds[0] == "request_received" and kinds[-2:] == ["final.issued",
                                                           "plan.reviews_started"]
    assert not [k for k in kinds if k.startswith("deadline.")]  # nothing was ever late
    row = db_row(db_url, t.Milestone, final.reference, key="final_plan_due")
    assert (row.due, row.done_on) == (case.day(140), case.day(120))
    with Session(engine_for(db_url)) as s:
        case_row = s.get(t.Case, final.reference)
        assert (case_row.stage, case_row.is_open, case_row.version) == (
            "final_issued", False, len(events))


async def test_late_advice_is_marked_due_soon_then_overdue_by_the_timers(ts_env, db_url, executor):
    async with running_worker(ts_env, db_url, executor) as settings:
        case = await start_case(ts_env, settings, db_url)
        await assess_and_request_advice(case)
        due = case.day(21 + 42)
        await case.go_to(40)
        for s in ALL_ADVICE:
            if s.value != "health":
                await case.do("record_advice", RecordAdvice(key=s.value,
                                                            received_on=case.day(40)))
        await case.go_to(21 + 42 + 4)  # nobody looks while time passes
        ref = (await case.view()).case.reference
        late = [e for e in db_events(db_url, ref) if e.kind.startswith("deadline.")]
        advice_alerts = [(e.kind, e.on) for e in late if e.data.get("advice") == "health"]
        assert advice_alerts == [("deadline.due_soon", due - timedelta(days=5)),
                                 ("deadline.overdue", due + timedelta(days=1))]
        view = await case.view()
        assert view.overdue == ["health"]
        health = next(d for d in view.deadlines if d.key == "health")
        assert (health.status, health.days_overdue) == (Status.OVERDUE, 4)
        assert db_row(db_url, t.AdviceItem, ref, key="health").alerts_fired == [
            "due_soon", "overdue"]

        view = await case.do("record_advice", RecordAdvice(key="health",
                                                           received_on=case.day(67)))
        assert status(view, "health") is Status.DONE_LATE
        assert view.overdue == []
        before = len(db_events(db_url, ref))
        await case.go_to(80)  # the ladder stopped: nothing more about health
        after = [e for e in db_events(db_url, ref)[before:] if e.data.get("advice") == "health"]
        assert after == []
        await case.do("close_case", CloseCase(reason="request_withdrawn", closed_on=case.day(80)))
        assert (await case.handle.result()).stage is Stage.CLOSED


async def test_refusal_ends_the_case_with_a_notice_that_carries_appeal_rights(ts_env, sqlite_url,
                                                                               executor):
    async with running_worker(ts_env, sqlite_url, executor) as settings:
        case = await start_case(ts_env, settings, sqlite_url)
        await case.go_to(30)
        await case.do("decide_to_assess", DecideToAssess(decision="refuse",
                                                          decided_on=case.day(30),
                                                          reason="Needs met from school support"))
        result = await case.handle.result()
    assert result.stage is Stage.REFUSED and result.closed_on == case.day(30)
    letter = db_row(sqlite_url, t.Letter, result.reference, kind="refusal_to_assess")
    assert letter.dated == case.day(30) and letter.citation == "Reg 5(3)"
    for must in ("Amelia Testchild", "First-tier Tribunal", "two months", "mediation",
                 "SENDIASS", "Needs met from school support", result.reference):
        assert must in letter.body
    assert status(result.view(case.day(30)), "final_plan_due") is Status.NOT_APPLICABLE


async def test_no_plan_decision_records_the_week_16_notice(ts_env, db_url, executor):
    async with running_worker(ts_env, db_url, executor) as settings:
        case = await start_case(ts_env, settings, db_url)
        await assess_and_request_advice(case, decided=10, requested=11)
        await case.go_to(45)
        for s in ALL_ADVICE:
            await case.do("record_advice", RecordAdvice(key=s.value, received_on=case.day(45)))
        await case.go_to(100)
        await case.do("decide_plan", DecidePlan(decision="no_plan", decided_on=case.day(100)))
        result = await case.handle.result()
    assert result.stage is Stage.NO_PLAN
    view = result.view(case.day(100))
    assert status(view, "no_plan_notice_due") is Status.DONE_ON_TIME
    assert result.milestone("no_plan_notice_due").due == case.day(112)
    letter = db_row(db_url, t.Letter, result.reference, kind="no_plan_notice")
    assert "regulation 10" in letter.body and "First-tier Tribunal" in letter.body


async def test_exception_excuses_a_late_final_plan_without_moving_it(ts_env, sqlite_url, executor):
    async with running_worker(ts_env, sqlite_url, executor) as settings:
        case = await start_case(ts_env, settings, sqlite_url)
        await assess_and_request_advice(case)
        await case.go_to(30)
        view = await case.do("record_exception", RecordException(
            kind=ExceptionKind.ABSENT_FROM_AREA, reason="Family abroad for six weeks",
            starts_on=case.day(28), ends_on=case.day(70)))
        x = view.case.exceptions[0]
        assert (x.id, x.kind.citation) == ("x1", "Reg 10(4)(d)")
        await case.go_to(50)
        for s in ALL_ADVICE:
            await case.do("record_advice", RecordAdvice(key=s.value, received_on=case.day(50)))
        await case.do("decide_plan", DecidePlan(decision="issue", decided_on=case.day(50)))
        await case.go_to(130)
        await case.do("serve_draft", ServeDraft(served_on=case.day(130)))
        await case.go_to(150)
        view = await case.view()
        final = next(d for d in view.deadlines if d.key == "final_plan_due")
        assert final.due == case.day(140)  # excused, not moved
        assert (final.status, final.excused_by) == (Status.OVERDUE, ["x1"])
        ref = view.case.reference
        # An excused deadline raises no alarms.
        assert not [e for e in db_events(sqlite_url, ref)
                    if e.data.get("deadline") == "final_plan_due"]
        view = await case.do("withdraw_exception", WithdrawException(
            exception_id="x1", withdrawn_on=case.day(150), reason="Recorded on the wrong case"))
        final = next(d for d in view.deadlines if d.key == "final_plan_due")
        assert final.excused_by == []
        await case.go_to(151)  # withdrawn: the overdue final plan is announced at once
        assert [e.kind for e in db_events(sqlite_url, ref)
                if e.data.get("deadline") == "final_plan_due"] == ["deadline.overdue"]
        await case.do("issue_final", IssueFinal(issued_on=case.day(151)))
        result = await final_result(ts_env, case)
    assert status(result.view(case.day(151)), "final_plan_due") is Status.DONE_LATE


async def final_result(env, case: Case):
    """The result of a case that issued its final plan, and a look at the plan's annual review
    workflow it started (then ended, so that its year-long timers stay out of other tests).
    Time stands still meanwhile: waiting for a result would otherwise let the test server
    skip ahead to the review's first timer, a year on."""
    with env.auto_time_skipping_disabled():
        result = await case.handle.result()
        review = env.client.get_workflow_handle(f"review-{result.reference}")
        first = await review.query("snapshot")
        await review.terminate("test over")
    issued = result.milestone("final_plan_due").done_on
    assert (first["cycle"], first["plan_issued_on"], first["stage"]) == (
        1, issued.isoformat(), "awaiting_meeting")
    assert {m["key"]: m["due"] for m in first["milestones"]}["review_due"] == \
        issued.replace(year=issued.year + 1).isoformat()
    return result


async def rejected(case: Case, update: str, arg) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await case.do(update, arg)
    return f"{info.value.cause.type}: {info.value.cause.message}"


async def test_out_of_order_and_impossible_actions_are_rejected_and_change_nothing(
        ts_env, sqlite_url, executor):
    async with running_worker(ts_env, sqlite_url, executor) as settings:
        case = await start_case(ts_env, settings, sqlite_url)
        await case.go_to(5)
        before = (await case.view()).case

        msg = await rejected(case, "record_advice", RecordAdvice(key="health",
                                                                  received_on=case.day(5)))
        assert msg.startswith("OutOfOrder") and "“Awaiting decision”" in msg
        msg = await rejected(case, "issue_final", IssueFinal(issued_on=case.day(5)))
        assert "“Record the final plan issued (Reg 13(2))” cannot be done" in msg
        assert "Steps you can take now: Record the decision whether to assess (Reg 5)" in msg
        msg = await rejected(case, "decide_to_assess", DecideToAssess(
            decision="assess", decided_on=case.day(-3)))
        assert msg.startswith("InvalidDate") and "before the request was received" in msg
        msg = await rejected(case, "decide_to_assess", DecideToAssess(
            decision="assess", decided_on=case.day(9)))
        assert msg.startswith("InvalidDate") and "in the future" in msg
        assert (await case.view()).case == before  # nothing changed
        assert [e.kind for e in db_events(sqlite_url, before.reference)] == ["request_received"]

        decided = await case.do("decide_to_assess", DecideToAssess(decision="assess",
                                                                   decided_on=case.day(5)))
        # The same decision again (a double-click, a retry): the same answer, nothing added.
        again = await case.do("decide_to_assess", DecideToAssess(decision="assess",
                                                                 decided_on=case.day(5)))
        assert again == decided
        msg = await rejected(case, "decide_to_assess", DecideToAssess(
            decision="refuse", decided_on=case.day(5)))
        assert msg.startswith("Duplicate: The decision whether to assess was already recorded "
                              f"on {long_date(case.day(5))} (to assess)")
        await case.do("request_advice", RequestAdvice(items=[
            AdviceRequest(source="health", requested_on=case.day(5)),
            AdviceRequest(source="education", requested_on=case.day(5), reuse_existing=True)]))
        msg = await rejected(case, "record_advice", RecordAdvice(key="social_care",
                                                                  received_on=case.day(5)))
        assert msg.startswith("NotFound") and "medical advice; educational advice" in msg
        msg = await rejected(case, "request_advice", RequestAdvice(items=[
            AdviceRequest(source="health", requested_on=case.day(4))]))
        assert msg.startswith("Duplicate: Medical advice was already requested on")
        kinds = [e.kind for e in db_events(sqlite_url, before.reference)]
        assert kinds.count("decision.assess") == 1 and kinds.count("advice.requested") == 1
        msg = await rejected(case, "record_advice", RecordAdvice(key="education",
                                                                  received_on=case.day(5)))
        assert msg.startswith("Duplicate")  # reused advice counts as received
        msg = await rejected(case, "decide_plan", DecidePlan(decision="issue",
                                                              decided_on=case.day(5)))
        assert "the family's views; psychological advice; social care advice" in msg
        await case.do("request_advice", RequestAdvice(items=[
            AdviceRequest(source=s, requested_on=case.day(5))
            for s in ("family", "educational_psychologist", "social_care")]))
        msg = await rejected(case, "decide_plan", DecidePlan(decision="issue",
                                                              decided_on=case.day(5)))
        assert "has not been received yet" in msg and "Go ahead although advice" in msg
        await case.do("decide_plan", DecidePlan(decision="issue", decided_on=case.day(5),
                                                proceed_with_outstanding_advice=True))
        msg = await rejected(case, "issue_final", IssueFinal(issued_on=case.day(5)))
        assert "“Drafting”" in msg and "Record the draft plan served" in msg  # before a draft
        await case.do("serve_draft", ServeDraft(served_on=case.day(5)))
        await case.go_to(10)
        msg = await rejected(case, "issue_final", IssueFinal(issued_on=case.day(10)))
        assert f"until {long_date(case.day(20))}" in msg and "Reg 13(1)" in msg
        msg = await rejected(case, "record_exception", RecordException(
            kind=ExceptionKind.ADVICE_MISSED_APPOINTMENT, reason="Missed clinic",
            starts_on=case.day(6)))
        assert "choose the advice it concerns" in msg
        msg = await rejected(case, "record_exception", RecordException(
            kind=ExceptionKind.PERSONAL_CIRCUMSTANCES, reason="Bereavement",
            starts_on=case.day(6), advice_key="health"))
        assert "whole case" in msg
        msg = await rejected(case, "withdraw_exception", WithdrawException(
            exception_id="x9", withdrawn_on=case.day(10), reason="typo"))
        assert msg.startswith("NotFound")
        # late advice can still be recorded after the plan decision
        view = await case.do("record_advice", RecordAdvice(key="health", received_on=case.day(10)))
        assert status(view, "health") is Status.DONE_ON_TIME
        await case.do("close_case", CloseCase(reason="moved_out_of_area", closed_on=case.day(10)))
        await case.handle.result()
