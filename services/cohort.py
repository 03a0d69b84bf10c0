"""The phase-transfer cohort as the system uses it: reading a year's cohort (``read_cohort``)
and ``bring_forward``, which the API (``api/cohort.py``), the page and ``ehc phase-transfer
bring-forward`` all use to bring reviews forward. See docs/phase-transfers.md.

The cohort itself is worked out by ``store.cohort.build_cohort`` from the database. Bringing a
review forward is the review workflow's ``set_phase_transfer`` update on the plan's current
cycle, sent through ``services.cases.act`` like any caseworker action: the workflow validates it
and says why when it refuses.
"""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Literal

from pydantic import BaseModel, Field
from sqlmodel import Session
from temporalio.client import Client

from domain.case import PhaseTransferDue, ReviewAction, SetPhaseTransfer
from services import cases
from services.errors import ServiceError
from store.cohort import (
    AT_RISK_DAYS,
    STATUS_LABELS,
    STATUSES,
    Cohort,
    CohortEntry,
    build_cohort,
    default_year,
)

__all__ = ["AT_RISK_DAYS", "STATUS_LABELS", "STATUSES", "CONCURRENCY", "BringForwardItem",
           "BringForwardResult", "Cohort", "Outcome", "bring_forward", "default_year",
           "read_cohort"]

CONCURRENCY = 8  # updates in flight at once when bringing a cohort forward


def read_cohort(*, session: Session, year: int, today: date,
                at_risk_days: int = AT_RISK_DAYS) -> Cohort:
    """``year``'s cohort as on ``today`` (``store.cohort.build_cohort``)."""
    return build_cohort(session, year, today, at_risk_days)


# --- bringing reviews forward ---------------------------------------------------------------------

Outcome = Literal["brought_forward", "already", "rejected", "failed", "would_bring_forward"]


class BringForwardItem(BaseModel):
    plan_reference: str
    cycle_reference: str
    kind: Literal["school", "post16"]
    transfer_year: int
    deadline: date
    outcome: Outcome = Field(description="brought_forward: done; already: the review already "
                             "had it; rejected: the workflow refused (see message); failed: "
                             "Temporal could not be reached or answered with an error; "
                             "would_bring_forward: dry run")
    message: str | None = None
    review_due: date | None = Field(None, description="the phase transfer deadline the review "
                                    "now carries")


class BringForwardResult(BaseModel):
    year: int
    today: date
    dry_run: bool
    items: list[BringForwardItem] = Field(description="one per plan that was not brought "
                                          "forward; none when there is nothing to do")
    counts: dict[str, int]
    ok: bool = Field(description="false when any plan was rejected or failed")


async def _bring_one(client: Client, session: Session, entry: CohortEntry,
                     actor: str | None) -> BringForwardItem:
    tr = entry.transfer
    item = BringForwardItem(plan_reference=entry.plan_reference,
                            cycle_reference=entry.cycle_reference, kind=tr.kind,
                            transfer_year=tr.transfer_year, deadline=tr.deadline,
                            outcome="brought_forward")
    cmd = SetPhaseTransfer(transfer=PhaseTransferDue(kind=tr.kind,
                                                     transfer_year=tr.transfer_year),
                           actor=actor)
    try:
        view = await cases.act(session=session, client=client, reference=entry.cycle_reference,
                               action=ReviewAction.SET_PHASE_TRANSFER, payload=cmd, actor=None)
    except ServiceError as exc:
        # The workflow's own refusal. "Duplicate": the review has had it since the record
        # was read (a run that overlapped this one): nothing to do, not a failure.
        item.outcome = "already" if exc.code == "duplicate" else \
            "failed" if exc.status >= 500 else "rejected"  # 503/504: Temporal, not the review
        item.message = exc.message
        return item
    except Exception as exc:  # Temporal unreachable, timed out: say so, carry on with the rest
        item.outcome, item.message = "failed", f"{type(exc).__name__}: {exc}"
        return item
    m = view.case.milestone("phase_transfer_due")
    item.review_due = m.due if m is not None else None
    return item


async def bring_forward(*, client: Client | None, session: Session, year: int, today: date,
                        dry_run: bool = False, actor: str | None = None,
                        at_risk_days: int = AT_RISK_DAYS) -> BringForwardResult:
    """Send ``set_phase_transfer`` to the current review of every plan in ``year``'s cohort
    whose status is ``not_brought_forward``. Idempotent: a plan brought forward is no longer
    ``not_brought_forward`` once its workflow has recorded it, so a second run finds nothing
    to do. ``client`` may be None for a dry run."""
    cohort = build_cohort(session, year, today, at_risk_days)
    todo = [e for e in cohort.entries if e.status == "not_brought_forward"]
    if dry_run:
        items = [BringForwardItem(plan_reference=e.plan_reference,
                                  cycle_reference=e.cycle_reference, kind=e.transfer.kind,
                                  transfer_year=e.transfer.transfer_year,
                                  deadline=e.transfer.deadline, outcome="would_bring_forward")
                 for e in todo]
    else:
        if todo and client is None:
            raise ValueError("bringing reviews forward needs a Temporal client")
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(entry: CohortEntry) -> BringForwardItem:
            async with gate:
                return await _bring_one(client, session, entry, actor)  # type: ignore[arg-type]

        items = list(await asyncio.gather(*(one(e) for e in todo)))
    counts: dict[str, int] = {}
    for i in items:
        counts[i.outcome] = counts.get(i.outcome, 0) + 1
    return BringForwardResult(year=year, today=today, dry_run=dry_run, items=items,
                              counts=counts,
                              ok=not any(i.outcome in ("rejected", "failed") for i in items))
