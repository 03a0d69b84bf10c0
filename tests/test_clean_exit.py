"""Short-lived ``ehc`` commands that open a Temporal client end with their own exit status,
never an abort at interpreter exit, while the machine is busy.

Before ``cli.main.run`` left with ``os._exit``, about one run in twenty of ``ehc digest
schedule`` on a loaded machine died with SIGABRT after doing its work ("Fatal Python error:
PyGILState_Release ... Python runtime state: finalizing", temporalio sdk-python issue 300).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from workflows.digest import SCHEDULE_ID

ROOT = Path(__file__).resolve().parent.parent
RUNS = 12


def _ehc(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=ROOT,
                          env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=120)


@pytest.fixture
def busy_machine():
    """Every core kept busy by another process, as when CI shares the machine."""
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
               for _ in range(os.cpu_count() or 2)]
    yield
    for proc in burners:
        proc.kill()
        proc.wait()


async def test_commands_with_a_temporal_client_exit_with_their_status_under_load(
        dev_env, sqlite_url, tmp_path, busy_machine):
    env = {"EHC_TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
           "EHC_DATABASE_URL": sqlite_url, "EHC_DATA_DIR": str(tmp_path),
           "EHC_TASK_QUEUE": "clean-exit"}
    bad_file = tmp_path / "plans.csv"
    bad_file.write_text("plan_reference,given_name\nEHC-1,Sam\n")
    try:
        for _ in range(RUNS):
            # Opens a client, makes the schedule, prints: status 0.
            ok = await asyncio.to_thread(_ehc, "digest", "schedule", env=env)
            assert ok.returncode == 0, ok.stderr
            assert "Fatal Python error" not in ok.stderr
            assert "next runs:" in ok.stdout
        # Opens a client, then finds the file wrong and imports nothing: status 1, not -6.
        failed = await asyncio.to_thread(_ehc, "import", "plans", str(bad_file), env=env)
        assert failed.returncode == 1, failed.stderr
        assert "Fatal Python error" not in failed.stderr
        # Bad usage still says so with status 2 (run as ``python -m cli.main``).
        usage = await asyncio.to_thread(_ehc, "import", "plans", str(tmp_path / "none.csv"),
                                        env=env)
        assert usage.returncode == 2 and "there is no file" in usage.stderr
    finally:
        try:
            await dev_env.client.get_schedule_handle(SCHEDULE_ID).delete()
        except Exception:  # noqa: BLE001 - not made
            pass
