"""Who looked at a child's record: every view or export of it, kept append-only
(``store.tables.AccessLog``; docs/data-protection.md).

A row names who (a staff account's id, with its name and email as they were then; a
professional through the link in an advice request; the ``ehc`` command), when (UTC), how
(``KINDS``), the child (their record's id, never their name), the case or plan reference or
the document, and the route. The database refuses to change a row, and to delete one unless
the child's record has been anonymised by the retention rule (migration 0012).

Which routes record what is ``api/access.py``'s table: the pages and API reads of one case or
plan are recorded there, once the answer is known to be a success; exports and the advice
page record here, from the service that knows which children they hold.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Callable, Iterable, Iterator, Sequence

from pydantic import BaseModel
from sqlalchemy import func
from sqlmodel import Session, select

from services.children import name_form
from services.errors import ServiceError
from services.staff import Staff
from store import tables as t
from store.db import side_session_for

# How a record was looked at, as the data protection officer's page says it.
KINDS = {
    "page": "Viewed a page",
    "api": "Read through the API",
    "export": "Exported",
    "document": "Downloaded a document",
    "advice page": "Opened the advice request page",
    "subject access": "Subject access export",
}
PAGE_SIZE = 50
CHUNK = 500


@dataclass(frozen=True)
class Viewer:
    """Who is looking, as the log keeps it: fixed at the time, so a later change of an
    account's name or email does not rewrite what happened."""

    staff_id: str | None
    who: str
    via: str  # session | token | advice link | command


ADVICE_LINK = Viewer(None, "A professional through the link in an advice request",
                     "advice link")


def command_viewer() -> Viewer:
    """The ``ehc`` command, as the operating-system user who ran it."""
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name: still logged
        user = "unknown user"
    return Viewer(None, f"The ehc command, run by {user}", "command")


def viewer_of(staff: Staff | Viewer | None) -> Viewer:
    if isinstance(staff, Viewer):
        return staff
    if staff is None:
        return Viewer(None, "Nobody signed in", "none")
    return Viewer(staff.id, f"{staff.name} <{staff.email}>"[:400],
                  "token" if staff.via == "token" else "session")


def record_access(*, session: Session, staff: Staff | Viewer | None, child_id: str | None,
                  reference: str | None, kind: str, what: str = "", route: str = "") -> None:
    """Append one row and commit it."""
    record_rows(session=session, staff=staff, rows=[(child_id, reference)], kind=kind,
                what=what, route=route)


def record_rows(*, session: Session, staff: Staff | Viewer | None,
                rows: Iterable[tuple[str | None, str | None]], kind: str, what: str = "",
                route: str = "") -> int:
    """Append one row per (child id, reference) and commit them: one export of many
    children. Returns how many."""
    if kind not in KINDS:
        raise ValueError(f"unknown access kind {kind!r}")
    v = viewer_of(staff)
    at = datetime.now(timezone.utc)
    n = 0
    for child_id, reference in rows:
        session.add(t.AccessLog(at=at, staff_id=v.staff_id, who=v.who, via=v.via, kind=kind,
                                child_id=child_id, reference=reference, what=what[:300],
                                route=route[:300]))
        n += 1
        if n % CHUNK == 0:
            session.flush()
    session.commit()
    return n


def children_of(session: Session, references: Sequence[str]) -> dict[str, str]:
    """Case and plan references -> the child id each is about (unknown ones left out)."""
    out: dict[str, str] = {}
    refs = sorted(set(references))
    for i in range(0, len(refs), CHUNK):
        chunk = refs[i:i + CHUNK]
        out.update(session.exec(select(t.Case.reference, t.Case.child_id)
                                .where(t.Case.reference.in_(chunk))).all())  # type: ignore[attr-defined]
        out.update(session.exec(select(t.Plan.reference, t.Plan.child_id)
                                .where(t.Plan.reference.in_(chunk))).all())  # type: ignore[attr-defined]
    return out


def record_reference(*, session: Session, staff: Staff | Viewer | None, reference: str,
                     kind: str, what: str = "", route: str = "") -> bool:
    """Log a look at the case or plan ``reference``; False (nothing logged) when no case or
    plan has it: nothing about a child was shown."""
    case = session.get(t.Case, reference)
    child = case.child_id if case else children_of(session, [reference]).get(reference)
    if child is None:
        return False
    record_access(session=session, staff=staff, child_id=child, reference=reference,
                  kind=kind, what=what, route=route)
    return True


def record_view(*, db_url: str, staff: Staff | Viewer | None, reference: str, kind: str,
                what: str = "", route: str = "") -> bool:
    """``record_reference`` in a session of its own, from the side pool (the routes'
    middleware, api/access.py, writes it while the request holds its own connection)."""
    with side_session_for(db_url) as session:
        return record_reference(session=session, staff=staff, reference=reference, kind=kind,
                                what=what, route=route)


def record_references(*, session: Session, staff: Staff | Viewer | None,
                      references: Iterable[str], kind: str, what: str = "",
                      route: str = "") -> int:
    """Log an export of these cases or plans: one row per reference."""
    refs = sorted({r for r in references if r})
    children = children_of(session, refs)
    return record_rows(session=session, staff=staff, kind=kind, what=what, route=route,
                       rows=[(children[r], r) for r in refs if r in children])


def logged_rows(rows: Iterable, *, session: Session, staff: Staff | Viewer | None,
                references_of: Callable[[object], Iterable[str]], what: str,
                route: str) -> Iterator:
    """``rows`` as they are streamed, logging an export of every case or plan in them once
    the last is read (before the answer's last bytes go; or when the download stops), in a
    session of its own."""
    seen: set[str] = set()
    try:
        for row in rows:
            seen.update(r for r in references_of(row) if r)
            yield row
    finally:  # a download stopped half-way still exported what it read
        url = session.get_bind().url.render_as_string(hide_password=False)
        with side_session_for(url) as own:  # the export's query still holds its connection
            record_references(session=own, staff=staff, references=seen, kind="export",
                              what=what, route=route)


# --- the data protection officer's questions -------------------------------------------------


class ChildFound(BaseModel):
    id: str
    given_name: str
    family_name: str
    date_of_birth: date
    anonymised_on: date | None
    references: list[str]  # the child's cases and plans


class AccessRow(BaseModel):
    at: datetime
    who: str
    via: str
    kind: str
    how: str  # the kind in words
    reference: str | None
    what: str
    route: str


class AccessPage(BaseModel):
    child: ChildFound
    rows: list[AccessRow]
    total: int
    page: int
    pages: int


def _found(session: Session, child: t.Child) -> ChildFound:
    refs = list(session.exec(select(t.Case.reference).where(t.Case.child_id == child.id)
                             .order_by(t.Case.request_date, t.Case.reference)).all())
    refs += session.exec(select(t.Plan.reference).where(t.Plan.child_id == child.id)
                         .order_by(t.Plan.reference)).all()
    return ChildFound(id=child.id, given_name=child.given_name, family_name=child.family_name,
                      date_of_birth=child.date_of_birth, anonymised_on=child.anonymised_on,
                      references=refs)


def find_children(*, session: Session, reference: str | None = None,
                  given_name: str | None = None, family_name: str | None = None,
                  date_of_birth: date | None = None) -> list[ChildFound]:
    """The children a case or plan reference (or the council's own id for the child) names,
    or with this name and date of birth (compared as ``services.children`` compares names)."""
    if reference:
        ref = reference.strip()
        child_id = children_of(session, [ref]).get(ref)
        child = session.get(t.Child, child_id) if child_id else session.exec(
            select(t.Child).where(t.Child.council_reference == ref)).first()
        return [_found(session, child)] if child else []
    if not (given_name and family_name and date_of_birth):
        return []
    want = (name_form(given_name), name_form(family_name))
    rows = session.exec(select(t.Child).where(t.Child.date_of_birth == date_of_birth)
                        .order_by(t.Child.created_at)).all()
    return [_found(session, c) for c in rows
            if (name_form(c.given_name), name_form(c.family_name)) == want]


def child_record(*, session: Session, child_id: str) -> ChildFound:
    child = session.get(t.Child, child_id)
    if child is None:
        raise ServiceError(404, "No child's record has this id; find the child again by a "
                           "reference, or by name and date of birth", "unknown_child")
    return _found(session, child)


def access_rows(session: Session, child_id: str) -> list[t.AccessLog]:
    """Every row about the child, newest first."""
    return list(session.exec(select(t.AccessLog).where(t.AccessLog.child_id == child_id)
                             .order_by(t.AccessLog.at.desc(), t.AccessLog.id.desc())).all())  # type: ignore[attr-defined,union-attr]


def _row(r: t.AccessLog) -> AccessRow:
    at = r.at if r.at.tzinfo else r.at.replace(tzinfo=timezone.utc)  # SQLite: naive UTC
    return AccessRow(at=at, who=r.who, via=r.via, kind=r.kind, how=KINDS.get(r.kind, r.kind),
                     reference=r.reference, what=r.what, route=r.route)


def child_access(*, session: Session, child_id: str, page: int = 1,
                 page_size: int = PAGE_SIZE) -> AccessPage:
    """Who viewed or exported the child's record, newest first, a page at a time."""
    child = child_record(session=session, child_id=child_id)
    total = session.exec(select(func.count()).select_from(t.AccessLog)
                         .where(t.AccessLog.child_id == child_id)).one()
    pages = max(1, -(-total // page_size))
    page = min(max(1, page), pages)
    rows = session.exec(select(t.AccessLog).where(t.AccessLog.child_id == child_id)
                        .order_by(t.AccessLog.at.desc(), t.AccessLog.id.desc())  # type: ignore[attr-defined,union-attr]
                        .offset((page - 1) * page_size).limit(page_size)).all()
    return AccessPage(child=child, rows=[_row(r) for r in rows], total=total, page=page,
                      pages=pages)
