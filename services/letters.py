"""Decision letters: the text of a refusal to assess (Reg 5(3)) or of a decision not to issue a
plan (Reg 10), with the appeal rights, mediation, disagreement resolution and information
services the law requires, rendered from ``templates/letters/<kind>.txt.j2``."""

from __future__ import annotations

from domain.case import CaseSnapshot, Letter
from services.rendering import render
from store import tables as t
from store.record import CaseRecorder


def letter_text(case: CaseSnapshot, letter: Letter, child: t.Child | None) -> str:
    return render(f"letters/{letter.kind}.txt.j2", case=case, letter=letter, child=child)


def case_recorder(db_url: str) -> CaseRecorder:
    """The case record's writer, with the letters' text from their templates."""
    return CaseRecorder(db_url, letter_text)
