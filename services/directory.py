"""The directory of who owes advice, as the rest of the product uses it: which service and
person an advice request goes to, which ladder chases it (``service_ladder``: the one that
chases advice asked of a given service), and who receives each email.

Database reads only; ``services/directory_admin.py`` keeps the rows (the directory's API and
pages go through it).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ValidationError
from sqlmodel import Session, select

from domain.problems import problems

from store import tables as t
from domain.ladder import Ladder, LadderConfig, Recipient
from domain.case import AdviceRequest, AdviceSource
from config.settings import Settings
from domain.agencies import AGENCY_FOR_SOURCE, AGENCY_LABELS, SOURCE_FOR_AGENCY

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ESCALATION_FILE = ROOT / "config" / "escalation.toml"

class DirectoryError(ValueError):
    """A request names a service or contact that cannot be used; the message says why."""


class ConfigError(RuntimeError):
    """The escalation configuration file is missing or invalid."""


def escalation_file(settings: Settings) -> Path:
    return Path(settings.escalation_file) if settings.escalation_file else DEFAULT_ESCALATION_FILE


def load_escalation(settings: Settings) -> LadderConfig:
    path = escalation_file(settings)
    try:
        st = path.stat()
        stamp = (st.st_mtime_ns, st.st_size)
    except OSError as exc:
        raise ConfigError(f"escalation configuration {path} cannot be read: {exc}") from exc
    return _load(str(path), stamp)


@lru_cache(maxsize=8)
def _load(path: str, _stamp: tuple[int, int]) -> LadderConfig:  # reloaded when the file changes
    try:
        with open(path, "rb") as f:
            return LadderConfig.model_validate(tomllib.load(f))
    except tomllib.TOMLDecodeError as exc:  # say which file and why
        raise ConfigError(f"escalation configuration {path} is invalid: {exc}") from exc
    except ValidationError as exc:  # in words: pydantic's own text names its internals
        why = "; ".join(p.message for p in problems(exc.errors()))
        raise ConfigError(f"escalation configuration {path} is invalid: {why}") from exc


def active_services(*, session: Session) -> list[t.Service]:
    """Every active service in the directory, by name: those an advice request may name (the
    caseworker's form for asking for advice lists them)."""
    return list(session.exec(select(t.Service).where(t.Service.active)
                             .order_by(t.Service.name)).all())


def default_service(session: Session, source: AdviceSource) -> t.Service | None:
    agency = AGENCY_FOR_SOURCE.get(source)
    if agency is None:
        return None
    return session.exec(select(t.Service).where(
        t.Service.agency == agency, t.Service.is_default, t.Service.active
    ).order_by(t.Service.name)).first()


def social_worker_for(session: Session, child_id: str) -> t.Contact | None:
    """The owner of the child's open looked-after, child protection or child in need plan (in
    that order), if they are an active contact in an active social care service. A plan whose
    owner has left is passed over for the next kind."""
    priority = ("looked_after", "child_protection", "child_in_need")
    rows = session.exec(select(t.LinkedPlan, t.Contact, t.Service).where(
        t.LinkedPlan.child_id == child_id,
        t.LinkedPlan.ended_on.is_(None),  # type: ignore[union-attr]
        t.LinkedPlan.kind.in_(priority),  # type: ignore[attr-defined]
        t.Contact.id == t.LinkedPlan.owner_contact_id,
        t.Service.id == t.Contact.service_id,
        t.Contact.active, t.Service.active, t.Service.agency == "social_care",
    )).all()
    by_kind = {plan.kind: contact for plan, contact, _ in rows}
    return next((by_kind[k] for k in priority if k in by_kind), None)


def resolve_request(session: Session, config: LadderConfig, req: AdviceRequest, *,
                    child_id: str | None = None) -> AdviceRequest:
    """The request with its service (the default for its kind when none is named) and the
    ladder that will chase it. Raises ``DirectoryError`` naming what to fix.

    Social care advice asked without a contact goes to the child's social worker when
    ``child_id`` is given and the child has an open looked-after, CP or CIN plan
    (``social_worker_for``): the plan's owner and their service, unless the request names a
    different service, which is then respected."""
    if (child_id and req.source == AdviceSource.SOCIAL_CARE and not req.contact_id
            and not req.reuse_existing):
        owner = social_worker_for(session, child_id)
        if owner is not None and req.service_id in (None, owner.service_id):
            req = req.model_copy(update={"contact_id": owner.id,
                                         "service_id": owner.service_id})
    service: t.Service | None = None
    if req.service_id:
        service = session.get(t.Service, req.service_id)
        if service is None:
            raise DirectoryError(f"No service has the id {req.service_id!r}: pick one from "
                                 "GET /api/directory/services")
        if not service.active:
            raise DirectoryError(f"The service {service.name!r} is no longer active: pick "
                                 "another")
        agency = AGENCY_FOR_SOURCE.get(req.source)
        if agency is not None and service.agency != agency:
            raise DirectoryError(f"{service.name!r} is a {AGENCY_LABELS[service.agency]} "
                                 f"service; {req.source.label} comes from a "
                                 f"{AGENCY_LABELS[agency]} service")
    elif not req.reuse_existing and not req.contact_id:
        service = default_service(session, req.source)  # a named person brings their service
    if req.contact_id:
        contact = session.get(t.Contact, req.contact_id)
        if contact is None or not contact.active:
            raise DirectoryError(f"No active contact has the id {req.contact_id!r}")
        if service is None:
            service = session.get(t.Service, contact.service_id)
            agency = AGENCY_FOR_SOURCE.get(req.source)
            if service is not None and agency is not None and service.agency != agency:
                raise DirectoryError(f"{contact.name} works in {service.name!r}, a "
                                     f"{AGENCY_LABELS[service.agency]} service; "
                                     f"{req.source.label} comes from a "
                                     f"{AGENCY_LABELS[agency]} service")
        elif contact.service_id != service.id:
            raise DirectoryError(f"{contact.name} does not work in {service.name!r}")
    override = Ladder.model_validate(service.ladder) if service and service.ladder else None
    ladder = None if req.reuse_existing else config.for_source(req.source.value, override)
    return req.model_copy(update={"service_id": service.id if service else None,
                                  "ladder": ladder})


@dataclass(frozen=True)
class Addressee:
    role: Recipient
    name: str | None
    address: str
    link: bool  # gets the secure link to submit the advice


def addressees(session: Session, roles: list[Recipient], service_id: str | None,
               contact_id: str | None) -> tuple[list[Addressee], list[str]]:
    """Who receives an email for each role, resolved now (a contact who has changed since the
    request gets it at their current address). Returns (addressees, roles nobody holds)."""
    service = session.get(t.Service, service_id) if service_id else None
    out: list[Addressee] = []
    missing: list[str] = []
    for role in roles:
        found: list[Addressee] = []
        if role == "professional":
            contact = session.get(t.Contact, contact_id) if contact_id else None
            if contact is not None and contact.active:
                found.append(Addressee(role, contact.name, contact.email, True))
            elif service is not None and service.team_email:
                found.append(Addressee(role, service.name, service.team_email, True))
        elif role == "service_lead" and service is not None:
            lead = session.exec(select(t.Contact).where(
                t.Contact.service_id == service.id, t.Contact.is_lead, t.Contact.active)).first()
            if lead is not None:
                found.append(Addressee(role, lead.name, lead.email, True))
        elif role == "adqa":
            for m in session.exec(select(t.AdqaMember).where(t.AdqaMember.active)
                                  .order_by(t.AdqaMember.email)):
                found.append(Addressee(role, m.name, m.email, False))
        if found:
            out.extend(a for a in found if a.address.lower() not in
                       {o.address.lower() for o in out})
        else:
            missing.append(role)
    return out, missing


# --- the ladder that chases a service's advice ----------------------------------------------------

class ServiceLadder(BaseModel):
    """The ladder that chases advice asked of a service, and where it comes from."""

    source: AdviceSource | None  # the kind of advice its agency gives; None: no one kind
    own: bool  # the service's own ladder, instead of the council's
    ladder: Ladder | None  # None: the configuration cannot be read (``problem`` says why)
    problem: str | None = None
    file: str | None = None  # the council's ladder: the file it is written in,
    table: str | None = None  # and its table there (the kind of advice, or "default")


def service_ladder(*, settings: Settings, agency: str, ladder: dict | None) -> ServiceLadder:
    """The ladder ``resolve_request`` would copy onto a request for the advice of a service of
    ``agency`` whose own ladder is ``ladder``: that one, else the configured one for the
    agency's kind of advice."""
    source = SOURCE_FOR_AGENCY.get(agency)
    kind = source.value if source else "default"
    override = Ladder.model_validate(ladder) if ladder else None
    try:
        config = load_escalation(settings)
    except ConfigError as exc:
        if override is None:
            return ServiceLadder(source=source, own=False, ladder=None, problem=str(exc))
        return ServiceLadder(source=source, own=True, ladder=override)
    chased_by = config.for_source(kind, override)
    if override is not None:
        return ServiceLadder(source=source, own=True, ladder=chased_by)
    path = escalation_file(settings)
    return ServiceLadder(
        source=source, own=False, ladder=chased_by,
        file="config/escalation.toml" if path == DEFAULT_ESCALATION_FILE else str(path),
        table=kind if kind in config.ladders else "default")
