"""The statutory rules, as data.

Every deadline the product shows comes from a row of ``RULES``: the rule's name, the event
that starts it (its *trigger*), the offset from that event, and the regulation that makes it
law. Nothing here does I/O or reads a clock, so workflows import it freely.

Counting follows the regulations: "N weeks" is N x 7 calendar days and "15 days" is 15
calendar days from the trigger date; no limit uses working days
(shared/domain/statutory-timescales.md).

Abbreviations in citations: "CFA 2014" is the Children and Families Act 2014; "Reg" is the
Special Educational Needs and Disability Regulations 2014 (SI 2014/1530); "CoP" is the SEND
Code of Practice: 0 to 25 years (2015).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import Enum


# --- offsets ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Days:
    """A number of calendar days after (positive) or before (negative) the trigger date."""

    n: int

    def apply(self, trigger: date) -> date:
        return trigger + timedelta(days=self.n)

    def describe(self) -> str:
        return f"{abs(self.n)} days {'after' if self.n >= 0 else 'before'}"


@dataclass(frozen=True)
class Weeks:
    """N weeks, counted as N x 7 calendar days (negative: before the trigger)."""

    n: int

    def apply(self, trigger: date) -> date:
        return trigger + timedelta(days=7 * self.n)

    def describe(self) -> str:
        return f"{abs(self.n)} weeks {'after' if self.n >= 0 else 'before'}"


def add_months(d: date, months: int) -> date:
    """Calendar months from ``d``; a day that does not exist in the target month becomes that
    month's last day (31 July - 5 months is 28 or 29 February, never 3 March), which always
    falls on the safe side of a limit."""
    index = d.year * 12 + (d.month - 1) + months
    year, month0 = divmod(index, 12)
    month = month0 + 1
    return date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


@dataclass(frozen=True)
class Months:
    """N calendar months after (positive) or before (negative) the trigger date."""

    n: int

    def apply(self, trigger: date) -> date:
        return add_months(trigger, self.n)

    def describe(self) -> str:
        return f"{abs(self.n)} months {'after' if self.n >= 0 else 'before'}"


@dataclass(frozen=True)
class Anniversary:
    """The same day one year on. A plan made on 29 February is due for review by 28 February,
    the last day inside its 12-month period (CFA 2014 s.44(1))."""

    def apply(self, trigger: date) -> date:
        return add_months(trigger, 12)

    def describe(self) -> str:
        return "on the anniversary of"


@dataclass(frozen=True)
class FixedDateInYear:
    """A fixed day of the calendar year given as the trigger (a year number, not a date)."""

    month: int
    day: int

    def apply(self, trigger: int) -> date:
        return date(trigger, self.month, self.day)

    def describe(self) -> str:
        return f"{self.day} {calendar.month_name[self.month]} of"


Offset = Days | Weeks | Months | Anniversary | FixedDateInYear


# --- exceptions ---------------------------------------------------------------------------


class ExceptionKind(str, Enum):
    """Circumstances in which a time limit need not be met. They excuse a deadline; they never
    move it."""

    # Reg 10(4), applied to the decision by Reg 5(4) and to the final plan by Reg 13(3).
    SCHOOL_CLOSURE = "reg10_4_a"
    EARLY_YEARS_CLOSURE = "reg10_4_b"
    PERSONAL_CIRCUMSTANCES = "reg10_4_c"
    ABSENT_FROM_AREA = "reg10_4_d"
    # Reg 8(2): the advisor's six weeks.
    ADVICE_EXCEPTIONAL_CIRCUMSTANCES = "reg8_2_a"
    ADVICE_ABSENT_FROM_AREA = "reg8_2_b"
    ADVICE_MISSED_APPOINTMENT = "reg8_2_c"

    @property
    def citation(self) -> str:
        return EXCEPTION_INFO[self][1]

    @property
    def description(self) -> str:
        return EXCEPTION_INFO[self][0]

    @property
    def applies_to_advice(self) -> bool:
        """Reg 8(2) exceptions excuse one piece of advice; Reg 10(4) ones excuse the LA."""
        return self.value.startswith("reg8_2")


EXCEPTION_INFO: dict[ExceptionKind, tuple[str, str]] = {
    ExceptionKind.SCHOOL_CLOSURE: (
        "Advice was requested from a school or college head in the period from one week before "
        "a closure of at least 4 continuous weeks to one week before it reopened",
        "Reg 10(4)(a)",
    ),
    ExceptionKind.EARLY_YEARS_CLOSURE: (
        "Advice was requested from an early years provider in the period from one week before "
        "a closure of at least 4 continuous weeks to one week before it reopened",
        "Reg 10(4)(b)",
    ),
    ExceptionKind.PERSONAL_CIRCUMSTANCES: (
        "Exceptional personal circumstances affect the child, the parent or the young person",
        "Reg 10(4)(c)",
    ),
    ExceptionKind.ABSENT_FROM_AREA: (
        "The child, the parent or the young person is absent from the area for at least 4 "
        "continuous weeks",
        "Reg 10(4)(d)",
    ),
    ExceptionKind.ADVICE_EXCEPTIONAL_CIRCUMSTANCES: (
        "Exceptional circumstances affect the child, the parent or the young person",
        "Reg 8(2)(a)",
    ),
    ExceptionKind.ADVICE_ABSENT_FROM_AREA: (
        "The child, the parent or the young person is absent from the area for at least 4 "
        "continuous weeks",
        "Reg 8(2)(b)",
    ),
    ExceptionKind.ADVICE_MISSED_APPOINTMENT: (
        "The child or young person missed an appointment for an examination or test made by "
        "the advisor within the six weeks",
        "Reg 8(2)(c)",
    ),
}

LA_EXCEPTIONS = frozenset(k for k in ExceptionKind if not k.applies_to_advice)
ADVICE_EXCEPTIONS = frozenset(k for k in ExceptionKind if k.applies_to_advice)


# --- the rules ----------------------------------------------------------------------------


class Trigger(str, Enum):
    """The event whose date starts a rule's clock."""

    REQUEST_RECEIVED = "request_date"
    ADVICE_REQUESTED = "advice_requested"
    DRAFT_SERVED = "draft_served"
    SETTING_CONSULTED = "setting_consulted"
    DECISION_TO_REASSESS = "decision_to_reassess"
    LAST_REVIEW = "last_review_or_plan_issued"
    MEETING = "meeting_date"
    AMENDMENTS_SENT = "amendments_sent"
    TRANSFER_YEAR = "transfer_year"
    POST16_MOVE = "post16_move_date"


class Actor(str, Enum):
    """Who must act for a deadline to be met (the "who acts" column of the law's tables)."""

    LA = "la"  # the local authority: its SEND team
    ADVISOR = "advisor"  # whoever the advice was asked of (Reg 8(1))
    SETTING = "setting"  # the school or college: consulted (s.39), or arranging a review
    FAMILY = "family"  # a period the family has to comment: theirs to use, never "late"


@dataclass(frozen=True)
class Rule:
    id: str  # unique, namespaced: "assessment.final_plan_due"
    key: str  # the name the deadline goes by in output: "final_plan_due"
    title: str
    trigger: Trigger
    offset: Offset
    citation: str
    statutory: bool = True  # False for a local target or guidance
    excusable_by: frozenset[ExceptionKind] = field(default_factory=frozenset)
    note: str = ""
    acts: Actor = Actor.LA

    def due(self, trigger_value: date | int, offset: Offset | None = None) -> date:
        """The due date for this rule's trigger. ``offset`` replaces the table's offset where
        the rule is a configurable local target (``statutory`` is False)."""
        if offset is not None and self.statutory:
            raise ValueError(f"{self.id} is set by law; its offset cannot be configured")
        return (offset or self.offset).apply(trigger_value)  # type: ignore[arg-type]


_RULES: tuple[Rule, ...] = (
    # 1. EHC needs assessment (Regs 3-14)
    Rule(
        "assessment.decision_due", "decision_due", "Decision whether to assess",
        Trigger.REQUEST_RECEIVED, Weeks(6), "Reg 5(1)",
        excusable_by=LA_EXCEPTIONS,
        note="Exceptions: Reg 10(4)(a)-(d) as applied by Reg 5(4). A refusal notice must give "
        "appeal rights (Reg 5(3)).",
    ),
    Rule(
        "assessment.advice_due", "advice_due", "Advice due from the advisor",
        Trigger.ADVICE_REQUESTED, Weeks(6), "Reg 8(1)",
        excusable_by=ADVICE_EXCEPTIONS, acts=Actor.ADVISOR,
        note="Six weeks from the date the advisor received the request. Exceptions: Reg 8(2).",
    ),
    Rule(
        "assessment.no_plan_notice_due", "no_plan_notice_due",
        "Notice of a decision not to issue a plan",
        Trigger.REQUEST_RECEIVED, Weeks(16), "Reg 10(1)",
        excusable_by=LA_EXCEPTIONS,
        note="Applies only when the LA decides not to issue a plan. Exceptions: Reg 10(4).",
    ),
    Rule(
        "assessment.draft_plan_target", "draft_plan_target", "Draft plan served (local target)",
        Trigger.REQUEST_RECEIVED, Weeks(16),
        "Local target: leaves the family's 15 days (Reg 13(1)) before week 20 (Reg 13(2))",
        statutory=False, excusable_by=LA_EXCEPTIONS,
    ),
    Rule(
        "assessment.draft_comments_due", "draft_comments_due",
        "Family's comments on the draft plan",
        Trigger.DRAFT_SERVED, Days(15), "Reg 13(1)", acts=Actor.FAMILY,
        note="At least 15 days from service of the draft; the final plan cannot be issued "
        "before then unless the family has responded.",
    ),
    Rule(
        "assessment.setting_response_due", "setting_response_due",
        "School or college's response to consultation",
        Trigger.SETTING_CONSULTED, Days(15), "CFA 2014 ss.39-40; CoP 9.83",
        acts=Actor.SETTING,
    ),
    Rule(
        "assessment.final_plan_due", "final_plan_due", "Final EHC plan issued",
        Trigger.REQUEST_RECEIVED, Weeks(20), "Reg 13(2)",
        excusable_by=LA_EXCEPTIONS,
        note="Exceptions: Reg 10(4)(a)-(d) as applied by Reg 13(3).",
    ),
    Rule(
        "assessment.reassessment_final_due", "reassessment_final_due",
        "Final plan after a re-assessment",
        Trigger.DECISION_TO_REASSESS, Weeks(14), "Reg 27(2)",
    ),
    # 2. Annual review (CFA 2014 s.44; Regs 18-22)
    Rule(
        "review.review_due", "review_due", "Annual review completed",
        Trigger.LAST_REVIEW, Anniversary(), "CFA 2014 s.44(1)",
        note="Within each 12-month period from the plan or the last review; the anniversary "
        "is the due date.",
    ),
    Rule(
        "review.under_five_review_due", "under_five_review_due",
        "Review for a child under five (guidance)",
        Trigger.LAST_REVIEW, Months(6), "CoP 9.178",
        statutory=False,
        note="Guidance: consider a review every 3 to 6 months; the period is configurable.",
    ),
    Rule(
        "review.invitations_due", "invitations_due", "Invitations to the review meeting sent",
        Trigger.MEETING, Weeks(-2), "Reg 20(1)-(3)", acts=Actor.SETTING,
        note="At least two weeks' notice of the meeting, from the setting that arranges it "
        "(the LA where there is none, Reg 21).",
    ),
    Rule(
        "review.advice_circulated_due", "advice_circulated_due",
        "Advice and reports circulated",
        Trigger.MEETING, Weeks(-2), "Reg 20(4)", acts=Actor.SETTING,
    ),
    Rule(
        "review.report_due", "report_due", "Review report sent",
        Trigger.MEETING, Weeks(2), "Reg 20(7)-(8)", acts=Actor.SETTING,
    ),
    Rule(
        "review.decision_due", "decision_due", "LA's decision to maintain, amend or cease",
        Trigger.MEETING, Weeks(4), "Reg 20(10)",
        note="An amend decision carries the proposed amendments (R (L, M, P) v Devon CC "
        "[2022] EWHC 493).",
    ),
    Rule(
        "review.amendment_comments_due", "amendment_comments_due",
        "Family's comments on proposed amendments",
        Trigger.AMENDMENTS_SENT, Days(15), "Reg 22(2)", acts=Actor.FAMILY,
    ),
    Rule(
        "review.final_amended_plan_due", "final_amended_plan_due", "Final amended plan issued",
        Trigger.AMENDMENTS_SENT, Weeks(8), "Reg 22(3)",
    ),
    # 3. Phase transfer (Reg 18)
    Rule(
        "review.phase_transfer_due.school", "phase_transfer_due",
        "Phase transfer review and amended plan (school phases)",
        Trigger.TRANSFER_YEAR, FixedDateInYear(2, 14), "Reg 18(1)(b)",
        note="The Regulations say \"before 15 February\" of the calendar year of the transfer: "
        "14 February is the last day on time, and a review finished on 15 February is late "
        "(CoP 9.179's \"by 15 February\" does not change the Regulations).",
    ),
    Rule(
        "review.phase_transfer_due.post16", "phase_transfer_due",
        "Phase transfer review and amended plan (secondary to post-16)",
        Trigger.TRANSFER_YEAR, FixedDateInYear(3, 30), "Reg 18(1)(a)",
        note="The Regulations say \"before 31 March\" of the calendar year of the transfer: "
        "30 March is the last day on time, and a review finished on 31 March is late.",
    ),
    Rule(
        "review.post16_move_due", "post16_move_due",
        "Review before a post-16 to post-16 move",
        Trigger.POST16_MOVE, Months(-5), "Reg 18(2)",
        note="At least five months before the move.",
    ),
)

RULES: dict[str, Rule] = {rule.id: rule for rule in _RULES}
if len(RULES) != len(_RULES):  # pragma: no cover - guards the table itself
    raise RuntimeError("duplicate rule id in statutory.rules")


# --- notices: decisions the law says must be sent with the family's rights ------------------


@dataclass(frozen=True)
class Notice:
    kind: str  # the letter's template: templates/letters/<kind>.txt.j2
    title: str
    citation: str  # what the law says the notice must contain


NOTICES: dict[str, Notice] = {n.kind: n for n in (
    # Reg 5(3): a decision not to assess is notified with the right to appeal, the time
    # limits, mediation, disagreement resolution and information and advice services.
    Notice("refusal_to_assess", "Notice of a decision not to assess", "Reg 5(3)"),
    # Reg 10(1)-(3): a decision not to issue a plan, with the same rights, also sent to the
    # health commissioner and the school or college.
    Notice("no_plan_notice", "Notice of a decision not to issue a plan", "Reg 10(1)-(3)"),
)}
