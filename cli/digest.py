"""``ehc digest send [--week-ending DATE]``, ``ehc digest daily [--day DATE]`` and ``ehc digest
schedule``: the ADQA weekly digest and the group's daily message by hand, and the Temporal
Schedules that send them."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from cli.usage import date_option
from services.clock import today as today_in_england


def _cmd_send(args: argparse.Namespace) -> None:
    from services.digest import DigestSender, current_week_ending
    from services.mail import MailRetry
    from cli.usage import UsageError
    from config.settings import get_settings
    today = today_in_england()
    week_ending = args.week_ending or current_week_ending(today)
    if week_ending > today:
        raise UsageError(f"--week-ending {week_ending} is in the future: the digest reports "
                         "a week that has happened")
    try:
        summary = asyncio.run(DigestSender(get_settings()).send_now(week_ending))
    except MailRetry as exc:  # nothing is lost: what went is recorded; run it again later
        print(f"error: {exc}. Emails already sent are recorded and will not go again; run "
              "this again when the mail server is back.", file=sys.stderr)
        sys.exit(1)
    print(json.dumps(summary.model_dump(mode="json"), indent=2))


def _cmd_daily(args: argparse.Namespace) -> None:
    from services.adqa_daily import DailySender
    from services.mail import MailRetry
    from config.settings import get_settings
    day = args.day or today_in_england()
    try:
        summary = asyncio.run(DailySender(get_settings()).send_now(day))
    except MailRetry as exc:
        print(f"error: {exc}. Emails already sent are recorded and will not go again; run "
              "this again when the mail server is back.", file=sys.stderr)
        sys.exit(1)
    print(json.dumps(summary.model_dump(mode="json"), indent=2))


def _cmd_schedule(_: argparse.Namespace) -> None:
    from services.digest import DigestScheduleSettings, ensure_digest_schedule, next_run_times
    from config.settings import get_settings
    from services.temporal import connect
    from workflows.digest import DAILY_SCHEDULE_ID, SCHEDULE_ID

    async def go() -> None:
        settings = get_settings()
        cfg = DigestScheduleSettings()
        client = await connect(settings)
        handle = await ensure_digest_schedule(client, settings, cfg)
        assert handle is not None
        print(f"schedule {SCHEDULE_ID}: {cfg.describe()}, task queue {settings.task_queue}")
        print("next runs:")
        for when in await next_run_times(handle):
            print(f"  {when:%A %-d %B %Y, %H:%M %Z}")
        daily = client.get_schedule_handle(DAILY_SCHEDULE_ID)
        print(f"schedule {DAILY_SCHEDULE_ID}: {cfg.describe_daily()}, task queue "
              f"{settings.task_queue}")
        print("next runs:")
        for when in await next_run_times(daily):
            print(f"  {when:%A %-d %B %Y, %H:%M %Z}")

    asyncio.run(go())


def add_commands(sub: argparse._SubParsersAction) -> None:
    digest = sub.add_parser("digest", help="the ADQA weekly digest of overdue advice")
    d_sub = digest.add_subparsers(dest="digest_command", required=True,
                                  parser_class=sub._parser_class)
    send = d_sub.add_parser("send", help="email the digest to every active ADQA member now "
                            "(each gets one per week, however often this runs)")
    send.add_argument("--week-ending", type=date_option("--week-ending"),
                      help="the last day of the week (default: the week just ended)")
    send.set_defaults(func=_cmd_send)
    daily = d_sub.add_parser("daily", help="email the ADQA group's daily message of newly "
                             "escalated advice now (each member gets one a day at most)")
    daily.add_argument("--day", type=date_option("--day"),
                       help="the day of the message (default: today)")
    daily.set_defaults(func=_cmd_daily)
    d_sub.add_parser("schedule", help="create or update the weekly and daily Temporal "
                     "Schedules and print their next run times").set_defaults(func=_cmd_schedule)
