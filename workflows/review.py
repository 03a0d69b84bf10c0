"""The annual review workflow: one per EHC plan, for as long as the plan lasts.

Each run is one review cycle (CFA 2014 s.44; Regs 18-22, 29-31): the review is due by the
anniversary of the plan or of the last review (earlier for a child under five, and by 15
February or 31 March when the child is within a year of a phase transfer). The caseworker or
school sets the meeting (invitations and advice two weeks before it, Reg 20), holds it (the
report within two weeks, the LA's decision within four), and the LA maintains, amends (the
proposals go with the decision; 15 days for the family; the final amended plan within eight
weeks, Reg 22) or ceases the plan (consultation first; Regs 29-31). Review paperwork is
chased by the same escalation ladder as assessment advice.

A cycle that ends with the plan maintained or amended continues as new with the next cycle,
counted from the meeting: a plan can run for twenty years without its history growing. A
ceased or closed plan ends the workflow. The workflow ID is ``review-<plan reference>``; each
cycle is recorded as a case ``<plan reference>.R<cycle>``.
"""

from __future__ import annotations

from datetime import date

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.case import (
        PLAN_ENDED_STAGES,
        ClosePlan,
        PhaseTransferDue,
        SetPhaseTransfer,
        SetPost16Move,
        UpdatePlacement,
        DecideReview,
        HoldMeeting,
        Milestone,
        RecordAdvice,
        RecordDate,
        ReportAdviceDelay,
        RequestAdvice,
        ReviewAction,
        ReviewSnapshot,
        ReviewStage,
        SetMeeting,
        StartReview,
        review_actions,
    )
    from domain.review_cycle import (
        add_milestone,
        begin_cycle,
        complete,
        deadline_items,
        first_record,
        set_meeting,
        set_transfer,
    )
    from statutory.phase import parse_nc_year, parse_setting_type, transfer_window_opens
    from statutory.clock import deadline

from workflows.casework import CaseWorkflow, Rejected

RECORD_REVIEW = "record_review"


@workflow.defn(name="ReviewWorkflow")
class ReviewWorkflow(CaseWorkflow):
    RECORD_ACTIVITY = RECORD_REVIEW

    @workflow.init
    def __init__(self, start: StartReview) -> None:
        self.start = start
        self._init_machinery()
        if start.imported_on is not None:
            # Brought in by the plans import, which writes this first record itself, in bulk,
            # from the same input and day (domain.review_cycle.first_record): the workflow
            # holds the same and has nothing to save. (Histories from before imported_on
            # existed have none, so they take the path below as they did: no patch needed.)
            self.case, _ = first_record(start, start.imported_on, workflow.now())
        else:
            self.case, self._pending = begin_cycle(start, self._today(), workflow.now())

    def _transfer(self) -> tuple[PhaseTransferDue, Milestone] | None:
        """This cycle's phase transfer, read back from its milestone."""
        m = self.case.milestone("phase_transfer_due")
        if m is None:
            return None
        kind = "post16" if m.rule_id.endswith(".post16") else "school"
        return PhaseTransferDue(kind=kind, transfer_year=m.due.year), m

    def _set_transfer(self, transfer: PhaseTransferDue) -> Milestone:
        return set_transfer(self.case, transfer)

    # --- the run: one cycle, then the next -------------------------------------------------------

    @workflow.run
    async def run(self, start: StartReview) -> ReviewSnapshot:
        await self._save()  # the cycle's first events (none to save when imported)
        await self._run_clock(lambda: self.case.stage.is_open)
        await self._wind_down()
        if self.case.stage in PLAN_ENDED_STAGES:
            return self.case
        assert self.case.meeting_held_on is not None
        found = self._transfer()
        done = found[0] if found is not None and found[1].done_on is not None else None
        workflow.continue_as_new(start.model_copy(update={
            "cycle": self.case.cycle + 1, "last_review_on": self.case.meeting_held_on,
            "meeting_on": None, "version": self.case.version, "origin": "next_cycle",
            "phase_transfer": None, "actor": None, "placement": self.case.placement,
            "resume": None, "amendments_sent_on": None, "transfer_done": done,
            "imported_on": None,
        }))

    def _deadline_items(self):
        return deadline_items(self.case)

    # --- queries ----------------------------------------------------------------------------

    @workflow.query
    def snapshot(self) -> ReviewSnapshot:
        """The cycle as it stands; work out deadline statuses with ``.view(today)``."""
        return self.case

    # --- validation helpers ----------------------------------------------------------------------

    def _require(self, action: ReviewAction) -> None:
        if not self.case.stage.is_open:
            raise Rejected(f"Review {self.case.reference} is over ({self.case.stage.value}); "
                           "no further actions can be taken", "CaseClosed")
        allowed = review_actions(self.case.stage)
        if action not in allowed:
            raise Rejected(f"'{action.value}' cannot be done while the review is at stage "
                           f"'{self.case.stage.value}'. Allowed now: "
                           + ", ".join(a.value for a in allowed))

    def _check_date(self, value: date, what: str, after: tuple[date, str] | None = None,
                    future_ok: bool = False) -> None:
        today = self._today()
        if value > today and not future_ok:
            raise Rejected(f"{what} {value} is in the future (today is {today})", "InvalidDate")
        if value < self.case.anchor_on:
            raise Rejected(f"{what} {value} is before this review's year began "
                           f"({self.case.anchor_on})", "InvalidDate")
        if after is not None and value < after[0]:
            raise Rejected(f"{what} {value} is before {after[1]} ({after[0]})", "InvalidDate")

    def _milestone(self, key: str, rule_id: str, trigger: date) -> Milestone:
        return add_milestone(self.case, key, rule_id, trigger)

    def _complete(self, key: str, on: date) -> None:
        complete(self.case, key, on)

    def _end_cycle(self, stage: ReviewStage, on: date) -> None:
        """End this cycle, and with it the phase transfer its review dealt with. A meeting
        held before the transfer's Reg 18(1) window is not the phase transfer review: the
        transfer stays for the next cycle, and this cycle no longer counts it."""
        self.case.stage = stage
        self.case.closed_on = on
        if stage not in PLAN_ENDED_STAGES:
            self._complete("post16_move_due", on)
        found = self._transfer()
        if stage in PLAN_ENDED_STAGES or found is None or found[1].done_on is not None:
            return
        transfer, m = found
        held = self.case.meeting_held_on
        if held is not None and held >= transfer_window_opens(transfer.transfer_year):
            m.done_on = on
            return
        m.applicable = False
        self._event("review.phase_transfer_carried", on, None,
                    f"The meeting ({held}) came before the phase transfer review window opened "
                    f"({transfer_window_opens(transfer.transfer_year)}, Reg 18(1)): the next "
                    f"review deals with the transfer of {transfer.transfer_year}",
                    year=str(transfer.transfer_year))

    # --- the meeting -----------------------------------------------------------------------------

    def _set_meeting(self, meeting_on: date, actor: str | None) -> None:
        self._pending.append(set_meeting(self.case, meeting_on, actor, self._today(),
                                         workflow.now()))

    @workflow.update(name=ReviewAction.SET_MEETING.value)
    async def set_meeting(self, cmd: SetMeeting) -> ReviewSnapshot:
        return await self._apply(lambda: self._set_meeting(cmd.meeting_on, cmd.actor))

    @set_meeting.validator
    def _v_set_meeting(self, cmd: SetMeeting) -> None:
        self._require(ReviewAction.SET_MEETING)
        self._check_date(cmd.meeting_on, "The meeting date", future_ok=True)
        if cmd.meeting_on == self.case.meeting_on:
            raise Rejected(f"The meeting is already set for {cmd.meeting_on}", "Duplicate")

    @workflow.update(name=ReviewAction.RECORD_INVITATIONS.value)
    async def record_invitations_sent(self, cmd: RecordDate) -> ReviewSnapshot:
        def change() -> None:
            self._complete("invitations_due", cmd.on)
            self._event("review.invitations_sent", cmd.on, cmd.actor,
                        "Invitations to the review meeting sent (Reg 20(1)-(3))")

        return await self._apply(change)

    @record_invitations_sent.validator
    def _v_record_invitations_sent(self, cmd: RecordDate) -> None:
        self._require(ReviewAction.RECORD_INVITATIONS)
        self._once("invitations_due", "The invitations")
        self._check_date(cmd.on, "The date the invitations went")

    @workflow.update(name=ReviewAction.RECORD_CIRCULATED.value)
    async def record_advice_circulated(self, cmd: RecordDate) -> ReviewSnapshot:
        def change() -> None:
            self._complete("advice_circulated_due", cmd.on)
            self._event("review.advice_circulated", cmd.on, cmd.actor,
                        "Advice and reports circulated to everyone invited (Reg 20(4))")

        return await self._apply(change)

    @record_advice_circulated.validator
    def _v_record_advice_circulated(self, cmd: RecordDate) -> None:
        self._require(ReviewAction.RECORD_CIRCULATED)
        self._once("advice_circulated_due", "The advice")
        self._check_date(cmd.on, "The date the advice was circulated")

    def _once(self, key: str, what: str) -> None:
        m = self.case.milestone(key)
        if m is not None and m.done_on is not None:
            raise Rejected(f"{what} were already recorded on {m.done_on}", "Duplicate")

    @workflow.update(name=ReviewAction.HOLD_MEETING.value)
    async def hold_meeting(self, cmd: HoldMeeting) -> ReviewSnapshot:
        def change() -> None:
            self.case.meeting_held_on = cmd.held_on
            self.case.outcomes = list(cmd.outcomes)
            self._complete("review_due", cmd.held_on)
            self._complete("under_five_review_due", cmd.held_on)
            self._milestone("report_due", "review.report_due", cmd.held_on)
            self._milestone("decision_due", "review.decision_due", cmd.held_on)
            self.case.stage = ReviewStage.MEETING_HELD
            outstanding = [a.key for a in self.case.advice if a.is_open]
            self._event("review.meeting_held", cmd.held_on, cmd.actor,
                        "Review meeting held; the report is due in 2 weeks and the LA's "
                        "decision in 4 (Reg 20(7)-(10))"
                        + (f"; advice never received: {', '.join(outstanding)}"
                           if outstanding else ""),
                        outcomes=str(len(cmd.outcomes)))

        return await self._apply(change)

    @hold_meeting.validator
    def _v_hold_meeting(self, cmd: HoldMeeting) -> None:
        self._require(ReviewAction.HOLD_MEETING)
        self._check_date(cmd.held_on, "The meeting date")

    @workflow.update(name=ReviewAction.RECORD_REPORT.value)
    async def record_review_report(self, cmd: RecordDate) -> ReviewSnapshot:
        def change() -> None:
            self._complete("report_due", cmd.on)
            self._event("review.report_received", cmd.on, cmd.actor,
                        "Review report sent to everyone invited (Reg 20(7)-(8))")

        return await self._apply(change)

    @record_review_report.validator
    def _v_record_review_report(self, cmd: RecordDate) -> None:
        self._require(ReviewAction.RECORD_REPORT)
        self._once("report_due", "The review report")
        self._check_date(cmd.on, "The report's date",
                         after=(self._held(), "the meeting"))

    def _held(self) -> date:
        assert self.case.meeting_held_on is not None
        return self.case.meeting_held_on

    # --- advice and reports for the meeting (the assessment's ladder) -----------------------------

    @workflow.update(name=ReviewAction.REQUEST_ADVICE.value)
    async def request_advice(self, cmd: RequestAdvice) -> ReviewSnapshot:
        due = self._circulate_by()
        return await self._apply(lambda: self._add_advice(
            cmd, "review.advice_circulated_due", lambda _req: due))

    @request_advice.validator
    def _v_request_advice(self, cmd: RequestAdvice) -> None:
        self._require(ReviewAction.REQUEST_ADVICE)
        due = self._circulate_by()
        for req in cmd.items:
            self._check_date(req.requested_on, f"The request date for {req.key}")
            if req.requested_on > due:
                raise Rejected(f"Advice for the meeting on {self.case.meeting_on} must be "
                               f"circulated by {due} (Reg 20(4)), before it was requested "
                               f"({req.requested_on}): set a later meeting first",
                               "InvalidDate")
            if self.case.advice_item(req.key) is not None:
                raise Rejected(f"Advice '{req.key}' was already requested for this review; "
                               "give another label to ask a second advisor", "Duplicate")

    def _circulate_by(self) -> date:
        m = self.case.milestone("advice_circulated_due")
        assert m is not None
        return m.due

    @workflow.update(name=ReviewAction.RECORD_ADVICE.value)
    async def record_advice(self, cmd: RecordAdvice) -> ReviewSnapshot:
        return await self._apply(lambda: self._receive_advice(cmd))

    @record_advice.validator
    def _v_record_advice(self, cmd: RecordAdvice) -> None:
        self._require(ReviewAction.RECORD_ADVICE)
        item = self._open_advice(cmd.key)
        self._check_date(cmd.received_on, "The date received",
                         after=(item.requested_on, "the date it was requested"))

    @workflow.update(name=ReviewAction.REPORT_ADVICE_DELAY.value)
    async def report_advice_delay(self, cmd: ReportAdviceDelay) -> ReviewSnapshot:
        return await self._apply(lambda: self._report_delay(cmd))

    @report_advice_delay.validator
    def _v_report_advice_delay(self, cmd: ReportAdviceDelay) -> None:
        self._require(ReviewAction.REPORT_ADVICE_DELAY)
        self._check_delay(cmd)

    # --- the LA's decision and what follows ------------------------------------------------------

    @workflow.update(name=ReviewAction.CONSULT_ON_CEASING.value)
    async def consult_on_ceasing(self, cmd: RecordDate) -> ReviewSnapshot:
        def change() -> None:
            self.case.cease_consulted_on = cmd.on
            self._event("review.cease_consulted", cmd.on, cmd.actor,
                        "The family and the setting consulted on ceasing the plan (Reg 31)")

        return await self._apply(change)

    @consult_on_ceasing.validator
    def _v_consult_on_ceasing(self, cmd: RecordDate) -> None:
        self._require(ReviewAction.CONSULT_ON_CEASING)
        if self.case.cease_consulted_on is not None:
            raise Rejected(f"The consultation was already recorded on "
                           f"{self.case.cease_consulted_on}", "Duplicate")
        self._check_date(cmd.on, "The consultation date", after=(self._held(), "the meeting"))

    @workflow.update(name=ReviewAction.DECIDE.value)
    async def decide_review(self, cmd: DecideReview) -> ReviewSnapshot:
        def change() -> None:
            self.case.decision = cmd.decision
            self.case.decided_on = cmd.decided_on
            self._complete("decision_due", cmd.decided_on)
            if cmd.decision == "maintain":
                self._end_cycle(ReviewStage.MAINTAINED, cmd.decided_on)
                summary = "Decided to maintain the plan as it is; notice with appeal rights sent"
            elif cmd.decision == "amend":
                self.case.amendments_sent_on = cmd.decided_on
                comments = self._milestone("amendment_comments_due",
                                           "review.amendment_comments_due", cmd.decided_on)
                final = self._milestone("final_amended_plan_due",
                                        "review.final_amended_plan_due", cmd.decided_on)
                self.case.stage = ReviewStage.AMENDING
                summary = (f"Decided to amend the plan; proposed amendments sent with the "
                           f"decision. The family may comment until {comments.due.isoformat()}"
                           f"; the final amended plan is due by {final.due.isoformat()} "
                           "(Reg 22)")
            else:
                self.case.stage = ReviewStage.CEASING
                summary = ("Decided to cease the plan; notice with appeal and mediation rights "
                           "sent (Regs 29-31)")
            self._event(f"review.decided_{cmd.decision}", cmd.decided_on, cmd.actor, summary,
                        decision=cmd.decision)

        return await self._apply(change)

    @decide_review.validator
    def _v_decide_review(self, cmd: DecideReview) -> None:
        self._require(ReviewAction.DECIDE)
        self._check_date(cmd.decided_on, "The decision date", after=(self._held(), "the meeting"))
        if cmd.decision == "cease" and self.case.cease_consulted_on is None:
            raise Rejected("Consult the family and the setting before deciding to cease the "
                           "plan (Reg 31): record the consultation first")
        if cmd.decision == "cease" and cmd.decided_on < (self.case.cease_consulted_on
                                                          or cmd.decided_on):
            raise Rejected(f"The decision {cmd.decided_on} is before the consultation "
                           f"({self.case.cease_consulted_on})", "InvalidDate")

    @workflow.update(name=ReviewAction.RECORD_AMENDMENT_COMMENTS.value)
    async def record_amendment_comments(self, cmd: RecordDate) -> ReviewSnapshot:
        def change() -> None:
            self._complete("amendment_comments_due", cmd.on)
            self._event("review.amendment_comments", cmd.on, cmd.actor,
                        "The family's comments on the proposed amendments received")

        return await self._apply(change)

    @record_amendment_comments.validator
    def _v_record_amendment_comments(self, cmd: RecordDate) -> None:
        self._require(ReviewAction.RECORD_AMENDMENT_COMMENTS)
        self._once("amendment_comments_due", "The family's comments")
        self._check_date(cmd.on, "The date received",
                         after=(self._amendments_sent(), "the proposals were sent"))

    def _amendments_sent(self) -> date:
        assert self.case.amendments_sent_on is not None
        return self.case.amendments_sent_on

    @workflow.update(name=ReviewAction.ISSUE_AMENDED_PLAN.value)
    async def issue_amended_plan(self, cmd: RecordDate) -> ReviewSnapshot:
        def change() -> None:
            self.case.amended_plan_issued_on = cmd.on
            self._complete("final_amended_plan_due", cmd.on)
            self._end_cycle(ReviewStage.AMENDED, cmd.on)
            self._event("review.amended_plan_issued", cmd.on, cmd.actor,
                        "Final amended EHC plan issued (Reg 22(3))")

        return await self._apply(change)

    @issue_amended_plan.validator
    def _v_issue_amended_plan(self, cmd: RecordDate) -> None:
        self._require(ReviewAction.ISSUE_AMENDED_PLAN)
        self._check_after_comments(cmd.on, "The amended plan")

    def _check_after_comments(self, on: date, what: str) -> None:
        self._check_date(on, f"{what}'s date",
                         after=(self._amendments_sent(), "the proposals were sent"))
        comments = self.case.milestone("amendment_comments_due")
        assert comments is not None
        if comments.done_on is None and on < comments.due:
            raise Rejected(f"The family has until {comments.due} to comment on the proposed "
                           "amendments (Reg 22(2)): record their comments, or act on or after "
                           "that date")

    @workflow.update(name=ReviewAction.DECIDE_NOT_TO_AMEND.value)
    async def decide_not_to_amend(self, cmd: RecordDate) -> ReviewSnapshot:
        def change() -> None:
            self.case.not_amended_on = cmd.on
            self._complete("final_amended_plan_due", cmd.on)
            self._end_cycle(ReviewStage.AMENDED, cmd.on)
            self._event("review.not_amended", cmd.on, cmd.actor,
                        "Decided not to amend the plan after all; notice with reasons and "
                        "appeal rights sent (Reg 22(4))")

        return await self._apply(change)

    @decide_not_to_amend.validator
    def _v_decide_not_to_amend(self, cmd: RecordDate) -> None:
        self._require(ReviewAction.DECIDE_NOT_TO_AMEND)
        self._check_after_comments(cmd.on, "The decision")

    @workflow.update(name=ReviewAction.CEASE_PLAN.value)
    async def cease_plan(self, cmd: RecordDate) -> ReviewSnapshot:
        def change() -> None:
            self.case.ceased_on = cmd.on
            self._end_cycle(ReviewStage.CEASED, cmd.on)
            self._event("review.plan_ceased", cmd.on, cmd.actor,
                        "The EHC plan ceased to be maintained (Reg 30)")

        return await self._apply(change)

    @cease_plan.validator
    def _v_cease_plan(self, cmd: RecordDate) -> None:
        self._require(ReviewAction.CEASE_PLAN)
        assert self.case.decided_on is not None
        self._check_date(cmd.on, "The date the plan ceased",
                         after=(self.case.decided_on, "the decision to cease"))

    @workflow.update(name=ReviewAction.UPDATE_PLACEMENT.value)
    async def update_placement(self, cmd: UpdatePlacement) -> ReviewSnapshot:
        def change() -> None:
            self.case.placement = cmd.placement
            self._event("review.placement_updated", self._today(), cmd.actor,
                        f"Year group and setting recorded: year {cmd.placement.nc_year}, "
                        f"{cmd.placement.setting_type.replace('_', ' ')}")

        return await self._apply(change)

    @update_placement.validator
    def _v_update_placement(self, cmd: UpdatePlacement) -> None:
        self._require(ReviewAction.UPDATE_PLACEMENT)
        try:
            parse_nc_year(cmd.placement.nc_year)
            parse_setting_type(cmd.placement.setting_type)
        except ValueError as exc:
            raise Rejected(str(exc), "InvalidDate") from None

    @workflow.update(name=ReviewAction.SET_PHASE_TRANSFER.value)
    async def set_phase_transfer(self, cmd: SetPhaseTransfer) -> ReviewSnapshot:
        def change() -> None:
            m = self._set_transfer(cmd.transfer)
            self._event("review.phase_transfer", self._today(), cmd.actor,
                        f"Phase transfer in {cmd.transfer.transfer_year}: this review and any "
                        f"amended plan are due by {m.due.isoformat()} ({m.citation})",
                        transfer=cmd.transfer.kind, year=str(cmd.transfer.transfer_year))

        return await self._apply(change)

    @set_phase_transfer.validator
    def _v_set_phase_transfer(self, cmd: SetPhaseTransfer) -> None:
        self._require(ReviewAction.SET_PHASE_TRANSFER)
        if cmd.transfer.transfer_year < self.case.anchor_on.year:
            raise Rejected(f"A transfer in {cmd.transfer.transfer_year} is before this review's "
                           f"year began ({self.case.anchor_on})", "InvalidDate")
        m = self.case.milestone("phase_transfer_due")
        if m is not None and m.rule_id.endswith(cmd.transfer.kind) and \
                m.due.year == cmd.transfer.transfer_year:
            raise Rejected(f"This review already has that phase transfer (due {m.due})",
                           "Duplicate")

    @workflow.update(name=ReviewAction.SET_POST16_MOVE.value)
    async def set_post16_move(self, cmd: SetPost16Move) -> ReviewSnapshot:
        def change() -> None:
            d = deadline("review.post16_move_due", cmd.moves_on)
            m = self.case.milestone(d.key)
            if m is None:
                self.case.milestones.append(Milestone(key=d.key, rule_id=d.rule.id,
                                                      started_on=self._today(), due=d.due))
            else:
                m.due, m.alerts_fired = d.due, []
            self._event("review.post16_move", self._today(), cmd.actor,
                        f"Moving to another post-16 institution on {cmd.moves_on.isoformat()}: "
                        f"this review and any amended plan are due by {d.due.isoformat()} "
                        f"({d.rule.citation})", moves_on=cmd.moves_on.isoformat())

        return await self._apply(change)

    @set_post16_move.validator
    def _v_set_post16_move(self, cmd: SetPost16Move) -> None:
        self._require(ReviewAction.SET_POST16_MOVE)
        if cmd.moves_on <= self.case.anchor_on:
            raise Rejected(f"The move on {cmd.moves_on} is not after this review's year began "
                           f"({self.case.anchor_on})", "InvalidDate")
        m = self.case.milestone("post16_move_due")
        if m is not None and m.due == deadline("review.post16_move_due", cmd.moves_on).due:
            raise Rejected(f"This review already has that move (review due {m.due})",
                           "Duplicate")

    @workflow.update(name=ReviewAction.CLOSE_PLAN.value)
    async def close_plan(self, cmd: ClosePlan) -> ReviewSnapshot:
        def change() -> None:
            self.case.close_reason = cmd.reason
            self._end_cycle(ReviewStage.CLOSED, cmd.closed_on)
            self._event("review.plan_closed", cmd.closed_on, cmd.actor,
                        f"Plan closed: {cmd.reason.replace('_', ' ')}")

        return await self._apply(change)

    @close_plan.validator
    def _v_close_plan(self, cmd: ClosePlan) -> None:
        self._require(ReviewAction.CLOSE_PLAN)
        self._check_date(cmd.closed_on, "The closing date")

