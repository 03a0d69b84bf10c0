"""The steps of a case as a person meets them: what each is called, which a case can take now,
why one cannot be taken, and whether a step asked for is one already taken.

One definition for everyone: the case page lists ``available_actions`` and links each to its
form, the form opens only for those, and the workflows' validators (``workflows.assessment``,
``workflows.review``) refuse with ``not_now`` in the same words. ``repeat_of`` recognises a step
already in the case exactly as asked (a double-click on Save, the back button and Save again,
an API client retrying the same body): the workflow answers it with the case as it is, without
a second event; the same step with other dates or values is refused, saying what was recorded.

Pure (pydantic models, ``statutory`` and ``domain.words``): workflows import it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from domain.case import (
    Action,
    CaseSnapshot,
    ReviewAction,
    ReviewSnapshot,
    ReviewStage,
    Stage,
    available_actions,
    slug,
    stage_actions,
    unmet_need,
)
from domain.words import long_date
from statutory.clock import deadline

Case = CaseSnapshot | ReviewSnapshot

# Each step's name, as its form's title and the case page's link say it. (An assessment's and a
# review's advice steps have the same names, and the same titles.)
STEP_TITLES: dict[str, str] = {
    Action.DECIDE_TO_ASSESS.value: "Record the decision whether to assess (Reg 5)",
    Action.REQUEST_ADVICE.value: "Request advice (Regs 6, 8)",
    Action.RECORD_ADVICE.value: "Record advice received",
    Action.REPORT_ADVICE_DELAY.value: "Record that advice will be late, and why",
    Action.DECIDE_PLAN.value: "Record the decision whether to issue a plan (Reg 10)",
    Action.SERVE_DRAFT.value: "Record the draft plan served (Reg 13(1))",
    Action.CONSULT_SETTING.value: "Record a school or college consulted (CFA 2014 s.39)",
    Action.RECORD_SETTING_RESPONSE.value: "Record a school or college's response",
    Action.RECORD_FAMILY_COMMENTS.value: "Record the family's comments on the draft",
    Action.ISSUE_FINAL.value: "Record the final plan issued (Reg 13(2))",
    Action.RECORD_EXCEPTION.value: "Record an exception to a time limit (Reg 8(2), Reg 10(4))",
    Action.WITHDRAW_EXCEPTION.value: "Withdraw an exception",
    Action.CLOSE_CASE.value: "Close the case",
    ReviewAction.SET_MEETING.value: "Set the review meeting, or move it (Reg 20)",
    ReviewAction.RECORD_INVITATIONS.value:
        "Record the invitations sent, 2 weeks ahead (Reg 20(1)-(3))",
    ReviewAction.RECORD_CIRCULATED.value:
        "Record the advice and reports circulated, 2 weeks ahead (Reg 20(4))",
    ReviewAction.HOLD_MEETING.value:
        "Record the review meeting held, and how each outcome is going",
    ReviewAction.RECORD_REPORT.value:
        "Record the review report sent, within 2 weeks of the meeting (Reg 20(7)-(8))",
    ReviewAction.CONSULT_ON_CEASING.value:
        "Record the family and the setting consulted on ceasing (Reg 31)",
    ReviewAction.DECIDE.value: "Record the LA's decision: maintain, amend or cease (Reg 20(10))",
    ReviewAction.RECORD_AMENDMENT_COMMENTS.value:
        "Record the family's comments on the proposed amendments (Reg 22(2))",
    ReviewAction.ISSUE_AMENDED_PLAN.value: "Record the final amended plan issued (Reg 22(3))",
    ReviewAction.DECIDE_NOT_TO_AMEND.value:
        "Record the decision not to amend after all (Reg 22(4))",
    ReviewAction.CEASE_PLAN.value: "Record the plan ceased (Reg 30)",
    ReviewAction.CLOSE_PLAN.value: "Close the plan",
    ReviewAction.UPDATE_PLACEMENT.value: "Record where the child is: year group and setting",
    ReviewAction.SET_PHASE_TRANSFER.value: "Bring a phase-transfer review forward (Reg 18(1))",
    ReviewAction.SET_POST16_MOVE.value: "Record a post-16 move at another time (Reg 18(2))",
}

# Each stage as the case page's "Stage" row says it.
STAGE_LABELS: dict[str, str] = {
    **{s.value: s.value.replace("_", " ").capitalize() for s in Stage},
    **{s.value: s.value.replace("_", " ").capitalize() for s in ReviewStage},
}

# What to do about a step recorded with other dates or values than the ones sent again.
RECORDED = ("A step once recorded is not changed here: if what was recorded is right, there "
            "is nothing more to do; if it is wrong, tell your SEND manager.")


def title(action: str) -> str:
    return STEP_TITLES.get(action, action.replace("_", " ").capitalize())


def _quoted(action: str) -> str:
    return f"“{title(action)}”"


def _is_review(case: Case) -> bool:
    return isinstance(case, ReviewSnapshot)


def closed_message(case: Case) -> str:
    if _is_review(case):
        return (f"This review is over ({STAGE_LABELS[case.stage.value].lower()}), so no more "
                "steps can be taken on it. Take the step on the plan's current review: the "
                "plan's page lists it.")
    return (f"This case is closed ({STAGE_LABELS[case.stage.value].lower()}), so no more steps "
            "can be taken on it. If the child needs another assessment, start a new one.")


def not_now(case: Case, action: str) -> str | None:
    """Why ``action`` cannot be taken on ``case`` now, in a sentence that names the step as its
    form does and says what can be done instead; None: it can."""
    if not case.stage.is_open:
        return closed_message(case)
    what = "review" if _is_review(case) else "case"
    if action not in stage_actions(case):
        now = available_actions(case)
        return (f"{_quoted(action)} cannot be done while the {what} is at the stage "
                f"“{STAGE_LABELS[case.stage.value]}”."
                + (f" Steps you can take now: {'; '.join(title(a) for a in now)}." if now
                   else ""))
    unmet = unmet_need(case, action)
    return f"{_quoted(action)} cannot be done now. {unmet}" if unmet else None


# --- a step already taken -------------------------------------------------------------------------


@dataclass(frozen=True)
class Repeat:
    """A step asked for that the case has already taken: ``same`` when exactly as asked (so it
    is done, and nothing more happens), else ``message`` says what was recorded."""

    same: bool
    message: str


def _taken(same: bool, recorded: str) -> Repeat:
    return Repeat(same, f"{recorded}. {RECORDED}")


def _milestone_step(key: str, what: str, field: str) -> Callable[[Case, Any], Repeat | None]:
    def check(case: Case, cmd: Any) -> Repeat | None:
        m = case.milestone(key)
        if m is None or m.done_on is None:
            return None
        return _taken(m.done_on == getattr(cmd, field), f"{what} on {long_date(m.done_on)}")
    return check


def _field_step(attr: str, what: str) -> Callable[[Case, Any], Repeat | None]:
    def check(case: Case, cmd: Any) -> Repeat | None:
        done = getattr(case, attr)
        if done is None:
            return None
        return _taken(done == cmd.on, f"{what} on {long_date(done)}")
    return check


def _advice_what(item) -> str:
    what = item.label or item.source.label
    return what[:1].upper() + what[1:]


def _decide_to_assess(case: Case, cmd: Any) -> Repeat | None:
    m = case.milestone("decision_due")
    if m is None or m.done_on is None:
        return None
    refused = any(x.kind == "refusal_to_assess" for x in case.letters)
    decision = "refuse" if refused else "assess"
    words = "not to assess" if refused else "to assess"
    return _taken((cmd.decision, cmd.decided_on) == (decision, m.done_on),
                  f"The decision whether to assess was already recorded on "
                  f"{long_date(m.done_on)} ({words})")


def _request_advice(case: Case, cmd: Any) -> Repeat | None:
    found = [(req, case.advice_item(req.key)) for req in cmd.items]
    asked = [(req, item) for req, item in found if item is not None]
    if not asked:
        return None
    same = len(asked) == len(found) and all(
        item.requested_on == req.requested_on and item.reused == req.reuse_existing
        for req, item in asked)
    req, item = next(((r, i) for r, i in asked if (i.requested_on, i.reused) !=
                      (r.requested_on, r.reuse_existing)), asked[0])
    done = "recorded as existing advice reused" if item.reused else "requested"
    return Repeat(same, f"{_advice_what(item)} was already {done} on "
                  f"{long_date(item.requested_on)}. To ask a second advisor for the same kind "
                  "of advice, name the advisor in the request's label (for example, speech and "
                  "language therapy).")


def _record_advice(case: Case, cmd: Any) -> Repeat | None:
    item = case.advice_item(cmd.key)
    if item is None or item.received_on is None:
        return None
    same = item.received_on == cmd.received_on and item.submission_id == cmd.submission_id \
        and not item.reused
    done = "recorded as existing advice reused" if item.reused else \
        "recorded as received"
    return _taken(same, f"{_advice_what(item)} was already {done} on "
                  f"{long_date(item.received_on)}")


def _decide_plan(case: Case, cmd: Any) -> Repeat | None:
    if case.plan_decided_on is not None:
        decision, on = "issue", case.plan_decided_on
    elif any(x.kind == "no_plan_notice" for x in case.letters):
        notice = case.milestone("no_plan_notice_due")
        assert notice is not None and notice.done_on is not None
        decision, on = "no_plan", notice.done_on
    else:
        return None
    words = "to issue a plan" if decision == "issue" else "not to issue a plan"
    return _taken((cmd.decision, cmd.decided_on) == (decision, on),
                  f"The decision whether to issue a plan was already recorded on "
                  f"{long_date(on)} ({words})")


def _consult_setting(case: Case, cmd: Any) -> Repeat | None:
    key = f"setting:{slug(cmd.setting)}"
    s = next((s for s in case.settings_consulted if s.key == key), None)
    if s is None:
        return None
    return _taken(s.started_on == cmd.sent_on,
                  f"{cmd.setting} was already recorded as consulted on {long_date(s.started_on)}")


def _setting_response(case: Case, cmd: Any) -> Repeat | None:
    s = next((s for s in case.settings_consulted if s.key == cmd.key), None)
    if s is None or s.done_on is None:
        return None
    name = s.key.split(":", 1)[1].replace("-", " ").title()
    return _taken(s.done_on == cmd.received_on,
                  f"The response from {name} was already recorded on {long_date(s.done_on)}")


def _record_exception(case: Case, cmd: Any) -> Repeat | None:
    same = any((e.kind, e.reason, e.starts_on, e.ends_on, e.evidence, e.advice_key) ==
               (cmd.kind, cmd.reason, cmd.starts_on, cmd.ends_on, cmd.evidence, cmd.advice_key)
               and e.withdrawn_on is None for e in case.exceptions)
    return Repeat(True, "") if same else None


def _withdraw_exception(case: Case, cmd: Any) -> Repeat | None:
    exc = next((e for e in case.exceptions if e.id == cmd.exception_id), None)
    if exc is None or exc.withdrawn_on is None:
        return None
    return _taken((exc.withdrawn_on, exc.withdrawal_reason) == (cmd.withdrawn_on, cmd.reason),
                  f"The exception {exc.kind.citation} starting {long_date(exc.starts_on)} was "
                  f"already withdrawn on {long_date(exc.withdrawn_on)}")


def _close(closed_stage: str) -> Callable[[Case, Any], Repeat | None]:
    def check(case: Case, cmd: Any) -> Repeat | None:
        if case.stage.value != closed_stage or case.closed_on is None:
            return None
        what = "plan" if _is_review(case) else "case"
        return _taken((case.closed_on, case.close_reason) == (cmd.closed_on, cmd.reason),
                      f"The {what} was already closed on {long_date(case.closed_on)}")
    return check


def _set_meeting(case: Case, cmd: Any) -> Repeat | None:
    if case.meeting_on != cmd.meeting_on or case.meeting_held_on is not None:
        return None  # a meeting set for another day is moved
    return Repeat(True, "")


def _hold_meeting(case: Case, cmd: Any) -> Repeat | None:
    if case.meeting_held_on is None:
        return None
    return _taken((case.meeting_held_on, case.outcomes) == (cmd.held_on, list(cmd.outcomes)),
                  f"The review meeting was already recorded as held on "
                  f"{long_date(case.meeting_held_on)}")


DECISIONS = {"maintain": "to maintain the plan", "amend": "to amend the plan",
             "cease": "to cease the plan"}


def _decide_review(case: Case, cmd: Any) -> Repeat | None:
    if case.decision is None or case.decided_on is None:
        return None
    return _taken((case.decision, case.decided_on) == (cmd.decision, cmd.decided_on),
                  f"The LA's decision was already recorded on {long_date(case.decided_on)} "
                  f"({DECISIONS[case.decision]})")


def _update_placement(case: Case, cmd: Any) -> Repeat | None:
    return Repeat(True, "") if case.placement == cmd.placement else None


def _phase_transfer(case: Case, cmd: Any) -> Repeat | None:
    m = case.milestone("phase_transfer_due")
    if m is not None and m.rule_id.endswith(cmd.transfer.kind) and \
            m.due.year == cmd.transfer.transfer_year:
        return Repeat(True, "")
    return None


def _post16_move(case: Case, cmd: Any) -> Repeat | None:
    m = case.milestone("post16_move_due")
    if m is not None and m.due == deadline("review.post16_move_due", cmd.moves_on).due:
        return Repeat(True, "")
    return None


_ASSESSMENT: dict[str, Callable[[Case, Any], Repeat | None]] = {
    Action.DECIDE_TO_ASSESS.value: _decide_to_assess,
    Action.REQUEST_ADVICE.value: _request_advice,
    Action.RECORD_ADVICE.value: _record_advice,
    Action.DECIDE_PLAN.value: _decide_plan,
    Action.SERVE_DRAFT.value: _milestone_step(
        "draft_plan_target", "The draft plan was already recorded as served", "served_on"),
    Action.CONSULT_SETTING.value: _consult_setting,
    Action.RECORD_SETTING_RESPONSE.value: _setting_response,
    Action.RECORD_FAMILY_COMMENTS.value: _milestone_step(
        "draft_comments_due", "The family's comments on the draft were already recorded as "
        "received", "received_on"),
    Action.ISSUE_FINAL.value: _milestone_step(
        "final_plan_due", "The final plan was already recorded as issued", "issued_on"),
    Action.RECORD_EXCEPTION.value: _record_exception,
    Action.WITHDRAW_EXCEPTION.value: _withdraw_exception,
    Action.CLOSE_CASE.value: _close(Stage.CLOSED.value),
}
_REVIEW: dict[str, Callable[[Case, Any], Repeat | None]] = {
    ReviewAction.SET_MEETING.value: _set_meeting,
    ReviewAction.REQUEST_ADVICE.value: _request_advice,
    ReviewAction.RECORD_ADVICE.value: _record_advice,
    ReviewAction.RECORD_INVITATIONS.value: _milestone_step(
        "invitations_due", "The invitations to the meeting were already recorded as sent",
        "on"),
    ReviewAction.RECORD_CIRCULATED.value: _milestone_step(
        "advice_circulated_due", "The advice and reports were already recorded as "
        "circulated", "on"),
    ReviewAction.HOLD_MEETING.value: _hold_meeting,
    ReviewAction.RECORD_REPORT.value: _milestone_step(
        "report_due", "The review report was already recorded as sent", "on"),
    ReviewAction.CONSULT_ON_CEASING.value: _field_step(
        "cease_consulted_on", "The consultation on ceasing the plan was already recorded"),
    ReviewAction.DECIDE.value: _decide_review,
    ReviewAction.RECORD_AMENDMENT_COMMENTS.value: _milestone_step(
        "amendment_comments_due", "The family's comments on the proposed amendments were "
        "already recorded as received", "on"),
    ReviewAction.ISSUE_AMENDED_PLAN.value: _field_step(
        "amended_plan_issued_on", "The final amended plan was already recorded as issued"),
    ReviewAction.DECIDE_NOT_TO_AMEND.value: _field_step(
        "not_amended_on", "The decision not to amend the plan was already recorded"),
    ReviewAction.CEASE_PLAN.value: _field_step(
        "ceased_on", "The plan was already recorded as ceased"),
    ReviewAction.CLOSE_PLAN.value: _close(ReviewStage.CLOSED.value),
    ReviewAction.UPDATE_PLACEMENT.value: _update_placement,
    ReviewAction.SET_PHASE_TRANSFER.value: _phase_transfer,
    ReviewAction.SET_POST16_MOVE.value: _post16_move,
}


def repeat_of(case: Case, action: str, cmd: Any) -> Repeat | None:
    """Whether ``cmd`` (the input of ``action``) asks for a step ``case`` has already taken:
    None when it has not (the step is judged as usual); ``Repeat(same=True)`` when it was taken
    exactly as asked (nothing more is to happen); else ``Repeat(same=False, message)``, saying
    what was recorded. Steps that add something new each time (a delay reported) are never
    repeats by their content."""
    check = (_REVIEW if _is_review(case) else _ASSESSMENT).get(action)
    return check(case, cmd) if check is not None else None
