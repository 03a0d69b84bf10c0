"""Finding a child's record: one matcher for every way a child comes in (an assessment
started in the pages or the API, a plan imported from the council's caseload).

A child is matched on the council's own id for them (``Child.council_reference``), else on
given name, family name and date of birth. Names are compared as Unicode text, in Python, the
same on SQLite and PostgreSQL: Unicode-normalised (NFKC), case-folded (``ZOË`` is ``Zoë``,
``STRASSE`` is ``straße``) and with runs of spaces made one. Accents count: ``Zoe`` is not
``Zoë``. A name and birthday match whose record holds another council id is a different
child. A matched record without a council id learns the one given.

Two writers adding the same council id at once: the database's unique key refuses the second,
and it looks again and finds the first's.
"""

from __future__ import annotations

import unicodedata
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from typing import Iterable, Sequence

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from store import tables as t

CHUNK = 500  # values per IN (...) list and rows per commit


@dataclass(frozen=True)
class ChildFacts:
    """Who a request or a plan is about, as given."""

    given_name: str
    family_name: str
    date_of_birth: date
    council_reference: str | None = None


@dataclass(frozen=True)
class Match:
    child_id: str
    added: bool  # no record matched: this one was made now
    note: str | None = None  # something a person should check


def name_form(name: str) -> str:
    """A name as it is compared: NFKC, case-folded, single spaces."""
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())


def _key(given: str, family: str, born: date) -> tuple[str, str, date]:
    return name_form(given), name_form(family), born


def _chunks(items: Sequence, size: int = CHUNK) -> Iterable[Sequence]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def match_children(session: Session, wanted: Sequence[ChildFacts]) -> list[Match]:
    """Find or add the record of each child in ``wanted``, in order, and commit. The same
    child twice in ``wanted`` is one record. Raises ``IntegrityError`` when another writer
    added one of the council ids meanwhile (``resolve_children`` looks again)."""
    out: list[Match] = []
    by_ref: dict[str, t.Child] = {}
    refs = sorted({w.council_reference for w in wanted if w.council_reference})
    for chunk in _chunks(refs):
        for c in session.exec(select(t.Child).where(t.Child.council_reference.in_(chunk))):  # type: ignore[union-attr]
            by_ref[c.council_reference] = c  # type: ignore[index]
    by_name: dict[tuple[str, str, date], list[t.Child]] = defaultdict(list)
    for chunk in _chunks(sorted({w.date_of_birth for w in wanted})):
        for c in session.exec(select(t.Child).where(t.Child.date_of_birth.in_(chunk))  # type: ignore[attr-defined]
                              .order_by(t.Child.created_at, t.Child.id)):
            by_name[_key(c.given_name, c.family_name, c.date_of_birth)].append(c)
    pending = 0
    for w in wanted:
        ref = w.council_reference or None
        key = _key(w.given_name, w.family_name, w.date_of_birth)
        note = None
        child = by_ref.get(ref) if ref else None
        if child is not None:
            if _key(child.given_name, child.family_name, child.date_of_birth) != key:
                note = ("matched on the council's id to a child record whose name or date of "
                        "birth differs: check the child record")
        else:
            child = next((c for c in by_name.get(key, ())
                          if ref is None or c.council_reference in (None, ref)), None)
            if child is not None and ref and child.council_reference is None:
                child.council_reference = ref  # the council's id, learnt now
                by_ref[ref] = child
                session.add(child)
                pending += 1
        added = child is None
        if child is None:
            child = t.Child(given_name=w.given_name.strip(), family_name=w.family_name.strip(),
                            date_of_birth=w.date_of_birth, council_reference=ref)
            session.add(child)
            by_name[key].append(child)
            if ref:
                by_ref[ref] = child
            pending += 1
        out.append(Match(child.id, added, note))
        if pending >= CHUNK:
            session.commit()
            pending = 0
    session.commit()
    return out


def resolve_children(session: Session, wanted: Sequence[ChildFacts]) -> list[Match]:
    """``match_children``, looking again (up to three passes) when another writer took one of
    the council ids first."""
    for attempt in range(3):
        try:
            return match_children(session, wanted)
        except IntegrityError:
            session.rollback()
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def find_or_add_child(session: Session, child: ChildFacts) -> Match:
    return resolve_children(session, [child])[0]
