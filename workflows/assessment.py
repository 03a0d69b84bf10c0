"""The EHC needs assessment workflow: one per request, from the request to the final plan.

The workflow holds the case's state and is its only writer: every change becomes an ``Event``
and is saved through the idempotent ``record_case`` activity. Caseworker actions are updates
whose validators reject out-of-order or impossible actions before anything reaches history.
The clock, the chasing of advice and the saving are shared with the review workflow
(``workflows.casework``).
"""

from __future__ import annotations

from datetime import date, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.case import (
        REQUIRED_ADVICE,
        Action,
        AdviceItem,
        CaseException,
        CaseSnapshot,
        CloseCase,
        ConsultSetting,
        DecidePlan,
        DecideToAssess,
        IssueFinal,
        Letter,
        Milestone,
        PlanIssued,
        RecordAdvice,
        RecordException,
        RecordFamilyComments,
        RecordSettingResponse,
        ReportAdviceDelay,
        RequestAdvice,
        ServeDraft,
        Stage,
        StartAssessment,
        WithdrawException,
        allowed_actions,
        slug,
    )
    from domain.steps import closed_message, not_now
    from domain.words import long_date
    from statutory import RULES, assessment_timescales, excusing_exceptions
    from statutory.rules import NOTICES
    from statutory.clock import deadline

from workflows.casework import (  # noqa: F401 - ALERT_LADDER re-exported
    ALERT_LADDER,
    RECORD_RETRY,
    CaseWorkflow,
    Rejected,
)
START_PLAN_REVIEW = "start_plan_review"


@workflow.defn(name="AssessmentWorkflow")
class AssessmentWorkflow(CaseWorkflow):
    @workflow.init
    def __init__(self, start: StartAssessment) -> None:
        dates = assessment_timescales(
            start.request_date, draft_target_weeks=start.policy.draft_target_weeks
        )
        self.case = CaseSnapshot(
            reference=start.reference,
            child_id=start.child_id,
            stage=Stage.AWAITING_DECISION,
            request_date=start.request_date,
            request_source=start.request_source,
            policy=start.policy,
            setting_name=start.setting_name,
            caseworker_id=start.caseworker_id,
            milestones=[
                Milestone(key=key, rule_id=dates[key].rule.id, started_on=start.request_date,
                          due=dates[key].due)
                for key in ("decision_due", "no_plan_notice_due", "draft_plan_target",
                            "final_plan_due")
            ],
        )
        self._init_machinery()

    # --- the run: the one clock -------------------------------------------------------------

    @workflow.run
    async def run(self, start: StartAssessment) -> CaseSnapshot:
        self._stamp_entered(set())  # the milestones of the request, entered today
        self._event("request_received", start.request_date, start.actor,
                    "Request for an EHC needs assessment received",
                    source=start.request_source.value)
        await self._save()
        await self._run_clock(lambda: self.case.stage.is_open)
        if self.case.stage is Stage.FINAL_ISSUED and workflow.patched("review-after-final-plan"):
            # The plan's annual reviews begin (workflow review-<reference>).
            await workflow.execute_activity(
                START_PLAN_REVIEW,
                PlanIssued(plan_reference=self.case.reference, child_id=self.case.child_id,
                           issued_on=self._done("final_plan_due"),
                           placement=self.case.placement),
                start_to_close_timeout=timedelta(seconds=30), retry_policy=RECORD_RETRY)
            self._event("plan.reviews_started", self._today(), None,
                        "Annual reviews of the plan started: the first is due within a year "
                        "(CFA 2014 s.44(1))")
        await self._wind_down()
        return self.case

    def _deadline_items(self) -> list[tuple[Milestone | AdviceItem, str | None]]:
        """Open deadlines that still alert: not done, applicable, not excused."""
        out: list[tuple[Milestone | AdviceItem, str | None]] = []
        for m in (*self.case.milestones, *self.case.settings_consulted):
            if m.done_on is None and m.applicable and not self._excused(m.rule_id, m.started_on,
                                                                         m.due, None):
                out.append((m, None))
        for a in self.case.advice:
            if a.is_open and not self._excused("assessment.advice_due", a.requested_on, a.due,
                                               a.key):
                out.append((a, a.key))
        return out

    def _excused(self, rule_id: str, started: date, due: date, advice_key: str | None) -> bool:
        return bool(excusing_exceptions(RULES[rule_id], started, due, self.case.exceptions,
                                        advice_key=advice_key))

    # --- queries --------------------------------------------------------------------------

    @workflow.query
    def snapshot(self) -> CaseSnapshot:
        """The case as it stands. Work out deadline statuses with ``.view(today)``: a query
        sees the clock of the workflow's last task, not today's date."""
        return self.case

    # --- validation helpers ------------------------------------------------------------------

    def _require(self, action: Action) -> None:
        """The case is open and at a stage that takes ``action`` (domain.steps: the case page
        offers the same steps, in the same words). What else a step needs, its validator
        checks, saying exactly what is missing."""
        if not self.case.stage.is_open:
            raise Rejected(closed_message(self.case), "CaseClosed")
        if action not in allowed_actions(self.case.stage):
            raise Rejected(not_now(self.case, action.value) or "", "OutOfOrder")

    def _check_date(self, value: date, what: str, after: tuple[date, str] | None = None) -> None:
        today = self._today()
        if value > today:
            raise Rejected(f"{what}, {long_date(value)}, is in the future: today is "
                           f"{long_date(today)}. Enter the date it happened", "InvalidDate")
        if value < self.case.request_date:
            raise Rejected(f"{what}, {long_date(value)}, is before the request was received "
                           f"on {long_date(self.case.request_date)}. Enter the date it "
                           "happened", "InvalidDate")
        if after is not None and value < after[0]:
            raise Rejected(f"{what}, {long_date(value)}, is before {after[1]} on "
                           f"{long_date(after[0])}. Enter the date it happened", "InvalidDate")

    def _done(self, key: str) -> date:
        m = self.case.milestone(key)
        assert m is not None and m.done_on is not None
        return m.done_on

    def _complete(self, key: str, on: date) -> None:
        m = self.case.milestone(key)
        assert m is not None
        m.done_on = on

    def _close(self, stage: Stage, on: date, reason: str | None = None) -> None:
        self.case.stage = stage
        self.case.closed_on = on
        self.case.close_reason = reason

    # --- the caseworker actions --------------------------------------------------------------

    @workflow.update(name=Action.DECIDE_TO_ASSESS.value)
    async def decide_to_assess(self, cmd: DecideToAssess) -> CaseSnapshot:
        if self._already(Action.DECIDE_TO_ASSESS.value, cmd):
            return self.case

        def change() -> None:
            self._complete("decision_due", cmd.decided_on)
            if cmd.decision == "refuse":
                notice = NOTICES["refusal_to_assess"]
                self.case.letters.append(Letter(kind=notice.kind, dated=cmd.decided_on,
                                                citation=notice.citation))
                for key in ("no_plan_notice_due", "draft_plan_target", "final_plan_due"):
                    self.case.milestone(key).applicable = False  # type: ignore[union-attr]
                self._close(Stage.REFUSED, cmd.decided_on, cmd.reason)
                self._event("decision.refused", cmd.decided_on, cmd.actor,
                            "Decided not to assess; notice of the decision and appeal rights "
                            f"recorded ({notice.citation})")
            else:
                self.case.stage = Stage.ASSESSING
                self._event("decision.assess", cmd.decided_on, cmd.actor,
                            "Decided to carry out an EHC needs assessment")

        return await self._apply(change)

    @decide_to_assess.validator
    def _v_decide_to_assess(self, cmd: DecideToAssess) -> None:
        if self._repeat(Action.DECIDE_TO_ASSESS.value, cmd):
            return
        self._require(Action.DECIDE_TO_ASSESS)
        self._check_date(cmd.decided_on, "The decision date")

    @workflow.update(name=Action.REQUEST_ADVICE.value)
    async def request_advice(self, cmd: RequestAdvice) -> CaseSnapshot:
        if self._already(Action.REQUEST_ADVICE.value, cmd):
            return self.case
        return await self._apply(lambda: self._add_advice(
            cmd, "assessment.advice_due",
            lambda req: deadline("assessment.advice_due", req.requested_on).due))

    @request_advice.validator
    def _v_request_advice(self, cmd: RequestAdvice) -> None:
        if self._repeat(Action.REQUEST_ADVICE.value, cmd):
            return
        self._require(Action.REQUEST_ADVICE)
        for req in cmd.items:
            self._check_date(req.requested_on,
                             f"The date {req.label or req.source.label} was requested",
                             after=(self._done("decision_due"), "the decision to assess"))

    @workflow.update(name=Action.RECORD_ADVICE.value)
    async def record_advice(self, cmd: RecordAdvice) -> CaseSnapshot:
        if self._already(Action.RECORD_ADVICE.value, cmd):
            return self.case
        return await self._apply(lambda: self._receive_advice(cmd))

    @record_advice.validator
    def _v_record_advice(self, cmd: RecordAdvice) -> None:
        if self._repeat(Action.RECORD_ADVICE.value, cmd):
            return
        self._require(Action.RECORD_ADVICE)
        item = self._open_advice(cmd.key)
        self._check_date(cmd.received_on, "The date received",
                         after=(item.requested_on, "it was requested"))

    @workflow.update(name=Action.REPORT_ADVICE_DELAY.value)
    async def report_advice_delay(self, cmd: ReportAdviceDelay) -> CaseSnapshot:
        if self._already(Action.REPORT_ADVICE_DELAY.value, cmd):
            return self.case
        return await self._apply(lambda: self._report_delay(cmd))

    @report_advice_delay.validator
    def _v_report_advice_delay(self, cmd: ReportAdviceDelay) -> None:
        if self._repeat(Action.REPORT_ADVICE_DELAY.value, cmd):
            return
        self._require(Action.REPORT_ADVICE_DELAY)
        self._check_delay(cmd)

    @workflow.update(name=Action.DECIDE_PLAN.value)
    async def decide_plan(self, cmd: DecidePlan) -> CaseSnapshot:
        if self._already(Action.DECIDE_PLAN.value, cmd):
            return self.case

        def change() -> None:
            notice = self.case.milestone("no_plan_notice_due")
            assert notice is not None
            if cmd.decision == "no_plan":
                notice.done_on = cmd.decided_on
                for key in ("draft_plan_target", "final_plan_due"):
                    self.case.milestone(key).applicable = False  # type: ignore[union-attr]
                letter = NOTICES["no_plan_notice"]
                self.case.letters.append(Letter(kind=letter.kind, dated=cmd.decided_on,
                                                citation=letter.citation))
                self._close(Stage.NO_PLAN, cmd.decided_on, cmd.reason)
                self._event("plan.not_issued", cmd.decided_on, cmd.actor,
                            "Decided not to issue a plan; notice with appeal rights recorded "
                            "(Reg 10)")
            else:
                notice.applicable = False
                self.case.plan_decided_on = cmd.decided_on
                self.case.stage = Stage.DRAFTING
                self._event("plan.to_issue", cmd.decided_on, cmd.actor,
                            "Decided to issue an EHC plan")

        return await self._apply(change)

    @decide_plan.validator
    def _v_decide_plan(self, cmd: DecidePlan) -> None:
        if self._repeat(Action.DECIDE_PLAN.value, cmd):
            return
        self._require(Action.DECIDE_PLAN)
        self._check_date(cmd.decided_on, "The decision date",
                         after=(self._done("decision_due"), "the decision to assess"))
        asked = {a.source for a in self.case.advice}
        missing = [s.label for s in REQUIRED_ADVICE if s not in asked]
        if missing:
            raise Rejected("Advice has not been asked for yet: " + "; ".join(missing) +
                           " (Reg 6(1)(a)-(e)). Request it, or record existing advice as reused "
                           "(Reg 6(4)), before deciding")
        outstanding = [a.label or a.source.label for a in self.case.advice if a.is_open]
        if outstanding and not cmd.proceed_with_outstanding_advice:
            raise Rejected("This advice has not been received yet: " + "; ".join(outstanding) +
                           ". Record it as received, or tick “Go ahead although advice is still "
                           "outstanding” to decide without it")
        latest = max(a.requested_on for a in self.case.advice)
        if cmd.decided_on < latest:
            raise Rejected(f"The decision date, {long_date(cmd.decided_on)}, is before advice "
                           f"was requested on {long_date(latest)}. Enter the date the decision "
                           "was made", "InvalidDate")

    @workflow.update(name=Action.SERVE_DRAFT.value)
    async def serve_draft(self, cmd: ServeDraft) -> CaseSnapshot:
        if self._already(Action.SERVE_DRAFT.value, cmd):
            return self.case

        def change() -> None:
            self._complete("draft_plan_target", cmd.served_on)
            comments = deadline("assessment.draft_comments_due", cmd.served_on)
            self.case.milestones.append(Milestone(
                key="draft_comments_due", rule_id=comments.rule.id, started_on=cmd.served_on,
                due=comments.due))
            self.case.stage = Stage.DRAFT_SERVED
            self._event("draft.served", cmd.served_on, cmd.actor,
                        f"Draft plan served; the family may comment until "
                        f"{comments.due.isoformat()} ({comments.rule.citation})")

        return await self._apply(change)

    @serve_draft.validator
    def _v_serve_draft(self, cmd: ServeDraft) -> None:
        if self._repeat(Action.SERVE_DRAFT.value, cmd):
            return
        self._require(Action.SERVE_DRAFT)
        self._check_date(cmd.served_on, "The date the draft was served",
                         after=(self._plan_decided_on(), "the decision to issue a plan"))

    def _plan_decided_on(self) -> date:
        return self.case.plan_decided_on or self.case.request_date

    @workflow.update(name=Action.CONSULT_SETTING.value)
    async def consult_setting(self, cmd: ConsultSetting) -> CaseSnapshot:
        if self._already(Action.CONSULT_SETTING.value, cmd):
            return self.case

        def change() -> None:
            d = deadline("assessment.setting_response_due", cmd.sent_on)
            self.case.settings_consulted.append(Milestone(
                key=f"setting:{slug(cmd.setting)}", rule_id=d.rule.id, started_on=cmd.sent_on,
                due=d.due))
            self._event("setting.consulted", cmd.sent_on, cmd.actor,
                        f"Consulted {cmd.setting}; response due {d.due.isoformat()}",
                        setting=cmd.setting)

        return await self._apply(change)

    @consult_setting.validator
    def _v_consult_setting(self, cmd: ConsultSetting) -> None:
        if self._repeat(Action.CONSULT_SETTING.value, cmd):
            return
        self._require(Action.CONSULT_SETTING)
        self._check_date(cmd.sent_on, "The consultation date",
                         after=(self._plan_decided_on(), "the decision to issue a plan"))

    @workflow.update(name=Action.RECORD_SETTING_RESPONSE.value)
    async def record_setting_response(self, cmd: RecordSettingResponse) -> CaseSnapshot:
        if self._already(Action.RECORD_SETTING_RESPONSE.value, cmd):
            return self.case

        def change() -> None:
            s = next(s for s in self.case.settings_consulted if s.key == cmd.key)
            s.done_on = cmd.received_on
            self._event("setting.responded", cmd.received_on, cmd.actor,
                        "Consultation response received", setting=cmd.key)

        return await self._apply(change)

    @record_setting_response.validator
    def _v_record_setting_response(self, cmd: RecordSettingResponse) -> None:
        if self._repeat(Action.RECORD_SETTING_RESPONSE.value, cmd):
            return
        self._require(Action.RECORD_SETTING_RESPONSE)
        s = next((s for s in self.case.settings_consulted if s.key == cmd.key), None)
        if s is None:
            raise Rejected("That school or college has not been consulted on this case: choose "
                           "one that was, or record the consultation first", "NotFound")
        self._check_date(cmd.received_on, "The date received",
                         after=(s.started_on, "the consultation"))

    @workflow.update(name=Action.RECORD_FAMILY_COMMENTS.value)
    async def record_family_comments(self, cmd: RecordFamilyComments) -> CaseSnapshot:
        if self._already(Action.RECORD_FAMILY_COMMENTS.value, cmd):
            return self.case

        def change() -> None:
            self._complete("draft_comments_due", cmd.received_on)
            self._event("draft.comments", cmd.received_on, cmd.actor,
                        "The family's comments on the draft received")

        return await self._apply(change)

    @record_family_comments.validator
    def _v_record_family_comments(self, cmd: RecordFamilyComments) -> None:
        if self._repeat(Action.RECORD_FAMILY_COMMENTS.value, cmd):
            return
        self._require(Action.RECORD_FAMILY_COMMENTS)
        m = self.case.milestone("draft_comments_due")
        assert m is not None
        self._check_date(cmd.received_on, "The date received",
                         after=(m.started_on, "the draft was served"))

    @workflow.update(name=Action.ISSUE_FINAL.value)
    async def issue_final(self, cmd: IssueFinal) -> CaseSnapshot:
        if self._already(Action.ISSUE_FINAL.value, cmd):
            return self.case

        def change() -> None:
            self._complete("final_plan_due", cmd.issued_on)
            # The setting the plan names and the year group: where its reviews start from.
            # (State only, no command: histories without them replay unchanged.)
            self.case.placement = cmd.placement()
            self._close(Stage.FINAL_ISSUED, cmd.issued_on)
            self._event("final.issued", cmd.issued_on, cmd.actor,
                        f"Final EHC plan issued ({RULES['assessment.final_plan_due'].citation}, "
                        "Reg 14)")

        return await self._apply(change)

    @issue_final.validator
    def _v_issue_final(self, cmd: IssueFinal) -> None:
        if self._repeat(Action.ISSUE_FINAL.value, cmd):
            return
        self._require(Action.ISSUE_FINAL)
        comments = self.case.milestone("draft_comments_due")
        assert comments is not None
        self._check_date(cmd.issued_on, "The issue date",
                         after=(comments.started_on, "the draft was served"))
        if comments.done_on is None and cmd.issued_on < comments.due:
            raise Rejected(f"The family has until {long_date(comments.due)} to comment on the "
                           f"draft ({comments.citation}): record their comments, or issue the "
                           "final plan on or after that date")

    @workflow.update(name=Action.RECORD_EXCEPTION.value)
    async def record_exception(self, cmd: RecordException) -> CaseSnapshot:
        if self._already(Action.RECORD_EXCEPTION.value, cmd):
            return self.case

        def change() -> None:
            exc = CaseException(
                id=f"x{len(self.case.exceptions) + 1}", kind=cmd.kind, reason=cmd.reason,
                starts_on=cmd.starts_on, ends_on=cmd.ends_on, evidence=cmd.evidence,
                advice_key=cmd.advice_key, recorded_on=self._today(),
            )
            self.case.exceptions.append(exc)
            self._event("exception.recorded", self._today(), cmd.actor,
                        f"Exception recorded: {cmd.kind.description} ({cmd.kind.citation})",
                        exception=exc.id, exception_kind=cmd.kind.value)

        return await self._apply(change)

    @record_exception.validator
    def _v_record_exception(self, cmd: RecordException) -> None:
        if self._repeat(Action.RECORD_EXCEPTION.value, cmd):
            return
        self._require(Action.RECORD_EXCEPTION)
        today = self._today()
        if cmd.starts_on > today:
            raise Rejected(f"The exception's start, {long_date(cmd.starts_on)}, is in the "
                           f"future: today is {long_date(today)}. Record it once it has "
                           "started", "InvalidDate")
        if cmd.ends_on is not None and cmd.ends_on < cmd.starts_on:
            raise Rejected(f"The exception ends on {long_date(cmd.ends_on)}, before it starts "
                           f"on {long_date(cmd.starts_on)}: check the dates", "InvalidDate")
        if cmd.kind.applies_to_advice:
            if cmd.advice_key is None:
                raise Rejected(f"A {cmd.kind.citation} exception excuses one piece of advice: "
                               "choose the advice it concerns")
            if self.case.advice_item(cmd.advice_key) is None:
                raise Rejected("The advice chosen has not been requested on this case: choose "
                               "advice that was", "NotFound")
        elif cmd.advice_key is not None:
            raise Rejected(f"A {cmd.kind.citation} exception applies to the whole case: leave "
                           "the advice it concerns empty (only Reg 8(2) exceptions excuse one "
                           "piece of advice)")

    @workflow.update(name=Action.WITHDRAW_EXCEPTION.value)
    async def withdraw_exception(self, cmd: WithdrawException) -> CaseSnapshot:
        if self._already(Action.WITHDRAW_EXCEPTION.value, cmd):
            return self.case

        def change() -> None:
            exc = next(e for e in self.case.exceptions if e.id == cmd.exception_id)
            exc.withdrawn_on = cmd.withdrawn_on
            exc.withdrawal_reason = cmd.reason
            self._event("exception.withdrawn", cmd.withdrawn_on, cmd.actor,
                        f"Exception withdrawn: {exc.kind.citation}", exception=exc.id)

        return await self._apply(change)

    @withdraw_exception.validator
    def _v_withdraw_exception(self, cmd: WithdrawException) -> None:
        if self._repeat(Action.WITHDRAW_EXCEPTION.value, cmd):
            return
        self._require(Action.WITHDRAW_EXCEPTION)
        exc = next((e for e in self.case.exceptions if e.id == cmd.exception_id), None)
        if exc is None:
            raise Rejected("That exception is not recorded on this case: choose one of the "
                           "case's exceptions", "NotFound")
        self._check_date(cmd.withdrawn_on, "The withdrawal date",
                         after=(exc.recorded_on, "the exception was recorded"))

    @workflow.update(name=Action.CLOSE_CASE.value)
    async def close_case(self, cmd: CloseCase) -> CaseSnapshot:
        if self._already(Action.CLOSE_CASE.value, cmd):
            return self.case

        def change() -> None:
            self._close(Stage.CLOSED, cmd.closed_on, cmd.reason)
            self._event("case.closed", cmd.closed_on, cmd.actor,
                        f"Case closed: {cmd.reason.replace('_', ' ')}")

        return await self._apply(change)

    @close_case.validator
    def _v_close_case(self, cmd: CloseCase) -> None:
        if self._repeat(Action.CLOSE_CASE.value, cmd):
            return
        self._require(Action.CLOSE_CASE)
        self._check_date(cmd.closed_on, "The closing date")
