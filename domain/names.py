"""What a person's name may hold, for every name the system keeps (a child's given and family
names, staff accounts, the directory's contacts, ADQA members): one rule, here.

A name is trimmed, must not be blank once trimmed, has a length limit, and holds no control
or format characters: no line break (CR, LF, and the Unicode line and paragraph separators),
no tab, no NUL, no other character of Unicode's categories Cc (control) and Cf (format, which
includes the right-to-left override that makes text read backwards). A name goes into email
headers (``To: Name <address>``) and onto pages: a line break there once stopped a contact's
emails. The zero-width joiner and non-joiner (U+200D, U+200C), which some scripts need to
spell a name, are allowed.

``name_problem`` says what is wrong in words; ``clean_name`` gives the name to store, or
raises ``ValueError`` with that sentence (so a pydantic validator or ``FieldProblem`` puts it
by the field). Pure (the standard library only).
"""

from __future__ import annotations

import unicodedata

from domain.problems import missing

ALLOWED_FORMAT = frozenset("\u200c\u200d")  # zero-width non-joiner and joiner
LINE_SEPARATORS = frozenset("\u2028\u2029")


def bad_character(text: str) -> str | None:
    """The first character of ``text`` that may not be in a name, else None."""
    for ch in text:
        if ch in LINE_SEPARATORS or (
                unicodedata.category(ch) in ("Cc", "Cf") and ch not in ALLOWED_FORMAT):
            return ch
    return None


def name_problem(text: str, *, what: str, max_length: int) -> str | None:
    """What is wrong with the (trimmed) name ``text``, as a sentence starting with ``what``
    (the field as its form labels it), or None."""
    ch = bad_character(text)
    if ch is not None and (ch in "\r\n" or ch in LINE_SEPARATORS):
        return f"{what} must be on one line: remove the line break"
    if ch is not None:
        return (f"{what} has a hidden character in it that is not part of a name (a tab or "
                "a control character): type the name again rather than pasting it")
    if len(text) > max_length:
        return f"{what} must be {max_length} characters or fewer"
    return None


def clean_name(value: str | None, *, what: str, max_length: int,
               required: bool = True) -> str | None:
    """The name to store: trimmed; None when blank and not ``required``. Raises
    ``ValueError`` (a sentence naming ``what``) when blank and required, or when
    ``name_problem`` finds something."""
    text = (value or "").strip()
    if not text:
        if required:
            raise ValueError(missing(what))
        return None
    problem = name_problem(text, what=what, max_length=max_length)
    if problem:
        raise ValueError(problem)
    return text
