"""Writes the case record. The workflow is the only caller, so it is the single writer.

``record_case`` is idempotent and order-insensitive: the snapshot carries the version of the
last event applied, so a retried or overtaken call never rolls the record back, and events are
keyed by (case, seq) so none is stored twice.
"""

from __future__ import annotations

from datetime import date, datetime, timezone

from sqlmodel import Session, select, update
from temporalio import activity

from activities.rendering import render
from models import tables as t
from models.db import engine_for
from models.schemas import PLAN_ENDED_STAGES, CaseSnapshot, Event, ReviewSnapshot, ReviewStage
from statutory import RULES
from statutory.clock import excusing_exceptions


def workflow_id_for(reference: str) -> str:
    """The Temporal workflow ID of a case: its reference only, never personal data. A review
    cycle (``<plan>.R<n>``) belongs to its plan's review workflow."""
    plan, dot, cycle = reference.rpartition(".R")
    if dot and cycle.isdigit():
        return f"review-{plan}"
    return f"assessment-{reference}"


class CaseRecorder:
    def __init__(self, db_url: str) -> None:
        self.engine = engine_for(db_url)

    @activity.defn(name="record_case")
    def record_case(self, case: CaseSnapshot, events: list[Event]) -> None:
        with Session(self.engine) as s, s.begin():
            row = self._case_row(s, case, workflow_id_for(case.reference),
                                 case.request_date, case.request_source.value,
                                 caseworker_id=case.caseworker_id)
            if row.version < case.version:
                row.plan_decided_on = case.plan_decided_on
                self._write_snapshot(s, row, case)
                if not case.stage.is_open:  # release the child for a new request
                    s.exec(update(t.Child).where(
                        t.Child.id == case.child_id,
                        t.Child.open_case_reference == case.reference,
                    ).values(open_case_reference=None))
            self._add_events(s, case.reference, events)

    @activity.defn(name="record_review")
    def record_review(self, case: ReviewSnapshot, events: list[Event]) -> None:
        """One review cycle: its case row (kind "review"), its deadlines and advice, its
        ``review`` row, and the plan it belongs to."""
        with Session(self.engine) as s, s.begin():
            plan = s.exec(select(t.Plan).where(t.Plan.reference == case.plan_reference)
                          .with_for_update()).first()
            if plan is None:
                plan = t.Plan(reference=case.plan_reference, child_id=case.child_id,
                              issued_on=case.plan_issued_on,
                              origin="import" if case.origin == "import" else "assessment",
                              source_case_reference=case.plan_reference
                              if case.origin == "assessment" else None,
                              workflow_id=f"review-{case.plan_reference}", version=-1)
                if case.origin == "assessment":  # the caseworker who ran the assessment
                    assessment = s.get(t.Case, case.plan_reference)
                    plan.caseworker_id = assessment.caseworker_id if assessment else None
                s.add(plan)
                s.flush()
            row = self._case_row(s, case, plan.workflow_id, case.anchor_on, "review",
                                 kind="review", caseworker_id=plan.caseworker_id)
            if row.version < case.version:
                self._write_snapshot(s, row, case)
                review = s.get(t.Review, case.reference)
                if review is None:
                    review = t.Review(case_reference=case.reference,
                                      plan_reference=case.plan_reference, cycle=case.cycle,
                                      anchor_on=case.anchor_on)
                    s.add(review)
                for name in REVIEW_FIELDS:
                    setattr(review, name, getattr(case, name))
                review.outcomes = [o.model_dump() for o in case.outcomes]
            if plan.version < case.version:
                plan.version = case.version
                plan.current_cycle = max(plan.current_cycle, case.cycle)
                if case.stage in PLAN_ENDED_STAGES:
                    plan.status = "ceased" if case.stage is ReviewStage.CEASED else "closed"
                    plan.ended_on = case.closed_on
                if plan.current_cycle == case.cycle:
                    dues = [m.due for m in case.milestones if m.done_on is None and m.applicable
                            and m.key in CYCLE_DEADLINES]
                    plan.review_due = min(dues) if dues else None
                    transfer = case.milestone("phase_transfer_due")
                    plan.transfer_kind = transfer.rule_id.rpartition(".")[2] if transfer else None
                    plan.transfer_year = transfer.due.year if transfer else None
                    plan.transfer_due = transfer.due if transfer else None
                if case.placement is not None:
                    p = case.placement
                    plan.nc_year, plan.nc_year_as_of = p.nc_year, p.nc_year_as_of
                    plan.setting_type, plan.setting_name = p.setting_type, p.setting_name
                plan.updated_at = datetime.now(timezone.utc)
            self._add_events(s, case.reference, events)

    # --- the shared parts ------------------------------------------------------------------------

    def _case_row(self, s: Session, case, workflow_id: str, started: date, source: str,
                  kind: str = "assessment", caseworker_id: str | None = None) -> t.Case:
        row = s.exec(
            select(t.Case).where(t.Case.reference == case.reference).with_for_update()
        ).first()
        if row is None:
            row = t.Case(reference=case.reference, kind=kind, child_id=case.child_id,
                         workflow_id=workflow_id, stage=case.stage.value, request_date=started,
                         request_source=source, version=-1, caseworker_id=caseworker_id)
            s.add(row)
            s.flush()
        return row

    def _add_events(self, s: Session, reference: str, events: list[Event]) -> None:
        seen = set(s.exec(select(t.CaseEvent.seq).where(
            t.CaseEvent.case_reference == reference,
            t.CaseEvent.seq.in_([e.seq for e in events]))))  # type: ignore[attr-defined]
        for e in events:
            if e.seq not in seen:
                s.add(t.CaseEvent(case_reference=reference, **e.model_dump()))

    def _write_snapshot(self, s: Session, row: t.Case, case: CaseSnapshot | ReviewSnapshot) -> None:
        row.stage = case.stage.value
        row.is_open = case.stage.is_open
        row.closed_on = case.closed_on
        row.close_reason = case.close_reason
        row.policy = case.policy.model_dump()
        row.version = case.version
        row.updated_at = datetime.now(timezone.utc)
        row.setting_name = (case.placement.setting_name if case.placement else None) \
            if isinstance(case, ReviewSnapshot) else case.setting_name
        ref = case.reference

        held: dict = {}

        def upsert(model, key_field: str, items: list, **extra) -> None:
            if model not in held:
                held[model] = {getattr(r, key_field): r for r in s.exec(
                    select(model).where(model.case_reference == ref))}
            existing = held[model]
            for item in items:
                values = {**item.model_dump(), **extra}
                current = existing.get(values[key_field])
                if current is None:
                    s.add(model(case_reference=ref, **values))
                else:
                    for k, v in values.items():
                        setattr(current, k, v)

        def excused(item, started: date, advice_key: str | None = None) -> dict:
            return {"excused": bool(excusing_exceptions(
                RULES[item.rule_id], started, item.due, case.exceptions, advice_key=advice_key))}

        for m in case.milestones:
            upsert(t.Milestone, "key", [m], kind="milestone", **excused(m, m.started_on))
        for m in case.settings_consulted:
            upsert(t.Milestone, "key", [m], kind="setting", **excused(m, m.started_on))
        for a in case.advice:
            upsert(t.AdviceItem, "key", [a], **excused(a, a.requested_on, a.key))
        upsert(t.CaseException, "id", case.exceptions)

        have = set(s.exec(select(t.Letter.kind).where(t.Letter.case_reference == ref)))
        for letter in case.letters:
            if letter.kind not in have:
                child = s.get(t.Child, case.child_id)
                s.add(t.Letter(case_reference=ref, kind=letter.kind, dated=letter.dated,
                               citation=letter.citation,
                               body=render(f"letters/{letter.kind}.txt.j2", case=case,
                                           letter=letter, child=child)))


# The review's own dates, copied to the ``review`` row as they are.
REVIEW_FIELDS = ("meeting_on", "meeting_held_on", "decision", "decided_on",
                 "amendments_sent_on", "amended_plan_issued_on", "not_amended_on",
                 "cease_consulted_on", "ceased_on")
# The deadlines a cycle must meet; the earliest open one is the plan's "review due".
CYCLE_DEADLINES = ("review_due", "under_five_review_due", "phase_transfer_due")
