"""``ehc phase-transfer list --year YYYY [--today YYYY-MM-DD] [--format table|csv|json]`` and
``ehc phase-transfer bring-forward --year YYYY [--dry-run]``: the phase-transfer cohort of a
year, and bringing forward the reviews that are not due by their transfer's Reg 18(1) date
(docs/phase-transfers.md).

No names are printed: plans are listed by reference. Exit status: 0 when everything worked
(for bring-forward: every review brought forward, or nothing to do); 1 when some reviews were
refused or could not be reached, or Temporal or the database cannot be used; 2 for a usage
error.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from datetime import date
from typing import TextIO

from cli.usage import date_option
from domain.csv_cells import SafeDictWriter
from services.clock import today as today_in_england
from statutory.phase import FIRST_TRANSFER_YEAR, LAST_TRANSFER_YEAR

YEARS = (FIRST_TRANSFER_YEAR, LAST_TRANSFER_YEAR)


def _year(text: str) -> int:
    if not (re.fullmatch(r"\d{4}", text) and YEARS[0] <= int(text) <= YEARS[1]):
        raise argparse.ArgumentTypeError(
            f"--year {text!r} is not a year of transfer: write four digits from {YEARS[0]} to "
            f"{YEARS[1]}, e.g. 2027 (the year of the September move)")
    return int(text)


def _days(text: str) -> int:
    if not (text.isdecimal() and int(text) <= 365):
        raise argparse.ArgumentTypeError(
            f"--at-risk-days {text!r} is not a number of days from 0 to 365")
    return int(text)


def _real_today() -> date:
    return today_in_england()


def _database_error(exc: Exception) -> None:
    from sqlalchemy.exc import SQLAlchemyError

    if not isinstance(exc, SQLAlchemyError):
        raise exc
    print(f"error: the database cannot be used ({type(exc).__name__}); run `ehc db upgrade` "
          "and check EHC_DATABASE_URL", file=sys.stderr)
    sys.exit(1)


# --- list ------------------------------------------------------------------------------------------

CSV_FIELDS = ("plan_reference", "cycle_reference", "nc_year", "setting_type", "setting_name",
              "transfer_kind", "from_phase", "to_phase", "move_date", "deadline",
              "deadline_citation", "stage", "review_due", "carries_transfer", "days_left",
              "status", "reason")


def _rows(cohort) -> list[dict[str, object]]:
    """One row per plan in the cohort, then one per plan whose transfer is not known (status
    ``placement_unknown``, with the reason): nobody is left out of the file."""
    out: list[dict[str, object]] = []
    for e in cohort.entries:
        tr = e.transfer
        out.append({
            "plan_reference": e.plan_reference, "cycle_reference": e.cycle_reference,
            "nc_year": e.nc_year, "setting_type": e.setting_type,
            "setting_name": e.setting_name or "", "transfer_kind": tr.kind,
            "from_phase": tr.from_phase, "to_phase": tr.to_phase,
            "move_date": tr.move_date.isoformat(), "deadline": tr.deadline.isoformat(),
            "deadline_citation": tr.deadline_citation, "stage": e.stage or "",
            "review_due": e.review_due.isoformat() if e.review_due else "",
            "carries_transfer": "yes" if e.carries_transfer else "no",
            "days_left": e.days_left, "status": e.status, "reason": "",
        })
    for u in cohort.unplaced:
        out.append({**{k: "" for k in CSV_FIELDS}, "plan_reference": u.plan_reference,
                    "cycle_reference": u.cycle_reference, "nc_year": u.nc_year or "",
                    "setting_type": u.setting_type or "", "setting_name": u.setting_name or "",
                    "status": "placement_unknown", "reason": u.reason})
    return out


def print_table(cohort, out: TextIO | None = None) -> None:
    from services.cohort import STATUS_LABELS, STATUSES

    out = out or sys.stdout

    print(f"Phase transfers in {cohort.year}, as on {cohort.today.isoformat()}: "
          f"{cohort.total} plan{'s' if cohort.total != 1 else ''}", file=out)
    if cohort.entries:
        head = ("plan", "review", "year", "setting", "transfer", "deadline", "review due",
                "carries", "status")
        rows = [head] + [(
            e.plan_reference, e.cycle_reference, e.nc_year, e.setting_type,
            f"{e.transfer.from_phase} > {e.transfer.to_phase}",
            f"{e.transfer.deadline.isoformat()} {e.transfer.deadline_citation}",
            e.review_due.isoformat() if e.review_due else "-",
            "yes" if e.carries_transfer else "no", e.status) for e in cohort.entries]
        widths = [max(len(str(r[i])) for r in rows) for i in range(len(head))]
        for r in rows:
            print("  ".join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip(), file=out)
    print("; ".join(f"{STATUS_LABELS[s].lower()}: {cohort.counts[s]}" for s in STATUSES),
          file=out)
    if cohort.unplaced:
        print(f"{len(cohort.unplaced)} active plan{'s' if len(cohort.unplaced) != 1 else ''} "
              "whose transfer cannot be worked out (record the year group and setting):",
              file=out)
        for u in cohort.unplaced:
            print(f"  {u.plan_reference}: {u.reason}", file=out)


def _cmd_list(args: argparse.Namespace) -> None:
    from services.cohort import read_cohort
    from store.db import session_for
    from config.settings import get_settings

    today = args.today or _real_today()
    try:
        with session_for(get_settings().db_url) as session:
            cohort = read_cohort(session=session, year=args.year, today=today,
                                 at_risk_days=args.at_risk_days)
    except Exception as exc:
        _database_error(exc)
        raise
    if args.format == "json":
        print(cohort.model_dump_json(indent=2))
    elif args.format == "csv":
        writer = SafeDictWriter(sys.stdout, fieldnames=CSV_FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(_rows(cohort))
    else:
        print_table(cohort)


# --- bring-forward ---------------------------------------------------------------------------------


def print_result(result, out: TextIO | None = None) -> None:
    out = out or sys.stdout
    for i in result.items:
        where = f"{i.cycle_reference} ({i.kind} transfer {i.transfer_year})"
        if i.outcome == "brought_forward":
            print(f"done      {where}: now due by {i.deadline.isoformat()}", file=out)
        elif i.outcome == "would_bring_forward":
            print(f"would do  {where}: would be due by {i.deadline.isoformat()}", file=out)
        elif i.outcome == "already":
            print(f"already   {where}: {i.message}", file=out)
        else:
            print(f"{i.outcome:<9} {where}: {i.message}", file=out)
    c = result.counts
    if not result.items:
        print(f"Nothing to do: no review in the {result.year} cohort needs bringing forward.",
              file=out)
    elif result.dry_run:
        print(f"{c.get('would_bring_forward', 0)} review(s) would be brought forward. Nothing "
              "was changed (--dry-run).", file=out)
    else:
        print(f"{c.get('brought_forward', 0)} brought forward, {c.get('already', 0)} already "
              f"done, {c.get('rejected', 0)} rejected, {c.get('failed', 0)} failed.", file=out)
        if not result.ok:
            print("Fix what the rejected ones say (or wait for Temporal) and run this again: "
                  "it only sends what is still needed.", file=out)


class _Unreachable(Exception):
    pass


def _actor(text: str) -> str:
    if not 1 <= len(text.strip()) <= 120:
        raise argparse.ArgumentTypeError("--actor must be 1 to 120 characters")
    return text.strip()


def _cmd_bring_forward(args: argparse.Namespace) -> None:
    from services.cohort import bring_forward
    from store.db import session_for
    from config.settings import get_settings

    settings = get_settings()
    today = _real_today()

    async def go():
        client = None
        with session_for(settings.db_url) as session:
            plan = await bring_forward(client=None, session=session, year=args.year,
                                       today=today, dry_run=True)
        if not args.dry_run and plan.items:  # Temporal only when there is something to send
            from services.temporal import connect

            try:
                client = await connect(settings)
            except Exception as exc:
                raise _Unreachable(f"Temporal is not reachable at "
                                   f"{settings.temporal_address}: {exc}") from None
        if client is None:
            return plan
        with session_for(settings.db_url) as session:
            return await bring_forward(client=client, session=session, year=args.year,
                                       today=today, actor=args.actor)

    try:
        result = asyncio.run(go())
    except _Unreachable as exc:
        print(f"error: {exc}. Nothing was changed; start Temporal (ehc up) and run this "
              "again.", file=sys.stderr)
        sys.exit(1)
    except Exception as exc:
        _database_error(exc)
        raise
    print_result(result)
    if not result.ok:
        sys.exit(1)


def add_commands(sub: argparse._SubParsersAction) -> None:
    pt = sub.add_parser("phase-transfer", help="the phase-transfer cohort of a year, and "
                        "bringing its reviews forward (docs/phase-transfers.md)")
    p_sub = pt.add_subparsers(dest="phase_transfer_command", required=True,
                              parser_class=sub._parser_class)
    ls = p_sub.add_parser("list", help="every active plan whose child changes phase in YEAR, "
                          "with its Reg 18(1) deadline and status; no names")
    ls.add_argument("--year", required=True, type=_year,
                    help="the calendar year of transfer (the September move), e.g. 2027")
    ls.add_argument("--today", type=date_option("--today"),
                    help="work it out as on this date (default: today, London)")
    ls.add_argument("--format", choices=("table", "csv", "json"), default="table")
    ls.add_argument("--at-risk-days", type=_days, default=42,
                    help="a deadline this close with no meeting held is due soon (default 42)")
    ls.set_defaults(func=_cmd_list)
    bf = p_sub.add_parser("bring-forward", help="make every review in YEAR's cohort that is "
                          "not brought forward due by its transfer deadline (through Temporal)")
    bf.add_argument("--year", required=True, type=_year,
                    help="the calendar year of transfer (the September move), e.g. 2027")
    bf.add_argument("--dry-run", action="store_true", help="list them only: change nothing")
    bf.add_argument("--actor", type=_actor, default="ehc phase-transfer", help="who is doing it, for the "
                    "reviews' timelines (default: 'ehc phase-transfer')")
    bf.set_defaults(func=_cmd_bring_forward)
