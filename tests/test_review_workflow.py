"""Annual reviews in Temporal's time-skipping server, with the real activities writing a real
database: a cycle on time, a late meeting, a late report, each decision, amendments on time and
late, ceasing, consecutive cycles through continue-as-new, and rejected actions."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date, timedelta

import pytest
from sqlmodel import Session, select
from temporalio.client import WorkflowFailureError, WorkflowHandle, WorkflowUpdateFailedError

from store import tables as t
from store.db import engine_for
from domain.case import (
    AdviceRequest,
    AdviceSource,
    ClosePlan,
    DecideReview,
    HoldMeeting,
    OutcomeProgress,
    PhaseTransferDue,
    RecordAdvice,
    RecordDate,
    ReviewPolicy,
    ReviewSnapshot,
    SetMeeting,
    SetPost16Move,
    StartReview,
)
from statutory import Status, london_date
from tests.test_assessment_workflow import Case, add_child, running_worker
from workflows.review import ReviewWorkflow


class Plan(Case):
    """Drives one plan's reviews, each step on a day counted from the plan's issue (day 0)."""

    def __init__(self, env, handle: WorkflowHandle, day0: date, ref: str) -> None:
        super().__init__(env, handle, day0)
        self.ref = ref

    async def do(self, update: str, arg) -> ReviewSnapshot:
        return await self.handle.execute_update(update, arg, result_type=ReviewSnapshot)

    async def snapshot(self) -> ReviewSnapshot:
        return await self.handle.query(ReviewWorkflow.snapshot)

    async def status(self, key: str) -> Status:
        snap = await self.snapshot()
        view = snap.view(london_date(await self.env.get_current_time()))
        return next(d for d in view.deadlines if d.key == key).status


async def start_plan(env, settings, db_url, **start) -> Plan:
    now = await env.get_current_time()
    day0 = london_date(now)
    ref = f"P-{uuid.uuid4().hex[:8].upper()}"
    start.setdefault("plan_issued_on", day0)
    handle = await env.client.start_workflow(
        ReviewWorkflow.run,
        StartReview(plan_reference=ref, child_id=add_child(db_url), **start),
        id=f"review-{ref}", task_queue=settings.task_queue,
    )
    return Plan(env, handle, day0, ref)


async def hold_on_time(plan: Plan, meeting: int, **hold) -> ReviewSnapshot:
    """Set the meeting 4 weeks ahead, send invitations and circulate advice in time, hold it."""
    await plan.go_to(meeting - 28)
    await plan.do("set_meeting", SetMeeting(meeting_on=plan.day(meeting)))
    await plan.go_to(meeting - 20)
    await plan.do("record_invitations_sent", RecordDate(on=plan.day(meeting - 20)))
    await plan.do("record_advice_circulated", RecordDate(on=plan.day(meeting - 20)))
    await plan.go_to(meeting)
    return await plan.do("hold_meeting", HoldMeeting(held_on=plan.day(meeting), **hold))


async def rejected(plan: Plan, update: str, arg, fragment: str) -> None:
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await plan.do(update, arg)
    assert fragment in str(err.value.cause), str(err.value.cause)


async def recorded_plan(db_url: str, ref: str) -> t.Plan:
    for _ in range(200):
        found = rows(db_url, t.Plan, reference=ref)
        if found:
            return found[0]
        await asyncio.sleep(0.05)
    raise AssertionError(f"plan {ref} not recorded")


def rows(db_url, model, **where):
    with Session(engine_for(db_url)) as s:
        q = select(model)
        for k, v in where.items():
            q = q.where(getattr(model, k) == v)
        return list(s.exec(q))


async def test_a_cycle_on_time_maintained_then_the_next_cycle(ts_env, db_url, executor):
    async with running_worker(ts_env, db_url, executor) as settings:
        plan = await start_plan(ts_env, settings, db_url)
        snap = await plan.snapshot()
        assert snap.reference == f"{plan.ref}.R1" and snap.milestone("review_due").due == \
            plan.day(0).replace(year=plan.day(0).year + 1)
        held = await hold_on_time(plan, 330, outcomes=[
            OutcomeProgress(outcome="Reads at age-expected level", progress="on_track"),
            OutcomeProgress(outcome="Uses a communication aid", progress="achieved")])
        assert held.milestone("report_due").due == plan.day(344)
        assert held.milestone("decision_due").due == plan.day(358)
        await plan.go_to(340)
        await plan.do("record_review_report", RecordDate(on=plan.day(340)))
        await plan.go_to(350)
        await plan.do("decide_review", DecideReview(decision="maintain", decided_on=plan.day(350)))

        # The next cycle: a new run of the same workflow, counted from the meeting.
        await plan.go_to(351)
        nxt = await plan.snapshot()
        assert (nxt.cycle, nxt.reference, nxt.anchor_on) == (2, f"{plan.ref}.R2", plan.day(330))
        assert nxt.milestone("review_due").due == plan.day(330).replace(
            year=plan.day(330).year + 1)
        assert nxt.version > held.version  # one event stream across cycles
        desc = await plan.handle.describe()
        assert desc.run_id != plan.handle.first_execution_run_id  # continued as new

    first = rows(db_url, t.Review, case_reference=f"{plan.ref}.R1")[0]
    assert (first.meeting_held_on, first.decision, first.decided_on) == \
        (plan.day(330), "maintain", plan.day(350))
    assert [o["progress"] for o in first.outcomes] == ["on_track", "achieved"]
    case1 = rows(db_url, t.Case, reference=f"{plan.ref}.R1")[0]
    assert (case1.kind, case1.stage, case1.is_open) == ("review", "maintained", False)
    miles = {m.key: m for m in rows(db_url, t.Milestone, case_reference=f"{plan.ref}.R1")}
    assert all(miles[k].done_on is not None and miles[k].done_on <= miles[k].due
               for k in ("review_due", "invitations_due", "advice_circulated_due",
                         "report_due", "decision_due"))
    p = rows(db_url, t.Plan, reference=plan.ref)[0]
    assert (p.status, p.current_cycle, p.review_due) == \
        ("active", 2, plan.day(330).replace(year=plan.day(330).year + 1))
    events = rows(db_url, t.CaseEvent, case_reference=f"{plan.ref}.R2")
    assert [e.kind for e in events] == ["review.cycle_started"]


async def test_a_late_meeting_is_overdue_and_a_late_report_too(ts_env, sqlite_url, executor):
    async with running_worker(ts_env, sqlite_url, executor) as settings:
        plan = await start_plan(ts_env, settings, sqlite_url)
        anniversary = plan.day(0).replace(year=plan.day(0).year + 1)
        late = (anniversary - plan.day(0)).days + 20
        await plan.go_to(late - 30)
        await plan.do("set_meeting", SetMeeting(meeting_on=plan.day(late)))
        await plan.go_to(late - 5)
        assert await plan.status("review_due") is Status.OVERDUE
        assert await plan.status("invitations_due") is Status.OVERDUE  # never recorded
        await plan.go_to(late)
        await plan.do("hold_meeting", HoldMeeting(held_on=plan.day(late)))
        await plan.go_to(late + 20)
        assert await plan.status("report_due") is Status.OVERDUE
        snap = await plan.do("record_review_report", RecordDate(on=plan.day(late + 20)))
        assert snap.view(plan.day(late + 20)).deadlines  # the view works for reviews
        assert await plan.status("review_due") is Status.DONE_LATE
        assert await plan.status("report_due") is Status.DONE_LATE
        await plan.do("close_plan", ClosePlan(reason="moved_out_of_area",
                                              closed_on=plan.day(late + 20)))
        result = await plan.handle.result()
        assert result.stage.value == "closed"
    kinds = [e.kind for e in rows(sqlite_url, t.CaseEvent, case_reference=f"{plan.ref}.R1")]
    assert "deadline.overdue" in kinds and kinds[-1] == "review.plan_closed"
    assert rows(sqlite_url, t.Plan, reference=plan.ref)[0].status == "closed"


@pytest.mark.parametrize("late", [False, True], ids=["on_time", "late"])
async def test_amendments_then_the_final_amended_plan(late, ts_env, sqlite_url, executor):
    async with running_worker(ts_env, sqlite_url, executor) as settings:
        plan = await start_plan(ts_env, settings, sqlite_url)
        await hold_on_time(plan, 300)
        await plan.go_to(320)
        snap = await plan.do("decide_review", DecideReview(decision="amend",
                                                          decided_on=plan.day(320)))
        assert snap.milestone("amendment_comments_due").due == plan.day(335)
        assert snap.milestone("final_amended_plan_due").due == plan.day(320 + 56)
        # Not before the family's 15 days, unless their comments are in.
        await rejected(plan, "issue_amended_plan", RecordDate(on=plan.day(320)), "until")
        await plan.go_to(330)
        await plan.do("record_amendment_comments", RecordDate(on=plan.day(330)))
        issue = 320 + (60 if late else 40)
        await plan.go_to(issue)
        await plan.do("issue_amended_plan", RecordDate(on=plan.day(issue)))
        await plan.go_to(issue + 1)
        assert (await plan.snapshot()).cycle == 2
    review = rows(sqlite_url, t.Review, case_reference=f"{plan.ref}.R1")[0]
    assert (review.decision, review.amendments_sent_on, review.amended_plan_issued_on) == \
        ("amend", plan.day(320), plan.day(issue))
    final = rows(sqlite_url, t.Milestone, case_reference=f"{plan.ref}.R1",
                 key="final_amended_plan_due")[0]
    assert (final.done_on > final.due) is late


async def test_ceasing_needs_consultation_then_ends_the_plan(ts_env, sqlite_url, executor):
    async with running_worker(ts_env, sqlite_url, executor) as settings:
        plan = await start_plan(ts_env, settings, sqlite_url)
        await hold_on_time(plan, 300)
        await plan.go_to(310)
        await rejected(plan, "decide_review", DecideReview(decision="cease",
                                                           decided_on=plan.day(310)), "Consult")
        await plan.do("consult_on_ceasing", RecordDate(on=plan.day(305)))
        await plan.do("decide_review", DecideReview(decision="cease", decided_on=plan.day(310)))
        await plan.go_to(350)
        await plan.do("cease_plan", RecordDate(on=plan.day(350)))
        result = await plan.handle.result()  # the workflow ends with the plan
        assert result.stage.value == "ceased" and result.cycle == 1
    p = rows(sqlite_url, t.Plan, reference=plan.ref)[0]
    assert (p.status, p.ended_on) == ("ceased", plan.day(350))


async def test_two_cycles_keep_the_plan_and_lose_nothing(ts_env, sqlite_url, executor):
    async with running_worker(ts_env, sqlite_url, executor) as settings:
        plan = await start_plan(ts_env, settings, sqlite_url,
                                policy=ReviewPolicy(due_soon_days=10))
        for cycle, meeting in ((1, 340), (2, 340 + 350)):
            await hold_on_time(plan, meeting)
            await plan.go_to(meeting + 10)
            await plan.do("record_review_report", RecordDate(on=plan.day(meeting + 10)))
            await plan.do("decide_review", DecideReview(decision="maintain",
                                                        decided_on=plan.day(meeting + 10)))
            await plan.go_to(meeting + 11)
            snap = await plan.snapshot()
            assert snap.cycle == cycle + 1 and snap.policy.due_soon_days == 10
            assert snap.anchor_on == plan.day(meeting)
    seqs = []
    for cycle in (1, 2, 3):
        seqs += [e.seq for e in rows(sqlite_url, t.CaseEvent,
                                     case_reference=f"{plan.ref}.R{cycle}")]
    assert sorted(seqs) == list(range(1, len(seqs) + 1))  # no gaps, no repeats across cycles
    assert rows(sqlite_url, t.Plan, reference=plan.ref)[0].current_cycle == 3


async def test_review_paperwork_is_chased_until_the_meeting(ts_env, sqlite_url, executor):
    from services.directory import load_escalation

    async with running_worker(ts_env, sqlite_url, executor) as settings:
        plan = await start_plan(ts_env, settings, sqlite_url)
        await plan.go_to(270)
        await plan.do("set_meeting", SetMeeting(meeting_on=plan.day(330)))
        ladder = load_escalation(settings).for_source("education")
        snap = await plan.do("request_advice", {"items": [AdviceRequest(
            source=AdviceSource.EDUCATION, requested_on=plan.day(270),
            ladder=ladder).model_dump(mode="json")]})
        item = snap.advice_item("education")
        assert item.due == plan.day(316) and item.rule_id == "review.advice_circulated_due"
        await plan.go_to(318)
        fired = (await plan.snapshot()).advice_item("education").alerts_fired
        assert fired == ["request", "reminder", "due_tomorrow", "overdue"]
        await plan.do("record_advice", RecordAdvice(key="education", received_on=plan.day(318)))
        await plan.go_to(330)
        snap = await plan.do("hold_meeting", HoldMeeting(held_on=plan.day(330)))
    view = snap.view(plan.day(330))
    advice = next(d for d in view.deadlines if d.key == "education")
    assert (advice.citation, advice.status) == ("Reg 20(4)", Status.DONE_LATE)


async def test_phase_transfer_and_under_five_deadlines(ts_env, sqlite_url, executor):
    async with running_worker(ts_env, sqlite_url, executor) as settings:
        now = london_date(await ts_env.get_current_time())
        year = now.year + 1
        plan = await start_plan(ts_env, settings, sqlite_url,
                                phase_transfer=PhaseTransferDue(kind="school",
                                                                transfer_year=year),
                                under_five_until=now + timedelta(days=400),
                                policy=ReviewPolicy(under_five_months=4))
        snap = await plan.snapshot()
        dues = {m.key: m.due for m in snap.milestones}
        # "before 15 February" (Reg 18(1)(b)): 14 February is the last day on time.
        assert dues["phase_transfer_due"] == date(year, 2, 14)
        assert dues["under_five_review_due"] == _add_months(now, 4)
        p = await recorded_plan(sqlite_url, plan.ref)
    assert p.review_due == min(dues.values())


async def test_a_post16_move_at_another_time_needs_its_review_5_months_before(
        ts_env, sqlite_url, executor):
    """Reg 18(2): a move from one post-16 institution to another, other than the phase
    transfer, needs the review and any amended plan at least 5 months before it."""
    async with running_worker(ts_env, sqlite_url, executor) as settings:
        plan = await start_plan(ts_env, settings, sqlite_url)
        year = plan.day(0).year + 2
        await rejected(plan, "set_post16_move", SetPost16Move(moves_on=plan.day(-1)),
                       "not after this review's year began")
        snap = await plan.do("set_post16_move", SetPost16Move(moves_on=date(year, 1, 6)))
        m = snap.milestone("post16_move_due")
        assert (m.due, m.citation) == (date(year - 1, 8, 6), "Reg 18(2)")
        # the same move again: the same answer, nothing added
        again = await plan.do("set_post16_move", SetPost16Move(moves_on=date(year, 1, 6)))
        assert again == snap
        await hold_on_time(plan, 60)
        await plan.go_to(70)
        await plan.do("decide_review", DecideReview(decision="maintain",
                                                    decided_on=plan.day(70)))
        await plan.go_to(71)
        assert (await plan.snapshot()).milestone("post16_move_due") is None  # R2 owes nothing
    row, = rows(sqlite_url, t.Milestone, case_reference=f"{plan.ref}.R1", key="post16_move_due")
    assert (row.due, row.done_on) == (date(year - 1, 8, 6), plan.day(70))
    kinds = [e.kind for e in rows(sqlite_url, t.CaseEvent, case_reference=f"{plan.ref}.R1")]
    assert "review.post16_move" in kinds


def _add_months(d: date, n: int) -> date:
    month = d.month - 1 + n
    year, month = d.year + month // 12, month % 12 + 1
    import calendar

    return date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


async def test_rejected_review_actions_change_nothing(ts_env, sqlite_url, executor):
    async with running_worker(ts_env, sqlite_url, executor) as settings:
        plan = await start_plan(ts_env, settings, sqlite_url)
        before = (await plan.snapshot()).version
        cases = [
            ("hold_meeting", HoldMeeting(held_on=plan.day(0)), "cannot be done"),
            ("decide_review", DecideReview(decision="maintain", decided_on=plan.day(0)),
             "cannot be done"),
            ("set_meeting", SetMeeting(meeting_on=plan.day(-10)), "before this review"),
        ]
        for update, arg, message in cases:
            await rejected(plan, update, arg, message)
        await plan.go_to(10)
        first = await plan.do("set_meeting", SetMeeting(meeting_on=plan.day(40)))
        # the same meeting again (a double-click, a retry): the same answer, nothing added
        assert await plan.do("set_meeting", SetMeeting(meeting_on=plan.day(40))) == first
        await rejected(plan, "hold_meeting", HoldMeeting(held_on=plan.day(40)), "future")
        assert (await plan.snapshot()).version == before + 1  # only the meeting was set


async def test_an_unknown_update_fails_the_call_not_the_plan(ts_env, sqlite_url, executor):
    async with running_worker(ts_env, sqlite_url, executor) as settings:
        plan = await start_plan(ts_env, settings, sqlite_url)
        with pytest.raises((WorkflowUpdateFailedError, WorkflowFailureError, Exception)):
            await plan.handle.execute_update("decide_plan", {"decision": "issue"})
        assert (await plan.snapshot()).stage.value == "awaiting_meeting"


async def test_a_year_6_child_gets_the_14_february_deadline_from_the_placement(
        ts_env, sqlite_url, executor):
    """The plan knows the child's year group and school: a Year 6 child at a primary school
    transfers next September, so a review that would fall due after 14 February must finish
    before 15 February, by 14 February (Reg 18(1)(b)); a Year 4 child's review is due on its anniversary only."""
    from domain.case import Placement

    async with running_worker(ts_env, sqlite_url, executor) as settings:
        now = london_date(await ts_env.get_current_time())
        # Plans issued in late March: the anniversary falls after 15 February.
        issued = date(now.year, 3, 20) if now.month >= 4 else date(now.year - 1, 3, 20)
        year6 = await start_plan(ts_env, settings, sqlite_url,
                                 plan_issued_on=issued, last_review_on=None,
                                 placement=Placement(nc_year="Y6", nc_year_as_of=now,
                                                     setting_type="primary"))
        year4 = await start_plan(ts_env, settings, sqlite_url,
                                 plan_issued_on=issued,
                                 placement=Placement(nc_year="4", nc_year_as_of=now,
                                                     setting_type="primary"))
        transfer_year = now.year + 1 if now.month >= 9 else now.year
        s6 = {m.key: m.due for m in (await year6.snapshot()).milestones}
        s4 = {m.key: m.due for m in (await year4.snapshot()).milestones}
        assert s6["phase_transfer_due"] == date(transfer_year, 2, 14)  # before 15 February
        assert "phase_transfer_due" not in s4
        # Bringing the Year 4 child's review forward by hand (the cohort does this in bulk).
        snap = await year4.do("set_phase_transfer", {"transfer": PhaseTransferDue(
            kind="school", transfer_year=transfer_year + 2).model_dump()})
        assert snap.milestone("phase_transfer_due").due == date(transfer_year + 2, 2, 14)
        plan_row = await recorded_plan(sqlite_url, year6.ref)
    assert (plan_row.nc_year, plan_row.setting_type) == ("Y6", "primary")


async def test_an_imported_plan_resumes_after_its_meeting(ts_env, sqlite_url, executor):
    async with running_worker(ts_env, sqlite_url, executor) as settings:
        now = london_date(await ts_env.get_current_time())
        waiting = await start_plan(ts_env, settings, sqlite_url, origin="import",
                                   last_review_on=now - timedelta(days=10),
                                   resume="awaiting_decision")
        snap = await waiting.snapshot()
        assert snap.stage.value == "meeting_held"
        assert snap.milestone("decision_due").due == now + timedelta(days=18)
        assert snap.milestone("review_due").done_on == now - timedelta(days=10)
        amending = await start_plan(ts_env, settings, sqlite_url, origin="import",
                                    last_review_on=now - timedelta(days=40),
                                    resume="amending",
                                    amendments_sent_on=now - timedelta(days=20))
        snap = await amending.snapshot()
        assert snap.stage.value == "amending"
        assert snap.milestone("final_amended_plan_due").due == now + timedelta(days=36)
        done = await amending.do("issue_amended_plan", RecordDate(on=now))
        assert done.stage.value == "amended"
