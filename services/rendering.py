"""The Jinja2 environment for everything rendered from ``templates/`` (letters, emails, pages)."""

from __future__ import annotations

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

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"


@lru_cache
def jinja_env() -> Environment:
    return Environment(
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


def render(name: str, **context: object) -> str:
    return jinja_env().get_template(name).render(**context)
