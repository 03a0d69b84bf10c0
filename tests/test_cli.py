"""``ehc timescales``: the real installed command, run as a caseworker would run it."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import date
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _ehc() -> str:
    local = ROOT / ".venv" / "bin" / "ehc"
    if local.exists():
        return str(local)
    found = shutil.which("ehc")
    assert found, "the ehc command is not installed (pip install -e .)"
    return found


EHC = _ehc()


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([EHC, "timescales", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=60)


def ok(*args: str) -> dict:
    p = run(*args)
    assert p.returncode == 0, p.stderr
    assert p.stderr == ""
    out = json.loads(p.stdout)
    assert isinstance(out, dict)
    for key, value in out.items():
        assert isinstance(value, dict), key
        assert date.fromisoformat(value["due"]).isoformat() == value["due"]
        assert isinstance(value["citation"], str) and value["citation"].strip()
    return out


def dues(out: dict) -> dict[str, str]:
    return {k: v["due"] for k, v in out.items()}


# --- assessment -----------------------------------------------------------------------------


def test_assessment_request_only():
    out = ok("assessment", "--request-date", "2026-01-05")
    assert {"decision_due", "no_plan_notice_due", "final_plan_due"} <= set(out)
    assert "advice_due" not in out and "draft_comments_due" not in out
    d = dues(out)
    assert d["decision_due"] == "2026-02-16"        # +42 days
    assert d["no_plan_notice_due"] == "2026-04-27"  # +112 days
    assert d["final_plan_due"] == "2026-05-25"      # +140 days
    assert out["decision_due"]["citation"] == "Reg 5(1)"
    assert out["no_plan_notice_due"]["citation"] == "Reg 10(1)"
    assert out["final_plan_due"]["citation"] == "Reg 13(2)"


def test_assessment_with_advice_and_draft():
    out = ok("assessment", "--request-date", "2026-01-05", "--advice-requested", "2026-02-01",
             "--draft-served", "2026-04-20")
    d = dues(out)
    assert d["advice_due"] == "2026-03-15"          # Feb 1 + 42
    assert out["advice_due"]["citation"] == "Reg 8(1)"
    assert d["draft_comments_due"] == "2026-05-05"  # Apr 20 + 15
    assert out["draft_comments_due"]["citation"] == "Reg 13(1)"
    assert d["final_plan_due"] == "2026-05-25"


def test_assessment_only_advice():
    out = ok("assessment", "--request-date", "2026-01-05", "--advice-requested", "2026-01-05")
    assert out["advice_due"]["due"] == "2026-02-16"
    assert "draft_comments_due" not in out


def test_assessment_only_draft():
    out = ok("assessment", "--request-date", "2026-01-05", "--draft-served", "2026-04-27")
    assert out["draft_comments_due"]["due"] == "2026-05-12"  # Apr 27 + 15
    assert "advice_due" not in out


def test_assessment_draft_target_weeks():
    out = ok("assessment", "--request-date", "2026-01-05", "--draft-target-weeks", "18")
    assert out["draft_plan_target"]["due"] == "2026-05-11"  # +126 days
    assert out["final_plan_due"]["due"] == "2026-05-25"     # the law does not move


# --- review ---------------------------------------------------------------------------------

MEETING_KEYS = {"invitations_due", "advice_circulated_due", "report_due", "decision_due"}
AMEND_KEYS = {"amendment_comments_due", "final_amended_plan_due"}


def test_review_plan_issued_only():
    out = ok("review", "--plan-issued", "2024-02-29")
    assert set(out) == {"review_due"}
    assert out["review_due"]["due"] == "2025-02-28"
    assert out["review_due"]["citation"] == "CFA 2014 s.44(1)"


def test_review_last_review_only():
    out = ok("review", "--last-review", "2025-11-03")
    assert set(out) == {"review_due"}
    assert out["review_due"]["due"] == "2026-11-03"


def test_review_meeting():
    out = ok("review", "--meeting-date", "2026-10-01")
    assert set(out) == MEETING_KEYS
    assert dues(out) == {
        "invitations_due": "2026-09-17",
        "advice_circulated_due": "2026-09-17",
        "report_due": "2026-10-15",
        "decision_due": "2026-10-29",
    }
    assert out["invitations_due"]["citation"] == "Reg 20(1)-(3)"
    assert out["decision_due"]["citation"] == "Reg 20(10)"


def test_review_amendments():
    out = ok("review", "--meeting-date", "2026-10-01", "--amendments-sent", "2026-10-20")
    assert set(out) == MEETING_KEYS | AMEND_KEYS
    assert out["amendment_comments_due"]["due"] == "2026-11-04"
    assert out["final_amended_plan_due"]["due"] == "2026-12-15"
    assert out["final_amended_plan_due"]["citation"] == "Reg 22(3)"


def test_review_amendments_alone():
    out = ok("review", "--amendments-sent", "2026-10-20")
    assert set(out) == AMEND_KEYS


def test_review_everything():
    out = ok("review", "--last-review", "2025-10-01", "--meeting-date", "2026-10-01",
             "--amendments-sent", "2026-10-20", "--transfer", "school", "--transfer-year",
             "2027")
    assert set(out) == {"review_due", "phase_transfer_due"} | MEETING_KEYS | AMEND_KEYS
    assert out["review_due"]["due"] == "2026-10-01"


@pytest.mark.parametrize(
    "kind, year, due, citation",
    [
        # "before 15 February" / "before 31 March" (Reg 18(1)): the last day on time.
        ("school", "2027", "2027-02-14", "Reg 18(1)(b)"),
        ("post16", "2027", "2027-03-30", "Reg 18(1)(a)"),
        ("school", "2028", "2028-02-14", "Reg 18(1)(b)"),
    ],
)
def test_review_phase_transfer(kind, year, due, citation):
    out = ok("review", "--transfer", kind, "--transfer-year", year)
    assert set(out) == {"phase_transfer_due"}
    assert out["phase_transfer_due"]["due"] == due
    assert out["phase_transfer_due"]["citation"] == citation


def test_review_post16_move():
    out = ok("review", "--post16-move-date", "2027-07-31")
    assert set(out) == {"post16_move_due"}
    assert out["post16_move_due"]["due"] == "2027-02-28"
    assert out["post16_move_due"]["citation"] == "Reg 18(2)"


# --- bad input: non-zero, one line on stderr naming the problem, nothing on stdout ----------


@pytest.mark.parametrize(
    "args, must_mention",
    [
        (["assessment", "--request-date", "2026-13-01"], ["--request-date", "2026-13-01"]),
        (["assessment", "--request-date", "09/03/2026"], ["--request-date", "09/03/2026"]),
        (["assessment", "--request-date", "2026-01-05", "--advice-requested", "2026-02-30"],
         ["--advice-requested", "2026-02-30"]),
        (["review", "--meeting-date", "tomorrow"], ["--meeting-date", "tomorrow"]),
        (["assessment"], ["--request-date"]),
        (["assessment", "--request-date", "2026-01-05", "--advice-requested", "2026-01-04"],
         ["--advice-requested", "--request-date"]),
        (["assessment", "--request-date", "2026-01-05", "--draft-served", "2025-12-31"],
         ["--draft-served", "--request-date"]),
        (["review", "--transfer", "school"], ["--transfer-year"]),
        (["review", "--transfer-year", "2027"], ["--transfer"]),
        (["review", "--transfer", "school", "--transfer-year", "27"], ["--transfer-year", "27"]),
        (["review", "--transfer", "college", "--transfer-year", "2027"], ["--transfer"]),
        (["review", "--last-review", "2025-01-01", "--plan-issued", "2025-01-01"],
         ["--last-review", "--plan-issued"]),
        (["review", "--meeting-date", "2026-10-01", "--amendments-sent", "2026-09-30"],
         ["--amendments-sent", "--meeting-date"]),
        (["review", "--last-review", "2026-10-02", "--meeting-date", "2026-10-01"],
         ["--meeting-date"]),
        (["review"], ["--last-review"]),
        # out of range or not in YYYY-MM-DD form: one line, never a traceback
        (["review", "--transfer", "school", "--transfer-year", "0000"], ["--transfer-year"]),
        (["assessment", "--request-date", "9999-12-01"], ["--request-date", "out of range"]),
        (["review", "--post16-move-date", "0001-03-01"], ["--post16-move-date"]),
        (["assessment", "--request-date", "20260105"], ["--request-date", "YYYY-MM-DD"]),
        (["assessment", "--request-date", "2026-W02-1"], ["--request-date", "YYYY-MM-DD"]),
    ],
)
def test_bad_input(args, must_mention):
    p = run(*args)
    assert p.returncode != 0
    assert p.stdout == ""
    lines = p.stderr.splitlines()
    assert len(lines) == 1, p.stderr
    assert "Traceback" not in p.stderr
    for word in must_mention:
        assert word in lines[0], (word, lines[0])
