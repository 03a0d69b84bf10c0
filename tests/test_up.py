"""``ehc up`` keeps the system running: a part that dies (here the worker, killed) is reported
and started again while the API goes on answering, and only Ctrl-C stops everything, every
part with it. What it creates is readable by its own user only."""

from __future__ import annotations

import os
import queue
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psutil

from cli import system
from cli.system import Part, Supervisor, how_it_ended, upgrade_database
from store.db import make_engine
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent


def private(path: Path) -> bool:
    """Nobody but the owner may read, write or enter it."""
    return stat.S_IMODE(path.stat().st_mode) & 0o077 == 0


def test_a_new_database_and_its_folder_are_private(tmp_path):
    folder = tmp_path / "data" / "state"
    upgrade_database(f"sqlite:///{folder / 'ehc.db'}")
    assert private(folder) and private(folder / "ehc.db")
    for extra in ("ehc.db-wal", "ehc.db-shm"):
        if (folder / extra).exists():
            assert private(folder / extra), extra
    # one made before, readable by everyone, is made private when it is next opened
    (folder / "ehc.db").chmod(0o644)
    engine = make_engine(f"sqlite:///{folder / 'ehc.db'}")
    engine.dispose()
    assert private(folder / "ehc.db")


def test_a_part_that_keeps_stopping_waits_longer_each_time_up_to_a_limit(monkeypatch, capsys):
    monkeypatch.setattr(system, "RESTART_FIRST", 0.05)
    monkeypatch.setattr(system, "RESTART_MOST", 0.2)
    parts = Supervisor(dict(os.environ))
    parts.start(Part("the worker", [sys.executable, "-c", "raise SystemExit(3)"]))
    deadline = time.monotonic() + 30
    said: list[str] = []
    while len([s for s in said if "stopped" in s]) < 5 and time.monotonic() < deadline:
        parts.watch()
        said += [line for line in capsys.readouterr().out.splitlines() if line]
        time.sleep(0.01)
    parts.stop_all()
    stops = [s for s in said if "stopped" in s]
    assert stops == [f"The worker stopped (exit code 3); starting it again in {n} seconds"
                     for n in ("0.05", "0.1", "0.2", "0.2", "0.2")], said
    assert sum("started again" in s for s in said) >= 4
    assert how_it_ended(-9) == "killed by SIGKILL" and how_it_ended(0) == "exit code 0"

    # One that ran long enough before it stopped waits the first wait again.
    monkeypatch.setattr(system, "RESTART_RESET", 0.3)
    parts = Supervisor(dict(os.environ))
    parts.start(Part("the API", [sys.executable, "-c", "import time; time.sleep(0.5)"]))
    said = []
    while len([s for s in said if "stopped" in s]) < 2 and time.monotonic() < deadline:
        parts.watch()
        said += [line for line in capsys.readouterr().out.splitlines() if line]
        time.sleep(0.01)
    parts.stop_all()
    assert [s for s in said if "stopped" in s] == [
        "The API stopped (exit code 0); starting it again in 0.05 seconds"] * 2, said


class Lines:
    """What a process prints, line by line, read in a thread."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.seen: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, args=(proc,), daemon=True).start()

    def _read(self, proc: subprocess.Popen) -> None:
        for line in proc.stdout:
            self._queue.put(line.rstrip("\n"))

    def wait_for(self, text: str, seconds: float) -> str:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=max(0.05, deadline - time.monotonic()))
            except queue.Empty:
                break
            self.seen.append(line)
            if text in line:
                return line
        raise AssertionError(f"{text!r} not printed in {seconds:.0f} s; printed:\n"
                             + "\n".join(self.seen))


def parts_of(up: psutil.Process) -> dict[str, psutil.Process]:
    """The programs ``ehc up`` runs, by what they are."""
    out = {}
    for child in up.children():
        try:
            line = " ".join(child.cmdline())
        except psutil.NoSuchProcess:
            continue
        for name, mark in (("temporal", "start-dev"), ("mail", "mailcatcher"),
                           ("worker", "-m worker"), ("api", "uvicorn")):
            if mark in line:
                out[name] = child
    return out


def test_ehc_up_starts_a_killed_worker_again_and_stops_everything_on_ctrl_c(tmp_path):
    data = tmp_path / "data"
    api_port = free_port()
    env = {**os.environ, "EHC_DATA_DIR": str(data),
           "EHC_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
           "EHC_TEMPORAL_UI_PORT": str(free_port()), "EHC_SMTP_HOST": "127.0.0.1",
           "EHC_SMTP_PORT": str(free_port()), "EHC_API_HOST": "127.0.0.1",
           "EHC_API_PORT": str(api_port), "EHC_TASK_QUEUE": "up-test", "PYTHONUNBUFFERED": "1"}
    env.pop("EHC_DATABASE_URL", None)
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", "up"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    up = psutil.Process(proc.pid)
    everyone: list[psutil.Process] = []
    try:
        out = Lines(proc)
        t0 = time.monotonic()
        out.wait_for("Press Ctrl-C to stop everything", 60)
        t1 = time.monotonic()
        parts = parts_of(up)
        assert set(parts) == {"temporal", "mail", "worker", "api"}, parts
        everyone += parts.values()
        # what it made is its user's only
        for path in (data, data / "ehc.db", data / "temporal.db", data / "mail",
                     data / "demo-accounts.txt", data / "payload.key"):
            if path.exists() or path.name != "payload.key":  # the tests give the key
                assert private(path), oct(path.stat().st_mode)

        parts["worker"].kill()
        out.wait_for("The worker stopped (killed by SIGKILL); starting it again in 1 second",
                     10)
        out.wait_for("The worker started again", 10)
        deadline = time.monotonic() + 15  # the new process shows as a worker once it runs
        while "worker" not in (again := parts_of(up)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "worker" in again, (again, "\n".join(out.seen))
        assert again["worker"].pid != parts["worker"].pid
        assert again["api"].pid == parts["api"].pid  # the rest ran on
        assert again["temporal"].pid == parts["temporal"].pid
        everyone.append(again["worker"])
        base = f"http://127.0.0.1:{api_port}"
        deadline = time.monotonic() + 20  # healthy again once the new worker is polling
        while (health := httpx.get(f"{base}/healthz", timeout=10)).status_code != 200 \
                and time.monotonic() < deadline:
            time.sleep(0.5)
        assert health.status_code == 200, health.text
        assert httpx.get(f"{base}/sign-in", timeout=10).status_code == 200

        t2 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=45) == 0, "\n".join(out.seen)
        print(f"started in {t1 - t0:.1f} s; the worker started again in {t2 - t1:.1f} s; "
              f"stopped in {time.monotonic() - t2:.1f} s")
        gone = psutil.wait_procs(everyone, timeout=5)[1]
        assert not gone, f"still running after Ctrl-C: {gone}"
    finally:
        for p in [*everyone, up]:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        proc.wait(timeout=10)
