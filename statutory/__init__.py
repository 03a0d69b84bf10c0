"""The statutory timescales of EHC needs assessments, annual reviews and phase transfers.

``rules`` is the table (one row per legal rule, with its citation); ``clock`` applies it.
Pure: safe to import inside Temporal workflows.
"""

from statutory.clock import (
    Deadline,
    Status,
    assessment_timescales,
    days_overdue,
    excusing_exceptions,
    london_date,
    london_midnight,
    london_time,
    phase_transfer_deadline,
    review_timescales,
    status_on,
)
from statutory.rules import RULES, ExceptionKind, Rule

__all__ = [
    "RULES",
    "Deadline",
    "ExceptionKind",
    "Rule",
    "Status",
    "assessment_timescales",
    "days_overdue",
    "excusing_exceptions",
    "london_date",
    "london_midnight",
    "london_time",
    "phase_transfer_deadline",
    "review_timescales",
    "status_on",
]
