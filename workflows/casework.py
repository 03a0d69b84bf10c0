"""What every case workflow shares: the one clock, the escalation ladder that chases advice,
and the event log saved through a record activity.

A case workflow (``AssessmentWorkflow``, ``ReviewWorkflow``) subclasses ``CaseWorkflow``,
keeps its state in ``self.case`` (a snapshot with ``reference``, ``version``, ``stage``
(``.is_open``), ``policy`` (``.due_soon_days``), ``milestones`` and ``advice``), says which
deadlines still alert (``_deadline_items``), and names its record activity. Everything here is
deterministic: no I/O, no clock but ``workflow.now()``.

The clock: ``_run_clock`` sleeps until the earliest step not yet fired across all open
deadlines, fires what has come, saves, and sleeps again; an update that changes the deadlines
wakes it. Milestones have ``ALERT_LADDER`` (due soon, overdue: events only). Advice has its
escalation ladder (``domain.ladder``): each step fired records a ``chase.<step>`` event and
hands an ``AdviceNotice`` to the ``send_advice_notice`` activity, in the background, one chain
per piece of advice, cancelled the moment the advice stops being chased.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from typing import Any, Callable

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.exceptions import CancelledError as ActivityCancelled

with workflow.unsafe.imports_passed_through():
    from domain.ladder import (
        RECIPIENT_LABELS,
        AdviceNotice,
        NoticeResult,
        chase_summary,
        not_sent_summary,
        step_label,
    )
    from domain.words import long_date
    from domain.case import (
        AdviceItem,
        AdviceRequest,
        Event,
        Milestone,
        RecordAdvice,
        ReportAdviceDelay,
        RequestAdvice,
    )
    from domain.alerts import ALERT_LADDER, alert_day, fire, ladder, next_event  # noqa: F401
    from domain.steps import repeat_of
    from statutory import RULES, london_date

RECORD_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1))
SEND_ADVICE_NOTICE = "send_advice_notice"
# An email waits out an SMTP outage however long it lasts, then goes (once: the outbox).
NOTICE_RETRY = RetryPolicy(initial_interval=timedelta(seconds=5), backoff_coefficient=2.0,
                           maximum_interval=timedelta(minutes=10))

# Deadlines learn the day they were entered (``entered_on``), and advice entered late is chased
# from that day (docs/advice-chasing.md, "Entering history is not chasing"). Workflows that
# began before this was kept replay as they ran: the patch is taken only on new work.
ENTERED_ON_PATCH = "deadlines-know-their-day-of-entry"

# The alerts of milestones (and of advice requested without an escalation ladder) are
# domain.alerts.ALERT_LADDER (re-exported here). Advice requested with a ladder
# (domain.ladder) is chased by its ladder instead; both run on the one clock.


class Rejected(ApplicationError):
    """A caseworker action that cannot be applied; nothing has been changed."""

    def __init__(self, message: str, kind: str = "OutOfOrder") -> None:
        super().__init__(message, type=kind, non_retryable=True)


# A step sent again exactly as it was taken (a double-click, the back button, a retried
# request) is answered with the case as it is, without a second event (domain.steps.repeat_of).
# Before this patch such a repeat of a step that had no duplicate check was applied again.
REPEAT_IS_DONE = "repeat-is-done"


class CaseWorkflow:
    """The machinery of a case workflow; see the module's docstring."""

    RECORD_ACTIVITY = "record_case"
    case: Any

    def _init_machinery(self) -> None:
        self._pending: list[Event] = []
        self._saving = asyncio.Lock()  # saves go to the database one at a time, in order
        # The emails being sent for each piece of advice, in ladder order; cancelled the
        # moment the advice stops being chased (received, excused, case closed).
        self._chasers: dict[str, list[asyncio.Task]] = {}
        self._unsent_noted: set[tuple[str, str]] = set()  # (advice, role) said to have nobody

    def _deadline_items(self) -> list[tuple[Milestone | AdviceItem, str | None]]:
        """Open deadlines that still alert, each with its advice key (None: a milestone)."""
        raise NotImplementedError

    # --- a step taken twice ------------------------------------------------------------------

    def _repeat(self, action: str, cmd: Any) -> bool:
        """For a validator: True when ``cmd`` asks for a step already taken exactly so (it is
        accepted, and its handler changes nothing); a Duplicate refusal, saying what was
        recorded, when the step was taken with other dates or values; False otherwise."""
        found = repeat_of(self.case, action, cmd)
        if found is None:
            return False
        if not found.same:
            raise Rejected(found.message, "Duplicate")
        return True

    def _already(self, action: str, cmd: Any) -> bool:
        """For a handler: the step is already taken exactly as asked, so nothing happens."""
        found = repeat_of(self.case, action, cmd)
        return found is not None and found.same and workflow.patched(REPEAT_IS_DONE)

    # --- advice: asked for, received, late --------------------------------------------------

    def _entering(self) -> bool:
        """Whether deadlines record the day they are entered (not in replays of workflows
        that ran before it was kept)."""
        return workflow.patched(ENTERED_ON_PATCH)

    def _known(self) -> set[tuple[str, str, date]]:
        return {(type(m).__name__, m.key, m.due) for m in self._all_deadlines()}

    def _all_deadlines(self) -> list[Milestone | AdviceItem]:
        return [*self.case.milestones, *getattr(self.case, "settings_consulted", []),
                *self.case.advice]

    def _stamp_entered(self, known: set[tuple[str, str, date]]) -> None:
        """Give each deadline new since ``known`` (or given a new due date) today's date as
        the day it was entered."""
        fresh = [m for m in self._all_deadlines()
                 if (type(m).__name__, m.key, m.due) not in known]
        if fresh and self._entering():
            for m in fresh:
                if m.entered_on is None or isinstance(m, Milestone):
                    m.entered_on = self._today()

    def _add_advice(self, cmd: RequestAdvice, rule_id: str,
                    due_for: Callable[[AdviceRequest], date]) -> None:
        entered = self._today() if self._entering() else None
        for req in cmd.items:
            item = AdviceItem(
                key=req.key, source=req.source, label=req.label, rule_id=rule_id,
                requested_on=req.requested_on, due=due_for(req),
                received_on=req.requested_on if req.reuse_existing else None,
                reused=req.reuse_existing,
                service_id=req.service_id, contact_id=req.contact_id,
                ladder=None if req.reuse_existing else req.ladder,
                entered_on=entered,
            )
            if item.ladder is not None and not req.send_request_email:
                # The request went another way: mark its step as done, not sent.
                item.alerts_fired = [s.name for s in item.ladder.steps
                                     if s.anchor == "requested"]
            self.case.advice.append(item)
            what = req.label or req.source.label
            due = long_date(item.due) if entered is not None else item.due.isoformat()
            self._event(
                "advice.reused" if req.reuse_existing else "advice.requested",
                req.requested_on, cmd.actor,
                f"Existing advice reused: {what} (Reg 6(4))" if req.reuse_existing
                else f"Advice requested: {what}, due {due} "
                f"({RULES[rule_id].citation})",
                advice=item.key,
            )
            if item.ladder is not None and entered is not None:
                # Entering history is not chasing: the steps whose day had gone are marked,
                # not sent, and said so once.
                missed = item.ladder.missed(item.requested_on, item.due, item.alerts_fired,
                                            entered)
                if missed:
                    item.alerts_fired.extend(n for n, _ in missed)
                    self._event("chase.not_sent", entered, cmd.actor,
                                not_sent_summary(what, missed, entered), advice=item.key,
                                steps=",".join(n for n, _ in missed))

    def _receive_advice(self, cmd: RecordAdvice) -> None:
        item = self.case.advice_item(cmd.key)
        assert item is not None
        item.received_on = cmd.received_on
        item.submission_id = cmd.submission_id
        late = cmd.received_on > item.due
        extra = {"submission": cmd.submission_id} if cmd.submission_id else {}
        self._event("advice.received", cmd.received_on, cmd.actor,
                    f"Advice received: {item.label or item.source.label}"
                    f"{' (late)' if late else ''}"
                    f"{' through the secure page' if cmd.submission_id else ''}",
                    advice=item.key, **extra)

    def _report_delay(self, cmd: ReportAdviceDelay) -> None:
        item = self.case.advice_item(cmd.key)
        assert item is not None
        item.expected_on = cmd.expected_on
        when = f"; expected by {cmd.expected_on.isoformat()}" if cmd.expected_on else ""
        self._event("advice.delay_reported", self._today(), cmd.actor,
                    f"Told that {item.label or item.source.label} will be late{when}: "
                    f"{cmd.reason}"[:500], advice=item.key)

    def _open_advice(self, key: str) -> AdviceItem:
        item = self.case.advice_item(key)
        if item is None:
            asked = "; ".join(a.label or a.source.label for a in self.case.advice)
            raise Rejected("That advice has not been requested on this "
                           f"{'review' if self.case.kind == 'review' else 'case'}: "
                           + (f"choose one of the advice requested ({asked})" if asked
                              else "request it first"), "NotFound")
        if item.received_on is not None:
            what = item.label or item.source.label
            raise Rejected(f"{what[:1].upper() + what[1:]} was already recorded as received on "
                           f"{long_date(item.received_on)}: there is nothing more to record",
                           "Duplicate")
        return item

    def _check_delay(self, cmd: ReportAdviceDelay) -> None:
        self._open_advice(cmd.key)
        if cmd.expected_on is not None and cmd.expected_on < self._today():
            raise Rejected(f"The expected date, {long_date(cmd.expected_on)}, has passed (today "
                           f"is {long_date(self._today())}): give a date from today on",
                           "InvalidDate")

    # --- the one clock ------------------------------------------------------------------------

    async def _run_clock(self, still_open: Callable[[], bool]) -> None:
        """Fire every alert on time while ``still_open()``."""
        while still_open():
            target = self._next_alert()
            timeout = None if target is None else max(target - workflow.now(), timedelta(0))
            try:
                await workflow.wait_condition(
                    lambda: not still_open() or self._next_alert() != target,
                    timeout=timeout,
                )
            except asyncio.TimeoutError:
                pass
            if still_open():
                await self._fire_alerts()

    async def _wind_down(self) -> None:
        """Let running updates finish, stop the chasing, and save the last events."""
        await workflow.wait_condition(workflow.all_handlers_finished)
        self._stop_chasing()
        if self._chasers:
            await workflow.wait_condition(lambda: not self._chasers)
        await self._save()

    def _ladder(self, item: Milestone | AdviceItem) -> list[tuple[str, datetime]]:
        return ladder(item, self.case.policy.due_soon_days)

    def _next_alert(self) -> datetime | None:
        moments: list[datetime] = []
        for item, _ in self._deadline_items():
            if isinstance(item, AdviceItem) and item.ladder is not None:
                at = item.ladder.next_at(item.requested_on, item.due, item.alerts_fired,
                                         item.entered_on)
                moments.extend([at] if at is not None else [])
            else:
                moments.extend(at for _, at in self._ladder(item))
        return min(moments) if moments else None

    async def _fire_alerts(self) -> None:
        now = workflow.now()
        notices: list[AdviceNotice] = []
        for item, advice_key in self._deadline_items():
            if isinstance(item, AdviceItem) and item.ladder is not None:
                notices.extend(self._climb(item, now))
                continue
            event = fire(self.case, item, advice_key, now)  # due soon, overdue
            if event is not None:
                self._pending.append(event)
        if self._pending:
            await self._save()
        for notice in notices:
            self._chase(notice)

    def _alert_day(self, at: datetime, now: datetime) -> tuple[date, str]:
        return alert_day(at, now)

    # --- chasing advice: the escalation ladder ------------------------------------------------

    def _climb(self, item: AdviceItem, now: datetime) -> list[AdviceNotice]:
        """Fire the ladder steps of ``item`` whose moment has come. When several have come at
        once (advice entered late, or a worker down for days), each person gets only the
        latest step meant for them: nobody gets a reminder after the overdue notice."""
        assert item.ladder is not None
        passed = item.ladder.passed(item.requested_on, item.due, item.alerts_fired, now,
                                    item.entered_on)
        if not passed:
            return []
        item.alerts_fired.extend(name for name, _, _ in passed)
        what = item.label or item.source.label
        name, at, step = passed[-1]
        sending: list[tuple[str, datetime, object, list[str]]] = []
        covered: set[str] = set()
        for n, when, s in reversed(passed):
            roles = [r for r in s.to if r not in covered]
            if roles:
                sending.insert(0, (n, when, s, roles))
                covered.update(roles)
        skipped = [n for n, _, _ in passed if n not in {x[0] for x in sending}]
        on, late = self._alert_day(at, now)
        if item.entered_on is None:  # as before deadlines knew their day of entry
            to = ", ".join(RECIPIENT_LABELS[r] for r in step.to)
            self._event(f"chase.{step.name}", on, None,
                        f"{what} (due {item.due.isoformat()}): {step_label(name)} to {to}"
                        f"{late}",
                        advice=item.key, step=name, to=",".join(step.to),
                        **({"caught_up": ",".join(x[0] for x in sending[:-1])}
                           if len(sending) > 1 else {}),
                        **({"skipped": ",".join(skipped)} if skipped else {}))
        else:
            # Each email that goes, to whom; the ADQA group's escalation is recorded when it
            # is queued for their daily message (_chase).
            for n, when, s, roles in sending:
                emailed = [r for r in roles if r != "adqa"]  # type: ignore[attr-defined]
                if not emailed:
                    continue
                self._event(f"chase.{s.name}", on, None,  # type: ignore[attr-defined]
                            chase_summary(what, item.due, n, emailed, item.requested_on,
                                          item.entered_on, s.is_request, late),  # type: ignore[attr-defined]
                            advice=item.key, step=n, to=",".join(emailed),
                            **({"skipped": ",".join(skipped)} if skipped else {}))
        return [AdviceNotice(
            reference=self.case.reference, advice_key=item.key, what=what,
            source=item.source.value, service_id=item.service_id, contact_id=item.contact_id,
            step=n, template=s.template, to=roles,  # type: ignore[attr-defined]
            requested_on=item.requested_on, due=item.due, on=london_date(when),
            expected_on=item.expected_on,
        ) for n, when, s, roles in sending]

    def _chase(self, notice: AdviceNotice) -> None:
        """Send a step's emails in the background, after the item's earlier steps, so the
        clock and caseworker actions never wait on the mail server."""
        earlier = list(self._chasers.get(notice.advice_key, []))

        async def send() -> None:
            if earlier:
                await workflow.wait(earlier)  # our own cancellation still propagates
            try:
                result = await workflow.execute_activity(
                    SEND_ADVICE_NOTICE, notice, result_type=NoticeResult,
                    start_to_close_timeout=timedelta(minutes=2),
                    heartbeat_timeout=timedelta(seconds=10),  # a dead worker's send is retried
                    retry_policy=NOTICE_RETRY,
                )
            except ActivityError as exc:  # not retryable (e.g. the templates are broken)
                if isinstance(exc.cause, ActivityCancelled):
                    return  # the advice stopped being chased while this was in flight
                workflow.logger.warning("step %s of %s not sent: %s", notice.step,
                                        notice.advice_key, exc.cause)
                self._event("chase.failed", self._today(), None,
                            f"The {step_label(notice.step)} for {notice.what} could not be "
                            "sent; check the mail settings", advice=notice.advice_key,
                            step=notice.step)
                await self._save()
                return
            if result.queued_for is not None and self.case.stage.is_open:
                self._event("chase.escalate_adqa", self._today(), None,
                            f"{notice.what[:1].upper()}{notice.what[1:]}, due "
                            f"{long_date(notice.due)}: escalated to the ADQA group; in their "
                            f"daily message of {long_date(result.queued_for)}",
                            advice=notice.advice_key, step=notice.step, to="adqa",
                            daily_message=result.queued_for.isoformat())
                await self._save()
            await self._note_unsent(notice, result)

        task = asyncio.create_task(send())
        tasks = self._chasers.setdefault(notice.advice_key, [])
        tasks.append(task)
        task.add_done_callback(lambda t, key=notice.advice_key: self._forget(key, t))

    async def _note_unsent(self, notice: AdviceNotice, result: NoticeResult) -> None:
        """Say on the case, once per piece of advice and role, that the directory has nobody
        to email for a step (no service named, no lead, no ADQA members), so the caseworker
        knows the chasing is not reaching anyone and can fix the directory."""
        missing = [r for r in result.nobody if (notice.advice_key, r) not in self._unsent_noted]
        if not missing or not self.case.stage.is_open:
            return
        self._unsent_noted.update((notice.advice_key, r) for r in missing)
        who = ", ".join(RECIPIENT_LABELS[r] for r in missing)  # type: ignore[index]
        self._event("chase.unsent", self._today(), None,
                    f"{notice.what}: nobody in the directory to send the "
                    f"{step_label(notice.step)} to ({who}); add them to the directory",
                    advice=notice.advice_key, step=notice.step, roles=",".join(missing))
        await self._save()

    def _forget(self, key: str, task: asyncio.Task) -> None:
        tasks = self._chasers.get(key, [])
        if task in tasks:
            tasks.remove(task)
        if not tasks:
            self._chasers.pop(key, None)

    def _stop_chasing(self) -> None:
        """Cancel the emails of advice no longer chased: received, excused, or case closed."""
        if not self._chasers:
            return
        chased = {key for _, key in self._deadline_items() if key} if self.case.stage.is_open \
            else set()
        for key, tasks in list(self._chasers.items()):
            if key not in chased:
                for task in tasks:
                    task.cancel()

    # --- persistence ---------------------------------------------------------------------

    def _event(self, kind: str, on: date, actor: str | None, summary: str, **data: str) -> None:
        self._pending.append(next_event(self.case, kind, on, workflow.now(), actor, summary,
                                        data))

    async def _save(self) -> None:
        async with self._saving:
            if not self._pending:
                return  # an earlier save took these events with it
            events, self._pending = self._pending, []
            await workflow.execute_activity(
                self.RECORD_ACTIVITY,
                args=[self.case.model_copy(deep=True), events],
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=RECORD_RETRY,
            )

    async def _apply(self, change: Callable[[], None]) -> Any:
        """Apply a validated change, save it, and return the case. Callers work out the view
        for today's date (``CaseSnapshot.view``), as for the query. Deadlines the change adds
        (or gives a new due date) learn that they were entered today."""
        known = self._known()
        change()
        self._stamp_entered(known)
        self._stop_chasing()
        await self._save()
        return self.case

    def _today(self) -> date:
        return london_date(workflow.now())

