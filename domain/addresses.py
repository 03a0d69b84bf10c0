"""What an email address must look like, for every address the system keeps (the directory's
contacts and teams, ADQA members, staff accounts).

email-validator is not a dependency: a plain shape check (something@domain.tld, no spaces,
one @). The mail server has the last word; the outbox records what it said.
"""

from __future__ import annotations

import re

from domain.names import bad_character

EMAIL_PATTERN = re.compile(r"[^@\s,;<>()\[\]\"]+@[^@\s,;<>()\[\]\"]+\.[A-Za-z0-9-]{2,}")
MAX_EMAIL = 254  # RFC 5321's limit on a path


def looks_like_email(text: str) -> bool:
    return len(text) <= MAX_EMAIL and EMAIL_PATTERN.fullmatch(text) is not None \
        and bad_character(text) is None
