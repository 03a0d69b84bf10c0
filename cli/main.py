"""``ehc``: the command line.

``ehc timescales ...`` is a deadline calculator a caseworker can use on its own; the other
commands run the parts of the system (``ehc up`` runs all of them).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import traceback
from typing import NoReturn, Sequence

from cli.usage import YEARS, Parser, UsageError, date_option
from statutory import assessment_timescales, review_timescales


def _year(text: str) -> int:
    if not (text.isdecimal() and len(text) == 4 and int(text) in YEARS):
        raise argparse.ArgumentTypeError(
            f"--transfer-year {text!r} is not a year: write four digits from {YEARS.start} to "
            f"{YEARS.stop - 1}, e.g. 2027"
        )
    return int(text)


def _print_deadlines(deadlines: dict) -> None:
    print(json.dumps({k: d.as_json() for k, d in deadlines.items()}, indent=2))


def _cmd_timescales_assessment(args: argparse.Namespace) -> None:
    for option, value in (("--advice-requested", args.advice_requested),
                          ("--draft-served", args.draft_served)):
        if value is not None and value < args.request_date:
            raise UsageError(
                f"{option} {value} is before --request-date {args.request_date}: "
                "it cannot come before the request"
            )
    _print_deadlines(
        assessment_timescales(
            args.request_date,
            advice_requested=args.advice_requested,
            draft_served=args.draft_served,
            draft_target_weeks=args.draft_target_weeks,
        )
    )


def _cmd_timescales_review(args: argparse.Namespace) -> None:
    if args.transfer and args.transfer_year is None:
        raise UsageError("--transfer needs --transfer-year YYYY, the calendar year of the move")
    if args.transfer_year is not None and not args.transfer:
        raise UsageError("--transfer-year needs --transfer school|post16")
    anchor = args.last_review or args.plan_issued
    if not any((anchor, args.meeting_date, args.amendments_sent, args.transfer,
                args.post16_move_date)):
        raise UsageError(
            "give at least one of --last-review, --plan-issued, --meeting-date, "
            "--amendments-sent, --transfer"
        )
    if anchor and args.meeting_date and args.meeting_date < anchor:
        raise UsageError(f"--meeting-date {args.meeting_date} is before the review it follows "
                         f"({anchor}): check the dates")
    if args.meeting_date and args.amendments_sent and args.amendments_sent < args.meeting_date:
        raise UsageError(f"--amendments-sent {args.amendments_sent} is before --meeting-date "
                         f"{args.meeting_date}: amendments follow the meeting")
    _print_deadlines(
        review_timescales(
            last_review=args.last_review,
            plan_issued=args.plan_issued,
            meeting_date=args.meeting_date,
            amendments_sent=args.amendments_sent,
            transfer=args.transfer,
            transfer_year=args.transfer_year,
            post16_move_date=args.post16_move_date,
        )
    )


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="ehc", description="EHC assessments and reviews on time.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    ts = sub.add_parser("timescales", help="work out statutory deadlines (prints JSON)")
    ts_sub = ts.add_subparsers(dest="which", required=True, parser_class=Parser)

    a = ts_sub.add_parser("assessment", help="deadlines of an EHC needs assessment")
    a.add_argument("--request-date", required=True, type=date_option("--request-date"),
                   help="date the LA received the request (day 0)")
    a.add_argument("--advice-requested", type=date_option("--advice-requested"),
                   help="date an advisor received a request for advice")
    a.add_argument("--draft-served", type=date_option("--draft-served"),
                   help="date the draft plan was served on the family")
    a.add_argument("--draft-target-weeks", type=int, default=16,
                   help="the council's local target for the draft plan (default 16)")
    a.set_defaults(func=_cmd_timescales_assessment)

    r = ts_sub.add_parser("review", help="deadlines of an annual review and phase transfer")
    anchor = r.add_mutually_exclusive_group()
    anchor.add_argument("--last-review", type=date_option("--last-review"),
                        help="date of the last review")
    anchor.add_argument("--plan-issued", type=date_option("--plan-issued"),
                        help="date the plan was issued (when there has been no review yet)")
    r.add_argument("--meeting-date", type=date_option("--meeting-date"),
                   help="date of the review meeting")
    r.add_argument("--amendments-sent", type=date_option("--amendments-sent"),
                   help="date the proposed amendments were sent")
    r.add_argument("--transfer", choices=("school", "post16"),
                   help="phase transfer: school (by 14 Feb; the law says before 15 Feb) or "
                   "post16 (by 30 Mar; before 31 Mar)")
    r.add_argument("--transfer-year", type=_year, help="calendar year of the transfer")
    r.add_argument("--post16-move-date", type=date_option("--post16-move-date"),
                   help="date of a post-16 to post-16 move at another time (Reg 18(2))")
    r.set_defaults(func=_cmd_timescales_review)

    from cli import system  # the commands that run the system

    system.add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        args.func(args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _status(exc: SystemExit) -> int:
    """The exit status ``sys.exit(value)`` means (a message is printed and means 1)."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)
    return 1


def run(argv: Sequence[str] | None = None) -> NoReturn:
    """The ``ehc`` command (and ``python -m cli.main``, ``python -m worker``): run it, then
    leave at once with its status.

    A process that has opened a Temporal client can abort while the interpreter tears down
    ("Fatal Python error: PyGILState_Release ... finalizing", status -6, a core dump), after
    its work succeeded: the client's Rust threads outlive the interpreter (temporalio
    sdk-python issue 300), more often on a busy machine. Every command's work, its clean-up
    included, is finished when ``main`` returns, so the interpreter's own teardown has nothing
    left to do: flush what is written and ``os._exit`` with the command's real status."""
    try:
        status = main(argv)
    except SystemExit as exc:
        status = _status(exc)
    except KeyboardInterrupt:
        status = 130
    except BaseException:  # noqa: BLE001 - printed as Python would, then the same status
        traceback.print_exc()
        status = 1
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be said
            pass
    os._exit(status)


if __name__ == "__main__":  # ``python -m cli.main``: run the module as imported by name, so
    # the commands' ``cli.main.UsageError`` is the class ``main`` catches (status 2)
    from cli.main import run as run_by_name

    run_by_name()
