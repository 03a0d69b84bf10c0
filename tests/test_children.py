"""The one child matcher (services.children), on SQLite and PostgreSQL: the API, the pages
and the plans import all find a child's record through it."""

from __future__ import annotations

import unicodedata
from datetime import date

from sqlmodel import Session, select

from services.children import ChildFacts, find_or_add_child
from store import tables as t
from store.db import engine_for

BORN = date(2016, 1, 14)


def _session(url: str) -> Session:
    return Session(engine_for(url), expire_on_commit=False)


def test_names_match_as_unicode_text_on_both_databases(db_url):
    """Before one matcher, the API compared names with SQL lower(), which on SQLite does not
    fold 'Ë': a request for 'Zoë Kowalczyk' made a second record of 'ZOË KOWALCZYK', and so a
    second open case for the same child."""
    with _session(db_url) as s:
        s.add(t.Child(id="zoe", given_name="ZOË", family_name="KOWALCZYK", date_of_birth=BORN))
        s.commit()
        found = find_or_add_child(s, ChildFacts("Zoë", "Kowalczyk", BORN))
        assert (found.child_id, found.added) == ("zoe", False)
        # the same letters written as a base letter and a combining diaeresis (NFD)
        decomposed = unicodedata.normalize("NFD", "Zoë")
        assert decomposed != "Zoë"
        assert find_or_add_child(s, ChildFacts(decomposed, "  kowalczyk ", BORN)).child_id == "zoe"
        # accents count: Zoe is someone else
        other = find_or_add_child(s, ChildFacts("Zoe", "Kowalczyk", BORN))
        assert other.added and other.child_id != "zoe"


def test_the_council_id_decides_and_is_learnt(db_url):
    with _session(db_url) as s:
        s.add(t.Child(id="p1", given_name="Sam", family_name="Example", date_of_birth=BORN,
                      council_reference="P1"))
        s.add(t.Child(id="nopid", given_name="Ada", family_name="Lovelace", date_of_birth=BORN))
        s.commit()
        # same name and birthday, another council id: another child
        assert find_or_add_child(s, ChildFacts("Sam", "Example", BORN, "P2")).added
        # the council id wins over a name that differs, with a note to check
        by_id = find_or_add_child(s, ChildFacts("Samuel", "Example", BORN, "P1"))
        assert by_id.child_id == "p1" and not by_id.added and "differs" in by_id.note
        # a record without a council id learns the one given
        learnt = find_or_add_child(s, ChildFacts("ada", "LOVELACE", BORN, "P3"))
        assert learnt.child_id == "nopid"
        assert s.exec(select(t.Child.council_reference).where(t.Child.id == "nopid")).one() == "P3"
