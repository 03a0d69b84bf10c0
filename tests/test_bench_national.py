"""The national-scale generator (bench/national.py) at a tiny scale, so that CI keeps it
working: it migrates and fills a database (SQLite by executemany, PostgreSQL by COPY), the
managers' lists find what the generator says it wrote, and the statistics page's figures run
over it."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from bench.national import TODAY, generate, statistics_page
from store import tables as t
from store.db import make_engine
from store.worklist import Filters, iter_items, query
from tests.test_deadline_tally import counted, tallied


def test_generator_at_a_tiny_scale(db_url):
    made = generate(db_url, plans=500, assessments=100, seed=7)
    # written with the tally's triggers off, then counted afresh: as the triggers keep it
    assert tallied(db_url) == counted(db_url) != {}
    rows = made["rows"]
    assert made["plans"] == rows["plan"] == 500
    assert rows["case"] == rows["review"] + 200  # two years of 100 requests a year
    assert rows["milestone"] > rows["case"] and rows["adviceitem"] > 0
    engine = make_engine(db_url)
    with Session(engine) as s:
        # every plan has exactly one open review cycle, the plan's current one
        open_cycles = s.scalar(select(func.count()).select_from(t.Case).where(
            t.Case.kind == "review", t.Case.is_open))
        assert open_cycles == 500
        current = s.scalar(select(func.count()).select_from(t.Plan).join(
            t.Review, (t.Review.plan_reference == t.Plan.reference)
            & (t.Review.cycle == t.Plan.current_cycle)).join(
            t.Case, t.Case.reference == t.Review.case_reference).where(t.Case.is_open))
        assert current == 500
        # the lists find what the generator counted, by the same rules
        late = query(s, "late", TODAY)
        assert late.total == made["expected"]["late"] > 0
        assert len(late.items) == min(50, late.total)
        assert all(i.days_overdue > 0 for i in late.items)
        assert [i.due for i in late.items] == sorted(i.due for i in late.items)
        assert sum(1 for _ in iter_items(s, "late", TODAY)) == late.total
        soon = query(s, "due_soon", TODAY, days=14)
        assert soon.total == made["expected"]["due_soon_14_days"] > 0
        # filters narrow it; the parts by agency add up to the whole
        agencies = ("education", "health", "social_care", "educational_psychology", "other",
                    "family", "la", "setting")
        by_agency = sum(query(s, "late", TODAY, filters=Filters(agency=a)).total
                        for a in agencies)
        assert by_agency == late.total
        worker = late.items[0].caseworker_id
        if worker:
            mine = query(s, "late", TODAY, filters=Filters(caseworker_id=worker))
            assert 0 < mine.total <= late.total
    engine.dispose()


def test_the_statistics_page_over_it(sqlite_url):
    pytest.importorskip("services.statistics")
    generate(sqlite_url, plans=500, assessments=100, seed=7)
    engine = make_engine(sqlite_url)
    with Session(engine) as s:
        figures = statistics_page(s, TODAY)
        issued = figures["DfE figures (api.statistics.dfe)"].final_plans.plans_issued_den
        assert 0 < issued <= s.scalar(select(func.count()).select_from(t.Case).where(
            t.Case.stage == "final_issued"))
    engine.dispose()
