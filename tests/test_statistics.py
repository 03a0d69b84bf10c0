"""The timeliness statistics (store.timeliness, api/statistics.py) against hand-built cases
whose answers are worked out by hand in the comments, on SQLite and PostgreSQL.

The cases are what the workflows would hold (``CaseSnapshot`` / ``ReviewSnapshot``, with the
deadlines ``statutory.clock`` gives) and are written by the real recorder
(``CaseRecorder.record_case`` / ``.record_review``), so each deadline's ``excused`` flag and
every row are what production writes.

The period is the first half of 2026 (2026-Q1 and 2026-Q2) and the figures are as on
2026-06-10: a deadline due on 10 June and not done is not yet late; one due on 9 June is.
"""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta

import pytest
from sqlmodel import Session

from services.letters import case_recorder
from store import tables as t
from store import timeliness as tl
from store.db import engine_for
from domain.case import (
    AdviceItem,
    AdviceSource,
    AssessmentPolicy,
    CaseException,
    CaseSnapshot,
    Milestone,
    Placement,
    RequestSource,
    ReviewPolicy,
    ReviewSnapshot,
    ReviewStage,
    Stage,
)
from domain.identifiers import review_reference
from statutory import ExceptionKind
from statutory.clock import assessment_timescales, deadline
from statutory.rules import RULES
from tests.conftest import settings_for
from tests.http import serve_app

FROM, TO, AS_OF = date(2026, 1, 1), date(2026, 6, 30), date(2026, 6, 10)
QUARTERS = [(date(2026, 1, 1), date(2026, 3, 31)), (date(2026, 4, 1), date(2026, 6, 30))]
D = date


# --- building cases as the workflows hold them -----------------------------------------------------


def add_child(db_url: str, person: str) -> str:
    with Session(engine_for(db_url)) as s:
        child = t.Child(given_name="Sam", family_name="Example", date_of_birth=D(2015, 4, 2),
                        council_reference=person)
        s.add(child)
        s.commit()
        return child.id


def exception(kind: ExceptionKind, starts: date, ends: date | None = None,
              advice_key: str | None = None, n: int = 1) -> CaseException:
    return CaseException(id=f"x{n}", kind=kind, reason="recorded by the caseworker",
                         starts_on=starts, ends_on=ends, advice_key=advice_key,
                         recorded_on=starts)


def advice(key: str, source: AdviceSource, requested: date, received: date | None = None, *,
           reused: bool = False, service_id: str | None = None,
           rule_id: str = tl.ASSESSMENT_ADVICE_RULE, due: date | None = None) -> AdviceItem:
    due = due or deadline(tl.ASSESSMENT_ADVICE_RULE, requested).due  # 6 weeks (Reg 8(1))
    return AdviceItem(key=key, source=source, rule_id=rule_id, requested_on=requested, due=due,
                      received_on=received, reused=reused, service_id=service_id)


def assessment(db_url: str, ref: str, requested: date, *, decided: date | None = None,
               refused: bool = False, plan_decided: date | None = None,
               no_plan: date | None = None, draft: date | None = None,
               final: date | None = None, withdrawn: date | None = None,
               exceptions=(), advice_items=(), school: str | None = None,
               source: RequestSource = RequestSource.PARENT) -> CaseSnapshot:
    """An assessment as ``AssessmentWorkflow`` holds it after those steps, recorded."""
    dates = assessment_timescales(requested)
    m = {key: Milestone(key=key, rule_id=dates[key].rule.id, started_on=requested,
                        due=dates[key].due)
         for key in ("decision_due", "no_plan_notice_due", "draft_plan_target", "final_plan_due")}
    stage, closed, reason = Stage.AWAITING_DECISION, None, None
    if decided:
        m["decision_due"].done_on = decided
        stage = Stage.ASSESSING
        if refused:
            for key in ("no_plan_notice_due", "draft_plan_target", "final_plan_due"):
                m[key].applicable = False
            stage, closed = Stage.REFUSED, decided
    if plan_decided:
        m["no_plan_notice_due"].applicable = False
        stage = Stage.DRAFTING
    if no_plan:
        m["no_plan_notice_due"].done_on = no_plan
        m["draft_plan_target"].applicable = m["final_plan_due"].applicable = False
        stage, closed = Stage.NO_PLAN, no_plan
    extra = []
    if draft:
        m["draft_plan_target"].done_on = draft
        comments = deadline("assessment.draft_comments_due", draft)
        extra.append(Milestone(key="draft_comments_due", rule_id=comments.rule.id,
                               started_on=draft, due=comments.due))
        stage = Stage.DRAFT_SERVED
    if final:
        m["final_plan_due"].done_on = final
        stage, closed = Stage.FINAL_ISSUED, final
    if withdrawn:
        stage, closed, reason = Stage.CLOSED, withdrawn, "request_withdrawn"
    snap = CaseSnapshot(
        reference=ref, child_id=add_child(db_url, f"P-{ref}"), stage=stage,
        request_date=requested, request_source=source, policy=AssessmentPolicy(),
        setting_name=school, plan_decided_on=plan_decided, closed_on=closed,
        close_reason=reason, milestones=[*m.values(), *extra], advice=list(advice_items),
        exceptions=list(exceptions), version=10)
    case_recorder(db_url).record_case(snap, [])
    return snap


def review(db_url: str, plan: str, anchor: date, *, setting: str | None = None,
           meeting: date | None = None, held: date | None = None,
           circulated: date | None = None, report: date | None = None,
           decision: str | None = None, decided: date | None = None,
           amended: date | None = None, not_amended: date | None = None,
           ceased: date | None = None, closed: date | None = None,
           transfer: tuple[str, int, date | None] | None = None, advice_items=(),
           plan_issued: date | None = None, origin: str = "import",
           child_id: str | None = None) -> ReviewSnapshot:
    """One review cycle as ``ReviewWorkflow`` holds it after those steps, recorded."""
    due = deadline("review.review_due", anchor)
    ms = [Milestone(key=due.key, rule_id=due.rule.id, started_on=anchor, due=due.due,
                    done_on=held)]
    stage = ReviewStage.AWAITING_MEETING
    if meeting:
        for rule_id, done in (("review.invitations_due", meeting - timedelta(days=20)),
                              (tl.REVIEW_ADVICE_RULE, circulated)):
            d = deadline(rule_id, meeting)
            ms.append(Milestone(key=d.key, rule_id=rule_id, started_on=meeting, due=d.due,
                                done_on=done))
        stage = ReviewStage.MEETING_SET
    if held:
        for rule_id, done in (("review.report_due", report), ("review.decision_due", decided)):
            d = deadline(rule_id, held)
            ms.append(Milestone(key=d.key, rule_id=rule_id, started_on=held, due=d.due,
                                done_on=done))
        stage = ReviewStage.MEETING_HELD
    ended = None
    if decision == "maintain":
        stage, ended = ReviewStage.MAINTAINED, decided
    elif decision == "amend":
        for rule_id, done in (("review.amendment_comments_due", None),
                              ("review.final_amended_plan_due", amended or not_amended)):
            d = deadline(rule_id, decided)
            ms.append(Milestone(key=d.key, rule_id=rule_id, started_on=decided, due=d.due,
                                done_on=done))
        stage = ReviewStage.AMENDING
        if amended or not_amended:
            stage, ended = ReviewStage.AMENDED, amended or not_amended
    elif decision == "cease":
        stage = ReviewStage.CEASING
        if ceased:
            stage, ended = ReviewStage.CEASED, ceased
    if closed:
        stage, ended = ReviewStage.CLOSED, closed
    if transfer:
        kind, year, done = transfer
        rule = RULES[f"review.phase_transfer_due.{kind}"]
        ms.append(Milestone(key=rule.key, rule_id=rule.id, started_on=anchor,
                            due=rule.due(year), done_on=done))
    snap = ReviewSnapshot(
        reference=review_reference(plan, 1), plan_reference=plan, cycle=1,
        child_id=child_id or add_child(db_url, f"P-{plan}"), stage=stage, anchor_on=anchor,
        plan_issued_on=plan_issued or anchor, origin=origin, policy=ReviewPolicy(),
        placement=Placement(nc_year="5", nc_year_as_of=anchor, setting_type="primary",
                            setting_name=setting) if setting else None,
        meeting_on=meeting, meeting_held_on=held, decision=decision, decided_on=decided,
        amendments_sent_on=decided if decision == "amend" else None,
        amended_plan_issued_on=amended, not_amended_on=not_amended,
        cease_consulted_on=decided - timedelta(days=10) if decision == "cease" else None,
        ceased_on=ceased, closed_on=ended,
        close_reason="moved_out_of_area" if closed else None, milestones=ms,
        advice=list(advice_items), version=10)
    case_recorder(db_url).record_review(snap, [])
    return snap


def counts(tally: tl.Tally) -> dict:
    return dict(counted=tally.counted, on_time=tally.on_time, late=tally.late,
                late_open=tally.late_open, excused=tally.excused,
                excused_on_time=tally.excused_on_time, not_yet_due=tally.not_yet_due,
                ended=tally.ended_before_due, not_amended=tally.not_amended)


def whole(by_index: dict) -> tl.Tally:
    total = tl.Tally()
    for tally in by_index.values():
        total += tally
    return total


def c(counted=0, on_time=0, late=None, late_open=0, excused=0, excused_on_time=0,
      not_yet_due=0, ended=0, not_amended=0) -> dict:
    return dict(counted=counted, on_time=on_time,
                late=counted - on_time if late is None else late, late_open=late_open,
                excused=excused, excused_on_time=excused_on_time, not_yet_due=not_yet_due,
                ended=ended, not_amended=not_amended)


# --- the annual reviews: measures a, b, f, g, h and the 4-week decision ----------------------------


def build_reviews(db_url: str) -> None:
    """Nine plans' review cycles (due dates worked out from the anchors by hand)."""
    # R1 Oak: review due 2026-02-10, held that day (on time). Advice circulated by 01-27
    # (due 01-27: on time), report 02-24 (due 02-24: on time), maintained 03-10 (due 03-10).
    # School phase transfer due 2026-02-14 (Reg 18(1)(b): before 15 February), finished with
    # the cycle on 03-10: late.
    review(db_url, "P1", D(2025, 2, 10), setting="Oak Primary", meeting=D(2026, 2, 10),
           held=D(2026, 2, 10), circulated=D(2026, 1, 27), report=D(2026, 2, 24),
           decision="maintain", decided=D(2026, 3, 10), transfer=("school", 2026, D(2026, 3, 10)))
    # R2 Oak: due 03-01, held 03-02 (late by a day). Circulated 02-17 (due 02-16: late),
    # report 03-17 (due 03-16: late), amend 03-20 (due 03-30), amended plan 05-15 (due 05-15:
    # on time). Post-16 transfer due 2026-03-30 (before 31 March), finished 05-15: late.
    review(db_url, "P2", D(2025, 3, 1), setting="Oak Primary", meeting=D(2026, 3, 2),
           held=D(2026, 3, 2), circulated=D(2026, 2, 17), report=D(2026, 3, 17),
           decision="amend", decided=D(2026, 3, 20), amended=D(2026, 5, 15),
           transfer=("post16", 2026, D(2026, 5, 15)))
    # R3 Elm: due 04-01, held 03-25. Circulated 03-11 (due 03-11), report never sent (due
    # 04-08; the cycle ended 06-01: late), amend 04-20 (due 04-22), then not amended after
    # all on 06-01 (amended plan due 06-15: not counted).
    review(db_url, "P3", D(2025, 4, 1), setting="Elm Academy", meeting=D(2026, 3, 25),
           held=D(2026, 3, 25), circulated=D(2026, 3, 11), decision="amend",
           decided=D(2026, 4, 20), not_amended=D(2026, 6, 1))
    # R4 Elm: due 05-20, no meeting yet: open and late. R5 Elm: due 06-20: not yet due.
    review(db_url, "P4", D(2025, 5, 20), setting="Elm Academy")
    review(db_url, "P5", D(2025, 6, 20), setting="Elm Academy")
    # R6 (no setting recorded): due 01-15; the plan closed on 01-10, before: not counted.
    review(db_url, "P6", D(2025, 1, 15), closed=D(2026, 1, 10))
    # R7 Oak: due 03-10, held 03-09. Advice never circulated (due 02-23; ceased 04-15: late),
    # report 03-20 (due 03-23), cease decided 04-07 (due 04-06: late), ceased 04-15.
    review(db_url, "P7", D(2025, 3, 10), setting="Oak Primary", meeting=D(2026, 3, 9),
           held=D(2026, 3, 9), report=D(2026, 3, 20), decision="cease",
           decided=D(2026, 4, 7), ceased=D(2026, 4, 15))
    # R8 Birch: due 2026-03-05, held early on 2025-12-01 (on time); its other steps fell in
    # 2025. School phase transfer due 2026-02-14, finished 2025-12-20: on time.
    review(db_url, "P8", D(2025, 3, 5), setting="Birch School", meeting=D(2025, 12, 1),
           held=D(2025, 12, 1), circulated=D(2025, 11, 17), report=D(2025, 12, 10),
           decision="maintain", decided=D(2025, 12, 20),
           transfer=("school", 2026, D(2025, 12, 20)))
    # R9 Birch: due 01-05, held 01-05. Circulated 2025-12-20 (due 2025-12-22), report 01-19
    # (due 01-19), amend 01-20 (due 02-02), amended plan 03-18 (due 03-17: late).
    review(db_url, "P9", D(2025, 1, 5), setting="Birch School", meeting=D(2026, 1, 5),
           held=D(2026, 1, 5), circulated=D(2025, 12, 20), report=D(2026, 1, 19),
           decision="amend", decided=D(2026, 1, 20), amended=D(2026, 3, 18))


def test_measure_h_counts_a_transfer_finished_on_15_february_as_late(db_url):
    """Reg 18(1) says "before 15 February" ("before 31 March" post-16). Worked by hand: a
    school transfer finished on 14 February is on time and one finished on 15 February is late;
    a post-16 transfer finished on 30 March is on time and one finished on 31 March is late. In
    2028, a leap year, the same (29 February changes nothing)."""
    for year in (2026, 2028):
        quarter = [(date(year, 1, 1), date(year, 3, 31))]
        for n, (kind, done) in enumerate((("school", D(year, 2, 14)),
                                          ("school", D(year, 2, 15)),
                                          ("post16", D(year, 3, 30)),
                                          ("post16", D(year, 3, 31)))):
            review(db_url, f"H{year}{n}", D(year - 1, 1, 5), setting="Ash Primary",
                   meeting=D(year, 1, 5), held=D(year, 1, 5), decision="maintain",
                   decided=done, transfer=(kind, year, done))
        with Session(engine_for(db_url)) as s:
            every = tl.all_deadline_figures(s, quarter, D(year, 6, 1))
            assert counts(whole(every["phase_transfers"])) == c(4, 2), year
            kinds = tl.deadline_figures(s, "phase_transfers", quarter, D(year, 6, 1),
                                        "transfer")
            assert counts(kinds[("review.phase_transfer_due.school", 0)]) == c(2, 1), year
            assert counts(kinds[("review.phase_transfer_due.post16", 0)]) == c(2, 1), year


def test_review_measures(db_url):
    build_reviews(db_url)
    with Session(engine_for(db_url)) as s:
        every = tl.all_deadline_figures(s, QUARTERS, AS_OF)

        def per_quarter(key):
            return [counts(every[key].get(i, tl.Tally())) for i in range(2)]

        # a: R1 R3 R7 R8 R9 on time, R2 late, R4 open and late; R5 not yet due; R6 ended.
        assert counts(whole(every["review_meetings"])) == c(
            7, 5, late_open=1, not_yet_due=1, ended=1)
        assert per_quarter("review_meetings") == [c(5, 4, ended=1),
                                                  c(2, 1, late_open=1, not_yet_due=1)]
        # b: reports R1 R7 R9 on time, R2 late, R3 never sent; advice circulated R1 R3 on
        # time, R2 late, R7 never.
        assert counts(whole(every["review_reports"])) == c(5, 3, late_open=1)
        assert per_quarter("review_reports") == [c(4, 3), c(1, 0, late_open=1)]
        assert counts(whole(every["review_advice_circulated"])) == c(4, 2, late_open=1)
        # the LA's decisions: R1 R2 R3 R9 on time, R7 a day late
        assert counts(whole(every["review_decisions"])) == c(5, 4)
        # g: R2 on time, R9 late; R3 decided not to amend after all (Reg 22(4))
        assert counts(whole(every["amended_plans"])) == c(2, 1, not_amended=1)
        # h: R8 on time; R1 (school) and R2 (post-16) late
        assert counts(whole(every["phase_transfers"])) == c(3, 1)

        by_setting = {g: counts(whole({i: v for (gg, i), v in
                                       tl.deadline_figures(s, "review_meetings", QUARTERS,
                                                           AS_OF, "setting").items()
                                       if gg == g}))
                      for g in ("Oak Primary", "Elm Academy", "Birch School", None)}
        assert by_setting == {"Oak Primary": c(3, 2), "Elm Academy": c(2, 1, late_open=1,
                                                                       not_yet_due=1),
                              "Birch School": c(2, 2), None: c(ended=1)}
        reports = tl.deadline_figures(s, "review_reports", QUARTERS, AS_OF, "setting")
        assert counts(reports[("Elm Academy", 1)]) == c(1, 0, late_open=1)
        assert counts(reports[("Oak Primary", 0)]) == c(3, 2)
        transfers = tl.deadline_figures(s, "phase_transfers", QUARTERS, AS_OF, "transfer")
        assert counts(transfers[("review.phase_transfer_due.school", 0)]) == c(2, 1)
        assert counts(transfers[("review.phase_transfer_due.post16", 0)]) == c(1, 0)
        amended = tl.deadline_figures(s, "amended_plans", QUARTERS, AS_OF, "setting")
        assert counts(amended[("Elm Academy", 1)]) == c(not_amended=1)
        assert counts(amended[("Birch School", 0)]) == c(1, 0)

        # f: decided in the period: R9 amend (01-20), R1 maintain, R2 amend, R3 amend (not
        # amended after all), R7 cease. R8's decision was in 2025.
        outcomes = tl.review_outcomes(s, QUARTERS)
        assert {i: vars(o) for (_, i), o in outcomes.items()} == {
            0: dict(maintain=1, amend=2, cease=0, not_amended_after_all=0),
            1: dict(maintain=0, amend=1, cease=1, not_amended_after_all=1)}
        by_school = tl.review_outcomes(s, QUARTERS, "setting")
        assert vars(by_school[("Oak Primary", 1)]) == dict(maintain=0, amend=0, cease=1,
                                                           not_amended_after_all=0)
        assert sum(o.decisions for o in by_school.values()) == 5
        with pytest.raises(ValueError, match="setting"):
            tl.review_outcomes(s, QUARTERS, "agency")
        with pytest.raises(ValueError, match="agency"):
            tl.deadline_figures(s, "review_meetings", QUARTERS, AS_OF, "agency")


def test_the_due_day_itself_is_on_time_and_the_next_day_late(db_url):
    """Deadlines due on the last day of 2026-Q1 (31 March) and in the first days of Q2."""
    review(db_url, "B1", D(2025, 3, 31), setting="Ash", held=D(2026, 3, 31))  # on the day
    review(db_url, "B2", D(2025, 4, 1), setting="Ash", held=D(2026, 4, 2))  # a day late
    review(db_url, "B3", D(2025, 4, 10), setting="Ash")  # due 2026-04-10, not held
    for as_of, q2 in ((D(2026, 4, 10), c(1, 0, not_yet_due=1)),  # B3 due today: not late
                      (D(2026, 4, 11), c(2, 0, late_open=1))):  # the day after: late
        with Session(engine_for(db_url)) as s:
            figures = tl.deadline_figures(s, "review_meetings", QUARTERS, as_of)
        assert counts(figures[(None, 0)]) == c(1, 1)
        assert counts(figures[(None, 1)]) == q2


# --- assessments: measures d, e, the 6-week decision, and DfE's method ----------------------------


def build_assessments(db_url: str) -> None:
    """Fourteen requests. Due dates by hand: decision +42 days, draft target +112 (16 weeks),
    final plan +140 (20 weeks)."""
    closure = ExceptionKind.PERSONAL_CIRCUMSTANCES  # Reg 10(4)(c)
    # A1: final due 2026-01-19, issued that day (140 days)
    assessment(db_url, "A1", D(2025, 9, 1), decided=D(2025, 10, 10), plan_decided=D(2025, 11, 20),
               draft=D(2025, 12, 22), final=D(2026, 1, 19), school="Oak Primary")
    # A2: final due 01-20, issued 01-21 (141 days: late)
    assessment(db_url, "A2", D(2025, 9, 2), decided=D(2025, 10, 10), plan_decided=D(2025, 11, 20),
               draft=D(2025, 12, 20), final=D(2026, 1, 21), school="Oak Primary")
    # A3: an exception from 2025-12-01 to 2026-01-15 excuses the draft (due 03-02, served
    # that day) and the final plan (due 03-30, issued 04-02: 143 days, late)
    assessment(db_url, "A3", D(2025, 11, 10), decided=D(2025, 12, 15),
               plan_decided=D(2026, 2, 1), draft=D(2026, 3, 2), final=D(2026, 4, 2),
               exceptions=[exception(closure, D(2025, 12, 1), D(2026, 1, 15))])
    # A4: decision due 2026-01-12 made that day; draft due 03-23 served 03-25 (late); final
    # due 04-20 not issued: open and late
    assessment(db_url, "A4", D(2025, 12, 1), decided=D(2026, 1, 12), plan_decided=D(2026, 3, 1),
               draft=D(2026, 3, 25))
    # A5: decision due 03-04 made 03-05 (late); draft due 05-13 not served (late); final due
    # 06-10, the day the figures are as of: not yet late
    assessment(db_url, "A5", D(2026, 1, 21), decided=D(2026, 3, 5), plan_decided=D(2026, 4, 1))
    # A6: decision due 01-26 made 01-20; withdrawn 03-01, before the draft (due 04-06) and
    # the final plan (due 05-04) were due: neither counted
    assessment(db_url, "A6", D(2025, 12, 15), decided=D(2026, 1, 20), withdrawn=D(2026, 3, 1))
    # A7: withdrawn 03-05, after its draft (due 01-21) and final plan (due 02-18) were due:
    # both late, never done
    assessment(db_url, "A7", D(2025, 10, 1), decided=D(2025, 11, 1), plan_decided=D(2025, 12, 1),
               withdrawn=D(2026, 3, 5))
    # A8: refused 01-30 (due 01-31): the plan's deadlines no longer apply
    assessment(db_url, "A8", D(2025, 12, 20), decided=D(2026, 1, 30), refused=True)
    # A9: no plan, notified 02-20: the draft and the final plan no longer apply
    assessment(db_url, "A9", D(2025, 11, 3), decided=D(2025, 12, 1), no_plan=D(2026, 2, 20))
    # A10: final plan issued 2026-02-02, 427 days after the request: more than a year
    assessment(db_url, "A10", D(2024, 12, 2), decided=D(2024, 12, 20),
               plan_decided=D(2025, 3, 1), draft=D(2026, 1, 5), final=D(2026, 2, 2))
    # A11: issued on the request's first anniversary (365 days): within a year
    assessment(db_url, "A11", D(2025, 2, 3), decided=D(2025, 3, 1), plan_decided=D(2025, 6, 1),
               draft=D(2025, 12, 1), final=D(2026, 2, 3))
    # A12: issued the day after its anniversary (366 days): more than a year
    assessment(db_url, "A12", D(2025, 2, 4), decided=D(2025, 3, 1), plan_decided=D(2025, 6, 1),
               draft=D(2025, 12, 1), final=D(2026, 2, 5))
    # A13: no decision yet (due 03-15: open and late); draft target due 05-24: late; final
    # due 06-21: not yet due
    assessment(db_url, "A13", D(2026, 2, 1), source=RequestSource.SCHOOL)
    # A14: an exception from 01-20 (no end) excuses everything still to come: the decision
    # (due 02-18, made 03-01), the draft (due 04-29) and final plan (due 05-27), both open
    assessment(db_url, "A14", D(2026, 1, 7), decided=D(2026, 3, 1),
               exceptions=[exception(ExceptionKind.ABSENT_FROM_AREA, D(2026, 1, 20))])


def test_assessment_measures(db_url):
    build_assessments(db_url)
    with Session(engine_for(db_url)) as s:
        every = tl.all_deadline_figures(s, QUARTERS, AS_OF)
        # e: A1 on time; A2, A3 (excused) late; A4, A7, A14 (excused) late and not issued;
        # A5 and A13 not yet due; A6 withdrawn before its due day
        assert counts(whole(every["final_plans"])) == c(
            6, 1, late_open=3, excused=2, not_yet_due=2, ended=1)
        assert [counts(every["final_plans"][i]) for i in range(2)] == [
            c(4, 1, late_open=1, excused=1),
            c(2, 0, late_open=2, excused=1, not_yet_due=2, ended=1)]
        # d (local target): A3 on time (excused); A4 late; A5 A7 A13 A14 (excused) not served
        assert counts(whole(every["draft_plans"])) == c(
            6, 1, late_open=4, excused=2, excused_on_time=1, ended=1)
        # the decision whether to assess: A4 A6 A8 on time; A5 and A14 (excused) late; A13
        # not made and late
        assert counts(whole(every["decisions_to_assess"])) == c(6, 3, late_open=1, excused=1)

        plans = tl.dfe_final_plans(s, QUARTERS)
        assert vars(plans[0]) == dict(  # A1 A2 A10 A11 A12
            issued=5, within_20_weeks=1, within_a_year=2, over_a_year=2,
            days=140 + 141 + 427 + 365 + 366, issued_ex=5, within_20_weeks_ex=1,
            within_a_year_ex=2, over_a_year_ex=2, days_ex=140 + 141 + 427 + 365 + 366)
        assert vars(plans[1]) == dict(  # A3, an exception applies
            issued=1, within_20_weeks=0, within_a_year=1, over_a_year=0, days=143,
            issued_ex=0, within_20_weeks_ex=0, within_a_year_ex=0, over_a_year_ex=0, days_ex=0)
        decisions = tl.dfe_decisions(s, QUARTERS)
        # Q1: requests A5 A13 A14; decisions A4 A6 A8 (refused) on time, A5 A14 (excused) late
        assert vars(decisions[0]) == dict(requests=3, decisions=5, within_6_weeks=3,
                                          decisions_ex=4, within_6_weeks_ex=3, assess=4,
                                          refuse=1)
        assert 1 not in decisions


def test_advice_by_agency_and_service(db_url):
    """Assessment advice (6 weeks, Reg 8(1)) and review advice (circulated 2 weeks before
    the meeting, Reg 20(4)); the family's own views and advice reused are not counted."""
    with Session(engine_for(db_url)) as s:
        s.add_all([t.Service(id="svc-oak", name="Oak Primary", agency="education"),
                   t.Service(id="svc-paeds", name="Community Paediatrics", agency="health"),
                   t.Service(id="svc-salt", name="Speech and Language Therapy",
                             agency="health"),
                   t.Service(id="svc-ep", name="Educational Psychology",
                             agency="educational_psychology")])
        s.commit()
    asked, due = D(2026, 1, 5), D(2026, 2, 16)  # 6 weeks
    reg8 = ExceptionKind.ADVICE_MISSED_APPOINTMENT
    assessment(db_url, "C1", D(2025, 12, 1), decided=D(2026, 1, 5), advice_items=[
        advice("education", AdviceSource.EDUCATION, asked, due, service_id="svc-oak"),
        advice("health", AdviceSource.HEALTH, asked, due + timedelta(days=1),
               service_id="svc-paeds"),
        advice("social_care", AdviceSource.SOCIAL_CARE, asked),  # never came; no service
        advice("educational_psychologist", AdviceSource.EDUCATIONAL_PSYCHOLOGIST, asked,
               asked, reused=True, service_id="svc-ep"),
        advice("family", AdviceSource.FAMILY, asked, due + timedelta(days=9)),
        advice("other:salt", AdviceSource.OTHER, asked, D(2026, 2, 10), service_id="svc-salt"),
        advice("health:orthoptics", AdviceSource.HEALTH, asked, due + timedelta(days=5),
               service_id="svc-paeds"),
    ], exceptions=[exception(reg8, D(2026, 1, 20), D(2026, 1, 20),
                             advice_key="health:orthoptics")])
    # a review meeting on 2026-03-16: its advice is due to be circulated by 03-02
    circulate = D(2026, 3, 2)
    review(db_url, "RV", D(2025, 3, 20), setting="Oak Primary", meeting=D(2026, 3, 16),
           advice_items=[
               advice("education", AdviceSource.EDUCATION, D(2026, 2, 1), D(2026, 3, 1),
                      service_id="svc-oak", rule_id=tl.REVIEW_ADVICE_RULE, due=circulate),
               advice("health", AdviceSource.HEALTH, D(2026, 2, 1), D(2026, 3, 5),
                      rule_id=tl.REVIEW_ADVICE_RULE, due=circulate)])
    with Session(engine_for(db_url)) as s:
        every = tl.all_deadline_figures(s, QUARTERS, AS_OF)
        assert counts(whole(every["assessment_advice"])) == c(5, 2, late_open=1, excused=1)
        assert counts(whole(every["review_advice"])) == c(2, 1)
        assert counts(whole(every["advice"])) == c(7, 3, late_open=1, excused=1)

        def by(group_by, key="assessment_advice"):
            out: dict = {}
            for (g, _), tally in tl.deadline_figures(s, key, QUARTERS, AS_OF,
                                                     group_by).items():
                out.setdefault(g, tl.Tally()).__iadd__(tally)
            return {g: counts(v) for g, v in out.items()}

        # SALT is "other" advice from a health service: counted under health
        assert by("agency") == {"education": c(1, 1), "health": c(3, 1, excused=1),
                                "social_care": c(1, 0, late_open=1)}
        assert by("agency", "advice") == {"education": c(2, 2), "health": c(4, 1, excused=1),
                                          "social_care": c(1, 0, late_open=1)}
        assert by("service", "advice") == {"svc-oak": c(2, 2), "svc-paeds": c(2, 0, excused=1),
                                           "svc-salt": c(1, 1),
                                           None: c(2, 0, late_open=1)}
        assert tl.service_names(s, {"svc-oak", "svc-salt"}) == {
            "svc-oak": "Oak Primary", "svc-salt": "Speech and Language Therapy"}


# --- the export ---------------------------------------------------------------------------------


def test_sen2_export_rows(db_url):
    build_assessments(db_url)
    # A1's plan (issued 2026-01-19) had an early review: held 03-01, maintained 03-20
    a1_child = None
    with Session(engine_for(db_url)) as s:
        a1_child = s.get(t.Case, "A1").child_id
    review(db_url, "A1", D(2026, 1, 19), origin="assessment", plan_issued=D(2026, 1, 19),
           child_id=a1_child, meeting=D(2026, 3, 1), held=D(2026, 3, 1), decision="maintain",
           decided=D(2026, 3, 20), report=D(2026, 3, 10))
    # an imported plan (no assessment here), closed when the family moved away on 02-10
    review(db_url, "IMP-1", D(2025, 5, 1), plan_issued=D(2020, 5, 1), closed=D(2026, 2, 10))
    # out of the period: a refusal in 2025, and a plan that ended in 2025
    assessment(db_url, "OLD", D(2025, 1, 6), decided=D(2025, 2, 1), refused=True)
    review(db_url, "IMP-0", D(2024, 6, 1), plan_issued=D(2019, 6, 1), closed=D(2025, 6, 1))
    with Session(engine_for(db_url)) as s:
        rows = {r["CaseReference"] or r["PlanReference"]: r
                for r in tl.sen2_rows(s, FROM, TO)}
    assert "OLD" not in rows and "IMP-0" not in rows
    assert set(rows) == {f"A{n}" for n in range(1, 15)} | {"IMP-1"}
    assert all(list(r) == list(tl.SEN2_COLUMNS) for r in rows.values())
    blank = dict.fromkeys(tl.SEN2_COLUMNS, "")
    assert rows["A1"] == {**blank, "PersonId": "P-A1", "CaseReference": "A1",
                          "PlanReference": "A1", "ReceivedDate": "2025-09-01",
                          "RequestSource": "1", "RequestOutcome": "H",  # decided in 2025
                          "AssessmentOutcome": "Y", "AssessmentOutcomeDate": "2026-01-19",
                          "Week20": "0", "StartDate": "2026-01-19",
                          "ReviewMeeting": "2026-03-01", "ReviewOutcome": "M",
                          "LastReview": "2026-03-20", "DecisionDue": "2025-10-13",
                          "FinalPlanDue": "2026-01-19", "WeeksToFinalPlan": "20.0"}
    assert rows["A3"]["AssessmentOutcome"] == "Y" and rows["A3"]["Week20"] == "1"
    assert rows["A3"]["WeeksToFinalPlan"] == "20.4"  # 143 days
    assert rows["A10"]["WeeksToFinalPlan"] == "61.0"  # 427 days
    assert {k: rows["A8"][k] for k in ("RequestOutcome", "RequestOutcomeDate",
                                       "AssessmentOutcome", "Week20")} == {
        "RequestOutcome": "N", "RequestOutcomeDate": "2026-01-30", "AssessmentOutcome": "",
        "Week20": ""}
    assert {k: rows["A9"][k] for k in ("RequestOutcome", "AssessmentOutcome",
                                       "AssessmentOutcomeDate", "Week20")} == {
        "RequestOutcome": "H", "AssessmentOutcome": "N", "AssessmentOutcomeDate": "2026-02-20",
        "Week20": "0"}
    assert (rows["A6"]["RequestOutcome"], rows["A6"]["RequestOutcomeDate"],
            rows["A6"]["AssessmentOutcome"]) == ("Y", "2026-01-20", "W")  # withdrawn
    assert (rows["A5"]["AssessmentOutcome"], rows["A5"]["AssessmentOutcomeDate"]) == ("Y", "")
    assert (rows["A13"]["RequestOutcome"], rows["A13"]["RequestSource"]) == ("A", "2")
    assert rows["A14"]["AssessmentOutcome"] == "A"  # assessing, no plan decision yet
    assert rows["IMP-1"] == {**blank, "PersonId": "P-IMP-1", "PlanReference": "IMP-1",
                             "RequestOutcome": "H", "AssessmentOutcome": "H",
                             "StartDate": "2020-05-01", "CeaseDate": "2026-02-10",
                             "CeaseReason": "5"}
    # as at an earlier end: the plan had not yet been reviewed, A8 not yet refused
    with Session(engine_for(db_url)) as s:
        early = {r["CaseReference"] or r["PlanReference"]: r
                 for r in tl.sen2_rows(s, FROM, D(2026, 1, 25))}
    assert early["A1"]["ReviewMeeting"] == "" and early["A1"]["StartDate"] == "2026-01-19"
    assert early["A8"]["RequestOutcome"] == "A" and "A5" in early and "A13" not in early


# --- over real HTTP -----------------------------------------------------------------------------


async def test_the_statistics_api(db_url):
    build_assessments(db_url)
    build_reviews(db_url)
    period = {"from": "2026-01-01", "to": "2026-06-30", "as_of": "2026-06-10"}
    async with serve_app(settings_for(db_url, "unused"), None, role="manager") as http:
        schema = (await http.get("/openapi.json")).json()
        for path in ("/api/statistics/timeliness", "/api/statistics/timeliness/{measure}",
                     "/api/statistics/review-outcomes", "/api/statistics/dfe",
                     "/api/exports/sen2"):
            assert schema["paths"][path]["get"]["description"], path
        r = await http.get("/api/statistics/timeliness", params=period)
        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["from"], body["to"], body["as_of"]) == ("2026-01-01", "2026-06-30",
                                                             "2026-06-10")
        measures = {m["measure"]: m for m in body["measures"]}
        final = measures["final_plans"]
        assert (final["council_measure"], final["citation"], final["statutory"]) == (
            "e", "Reg 13(2)", True)
        assert final["figures"] == {
            "counted": 6, "on_time": 1, "late": 5, "late_open": 3, "excused": 2,
            "excused_on_time": 0, "percent_on_time": 16.7,
            "excluding_exceptions": {"counted": 4, "on_time": 1, "percent_on_time": 25.0},
            "not_counted": {"not_yet_due": 2, "ended_before_due": 1, "not_amended": 0}}
        assert [(q["quarter"], q["figures"]["counted"], q["figures"]["on_time"])
                for q in final["quarters"]] == [("2026-Q1", 4, 1), ("2026-Q2", 2, 0)]
        assert measures["draft_plans"]["statutory"] is False
        assert measures["review_meetings"]["figures"]["percent_on_time"] == 71.4  # 5 of 7
        assert measures["amended_plans"]["figures"]["not_counted"]["not_amended"] == 1
        outcomes = body["review_outcomes"]
        assert outcomes["council_measure"] == "f"
        assert outcomes["figures"] == {
            "decisions": 5, "maintained": {"count": 1, "percent": 20.0},
            "amended": {"count": 3, "percent": 60.0}, "ceased": {"count": 1, "percent": 20.0},
            "not_amended_after_all": 1}

        r = await http.get("/api/statistics/timeliness/review_meetings",
                           params={**period, "group_by": "setting"})
        assert r.status_code == 200, r.text
        groups = [(g["label"], g["figures"]["counted"], g["figures"]["on_time"])
                  for g in r.json()["groups"]]
        assert groups == [("Oak Primary", 3, 2), ("Birch School", 2, 2),
                          ("Elm Academy", 2, 1), ("(not recorded)", 0, 0)]

        r = await http.get("/api/statistics/dfe", params=period)
        dfe = r.json()
        assert dfe["final_plans"] == {
            "plans_issued_den": 6, "plans_issued_den_ex": 5,
            "plans_issued_within_20_weeks": 1, "plans_issued_20_weeks_ex": 1,
            "pc_plans_issued_within_20_weeks": 16.7, "pc_plans_issued_20_weeks_ex": 20.0,
            "plans_issued_gt20weeks_ltyear": 3, "plans_issued_gt20weeks_ltyear_ex": 2,
            "plans_issued_gt_1_year": 2, "plans_issued_gt_1_year_ex": 2,
            "avg_weeks_issue_plan": 37.7, "avg_weeks_issue_plan_exc": 41.1}  # 1582/6, 1439/5
        assert dfe["decisions"]["pc_within_6_weeks"] == 60.0
        assert dfe["decisions"]["pc_within_6_weeks_ex"] == 75.0
        assert [q["final_plans"]["plans_issued_den"] for q in dfe["quarters"]] == [5, 1]

        r = await http.get("/api/statistics/review-outcomes",
                           params={**period, "group_by": "setting", "format": "csv"})
        assert r.headers["content-type"].startswith("text/csv")
        table = list(csv.DictReader(io.StringIO(r.text)))
        assert [(x["label"], x["quarter"], x["decisions"]) for x in table][:3] == [
            ("all", "whole period", "5"), ("all", "2026-Q1", "3"), ("all", "2026-Q2", "2")]
        oak = next(x for x in table if x["label"] == "Oak Primary" and x["quarter"] ==
                   "whole period")
        assert (oak["maintained"], oak["amended"], oak["ceased"], oak["ceased_percent"]) == (
            "1", "1", "1", "33.3")

        r = await http.get("/api/statistics/timeliness", params={**period, "format": "csv"})
        table = list(csv.DictReader(io.StringIO(r.text)))
        e = [x for x in table if x["measure"] == "final_plans"]
        assert [(x["quarter"], x["counted"], x["percent_on_time"],
                 x["percent_on_time_excluding_exceptions"]) for x in e] == [
            ("whole period", "6", "16.7", "25.0"), ("2026-Q1", "4", "25.0", "33.3"),
            ("2026-Q2", "2", "0.0", "0.0")]

        r = await http.get("/api/exports/sen2", params={"from": "2026-01-01", "to": "2026-06-30",
                                                        "format": "csv"})
        assert r.status_code == 200
        exported = list(csv.DictReader(io.StringIO(r.text)))
        assert list(exported[0]) == list(tl.SEN2_COLUMNS)
        assert len(exported) == 14 + 9  # the assessments and the review cycles' plans
        assert "Sam" not in r.text and "Example" not in r.text and "2015-04-02" not in r.text
        r = await http.get("/api/exports/sen2", params={"from": "2026-01-01",
                                                        "to": "2026-06-30"})
        data = r.json()
        assert data["columns"] == list(tl.SEN2_COLUMNS) and len(data["rows"]) == 23
        assert next(x for x in data["rows"] if x["CaseReference"] == "A8")[
            "RequestOutcome"] == "N"


async def test_the_api_refuses_what_it_cannot_answer(sqlite_url):
    async with serve_app(settings_for(sqlite_url, "unused"), None, role="manager") as http:
        r = await http.get("/api/statistics/timeliness", params={"from": "2026-06-30",
                                                                 "to": "2026-01-01"})
        assert r.status_code == 422 and r.json()["detail"] == (
            "The end date, 1 January 2026, is before the start date, 30 June 2026. Give the "
            "earlier date as the start date")
        r = await http.get("/api/statistics/dfe", params={"from": "2010-01-01",
                                                          "to": "2026-01-01"})
        assert r.status_code == 422 and "10 years" in r.json()["detail"]
        r = await http.get("/api/exports/sen2", params={"from": "2026-01-01",
                                                        "to": "2026-13-01"})
        assert r.status_code == 422 and r.json()["code"] == "invalid_input"
        r = await http.get("/api/statistics/timeliness/nonsense", params={
            "from": "2026-01-01", "to": "2026-03-31"})
        assert r.status_code == 404 and "final_plans" in r.json()["detail"]
        r = await http.get("/api/statistics/timeliness/final_plans", params={
            "from": "2026-01-01", "to": "2026-03-31", "group_by": "agency"})
        assert r.status_code == 422 and "setting" in r.json()["detail"]
        r = await http.get("/api/statistics/timeliness", params={
            "from": "2026-01-01", "to": "2026-03-31", "format": "xml"})
        assert r.status_code == 422
        # an empty period still lists its quarters, with nothing counted
        r = await http.get("/api/statistics/timeliness", params={
            "from": "2026-02-15", "to": "2026-04-15", "as_of": "2026-05-01"})
        final = next(m for m in r.json()["measures"] if m["measure"] == "final_plans")
        assert [(q["quarter"], q["starts_on"], q["ends_on"], q["figures"]["counted"])
                for q in final["quarters"]] == [("2026-Q1", "2026-02-15", "2026-03-31", 0),
                                                ("2026-Q2", "2026-04-01", "2026-04-15", 0)]
        assert final["figures"]["percent_on_time"] is None
    async with serve_app(settings_for(sqlite_url, "unused"), None, role="caseworker") as http:
        r = await http.get("/api/statistics/timeliness", params={"from": "2026-01-01",
                                                                 "to": "2026-03-31"})
        assert r.status_code == 403  # managers only (api/auth.py POLICY)


def test_every_figure_says_which_date_counts_as_the_docs_do():
    """Each deadline measure, measure f and DfE's figures say which date puts an item in a
    period, in the sentence docs/statistics.md gives."""
    from pathlib import Path

    from services.statistics import DfeCountedBy, OutcomesReport

    docs = (Path(__file__).resolve().parent.parent / "docs" / "statistics.md").read_text()
    sentences = [m.counted_by for m in tl.MEASURES.values()] + [
        OutcomesReport.model_fields["counted_by"].default, *DfeCountedBy().model_dump().values()]
    for sentence in sentences:
        assert sentence.startswith("Counted by the day "), sentence
        assert f"| {sentence} |" in docs, sentence
    assert all("due" in m.counted_by for m in tl.MEASURES.values())  # the due day, always
