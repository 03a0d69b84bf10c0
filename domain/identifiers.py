"""The names the system gives cases, review cycles and their workflows: built here and read
here, nowhere else.

- A case reference is the council's own (capitals, digits and hyphens) or a random one,
  ``EHC-XXXX-XXXX`` in Crockford's base 32 (no I, L, O or U, so it survives being read over the
  phone). It never carries personal data.
- A review cycle's reference is its plan's, then ``.R`` and the cycle's number
  (``EHC-7QK2-M4TD.R3``); a ``.`` never appears in a plan's reference.
- An assessment's workflow is ``assessment-<reference>``; a plan's annual reviews, every
  cycle of them, are one workflow, ``review-<plan reference>``.

Pure (the standard library only): workflows import it.
"""

from __future__ import annotations

import re
import secrets

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


def new_reference() -> str:
    """A new random case reference, ``EHC-XXXX-XXXX`` (40 bits: never reused in practice, and
    a clash is refused by Temporal's workflow-id rule)."""
    body = "".join(secrets.choice(ALPHABET) for _ in range(8))
    return f"EHC-{body[:4]}-{body[4:]}"


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
