"""``ehc import plans FILE.csv [--skip-bad-rows] [--dry-run] [--today YYYY-MM-DD]``: bring a
council's existing EHC plans in (docs/import.md).

Prints every error and warning (line, column, message; never a cell's value, which may be a
name or a date of birth), then what was done to each plan that needs a look, then a summary.
Exit status: 0 when every valid row is in (imported now, or already); 1 when nothing was
imported because the file has errors, Temporal or the database cannot be reached, or some
plans could not be started (run it again: it imports only what is not yet in); 2 for a usage
error. A progress line goes to stderr as plans are started.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import TextIO

from cli.usage import UsageError, date_option
from services.clock import today as today_in_england


class ProgressLine:
    """``importing plans: 1200/20000 (6%)`` on stderr: one line rewritten with ``\\r`` on a
    terminal (at most ten times a second), a line at each tenth otherwise (logs, CI)."""

    def __init__(self, stream: TextIO = sys.stderr) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.last = 0.0
        self.step = -1
        self.shown = False

    def __call__(self, done: int, total: int) -> None:
        text = f"importing plans: {done}/{total} ({done * 100 // total}%)"
        if self.tty:
            now = time.monotonic()
            if done == total or now - self.last >= 0.1:
                self.last = now
                self.stream.write("\r" + text)
                self.stream.flush()
                self.shown = True
        elif done * 10 // total > self.step:
            self.step = done * 10 // total
            print(text, file=self.stream, flush=True)

    def close(self) -> None:
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()


def print_result(result, out: TextIO = sys.stdout) -> None:
    from services.plan_import import issue_lines

    for line in issue_lines(result.report):
        print(line, file=out)
    for r in result.results:
        if r.outcome == "failed":
            print(f"failed  Line {r.line}, {r.plan_reference}: {r.message}", file=out)
        for note in r.notes:
            print(f"note    Line {r.line}, {r.plan_reference}: {note}", file=out)
    s = result.summary
    if s.dry_run:
        print(f"Checked {s.rows} rows: {s.valid} valid, {s.errors} errors, {s.warnings} "
              "warnings. Nothing was imported (--dry-run).", file=out)
        return
    if result.blocked:
        good = f" or use --skip-bad-rows to import the {s.valid} valid rows" if s.valid else ""
        print(f"Nothing was imported: the file has {s.errors} "
              f"error{'s' if s.errors != 1 else ''} in {s.rows} rows. Fix "
              f"{'them' if s.errors != 1 else 'it'} and run the import again{good}.", file=out)
        return
    print(f"{s.rows} rows: {s.imported} imported, {s.already_imported} already imported, "
          f"{s.skipped} skipped (errors), {s.failed} failed. Children: {s.children_added} "
          f"added, {s.children_matched} matched. {s.seconds:.1f}s.", file=out)
    if s.failed:
        print("Some plans were not started: run the same import again; it starts only the "
              "plans that are not yet in.", file=out)


def _cmd_import_plans(args: argparse.Namespace) -> None:
    from services.plan_import import TemporalUnavailable, import_plans
    from config.settings import get_settings
    path = Path(args.file)
    if not path.is_file():
        raise UsageError(f"ehc import plans: there is no file at {args.file}")
    real_today = today_in_england()
    today = args.today or real_today
    if today != real_today:
        print(f"note: checking the file as on {today.isoformat()}, not today", file=sys.stderr)
    settings = get_settings()
    progress = ProgressLine()

    async def go():
        client = None
        if not args.dry_run:
            from services.temporal import connect

            try:
                client = await connect(settings)
            except Exception as exc:
                raise TemporalUnavailable(f"Temporal is not reachable at "
                                          f"{settings.temporal_address}: {exc}") from None
        return await import_plans(path, settings=settings, client=client, today=today,
                                  skip_bad_rows=args.skip_bad_rows, dry_run=args.dry_run,
                                  progress=progress)

    try:
        result = asyncio.run(go())
    except TemporalUnavailable as exc:
        print(f"error: {exc}. Nothing was imported; start Temporal (ehc up) and run the "
              "import again.", file=sys.stderr)
        sys.exit(1)
    except Exception as exc:  # the database: missing, or its schema not made
        from sqlalchemy.exc import SQLAlchemyError

        if not isinstance(exc, SQLAlchemyError):
            raise
        print(f"error: the database cannot be used ({type(exc).__name__}); run `ehc db "
              "upgrade` and check EHC_DATABASE_URL, then run the import again. Plans already "
              "started are kept; a re-run starts only the rest.", file=sys.stderr)
        sys.exit(1)
    finally:
        progress.close()
    print_result(result)
    if not result.ok:
        sys.exit(1)


def _cmd_import_example(args: argparse.Namespace) -> None:
    from services.plan_example import example_plans

    sys.stdout.write(example_plans(args.today or today_in_england()))


def add_commands(sub: argparse._SubParsersAction) -> None:
    imp = sub.add_parser("import", help="bring in existing EHC plans from a CSV file "
                         "(docs/import.md)")
    i_sub = imp.add_subparsers(dest="import_command", required=True,
                               parser_class=sub._parser_class)
    plans = i_sub.add_parser(
        "plans", help="import plans: one row per plan; each starts its annual review workflow",
        description="Validate the file, then start each plan's annual review. A file with "
        "errors imports nothing unless --skip-bad-rows. Running it again is safe.")
    plans.add_argument("file", metavar="FILE.csv", help="the plans file (docs/import.md)")
    plans.add_argument("--skip-bad-rows", action="store_true",
                       help="import the valid rows even if other rows have errors")
    plans.add_argument("--dry-run", action="store_true",
                       help="check the file only: import nothing")
    plans.add_argument("--today", type=date_option("--today"),
                       help="check the file as on this date (default: today, London)")
    plans.set_defaults(func=_cmd_import_plans)
    example = i_sub.add_parser(
        "example", help="print the example plans file (docs/examples/plans.csv), dated for "
        "today: ehc import example > plans.csv",
        description="Print the 13 example plans of docs/import.md as they would be written "
        "today: the same year groups, overdue reviews and meetings ahead, moved to today's "
        "dates, so that `ehc import plans` takes them on any day.")
    example.add_argument("--today", type=date_option("--today"),
                         help="date the file for this day (default: today, London)")
    example.set_defaults(func=_cmd_import_example)
