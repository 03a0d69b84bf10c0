"""``domain.agencies``' rule for the agency an advice item counts under, as SQL, for the
queries that count or list advice by agency (the statistics, the late lists)."""

from __future__ import annotations

from sqlalchemy import case, func, literal
from sqlalchemy.sql import ColumnElement

from domain.agencies import AGENCY_FOR_SOURCE
from store import tables as t


def source_agency(source: ColumnElement) -> ColumnElement:
    """The agency a kind of advice is counted under when no service is named, else "other"."""
    return case(*((source == s.value, literal(agency)) for s, agency in AGENCY_FOR_SOURCE.items()
                  if agency is not None), else_=literal("other"))


def agency_of(source: ColumnElement) -> ColumnElement:
    """The agency of the service asked (``t.Service``, joined), or else the one its source is
    counted under, or else "other" (``domain.agencies.advice_agency``)."""
    return func.coalesce(t.Service.agency, source_agency(source))
