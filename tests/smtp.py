"""A real SMTP server (aiosmtpd) in the test process, that keeps what it receives and can be
stopped and started again on the same port to model an outage."""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    raw: bytes = b""  # the message as the server received it

    def header_lines(self) -> list[str]:
        """The raw header section, one line per physical line (folds kept)."""
        head = self.raw.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0]
        return head.decode("utf-8", "replace").split("\n")

    @property
    def to(self) -> str:
        return self.rcpt_tos[0]

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"])

    def part(self, subtype: str) -> str:
        body = self.message.get_body(preferencelist=(subtype,))
        return body.get_content() if body is not None else ""

    @property
    def text(self) -> str:
        return self.part("plain")

    @property
    def html(self) -> str:
        return self.part("html")


@dataclass
class SmtpServer:
    host: str = "127.0.0.1"
    port: int = 0
    received: list[Received] = field(default_factory=list)
    on_message: object = None  # optional callable(Received), run before the server replies
    _controller: Controller | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if not self.port:  # Controller(port=0) does not work: find a free port first
            with socket.socket() as s:
                s.bind((self.host, 0))
                self.port = s.getsockname()[1]

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's API
        msg = message_from_bytes(envelope.content, policy=policy.default)
        item = Received(envelope.mail_from, list(envelope.rcpt_tos), msg,  # type: ignore[arg-type]
                        bytes(envelope.content))
        with self._lock:
            self.received.append(item)
        from tests.words_check import read_mail  # every message received is read for its words

        read_mail(item, envelope.content)
        if callable(self.on_message):
            self.on_message(item)
        return "250 Message accepted for delivery"

    def start(self) -> SmtpServer:
        self._controller = Controller(self, hostname=self.host, port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def messages(self, to: str | None = None) -> list[Received]:
        with self._lock:
            return [m for m in self.received if to is None or to in m.rcpt_tos]

    def clear(self) -> None:
        with self._lock:
            self.received.clear()
