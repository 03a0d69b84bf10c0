"""Phase transfers: which plans change phase of education, and when (Reg 2(1); Reg 18).

A council knows a child's national curriculum year and the kind of setting the child attends.
From those two facts and today's date, ``next_transfer`` works out the child's next "transfer
between phases of education" (Reg 2(1)), the day of the move, the calendar year of the
transfer, and the Reg 18(1) date by which the plan must be reviewed and amended. The dates
themselves come from the rule table (``statutory.rules``) through ``statutory.clock``; this
module only decides which rule applies to which child, and from which year.

Pure and deterministic, standard library only: a workflow passes in ``workflow.now()``'s
London date as ``today``.

The law (abbreviations as in ``statutory.rules``; "EA 1996" is the Education Act 1996):

- Reg 2(1) defines a "transfer between phases of education" as a transfer from (a) relevant
  early years education to school; (b) infant school to junior school; (c) primary school to
  middle school; (d) primary school to secondary school; (e) middle school to secondary
  school; or (f) secondary school to a post-16 institution. An infant school and a junior school
  are primary schools (Reg 2(1)), and so is a first school; a "post-16 institution" is not a
  school (CFA 2014 s.83(2)).
- Reg 18(1): where a child or young person is within 12 months of such a transfer, the plan
  must be reviewed and, where necessary, amended to name the new setting, before 31 March of
  the calendar year of the transfer for secondary school to a post-16 institution (Reg
  18(1)(a)) and before 15 February of that year in any other case (Reg 18(1)(b)). CoP 9.179
  gives the same end dates and the reason for them: time for the new setting to plan and
  commission provision ("by 15 February", a paraphrase that does not change the Regulations).
  The rule table in ``statutory.rules`` gives the last day on time: 14 February (30 March for
  post-16); a review finished on the named day itself is late.
- Reg 18(2): a move from one post-16 institution to another at any other time needs the review
  at least 5 months before the move. That is not a transfer between phases: ``next_transfer``
  returns ``None`` for a young person at a post-16 institution, and ``post16_move_deadline``
  gives the Reg 18(2) date once a move is proposed.

Conventions this module adopts (each is a decision, documented here and in the tests):

1. **The academic year runs from 1 September to 31 August**, and a phase transfer happens on
   1 September, the nominal start of the school year (EA 1996 s.579(1): the school year begins
   with the first term to begin after July). ``nc_year`` is the year group the child is in on
   ``today``: a record that has not yet been moved on to the new year group on 1 September
   gives a transfer one year late.
2. **Entering reception is always the early years to school transfer (Reg 2(1)(a))**, even from
   a nursery class of the same school. Reg 2(1)(a) names the kind of education the child leaves
   ("relevant early years education"), not a kind of institution, and every child applies for a
   reception place; counting it is the safe side (a review that was not strictly needed is
   lawful, a missed one is not).
3. **Staying in the same school is not a transfer between the school phases (b)-(e).** Reg 2(1)
   lists moves from one kind of school to another; a child who stays in an all-through school
   or an all-age special school from Year 6 to Year 7 does not change school, so nothing has to
   be named and ``next_transfer`` looks past that point.
4. **Year 11 to Year 12 is the secondary to post-16 transfer (Reg 2(1)(f), Reg 18(1)(a), 31
   March) for every young person in a school, by default even where the school has a sixth
   form.** Strictly, staying on in a school's sixth form is not a transfer to a post-16
   institution (a school is not one, CFA 2014 s.83(2)); but Year 11 is when every young
   person's post-16 place is decided, the plan must name it (Reg 18(1); CoP 9.179), and until
   the review has settled it the young person may be going to a college. When the council knows
   the young person is staying in the same school's sixth form, pass
   ``stays_in_sixth_form=True``: then Year 11 is not a transfer.
5. **Leaving a school after Year 11** (the end of a sixth form, or of an all-age or secondary
   special school at 19) is counted as a secondary school to post-16 institution transfer
   (Reg 2(1)(f), 31 March), because if the young person goes on to a college that is what it
   is. If they leave education instead, the plan ceases (CFA 2014 s.45; Regs 29-31) and the
   transfer never happens; ``Transfer.note`` says so. A young person at a post-16 institution
   has no phase transfer left (Reg 18(2) governs any move), and nothing is counted after Year
   14 except a school leaver's move to a post-16 institution.
6. **All-age special schools have no phase transfer until post-16** (conventions 3 and 4),
   unless the council says otherwise with ``final_year``: for a special school that takes
   children only to Year 6, or a child who the council knows will leave the special school at
   the end of Year 6, ``final_year="Y6"`` makes the end of Year 6 a primary to secondary school
   transfer (Reg 2(1)(d)).
7. **A child whose year group is not known** ("EY", a younger early years child) has no
   computable transfer: ``next_transfer`` raises ``ValueError`` saying to record N1 or N2.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import date
from enum import Enum

from statutory.clock import Deadline, TransferKind, deadline, phase_transfer_deadline
from statutory.rules import add_months

# --- national curriculum years ------------------------------------------------------------


class NCYear(Enum):
    """A national curriculum year group in England, with the codes of the school census
    (``NCyearActual``): N1 and N2 are the two nursery years (N2 is the year before reception),
    R is reception, 1-11 are compulsory school years, 12-14 are post-16 years (Year 14 is the
    year in which a young person turns 19). ``EY`` is an early years child whose nursery year
    is not recorded (for example a two-year-old at a childminder's)."""

    EY = "EY"
    N1 = "N1"
    N2 = "N2"
    R = "R"
    Y1 = "1"
    Y2 = "2"
    Y3 = "3"
    Y4 = "4"
    Y5 = "5"
    Y6 = "6"
    Y7 = "7"
    Y8 = "8"
    Y9 = "9"
    Y10 = "10"
    Y11 = "11"
    Y12 = "12"
    Y13 = "13"
    Y14 = "14"

    @property
    def index(self) -> int | None:
        """Years counted from reception (N1 -2, N2 -1, R 0, Year n n); None for EY."""
        return _INDEX.get(self)

    @property
    def label(self) -> str:
        if self is NCYear.EY:
            return "early years"
        if self is NCYear.R:
            return "Reception"
        if self in (NCYear.N1, NCYear.N2):
            return f"Nursery {self.value[1]} ({self.value})"
        return f"Year {self.value}"

    @classmethod
    def from_index(cls, index: int) -> NCYear:
        try:
            return _BY_INDEX[index]
        except KeyError:
            raise ValueError(f"no national curriculum year {index} (N1 is -2, Year 14 is 14)")

    def __str__(self) -> str:
        return self.value


_INDEX: dict[NCYear, int] = {
    NCYear.N1: -2, NCYear.N2: -1, NCYear.R: 0,
    **{NCYear(str(n)): n for n in range(1, 15)},
}
_BY_INDEX: dict[int, NCYear] = {i: y for y, i in _INDEX.items()}

_NC_HELP = (
    "write N1 or N2 (nursery), EY (early years, nursery year not known), R (reception), or a "
    "year from 1 to 14, e.g. 'Y6', 'Year 6' or 6"
)


def parse_nc_year(value: NCYear | int | str) -> NCYear:
    """A national curriculum year from what a record holds: an ``NCYear``, an int from 1 to 14,
    or a string such as "Y6", "6", "Year 6", "R", "Reception", "N2" or "EY" (any case).

    Reception must be written "R": 0 and negative numbers are refused, because systems differ
    on whether 0 means reception and -1 nursery."""
    if isinstance(value, NCYear):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"{value!r} is not a national curriculum year: {_NC_HELP}")
    if isinstance(value, int):
        if 1 <= value <= 14:
            return NCYear(str(value))
        raise ValueError(f"{value} is not a national curriculum year: {_NC_HELP}")
    text = re.sub(r"[\s_-]+", "", value.strip().upper())
    if text in ("R", "REC", "RECEPTION", "YR", "YEARR"):
        return NCYear.R
    if text in ("EY", "EARLYYEARS"):
        return NCYear.EY
    if text in ("N1", "NURSERY1"):
        return NCYear.N1
    if text in ("N2", "NURSERY2"):
        return NCYear.N2
    if text == "X":
        raise ValueError(
            "'X' (not following the national curriculum) does not say when the child changes "
            f"phase: give the year group the child is taught in; {_NC_HELP}"
        )
    m = re.fullmatch(r"(?:Y|YR|YEAR)?(\d{1,2})", text)
    if m and 1 <= int(m.group(1)) <= 14:
        return NCYear(str(int(m.group(1))))
    raise ValueError(f"{value!r} is not a national curriculum year: {_NC_HELP}")


# --- settings -----------------------------------------------------------------------------


class Phase(str, Enum):
    """The phases Reg 2(1) moves between, named as councils name them. ``SCHOOL`` is where an
    early years child goes (Reg 2(1)(a): "to school"), into reception."""

    EARLY_YEARS = "early_years"
    SCHOOL = "school"
    INFANT = "infant"
    JUNIOR = "junior"
    PRIMARY = "primary"
    FIRST = "first"
    MIDDLE = "middle"
    SECONDARY = "secondary"
    POST16 = "post16"


# The transfers between phases of education that Reg 2(1) defines, by the phases as councils
# name them, with the Reg 18(1) deadline each takes ("school": before 15 February, so by 14
# February; "post16": before 31 March, so by 30 March).
# A first school is a primary school in law, and a junior school the end of one. What
# ``next_transfer`` works out is always one of these; the plans import accepts these only.
TRANSFERS: dict[tuple[Phase, Phase], TransferKind] = {
    (Phase.EARLY_YEARS, Phase.SCHOOL): "school",  # (a)
    (Phase.EARLY_YEARS, Phase.INFANT): "school",
    (Phase.EARLY_YEARS, Phase.PRIMARY): "school",
    (Phase.EARLY_YEARS, Phase.FIRST): "school",
    (Phase.INFANT, Phase.JUNIOR): "school",  # (b)
    (Phase.PRIMARY, Phase.MIDDLE): "school",  # (c)
    (Phase.FIRST, Phase.MIDDLE): "school",
    (Phase.PRIMARY, Phase.SECONDARY): "school",  # (d)
    (Phase.JUNIOR, Phase.SECONDARY): "school",
    (Phase.MIDDLE, Phase.SECONDARY): "school",  # (e)
    (Phase.SECONDARY, Phase.POST16): "post16",  # (f)
}


class SettingType(str, Enum):
    """The kind of setting a child attends, by the year groups it teaches. See ``SETTINGS``
    for each one's years and where its children go next."""

    EARLY_YEARS = "early_years"
    INFANT = "infant"
    JUNIOR = "junior"
    PRIMARY = "primary"
    FIRST = "first"
    MIDDLE = "middle"
    SECONDARY = "secondary"
    SECONDARY_WITH_SIXTH_FORM = "secondary_with_sixth_form"
    ALL_THROUGH = "all_through"
    SPECIAL = "special"
    SPECIAL_SECONDARY = "special_secondary"
    POST16 = "post16"
    OTHER = "other"

    @property
    def info(self) -> SettingInfo:
        return SETTINGS[self]


@dataclass(frozen=True)
class SettingInfo:
    label: str  # what it is, in a few plain words (the import's list, the pages)
    description: str
    first_year: NCYear  # the youngest year group it may teach (a nursery class included)
    final_year: NCYear  # its usual last year group
    final_years: frozenset[NCYear]  # the last years ``final_year=`` may give instead
    # The transfer at the end of its school-age phase when that ends before Year 11:
    leaves_as: Phase | None = None
    moves_to: Phase | None = None
    reg2: str = ""  # the limb of Reg 2(1)'s definition


_Y = NCYear
SETTINGS: dict[SettingType, SettingInfo] = {
    SettingType.EARLY_YEARS: SettingInfo(
        "nursery, pre-school, childminder or other early years provider (before Reception)",
        "Early years provider: maintained nursery school, day nursery, pre-school or "
        "childminder (N1-N2). Its children go to school, into reception (Reg 2(1)(a)).",
        _Y.N1, _Y.N2, frozenset({_Y.N2}),
    ),
    SettingType.INFANT: SettingInfo(
        "infant school: Reception to Year 2",
        "Infant school (R-Y2, 4-7, with or without a nursery class). Year 2 goes to a junior "
        "school (Reg 2(1)(b)).",
        _Y.N1, _Y.Y2, frozenset({_Y.Y2}), Phase.INFANT, Phase.JUNIOR, "(b)",
    ),
    SettingType.JUNIOR: SettingInfo(
        "junior school: Years 3 to 6",
        "Junior school (Y3-Y6, 7-11). A junior school is a primary school (Reg 2(1)), so Year "
        "6 going to secondary school is Reg 2(1)(d).",
        _Y.Y3, _Y.Y6, frozenset({_Y.Y6}), Phase.JUNIOR, Phase.SECONDARY, "(d)",
    ),
    SettingType.PRIMARY: SettingInfo(
        "primary school: Reception to Year 6",
        "Primary school (R-Y6, 4-11, with or without a nursery class). Year 6 goes to "
        "secondary school (Reg 2(1)(d)).",
        _Y.N1, _Y.Y6, frozenset({_Y.Y6}), Phase.PRIMARY, Phase.SECONDARY, "(d)",
    ),
    SettingType.FIRST: SettingInfo(
        "first school in a three-tier area: Reception to Year 4 (or 3)",
        "First school in a three-tier area (R-Y4, 4-9; a 5-8 first school ends at Y3: "
        "final_year='Y3'). A first school is a primary school, so the move to middle school is "
        "Reg 2(1)(c).",
        _Y.N1, _Y.Y4, frozenset({_Y.Y3, _Y.Y4}), Phase.FIRST, Phase.MIDDLE, "(c)",
    ),
    SettingType.MIDDLE: SettingInfo(
        "middle school in a three-tier area: Years 5 to 8 (or 4 to 7)",
        "Middle school in a three-tier area (Y5-Y8, 9-13; an 8-12 middle school is Y4-Y7: "
        "final_year='Y7'). Its last year goes to secondary (upper or high) school "
        "(Reg 2(1)(e)).",
        _Y.Y4, _Y.Y8, frozenset({_Y.Y7, _Y.Y8}), Phase.MIDDLE, Phase.SECONDARY, "(e)",
    ),
    SettingType.SECONDARY: SettingInfo(
        "secondary school without a sixth form: Years 7 to 11",
        "Secondary school without a sixth form (Y7-Y11, 11-16; also a 13-16 upper school). "
        "Year 11 goes on to post-16 education (Reg 2(1)(f)).",
        _Y.Y7, _Y.Y11, frozenset({_Y.Y11}),
    ),
    SettingType.SECONDARY_WITH_SIXTH_FORM: SettingInfo(
        "secondary school with a sixth form: Years 7 to 13",
        "Secondary school with a sixth form (Y7-Y13, 11-18; also a 13-18 upper or high school; "
        "one that keeps young people to 19 ends at Y14). Year 11 is the post-16 transfer "
        "unless stays_in_sixth_form=True; leaving the sixth form for a college is Reg 2(1)(f).",
        _Y.Y7, _Y.Y13, frozenset({_Y.Y13, _Y.Y14}),
    ),
    SettingType.ALL_THROUGH: SettingInfo(
        "all-through school: Reception (or nursery) to Year 11 or 13",
        "All-through school (R-Y13, 4-18, with or without a nursery class; a 4-16 one ends at "
        "Y11: final_year='Y11'). Year 6 to Year 7 is not a transfer (the child stays in the "
        "same school); Year 11 is, as in a secondary school.",
        _Y.N1, _Y.Y13, frozenset({_Y.Y11, _Y.Y13}),
    ),
    SettingType.SPECIAL: SettingInfo(
        "special school for all ages (or of any age range not listed here)",
        "All-age special school (N1-Y14, 2-19). No phase transfer until post-16 unless the "
        "council says otherwise with final_year: 'Y6' for a special school that ends at Year 6 "
        "(or a child who will leave then; Reg 2(1)(d)), 'Y11' or 'Y13' for one that ends there.",
        _Y.N1, _Y.Y14, frozenset({_Y.Y6, _Y.Y11, _Y.Y13, _Y.Y14}),
        Phase.PRIMARY, Phase.SECONDARY, "(d)",
    ),
    SettingType.SPECIAL_SECONDARY: SettingInfo(
        "special school for secondary ages: Years 7 to 11, 13 or 14",
        "Special school for secondary ages (Y7-Y14, 11-19; an 11-16 one ends at Y11, an 11-18 "
        "one at Y13). Year 11 is the post-16 transfer unless stays_in_sixth_form=True.",
        _Y.Y7, _Y.Y14, frozenset({_Y.Y11, _Y.Y13, _Y.Y14}),
    ),
    SettingType.POST16: SettingInfo(
        "further education or sixth form college, specialist post-16 institution, "
        "apprenticeship or supported internship",
        "Post-16 institution (Y12-Y14): FE college, sixth-form college, 16-19 academy, special "
        "post-16 institution. No phase transfer: a move to another post-16 institution is Reg "
        "18(2) (post16_move_deadline).",
        _Y.Y12, _Y.Y14, frozenset({_Y.Y14}),
    ),
    SettingType.OTHER: SettingInfo(
        "anything else: alternative provision, hospital education, education otherwise than "
        "at school, elective home education, no current setting",
        "Not at a school, college or early years setting of a kind above (N1-Y14). The next "
        "transfer is the one a child of this year group makes between phases (Reg 2(1)(a), "
        "(d) or (f)): the plan must name where the child goes next whatever their education "
        "now, the safe side. None from Year 12.",
        _Y.N1, _Y.Y14, frozenset({_Y.Y14}),
    ),
}
if set(SETTINGS) != set(SettingType):  # pragma: no cover - guards the table itself
    raise RuntimeError("every SettingType needs a row in SETTINGS")

_SETTING_HELP = "use one of: " + ", ".join(t.value for t in SettingType)


def parse_setting_type(value: SettingType | str) -> SettingType:
    """A setting type from its name, in any case, with spaces or hyphens for underscores
    ("All-through", "secondary with sixth form", "post-16")."""
    if isinstance(value, SettingType):
        return value
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a setting type: {_SETTING_HELP}")
    text = re.sub(r"[\s-]+", "_", value.strip().lower())
    text = text.replace("post_16", "post16")
    try:
        return SettingType(text)
    except ValueError:
        raise ValueError(f"{value!r} is not a setting type: {_SETTING_HELP}") from None


# Calendar years a phase transfer can be recorded for: EHC plans began in September 2014.
FIRST_TRANSFER_YEAR, LAST_TRANSFER_YEAR = 2014, 2100


# --- the academic year --------------------------------------------------------------------


def academic_year(today: date) -> int:
    """The calendar year in which the academic year containing ``today`` began (1 September to
    31 August): 2026 for any day from 1 September 2026 to 31 August 2027."""
    return today.year if today.month >= 9 else today.year - 1


# --- transfers ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Transfer:
    """A child's next transfer between phases of education (Reg 2(1)).

    ``from_year`` is the last year group before the move, ``move_date`` the day of the move (1
    September), ``transfer_year`` the calendar year of the transfer (Reg 18(1)), and
    ``deadline`` the date by which the plan must be reviewed and amended (Reg 18(1)(a) or (b)).
    ``citation`` names the limb of Reg 2(1) and the paragraph of Reg 18(1); ``note`` says what
    the transfer rests on where this module made a choice (see the module's conventions)."""

    kind: TransferKind
    from_phase: Phase
    to_phase: Phase
    from_year: NCYear
    move_date: date
    transfer_year: int
    deadline: Deadline
    citation: str
    note: str = ""

    def as_json(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "from_phase": self.from_phase.value,
            "to_phase": self.to_phase.value,
            "from_year": self.from_year.value,
            "move_date": self.move_date.isoformat(),
            "transfer_year": self.transfer_year,
            "review_window_opens": review_window_opens(self).isoformat(),
            "deadline": self.deadline.as_json(),
            "citation": self.citation,
            "note": self.note,
        }


_LEAVER_NOTE = (
    "Counted as a transfer to a post-16 institution (Reg 2(1)(f)) in case the young person goes "
    "on to a college; if they leave education the plan ceases instead (CFA 2014 s.45; Regs "
    "29-31)."
)
_SIXTH_FORM_NOTE = (
    "The school has a sixth form: staying on in it is not strictly a transfer to a post-16 "
    "institution (CFA 2014 s.83(2)), but Year 11 is counted as the post-16 transfer until the "
    "council records that the young person stays (stays_in_sixth_form=True)."
)
_NURSERY_CLASS_NOTE = (
    "Entering reception from the school's own nursery class is counted as the early years to "
    "school transfer (Reg 2(1)(a)), the safe side."
)
_NOT_AT_SCHOOL_NOTE = (
    "Not at a school or early years setting of a known kind: counted as the move a child of "
    "this year group makes between phases, the safe side (the plan must name where the child "
    "goes next)."
)


def next_transfer(
    nc_year: NCYear | int | str,
    setting_type: SettingType | str,
    today: date,
    *,
    stays_in_sixth_form: bool = False,
    final_year: NCYear | int | str | None = None,
) -> Transfer | None:
    """The child's next transfer between phases of education (Reg 2(1)), from the year group
    the child is in on ``today`` and the kind of setting the child attends; ``None`` when there
    is none (a young person at a post-16 institution: use ``post16_move_deadline`` for a move).

    ``stays_in_sixth_form``: the council knows the young person stays in the same school's
    sixth form after Year 11, so Year 11 is not a transfer (convention 4 of this module).
    ``final_year``: the last year group the child will have in this setting where it is not the
    setting type's usual one (a 5-8 first school, an 8-12 middle school, a 4-16 all-through
    school, a special school the child leaves at the end of Year 6); see ``SETTINGS``.

    Raises ``ValueError`` with what to write when the year group is not one this setting
    teaches, is "EY", or a parameter does not fit the setting.
    """
    year = parse_nc_year(nc_year)
    setting = parse_setting_type(setting_type)
    info = setting.info
    last = info.final_year if final_year is None else parse_nc_year(final_year)
    if last not in info.final_years:
        allowed = ", ".join(y.label for y in sorted(info.final_years, key=_INDEX.__getitem__))
        raise ValueError(
            f"a {setting.value} setting cannot end at {last.label}: final_year may be {allowed}"
        )
    if year is NCYear.EY:
        raise ValueError(
            "'EY' does not say when the child starts school: record the nursery year, N1 or N2 "
            "(N2 is the year before reception); a child younger than N1 is more than 12 months "
            "from the transfer to school"
        )
    idx, last_idx = _INDEX[year], _INDEX[last]
    if not _INDEX[info.first_year] <= idx <= last_idx:
        raise ValueError(
            f"a {setting.value} setting teaches {info.first_year.label} to {last.label}, not "
            f"{year.label}: check the year group and the setting type"
            + (", or give final_year if this setting's age range is different"
               if idx > last_idx else "")
        )
    if setting is SettingType.OTHER:
        return _not_at_school(year, today, final_year=final_year,
                              stays_in_sixth_form=stays_in_sixth_form)
    has_sixth_form = last_idx >= 12
    if stays_in_sixth_form and not has_sixth_form:
        raise ValueError(
            f"a {setting.value} setting that ends at {last.label} has no sixth form to stay in: "
            "leave stays_in_sixth_form unset"
        )
    if setting is SettingType.POST16:
        return None

    kind: TransferKind = "school"
    note = ""
    if idx <= _INDEX[NCYear.N2]:
        # Reg 2(1)(a): early years education to school, into reception (convention 2).
        end, from_phase, to_phase, limb = NCYear.N2, Phase.EARLY_YEARS, Phase.SCHOOL, "(a)"
        if setting is not SettingType.EARLY_YEARS:
            note = _NURSERY_CLASS_NOTE
    elif last_idx < 11:
        # The school's own phase ends before Year 11: infant, junior, primary, first, middle,
        # or a special school that ends at Year 6. Reg 2(1)(b)-(e).
        assert info.leaves_as is not None and info.moves_to is not None
        end, from_phase, to_phase, limb = last, info.leaves_as, info.moves_to, info.reg2
    else:
        # Secondary ages: Year 11 to post-16 (convention 4), or leaving the school after it
        # (convention 5). Reg 2(1)(f).
        kind, from_phase, to_phase, limb = "post16", Phase.SECONDARY, Phase.POST16, "(f)"
        if idx <= 11 and not stays_in_sixth_form:
            end = NCYear.Y11
            note = _SIXTH_FORM_NOTE if has_sixth_form else ""
        else:
            end = last
            note = _LEAVER_NOTE
    move = transfer_move_date(academic_year(today) + (_INDEX[end] - idx) + 1)
    return Transfer(
        kind=kind,
        from_phase=from_phase,
        to_phase=to_phase,
        from_year=end,
        move_date=move,
        transfer_year=move.year,
        deadline=phase_transfer_deadline(kind, move.year),
        citation=f"Reg 2(1){limb}; Reg 18(1)({'a' if kind == 'post16' else 'b'})",
        note=note,
    )


def _not_at_school(year: NCYear, today: date, *, final_year: NCYear | int | str | None,
                   stays_in_sixth_form: bool) -> Transfer | None:
    """``SettingType.OTHER`` (alternative provision, hospital education, education otherwise
    than at school, none): the transfer a child of this year group makes in the common shape
    of schooling, early years to Reception, Year 6 to Year 7, Year 11 to post-16; none from
    Year 12 (a move to a post-16 institution is then added on the plan by hand)."""
    if stays_in_sixth_form:
        raise ValueError("a child not at a school has no sixth form to stay in: leave "
                         "stays_in_sixth_form unset")
    if final_year is not None and parse_nc_year(final_year) is not NCYear.Y14:
        raise ValueError("final_year describes a school's age range; a child not at a school "
                         "has none: leave it unset")
    idx = _INDEX[year]
    if idx >= 12:
        return None
    stand_in = (SettingType.EARLY_YEARS if idx <= _INDEX[NCYear.N2] else
                SettingType.PRIMARY if idx <= 6 else SettingType.SECONDARY)
    found = next_transfer(year, stand_in, today)
    assert found is not None
    return replace(found, note=_NOT_AT_SCHOOL_NOTE)


def transfer_move_date(transfer_year: int) -> date:
    """The day a phase transfer happens: the start of the academic year, taken as 1 September
    (the same convention as ``academic_year``)."""
    return date(transfer_year, 9, 1)


def transfer_window_opens(transfer_year: int) -> date:
    """The first day on which the child is "within 12 months of" a transfer in
    ``transfer_year`` (Reg 18(1)): 12 calendar months before the move, the first day of the
    child's last year before it. A review meeting from this day on is the phase transfer
    review; one before it is not."""
    return add_months(transfer_move_date(transfer_year), -12)


def review_window_opens(transfer: Transfer) -> date:
    """``transfer_window_opens`` for a worked-out transfer."""
    return add_months(transfer.move_date, -12)


def within_transfer_review_window(transfer: Transfer, today: date) -> bool:
    """Whether on ``today`` the child is within 12 months of the transfer (Reg 18(1)), the
    condition for the phase transfer review: from 12 months before the move (inclusive, the
    safe side) up to the day before the move."""
    return review_window_opens(transfer) <= today < transfer.move_date


def post16_move_deadline(move_date: date) -> Deadline:
    """The review before a move from one post-16 institution to another at any time other than
    a phase transfer: at least 5 months before the move (Reg 18(2)). Months that lack the day
    clamp to the month's end, the safe side (31 July -> 28 or 29 February)."""
    return deadline("review.post16_move_due", move_date)


# Select lists in the vocabulary of the plans import, in words (the final-plan step's form, the
# placement form, the plan page): (value, label).
SETTING_TYPE_CHOICES: list[tuple[str, str]] = [
    (t.value, t.info.label[:1].upper() + t.info.label[1:]) for t in SettingType]
NC_YEAR_CHOICES: list[tuple[str, str]] = [(y.value, y.label) for y in NCYear if y is not NCYear.EY]
