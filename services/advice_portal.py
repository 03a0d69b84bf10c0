"""What the professionals' secure advice page does (the page itself is ``api/advice_portal.py``):
open the one advice request a link names, take advice for it, or take a reason it will be late.

A professional is emailed ``{public_base_url}/advice/{token}``; the signed token
(``services.links``) names one case and one advice key and is the only thing in the URL, so
a link opens that one request and nothing else (``read_link``, ``open_request``). The request
is read live from the case's workflow while the case is open, else from the case record; it
describes the child minimally (given name and family-name initial). Nobody signs in.

Submitting (``submit_advice``, ``report_delay``) stores an ``AdviceSubmission`` (pending) and
its ``AdviceDocument``s in one transaction, then asks the workflow, the case's only writer, to
record the advice with the submission's id. The submission is marked accepted when the
workflow takes it, and deleted (with its documents) when the workflow rejects it, so a
rejected submission leaves nothing behind. The workflow refuses a second receipt of the same
advice, so a reused link or a double submit never counts twice. If the outcome of the update
is unknown (Temporal went away while it ran), the submission stays pending and is settled the
next time the link is opened: accepted if the workflow names it, deleted if it names another.

Whatever stops a link or a submission is raised as one of the ``Stop`` exceptions below, each
saying what happened; the page says it to the professional. Uploaded files are checked by
``services.uploads``.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import date
from typing import Sequence

from sqlalchemy import delete, update
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, select
from temporalio.client import Client, WorkflowUpdateFailedError

from config.settings import Settings
from domain.case import Action, AdviceItem, CaseSnapshot, RecordAdvice, ReportAdviceDelay
from services import access_log
from services import cases
from services.clock import today
from services.directory import load_escalation
from services.errors import ServiceError
from services.temporal import EngineTimeout, EngineUnavailable, engine_call
from services.links import AdviceLink, LinkExpired, LinkInvalid, read_advice_token
from services.uploads import Upload
from statutory import RULES
from store import tables as t
from store.record import read_snapshot

log = logging.getLogger("ehc.advice_portal")

MAX_TOKEN_CHARS = 600


# --- what stops a link or a submission -----------------------------------------------------------


class Stop(Exception):
    """What ends a request for advice before (or instead of) taking what was sent."""


class InvalidLink(Stop):
    """The link is not one of ours: altered, cut short, or made with another secret."""


class ExpiredLink(Stop):
    """The link is older than links live (``link_days``)."""

    def __init__(self, link_days: int) -> None:
        super().__init__(f"links work for {link_days} days")
        self.link_days = link_days


class UnknownCase(Stop):
    """The case the link was made for is not in the record."""


class UnknownRequest(Stop):
    """The case has no advice request with the link's key."""


class RequestClosed(Stop):
    """The case has finished or been closed: nothing more is needed."""

    def __init__(self, ask: Ask) -> None:
        super().__init__(ask.reference)
        self.ask = ask


class AlreadyReceived(Stop):
    """The advice is in (``ask.item.received_on``)."""

    def __init__(self, ask: Ask) -> None:
        super().__init__(ask.reference)
        self.ask = ask


class Unavailable(Stop):
    """Temporal (or a worker to answer) could not be reached; nothing sent was kept."""


class OutcomeUnconfirmed(Stop):
    """The advice was stored but whether the workflow took it is not known; it is kept pending
    and settled the next time the link is opened."""


class NotRecorded(Stop):
    """The workflow refused what was sent, for a reason the professional cannot fix."""

    def __init__(self, reference: str, error: ServiceError) -> None:
        super().__init__(error.message)
        self.reference, self.error = reference, error


class DateRefused(Stop):
    """The workflow refused the date a delay report expects the advice by (its clock can
    differ from ours at midnight); ``message`` says why, for the date's field."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UpdateFailed(Stop):
    """The workflow failed while it ran the update (``cause``): nothing was applied."""

    def __init__(self, what: str, cause: BaseException) -> None:
        super().__init__(what)
        self.what, self.cause = what, cause


def database_unreachable(exc: BaseException) -> bool:
    """Whether a failure was the database's (then trying again shortly may work)."""
    return isinstance(exc, DBAPIError)


# --- what one link opens -------------------------------------------------------------------------


@dataclass
class Ask:
    """What one link opens: a case, one advice request in it, and how to describe them."""

    reference: str
    key: str
    case: t.Case
    snapshot: CaseSnapshot
    item: AdviceItem
    child: str
    service: str | None
    closed: bool = field(init=False)

    def __post_init__(self) -> None:
        self.closed = not self.case.is_open or not self.snapshot.stage.is_open

    @property
    def what(self) -> str:
        text = self.item.label or self.item.source.label
        return text[:1].upper() + text[1:]

    def context(self) -> dict[str, object]:
        now = today()
        return {
            "reference": self.reference, "what": self.what,
            "citation": self.item.source.citation if self.snapshot.kind == "assessment"
            else RULES[self.item.rule_id].citation,
            "process": "EHC needs assessment" if self.snapshot.kind == "assessment"
            else "annual review of their EHC plan",
            "requested_on": self.item.requested_on,
            "due": self.item.due, "overdue_days": max(0, (now - self.item.due).days),
            "expected_on": self.item.expected_on, "service": self.service, "child": self.child,
        }


def _child_initials(child: t.Child | None) -> str:
    """Given name and family-name initial: enough for the professional to know whom the
    request is about, and never the full name or date of birth."""
    if child is None:
        return "the child or young person"
    initial = child.family_name.strip()[:1].upper()
    return f"{child.given_name.strip()} {initial}." if initial else child.given_name.strip()


def read_link(*, settings: Settings, token: str) -> AdviceLink:
    """The case and advice request a link's token names. Raises ``InvalidLink`` or
    ``ExpiredLink``."""
    if len(token) > MAX_TOKEN_CHARS:
        raise InvalidLink()
    try:
        return read_advice_token(settings, token, load_escalation(settings).link_days)
    except LinkExpired:
        raise ExpiredLink(load_escalation(settings).link_days) from None
    except LinkInvalid:
        raise InvalidLink() from None


async def _query(session: Session, client: Client | None,
                 reference: str) -> CaseSnapshot | None:
    """The live case from its workflow; None if there is no such workflow. Raises when
    Temporal (or a worker to answer) cannot be reached in time (``engine_call``'s bound)."""
    async with engine_call(session, client, acting=False):
        view = await cases.live_view(client, reference)  # type: ignore[arg-type]
    return view.case if view is not None else None


async def _load(session: Session, client: Client | None, reference: str, key: str, *,
                live_required: bool) -> Ask:
    row = session.get(t.Case, reference)
    if row is None:
        raise UnknownCase()
    snapshot: CaseSnapshot | None = None
    if row.is_open:
        try:
            snapshot = await _query(session, client, reference)
        except Exception as exc:  # noqa: BLE001 - any failure to reach Temporal
            log.warning("case %s: Temporal not reachable for the advice page (%s)", reference,
                        type(exc).__name__)
            if live_required:
                raise Unavailable() from None
    if snapshot is None:
        snapshot = read_snapshot(session, row)
    item = snapshot.advice_item(key)
    if item is None:
        raise UnknownRequest()
    service = session.get(t.Service, item.service_id) if item.service_id else None
    return Ask(reference=reference, key=key, case=row, snapshot=snapshot, item=item,
               child=_child_initials(session.get(t.Child, row.child_id)),
               service=service.name if service else None)


async def open_request(*, session: Session, client: Client | None, link: AdviceLink,
                       live_required: bool, route: str = "GET /advice/{token}") -> Ask:
    """The advice request a link opens, still open and not yet received. Pending submissions
    the workflow has since settled are settled here first (see the module's docstring).

    Read live from the workflow while the case is open; when Temporal cannot be reached, from
    the record, unless ``live_required`` (about to take something: ``Unavailable``). Raises
    ``UnknownCase``, ``UnknownRequest``, ``RequestClosed`` or ``AlreadyReceived``. An opened
    request is logged in the access log (a professional through the link, on ``route``)."""
    ask = await _load(session, client, link.reference, link.advice_key,
                      live_required=live_required)
    _settle(session, ask)
    if ask.closed:
        raise RequestClosed(ask)
    if ask.item.received_on is not None:
        raise AlreadyReceived(ask)
    access_log.record_access(session=session, staff=access_log.ADVICE_LINK,
                             child_id=ask.case.child_id, reference=ask.reference,
                             kind="advice page", what="The advice request page",
                             route=route)
    return ask


def _settle(session: Session, ask: Ask) -> None:
    """Once the advice is received, the workflow names the submission that counted (if any):
    mark it accepted and remove any other pending advice submission for this request, which
    can never count."""
    if ask.item.received_on is None:
        return
    pending = session.exec(select(t.AdviceSubmission).where(
        t.AdviceSubmission.case_reference == ask.reference,
        t.AdviceSubmission.advice_key == ask.key,
        t.AdviceSubmission.kind == "advice",
        t.AdviceSubmission.status == "pending",
    )).all()
    for sub in pending:
        if sub.id == ask.item.submission_id:
            _mark_accepted(session, sub.id)
        else:
            _discard(session, sub.id)


# --- storing ------------------------------------------------------------------------------------


def _new_submission(ask: Ask, kind: str, name: str, role: str, text: str,
                    expected_on: date | None = None) -> t.AdviceSubmission:
    return t.AdviceSubmission(case_reference=ask.reference, advice_key=ask.key, kind=kind,
                              text=text, expected_on=expected_on,
                              submitted_by=f"{name}, {role}" if role else name)


def _store(session: Session, sub: t.AdviceSubmission, uploads: Sequence[Upload] = ()) -> None:
    """The submission (pending) and its documents, in one transaction."""
    try:
        session.add(sub)
        session.flush()  # the submission row before the documents that refer to it
        for u in uploads:
            session.add(t.AdviceDocument(
                submission_id=sub.id, filename=u.filename, content_type=u.content_type,
                size=len(u.data), sha256=hashlib.sha256(u.data).hexdigest(), content=u.data))
        session.commit()
    except BaseException:
        session.rollback()
        raise


def _mark_accepted(session: Session, submission_id: str) -> None:
    session.execute(update(t.AdviceSubmission).where(t.AdviceSubmission.id == submission_id)
                    .values(status="accepted"))
    session.commit()


def _discard(session: Session, submission_id: str) -> None:
    """Remove a submission the workflow did not take, with its documents."""
    try:
        session.execute(delete(t.AdviceDocument).where(
            t.AdviceDocument.submission_id == submission_id))
        session.execute(delete(t.AdviceSubmission).where(
            t.AdviceSubmission.id == submission_id, t.AdviceSubmission.status == "pending"))
        session.commit()
    except BaseException:
        session.rollback()
        raise


# --- asking the workflow -----------------------------------------------------------------------


async def _act(client: Client, session: Session, reference: str, action: Action,
               cmd: RecordAdvice | ReportAdviceDelay) -> None:
    await cases.act(session=session, client=client, reference=reference, action=action,
                    payload=cmd, actor=None)


async def _run_update(session: Session, client: Client, ask: Ask, action: Action,
                      cmd: RecordAdvice | ReportAdviceDelay, submission_id: str) -> None:
    """Ask the workflow to take the submission. On rejection the submission is removed and a
    ``Stop`` says why; when the outcome cannot be known, see the module's docstring."""
    try:  # bounded by ``engine_call`` (services/temporal.py): EngineTimeout past the bound
        await _act(client, session, ask.reference, action, cmd)
        return
    except EngineUnavailable:  # refused before it was sent: nothing can apply it later
        _discard(session, submission_id)
        raise Unavailable() from None
    except EngineTimeout as exc:  # sent, not confirmed: the outcome is unknown (below)
        log.warning("case %s advice %s: outcome of %s unknown (%s)", ask.reference, ask.key,
                    action.value, exc.code)
    except ServiceError as exc:
        _discard(session, submission_id)
        log.info("case %s advice %s: %s rejected (%s); submission removed", ask.reference,
                 ask.key, action.value, exc.code)
        if exc.code in ("duplicate",):
            raise AlreadyReceived(await _reload(session, client, ask)) from None
        if exc.code in ("case_closed", "caseclosed"):
            raise RequestClosed(ask) from None
        if exc.code == "invaliddate" and action is Action.REPORT_ADVICE_DELAY:
            raise DateRefused(exc.message) from None
        if exc.code == "unknown_case":
            raise UnknownCase() from None
        raise NotRecorded(ask.reference, exc) from None
    except WorkflowUpdateFailedError as exc:  # failed in the workflow: nothing was applied
        _discard(session, submission_id)
        raise UpdateFailed(f"{action.value} update", exc) from None
    except Exception as exc:  # noqa: BLE001 - the outcome is unknown
        log.warning("case %s advice %s: outcome of %s unknown (%s)", ask.reference, ask.key,
                    action.value, type(exc).__name__)
    if action is Action.RECORD_ADVICE:
        try:
            snapshot = await _query(session, client, ask.reference)
        except Exception:  # noqa: BLE001
            snapshot = None
        item = snapshot.advice_item(ask.key) if snapshot else None
        if item is not None and item.submission_id == submission_id:
            return  # it was taken after all
        if item is not None and item.received_on is not None:
            _discard(session, submission_id)
            ask.item = item
            raise AlreadyReceived(ask)
        # Not taken yet, but it may still be: keep it pending; the next visit settles it.
        raise OutcomeUnconfirmed()
    # A delay report can safely be sent again; the workflow does not name it, so remove it.
    _discard(session, submission_id)
    raise Unavailable()


async def _reload(session: Session, client: Client, ask: Ask) -> Ask:
    try:
        return await _load(session, client, ask.reference, ask.key, live_required=False)
    except Stop:
        return ask


# --- taking advice, or a reason it will be late --------------------------------------------------


async def submit_advice(*, session: Session, client: Client, ask: Ask, name: str, role: str,
                        text: str, uploads: Sequence[Upload]) -> date:
    """Take a professional's advice (text, documents or both) for the request ``ask`` opened:
    stored, recorded by the workflow as received today, and marked accepted. Returns the date
    it was received. Raises a ``Stop`` when it was not taken (or may not have been:
    ``OutcomeUnconfirmed``)."""
    sub = _new_submission(ask, "advice", name, role, text)
    cmd = RecordAdvice(key=ask.key, received_on=today(), submission_id=sub.id,
                       actor=f"professional: {name}")
    _store(session, sub, uploads)  # from here, _run_update settles it either way
    await _run_update(session, client, ask, Action.RECORD_ADVICE, cmd, sub.id)
    try:
        _mark_accepted(session, sub.id)
    except Exception as exc:  # noqa: BLE001 - it counts; the next visit marks it
        log.warning("case %s: submission %s accepted but not marked (%s)", ask.reference,
                    sub.id, type(exc).__name__)
    log.info("case %s advice %s: received through the secure page as submission %s",
             ask.reference, ask.key, sub.id)
    return cmd.received_on


async def report_delay(*, session: Session, client: Client, ask: Ask, name: str, role: str,
                       reason: str, expected_on: date | None) -> None:
    """Take a professional's reason their advice will be late, and the date they expect to
    send it by: stored, recorded by the workflow, and marked accepted. The request stays open.
    Raises a ``Stop`` when it was not taken (``DateRefused`` for the date)."""
    sub = _new_submission(ask, "delay", name, role, reason, expected_on)
    cmd = ReportAdviceDelay(key=ask.key, reason=reason, expected_on=expected_on,
                            actor=f"professional: {name}")
    _store(session, sub)
    await _run_update(session, client, ask, Action.REPORT_ADVICE_DELAY, cmd, sub.id)
    try:
        _mark_accepted(session, sub.id)
    except Exception as exc:  # noqa: BLE001
        log.warning("case %s: delay report %s taken but not marked (%s)", ask.reference,
                    sub.id, type(exc).__name__)
    log.info("case %s advice %s: delay reported through the secure page", ask.reference,
             ask.key)
