"""The Jinja2 environment for everything rendered from ``templates/`` (letters, emails, pages).

Dates in every template are words, from ``domain.words``, registered here once for pages,
emails and letters alike: ``day(d)`` or ``d | day`` ("13 October 2026"), ``when(t)`` ("13
October 2026 at 8:15am"), ``size(n)`` ("14 KB"), ``text | sentence`` (a capital first letter,
the rest as written), and ``text | in_words`` for a stored sentence
(a timeline entry) whose ISO dates were written as such: "due 2026-10-13" reads "due 13
October 2026".
"""

from __future__ import annotations

import re
from datetime import date, datetime, timezone
from functools import lru_cache
from pathlib import Path

from jinja2 import (
    ChainableUndefined,
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    PackageLoader,
    PrefixLoader,
    select_autoescape,
)

from domain.problems import sentence
from domain.words import dates_in_words, file_size, long_date, long_time
from statutory import london_date

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"


# A sentence the review workflow once stored (domain.review_cycle before it said "due"):
# "Annual review 2: annual review completed by 2027-12-06" read as if the review were done.
_OLD_CYCLE_START = re.compile(r"^Annual review (\d+): annual review completed by ")


def in_words(text: str | None) -> str:
    """A stored sentence as it should read: ISO dates as words, and the old wording of a
    review cycle's start as what it meant."""
    return dates_in_words(_OLD_CYCLE_START.sub(
        r"Annual review \1 started: next annual review due by ", text or ""))


def entered_late(event: object) -> str:
    """For a timeline entry recorded after the day it happened (history entered later), the
    day it was entered, as a sentence; otherwise nothing."""
    on, at = getattr(event, "on", None), getattr(event, "at", None)
    if not isinstance(at, datetime) or not isinstance(on, date):
        return ""
    if at.tzinfo is None:  # SQLite gives back the UTC moment without its zone
        at = at.replace(tzinfo=timezone.utc)
    if london_date(at) <= on:
        return ""
    return f"Entered on {long_date(london_date(at))}."


@lru_cache
def jinja_env() -> Environment:
    env = Environment(
        loader=ChoiceLoader([
            FileSystemLoader(TEMPLATES_DIR),
            # The GOV.UK Design System's macros: {% from "govuk_frontend_jinja/components/...
            PrefixLoader({"govuk_frontend_jinja": PackageLoader("govuk_frontend_jinja")}),
        ]),
        autoescape=select_autoescape(["html", "html.j2"]),
        undefined=ChainableUndefined,  # govuk-frontend-jinja calls macros without arguments
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(day=long_date, when=long_time, size=file_size)
    env.filters.update(day=long_date, when=long_time, size=file_size, in_words=in_words,
                       entered_late=entered_late,
                       sentence=lambda text: sentence(text or ""))
    return env


def render(name: str, **context: object) -> str:
    return jinja_env().get_template(name).render(**context)
