"""The secure page where a professional sends advice for one advice request, or says why it
will be late.

A professional is emailed ``{public_base_url}/advice/{token}``; the signed token
(``activities.links``) names one case and one advice key and is the only thing in the URL, so
a link opens that one request and nothing else. The page says what is asked and identifies the
child minimally (given name and family-name initial). Nobody signs in.

Submitting stores an ``AdviceSubmission`` (pending) and its ``AdviceDocument``s in one
transaction, then asks the workflow, the case's only writer, to record the advice with the
submission's id. The submission is marked accepted when the workflow takes it, and deleted
(with its documents) when the workflow rejects it, so a rejected submission leaves nothing
behind. The workflow refuses a second receipt of the same advice, so a reused link or a
double submit never counts twice. If the outcome of the update is unknown (Temporal went away
while it ran), the submission stays pending and is settled the next time the link is opened:
accepted if the workflow names it, deleted if it names another.

Every failure is a GOV.UK page with a status that fits; none shows a stack trace. The token
is never logged: uvicorn's access log is given a filter that hides it.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import re
import traceback
import unicodedata
import zipfile
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Callable, Sequence
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import delete, update
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, select
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from temporalio.client import Client, WorkflowUpdateFailedError

from services.links import LinkExpired, LinkInvalid, read_advice_token
from services.rendering import render
from api.deps import SessionDep, SettingsDep
from services import cases
from store.record import read_snapshot
from services.clock import today
from services.errors import ServiceError
from store import tables as t
from services.directory import load_escalation
from domain.case import Action, AdviceItem, CaseSnapshot, RecordAdvice, ReportAdviceDelay
from config.settings import Settings
from statutory import RULES

log = logging.getLogger("ehc.advice_portal")
router = APIRouter(include_in_schema=False)

MB = 1024 * 1024
MAX_FILE_BYTES = 20 * MB
MAX_TOTAL_BYTES = 50 * MB
# The whole request may be a little larger than the files (the text and multipart framing);
# anything beyond this is refused while it arrives, before it is spooled to disk.
MAX_BODY_BYTES = MAX_TOTAL_BYTES + 2 * MB
MAX_FILES = 10
MAX_TEXT_CHARS = 100_000
MAX_NAME_CHARS = 60
MAX_ROLE_CHARS = 58  # "<name>, <role>" fits submitted_by (120)
MAX_REASON_CHARS = 2000
MAX_TOKEN_CHARS = 600
QUERY_TIMEOUT = 10.0  # seconds: the page must not hang when no worker answers
UPDATE_TIMEOUT = 60.0

SECURITY_HEADERS = {
    # The token is in the URL and the page names a child: keep it out of caches and referrers.
    "Cache-Control": "no-store, max-age=0",
    "Pragma": "no-cache",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
}


# --- keeping the token out of the access log ---------------------------------------------------

_TOKEN_IN_PATH = re.compile(r"/advice/[^/?\s\"]+")


def redact(text: str) -> str:
    return _TOKEN_IN_PATH.sub("/advice/<token>", text)


class RedactAdviceTokens(logging.Filter):
    """Rewrites ``/advice/<token>`` in log records (uvicorn's access log puts the path in its
    arguments)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


def _install_log_filter() -> None:
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactAdviceTokens) for f in access.filters):
        access.addFilter(RedactAdviceTokens())


_install_log_filter()


# --- files ----------------------------------------------------------------------------------------

_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ZIP = b"PK\x03\x04"
_BINARY_SIGNATURES = (b"%PDF-", _OLE2, _ZIP, b"\x89PNG", b"\xff\xd8\xff", b"MZ", b"\x7fELF",
                      b"GIF8", b"\x1f\x8b", b"Rar!", b"7z\xbc\xaf")


def _zip_names(data: bytes) -> zipfile.ZipFile | None:
    if not data.startswith(_ZIP):
        return None
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError):
        return None


def _is_docx(data: bytes) -> bool:
    z = _zip_names(data)
    if z is None:
        return False
    names = set(z.namelist())
    return "[Content_Types].xml" in names and "word/document.xml" in names


def _is_odt(data: bytes) -> bool:
    z = _zip_names(data)
    if z is None:
        return False
    try:
        info = z.getinfo("mimetype")
        if info.file_size > 200:
            return False
        return z.read(info).strip() == b"application/vnd.oasis.opendocument.text"
    except (KeyError, zipfile.BadZipFile, ValueError, OSError, RuntimeError):
        return False


def _is_text(data: bytes) -> bool:
    """Plain text has no signature: refuse what is evidently binary."""
    return b"\x00" not in data and not data.startswith(_BINARY_SIGNATURES)


@dataclass(frozen=True)
class Format:
    name: str
    content_type: str
    looks_right: Callable[[bytes], bool]


FORMATS: dict[str, Format] = {
    "pdf": Format("PDF", "application/pdf", lambda b: b"%PDF-" in b[:1024]),
    "doc": Format("Word", "application/msword", lambda b: b.startswith(_OLE2)),
    "docx": Format("Word", "application/vnd.openxmlformats-officedocument."
                   "wordprocessingml.document", _is_docx),
    "odt": Format("OpenDocument text", "application/vnd.oasis.opendocument.text", _is_odt),
    "rtf": Format("RTF", "application/rtf", lambda b: b.startswith(b"{\\rtf")),
    "txt": Format("text", "text/plain; charset=utf-8", _is_text),
    "jpg": Format("JPEG", "image/jpeg", lambda b: b.startswith(b"\xff\xd8\xff")),
    "jpeg": Format("JPEG", "image/jpeg", lambda b: b.startswith(b"\xff\xd8\xff")),
    "png": Format("PNG", "image/png", lambda b: b.startswith(b"\x89PNG\r\n\x1a\n")),
}
ACCEPT = ",".join(f".{ext}" for ext in FORMATS)
ALLOWED_TEXT = "PDF, Word (.doc or .docx), OpenDocument text (.odt), RTF, TXT, JPEG or PNG"


def safe_filename(raw: str | None) -> str:
    """The last path component, printable, without characters that trouble file systems or
    headers; at most 255 characters with its extension kept."""
    name = unicodedata.normalize("NFC", (raw or "").replace("\\", "/").rsplit("/", 1)[-1])
    name = "".join(ch for ch in name if ch.isprintable() and ch not in '"<>:|?*;')
    name = name.strip().lstrip(".").strip()
    if len(name) > 255:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: 254 - len(ext)] + dot + ext) if dot and len(ext) <= 10 else name[:255]
    return name or "document"


def extension(filename: str) -> str:
    return filename.rpartition(".")[2].lower() if "." in filename else ""


def check_file(filename: str, data: bytes) -> str | None:
    """Why a file cannot be accepted, or None. By its extension and, where the format has one,
    its signature (the leading bytes)."""
    ext = extension(filename)
    fmt = FORMATS.get(ext)
    if fmt is None:
        return f"{filename} must be a {ALLOWED_TEXT} file"
    if not data:
        return f"{filename} is empty"
    if len(data) > MAX_FILE_BYTES:
        return f"{filename} must be smaller than {MAX_FILE_BYTES // MB} MB"
    if not fmt.looks_right(data):
        return (f"{filename} is not a {fmt.name} file, although its name ends .{ext}: save it "
                f"as a {ALLOWED_TEXT} file and attach it again")
    return None


def attachment_headers(filename: str) -> dict[str, str]:
    """Download headers for a stored document: always an attachment, never rendered inline,
    with an ASCII fallback name and the UTF-8 name (RFC 6266)."""
    name = safe_filename(filename)
    fallback = re.sub(r"[^A-Za-z0-9._ -]", "_", name).strip() or "document"
    return {
        "Content-Disposition": f"attachment; filename=\"{fallback}\"; "
                               f"filename*=UTF-8''{quote(name, safe='')}",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store",
        "Content-Security-Policy": "sandbox",
    }


def human_size(size: int) -> str:
    if size >= MB:
        return f"{size / MB:.1f} MB"
    return f"{max(1, round(size / 1024))} KB"


# --- pages ----------------------------------------------------------------------------------------


def long_date(d: date | None) -> str:
    return f"{d.day} {d:%B %Y}" if d else ""


class _Stop(Exception):
    """Ends a request with this page."""

    def __init__(self, response: HTMLResponse) -> None:
        self.response = response


def page(settings: Settings, template: str, status: int = 200,
         headers: dict[str, str] | None = None, **ctx: object) -> HTMLResponse:
    html = render(f"pages/{template}", public_page=True, council_name=settings.council_name,
                  send_team_email=settings.send_team_email, long_date=long_date, **ctx)
    return HTMLResponse(html, status_code=status, headers={**SECURITY_HEADERS, **(headers or {})})


def message(settings: Settings, status: int, title: str, *paragraphs: str,
            contact: bool = True, **ctx: object) -> HTMLResponse:
    return page(settings, "advice_message.html", status, title=title, paragraphs=paragraphs,
                contact=contact, **ctx)


def _invalid(settings: Settings) -> _Stop:
    return _Stop(message(
        settings, 404, "This link is not valid",
        "Check that you used the whole link from the email: some email programs split long "
        "links over two lines.",
    ))


def _unavailable(settings: Settings) -> _Stop:
    return _Stop(message(
        settings, 503, "Sorry, there is a problem with the service",
        "Try again shortly. Nothing you sent has been saved.", headers={"Retry-After": "60"},
    ))


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


def _read_token(settings: Settings, token: str) -> tuple[str, str]:
    if len(token) > MAX_TOKEN_CHARS:
        raise _invalid(settings)
    try:
        link = read_advice_token(settings, token, load_escalation(settings).link_days)
    except LinkExpired:
        raise _Stop(message(
            settings, 410, "This link has expired",
            f"Links in our emails work for {load_escalation(settings).link_days} days. A new "
            "link comes with the next reminder email.",
            "If you want to send the advice now, email the SEND team and they will send you a "
            "new link.",
        )) from None
    except LinkInvalid:
        raise _invalid(settings) from None
    return link.reference, link.advice_key


async def _query(client: Client | None, reference: str) -> CaseSnapshot | None:
    """The live case from its workflow; None if there is no such workflow. Raises when
    Temporal (or a worker to answer) cannot be reached in time."""
    if client is None:
        raise ConnectionError("Temporal is not connected")
    view = await asyncio.wait_for(cases.live_view(client, reference), QUERY_TIMEOUT)
    return view.case if view is not None else None


async def _load(settings: Settings, session: Session, client: Client | None, reference: str,
                key: str, *, live_required: bool) -> Ask:
    row = session.get(t.Case, reference)
    if row is None:
        raise _Stop(message(
            settings, 404, "We cannot find this request for advice",
            "The case this link was made for is not in our records.",
        ))
    snapshot: CaseSnapshot | None = None
    if row.is_open:
        try:
            snapshot = await _query(client, reference)
        except Exception as exc:  # noqa: BLE001 - any failure to reach Temporal
            log.warning("case %s: Temporal not reachable for the advice page (%s)", reference,
                        type(exc).__name__)
            if live_required:
                raise _unavailable(settings) from None
    if snapshot is None:
        snapshot = read_snapshot(session, row)
    item = snapshot.advice_item(key)
    if item is None:
        raise _Stop(message(
            settings, 404, "We cannot find this request for advice",
            "The request this link was made for is not in our records.",
        ))
    service = session.get(t.Service, item.service_id) if item.service_id else None
    return Ask(reference=reference, key=key, case=row, snapshot=snapshot, item=item,
               child=_child_initials(session.get(t.Child, row.child_id)),
               service=service.name if service else None)


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


def _closed_page(settings: Settings, ask: Ask, status: int) -> _Stop:
    return _Stop(message(
        settings, status, "Nothing more is needed",
        f"The assessment for case {ask.reference} has finished or been closed, so the council "
        "does not need this advice any more.", "Thank you for your help.",
        contact=False, ask=ask.context(),
    ))


def _received_page(settings: Settings, ask: Ask, status: int) -> _Stop:
    return _Stop(message(
        settings, status, "This advice has already been received",
        f"The council received the {ask.what.lower()} for case {ask.reference} on "
        f"{long_date(ask.item.received_on)}. You do not need to send it again.",
        "If you want to add something to advice already sent, email the SEND team.",
        ask=ask.context(),
    ))


def _check_open(settings: Settings, session: Session, ask: Ask, status: int) -> None:
    _settle(session, ask)
    if ask.closed:
        raise _closed_page(settings, ask, status)
    if ask.item.received_on is not None:
        raise _received_page(settings, ask, status)


# --- storing ------------------------------------------------------------------------------------


@dataclass
class Upload:
    filename: str
    content_type: str
    data: bytes


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


# --- forms --------------------------------------------------------------------------------------


class _TooLarge(Exception):
    pass


async def _read_form(request: Request) -> FormData:
    """The multipart form, refused while it arrives once it exceeds ``MAX_BODY_BYTES``."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_BODY_BYTES:
        raise _TooLarge
    received = 0

    async def receive():
        nonlocal received
        msg = await request.receive()
        if msg["type"] == "http.request":
            received += len(msg.get("body", b""))
            if received > MAX_BODY_BYTES:
                raise _TooLarge
        return msg

    limited = Request(request.scope, receive)
    return await limited.form(max_files=MAX_FILES * 3, max_fields=30, max_part_size=MB)


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    if not isinstance(value, str):
        return ""
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    return "".join(ch for ch in value if ch in "\n\t" or ch.isprintable()).strip()


def _one_line(form: FormData, name: str) -> str:
    return " ".join(_text(form, name).split())


@dataclass
class Checked:
    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)  # field id -> message, in page order
    uploads: list[Upload] = field(default_factory=list)
    had_files: bool = False


def _check_person(form: FormData, out: Checked, prefix: str = "") -> None:
    name, role = _one_line(form, f"{prefix}name"), _one_line(form, f"{prefix}role")
    out.values[f"{prefix}name"], out.values[f"{prefix}role"] = name, role
    if not name:
        out.errors[f"{prefix}name"] = "Enter your name"
    elif len(name) > MAX_NAME_CHARS:
        out.errors[f"{prefix}name"] = f"Your name must be {MAX_NAME_CHARS} characters or fewer"
    if len(role) > MAX_ROLE_CHARS:
        out.errors[f"{prefix}role"] = f"Your role must be {MAX_ROLE_CHARS} characters or fewer"


async def _check_advice_form(form: FormData) -> Checked:
    out = Checked()
    text = _text(form, "advice")
    out.values["advice"] = text
    files = [f for f in form.getlist("documents") if isinstance(f, UploadFile)
             and (f.filename or f.size)]  # a file input left empty sends an empty part
    out.had_files = bool(files)
    if len(text) > MAX_TEXT_CHARS:
        out.errors["advice"] = (f"Your advice must be {MAX_TEXT_CHARS:,} characters or fewer: "
                                "attach longer advice as a document")
    elif not text and not files:
        out.errors["advice"] = "Enter your advice, or attach it as a document"
    problems: list[str] = []
    if len(files) > MAX_FILES:
        problems.append(f"Attach no more than {MAX_FILES} files")
    else:
        for f in files:
            filename = safe_filename(f.filename)
            data = await f.read()
            problem = check_file(filename, data)
            if problem:
                problems.append(problem)
                continue
            out.uploads.append(Upload(filename, FORMATS[extension(filename)].content_type, data))
        if not problems and sum(len(u.data) for u in out.uploads) > MAX_TOTAL_BYTES:
            problems.append(f"The files must be smaller than {MAX_TOTAL_BYTES // MB} MB in total")
    if problems:
        out.errors["documents"] = "; ".join(problems)
        out.uploads = []
    _check_person(form, out)
    return out


def parse_date_input(day: str, month: str, year: str, label: str) -> tuple[date | None, str | None]:
    """A GOV.UK date input: (date, None), (None, None) when left empty, or (None, error)."""
    parts = {"day": day.strip(), "month": month.strip(), "year": year.strip()}
    if not any(parts.values()):
        return None, None
    missing = [k for k, v in parts.items() if not v]
    if missing:
        return None, f"{label} must include a {' and '.join(missing)}"
    if not all(v.isdigit() for v in parts.values()) or len(parts["year"]) != 4:
        return None, f"{label} must be a real date, for example 27 3 2027"
    try:
        return date(int(parts["year"]), int(parts["month"]), int(parts["day"])), None
    except ValueError:
        return None, f"{label} must be a real date, for example 27 3 2027"


def _check_delay_form(form: FormData) -> tuple[Checked, date | None]:
    out = Checked()
    reason = _text(form, "reason")
    out.values["reason"] = reason
    if not reason:
        out.errors["reason"] = "Enter why your advice will be late"
    elif len(reason) < 3:
        out.errors["reason"] = "Tell us a little more about why your advice will be late"
    elif len(reason) > MAX_REASON_CHARS:
        out.errors["reason"] = f"The reason must be {MAX_REASON_CHARS:,} characters or fewer"
    parts = [_one_line(form, f"expected-{p}") for p in ("day", "month", "year")]
    out.values.update({"expected-day": parts[0], "expected-month": parts[1],
                       "expected-year": parts[2]})
    expected, problem = parse_date_input(*parts, "The date you expect to send it")
    if problem is None and expected is not None:
        if expected < today():
            problem = "The date you expect to send it must be today or in the future"
        elif expected > today() + timedelta(days=366):
            problem = "The date you expect to send it must be within the next year"
    if problem:
        out.errors["expected"] = problem
    _check_person(form, out, "delay-")
    return out, expected


def _form_page(settings: Settings, token: str, ask: Ask, status: int = 200,
               checked: Checked | None = None, form: str | None = None) -> HTMLResponse:
    checked = checked or Checked()
    hrefs = {"expected": "#expected-day", "documents": "#documents"}
    return page(
        settings, "advice_form.html", status, token=token, ask=ask.context(), form=form,
        values=checked.values, errors=checked.errors,
        error_list=[{"text": msg, "href": hrefs.get(k, f"#{k}")}
                    for k, msg in checked.errors.items()],
        reattach=checked.had_files, accept=ACCEPT, allowed=ALLOWED_TEXT,
        max_file_mb=MAX_FILE_BYTES // MB, max_total_mb=MAX_TOTAL_BYTES // MB,
        max_files=MAX_FILES,
    )


# --- the routes -----------------------------------------------------------------------------------


def _server_error(settings: Settings, what: str, exc: BaseException) -> HTMLResponse:
    # The type and where, not the message: a database error quotes the values it was given.
    where = "".join(traceback.format_tb(exc.__traceback__))
    log.error("advice page: %s failed with %s\n%s", what, type(exc).__name__, where)
    if isinstance(exc, DBAPIError):
        return _unavailable(settings).response
    return message(settings, 500, "Sorry, there is a problem with the service",
                   "Try again later.")


@router.get("/advice/{token}", response_class=HTMLResponse)
async def advice_page(token: str, request: Request, settings: SettingsDep,
                      session: SessionDep) -> HTMLResponse:
    try:
        reference, key = _read_token(settings, token)
        ask = await _load(settings, session, request.app.state.temporal, reference, key,
                          live_required=False)
        _check_open(settings, session, ask, 200)
        return _form_page(settings, token, ask)
    except _Stop as stop:
        return stop.response
    except Exception as exc:  # noqa: BLE001 - a page, never a stack trace
        return _server_error(settings, "showing the page", exc)


async def _prepare(request: Request, settings: Settings, session: Session, token: str
                   ) -> tuple[Ask, FormData | None]:
    """The token, the form (read before anything is answered, within its limit) and the
    request it is for, still open and not yet received."""
    reference, key = _read_token(settings, token)
    try:
        form = await _read_form(request)
    except _TooLarge:
        form = None
    except (MultiPartException, HTTPException):
        raise _Stop(message(
            settings, 400, "Your form could not be read",
            "Go back to the page, check what you entered and send it again.",
        )) from None
    try:
        ask = await _load(settings, session, request.app.state.temporal, reference, key,
                          live_required=True)
        _check_open(settings, session, ask, 409)
    except BaseException:
        if form is not None:
            await form.close()
        raise
    return ask, form


class _DateRejected(Exception):
    def __init__(self, message: str) -> None:
        self.message = message


async def _act(client: Client, session: Session, reference: str, action: Action,
               cmd: RecordAdvice | ReportAdviceDelay) -> None:
    await cases.act(session=session, client=client, reference=reference, action=action,
                    payload=cmd, actor=None)


async def _run_update(settings: Settings, session: Session, client: Client, ask: Ask,
                      action: Action, cmd: RecordAdvice | ReportAdviceDelay,
                      submission_id: str) -> None:
    """Ask the workflow to take the submission. On rejection the submission is removed and a
    page says why; when the outcome cannot be known, see the module's docstring."""
    try:
        await asyncio.wait_for(_act(client, session, ask.reference, action, cmd), UPDATE_TIMEOUT)
        return
    except ServiceError as exc:
        _discard(session, submission_id)
        log.info("case %s advice %s: %s rejected (%s); submission removed", ask.reference,
                 ask.key, action.value, exc.code)
        if exc.code in ("duplicate",):
            raise _received_page(settings, await _reload(settings, session, client, ask), 409)
        if exc.code in ("case_closed", "caseclosed"):
            raise _closed_page(settings, ask, 409) from None
        if exc.code == "invaliddate" and action is Action.REPORT_ADVICE_DELAY:
            raise _DateRejected(exc.message) from None
        if exc.code == "unknown_case":
            raise _Stop(message(settings, 404, "We cannot find this request for advice",
                                "The case this link was made for is not in our records."))
        raise _Stop(message(
            settings, 409, "We could not record this",
            f"The case record did not accept it. Email the SEND team, quoting case "
            f"{ask.reference}, and they will sort it out.",
        )) from None
    except WorkflowUpdateFailedError as exc:  # failed in the workflow: nothing was applied
        _discard(session, submission_id)
        raise _Stop(_server_error(settings, f"{action.value} update", exc)) from None
    except Exception as exc:  # noqa: BLE001 - the outcome is unknown
        log.warning("case %s advice %s: outcome of %s unknown (%s)", ask.reference, ask.key,
                    action.value, type(exc).__name__)
    if action is Action.RECORD_ADVICE:
        try:
            snapshot = await _query(client, ask.reference)
        except Exception:  # noqa: BLE001
            snapshot = None
        item = snapshot.advice_item(ask.key) if snapshot else None
        if item is not None and item.submission_id == submission_id:
            return  # it was taken after all
        if item is not None and item.received_on is not None:
            _discard(session, submission_id)
            ask.item = item
            raise _received_page(settings, ask, 409)
        # Not taken yet, but it may still be: keep it pending; the next visit settles it.
        raise _Stop(message(
            settings, 503, "We could not confirm that your advice arrived",
            "Do not send it again yet. Open this link again in a few minutes: the page will "
            "say whether your advice was received.", headers={"Retry-After": "120"},
        ))
    # A delay report can safely be sent again; the workflow does not name it, so remove it.
    _discard(session, submission_id)
    raise _unavailable(settings)


async def _reload(settings: Settings, session: Session, client: Client, ask: Ask) -> Ask:
    try:
        return await _load(settings, session, client, ask.reference, ask.key,
                           live_required=False)
    except _Stop:
        return ask


@router.post("/advice/{token}", response_class=HTMLResponse)
async def submit_advice(token: str, request: Request, settings: SettingsDep,
                        session: SessionDep) -> HTMLResponse:
    form: FormData | None = None
    try:
        ask, form = await _prepare(request, settings, session, token)
        if form is None:
            checked = Checked(errors={"documents": f"The files must be smaller than "
                                      f"{MAX_TOTAL_BYTES // MB} MB in total"}, had_files=True)
            return _form_page(settings, token, ask, 413, checked, "advice")
        checked = await _check_advice_form(form)
        await form.close()
        if checked.errors:
            return _form_page(settings, token, ask, 422, checked, "advice")
        name = checked.values["name"]
        sub = _new_submission(ask, "advice", name, checked.values["role"],
                              checked.values["advice"])
        cmd = RecordAdvice(key=ask.key, received_on=today(), submission_id=sub.id,
                           actor=f"professional: {name}")
        _store(session, sub, checked.uploads)  # from here, _run_update settles it either way
        await _run_update(settings, session, request.app.state.temporal, ask,
                          Action.RECORD_ADVICE, cmd, sub.id)
        try:
            _mark_accepted(session, sub.id)
        except Exception as exc:  # noqa: BLE001 - it counts; the next visit marks it
            log.warning("case %s: submission %s accepted but not marked (%s)", ask.reference,
                        sub.id, type(exc).__name__)
        log.info("case %s advice %s: received through the secure page as submission %s",
                 ask.reference, ask.key, sub.id)
        return page(settings, "advice_done.html", kind="advice", ask=ask.context(),
                    received_on=cmd.received_on,
                    files=[(u.filename, human_size(len(u.data))) for u in checked.uploads])
    except _Stop as stop:
        return stop.response
    except Exception as exc:  # noqa: BLE001 - a page, never a stack trace
        return _server_error(settings, "receiving advice", exc)
    finally:
        if form is not None:
            await form.close()


@router.post("/advice/{token}/delay", response_class=HTMLResponse)
async def report_delay(token: str, request: Request, settings: SettingsDep,
                       session: SessionDep) -> HTMLResponse:
    form: FormData | None = None
    try:
        ask, form = await _prepare(request, settings, session, token)
        if form is None:
            raise _Stop(message(settings, 413, "Your form could not be read",
                                "It was too large. Go back and send it again."))
        checked, expected = _check_delay_form(form)
        if checked.errors:
            return _form_page(settings, token, ask, 422, checked, "delay")
        name = checked.values["delay-name"]
        sub = _new_submission(ask, "delay", name, checked.values["delay-role"],
                              checked.values["reason"], expected)
        cmd = ReportAdviceDelay(key=ask.key, reason=checked.values["reason"],
                                expected_on=expected, actor=f"professional: {name}")
        _store(session, sub)
        try:
            await _run_update(settings, session, request.app.state.temporal, ask,
                              Action.REPORT_ADVICE_DELAY, cmd, sub.id)
        except _DateRejected as exc:  # the workflow's clock can differ from ours at midnight
            checked.errors["expected"] = exc.message
            return _form_page(settings, token, ask, 422, checked, "delay")
        try:
            _mark_accepted(session, sub.id)
        except Exception as exc:  # noqa: BLE001
            log.warning("case %s: delay report %s taken but not marked (%s)", ask.reference,
                        sub.id, type(exc).__name__)
        log.info("case %s advice %s: delay reported through the secure page", ask.reference,
                 ask.key)
        return page(settings, "advice_done.html", kind="delay", ask=ask.context(),
                    expected_on=expected)
    except _Stop as stop:
        return stop.response
    except Exception as exc:  # noqa: BLE001 - a page, never a stack trace
        return _server_error(settings, "recording a delay", exc)
    finally:
        if form is not None:
            await form.close()
