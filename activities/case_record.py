"""Saving a case: the workflow's only way to write the case record (``store.record``)."""

from __future__ import annotations

from temporalio import activity

from domain.case import CaseSnapshot, Event, ReviewSnapshot
from store.record import CaseRecorder


class CaseRecordActivities:
    def __init__(self, recorder: CaseRecorder) -> None:
        self.recorder = recorder

    @activity.defn(name="record_case")
    def record_case(self, case: CaseSnapshot, events: list[Event]) -> None:
        self.recorder.record_case(case, events)

    @activity.defn(name="record_review")
    def record_review(self, case: ReviewSnapshot, events: list[Event]) -> None:
        self.recorder.record_review(case, events)
