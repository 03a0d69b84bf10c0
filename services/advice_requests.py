"""Where an advice request can go: the directory's active services, for the form a caseworker
asks for advice with (``api/action_forms.py``). Sending the requests is
``services.cases.request_advice``; which service and person each goes to by default is
``services.directory.resolve_request``.

Database reads only.
"""

from __future__ import annotations

from sqlmodel import Session, select

from store import tables as t


def active_services(*, session: Session) -> list[t.Service]:
    """Every active service in the directory, by name: those an advice request may name."""
    return list(session.exec(select(t.Service).where(t.Service.active)
                             .order_by(t.Service.name)).all())
