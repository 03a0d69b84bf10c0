"""Writes the case record. The workflow is the only caller (through the activities
``record_case`` and ``record_review``), so it is the single writer.

``record_case`` is idempotent and order-insensitive: the snapshot carries the version of the
last event applied, so a retried or overtaken call never rolls the record back, and events are
keyed by (case, seq) so none is stored twice.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from functools import lru_cache
from typing import Callable, Sequence

from sqlmodel import Session, select, update

from store import tables as t
from store.db import engine_for
from domain.case import (
    PLAN_ENDED_STAGES,
    AdviceItem,
    AssessmentPolicy,
    CaseException,
    CaseSnapshot,
    Event,
    Letter,
    Milestone,
    ReviewPolicy,
    ReviewSnapshot,
    ReviewStage,
)
from domain.identifiers import review_workflow_id, workflow_id_for
from domain.review_cycle import law_due
from statutory import RULES
from statutory.clock import excusing_exceptions


# The text of a decision letter, from the case, the letter and the child's record (the
# letter goes to the family, so it names the child): ``services.letters.letter_text``.
LetterText = Callable[[CaseSnapshot, Letter, "t.Child | None"], str]


class CaseRecorder:
    """Saves what a case's workflow holds into the case record. ``letter_text`` writes each
    decision letter's text the first time the letter is saved."""

    def __init__(self, db_url: str, letter_text: LetterText) -> None:
        self.engine = engine_for(db_url)
        self.letter_text = letter_text

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

    def record_review(self, case: ReviewSnapshot, events: list[Event]) -> None:
        """One review cycle: its case row (kind "review"), its deadlines and advice, its
        ``review`` row, and the plan it belongs to."""
        with Session(self.engine) as s, s.begin():
            plan = s.exec(select(t.Plan).where(t.Plan.reference == case.plan_reference)
                          .with_for_update()).first()
            if plan is None:
                plan = t.Plan(**plan_columns(case))
                if case.origin == "assessment":  # the caseworker who ran the assessment
                    assessment = s.get(t.Case, case.plan_reference)
                    plan.caseworker_id = assessment.caseworker_id if assessment else None
                s.add(plan)
                s.flush()
            row = self._case_row(s, case, plan.workflow_id, case.anchor_on, "review",
                                 kind="review", caseworker_id=plan.caseworker_id)
            if row.version < case.version:
                self._write_snapshot(s, row, case)
                values = review_columns(case)
                review = s.get(t.Review, case.reference)
                if review is None:
                    s.add(t.Review(**values))
                else:
                    for k, v in values.items():
                        setattr(review, k, v)
            if plan.version < case.version:
                for k, v in plan_update(case, plan.current_cycle).items():
                    setattr(plan, k, v)
            self._add_events(s, case.reference, events)

    def record_first_cycles(self, records: Sequence[tuple[ReviewSnapshot, list[Event]]]) -> None:
        """The first records of review cycles whose workflows do not save them (plans brought
        in by the import, ``StartReview.imported_on``), many plans to a transaction: the same
        rows as ``record_review`` writes, inserted in bulk. Only rows not there already are
        added, so writing the same again changes nothing and a later save by the workflow
        itself (``record_review``, which may come first) is never undone."""
        rows: dict[type, list[dict]] = {m: [] for m in (t.Plan, t.Case, t.Review, t.Milestone,
                                                        t.AdviceItem, t.CaseException,
                                                        t.CaseEvent)}
        for case, events in records:
            if case.letters:
                raise ValueError(f"{case.reference}: a review cycle has no letters")
            plan = plan_columns(case)
            rows[t.Plan].append({**plan, **plan_update(case, case.cycle)})
            rows[t.Case].append({**case_columns(case, plan["workflow_id"], case.anchor_on,
                                                "review", kind="review"),
                                 **snapshot_columns(case)})
            rows[t.Review].append(review_columns(case))
            for model, _, values in item_rows(case):
                rows[model].append({"case_reference": case.reference, **values})
            rows[t.CaseEvent].extend(event_rows(case.reference, events))
        with Session(self.engine) as s, s.begin():
            for model, values in rows.items():  # in foreign-key order
                _insert_missing(s, model, values)

    # --- the shared parts ------------------------------------------------------------------------

    def _case_row(self, s: Session, case, workflow_id: str, started: date, source: str,
                  kind: str = "assessment", caseworker_id: str | None = None) -> t.Case:
        row = s.exec(
            select(t.Case).where(t.Case.reference == case.reference).with_for_update()
        ).first()
        if row is None:
            row = t.Case(**case_columns(case, workflow_id, started, source, kind=kind,
                                        caseworker_id=caseworker_id))
            s.add(row)
            s.flush()
        return row

    def _add_events(self, s: Session, reference: str, events: list[Event]) -> None:
        seen = set(s.exec(select(t.CaseEvent.seq).where(
            t.CaseEvent.case_reference == reference,
            t.CaseEvent.seq.in_([e.seq for e in events]))))  # type: ignore[attr-defined]
        for values in event_rows(reference, events):
            if values["seq"] not in seen:
                s.add(t.CaseEvent(**values))

    def _write_snapshot(self, s: Session, row: t.Case, case: CaseSnapshot | ReviewSnapshot) -> None:
        for k, v in snapshot_columns(case).items():
            setattr(row, k, v)
        ref = case.reference
        held: dict = {}
        for model, key_field, values in item_rows(case):
            if model not in held:
                held[model] = {getattr(r, key_field): r for r in s.exec(
                    select(model).where(model.case_reference == ref))}
            current = held[model].get(values[key_field])
            if current is None:
                s.add(model(case_reference=ref, **values))
            else:
                for k, v in values.items():
                    setattr(current, k, v)

        have = set(s.exec(select(t.Letter.kind).where(t.Letter.case_reference == ref)))
        for letter in case.letters:
            if letter.kind not in have:
                child = s.get(t.Child, case.child_id)
                s.add(t.Letter(case_reference=ref, kind=letter.kind, dated=letter.dated,
                               citation=letter.citation,
                               body=self.letter_text(case, letter, child)))


# The review's own dates, copied to the ``review`` row as they are.
REVIEW_FIELDS = ("meeting_on", "meeting_held_on", "decision", "decided_on",
                 "amendments_sent_on", "amended_plan_issued_on", "not_amended_on",
                 "cease_consulted_on", "ceased_on")
# The deadlines a cycle must meet; the earliest open one is the plan's "review due".
CYCLE_DEADLINES = ("review_due", "under_five_review_due", "phase_transfer_due")


# --- a snapshot as rows: shared by the activities above and the bulk writer -------------------


def plan_columns(case: ReviewSnapshot) -> dict:
    """The plan's row as its first recorded cycle makes it (before ``plan_update``)."""
    return dict(reference=case.plan_reference, child_id=case.child_id,
                issued_on=case.plan_issued_on,
                origin="import" if case.origin == "import" else "assessment",
                source_case_reference=case.plan_reference if case.origin == "assessment" else None,
                workflow_id=review_workflow_id(case.plan_reference), version=-1)


def plan_update(case: ReviewSnapshot, current_cycle: int) -> dict:
    """What a save of ``case`` sets on its plan, whose current cycle is ``current_cycle``
    (only when the plan's version is older than the snapshot's)."""
    out: dict = {"version": case.version, "current_cycle": max(current_cycle, case.cycle)}
    if case.stage in PLAN_ENDED_STAGES:
        out["status"] = "ceased" if case.stage is ReviewStage.CEASED else "closed"
        out["ended_on"] = case.closed_on
    if out["current_cycle"] == case.cycle:
        dues = [law_due(m) for m in case.milestones if m.done_on is None and m.applicable
                and m.key in CYCLE_DEADLINES]
        out["review_due"] = min(dues) if dues else None
        transfer = case.milestone("phase_transfer_due")
        out["transfer_kind"] = transfer.rule_id.rpartition(".")[2] if transfer else None
        out["transfer_year"] = transfer.due.year if transfer else None
        out["transfer_due"] = law_due(transfer) if transfer else None
    if case.placement is not None:
        p = case.placement
        out.update(nc_year=p.nc_year, nc_year_as_of=p.nc_year_as_of,
                   setting_type=p.setting_type, setting_name=p.setting_name)
    out["updated_at"] = datetime.now(timezone.utc)
    return out


def case_columns(case: CaseSnapshot | ReviewSnapshot, workflow_id: str, started: date,
                 source: str, *, kind: str = "assessment",
                 caseworker_id: str | None = None) -> dict:
    """The case row as its first save makes it (before ``snapshot_columns``)."""
    return dict(reference=case.reference, kind=kind, child_id=case.child_id,
                workflow_id=workflow_id, stage=case.stage.value, request_date=started,
                request_source=source, version=-1, caseworker_id=caseworker_id)


def snapshot_columns(case: CaseSnapshot | ReviewSnapshot) -> dict:
    """What each save of a newer snapshot sets on the case row."""
    return dict(
        stage=case.stage.value, is_open=case.stage.is_open, closed_on=case.closed_on,
        close_reason=case.close_reason, policy=case.policy.model_dump(), version=case.version,
        updated_at=datetime.now(timezone.utc),
        setting_name=(case.placement.setting_name if case.placement else None)
        if isinstance(case, ReviewSnapshot) else case.setting_name)


def item_rows(case: CaseSnapshot | ReviewSnapshot) -> list[tuple[type, str, dict]]:
    """Each deadline, setting consulted, piece of advice and exception of ``case`` as
    ``(table, key column, columns)``, ``case_reference`` left out."""

    def excused(item, started: date, advice_key: str | None = None) -> dict:
        return {"excused": bool(excusing_exceptions(
            RULES[item.rule_id], started, item.due, case.exceptions, advice_key=advice_key))}

    return [
        *((t.Milestone, "key", {**m.model_dump(), "due": law_due(m), "kind": "milestone",
                                **excused(m, m.started_on)}) for m in case.milestones),
        *((t.Milestone, "key", {**m.model_dump(), "kind": "setting",
                                **excused(m, m.started_on)}) for m in case.settings_consulted),
        *((t.AdviceItem, "key", {**a.model_dump(), **excused(a, a.requested_on, a.key)})
          for a in case.advice),
        *((t.CaseException, "id", x.model_dump()) for x in case.exceptions),
    ]


def review_columns(case: ReviewSnapshot) -> dict:
    """The cycle's ``review`` row."""
    return dict(case_reference=case.reference, plan_reference=case.plan_reference,
                cycle=case.cycle, anchor_on=case.anchor_on,
                **{name: getattr(case, name) for name in REVIEW_FIELDS},
                outcomes=[o.model_dump() for o in case.outcomes])


def event_rows(reference: str, events: list[Event]) -> list[dict]:
    return [{"case_reference": reference, **e.model_dump()} for e in events]


@lru_cache
def _defaults(model: type) -> tuple[tuple[str, object, object], ...]:
    """``(column, default, default factory)`` of each field a row may leave out; the
    primary keys the database numbers are left to it."""
    out = []
    for name, field in model.model_fields.items():
        if field.is_required() or (model.__table__.columns[name].primary_key
                                   and field.default is None):
            continue  # given by every row; or numbered by the database
        out.append((name, field.default, field.default_factory))
    return tuple(out)


def _insert_missing(s: Session, model: type, rows: list[dict]) -> None:
    """Insert ``rows`` into ``model``'s table, skipping any that would clash with a row there
    (a unique key): ``INSERT ... ON CONFLICT DO NOTHING`` on SQLite and PostgreSQL."""
    if not rows:
        return
    full = []
    for values in rows:
        row = dict(values)
        for name, default, factory in _defaults(model):
            if name not in row:
                row[name] = factory() if factory is not None else default
        full.append(row)
    dialect = s.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:
        raise NotImplementedError(f"bulk insert on {dialect}")
    s.execute(insert(model.__table__).on_conflict_do_nothing(), full)



# --- the record read back: a snapshot as the workflow held it at its last save ------------------


def read_snapshot(session: Session, row: t.Case) -> CaseSnapshot | ReviewSnapshot:
    """The case ``row`` as its workflow last saved it (a closed case, a finished review cycle,
    or lists that must not ask every workflow)."""
    ref = row.reference

    def rows(model, **where):
        q = select(model).where(model.case_reference == ref)
        for k, v in where.items():
            q = q.where(getattr(model, k) == v)
        return session.exec(q).all()

    if row.kind == "review":
        review = session.get(t.Review, ref)
        plan = session.get(t.Plan, review.plan_reference) if review else None
        assert review is not None and plan is not None
        return ReviewSnapshot(
            reference=ref, plan_reference=review.plan_reference, cycle=review.cycle,
            child_id=row.child_id, stage=row.stage, anchor_on=review.anchor_on,
            plan_issued_on=plan.issued_on, policy=ReviewPolicy(**row.policy),
            closed_on=row.closed_on, close_reason=row.close_reason, version=row.version,
            outcomes=review.outcomes,
            **{name: getattr(review, name) for name in REVIEW_FIELDS},
            milestones=[Milestone.model_validate(m, from_attributes=True)
                        for m in rows(t.Milestone, kind="milestone")],
            advice=[AdviceItem.model_validate(a, from_attributes=True)
                    for a in rows(t.AdviceItem)],
        )
    return CaseSnapshot(
        reference=ref, child_id=row.child_id, stage=row.stage, request_date=row.request_date,
        request_source=row.request_source, policy=AssessmentPolicy(**row.policy),
        plan_decided_on=row.plan_decided_on, closed_on=row.closed_on,
        close_reason=row.close_reason, version=row.version,
        milestones=[Milestone.model_validate(m, from_attributes=True)
                    for m in rows(t.Milestone, kind="milestone")],
        settings_consulted=[Milestone.model_validate(m, from_attributes=True)
                            for m in rows(t.Milestone, kind="setting")],
        advice=[AdviceItem.model_validate(a, from_attributes=True) for a in rows(t.AdviceItem)],
        exceptions=[CaseException.model_validate(e, from_attributes=True)
                    for e in rows(t.CaseException)],
        letters=[Letter.model_validate(x, from_attributes=True) for x in rows(t.Letter)],
    )
