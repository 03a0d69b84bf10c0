"""``ehc children`` and ``ehc retention``: the data protection officer's commands
(docs/data-protection.md).

    ehc children export --reference EHC-7QK2-M4TD --out subject-access.zip
    ehc retention report            # what the retention rule would remove now (changes nothing)
    ehc retention apply             # remove it

They print references, record ids and dates, never a child's name.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def _session(args: argparse.Namespace):
    from store.db import session_for
    from config.settings import get_settings

    return session_for(args.url or get_settings().db_url)


def _cmd_export(args: argparse.Namespace) -> None:
    from cli.usage import UsageError
    from config.settings import get_settings
    from services import access_log, subject_access

    with _session(args) as session:
        found = access_log.find_children(session=session, reference=args.reference)
        if not found:
            raise UsageError(f"no case, plan or child has the reference {args.reference!r}: "
                             "check it (the data protection officer's page finds a child by "
                             "name and date of birth)")
        _, data = subject_access.build_archive(
            session=session, staff=access_log.command_viewer(), child_id=found[0].id,
            council=get_settings().council_name, route="ehc children export")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    out.chmod(0o600)  # a child's whole record: readable by whoever ran the command only
    print(f"wrote {out} ({len(data)} bytes): everything held about the child of "
          f"{args.reference}; README.txt inside says what each file is")


def _print(rep, applied: bool) -> None:
    verb = "Removed" if applied else "Would remove"
    print(f"Retention rule: {rep.years} years after the date of birth, for children with no "
          f"open case and no active plan; judged on {rep.on.isoformat()}.")
    if not rep.due:
        print("No record has passed the rule.")
    for due in rep.due:
        counts = ", ".join(f"{n} {what}" for what, n in due.counts.items() if n) or "nothing else"
        print(f"{verb}: record {due.child_id}, passed {due.passed_on.isoformat()}, cases and "
              f"plans {', '.join(due.references) or 'none'}: names, date of birth, {counts}")
    total = {}
    for due in rep.due:
        for what, n in due.counts.items():
            total[what] = total.get(what, 0) + n
    print(f"{len(rep.due)} {'child' if len(rep.due) == 1 else 'children'}"
          + (f" ({', '.join(f'{n} {w}' for w, n in total.items())})" if total else "")
          + f"; {rep.kept_open} past the rule but kept for an open case or an active plan.")


def _cmd_retention(args: argparse.Namespace) -> None:
    from config.settings import get_settings
    from services import retention

    years = args.years or get_settings().retention_years_after_birth
    with _session(args) as session:
        run = retention.apply if args.retention_command == "apply" else retention.report
        _print(run(session=session, years=years, on=args.on),
               applied=args.retention_command == "apply")


def add_commands(sub: argparse._SubParsersAction) -> None:
    from cli.usage import date_option

    children = sub.add_parser("children", help="a child's record: subject access export")
    c_sub = children.add_subparsers(dest="children_command", required=True,
                                    parser_class=sub._parser_class)
    ex = c_sub.add_parser("export", help="everything held about a child, as one zip archive "
                          "(logged in the access log)")
    ex.add_argument("--reference", required=True,
                    help="one of the child's case or plan references, or the council's own "
                    "reference for the child")
    ex.add_argument("--out", required=True, help="the zip file to write")
    ex.add_argument("--url", help="database URL (default: from settings)")
    ex.set_defaults(func=_cmd_export)

    ret = sub.add_parser("retention", help="the retention rule (EHC_RETENTION_YEARS_AFTER_BIRTH)")
    r_sub = ret.add_subparsers(dest="retention_command", required=True,
                               parser_class=sub._parser_class)
    for name, text in (("report", "what the rule would remove now: changes nothing"),
                       ("apply", "remove it (run report first)")):
        p = r_sub.add_parser(name, help=text)
        p.add_argument("--on", type=date_option("--on"),
                       help="judge on this day, YYYY-MM-DD (default today)")
        p.add_argument("--years", type=int, help="years after the date of birth (default: "
                       "EHC_RETENTION_YEARS_AFTER_BIRTH, 31)")
        p.add_argument("--url", help="database URL (default: from settings)")
        p.set_defaults(func=_cmd_retention)
