"""The managers' lists (late now, due soon) and a caseworker's own cases, as the API and the
pages ask for them: what they may ask (the sort), over the read queries of ``store/worklist.py``
(which says what is listed, and how).

The list's models and choices (``Filters``, ``WorkPage``, ``SORTS``, ...) are the store's,
named here for the routes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Iterator

from sqlmodel import Session, select

from services import access_log
from services.allocation import caseworkers
from services.staff import Staff
from services.errors import ServiceError
from store import tables as t
import store.worklist
from store.worklist import (
    MAX_DAYS_OVERDUE,
    MAX_PAGE_SIZE,
    PARTY_LABELS,
    SORTS,
    Filters,
    MyCase,
    Which,
    WorkItem,
    WorkPage,
)

__all__ = ["MAX_DAYS_OVERDUE", "MAX_PAGE_SIZE", "PARTY_LABELS", "SORTS", "Filters", "MyCase", "Which", "WorkItem",
           "WorkPage", "ListPage", "check_sort", "list_page", "my_cases", "work_items",
           "work_list"]


def check_sort(sort: str) -> None:
    if sort not in SORTS:
        raise ServiceError(422, f"sort must be one of {', '.join(SORTS)}", "invalid_input")


def work_list(*, session: Session, which: Which, on: date, days: int, filters: Filters,
              sort: str, page: int, page_size: int) -> WorkPage:
    """One page of the list, judged on the day ``on``, and how many there are in all."""
    check_sort(sort)
    return store.worklist.query(session, which, on, days=days, filters=filters, sort=sort,
                                page=page, page_size=page_size)


def work_items(*, session: Session, which: Which, on: date, days: int, filters: Filters,
               sort: str) -> Iterator[WorkItem]:
    """Every item of the list, in order (the CSV). The sort is checked now; the database is
    read as the items are taken."""
    check_sort(sort)
    return store.worklist.iter_items(session, which, on, days=days, filters=filters,
                                     sort=sort)


def export_items(*, session: Session, staff: Staff | None, which: Which, on: date, days: int,
                 filters: Filters, sort: str) -> Iterator[WorkItem]:
    """``work_items`` for the CSV download: an export, logged for every case in it
    (``services.access_log``)."""
    return access_log.logged_rows(
        work_items(session=session, which=which, on=on, days=days, filters=filters, sort=sort),
        session=session, staff=staff, references_of=lambda item: [item.case_reference],
        what=f"The {'late' if which == 'late' else 'due soon'} list as CSV",
        route="GET /api/worklist/{which}.csv")


@dataclass
class ListPage:
    """The page ``/late``: a page of the list, and what its filters offer."""

    result: WorkPage
    services: list[t.Service]
    caseworkers: list[t.StaffUser]


def list_page(*, session: Session, which: Which, on: date, days: int,
              filters: Filters | None, sort: str, page: int, page_size: int) -> ListPage:
    """The page ``/late``; ``filters`` None (the form's filters have problems): no items."""
    if filters is None:
        result = WorkPage(which=which, today=on, total=0, page=1, page_size=page_size, items=[])
    else:
        result = store.worklist.query(session, which, on, days=days, filters=filters, sort=sort,
                                      page=page, page_size=page_size)
    services = list(session.exec(select(t.Service).order_by(t.Service.name)).all())
    return ListPage(result=result, services=services, caseworkers=caseworkers(session=session))


def my_cases(*, session: Session, caseworker_id: str, on: date) -> list[MyCase]:
    """The open cases a caseworker holds, the one with the nearest deadline first."""
    return store.worklist.my_cases(session, caseworker_id, on)
