"""Keeping the directory of who owes advice: services (schools, health, social care and
educational psychology teams), the named people in them, and the ADQA group; reading them and
changing them. (How the rest of the product uses the directory, to send and chase advice
requests, is ``services/directory.py``.)

Rows are never deleted: a service, contact or member who leaves is deactivated
(``active: false``), so the emails already sent to them keep their meaning.

The rules live here once, in the request models and the ``create_*``/``update_*`` functions;
the JSON API (``api/directory.py``), the web forms (``api/directory_pages.py``) and the demo
seed (``cli/seed.py``) all go through them:

- an agency is one of ``domain.agencies.AGENCIES``; email addresses look like addresses;
- service names and ADQA members' addresses are unique (ignoring case): a clash is a 409;
- at most one lead per service, and one default service per agency: making a contact the
  lead, or a service the default, takes it from the previous holder in the same transaction;
  an inactive contact or service can hold neither;
- a service's ladder override validates as ``domain.ladder.Ladder``.

Each change commits itself; a refusal is a ``DirectoryProblem`` (a ``ServiceError`` that
names the field to fix) and leaves nothing changed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import func, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from config.settings import Settings
from domain.addresses import looks_like_email
from domain.agencies import AGENCIES, AGENCY_LABELS
from domain.ladder import Ladder
from domain.names import name_problem
from domain.problems import FieldProblem, label
from services.directory import ServiceLadder, service_ladder
from services.errors import ServiceError
from store import tables as t


class DirectoryProblem(ServiceError):
    """A ``ServiceError`` that names the field to fix, so a web form can show it by the field."""

    def __init__(self, status: int, message: str, code: str, field: str | None = None) -> None:
        super().__init__(status, message, code)
        self.field = field


# --- field rules, shared by the API and the forms ------------------------------------------------


def _text(what: str, max_length: int, required: bool = True):
    def check(value: str | None) -> str | None:
        value = (value or "").strip()
        if not value:
            if required:
                raise ValueError(f"enter {what}")
            return None
        problem = name_problem(value, what=what, max_length=max_length)
        if problem:
            raise ValueError(problem)
        return value

    return check


def _email(what: str, required: bool = True):
    def check(value: str | None) -> str | None:
        value = (value or "").strip()
        if not value:
            if required:
                raise ValueError(f"enter {what}")
            return None
        if not looks_like_email(value):
            raise ValueError(f"enter {what} in the correct format, like name@example.org")
        return value

    return check


def _agency(value: str) -> str:
    value = value.strip()
    choices = f"{', '.join(AGENCIES[:-1])} or {AGENCIES[-1]}"
    if not value:
        raise ValueError(f"select the agency the service belongs to: {choices}")
    if value not in AGENCIES:
        raise ValueError(f"{value!r} is not an agency: use {choices}")
    return value


ServiceName = Annotated[str, AfterValidator(_text("the name of the service", 120))]
PersonName = Annotated[str, AfterValidator(_text("their full name", 120))]
Role = Annotated[str | None, AfterValidator(_text("their role", 120, required=False))]
Email = Annotated[str, AfterValidator(_email("an email address"))]
TeamEmail = Annotated[str | None, AfterValidator(_email("the team's email address",
                                                        required=False))]
Agency = Annotated[str, AfterValidator(_agency)]

LADDER_HELP = ("overrides, for this service's advice, the ladder from config/escalation.toml "
               "(same shape as one [ladders.X] table there); null: use the configured ladder")


class _Patch(BaseModel):
    """A partial update: fields left out stay as they are; only ``NULLABLE`` may be null."""

    model_config = ConfigDict(extra="forbid")
    NULLABLE: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="after")
    def _no_nulls(self) -> _Patch:
        for name in sorted(self.model_fields_set):
            if getattr(self, name) is None and name not in self.NULLABLE:
                raise FieldProblem(name, f"{label(name)} cannot be empty (null): leave it out "
                                   "to keep it as it is")
        return self


class ServiceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: ServiceName = Field(description="unique, e.g. 'Riverside Academy'")
    agency: Agency = Field(description=f"one of {', '.join(AGENCIES)}")
    team_email: TeamEmail = Field(None, description="the team's shared inbox: used when a "
                                  "request names no contact")
    is_default: bool = Field(False, description="asked by default for its agency's advice; "
                             "takes the place of the agency's previous default")
    ladder: Ladder | None = Field(None, description=LADDER_HELP)


class ServiceUpdate(_Patch):
    NULLABLE = frozenset({"team_email", "ladder"})
    name: ServiceName | None = None
    agency: Agency | None = None
    team_email: TeamEmail = None
    is_default: bool | None = None
    ladder: Ladder | None = Field(None, description=LADDER_HELP)
    active: bool | None = Field(None, description="false: deactivate (also stops it being the "
                                "default); true: reactivate")


class ContactIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: PersonName
    email: Email
    role: Role = Field(None, description="e.g. 'Special educational needs co-ordinator'")
    is_lead: bool = Field(False, description="the service lead, who gets escalations; takes "
                          "the place of the service's previous lead")


class ContactUpdate(_Patch):
    NULLABLE = frozenset({"role"})
    name: PersonName | None = None
    email: Email | None = None
    role: Role = None
    is_lead: bool | None = None
    active: bool | None = Field(None, description="false: deactivate (also stops them being "
                                "the lead); true: reactivate")


class AdqaMemberIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: PersonName
    email: Email = Field(description="unique in the group")
    role: Role = Field(None, description="e.g. 'Assistant Director, Education'")


class AdqaMemberUpdate(_Patch):
    NULLABLE = frozenset({"role"})
    name: PersonName | None = None
    email: Email | None = None
    role: Role = None
    active: bool | None = None


# --- responses ------------------------------------------------------------------------------------


class ContactOut(BaseModel):
    id: str
    service_id: str
    name: str
    email: str
    role: str | None
    is_lead: bool
    active: bool
    created_at: datetime


class ServiceOut(BaseModel):
    id: str
    name: str
    agency: str
    agency_label: str
    team_email: str | None
    is_default: bool
    ladder: dict[str, Any] | None
    active: bool
    created_at: datetime
    lead: ContactOut | None = Field(description="the active lead, if the service has one")
    contact_count: int = Field(description="active contacts")


class ServiceDetail(ServiceOut):
    contacts: list[ContactOut] = Field(description="the lead first, then by name; inactive "
                                       "contacts last")


class AdqaMemberOut(BaseModel):
    id: str
    name: str
    email: str
    role: str | None
    active: bool
    created_at: datetime


# --- reading --------------------------------------------------------------------------------------


def _service_row(session: Session, service_id: str) -> t.Service:
    row = session.get(t.Service, service_id)
    if row is None:
        raise DirectoryProblem(404, f"No service has the id {service_id!r}: check the id, or "
                               "find the service with GET /api/directory/services",
                               "unknown_service")
    return row


def _contact_row(session: Session, contact_id: str) -> t.Contact:
    row = session.get(t.Contact, contact_id)
    if row is None:
        raise DirectoryProblem(404, f"No contact has the id {contact_id!r}: check the id, or "
                               "find the contact in GET /api/directory/services/{service id}",
                               "unknown_contact")
    return row


def _member_row(session: Session, member_id: str) -> t.AdqaMember:
    row = session.get(t.AdqaMember, member_id)
    if row is None:
        raise DirectoryProblem(404, f"No ADQA member has the id {member_id!r}: check the id, "
                               "or find the member with GET /api/directory/adqa-members",
                               "unknown_adqa_member")
    return row


def _contact_order(c: t.Contact) -> tuple:
    return (not c.active, not c.is_lead, c.name.lower())


def _contact_out(row: t.Contact) -> ContactOut:
    return ContactOut.model_validate(row, from_attributes=True)


def _member_out(row: t.AdqaMember) -> AdqaMemberOut:
    return AdqaMemberOut.model_validate(row, from_attributes=True)


def _service_out(row: t.Service, contacts: list[t.Contact], detail: bool):
    active = [c for c in contacts if c.active]
    lead = next((c for c in active if c.is_lead), None)
    fields = dict(
        id=row.id, name=row.name, agency=row.agency,
        agency_label=AGENCY_LABELS.get(row.agency, row.agency), team_email=row.team_email,
        is_default=row.is_default, ladder=row.ladder, active=row.active,
        created_at=row.created_at, lead=_contact_out(lead) if lead else None,
        contact_count=len(active),
    )
    if not detail:
        return ServiceOut(**fields)
    return ServiceDetail(**fields, contacts=[_contact_out(c)
                                             for c in sorted(contacts, key=_contact_order)])


def _service_detail(session: Session, row: t.Service) -> ServiceDetail:
    contacts = session.exec(select(t.Contact).where(t.Contact.service_id == row.id)).all()
    return _service_out(row, list(contacts), detail=True)


def list_services(*, session: Session, agency: str | None = None,
                  include_inactive: bool = False) -> list[ServiceOut]:
    """Services in the agencies' order (``AGENCIES``), then by name; only ``agency``'s if
    given (422 if it is not an agency)."""
    q = select(t.Service)
    if agency is not None:
        try:
            agency = _agency(agency)
        except ValueError as exc:
            raise DirectoryProblem(422, f"Please correct: agency: {exc}", "invalid_input",
                                   field="agency") from None
        q = q.where(t.Service.agency == agency)
    if not include_inactive:
        q = q.where(t.Service.active)
    rows = session.exec(q).all()
    by_service: dict[str, list[t.Contact]] = {r.id: [] for r in rows}
    if rows:
        for c in session.exec(select(t.Contact).where(
                t.Contact.service_id.in_(list(by_service)))):  # type: ignore[attr-defined]
            by_service[c.service_id].append(c)
    order = {a: i for i, a in enumerate(AGENCIES)}
    rows = sorted(rows, key=lambda r: (order.get(r.agency, 99), r.name.lower()))
    return [_service_out(r, by_service[r.id], detail=False) for r in rows]


def read_service(*, session: Session, service_id: str) -> ServiceDetail:
    """A service with its contacts; 404 ``unknown_service`` if there is none."""
    return _service_detail(session, _service_row(session, service_id))


class ServicePage(BaseModel):
    """What a service's page shows: the service, and the ladder that chases its advice."""

    service: ServiceDetail
    chasing: ServiceLadder


def read_service_page(*, session: Session, settings: Settings, service_id: str) -> ServicePage:
    """A service with its contacts, and the ladder that chases its advice (``settings`` say
    where the council's ladders are); 404 ``unknown_service`` if there is none."""
    service = read_service(session=session, service_id=service_id)
    return ServicePage(service=service, chasing=service_ladder(
        settings=settings, agency=service.agency, ladder=service.ladder))


class ContactPage(BaseModel):
    """What a contact's page shows: the contact, and the name of their service."""

    contact: ContactOut
    service_name: str


def read_contact(*, session: Session, contact_id: str) -> ContactPage:
    """A contact and their service's name; 404 ``unknown_contact`` if there is none."""
    row = _contact_row(session, contact_id)
    service = _service_row(session, row.service_id)
    return ContactPage(contact=_contact_out(row), service_name=service.name)


def list_members(*, session: Session, include_inactive: bool = False) -> list[AdqaMemberOut]:
    q = select(t.AdqaMember)
    if not include_inactive:
        q = q.where(t.AdqaMember.active)
    rows = sorted(session.exec(q).all(), key=lambda m: (not m.active, m.name.lower()))
    return [_member_out(m) for m in rows]


def read_member(*, session: Session, member_id: str) -> AdqaMemberOut:
    """An ADQA member; 404 ``unknown_adqa_member`` if there is none."""
    return _member_out(_member_row(session, member_id))


# --- writing: the rules ---------------------------------------------------------------------------


@contextmanager
def _clash_is(session: Session, problem: DirectoryProblem) -> Iterator[None]:
    """Run the block's writes and send them; a unique constraint that fires (a clash the
    checks before could not see: a row added a moment ago by another request) becomes
    ``problem``, and nothing is changed. The caller commits."""
    try:
        yield
        session.flush()
    except IntegrityError:
        session.rollback()
        raise problem from None


def _late_name_clash(name: str) -> DirectoryProblem:
    return DirectoryProblem(409, f"A service called {name!r} was added a moment ago: choose "
                            "another name", "duplicate_service", field="name")


def _late_member_clash(email: str) -> DirectoryProblem:
    return DirectoryProblem(409, f"{email} was added to the ADQA group a moment ago: check "
                            "the address", "duplicate_adqa_member", field="email")


def _name_clash(session: Session, name: str, except_id: str | None) -> DirectoryProblem | None:
    q = select(t.Service).where(func.lower(t.Service.name) == name.lower())
    if except_id:
        q = q.where(t.Service.id != except_id)
    other = session.exec(q).first()
    if other is None:
        return None
    state = "" if other.active else " (deactivated)"
    return DirectoryProblem(409, f"A service called {other.name!r} is already in the "
                            f"directory{state}: choose another name, or change that service "
                            "instead", "duplicate_service", field="name")


def _member_clash(session: Session, email: str, except_id: str | None) -> DirectoryProblem | None:
    q = select(t.AdqaMember).where(func.lower(t.AdqaMember.email) == email.lower())
    if except_id:
        q = q.where(t.AdqaMember.id != except_id)
    other = session.exec(q).first()
    if other is None:
        return None
    if other.active:
        msg = (f"{other.email} is already in the ADQA group (as {other.name}): check the "
               "address, or change that member instead")
    else:
        msg = (f"{other.email} belonged to a former ADQA member, {other.name}: reactivate that "
               "member instead of adding them again")
    return DirectoryProblem(409, msg, "duplicate_adqa_member", field="email")


def _lock_agency(session: Session, agency: str, service_id: str | None) -> None:
    """Before a service becomes its agency's default: lock the agency's rows (PostgreSQL;
    SQLite has one writer at a time anyway), so that two requests naming different defaults
    at once take turns. Taken before anything is written, so it cannot deadlock."""
    where = t.Service.agency == agency
    if service_id:
        where = or_(where, t.Service.id == service_id)  # type: ignore[assignment]
    with session.no_autoflush:
        session.exec(select(t.Service.id).where(where).order_by(t.Service.id)
                     .with_for_update()).all()


def _clear_other_defaults(session: Session, row: t.Service) -> None:
    session.exec(update(t.Service).where(
        t.Service.agency == row.agency, t.Service.id != row.id, t.Service.is_default
    ).values(is_default=False))


def _lock_service(session: Session, service_id: str) -> None:
    """Before a contact becomes the lead: the service's row is the lock (as above)."""
    with session.no_autoflush:
        session.exec(select(t.Service.id).where(t.Service.id == service_id)
                     .with_for_update()).all()


def _clear_other_leads(session: Session, contact: t.Contact) -> None:
    session.exec(update(t.Contact).where(
        t.Contact.service_id == contact.service_id, t.Contact.id != contact.id,
        t.Contact.is_lead,
    ).values(is_lead=False))


@contextmanager
def _one_change(session: Session) -> Iterator[None]:
    """Run the block's writes and commit them; a refusal (``DirectoryProblem``) leaves
    nothing changed."""
    try:
        yield
        session.commit()
    except DirectoryProblem:
        session.rollback()
        raise


def _add_service(session: Session, body: ServiceIn) -> t.Service:
    clash = _name_clash(session, body.name, None)
    if clash:
        raise clash
    row = t.Service(name=body.name, agency=body.agency, team_email=body.team_email,
                    is_default=body.is_default,
                    ladder=body.ladder.model_dump(mode="json") if body.ladder else None)
    with _clash_is(session, _late_name_clash(body.name)):
        if row.is_default:
            _lock_agency(session, row.agency, None)
        session.add(row)
        if row.is_default:
            _clear_other_defaults(session, row)
    return row


def create_service(*, session: Session, body: ServiceIn) -> ServiceDetail:
    """Add a service (409 ``duplicate_service`` if the name is taken); as its agency's
    default, it takes the place of the previous one."""
    with _one_change(session):
        row = _add_service(session, body)
    return _service_detail(session, row)


def update_service(*, session: Session, service_id: str, body: ServiceUpdate) -> ServiceDetail:
    """Change the fields ``body`` gives; a service deactivated stops being the default, and
    one that is inactive cannot become it (409 ``inactive_service``)."""
    with _one_change(session):
        row = _service_row(session, service_id)
        given = body.model_fields_set
        name = body.name if "name" in given else row.name
        agency = body.agency if "agency" in given else row.agency
        active = bool(body.active) if "active" in given else row.active
        if "is_default" in given:
            is_default = bool(body.is_default)
        else:  # a service that has gone cannot be asked by default
            is_default = row.is_default and active
        if is_default and not active:
            raise DirectoryProblem(409, f"{row.name!r} is deactivated, so it cannot be the "
                                   f"default {AGENCY_LABELS.get(agency or '', agency)} service: "
                                   "reactivate it (active: true) first", "inactive_service",
                                   field="is_default")
        if name != row.name:
            clash = _name_clash(session, name or "", row.id)
            if clash:
                raise clash
        with _clash_is(session, _late_name_clash(name or "")):
            if is_default:
                _lock_agency(session, agency or row.agency, row.id)
            row.name, row.agency, row.active, row.is_default = name, agency, active, is_default
            if "team_email" in given:
                row.team_email = body.team_email
            if "ladder" in given:
                row.ladder = body.ladder.model_dump(mode="json") if body.ladder else None
            if row.is_default:
                _clear_other_defaults(session, row)
    return _service_detail(session, row)


def _add_contact(session: Session, service_id: str, body: ContactIn) -> t.Contact:
    service = _service_row(session, service_id)
    row = t.Contact(service_id=service.id, name=body.name, email=body.email, role=body.role,
                    is_lead=body.is_lead)
    if row.is_lead:
        _lock_service(session, service.id)
    session.add(row)
    if row.is_lead:
        _clear_other_leads(session, row)
    session.flush()
    return row


def create_contact(*, session: Session, service_id: str, body: ContactIn) -> ContactOut:
    """Add a contact to a service (404 ``unknown_service``); as its lead, they take the place
    of the previous one."""
    with _one_change(session):
        row = _add_contact(session, service_id, body)
    return _contact_out(row)


def update_contact(*, session: Session, contact_id: str, body: ContactUpdate) -> ContactOut:
    """Change the fields ``body`` gives; a contact deactivated stops being the lead, and one
    who is inactive cannot become it (409 ``inactive_contact``)."""
    with _one_change(session):
        row = _contact_row(session, contact_id)
        given = body.model_fields_set
        active = bool(body.active) if "active" in given else row.active
        if "is_lead" in given:
            is_lead = bool(body.is_lead)
        else:  # escalations must not go to someone who has left
            is_lead = row.is_lead and active
        if is_lead and not active:
            raise DirectoryProblem(409, f"{row.name} is deactivated, so they cannot be the "
                                   "service lead: reactivate them (active: true) first, or "
                                   "choose another lead", "inactive_contact", field="is_lead")
        if is_lead:
            _lock_service(session, row.service_id)
        for name in ("name", "email", "role"):
            if name in given:
                setattr(row, name, getattr(body, name))
        row.active, row.is_lead = active, is_lead
        if row.is_lead:
            _clear_other_leads(session, row)
        session.flush()
    return _contact_out(row)


def _add_member(session: Session, body: AdqaMemberIn) -> t.AdqaMember:
    clash = _member_clash(session, body.email, None)
    if clash:
        raise clash
    row = t.AdqaMember(name=body.name, email=body.email, role=body.role)
    with _clash_is(session, _late_member_clash(body.email)):
        session.add(row)
    return row


def create_member(*, session: Session, body: AdqaMemberIn) -> AdqaMemberOut:
    """Add a member to the ADQA group (409 ``duplicate_adqa_member`` if the address is in it,
    or was, for a former member)."""
    with _one_change(session):
        row = _add_member(session, body)
    return _member_out(row)


def update_member(*, session: Session, member_id: str, body: AdqaMemberUpdate) -> AdqaMemberOut:
    """Change the fields ``body`` gives (409 ``duplicate_adqa_member`` if the new address is
    another member's)."""
    with _one_change(session):
        row = _member_row(session, member_id)
        given = body.model_fields_set
        if "email" in given and body.email != row.email:
            clash = _member_clash(session, body.email or "", row.id)
            if clash:
                raise clash
        new_email = body.email if "email" in given and body.email else row.email
        with _clash_is(session, _late_member_clash(new_email)):
            for name in ("name", "email", "role", "active"):
                if name in given:
                    setattr(row, name, getattr(body, name))
    return _member_out(row)


def fill_empty_directory(*, session: Session,
                         services: Sequence[tuple[ServiceIn, Sequence[ContactIn]]],
                         members: Sequence[AdqaMemberIn]) -> bool:
    """Add these services (each with its contacts) and ADQA members if the directory has no
    services, through the same rules, in one transaction: all of it or none of it. Returns
    whether it did: a directory with services (a council's own, or these added by another
    process at the same moment) is left as it is."""
    if session.exec(select(t.Service.id).limit(1)).first() is not None:
        return False
    try:
        for service, contacts in services:
            row = _add_service(session, service)
            for contact in contacts:
                _add_contact(session, row.id, contact)
        for member in members:
            _add_member(session, member)
        session.commit()
    except (DirectoryProblem, IntegrityError):
        # Another process filled it (or someone added a service) at the same moment: theirs
        # stands, and nothing of this attempt is kept.
        session.rollback()
        return False
    return True
