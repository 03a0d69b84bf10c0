"""Sending email through the outbox, so that no email is sent twice.

Every email has a key, unique per ladder step (or digest week) and recipient. ``send_once``:

1. claims the key's ``EmailMessage`` row in its own transaction (``sending``), or finds it
   already dealt with and returns without sending;
2. opens the SMTP conversation (``aiosmtplib``), names sender and recipient, marks the row
   ``handing_over``, and sends the message;
3. records it ``sent`` with the server's reply and the time.

A retried activity, a restarted worker or a replayed workflow finds the row and sends nothing.
An email whose recipient cannot be written in a header (``mailbox``: the address is not one)
is never sent: its row is ``rejected`` with the reason, not left ``sending`` and retried.
If the SMTP server is down or refuses for now, the row is left ``failed`` (not delivered) and
the activity is retried with backoff until the server is back; then it goes, once. A worker
that dies before step 2's hand-over delivered nothing, so the retry sends. A worker that dies
during the hand-over (or after it, before step 3) may or may not have delivered: the retry
marks the row ``unconfirmed`` and does not send again. Never twice is kept; the cost is that
such an email (a window of milliseconds) is shown as unconfirmed rather than resent.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from email import policy as email_policy
from email.errors import MessageError
from email.headerregistry import Address
from email.message import EmailMessage as MimeMessage
from email.utils import format_datetime, parseaddr
from typing import NoReturn

import aiosmtplib
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from domain.names import bad_character
from store import tables as t
from store.db import engine_for
from config.settings import Settings

log = logging.getLogger("ehc.mail")

# How messages are written. The standard library's default folds header lines at 78 columns,
# and a subject that does not fit after "Subject: " is moved whole to the next line, leaving
# the first blank ("Subject:\n Still overdue: ..."), which some mail clients show as no
# subject. RFC 5322 (2.1.1) allows lines of up to 998 characters: our subjects (at most 300)
# and addresses then stay on one line. Only the writing out uses it: bodies are encoded as the
# default policy encodes them (quoted-printable past 78 columns, 7-bit safe for any server).
MAIL_POLICY = email_policy.default.clone(max_line_length=998)

# Another attempt holding a claim younger than this may still be sending.
CLAIM_LEASE = timedelta(seconds=30)
SMTP_TIMEOUT = 20


class MailRetry(RuntimeError):
    """The email could not be sent now (server down, busy, or another attempt holds it)."""


@dataclass(frozen=True)
class Outgoing:
    key: str
    to_address: str
    to_name: str | None
    subject: str
    text: str
    html: str | None
    template: str
    recipient_role: str
    case_reference: str | None = None
    advice_key: str | None = None
    step: str | None = None
    step_on: date | None = None  # the day the ladder step was due


@dataclass(frozen=True)
class Sent:
    key: str
    status: str  # sent | rejected | unconfirmed
    message_id: str
    already: bool = False  # nothing was sent now: an earlier attempt dealt with it


def message_id_for(key: str, mail_from: str) -> str:
    """The same Message-ID for every attempt at one email, so a resend is recognisably the
    same message."""
    domain = mail_from.rpartition("@")[2] or "localhost"
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:40]}@{domain}>"


def mailbox(name: str | None, address: str) -> Address:
    """A recipient as the standard library writes one: the name quoted (``"Smith, Jo"
    <jo@x.example>``) or encoded when not ASCII, so no name can add an address or a header.
    A name kept before names were checked that holds a line break or other control character
    is sent with spaces in their place. Raises ``ValueError`` for an address that is not one,
    or that has characters beyond ASCII (SMTPUTF8 is not used)."""
    display = " ".join("".join(" " if bad_character(ch) else ch for ch in name or "").split())
    if not address.isascii():  # SMTPUTF8 is not used: such an address cannot be sent to
        raise ValueError(f"the address {address!r} has characters beyond ASCII, which this "
                         "service cannot send to")
    try:
        return Address(display_name=display, addr_spec=address)
    except (ValueError, TypeError, IndexError, MessageError) as exc:
        raise ValueError(f"the address {address!r} cannot be written in an email header "
                         f"({exc})") from None


def _now() -> datetime:
    return datetime.now(timezone.utc)


class Outbox:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = engine_for(settings.db_url)

    # --- the database side (sync, run in a thread) ------------------------------------------

    def _claim(self, out: Outgoing, tag: str) -> t.EmailMessage | None:
        """The row to send, claimed for attempt ``tag``; None if it was sent already."""
        with Session(self.engine, expire_on_commit=False) as s:
            row = s.exec(select(t.EmailMessage).where(t.EmailMessage.key == out.key)).first()
            if row is None:
                row = t.EmailMessage(
                    key=out.key, case_reference=out.case_reference, advice_key=out.advice_key,
                    step=out.step, step_on=out.step_on, template=out.template, recipient_role=out.recipient_role,
                    recipient_name=out.to_name, recipient_address=out.to_address,
                    subject=out.subject, body_text=out.text,
                    message_id=message_id_for(out.key, self.settings.mail_from),
                    status="sending", attempts=1, claimed_at=_now(), claimed_by=tag,
                )
                s.add(row)
                try:
                    s.commit()
                except IntegrityError:  # a concurrent attempt inserted it first
                    raise MailRetry(f"email {out.key} is being sent by another attempt") from None
                return row
            if row.status in ("sent", "rejected", "unconfirmed"):
                return None
            if row.status in ("sending", "handing_over") and not _claim_is_dead(row, tag):
                raise MailRetry(f"email {out.key} is being sent by another attempt")
            if row.status == "handing_over":
                # A worker died while the server had the message in hand: it may have been
                # delivered. Sending again could duplicate it, so record that it cannot be
                # confirmed and leave it (the ladder's next step follows anyway).
                s.exec(update(t.EmailMessage).where(t.EmailMessage.id == row.id).values(
                    status="unconfirmed", last_error="worker stopped while handing the message "
                    "to the SMTP server; delivery cannot be confirmed"))
                s.commit()
                log.warning("email %s: delivery unconfirmed after a worker stopped", row.id)
                return None
            # 'failed' (the server said no, or was down) or 'sending' left by a dead attempt
            # before it reached the server: nothing was delivered, send it.
            taken = s.exec(update(t.EmailMessage).where(
                t.EmailMessage.id == row.id, t.EmailMessage.attempts == row.attempts,
            ).values(status="sending", attempts=row.attempts + 1, claimed_at=_now(),
                     claimed_by=tag))
            s.commit()
            if taken.rowcount != 1:  # type: ignore[attr-defined]
                raise MailRetry(f"email {out.key} is being sent by another attempt")
            s.refresh(row)
            return row

    def _finish(self, key: str, **values) -> None:
        with Session(self.engine) as s:
            s.exec(update(t.EmailMessage).where(t.EmailMessage.key == key).values(**values))
            s.commit()

    # --- sending ------------------------------------------------------------------------------

    def _mime(self, out: Outgoing, message_id: str) -> MimeMessage:
        msg = MimeMessage()  # the body encoded as before (lines of 78: quoted-printable)
        msg["From"] = self.settings.mail_from
        msg["To"] = mailbox(out.to_name, out.to_address)
        msg["Subject"] = out.subject
        msg["Message-ID"] = message_id
        msg["Date"] = format_datetime(_now())
        msg["Reply-To"] = self.settings.send_team_email
        msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no out-of-office replies loops
        msg.set_content(out.text)
        if out.html:
            msg.add_alternative(out.html, subtype="html")
        return msg

    async def send_once(self, out: Outgoing, tag: str = "") -> Sent:
        """Send ``out`` unless it was sent already. ``tag`` names the attempt
        ("<activity>#<attempt>"), so a retry can tell its dead predecessor's claim."""
        row = await asyncio.to_thread(self._claim, out, tag)
        if row is None:
            existing = await asyncio.to_thread(self._find, out.key)
            return Sent(out.key, existing.status if existing else "sent", existing.message_id
                        if existing else "", already=True)
        s = self.settings
        try:
            message = self._mime(out, row.message_id).as_bytes(policy=MAIL_POLICY)
        except (ValueError, MessageError) as exc:
            # The address (or a header) cannot be written: no server would ever take it, so
            # it is not retried; the outbox says why, and the case shows it was not sent.
            await asyncio.to_thread(self._finish, out.key, status="rejected",
                                    last_error=f"not sent: {exc}"[:500])
            log.warning("email %s not sent: its recipient cannot be written in a header",
                        row.id)
            return Sent(out.key, "rejected", row.message_id)
        smtp = aiosmtplib.SMTP(hostname=s.smtp_host, port=s.smtp_port, timeout=SMTP_TIMEOUT,
                               username=s.smtp_username, password=s.smtp_password,
                               start_tls=s.smtp_starttls)
        try:
            await smtp.connect()
            try:
                await smtp.mail(parseaddr(s.mail_from)[1] or s.mail_from)
                await smtp.rcpt(out.to_address)
                # From here the server may take the message even if we never hear back.
                await asyncio.to_thread(self._finish, out.key, status="handing_over")
                reply = await smtp.data(message)
            finally:
                await _hang_up(smtp)
        except aiosmtplib.SMTPRecipientRefused as exc:
            if exc.code >= 500:  # the server will never take this address: do not retry
                await asyncio.to_thread(self._finish, out.key, status="rejected",
                                        last_error=str(exc)[:500])
                log.warning("email %s refused by the SMTP server (%s)", row.id, exc.code)
                return Sent(out.key, "rejected", row.message_id)
            await self._failed(out.key, exc)
        except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError) as exc:
            await self._failed(out.key, exc)
        await asyncio.to_thread(self._finish, out.key, status="sent", sent_at=_now(),
                                smtp_response=str(reply)[:300], last_error=None)
        return Sent(out.key, "sent", row.message_id)

    async def _failed(self, key: str, exc: BaseException) -> NoReturn:
        """The server did not take the message (it is down, busy, or said no for now): the
        activity is retried with backoff and the email goes once the server is back."""
        await asyncio.to_thread(self._finish, key, status="failed",
                                last_error=f"{type(exc).__name__}: {exc}"[:500])
        s = self.settings
        raise MailRetry(f"SMTP server {s.smtp_host}:{s.smtp_port} did not take the email: "
                        f"{type(exc).__name__}") from None

    def _find(self, key: str) -> t.EmailMessage | None:
        with Session(self.engine, expire_on_commit=False) as s:
            return s.exec(select(t.EmailMessage).where(t.EmailMessage.key == key)).first()


async def _hang_up(smtp: aiosmtplib.SMTP) -> None:
    """Say QUIT if the conversation is still up; drop the connection either way."""
    if smtp.is_connected:
        try:
            await smtp.quit()
        except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError):
            smtp.close()


def _claim_is_dead(row: t.EmailMessage, tag: str) -> bool:
    """Whether a 'sending' claim belongs to an attempt that is over: an earlier attempt of the
    same activity (Temporal retries only once an attempt has failed or timed out), or a claim
    older than the lease."""
    if row.claimed_at is None or _aware(row.claimed_at) < _now() - CLAIM_LEASE:
        return True
    mine, _, n = tag.rpartition("#")
    theirs, _, m = (row.claimed_by or "").rpartition("#")
    return bool(mine) and mine == theirs and m.isdecimal() and n.isdecimal() and int(m) < int(n)


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)
