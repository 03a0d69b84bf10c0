"""Writes the case record. The workflow is the only caller, so it is the single writer.

``record_case`` is idempotent and order-insensitive: the snapshot carries the version of the
last event applied, so a retried or overtaken call never rolls the record back, and events are
keyed by (case, seq) so none is stored twice.
"""

from __future__ import annotations

from sqlmodel import Session, select, update
from temporalio import activity

from activities.rendering import render
from models import tables as t
from models.db import engine_for
from models.schemas import CaseSnapshot, Event


def workflow_id_for(reference: str) -> str:
    """The Temporal workflow ID of a case: its reference only, never personal data."""
    return f"assessment-{reference}"


class CaseRecorder:
    def __init__(self, db_url: str) -> None:
        self.engine = engine_for(db_url)

    @activity.defn(name="record_case")
    def record_case(self, case: CaseSnapshot, events: list[Event]) -> None:
        with Session(self.engine) as s, s.begin():
            row = s.exec(
                select(t.Case).where(t.Case.reference == case.reference).with_for_update()
            ).first()
            if row is None:
                row = t.Case(reference=case.reference, child_id=case.child_id,
                             workflow_id=workflow_id_for(case.reference), stage=case.stage.value,
                             request_date=case.request_date,
                             request_source=case.request_source.value, version=-1)
                s.add(row)
                s.flush()
            if row.version < case.version:
                self._write_snapshot(s, row, case)
                if not case.stage.is_open:  # release the child for a new request
                    s.exec(update(t.Child).where(
                        t.Child.id == case.child_id,
                        t.Child.open_case_reference == case.reference,
                    ).values(open_case_reference=None))
            seen = set(s.exec(select(t.CaseEvent.seq).where(
                t.CaseEvent.case_reference == case.reference,
                t.CaseEvent.seq.in_([e.seq for e in events]))))  # type: ignore[attr-defined]
            for e in events:
                if e.seq not in seen:
                    s.add(t.CaseEvent(case_reference=case.reference, **e.model_dump()))

    def _write_snapshot(self, s: Session, row: t.Case, case: CaseSnapshot) -> None:
        row.stage = case.stage.value
        row.is_open = case.stage.is_open
        row.plan_decided_on = case.plan_decided_on
        row.closed_on = case.closed_on
        row.close_reason = case.close_reason
        row.policy = case.policy.model_dump()
        row.version = case.version
        ref = case.reference

        def upsert(model, key_field: str, items: list, **extra) -> None:
            existing = {getattr(r, key_field): r for r in s.exec(
                select(model).where(model.case_reference == ref))}
            for item in items:
                values = {**item.model_dump(), **extra}
                current = existing.get(values[key_field])
                if current is None:
                    s.add(model(case_reference=ref, **values))
                else:
                    for k, v in values.items():
                        setattr(current, k, v)

        upsert(t.Milestone, "key", case.milestones, kind="milestone")
        upsert(t.Milestone, "key", case.settings_consulted, kind="setting")
        upsert(t.AdviceItem, "key", case.advice)
        upsert(t.CaseException, "id", case.exceptions)

        have = set(s.exec(select(t.Letter.kind).where(t.Letter.case_reference == ref)))
        for letter in case.letters:
            if letter.kind not in have:
                child = s.get(t.Child, case.child_id)
                s.add(t.Letter(case_reference=ref, kind=letter.kind, dated=letter.dated,
                               citation=letter.citation,
                               body=render(f"letters/{letter.kind}.txt.j2", case=case,
                                           letter=letter, child=child)))
