"""The secure page where a professional sends advice for one advice request, or says why it
will be late: the HTTP side of ``services/advice_portal.py``, which says what a link opens and
takes what is sent (uploaded files are checked by ``services/uploads.py``).

A professional is emailed ``{public_base_url}/advice/{token}``; the token is the only thing in
the URL and opens that one request. The page says what is asked and identifies the child
minimally (given name and family-name initial). Nobody signs in.

Every failure is a GOV.UK page with a status that fits; none shows a stack trace. The token
is never logged: uvicorn's access log is given a filter that hides it. The page is never
cached, framed or sent as a referrer (``api.security_headers``, for every response).
"""

from __future__ import annotations

import logging
import re
import traceback
from dataclasses import dataclass, field
from datetime import date, timedelta
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException

from api.deps import SessionDep, SettingsDep
from config.settings import Settings
from domain.words import file_size, long_date, parse_date_input
from services import advice_portal as advice
from services.clock import today
from services.rendering import render
from services.uploads import (
    ACCEPT,
    ALLOWED_TEXT,
    MAX_FILE_BYTES,
    MAX_FILES,
    MAX_TOTAL_BYTES,
    MB,
    Upload,
    check_uploads,
    safe_filename,
    too_many_files,
)

log = logging.getLogger("ehc.advice_portal")
router = APIRouter(include_in_schema=False)

# The whole request may be a little larger than the files (the text and multipart framing);
# anything beyond this is refused while it arrives, before it is spooled to disk.
MAX_BODY_BYTES = MAX_TOTAL_BYTES + 2 * MB
MAX_TEXT_CHARS = 100_000
MAX_NAME_CHARS = 60
MAX_ROLE_CHARS = 58  # "<name>, <role>" fits submitted_by (120)
MAX_REASON_CHARS = 2000


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


# --- downloads ------------------------------------------------------------------------------------


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


# --- pages ----------------------------------------------------------------------------------------


class _Stop(Exception):
    """Ends a request with this page."""

    def __init__(self, response: HTMLResponse) -> None:
        self.response = response


def page(settings: Settings, template: str, status: int = 200,
         headers: dict[str, str] | None = None, **ctx: object) -> HTMLResponse:
    html = render(f"pages/{template}", public_page=True, council_name=settings.council_name,
                  send_team_email=settings.send_team_email, long_date=long_date, **ctx)
    return HTMLResponse(html, status_code=status, headers=headers)


def message(settings: Settings, status: int, title: str, *paragraphs: str,
            contact: bool = True, **ctx: object) -> HTMLResponse:
    return page(settings, "advice_message.html", status, title=title, paragraphs=paragraphs,
                contact=contact, **ctx)


def _unavailable(settings: Settings) -> HTMLResponse:
    return message(
        settings, 503, "Sorry, there is a problem with the service",
        "Try again shortly. Nothing you sent has been saved.", headers={"Retry-After": "60"},
    )


def _server_error(settings: Settings, what: str, exc: BaseException) -> HTMLResponse:
    # The type and where, not the message: a database error quotes the values it was given.
    where = "".join(traceback.format_tb(exc.__traceback__))
    log.error("advice page: %s failed with %s\n%s", what, type(exc).__name__, where)
    if advice.database_unreachable(exc):
        return _unavailable(settings)
    return message(settings, 500, "Sorry, there is a problem with the service",
                   "Try again later.")


def _stopped(settings: Settings, stop: advice.Stop, status: int, what: str) -> HTMLResponse:
    """The page for what stopped a link or a submission. ``status`` is for a request that
    needs nothing more (closed, or already received): 200 when the link is opened, 409 when
    something is sent to it."""
    if isinstance(stop, advice.InvalidLink):
        return message(
            settings, 404, "This link is not valid",
            "Check that you used the whole link from the email: some email programs split long "
            "links over two lines.",
        )
    if isinstance(stop, advice.ExpiredLink):
        return message(
            settings, 410, "This link has expired",
            f"Links in our emails work for {stop.link_days} days. A new "
            "link comes with the next reminder email.",
            "If you want to send the advice now, email the SEND team and they will send you a "
            "new link.",
        )
    if isinstance(stop, advice.UnknownCase):
        return message(settings, 404, "We cannot find this request for advice",
                       "The case this link was made for is not in our records.")
    if isinstance(stop, advice.UnknownRequest):
        return message(settings, 404, "We cannot find this request for advice",
                       "The request this link was made for is not in our records.")
    if isinstance(stop, advice.RequestClosed):
        return message(
            settings, status, "Nothing more is needed",
            f"The {'assessment' if stop.ask.snapshot.kind == 'assessment' else 'annual review'} "
            f"for case {stop.ask.reference} has finished or been closed, so the council does "
            "not need this advice any more.", "Thank you for your help.",
            contact=False, ask=stop.ask.context(),
        )
    if isinstance(stop, advice.AlreadyReceived):
        ask = stop.ask
        return message(
            settings, status, "This advice has already been received",
            f"The council received the {ask.what.lower()} for case {ask.reference} on "
            f"{long_date(ask.item.received_on)}. You do not need to send it again.",
            "If you want to add something to advice already sent, email the SEND team.",
            ask=ask.context(),
        )
    if isinstance(stop, advice.Unavailable):
        return _unavailable(settings)
    if isinstance(stop, advice.OutcomeUnconfirmed):
        return message(
            settings, 503, "We could not confirm that your advice arrived",
            "Do not send it again yet. Open this link again in a few minutes: the page will "
            "say whether your advice was received.", headers={"Retry-After": "120"},
        )
    if isinstance(stop, advice.NotRecorded):
        return message(
            settings, 409, "We could not record this",
            f"The case record did not accept it. Email the SEND team, quoting case "
            f"{stop.reference}, and they will sort it out.",
        )
    if isinstance(stop, advice.UpdateFailed):
        return _server_error(settings, stop.what, stop.cause)
    return _server_error(settings, what, stop)  # a date refused, where no date was sent


# --- forms --------------------------------------------------------------------------------------


class _TooLarge(Exception):
    pass


async def _read_form(request: Request) -> FormData:
    """The multipart form, refused while it arrives once it exceeds ``MAX_BODY_BYTES``."""
    length = request.headers.get("content-length", "")
    if length.isdecimal() and int(length) > MAX_BODY_BYTES:
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
    too_many = too_many_files(len(files))
    if too_many:
        problems = [too_many]
    else:
        out.uploads, problems = check_uploads([(f.filename, await f.read()) for f in files])
    if problems:
        out.errors["documents"] = "; ".join(problems)
    _check_person(form, out)
    return out


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
    problem: str | None = None
    try:
        expected = parse_date_input(*parts, "The date you expect to send it")
    except ValueError as exc:
        expected, problem = None, str(exc)
    if problem is None and expected is not None:
        if expected < today():
            problem = "The date you expect to send it must be today or in the future"
        elif expected > today() + timedelta(days=366):
            problem = "The date you expect to send it must be within the next year"
    if problem:
        out.errors["expected"] = problem
    _check_person(form, out, "delay-")
    return out, expected


def _form_page(settings: Settings, token: str, ask: advice.Ask, status: int = 200,
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


@router.get("/advice/{token}", response_class=HTMLResponse)
async def advice_page(token: str, request: Request, settings: SettingsDep,
                      session: SessionDep) -> HTMLResponse:
    try:
        link = advice.read_link(settings=settings, token=token)
        ask = await advice.open_request(session=session, client=request.app.state.temporal,
                                        link=link, live_required=False)
        return _form_page(settings, token, ask)
    except advice.Stop as stop:
        return _stopped(settings, stop, 200, "showing the page")
    except Exception as exc:  # noqa: BLE001 - a page, never a stack trace
        return _server_error(settings, "showing the page", exc)


async def _prepare(request: Request, settings: Settings, session: SessionDep, token: str
                   ) -> tuple[advice.Ask, FormData | None]:
    """The token, the form (read before anything is answered, within its limit) and the
    request it is for, still open and not yet received."""
    link = advice.read_link(settings=settings, token=token)
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
        ask = await advice.open_request(session=session, client=request.app.state.temporal,
                                        link=link, live_required=True,
                                        route="POST /advice/{token}")
    except BaseException:
        if form is not None:
            await form.close()
        raise
    return ask, form


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
        received_on = await advice.submit_advice(
            session=session, client=request.app.state.temporal, ask=ask,
            name=checked.values["name"], role=checked.values["role"],
            text=checked.values["advice"], uploads=checked.uploads)
        return page(settings, "advice_done.html", kind="advice", ask=ask.context(),
                    received_on=received_on,
                    files=[(u.filename, file_size(len(u.data))) for u in checked.uploads])
    except _Stop as stop:
        return stop.response
    except advice.Stop as stop:
        return _stopped(settings, stop, 409, "receiving advice")
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
        try:
            await advice.report_delay(
                session=session, client=request.app.state.temporal, ask=ask,
                name=checked.values["delay-name"], role=checked.values["delay-role"],
                reason=checked.values["reason"], expected_on=expected)
        except advice.DateRefused as exc:  # the workflow's clock can differ from ours
            checked.errors["expected"] = exc.message
            return _form_page(settings, token, ask, 422, checked, "delay")
        return page(settings, "advice_done.html", kind="delay", ask=ask.context(),
                    expected_on=expected)
    except _Stop as stop:
        return stop.response
    except advice.Stop as stop:
        return _stopped(settings, stop, 409, "recording a delay")
    except Exception as exc:  # noqa: BLE001 - a page, never a stack trace
        return _server_error(settings, "recording a delay", exc)
    finally:
        if form is not None:
            await form.close()
