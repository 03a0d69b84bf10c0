"""The ADQA weekly digest workflow: one run per week, started by a Temporal Schedule.

The run works out which week it is for (the week ending the day before the digest's weekday,
in London) and calls one activity, ``send_adqa_digest``, that builds the digest from the
database and emails it to each active ADQA member through the outbox. The outbox key is per
week and member, so a re-run, a manual trigger or a restarted worker sends nobody a second
copy. The activity keeps retrying with backoff while the SMTP server is down.

Deterministic and free of I/O; only the stdlib, temporalio, pydantic and the pure
``statutory`` package are imported, so the sandbox stays light.
"""

from __future__ import annotations

from datetime import date, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel, Field

    from statutory import london_date

SCHEDULE_ID = "adqa-weekly-digest"
WORKFLOW_NAME = "AdqaDigestWorkflow"
ACTIVITY_NAME = "send_adqa_digest"
MONDAY = 0  # Python's weekday numbers: Monday 0 ... Sunday 6

# Sending must eventually succeed: an SMTP outage only delays it. The schedule gives each run
# six days (DIGEST_RUN_TIMEOUT), so a week-long outage cannot block the next week's run.
DIGEST_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                           maximum_interval=timedelta(minutes=5))
DIGEST_ATTEMPT_TIMEOUT = timedelta(minutes=10)
DIGEST_RUN_TIMEOUT = timedelta(days=6)


class DigestRequest(BaseModel):
    """The input of a run. The schedule passes the weekday it runs on; a person may name the
    week instead."""

    week_ending: date | None = Field(
        None, description="the last day of the week the digest is for; default: worked out "
        "from the time the run starts")
    digest_weekday: int = Field(MONDAY, ge=0, le=6,
                                description="the weekday the digest is sent (0 = Monday)")


class DigestSummary(BaseModel):
    """What a run did. Counts only: no names or addresses go into the workflow history."""

    week_ending: date
    recipients: int = 0
    sent: int = 0
    already_sent: int = 0
    rejected: int = 0
    overdue_items: int = 0


def week_ending_for(today: date, digest_weekday: int = MONDAY) -> date:
    """The last complete week before ``today``: a week ends the day before the digest's
    weekday (Sunday for a Monday digest), and the week ending today is not complete. Every
    day from one digest day to the day before the next gives the same answer, so any run in
    the same week (scheduled, caught up or triggered by hand) is for the same week."""
    end_weekday = (digest_weekday - 1) % 7
    back = (today.weekday() - end_weekday) % 7 or 7
    return today - timedelta(days=back)


@workflow.defn(name=WORKFLOW_NAME)
class AdqaDigestWorkflow:
    @workflow.run
    async def run(self, request: DigestRequest | None = None) -> DigestSummary:
        request = request or DigestRequest()
        week_ending = request.week_ending or week_ending_for(
            london_date(workflow.now()), request.digest_weekday)
        return await workflow.execute_activity(
            ACTIVITY_NAME, week_ending, result_type=DigestSummary,
            start_to_close_timeout=DIGEST_ATTEMPT_TIMEOUT, retry_policy=DIGEST_RETRY,
        )


# --- the daily message: escalations that reached the ADQA group, once a day ----------------------

DAILY_SCHEDULE_ID = "adqa-daily-message"
DAILY_WORKFLOW_NAME = "AdqaDailyWorkflow"
DAILY_ACTIVITY_NAME = "send_adqa_daily"
DAILY_RUN_TIMEOUT = timedelta(hours=23)  # never overlaps the next day's run


class DailySummary(BaseModel):
    """What a daily run did. Counts only: no names or addresses in the workflow history."""

    day: date
    items: int = 0
    recipients: int = 0
    sent: int = 0
    already_sent: int = 0
    rejected: int = 0


@workflow.defn(name=DAILY_WORKFLOW_NAME)
class AdqaDailyWorkflow:
    """One run a day: emails each ADQA member the escalations that newly reached the group
    (``services.adqa_daily``). The day is the London date the run starts (or the one given)."""

    @workflow.run
    async def run(self, day: date | None = None) -> DailySummary:
        return await workflow.execute_activity(
            DAILY_ACTIVITY_NAME, day or london_date(workflow.now()), result_type=DailySummary,
            start_to_close_timeout=DIGEST_ATTEMPT_TIMEOUT, retry_policy=DIGEST_RETRY,
        )
