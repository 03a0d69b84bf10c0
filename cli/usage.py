"""What every ``ehc`` command shares: bad input is one line and exit status 2."""

from __future__ import annotations

import argparse
import re
from datetime import date
from typing import Callable, NoReturn


class UsageError(Exception):
    """Bad input: printed as one line, exit status 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, not argparse's usage dump
        raise UsageError(f"{self.prog}: {message} (see --help)")


# Dates of living cases: anything outside this range is a typing mistake.
YEARS = range(1950, 2200)


def date_option(option: str) -> Callable[[str], date]:
    """The parser of a YYYY-MM-DD option, whose error names the option and says what to
    write (every ``ehc`` command's dates)."""

    def parse(text: str) -> date:
        try:
            if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
                raise ValueError
            value = date.fromisoformat(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{option} {text!r} is not a date: write it as YYYY-MM-DD, e.g. 2026-03-09"
            ) from None
        if value.year not in YEARS:
            raise argparse.ArgumentTypeError(
                f"{option} {text} is out of range: use a year from {YEARS.start} to "
                f"{YEARS.stop - 1}"
            )
        return value

    return parse
