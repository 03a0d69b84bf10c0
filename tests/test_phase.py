"""Phase transfers (Reg 2(1); Reg 18): which plans transfer phase and when.

Hand-worked examples first (each row worked out from the regulation and the calendar, not
from the code), then the properties that must hold for every child, setting and day. The
conventions tested here are set out in ``statutory/phase.py``'s docstring.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import assume, given, strategies as st

from statutory import (
    SETTINGS,
    NCYear,
    Phase,
    SettingType,
    TRANSFERS,
    academic_year,
    next_transfer,
    parse_nc_year,
    parse_setting_type,
    phase_transfer_deadline,
    post16_move_deadline,
    review_window_opens,
    within_transfer_review_window,
)

S = SettingType

# --- hand-worked examples ------------------------------------------------------------------
#
# (year group, setting, today, keyword arguments) ->
#   (from phase, to phase, last year before the move, move date, deadline, citation)
# The move is 1 September of the academic year after the child's last year in the phase; the
# deadline is the last day before 15 February (Reg 18(1)(b)) or before 31 March (Reg
# 18(1)(a)) of the calendar year of the move: 14 February or 30 March, since the Regulations
# say "before" (a review finished on the named day is late).

# The citation of each limb of Reg 2(1) with the paragraph of Reg 18(1) that dates it.
A = "Reg 2(1)(a); Reg 18(1)(b)"
B = "Reg 2(1)(b); Reg 18(1)(b)"
C = "Reg 2(1)(c); Reg 18(1)(b)"
D = "Reg 2(1)(d); Reg 18(1)(b)"
E = "Reg 2(1)(e); Reg 18(1)(b)"
F = "Reg 2(1)(f); Reg 18(1)(a)"

HAND_WORKED = [
    # Year 6 at a primary school, read on several days of 2026/27: all move on 1 September
    # 2027, plan amended before 15 February 2027, so by 14 February (Reg 2(1)(d); Reg 18(1)(b)).
    ("Y6", "primary", date(2026, 9, 1), {},
     ("primary", "secondary", "6", date(2027, 9, 1), date(2027, 2, 14), D)),
    ("Y6", "primary", date(2026, 10, 1), {},
     ("primary", "secondary", "6", date(2027, 9, 1), date(2027, 2, 14), D)),
    ("Y6", "primary", date(2027, 2, 16), {},
     ("primary", "secondary", "6", date(2027, 9, 1), date(2027, 2, 14), D)),
    ("Y6", "primary", date(2027, 8, 20), {},
     ("primary", "secondary", "6", date(2027, 9, 1), date(2027, 2, 14), D)),
    # 31 August is still 2026/27; on 1 September a record that says Year 6 is 2027/28's Year 6
    ("Y6", "primary", date(2027, 8, 31), {},
     ("primary", "secondary", "6", date(2027, 9, 1), date(2027, 2, 14), D)),
    ("Y6", "primary", date(2027, 9, 1), {},
     ("primary", "secondary", "6", date(2028, 9, 1), date(2028, 2, 14), D)),
    # Year 5 in 2026/27 is Year 6 in 2027/28: moves 1 September 2028
    (5, "primary", date(2026, 10, 1), {},
     ("primary", "secondary", "6", date(2028, 9, 1), date(2028, 2, 14), D)),
    # Year 3 (2026/27): Year 6 in 2029/30, moves 1 September 2030
    ("3", "primary", date(2026, 10, 1), {},
     ("primary", "secondary", "6", date(2030, 9, 1), date(2030, 2, 14), D)),
    # Year 6 at a junior school: a junior school is a primary school (Reg 2(1)), so (d)
    ("Y6", "junior", date(2026, 12, 1), {},
     ("junior", "secondary", "6", date(2027, 9, 1), date(2027, 2, 14), D)),
    # Year 11 at an 11-16 secondary: post-16 on 1 September 2027, before 31 March 2027, so by 30 March (Reg 18(1)(a))
    ("Y11", "secondary", date(2026, 11, 15), {},
     ("secondary", "post16", "11", date(2027, 9, 1), date(2027, 3, 30), F)),
    # Year 9 in 2026/27 (read in July 2027): Year 11 in 2028/29, moves 1 September 2029
    ("Year 9", "secondary", date(2027, 7, 1), {},
     ("secondary", "post16", "11", date(2029, 9, 1), date(2029, 3, 30), F)),
    # Nursery (N2) to reception: before 15 February of the year the child starts school (Reg 2(1)(a))
    ("N2", "early_years", date(2027, 1, 10), {},
     ("early_years", "school", "N2", date(2027, 9, 1), date(2027, 2, 14), A)),
    ("N1", "early_years", date(2026, 10, 1), {},
     ("early_years", "school", "N2", date(2028, 9, 1), date(2028, 2, 14), A)),
    # ... and from a primary school's own nursery class (convention 2)
    ("N2", "primary", date(2026, 10, 1), {},
     ("early_years", "school", "N2", date(2027, 9, 1), date(2027, 2, 14), A)),
    # Reception at a primary school is past that: next is Year 6 -> 7, six years on
    ("R", "primary", date(2026, 10, 1), {},
     ("primary", "secondary", "6", date(2033, 9, 1), date(2033, 2, 14), D)),
    # Year 2 at an infant school -> junior school (Reg 2(1)(b))
    ("Y2", "infant", date(2026, 10, 1), {},
     ("infant", "junior", "2", date(2027, 9, 1), date(2027, 2, 14), B)),
    # Three-tier: first school Year 4 -> middle (Reg 2(1)(c)); middle Year 8 -> upper (2(1)(e))
    ("Y4", "first", date(2026, 10, 1), {},
     ("first", "middle", "4", date(2027, 9, 1), date(2027, 2, 14), C)),
    ("Y8", "middle", date(2026, 10, 1), {},
     ("middle", "secondary", "8", date(2027, 9, 1), date(2027, 2, 14), E)),
    ("Y5", "middle", date(2026, 10, 1), {},
     ("middle", "secondary", "8", date(2030, 9, 1), date(2030, 2, 14), E)),
    # an 8-12 middle school ends at Year 7; a 5-8 first school at Year 3
    ("Y7", "middle", date(2026, 10, 1), {"final_year": "Y7"},
     ("middle", "secondary", "7", date(2027, 9, 1), date(2027, 2, 14), E)),
    ("Y3", "first", date(2026, 10, 1), {"final_year": 3},
     ("first", "middle", "3", date(2027, 9, 1), date(2027, 2, 14), C)),
    # All-through school: no transfer at Year 6 -> 7 (same school), Year 11 -> 12 is post-16
    ("Y6", "all_through", date(2026, 10, 1), {},
     ("secondary", "post16", "11", date(2032, 9, 1), date(2032, 3, 30), F)),
    # Secondary with a sixth form: Year 11 is the post-16 transfer by default (convention 4) ...
    ("Y11", "secondary_with_sixth_form", date(2026, 10, 1), {},
     ("secondary", "post16", "11", date(2027, 9, 1), date(2027, 3, 30), F)),
    # ... unless the council knows the young person stays: then leaving after Year 13
    ("Y11", "secondary_with_sixth_form", date(2026, 10, 1), {"stays_in_sixth_form": True},
     ("secondary", "post16", "13", date(2029, 9, 1), date(2029, 3, 30), F)),
    ("Y12", "secondary_with_sixth_form", date(2026, 10, 1), {},
     ("secondary", "post16", "13", date(2028, 9, 1), date(2028, 3, 30), F)),
    # All-age special school: nothing at Year 6, Year 11 is post-16 (convention 6) ...
    ("Y6", "special", date(2026, 10, 1), {},
     ("secondary", "post16", "11", date(2032, 9, 1), date(2032, 3, 30), F)),
    # ... unless the council says the child leaves at the end of Year 6 (Reg 2(1)(d))
    ("Y6", "special", date(2026, 10, 1), {"final_year": "Y6"},
     ("primary", "secondary", "6", date(2027, 9, 1), date(2027, 2, 14), D)),
    # staying to 19 at a special school, then on to a college (convention 5)
    ("Y14", "special", date(2026, 10, 1), {},
     ("secondary", "post16", "14", date(2027, 9, 1), date(2027, 3, 30), F)),
    ("Y12", "special_secondary", date(2026, 10, 1), {},
     ("secondary", "post16", "14", date(2029, 9, 1), date(2029, 3, 30), F)),
]


@pytest.mark.parametrize("nc, setting, today, kw, expected", HAND_WORKED)
def test_next_transfer_hand_worked(nc, setting, today, kw, expected):
    from_phase, to_phase, from_year, move, due, citation = expected
    t = next_transfer(nc, setting, today, **kw)
    assert t is not None
    assert (t.from_phase.value, t.to_phase.value, t.from_year.value) == \
        (from_phase, to_phase, from_year)
    assert t.move_date == move
    assert t.transfer_year == move.year
    assert t.deadline.due == due
    assert t.citation == citation
    assert t.kind == ("post16" if to_phase == "post16" else "school")
    # the deadline is the table's rule, with its own citation (Reg 18(1)(a) or (b))
    assert t.deadline == phase_transfer_deadline(t.kind, move.year)
    assert t.deadline.citation == citation.split("; ")[1]


def test_notes_say_what_a_transfer_rests_on():
    kw = dict(today=date(2026, 10, 1))
    assert next_transfer("Y11", "secondary", **kw).note == ""
    assert next_transfer("Y6", "primary", **kw).note == ""
    assert next_transfer("N2", "early_years", **kw).note == ""
    assert "stays_in_sixth_form" in next_transfer("Y11", "secondary_with_sixth_form", **kw).note
    assert "nursery class" in next_transfer("N2", "primary", **kw).note
    assert "ceases" in next_transfer("Y13", "secondary_with_sixth_form", **kw).note


def test_post16_institution_has_no_phase_transfer():
    # Year 12 at a college: a move to another college is Reg 18(2), not a phase transfer
    for nc in ("Y12", "Y13", "Y14"):
        assert next_transfer(nc, "post16", date(2026, 10, 1)) is None
    # proposed move to another college on 5 January 2027: review by 5 August 2026
    d = post16_move_deadline(date(2027, 1, 5))
    assert d.due == date(2026, 8, 5)
    assert d.citation == "Reg 18(2)"
    assert d.key == "post16_move_due"
    # 31 July - 5 months: no 31 February, so the last day of February (safe side)
    assert post16_move_deadline(date(2027, 7, 31)).due == date(2027, 2, 28)
    assert post16_move_deadline(date(2028, 7, 31)).due == date(2028, 2, 29)


@pytest.mark.parametrize("move_date, today, within", [
    (date(2027, 9, 1), date(2026, 8, 31), False),  # 12 months and a day before
    (date(2027, 9, 1), date(2026, 9, 1), True),  # exactly 12 months: within (safe side)
    (date(2027, 9, 1), date(2027, 2, 15), True),
    (date(2027, 9, 1), date(2027, 8, 31), True),
    (date(2027, 9, 1), date(2027, 9, 1), False),  # the day of the move: done
])
def test_within_12_months_boundaries(move_date, today, within):
    t = next_transfer("Y6", "primary", date(2026, 10, 1))
    assert t.move_date == move_date
    assert review_window_opens(t) == date(2026, 9, 1)
    assert within_transfer_review_window(t, today) is within


def test_year_6_is_within_12_months_all_year_and_year_5_never():
    y6 = next_transfer("Y6", "primary", date(2026, 9, 1))
    y5 = next_transfer("Y5", "primary", date(2026, 9, 1))
    d = date(2026, 9, 1)
    while d <= date(2027, 8, 31):
        assert within_transfer_review_window(y6, d)
        assert not within_transfer_review_window(y5, d)
        d += timedelta(days=1)


def test_academic_year_boundaries():
    assert academic_year(date(2026, 8, 31)) == 2025
    assert academic_year(date(2026, 9, 1)) == 2026
    assert academic_year(date(2027, 1, 1)) == 2026
    assert academic_year(date(2027, 8, 31)) == 2026


# --- parsing and refusals ------------------------------------------------------------------


@pytest.mark.parametrize("text, year", [
    ("Y6", NCYear.Y6), ("y6", NCYear.Y6), ("6", NCYear.Y6), (6, NCYear.Y6),
    ("Year 6", NCYear.Y6), (" year6 ", NCYear.Y6), ("Y06", NCYear.Y6), ("06", NCYear.Y6),
    ("R", NCYear.R), ("r", NCYear.R), ("Reception", NCYear.R), ("YR", NCYear.R),
    ("N1", NCYear.N1), ("n2", NCYear.N2), ("Nursery 2", NCYear.N2),
    ("EY", NCYear.EY), ("early years", NCYear.EY),
    (1, NCYear.Y1), ("Y14", NCYear.Y14), (14, NCYear.Y14), (NCYear.Y11, NCYear.Y11),
])
def test_parse_nc_year_accepts(text, year):
    assert parse_nc_year(text) is year


@pytest.mark.parametrize("bad", [0, -1, 15, "15", "Y15", "Y0", "0", "N3", "", "Year", "X",
                                 "6.5", True, None, 6.0])
def test_parse_nc_year_refuses_and_says_what_to_write(bad):
    with pytest.raises(ValueError) as e:
        parse_nc_year(bad)
    msg = str(e.value)
    assert "N1" in msg and "R (reception)" in msg and "1 to 14" in msg


def test_nc_year_index_and_labels():
    assert [NCYear.from_index(i) for i in (-2, -1, 0, 1, 14)] == \
        [NCYear.N1, NCYear.N2, NCYear.R, NCYear.Y1, NCYear.Y14]
    assert NCYear.EY.index is None and NCYear.R.index == 0 and NCYear.Y6.index == 6
    assert NCYear.Y6.label == "Year 6" and NCYear.R.label == "Reception"
    with pytest.raises(ValueError):
        NCYear.from_index(15)


@pytest.mark.parametrize("text, setting", [
    ("primary", S.PRIMARY), ("Primary", S.PRIMARY), ("all-through", S.ALL_THROUGH),
    ("All through", S.ALL_THROUGH), ("secondary with sixth form", S.SECONDARY_WITH_SIXTH_FORM),
    ("post-16", S.POST16), ("POST16", S.POST16), ("special_secondary", S.SPECIAL_SECONDARY),
    (S.MIDDLE, S.MIDDLE),
])
def test_parse_setting_type_accepts(text, setting):
    assert parse_setting_type(text) is setting


@pytest.mark.parametrize("bad", ["college", "sixth form", "", "nursery", None, 3])
def test_parse_setting_type_refuses_and_lists_the_types(bad):
    with pytest.raises(ValueError) as e:
        parse_setting_type(bad)
    for t in SettingType:
        assert t.value in str(e.value)


@pytest.mark.parametrize("nc, setting, kw, words", [
    ("Y12", "secondary", {}, ["teaches Year 7 to Year 11, not Year 12", "final_year"]),
    ("Y7", "primary", {}, ["teaches Nursery 1 (N1) to Year 6, not Year 7"]),
    ("Y3", "secondary", {}, ["not Year 3"]),
    ("R", "early_years", {}, ["not Reception"]),
    ("Y11", "post16", {}, ["not Year 11"]),
    ("EY", "early_years", {}, ["N1 or N2"]),
    ("Y10", "secondary", {"stays_in_sixth_form": True}, ["no sixth form"]),
    ("Y10", "all_through", {"stays_in_sixth_form": True, "final_year": "Y11"}, ["no sixth form"]),
    ("Y4", "middle", {"final_year": "Y6"}, ["cannot end at Year 6", "Year 7, Year 8"]),
    ("Y6", "primary", {"final_year": "Y4"}, ["cannot end at Year 4"]),
    ("Y8", "middle", {"final_year": "Y7"}, ["not Year 8"]),
])
def test_next_transfer_refuses_what_does_not_fit(nc, setting, kw, words):
    with pytest.raises(ValueError) as e:
        next_transfer(nc, setting, date(2026, 10, 1), **kw)
    for w in words:
        assert w in str(e.value)


def test_every_setting_is_documented_and_consistent():
    for t, info in SETTINGS.items():
        assert info.description
        assert info.final_year in info.final_years
        assert info.first_year.index <= min(y.index for y in info.final_years)
        # a school phase that ends before Year 11 says where it goes, and under which limb
        if any(0 < y.index < 11 for y in info.final_years):
            assert info.leaves_as and info.moves_to and info.reg2.startswith("(")


# --- properties ----------------------------------------------------------------------------

days = st.dates(min_value=date(2000, 1, 1), max_value=date(2090, 12, 31))


@st.composite
def children(draw):
    """A child as a council holds it: a setting type, the setting's last year, a year group
    the setting teaches, and whether the council has recorded a stay in the sixth form. (Not
    ``other``: it has no age range of its own; ``test_a_child_not_at_a_school_...``.)"""
    setting = draw(st.sampled_from([s for s in SettingType if s is not SettingType.OTHER]))
    info = SETTINGS[setting]
    last = draw(st.sampled_from(sorted(info.final_years, key=lambda y: y.index)))
    nc = NCYear.from_index(draw(st.integers(info.first_year.index, last.index)))
    stays = last.index >= 12 and draw(st.booleans())
    return nc, setting, {"final_year": last, "stays_in_sixth_form": stays}


@given(child=children(), today=days)
def test_transfer_shape(child, today):
    nc, setting, kw = child
    t = next_transfer(nc, setting, today, **kw)
    if setting is S.POST16:
        assert t is None
        return
    assert t is not None
    # the move is 1 September, after today, in the calendar year of the transfer
    assert (t.move_date.month, t.move_date.day) == (9, 1)
    assert t.move_date > today
    assert t.transfer_year == t.move_date.year
    # the deadline is before the move, in the calendar year of the transfer, and is Reg
    # 18(1)(a) exactly for secondary to post-16
    assert t.deadline.due < t.move_date
    assert t.deadline.due.year == t.transfer_year
    assert (t.kind == "post16") == (t.to_phase is Phase.POST16) == \
        (t.deadline.citation == "Reg 18(1)(a)")
    # "before 31 March" / "before 15 February" (Reg 18(1)): the last day on time
    assert t.deadline.due == (date(t.transfer_year, 3, 30) if t.kind == "post16"
                              else date(t.transfer_year, 2, 14))
    assert t.citation.endswith(t.deadline.citation)
    # the move comes after the child's last year before it, which is never before today's
    assert t.from_year.index >= nc.index
    assert t.move_date.year == academic_year(today) + (t.from_year.index - nc.index) + 1
    # nothing transfers out of a year after Year 14, and only a school leaver transfers out
    # of Year 14 (to a post-16 institution); early years only go to school
    assert t.from_year.index <= 14
    if t.from_year is NCYear.Y14:
        assert t.to_phase is Phase.POST16 and "ceases" in t.note
    assert (t.from_phase is Phase.EARLY_YEARS) == (t.to_phase is Phase.SCHOOL) == \
        (nc.index < 0)
    # Reg 18(1)'s "within 12 months" holds exactly in the last year before the move
    assert within_transfer_review_window(t, today) == (t.from_year is nc)
    assert within_transfer_review_window(t, t.deadline.due)
    assert not within_transfer_review_window(t, t.move_date)


@given(child=children(), a=days, b=days)
def test_same_answer_on_every_day_of_an_academic_year(child, a, b):
    nc, setting, kw = child
    assume(academic_year(a) == academic_year(b))
    assert next_transfer(nc, setting, a, **kw) == next_transfer(nc, setting, b, **kw)


@given(child=children(), today=days, offset=st.integers(0, 364))
def test_same_answer_within_an_academic_year_by_offset(child, today, offset):
    # the same property without assume(): every day from 1 September to 31 August
    nc, setting, kw = child
    start = date(academic_year(today), 9, 1)
    day = start + timedelta(days=offset)
    assume(academic_year(day) == academic_year(start))
    assert next_transfer(nc, setting, day, **kw) == next_transfer(nc, setting, start, **kw)


@given(child=children(), today=days)
def test_next_academic_year_is_one_year_later(child, today):
    nc, setting, kw = child
    now = next_transfer(nc, setting, today, **kw)
    later = next_transfer(nc, setting, date(academic_year(today) + 1, 9, 1), **kw)
    if now is None:
        assert later is None
    else:
        assert later.move_date == date(now.move_date.year + 1, 9, 1)
        assert later.deadline.due.year == now.deadline.due.year + 1


@given(child=children(), today=days)
def test_one_year_younger_transfers_one_year_later(child, today):
    nc, setting, kw = child
    info = SETTINGS[setting]
    assume(nc.index > info.first_year.index)
    younger = NCYear.from_index(nc.index - 1)
    older_t = next_transfer(nc, setting, today, **kw)
    younger_t = next_transfer(younger, setting, today, **kw)
    if older_t is None:
        assert younger_t is None
        return
    if younger_t.from_year == older_t.from_year:
        # the same transfer on the same path, one academic year later
        assert younger_t.move_date == date(older_t.move_date.year + 1, 9, 1)
        assert (younger_t.kind, younger_t.from_phase, younger_t.to_phase, younger_t.citation) \
            == (older_t.kind, older_t.from_phase, older_t.to_phase, older_t.citation)
    else:
        # the younger child is in the last year of an earlier phase, so transfers first
        assert younger_t.from_year is younger
        assert younger_t.move_date <= older_t.move_date


@given(nc=st.sampled_from([y for y in NCYear if y is not NCYear.EY]))
def test_parse_nc_year_round_trips(nc):
    assert parse_nc_year(nc.value) is nc
    assert parse_nc_year(nc.value.lower()) is nc
    assert parse_nc_year(f" {nc.value} ") is nc
    if nc.index >= 1:
        assert parse_nc_year(nc.index) is nc
        assert parse_nc_year(f"Y{nc.index}") is nc
        assert parse_nc_year(nc.label) is nc


@given(setting=st.sampled_from(list(SettingType)))
def test_parse_setting_type_round_trips(setting):
    assert parse_setting_type(setting.value) is setting
    assert parse_setting_type(setting.value.upper().replace("_", " ")) is setting
    assert parse_setting_type(setting.value.replace("_", "-")) is setting


@given(move=days)
def test_post16_move_deadline_is_the_reg_18_2_rule(move):
    d = post16_move_deadline(move)
    assert d.citation == "Reg 18(2)"
    assert d.due < move and (move - d.due).days >= 150  # at least 5 months (Feb-Jul is 150)


@pytest.mark.parametrize("nc, kind, phases, year, due, citation", [
    ("N2", "school", ("early_years", "school"), 2027, date(2027, 2, 14), "Reg 2(1)(a)"),
    ("R", "school", ("primary", "secondary"), 2033, date(2033, 2, 14), "Reg 2(1)(d)"),
    ("6", "school", ("primary", "secondary"), 2027, date(2027, 2, 14), "Reg 2(1)(d)"),
    ("7", "post16", ("secondary", "post16"), 2031, date(2031, 3, 30), "Reg 2(1)(f)"),
    ("11", "post16", ("secondary", "post16"), 2027, date(2027, 3, 30), "Reg 2(1)(f)"),
])
def test_a_child_not_at_a_school_transfers_as_their_year_group_does(nc, kind, phases, year,
                                                                     due, citation):
    """``other`` (alternative provision, hospital education, education otherwise than at
    school, none): the plans import accepts it, so the phase-transfer cohort must count it;
    a Year 6 child in alternative provision still needs a secondary school named before 15
    February (before this, next_transfer refused 'other' as no setting type)."""
    t = next_transfer(nc, "other", date(2026, 12, 7))
    assert (t.kind, (t.from_phase.value, t.to_phase.value), t.transfer_year) == \
        (kind, phases, year)
    assert t.deadline.due == due and t.citation.startswith(citation)
    assert "Not at a school" in t.note


def test_a_young_person_not_at_a_school_from_year_12_has_no_phase_transfer():
    assert next_transfer("12", "other", date(2026, 12, 7)) is None
    with pytest.raises(ValueError, match="no sixth form"):
        next_transfer("10", "other", date(2026, 12, 7), stays_in_sixth_form=True)


@given(child=children(), today=days)
def test_every_transfer_worked_out_is_one_the_regulations_define(child, today):
    """``TRANSFERS`` (what the plans import accepts in next_transfer) holds every transfer
    ``next_transfer`` can give, with the same deadline kind."""
    nc, setting, kw = child
    t = next_transfer(nc, setting, today, **kw)
    if t is not None:
        assert TRANSFERS[(t.from_phase, t.to_phase)] == t.kind
