"""Sending email through the outbox, so that no email is sent twice.

Every email has a key, unique per ladder step (or digest week) and recipient. ``send_once``:

1. claims the key's ``EmailMessage`` row in its own transaction (status ``sending``), or finds
   it already ``sent`` and returns without sending;
2. hands the message to the SMTP server with ``aiosmtplib``;
3. records it ``sent`` with the server's reply and the time.

A retried activity, a restarted worker or a replayed workflow finds the row and sends nothing.
If the SMTP server is down, step 2 raises, the row is left ``failed`` (not delivered) and the
activity is retried with backoff until the server is back. The one window left is a worker
killed after the server accepted the message and before step 3 (milliseconds): the retry finds
the row still ``sending``, sends again with the same Message-ID (mail clients show one
message) and flags the row ``possible_duplicate``. SMTP gives no way to close that window.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage as MimeMessage
from email.utils import format_datetime

import aiosmtplib
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from models import tables as t
from models.db import engine_for
from models.settings import Settings

log = logging.getLogger("ehc.mail")

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


@dataclass(frozen=True)
class Sent:
    key: str
    status: str  # sent | already_sent | rejected
    message_id: str


def message_id_for(key: str, mail_from: str) -> str:
    """The same Message-ID for every attempt at one email, so a resend is recognisably the
    same message."""
    domain = mail_from.rpartition("@")[2] or "localhost"
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:40]}@{domain}>"


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
                    step=out.step, template=out.template, recipient_role=out.recipient_role,
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
            if row.status in ("sent", "rejected"):
                return None
            if row.status == "sending" and not _claim_is_dead(row, tag):
                raise MailRetry(f"email {out.key} is being sent by another attempt")
            # Take the claim only if nobody changed the row since we read it. A claim left
            # 'sending' means a worker died mid-send: the server may have the message already.
            taken = s.exec(update(t.EmailMessage).where(
                t.EmailMessage.id == row.id, t.EmailMessage.attempts == row.attempts,
            ).values(
                status="sending", attempts=row.attempts + 1, claimed_at=_now(), claimed_by=tag,
                possible_duplicate=row.possible_duplicate or row.status == "sending",
            ))
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
        msg = MimeMessage()
        msg["From"] = self.settings.mail_from
        msg["To"] = f"{out.to_name} <{out.to_address}>" if out.to_name else out.to_address
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
            return Sent(out.key, "already_sent", existing.message_id if existing else "")
        s = self.settings
        try:
            _errors, reply = await aiosmtplib.send(
                self._mime(out, row.message_id), hostname=s.smtp_host, port=s.smtp_port,
                username=s.smtp_username, password=s.smtp_password, start_tls=s.smtp_starttls,
                timeout=SMTP_TIMEOUT,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            # The server will never take this address: record it and do not retry.
            await asyncio.to_thread(self._finish, out.key, status="rejected",
                                    last_error=str(exc)[:500])
            log.warning("email %s refused by the SMTP server", row.id)
            return Sent(out.key, "rejected", row.message_id)
        except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError) as exc:
            await asyncio.to_thread(self._finish, out.key, status="failed",
                                    last_error=f"{type(exc).__name__}: {exc}"[:500])
            raise MailRetry(f"SMTP server {s.smtp_host}:{s.smtp_port} did not take the "
                            f"email: {type(exc).__name__}") from None
        await asyncio.to_thread(self._finish, out.key, status="sent", sent_at=_now(),
                                smtp_response=str(reply)[:300], last_error=None)
        return Sent(out.key, "sent", row.message_id)

    def _find(self, key: str) -> t.EmailMessage | None:
        with Session(self.engine, expire_on_commit=False) as s:
            return s.exec(select(t.EmailMessage).where(t.EmailMessage.key == key)).first()


def _claim_is_dead(row: t.EmailMessage, tag: str) -> bool:
    """Whether a 'sending' claim belongs to an attempt that is over: an earlier attempt of the
    same activity (Temporal retries only once an attempt has failed or timed out), or a claim
    older than the lease."""
    if row.claimed_at is None or _aware(row.claimed_at) < _now() - CLAIM_LEASE:
        return True
    mine, _, n = tag.rpartition("#")
    theirs, _, m = (row.claimed_by or "").rpartition("#")
    return bool(mine) and mine == theirs and m.isdigit() and n.isdigit() and int(m) < int(n)


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)
