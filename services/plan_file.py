"""The file a council brings its existing EHC plans in with, and its validation.

One CSV row per plan (``docs/import.md`` describes every column). ``validate_file`` reads the
file, checks the header and every row, and returns every problem at once in an
``ImportReport``: the valid rows, the errors (which stop the import), and the warnings (which
do not). It is pure: no database, no Temporal, no clock (``today`` is passed in), so the
``ehc import plans`` command and the API use it alike and the tests need nothing running.

It streams: the file is read a row at a time, never whole, so a large file costs only its
valid rows in memory (and the set of references and children already seen, for duplicates).

Personal data: a child's names, date of birth and the council's person id are kept in
``PlanRow`` for the database alone. They are left out of ``PlanRow``'s repr, and no error or
warning message quotes them (the cell is in ``RowIssue.value``, for the person fixing the file
to see; do not log it). ``plan_reference`` goes into workflow ids, so a reference that holds
the child's name or date of birth is refused.
"""

from __future__ import annotations

import codecs
import csv
import difflib
import io
import os
import re
from dataclasses import dataclass
from datetime import date
from enum import Enum
from pathlib import Path
from typing import IO, Callable

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from domain.identifiers import (
    REFERENCE_PATTERN,
    date_in_reference,
    is_reference,
    personal_data_in_reference,
)
from domain.names import bad_character
from statutory.clock import TransferKind
from statutory.phase import TRANSFERS, NCYear, Phase, SettingType
from statutory.phase import parse_nc_year as parse_year_group
from statutory.phase import parse_setting_type as parse_setting_kind

# --- the columns ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    name: str
    required: bool  # the cell must have a value (every column must be in the header)
    personal: bool  # personal data of the child: database only, never logged or quoted
    meaning: str
    format: str
    example: str


COLUMNS: tuple[Column, ...] = (
    Column("plan_reference", True, False,
           "The council's reference for the plan. Unique in the file; used as the plan's key, "
           "so re-importing the same file changes nothing.",
           "3 to 20 capital letters, digits and hyphens; starts and ends with a letter or "
           "digit; must not contain the child's name or date of birth", "EHC-004127"),
    Column("council_person_id", False, True,
           "The child's id in the council's case management system, to match records later.",
           "free text, up to 50 characters", "P0019283"),
    Column("given_name", True, True, "The child's or young person's given name.",
           "text, up to 100 characters", "Amara"),
    Column("family_name", True, True, "The child's or young person's family name.",
           "text, up to 100 characters", "Okafor"),
    Column("date_of_birth", True, True, "Date of birth. The child must be 0 to 25 today.",
           "YYYY-MM-DD, or DD/MM/YYYY as Excel writes it", "2015-03-14"),
    Column("nc_year", True, False,
           "National curriculum year group this school year. Required for children aged 2 to "
           "18 on the 31 August that started this school year; may be empty otherwise.",
           "N1, N2, R or 1 to 14 (Y6, Year 6 and Reception are accepted); EY for an early "
           "years child whose nursery year is not known", "6"),
    Column("setting_name", True, False,
           "The school, college or other setting named in the plan. If there is none, say "
           "what applies (for example 'Elective home education').",
           "text, up to 200 characters", "Hillside Primary School"),
    Column("setting_type", True, False, "The kind of setting (the list below).",
           "one of the setting types below", "primary"),
    Column("plan_issued_on", True, False,
           "The date the plan was first made (for a plan converted from a statement, the date "
           "of the EHC plan, not of the statement).",
           "a date, on or after 2014-09-01 and not in the future", "2021-06-30"),
    Column("last_review_on", False, False,
           "The date of the last annual review meeting. Empty if there has been no review "
           "yet; the next review is then due a year after plan_issued_on.",
           "a date, not before plan_issued_on and not in the future", "2025-11-20"),
    Column("last_review_stage", False, False,
           "How far the process after the last review meeting has got. Empty means "
           "complete. Without it, a review still in progress would lose its 4-week decision "
           "(Reg 20(10)) and 8-week amended plan (Reg 22(3)) deadlines.",
           "complete, awaiting_decision or amending; empty if there is no last review",
           "amending"),
    Column("amendments_sent_on", False, False,
           "When last_review_stage is amending: the date the proposed amendments were sent "
           "to the family (the 15 days for comments and the 8 weeks for the final amended "
           "plan count from it).",
           "a date, not before last_review_on and not in the future; only with amending",
           "2025-12-12"),
    Column("next_meeting_on", False, False,
           "A review meeting that is already arranged.",
           "a date after last_review_on (or plan_issued_on); today or later", "2026-11-10"),
    Column("next_transfer", False, False,
           "The next phase transfer (Reg 18) and the calendar year it happens in, which sets "
           "its deadline: before 15 February (by 14 February) for school phases, before 31 "
           "March (by 30 March) for secondary to post-16.",
           "FROM->TO YEAR with the phases below, e.g. primary->secondary 2027; empty if none "
           "is due or known", "primary->secondary 2027"),
    Column("caseworker", False, False,
           "Who looks after the plan at the council. Nothing about the child here.",
           "free text, up to 100 characters", "North team - R. Patel"),
    Column("under_five_cycle_months", False, False,
           "For a child under five: how often to review, in months (SEND Code of Practice "
           "9.178 says every 3 to 6 months). Empty means 6.",
           "a whole number from 3 to 6", "4"),
)
COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in COLUMNS)
COLUMN_BY_NAME: dict[str, Column] = {c.name: c for c in COLUMNS}
PERSONAL_COLUMNS: frozenset[str] = frozenset(c.name for c in COLUMNS if c.personal)

# EHC plans exist from 1 September 2014 (Children and Families Act 2014, Part 3).
EHC_PLANS_BEGAN = date(2014, 9, 1)


class LastReviewStage(str, Enum):
    """How far the process after the last review meeting has got."""

    COMPLETE = "complete"  # the LA's decision made and, if amending, the amended plan issued
    AWAITING_DECISION = "awaiting_decision"  # meeting held; decision due in 4 weeks (Reg 20(10))
    AMENDING = "amending"  # amendments proposed; final plan due in 8 weeks (Reg 22(3))


LAST_REVIEW_STAGE_MEANINGS: dict[LastReviewStage, str] = {
    LastReviewStage.COMPLETE: "the LA has notified its decision after the meeting and, if it "
    "decided to amend, the final amended plan has been issued (the same as leaving it empty)",
    LastReviewStage.AWAITING_DECISION: "the meeting has been held and the LA has not yet notified "
    "whether it will maintain, amend or cease the plan (due 4 weeks after the meeting, "
    "Reg 20(10))",
    LastReviewStage.AMENDING: "the LA has sent proposed amendments and the final amended plan has "
    "not yet been issued (due 8 weeks after the amendments were sent, Reg 22(3)); give "
    "amendments_sent_on",
}

# Year groups: statutory.phase.NCYear, as the school census writes them ("EY": an early years
# child whose nursery year is not recorded). Setting types: statutory.phase.SettingType. Phase
# transfers: statutory.phase.TRANSFERS, with these other names for two phases.
_PHASE_ALIASES = {"nursery": "early_years", "college": "post16"}


# --- what comes out ------------------------------------------------------------------------


class PhaseTransfer(BaseModel):
    model_config = ConfigDict(frozen=True)

    from_phase: str
    to_phase: str
    year: int = Field(description="the calendar year of the transfer")

    @property
    def kind(self) -> TransferKind:
        """``school`` (reviewed before 15 February, Reg 18(1)(b)) or ``post16`` (before 31
        March, Reg 18(1)(a)): what ``statutory.phase_transfer_deadline`` takes."""
        return TRANSFERS[(Phase(self.from_phase), Phase(self.to_phase))]

    def __str__(self) -> str:
        return f"{self.from_phase}->{self.to_phase} {self.year}"


class PlanRow(BaseModel):
    """One valid row. Names, date of birth and person id are personal data: they are left out
    of the repr, and belong in the database only."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    line: int = Field(description="the line of the file the row starts on")
    plan_reference: str = Field(pattern=REFERENCE_PATTERN)
    council_person_id: str | None = Field(None, max_length=50, repr=False)
    given_name: str = Field(min_length=1, max_length=100, repr=False)
    family_name: str = Field(min_length=1, max_length=100, repr=False)
    date_of_birth: date = Field(repr=False)
    nc_year: str | None = Field(description="EY, N1, N2, R or 1-14; None if empty")
    setting_name: str = Field(min_length=1, max_length=200)
    setting_type: SettingType
    plan_issued_on: date
    last_review_on: date | None = None
    last_review_stage: LastReviewStage | None = Field(
        None, description="None when there has been no review; otherwise at least complete")
    amendments_sent_on: date | None = None
    next_meeting_on: date | None = None
    next_transfer: PhaseTransfer | None = None
    caseworker: str | None = Field(None, max_length=100)
    under_five_cycle_months: int | None = Field(None, ge=3, le=6)

    @property
    def review_anchor(self) -> date:
        """The date the annual review clock counts from (CFA 2014 s.44(1)): the last review,
        or the plan's issue if it has not been reviewed."""
        return self.last_review_on or self.plan_issued_on


class RowIssue(BaseModel):
    model_config = ConfigDict(frozen=True)

    line: int | None = Field(description="the line of the file; None: the file as a whole")
    column: str | None = None
    value: str | None = Field(None, description="the cell as written (may be personal data: "
                              "show it to the person fixing the file, never log it)")
    message: str

    @property
    def personal(self) -> bool:
        return self.column in PERSONAL_COLUMNS

    def __str__(self) -> str:  # never includes the value
        where = "The file" if self.line is None else f"Line {self.line}"
        if self.column:
            where += f", {self.column}"
        return f"{where}: {self.message}"


class RowError(RowIssue):
    """Stops the import (or, if asked to skip bad rows, that row)."""


class RowWarning(RowIssue):
    """Worth checking; the row is imported."""


class ImportReport(BaseModel):
    rows: list[PlanRow] = Field(description="the valid rows, in file order")
    errors: list[RowError]
    warnings: list[RowWarning]
    total: int = Field(description="data rows in the file (blank lines not counted)")
    encoding: str | None = Field(None, description="utf-8 or cp1252; None if not read")

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def error_lines(self) -> list[int]:
        return sorted({e.line for e in self.errors if e.line is not None})


# --- reading the file ----------------------------------------------------------------------

Source = str | os.PathLike[str] | bytes | IO[bytes]


def validate_file(source: Source, *, today: date) -> ImportReport:
    """Read and validate a plans CSV file.

    ``source`` is a path (``str`` without a line break, or ``os.PathLike``), the file's bytes,
    a seekable binary file object (an upload; it is read from its start and left open), or the
    CSV text itself (a ``str`` holding at least one line break). Bytes are decoded as UTF-8
    (with or without a byte order mark) or, failing that, Windows-1252 (Excel's "CSV (Comma
    delimited)" in the UK). ``today`` is the council's date today (``london_date``).
    """
    if isinstance(source, str) and ("\n" in source or "\r" in source):
        return _validate_text(io.StringIO(source.removeprefix("\ufeff"), newline=""), today,
                              encoding=None)
    if isinstance(source, bytes):
        return _validate_bytes(lambda: _Borrowed(io.BytesIO(source)), today)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            return _file_error(f"There is no file at {path}.")
        return _validate_bytes(lambda: open(path, "rb"), today)
    if hasattr(source, "read") and hasattr(source, "seek"):
        start = source.tell()

        def reopen() -> IO[bytes]:
            source.seek(start)
            return _Borrowed(source)

        return _validate_bytes(reopen, today)
    raise TypeError(f"validate_file takes a path, bytes, a binary file or CSV text, "
                    f"not {type(source).__name__}")


class _Borrowed(io.BufferedIOBase):
    """A binary file we read but must not close (the caller's upload)."""

    def __init__(self, raw: IO[bytes]):
        self._raw = raw

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        return self._raw.read(-1 if size is None else size)

    def read1(self, size: int = -1) -> bytes:
        return self._raw.read(size)

    def readinto(self, b) -> int:  # type: ignore[override]
        data = self._raw.read(len(b))
        b[: len(data)] = data
        return len(data)

    def close(self) -> None:
        pass

    def __exit__(self, *exc) -> None:
        pass


SAVE_AS = ("In Excel choose File > Save As > 'CSV UTF-8 (Comma delimited) (*.csv)'.")


def _validate_bytes(open_binary: Callable[[], IO[bytes]], today: date) -> ImportReport:
    with open_binary() as f:
        head = f.read(4)
    if head.startswith(b"PK\x03\x04"):
        return _file_error("This is an Excel workbook (.xlsx), not a CSV file. " + SAVE_AS)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return _file_error("This file is saved as 'Unicode Text' (UTF-16), not CSV. " + SAVE_AS)
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        return _file_error("This is an old Excel workbook (.xls), not a CSV file. " + SAVE_AS)
    for encoding in ("utf-8-sig", "cp1252"):
        if encoding == "cp1252" and head.startswith(codecs.BOM_UTF8):
            return _file_error("The file starts as UTF-8 but has bytes further on that are not "
                               "UTF-8: parts of it were saved in different ways. " + SAVE_AS)
        with open_binary() as f:
            text = io.TextIOWrapper(f, encoding=encoding, newline="")
            try:
                return _validate_text(text, today,
                                      encoding="utf-8" if encoding == "utf-8-sig" else encoding)
            except UnicodeDecodeError:
                continue  # nothing has been kept: start again with the next encoding
            finally:
                text.detach()
    return _file_error("The file is not UTF-8 or Windows-1252 text, so its names cannot be "
                       "read correctly. " + SAVE_AS)


def _file_error(message: str, encoding: str | None = None) -> ImportReport:
    return ImportReport(rows=[], errors=[RowError(line=None, message=message)], warnings=[],
                        total=0, encoding=encoding)


def _normalise_header(name: str) -> str:
    return re.sub(r"[\s-]+", "_", name.strip().lower())


def _expected() -> str:
    return "The columns are: " + ", ".join(COLUMN_NAMES) + " (see docs/import.md)."


def _check_header(raw: list[str]) -> tuple[list[str | None], list[RowError]]:
    """The column name at each position (None: an empty header cell) and the header errors."""
    errors: list[RowError] = []
    if len(raw) == 1 and (";" in raw[0] or "\t" in raw[0]):
        sep = "semicolons" if ";" in raw[0] else "tabs"
        return [], [RowError(line=1, message=f"The columns are separated by {sep}, not commas. "
                             + SAVE_AS)]
    names: list[str | None] = [_normalise_header(n) or None for n in raw]
    seen: set[str] = set()
    unknown: list[str] = []
    for name in names:
        if name is None:
            continue
        if name in seen:
            errors.append(RowError(line=1, column=name, value=name,
                                   message=f"The column {name} appears more than once; keep "
                                   "one."))
        seen.add(name)
        if name not in COLUMN_BY_NAME:
            unknown.append(name)
    for name in unknown:
        close = difflib.get_close_matches(name, COLUMN_NAMES, n=1, cutoff=0.75)
        hint = f" Did you mean {close[0]}?" if close and close[0] not in seen else ""
        errors.append(RowError(line=1, column=name, value=name,
                               message=f"Unknown column {name}.{hint} Remove it or rename it. "
                               + _expected()))
    missing = [c for c in COLUMN_NAMES if c not in seen]
    if missing:
        errors.append(RowError(
            line=1, message=f"Missing column{'s' if len(missing) > 1 else ''}: "
            f"{', '.join(missing)}. Every column must be in the first line, even one whose "
            "cells are all empty. " + _expected()))
    return names, errors


def _validate_text(text: IO[str], today: date, *, encoding: str | None) -> ImportReport:
    reader = csv.reader(text, strict=False)
    try:
        header = next(reader, None)
        if header is None or not any(c.strip() for c in header):
            return _file_error("The file is empty, or its first line is blank. The first line "
                               "must name the columns. " + _expected(), encoding)
        names, header_errors = _check_header(header)
        if header_errors:
            return ImportReport(rows=[], errors=header_errors, warnings=[], total=0,
                                encoding=encoding)
        v = _RowValidator(names, today)
        line = reader.line_num + 1
        for cells in reader:
            v.row(line, cells)
            line = reader.line_num + 1
    except csv.Error as e:
        return _file_error(f"Line {reader.line_num} cannot be read as CSV ({e}). Check it for "
                           "a stray double quote.", encoding)
    return v.report(encoding)


# --- the cells -----------------------------------------------------------------------------


class _CellError(Exception):
    pass


_ISO = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
_UK = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{2}|\d{4})")
_MIDNIGHT = re.compile(r"(?:T|\s+)00:00(?::00)?$")
DATE_FORMATS = "Write it as YYYY-MM-DD (2016-04-02) or DD/MM/YYYY (02/04/2016)."


def parse_date(text: str) -> date:
    if len(text) == 10 and text[4] == "-" and text[7] == "-" and text.isascii():
        try:
            return date.fromisoformat(text)  # the common case, quickly
        except ValueError:
            pass  # the full checks below say what is wrong
    t = _MIDNIGHT.sub("", text) if len(text) > 10 else text
    if m := _ISO.fullmatch(t):
        y, mo, d = (int(g) for g in m.groups())
    elif m := _UK.fullmatch(t):
        d, mo, y = (int(g) for g in m.groups())
        if len(m.group(3)) == 2:
            raise _CellError("has a two-digit year. Write the year in full: DD/MM/YYYY "
                             "(02/04/2016) or YYYY-MM-DD (2016-04-02).")
    else:
        raise _CellError("is not a date. " + DATE_FORMATS)
    try:
        return date(y, mo, d)
    except ValueError:
        if m.re is _UK and mo > 12 and d <= 12:
            raise _CellError("is not a real date: it looks like month/day order (American). "
                             "Write day/month/year, or YYYY-MM-DD.") from None
        raise _CellError("is not a real date. " + DATE_FORMATS) from None


def parse_nc_year(text: str) -> str:
    """The year group's census code (N1, N2, R, 1-14, EY), however the cell writes it."""
    try:
        return parse_year_group(text).value
    except ValueError:
        raise _CellError("is not a year group. Use N1, N2, R (Reception) or 1 to 14 (Y6 and "
                         "Year 6 are fine), or EY for an early years child whose nursery year "
                         "is not known.") from None


def nc_year_label(index: int) -> str:
    if index < -2:
        return "younger than Nursery 1 (N1)"
    return NCYear.from_index(min(index, 14)).label


def parse_setting_type(text: str) -> SettingType:
    try:
        return parse_setting_kind(text)
    except ValueError:
        raise _CellError("is not a setting type. Use one of: "
                         + ", ".join(s.value for s in SettingType) + ".") from None


def parse_review_stage(text: str) -> LastReviewStage:
    exact = LastReviewStage._value2member_map_.get(text)
    if exact is not None:
        return exact  # type: ignore[return-value]
    key = re.sub(r"[\s-]+", "_", text.strip().lower())
    try:
        return LastReviewStage(key)
    except ValueError:
        raise _CellError("is not a review stage. Use complete, awaiting_decision or amending, "
                         "or leave it empty.") from None


_TRANSFER = re.compile(r"([a-z0-9_ -]+?)\s*(?:->|→|>|\bto\b)\s*([a-z0-9_ -]+?)\s*,?\s*(\d{4})",
                       re.IGNORECASE)


def _phase(word: str) -> str:
    key = re.sub(r"[\s-]+", "_", word.strip().lower()).replace("post_16", "post16")
    key = _PHASE_ALIASES.get(key, key)
    for suffix in ("_school", "_education"):  # "primary school", "post-16 education"
        if key.endswith(suffix) and key != "school":
            key = _PHASE_ALIASES.get(key[: -len(suffix)], key[: -len(suffix)])
    return key


def parse_transfer(text: str) -> PhaseTransfer:
    m = _TRANSFER.fullmatch(text.strip())
    if not m:
        raise _CellError("is not a phase transfer. Write FROM->TO YEAR, for example "
                         "'primary->secondary 2027', or leave it empty.")
    src, dst, year = _phase(m.group(1)), _phase(m.group(2)), int(m.group(3))
    if src == "post16" and dst == "post16":
        raise _CellError("is a move between post-16 institutions: its review is due 5 months "
                         "before the move date (Reg 18(2)), which this column cannot hold. "
                         "Leave it empty and add the move to the plan after the import.")
    if (src, dst) not in {(a.value, b.value) for a, b in TRANSFERS}:
        pairs = ", ".join(f"{a.value}->{b.value}" for a, b in TRANSFERS)
        raise _CellError(f"is not a phase transfer in the regulations (Reg 2). Use one of: "
                         f"{pairs}.")
    return PhaseTransfer(from_phase=src, to_phase=dst, year=year)


def age_on(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def expected_nc_index(born: date, today: date) -> int:
    """Year group by age: Year N for a child aged N+4 on the 31 August that started this
    school year (Reception at 4, N2 at 3, N1 at 2)."""
    start = today.year if (today.month, today.day) >= (9, 1) else today.year - 1
    return age_on(born, date(start, 8, 31)) - 4


# --- the rows ------------------------------------------------------------------------------

_WHAT = {
    "given_name": "the child's given name", "family_name": "the child's family name",
    "date_of_birth": "the child's date of birth", "setting_name": "the setting named in the "
    "plan, or what applies if there is none (for example 'Elective home education')",
    "setting_type": "the kind of setting", "plan_issued_on": "the date the plan was made",
}
_NAME_COLUMNS = frozenset({"given_name", "family_name", "caseworker"})  # one line each
_LENGTHS = {"council_person_id": 50, "given_name": 100, "family_name": 100,
            "setting_name": 200, "caseworker": 100}


class _RowValidator:
    def __init__(self, names: list[str | None], today: date):
        self.names = names
        self.width = len(names)
        self.index = {n: i for i, n in enumerate(names) if n is not None}
        self.blank_positions = [i for i, n in enumerate(names) if n is None]
        self.today = today
        self.rows: list[PlanRow] = []
        self.errors: list[RowError] = []
        self.warnings: list[RowWarning] = []
        self.total = 0
        self.ref_lines: dict[str, int] = {}
        self.duplicated_refs: set[str] = set()
        self.child_lines: dict[tuple[str, str, date], int] = {}
        self.person_lines: dict[str, int] = {}

    # errors and warnings for the current row
    def _err(self, line: int, column: str | None, value: str | None, message: str) -> None:
        self.errors.append(RowError(line=line, column=column, value=value, message=message))
        self._row_ok = False

    def _warn(self, line: int, column: str | None, value: str | None, message: str) -> None:
        self.warnings.append(RowWarning(line=line, column=column, value=value, message=message))

    @staticmethod
    def _name(column: str, value: str) -> str:
        """How a message names the cell: with its value, unless that is personal data."""
        return column if column in PERSONAL_COLUMNS else f"{column} '{value}'"

    def row(self, line: int, cells: list[str]) -> None:
        if not any(c.strip() for c in cells):
            return  # a blank line, or a row of empty cells that Excel left behind
        self.total += 1
        self._row_ok = True
        if len(cells) != self.width:
            # Strict, because a comma left out of quotes shifts every later cell one column
            # to the right; when the last cell is empty, only the count shows it.
            self._err(line, None, None,
                      f"This line has {len(cells)} values but the first line names "
                      f"{self.width} columns. A value with a comma in it must be inside "
                      "double quotes, and every line needs a cell for every column.")
            return
        for i in self.blank_positions:
            if cells[i].strip():
                self._err(line, None, cells[i],
                          f"Column {i + 1} has a value but no name in the first line. Name the "
                          "column or empty it.")
        cell = {name: cells[i].strip() for name, i in self.index.items()}
        out: dict[str, object] = {}

        def parse(column: str, fn, required: bool = False):
            text = cell[column]
            if not text:
                if required:
                    self._err(line, column, text, f"{column} is empty. It is required: give "
                              f"{_WHAT[column]}.")
                return None
            try:
                return fn(text)
            except _CellError as e:
                self._err(line, column, text, f"{self._name(column, text)} {e}")
                return None

        def text_cell(column: str, required: bool) -> str | None:
            text = cell[column]
            if not text:
                if required:
                    self._err(line, column, text, f"{column} is empty. It is required: give "
                              f"{_WHAT[column]}.")
                return None
            if column in _NAME_COLUMNS and bad_character(text) is not None:
                self._err(line, column, text, f"{column} has a line break, a tab or a hidden "
                          "control character in it. Put the value on one line, typed rather "
                          "than pasted.")
                return None
            limit = _LENGTHS[column]
            if len(text) > limit:
                self._err(line, column, text, f"{column} is {len(text)} characters long; the "
                          f"most is {limit}.")
                return None
            return text

        # plan_reference
        ref = cell["plan_reference"]
        ref_ok = False
        if not ref:
            self._err(line, "plan_reference", ref, "plan_reference is empty; every plan needs "
                      "the council's reference.")
        elif not is_reference(ref):
            hint = " Use capital letters." if re.fullmatch(r"[A-Za-z0-9-]{3,20}", ref) else ""
            self._err(line, "plan_reference", ref,
                      f"plan_reference '{ref}' is not a valid reference.{hint} A reference is "
                      "3 to 20 capital letters, digits and hyphens, and starts and ends with a "
                      "letter or digit, e.g. EHC-004127.")
        else:
            ref_ok = True
            first = self.ref_lines.get(ref)
            if first is not None:
                self.duplicated_refs.add(ref)
                self._err(line, "plan_reference", ref,
                          f"plan_reference '{ref}' is also on line {first}. Each plan must be "
                          f"on one line only: remove one of lines {first} and {line}, or "
                          "correct its reference. Neither line is imported until then.")
            else:
                self.ref_lines[ref] = line

        out["council_person_id"] = text_cell("council_person_id", False)
        given = out["given_name"] = text_cell("given_name", True)
        family = out["family_name"] = text_cell("family_name", True)
        born = out["date_of_birth"] = parse("date_of_birth", parse_date, True)
        nc = out["nc_year"] = parse("nc_year", parse_nc_year)
        out["setting_name"] = text_cell("setting_name", True)
        out["setting_type"] = parse("setting_type", parse_setting_type, True)
        issued = out["plan_issued_on"] = parse("plan_issued_on", parse_date, True)
        reviewed = out["last_review_on"] = parse("last_review_on", parse_date)
        stage = out["last_review_stage"] = parse("last_review_stage", parse_review_stage)
        sent = out["amendments_sent_on"] = parse("amendments_sent_on", parse_date)
        meeting = out["next_meeting_on"] = parse("next_meeting_on", parse_date)
        transfer = out["next_transfer"] = parse("next_transfer", parse_transfer)
        out["caseworker"] = text_cell("caseworker", False)
        months_text = cell["under_five_cycle_months"]
        months = None
        if months_text:
            if months_text.isdecimal() and 3 <= int(months_text) <= 6:
                months = int(months_text)
            else:
                self._err(line, "under_five_cycle_months", months_text,
                          f"under_five_cycle_months '{months_text}' must be a whole number "
                          "from 3 to 6, or empty (6).")
        out["under_five_cycle_months"] = months

        today = self.today
        # date of birth: 0 to 25 today
        if born is not None:
            if born > today:
                self._err(line, "date_of_birth", cell["date_of_birth"],
                          "date_of_birth is in the future. Check the date, and that it is "
                          "day/month/year.")
                born = None
            else:
                age = age_on(born, today)
                if age > 25:
                    self._err(line, "date_of_birth", cell["date_of_birth"],
                              f"date_of_birth makes the young person {age} today. EHC plans "
                              "are for ages 0 to 25, and none continues past the 26th "
                              "birthday: check the date, or leave this plan out.")
                    born = None
                elif age == 25:
                    self._warn(line, "date_of_birth", cell["date_of_birth"],
                               "The young person is 25. A plan can continue after the 25th "
                               "birthday only to the end of that academic year (CFA 2014 "
                               "s.46): check it is still maintained.")

        # plan_issued_on: after birth, not in the future, not before EHC plans existed
        if issued is not None:
            column, value = "plan_issued_on", cell["plan_issued_on"]
            if issued > today:
                self._err(line, column, value, f"plan_issued_on '{value}' is in the future. "
                          "Give the date the plan was made.")
                issued = None
            elif issued < EHC_PLANS_BEGAN:
                self._err(line, column, value, f"plan_issued_on '{value}' is before EHC plans "
                          "began (1 September 2014). For a plan converted from a statement, "
                          "give the date the EHC plan was issued.")
                issued = None
            elif born is not None and issued <= born:
                self._err(line, column, value, f"plan_issued_on '{value}' is not after the "
                          "date of birth. Check both dates.")
                issued = None

        # last review, and where it has got to
        if reviewed is not None:
            column, value = "last_review_on", cell["last_review_on"]
            if reviewed > today:
                self._err(line, column, value, f"last_review_on '{value}' is in the future. "
                          "It is the last meeting held; put a meeting that is arranged in "
                          "next_meeting_on.")
                reviewed = None
            elif issued is not None and reviewed < issued:
                self._err(line, column, value, f"last_review_on '{value}' is before "
                          f"plan_issued_on ({issued.isoformat()}). A review comes after the "
                          "plan is made: check both dates.")
                reviewed = None
        if stage is not None and not cell["last_review_on"]:
            self._err(line, "last_review_stage", cell["last_review_stage"],
                      "last_review_stage is given but last_review_on is empty. Give the date "
                      "of the last review meeting, or empty last_review_stage.")
        elif reviewed is not None and stage is None:
            out["last_review_stage"] = LastReviewStage.COMPLETE
        if stage is LastReviewStage.AMENDING and not cell["amendments_sent_on"]:
            self._err(line, "amendments_sent_on", "",
                      "amendments_sent_on is empty, but last_review_stage is amending. Give "
                      "the date the proposed amendments were sent to the family.")
        stage_unreadable = bool(cell["last_review_stage"]) and stage is None
        if cell["amendments_sent_on"] and stage is not LastReviewStage.AMENDING \
                and not stage_unreadable:
            self._err(line, "amendments_sent_on", cell["amendments_sent_on"],
                      "amendments_sent_on is only for a review whose last_review_stage is "
                      "amending. Set last_review_stage to amending, or empty this cell.")
        if sent is not None and stage is LastReviewStage.AMENDING:
            value = cell["amendments_sent_on"]
            if sent > today:
                self._err(line, "amendments_sent_on", value, f"amendments_sent_on '{value}' "
                          "is in the future. Give the date they were sent.")
            elif reviewed is not None and sent < reviewed:
                self._err(line, "amendments_sent_on", value, f"amendments_sent_on '{value}' is "
                          f"before last_review_on ({reviewed.isoformat()}). Amendments follow "
                          "the review meeting: check both dates.")

        # the next meeting: arranged, so not in the past
        if meeting is not None:
            value = cell["next_meeting_on"]
            anchor = reviewed or issued
            if meeting < today:
                self._err(line, "next_meeting_on", value, f"next_meeting_on '{value}' is in "
                          "the past. If the meeting was held, put its date in last_review_on "
                          "(and set last_review_stage); if it was not, empty this cell.")
            elif anchor is not None and meeting <= anchor:
                which = "last_review_on" if reviewed is not None else "plan_issued_on"
                self._err(line, "next_meeting_on", value, f"next_meeting_on '{value}' is not "
                          f"after {which} ({anchor.isoformat()}). Check both dates.")

        # phase transfer: this year or later
        if transfer is not None and not (today.year <= transfer.year <= today.year + 20):
            value = cell["next_transfer"]
            when = "has passed" if transfer.year < today.year else "is too far ahead"
            self._err(line, "next_transfer", value, f"next_transfer '{value}': the year "
                      f"{transfer.year} {when}. Give the calendar year of the next transfer, "
                      "or empty the cell if there is none.")

        # national curriculum year, against the age
        if born is not None:
            expected = expected_nc_index(born, today)
            by_age = min(expected, 14)  # there is no year group after Year 14
            if nc is None and not cell["nc_year"] and -2 <= expected <= 14:
                self._err(line, "nc_year", "", "nc_year is empty; it is required for a child "
                          f"of this age (by age, {nc_year_label(expected)}). Give the year "
                          "group the child is taught in.")
            elif nc is not None and (abs(NCYear(nc).index - by_age) > 1 if nc != "EY"
                                     else by_age >= 0):
                self._warn(line, "nc_year", cell["nc_year"],
                           f"nc_year '{cell['nc_year']}' is more than a year away from the "
                           f"year group for the child's age ({nc_year_label(by_age)}). That "
                           "can be right for a child taught out of year group; check it if "
                           "not.")
            if months is not None and age_on(born, today) >= 5:
                self._warn(line, "under_five_cycle_months", months_text,
                           "under_five_cycle_months is for children under five; this child is "
                           "five or over, so it is ignored.")

        # personal data in the reference, or in the caseworker cell
        if ref_ok and family is not None and given is not None:
            found = personal_data_in_reference(ref, given_name=given, family_name=family,
                                               date_of_birth=born)
            if found:
                self._err(line, "plan_reference", ref,
                          f"plan_reference '{ref}' contains {found}. References go into "
                          "workflow ids, logs and emails to professionals, which must hold no "
                          "personal data: use the council's plan number.")
            elif date_in_reference(ref):
                self._warn(line, "plan_reference", ref,
                           f"plan_reference '{ref}' has digits that read as a date. If that "
                           "is anyone's date of birth, use the council's plan number instead: "
                           "references go into workflow ids, logs and emails.")
        caseworker = out["caseworker"]
        if caseworker and given and family and len(given) >= 2 and len(family) >= 2:
            low = caseworker.casefold()
            if given.casefold() in low and family.casefold() in low:
                self._warn(line, "caseworker", caseworker,
                           "caseworker seems to contain the child's name. This column is for "
                           "the council's caseworker or team only.")

        # the same child twice
        if given and family and born is not None:
            key = (given.casefold(), family.casefold(), born)
            pid = out["council_person_id"]
            first = self.child_lines.get(key)
            first_pid = self.person_lines.get(pid) if pid else None  # type: ignore[arg-type]
            if first is not None or first_pid is not None:
                other = first if first is not None else first_pid
                how = ("name and date of birth" if first is not None
                       else "council_person_id")
                self._warn(line, "council_person_id" if first is None else None, None,
                           f"The same child ({how}) as on line {other}. A child has one EHC "
                           "plan: check these are not two copies of the same plan.")
            self.child_lines.setdefault(key, line)
            if pid:
                self.person_lines.setdefault(pid, line)  # type: ignore[arg-type]
        elif out["council_person_id"]:
            pid = out["council_person_id"]
            first_pid = self.person_lines.get(pid)  # type: ignore[arg-type]
            if first_pid is not None:
                self._warn(line, "council_person_id", None,
                           f"The same child (council_person_id) as on line {first_pid}. A child "
                           "has one EHC plan: check these are not two copies of the same plan.")
            self.person_lines.setdefault(pid, line)  # type: ignore[arg-type]

        if self._row_ok:
            try:
                self.rows.append(PlanRow(line=line, plan_reference=ref, **out))
            except ValidationError as e:  # pragma: no cover - the checks above come first
                self._err(line, None, None, "This line could not be read: "
                          + "; ".join(str(x["msg"]) for x in e.errors()))

    def report(self, encoding: str | None) -> ImportReport:
        rows = self.rows
        if self.duplicated_refs:
            rows = [r for r in rows if r.plan_reference not in self.duplicated_refs]
        return ImportReport(rows=rows, errors=self.errors, warnings=self.warnings,
                            total=self.total, encoding=encoding)
