"""The names the system gives cases, review cycles and their workflows: built here and read
here, nowhere else.

- A case reference is the council's own (capitals, digits and hyphens) or a random one,
  ``EHC-XXXX-XXXX`` in Crockford's base 32 (no I, L, O or U, so it survives being read over the
  phone). It never carries personal data: a reference given by a person or a council's file is
  checked against the child it is for (``personal_data_in_reference``: the child's names, date
  of birth, a phone number or an email address) and, where a person types a new one, against
  any date (``date_in_reference``), because it goes into workflow ids, logs and every email to
  outside professionals.
- A review cycle's reference is its plan's, then ``.R`` and the cycle's number
  (``EHC-7QK2-M4TD.R3``); a ``.`` never appears in a plan's reference.
- An assessment's workflow is ``assessment-<reference>``; a plan's annual reviews, every
  cycle of them, are one workflow, ``review-<plan reference>``.

Pure (the standard library only): workflows import it.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from datetime import date

# Crockford's base-32 alphabet: no I, L, O or U.
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# A reference as a council may give it (and as ``new_reference`` makes them): 3 to 20 capital
# letters, digits and hyphens, starting and ending with a letter or digit.
REFERENCE_PATTERN = r"^[A-Z0-9][A-Z0-9-]{1,18}[A-Z0-9]$"
CYCLE_MARK = ".R"
ASSESSMENT_WORKFLOW_PREFIX = "assessment-"
REVIEW_WORKFLOW_PREFIX = "review-"


def is_reference(text: str) -> bool:
    return re.fullmatch(REFERENCE_PATTERN, text) is not None


def new_reference(*, given_name: str | None = None, family_name: str | None = None,
                  date_of_birth: date | None = None) -> str:
    """A new random case reference, ``EHC-XXXX-XXXX`` (40 bits: never reused in practice, and
    a clash is refused by Temporal's workflow-id rule). Given the child, one that happens to
    spell a part of their name (or their birthday) is drawn again."""
    while True:
        body = "".join(secrets.choice(ALPHABET) for _ in range(8))
        reference = f"EHC-{body[:4]}-{body[4:]}"
        if not personal_data_in_reference(reference, given_name=given_name,
                                          family_name=family_name,
                                          date_of_birth=date_of_birth):
            return reference


def review_reference(plan_reference: str, cycle: int) -> str:
    """A review cycle's reference: ``EHC-7QK2-M4TD`` and 3 give ``EHC-7QK2-M4TD.R3``."""
    return f"{plan_reference}{CYCLE_MARK}{cycle}"


def split_cycle(reference: str) -> tuple[str, int] | None:
    """``EHC-X.R2`` -> (``EHC-X``, 2); None for anything that is not a cycle's reference."""
    plan, mark, cycle = reference.rpartition(CYCLE_MARK)
    if not mark or not plan or not cycle.isdecimal():
        return None
    return plan, int(cycle)


def is_review_cycle(reference: str) -> bool:
    return split_cycle(reference) is not None


def assessment_workflow_id(reference: str) -> str:
    return f"{ASSESSMENT_WORKFLOW_PREFIX}{reference}"


def review_workflow_id(plan_reference: str) -> str:
    """A plan's review workflow, which holds every cycle of its reviews in turn."""
    return f"{REVIEW_WORKFLOW_PREFIX}{plan_reference}"


def workflow_id_for(reference: str) -> str:
    """The workflow that holds a case: an assessment's own, or, for a review cycle, its plan's
    review workflow."""
    cycle = split_cycle(reference)
    return review_workflow_id(cycle[0]) if cycle else assessment_workflow_id(reference)


# --- personal data in a reference -----------------------------------------------------------------

_DIGIT_RUN = re.compile(r"\d+(?:[-./ ]\d+)*")
# A UK number as a family or a professional would give it: a landline (01, 02), a
# non-geographic 03 or a mobile (07), or the same after 44; a council's numbering rarely starts
# so (a plan number such as 04785-004127 is not a phone number).
_PHONE = re.compile(r"(?:0|44)[1237]\d{8,9}")


def _plain(text: str) -> str:
    """Upper case, accents dropped (``Zoë`` is ``ZOE``), letters and digits only kept apart."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).upper()


def _digit_runs(reference: str) -> list[str]:
    """Each run of digits, the separators between them (``2014-08-19``) taken out."""
    return [re.sub(r"\D", "", run) for run in _DIGIT_RUN.findall(reference)]


def _is_date(year: int, month: int, day: int) -> bool:
    try:
        date(year, month, day)
    except ValueError:
        return False
    return True


def _birthday_forms(born: date) -> set[str]:
    """The child's date of birth written as digits, every common way of at least 6 digits:
    day-month-year, month-day-year and year-month-day, with 4- or 2-digit years, padded or
    not (``19082014``, ``190814``, ``20140819``, ``140819``, ``1982014``, ``08192014``)."""
    out = set()
    for y in (f"{born.year:04d}", f"{born.year % 100:02d}"):
        for d in {f"{born.day:02d}", str(born.day)}:
            for m in {f"{born.month:02d}", str(born.month)}:
                out |= {d + m + y, m + d + y, y + m + d}
    return {f for f in out if len(f) >= 6}


def personal_data_in_reference(reference: str, *, given_name: str | None = None,
                               family_name: str | None = None,
                               date_of_birth: date | None = None) -> str:
    """What personal data ``reference`` holds, in words ("the child's family name"), or ''.

    - a part of the child's given or family name of 3 letters or more (case and accents
      ignored): a part of 4 or more anywhere in it (``PEMBERTON20140819``), a part of 3 as a
      whole word of it (``EHC-ZOE-1``, not ``ZOEL``);
    - the child's date of birth as digits, in any common order (``_birthday_forms``), with or
      without separators between its parts;
    - a phone number (10 or 11 digits from 0, or from 44) or an email address (an ``@``).
    """
    text = _plain(reference)
    compact = re.sub(r"[^A-Z0-9]", "", text)
    words = set(re.findall(r"[A-Z]+", text))
    for what, name in (("family name", family_name), ("given name", given_name)):
        for part in re.findall(r"[A-Z]+", _plain(name or "")):
            if (len(part) >= 4 and part in compact) or (len(part) == 3 and part in words):
                return f"the child's {what}"
    runs = _digit_runs(reference)
    if date_of_birth is not None:
        forms = _birthday_forms(date_of_birth)
        if any(form in run for run in runs for form in forms):
            return "the child's date of birth"
    if "@" in reference:
        return "an email address"
    if any(_PHONE.fullmatch(run) for run in runs):  # the whole run: not digits within one
        return "a phone number"
    return ""


def date_in_reference(reference: str) -> str:
    """The digits of ``reference`` that read as a date ('' if none): a run of 8 digits that is
    a real date as year-month-day or day-month-year (``20140819``, ``19082014``, years 1900 to
    2099), or of 6 that is one as day-month-year (``190814``); separators between the parts
    do not hide it (``2014-08-19``). A date in a reference is most often someone's birthday."""
    for run in _digit_runs(reference):
        if len(run) == 8:
            y, m, d = int(run[:4]), int(run[4:6]), int(run[6:])
            if 1900 <= y <= 2099 and _is_date(y, m, d):
                return run
            d, m, y = int(run[:2]), int(run[2:4]), int(run[4:])
            if 1900 <= y <= 2099 and _is_date(y, m, d):
                return run
        elif len(run) == 6 and _is_date(2000 + int(run[4:]), int(run[2:4]), int(run[:2])):
            return run
    return ""
