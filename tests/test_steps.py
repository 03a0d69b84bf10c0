"""Which steps a case can take now, and a step sent again: pure, from the snapshot
(domain.case.available_actions, domain.steps). The case page, the forms and the workflows'
validators all read these."""

from __future__ import annotations

import re
from datetime import date

import pytest

from domain.case import (
    Action,
    AdviceItem,
    AdviceRequest,
    AssessmentPolicy,
    CaseException,
    CaseSnapshot,
    DecideReview,
    DecideToAssess,
    IssueFinal,
    Letter,
    Milestone,
    RecordAdvice,
    RecordDate,
    RecordException,
    RequestAdvice,
    ReviewAction,
    ReviewPolicy,
    ReviewSnapshot,
    ReviewStage,
    SetMeeting,
    Stage,
    WithdrawException,
    available_actions,
)
from domain.steps import STEP_TITLES, not_now, repeat_of
from statutory import ExceptionKind

D = date(2026, 10, 1)


def day(n: int) -> date:
    return date.fromordinal(D.toordinal() + n)


def case(stage: Stage = Stage.AWAITING_DECISION, **extra) -> CaseSnapshot:
    milestones = [Milestone(key=k, rule_id=r, started_on=D, due=day(d)) for k, r, d in (
        ("decision_due", "assessment.decision_due", 42),
        ("no_plan_notice_due", "assessment.no_plan_notice_due", 112),
        ("draft_plan_target", "assessment.draft_plan_target", 112),
        ("final_plan_due", "assessment.final_plan_due", 140))]
    return CaseSnapshot(reference="EHC-TEST", child_id="c", stage=stage, request_date=D,
                        request_source="parent", policy=AssessmentPolicy(),
                        milestones=extra.pop("milestones", milestones), **extra)


def advice(key: str = "health", received: date | None = None, **extra) -> AdviceItem:
    return AdviceItem(key=key, source=key.split(":")[0], requested_on=day(10), due=day(52),
                      received_on=received, **extra)


def review(stage: ReviewStage, **extra) -> ReviewSnapshot:
    return ReviewSnapshot(reference="EHC-TEST.R1", plan_reference="EHC-TEST", cycle=1,
                          child_id="c", stage=stage, anchor_on=D, plan_issued_on=D,
                          policy=ReviewPolicy(), **extra)


WORDS = re.compile(r"\b[a-z]+_[a-z_]+\b|\d{4}-\d{2}-\d{2}")


def english(message: str) -> str:
    """No snake_case key and no ISO date in a sentence a person reads."""
    assert not WORDS.search(message), message
    return message


# --- what can be taken now ------------------------------------------------------------------------


def test_a_new_request_can_only_be_decided_on():
    assert available_actions(case()) == ["decide_to_assess", "record_exception", "close_case"]


def test_advice_is_received_or_late_only_once_asked_for_and_until_it_has_all_come():
    assessing = case(Stage.ASSESSING)
    assert "record_advice" not in available_actions(assessing)
    assert "report_advice_delay" not in available_actions(assessing)
    assert "No advice has been requested yet" in english(not_now(assessing, "record_advice"))
    asked = case(Stage.ASSESSING, advice=[advice()])
    assert {"record_advice", "report_advice_delay"} <= set(available_actions(asked))
    assert not_now(asked, "report_advice_delay") is None
    received = case(Stage.ASSESSING, advice=[advice(received=day(20))])
    assert "record_advice" not in available_actions(received)
    assert "has been received" in english(not_now(received, "report_advice_delay"))


def test_an_exception_is_withdrawn_only_when_there_is_one():
    assert "withdraw_exception" not in available_actions(case(Stage.ASSESSING))
    exc = CaseException(id="x1", kind=ExceptionKind.PERSONAL_CIRCUMSTANCES, reason="closed",
                        starts_on=day(5), recorded_on=day(5))
    assert "withdraw_exception" in available_actions(case(Stage.ASSESSING, exceptions=[exc]))
    gone = exc.model_copy(update={"withdrawn_on": day(6)})
    assert "withdraw_exception" not in available_actions(case(Stage.ASSESSING,
                                                              exceptions=[gone]))
    assert "no exception" in english(not_now(case(Stage.ASSESSING), "withdraw_exception"))


def test_the_plan_decision_is_offered_once_every_required_advice_is_asked_for():
    some = case(Stage.ASSESSING, advice=[advice("health")])
    assert "decide_plan" not in available_actions(some)
    assert "the family's views" in english(not_now(some, "decide_plan"))
    every = case(Stage.ASSESSING, advice=[advice(k) for k in (
        "family", "education", "health", "educational_psychologist", "social_care")])
    assert "decide_plan" in available_actions(every)


@pytest.mark.parametrize("stage", list(Stage))
def test_every_step_offered_at_every_stage_has_a_title_and_closed_cases_offer_none(stage):
    now = available_actions(case(stage))
    assert all(a in STEP_TITLES for a in now)
    if not stage.is_open:
        assert now == [] and "closed" in english(not_now(case(stage), "close_case"))


@pytest.mark.parametrize("stage", list(ReviewStage))
def test_every_review_step_offered_has_a_title(stage):
    now = available_actions(review(stage))
    assert all(a in STEP_TITLES for a in now)
    assert now == [] if not stage.is_open else now


def test_an_out_of_order_step_is_refused_in_the_words_of_the_page():
    message = english(not_now(case(), "issue_final"))
    assert "“Record the final plan issued (Reg 13(2))”" in message
    assert "“Awaiting decision”" in message
    assert "Record the decision whether to assess (Reg 5)" in message


def test_review_paperwork_recorded_once_is_not_offered_again():
    set_ = review(ReviewStage.MEETING_SET, meeting_on=day(60), milestones=[
        Milestone(key="invitations_due", rule_id="review.invitations_due", started_on=day(60),
                  due=day(46), done_on=day(40))])
    assert "record_invitations_sent" not in available_actions(set_)
    assert "10 November 2026" in not_now(set_, "record_invitations_sent")


# --- a step sent again ----------------------------------------------------------------------------


def test_the_decision_to_assess_sent_again_is_recognised_and_another_is_refused():
    decided = case(Stage.ASSESSING)
    decided.milestone("decision_due").done_on = day(5)
    same = repeat_of(decided, "decide_to_assess", DecideToAssess(decision="assess",
                                                                 decided_on=day(5)))
    assert same is not None and same.same
    other = repeat_of(decided, "decide_to_assess", DecideToAssess(decision="assess",
                                                                  decided_on=day(6)))
    assert other is not None and not other.same
    assert english(other.message).startswith(
        "The decision whether to assess was already recorded on 6 October 2026 (to assess)")
    refusal = repeat_of(decided, "decide_to_assess", DecideToAssess(decision="refuse",
                                                                    decided_on=day(5)))
    assert not refusal.same
    assert repeat_of(case(), "decide_to_assess", DecideToAssess(
        decision="assess", decided_on=day(5))) is None  # not taken yet


def test_a_refusal_to_assess_is_the_decision_recorded():
    refused = case(Stage.REFUSED, closed_on=day(5), letters=[Letter(
        kind="refusal_to_assess", dated=day(5), citation="Reg 5(3)")])
    refused.milestone("decision_due").done_on = day(5)
    assert repeat_of(refused, "decide_to_assess", DecideToAssess(decision="refuse",
                                                                 decided_on=day(5))).same
    assert "(not to assess)" in repeat_of(refused, "decide_to_assess", DecideToAssess(
        decision="assess", decided_on=day(5))).message


def test_advice_asked_for_or_received_again():
    asked = case(Stage.ASSESSING, advice=[advice("health")])
    again = RequestAdvice(items=[AdviceRequest(source="health", requested_on=day(10))])
    assert repeat_of(asked, "request_advice", again).same
    later = RequestAdvice(items=[AdviceRequest(source="health", requested_on=day(11))])
    assert "Medical advice was already requested on 11 October 2026" in english(
        repeat_of(asked, "request_advice", later).message)
    more = RequestAdvice(items=[AdviceRequest(source="health", requested_on=day(10)),
                                AdviceRequest(source="family", requested_on=day(10))])
    assert not repeat_of(asked, "request_advice", more).same  # half of it is new
    received = case(Stage.ASSESSING, advice=[advice("health", received=day(20))])
    assert repeat_of(received, "record_advice", RecordAdvice(key="health",
                                                             received_on=day(20))).same
    other = repeat_of(received, "record_advice", RecordAdvice(key="health",
                                                              received_on=day(21)))
    assert "recorded as received on 21 October 2026" in english(other.message)
    # advice sent through the secure page is that submission, not another one
    portal = case(Stage.ASSESSING, advice=[advice("health", received=day(20),
                                                  submission_id="s1")])
    assert not repeat_of(portal, "record_advice", RecordAdvice(
        key="health", received_on=day(20), submission_id="s2")).same


def test_the_final_plan_and_an_identical_exception_and_withdrawal():
    issued = case(Stage.FINAL_ISSUED, closed_on=day(100))
    issued.milestone("final_plan_due").done_on = day(100)
    assert repeat_of(issued, "issue_final", IssueFinal(issued_on=day(100))).same
    assert "already recorded as issued" in repeat_of(
        issued, "issue_final", IssueFinal(issued_on=day(99))).message
    exc = CaseException(id="x1", kind=ExceptionKind.PERSONAL_CIRCUMSTANCES, reason="closed for the holiday",
                        starts_on=day(5), recorded_on=day(5))
    with_exc = case(Stage.ASSESSING, exceptions=[exc])
    cmd = RecordException(kind=ExceptionKind.PERSONAL_CIRCUMSTANCES, reason="closed for the holiday",
                          starts_on=day(5))
    assert repeat_of(with_exc, "record_exception", cmd).same
    assert repeat_of(with_exc, "record_exception", cmd.model_copy(
        update={"starts_on": day(6)})) is None  # another exception
    gone = case(Stage.ASSESSING, exceptions=[exc.model_copy(update={
        "withdrawn_on": day(8), "withdrawal_reason": "recorded in error"})])
    assert repeat_of(gone, "withdraw_exception", WithdrawException(
        exception_id="x1", withdrawn_on=day(8), reason="recorded in error")).same


def test_review_steps_sent_again():
    decided = review(ReviewStage.MAINTAINED, decision="maintain", decided_on=day(30),
                     meeting_held_on=day(10), closed_on=day(30))
    assert repeat_of(decided, "decide_review", DecideReview(decision="maintain",
                                                            decided_on=day(30))).same
    assert "(to maintain the plan)" in english(repeat_of(decided, "decide_review", DecideReview(
        decision="amend", decided_on=day(30))).message)
    set_ = review(ReviewStage.MEETING_SET, meeting_on=day(60))
    assert repeat_of(set_, "set_meeting", SetMeeting(meeting_on=day(60))).same
    assert repeat_of(set_, "set_meeting", SetMeeting(meeting_on=day(61))) is None  # moved
    assert repeat_of(set_, "record_invitations_sent", RecordDate(on=day(40))) is None
    assert repeat_of(set_, ReviewAction.HOLD_MEETING.value, object()) is None


def test_a_delay_report_is_never_a_repeat_by_its_content():
    asked = case(Stage.ASSESSING, advice=[advice()])
    assert repeat_of(asked, Action.REPORT_ADVICE_DELAY.value, object()) is None


def test_every_step_a_case_page_can_list_has_a_form():
    """'Report advice delay' was listed with no form, so it was not a link and its page said it
    was not allowed: every step now has its form (requesting advice has its own)."""
    from api.action_forms import STEPS

    for action in [*Action, *ReviewAction]:
        assert action.value in STEPS or action.value == "request_advice", action
        assert action.value in STEP_TITLES, action
