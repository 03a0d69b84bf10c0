"""The statutory timescales of EHC needs assessments, annual reviews and phase transfers.

``rules`` is the table (one row per legal rule, with its citation); ``clock`` applies it;
``phase`` works out which plans transfer phase and when.
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
from statutory.phase import (
    SETTINGS,
    TRANSFERS,
    NCYear,
    Phase,
    SettingType,
    Transfer,
    academic_year,
    next_transfer,
    parse_nc_year,
    parse_setting_type,
    post16_move_deadline,
    review_window_opens,
    transfer_move_date,
    transfer_window_opens,
    within_transfer_review_window,
)
from statutory.rules import RULES, Actor, ExceptionKind, Rule

__all__ = [
    "RULES",
    "SETTINGS",
    "TRANSFERS",
    "Deadline",
    "ExceptionKind",
    "NCYear",
    "Phase",
    "Rule",
    "Actor",
    "SettingType",
    "Status",
    "Transfer",
    "academic_year",
    "assessment_timescales",
    "days_overdue",
    "excusing_exceptions",
    "london_date",
    "london_midnight",
    "london_time",
    "next_transfer",
    "parse_nc_year",
    "parse_setting_type",
    "phase_transfer_deadline",
    "post16_move_deadline",
    "review_timescales",
    "review_window_opens",
    "transfer_move_date",
    "transfer_window_opens",
    "status_on",
    "within_transfer_review_window",
]
