"""The deadline tally (``deadline_day``, migration 0009): after any sequence of writes to
milestones, advice and services, in any grouping into transactions, it equals what the
statistics would count from the items (a ``GROUP BY`` written with ``store.timeliness``'s own
filters and ``agency_of``), on SQLite and PostgreSQL; and the migration's backfill gives the
same."""

from __future__ import annotations

import itertools
import random
import threading
from datetime import date, timedelta

import pytest

from alembic import command
from alembic.config import Config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, false, insert, select, true, update
from sqlmodel import Session

from services.letters import case_recorder
from cli.system import ROOT, upgrade_database
from store import tables as t
from store.db import engine_for
from domain.case import (
    AdviceItem,
    AdviceSource,
    AssessmentPolicy,
    CaseSnapshot,
    Milestone,
    RequestSource,
    Stage,
)
from store.agency import agency_of
from store.timeliness import NOT_ADVICE, deadline_counts, ended_counts
from tests.pgserver import new_database

DAY0 = date(2026, 1, 1)
CASES = ("EHC-T1", "EHC-T2")
RULES = ("assessment.decision_due", "assessment.final_plan_due", "assessment.advice_due",
         "review.advice_circulated_due")
SOURCES = ("family", "education", "health", "educational_psychologist", "social_care",
           "other", "preparing_for_adulthood")
from domain.agencies import AGENCIES
KEYS = itertools.count()  # item keys, unique across examples (the database is kept)
SERVICES = ("svc-a", "svc-b", "svc-c", "svc-missing", None)

days = st.integers(0, 4).map(lambda n: DAY0 + timedelta(days=n))
done_days = st.none() | days
milestone_values = st.fixed_dictionaries({
    "rule_id": st.sampled_from(RULES), "due": days, "done_on": done_days,
    "excused": st.booleans(), "applicable": st.booleans()})
advice_values = st.fixed_dictionaries({
    "rule_id": st.sampled_from(RULES[2:]), "due": days, "received_on": done_days,
    "excused": st.booleans(), "reused": st.booleans(), "source": st.sampled_from(SOURCES),
    "service_id": st.sampled_from(SERVICES)})
# (operation, table, which existing row (an index into them), values)
operations = st.one_of(
    st.tuples(st.just("insert"), st.just("milestone"), st.just(0), milestone_values),
    st.tuples(st.just("insert"), st.just("advice"), st.just(0), advice_values),
    st.tuples(st.just("update"), st.just("milestone"), st.integers(0, 50),
              milestone_values.flatmap(lambda v: st.sampled_from(
                  [v, {k: v[k] for k in list(v)[:2]}, {"done_on": v["done_on"]},
                   {"excused": v["excused"]}, {"applicable": v["applicable"]}]))),
    st.tuples(st.just("update"), st.just("advice"), st.integers(0, 50),
              advice_values.flatmap(lambda v: st.sampled_from(
                  [v, {"received_on": v["received_on"]}, {"service_id": v["service_id"]},
                   {"source": v["source"], "reused": v["reused"]},
                   {"rule_id": v["rule_id"], "due": v["due"], "excused": v["excused"]}]))),
    st.tuples(st.just("delete"), st.sampled_from(("milestone", "advice")), st.integers(0, 50),
              st.just({})),
    st.tuples(st.just("agency"), st.just("service"), st.integers(0, 2),
              st.fixed_dictionaries({"agency": st.sampled_from(AGENCIES)})),
    st.tuples(st.just("service"), st.just("service"), st.integers(0, 3), st.just({})),
    st.tuples(st.just("case"), st.just("case"), st.integers(0, 1),
              st.fixed_dictionaries({"is_open": st.booleans(), "closed_on": done_days})),
    st.tuples(st.just("update"), st.sampled_from(("milestone", "advice")), st.integers(0, 50),
              st.fixed_dictionaries({"case_reference": st.sampled_from(CASES)})),
    st.tuples(st.just("commit"), st.just(""), st.just(0), st.just({})),
)


def setup(url: str) -> None:
    """Two cases and three services, and no items: each example starts from the same place
    (through writes the triggers see, so the tally carries on from the last example)."""
    with Session(engine_for(url)) as s:
        if s.get(t.Child, "tally-child") is None:
            s.add(t.Child(id="tally-child", given_name="T", family_name="C",
                          date_of_birth=date(2016, 1, 1)))
            s.flush()
            for ref in CASES:
                s.add(t.Case(reference=ref, child_id="tally-child", workflow_id=ref,
                             stage="assessing", request_date=DAY0, request_source="parent"))
        s.execute(delete(t.Milestone))
        s.execute(delete(t.AdviceItem))
        s.execute(update(t.Case).values(is_open=True, closed_on=None))
        s.execute(delete(t.Service))
        s.flush()
        for sid, agency in zip(SERVICES[:3], ("health", "education", "social_care")):
            s.add(t.Service(id=sid, name=f"Service {sid}", agency=agency))
        s.commit()


def apply_ops(url: str, ops) -> None:
    """Run ``ops`` against the database, committing at each "commit" and at the end."""
    with Session(engine_for(url)) as s:
        for n, (op, table, which, values) in enumerate(ops):
            model = t.Milestone if table == "milestone" else t.AdviceItem
            if op == "commit":
                s.commit()
            elif op == "insert":
                row = {"case_reference": CASES[n % 2], "key": f"k{next(KEYS)}",
                       "started_on" if table == "milestone" else "requested_on": DAY0,
                       "alerts_fired": [], **values}
                s.execute(insert(model).values(row))
            elif op in ("update", "delete"):
                ids = s.execute(select(model.id).order_by(model.id)).scalars().all()
                if not ids:
                    continue
                pick = model.id == ids[which % len(ids)]
                s.execute(update(model).where(pick).values(values) if op == "update"
                          else delete(model).where(pick))
            elif op == "case":  # closes, reopens, or changes the day it closed
                s.execute(update(t.Case).where(t.Case.reference == CASES[which])
                          .values(values))
            elif op == "agency":
                s.execute(update(t.Service).where(t.Service.id == SERVICES[which])
                          .values(values))
            elif op == "service":  # svc-missing appears, or goes; or a service is renumbered
                if which == 3:
                    if s.get(t.Service, "svc-missing") is None:
                        s.add(t.Service(id="svc-missing", name="Late", agency="other"))
                    else:
                        s.execute(delete(t.Service).where(t.Service.id == "svc-missing"))
                    s.flush()
                else:
                    old = SERVICES[which]
                    now = s.get(t.Service, old)
                    if now is not None and s.get(t.Service, old + "-x") is None:
                        s.execute(update(t.Service).where(t.Service.id == old)
                                  .values(id=old + "-x"))
                    elif s.get(t.Service, old + "-x") is not None and now is None:
                        s.execute(update(t.Service).where(t.Service.id == old + "-x")
                                  .values(id=old))
        s.commit()


def tallied(url: str) -> dict:
    d = t.DeadlineDay
    with Session(engine_for(url)) as s:
        rows = s.execute(select(d.item, d.rule_id, d.due, d.excused, d.agency, d.n, d.done,
                                d.on_time, d.ended)).all()
    for *_, n, done, on_time, ended in rows:  # nothing negative; an emptied row is all 0
        assert 0 <= on_time <= done <= n and 0 <= ended <= n - done, rows
    return {(item, rule, due, bool(exc), agency): (n, done, on_time, ended)
            for item, rule, due, exc, agency, n, done, on_time, ended in rows if n}


def counted(url: str) -> dict:
    """What the statistics count from the items, by their own definitions
    (``deadline_counts``, ``ended_counts``, ``agency_of``)."""
    out = {}
    with Session(engine_for(url)) as s:
        for item, model, done, where, grp in (
                ("milestone", t.Milestone, t.Milestone.done_on,
                 [t.Milestone.applicable == true()], None),
                ("advice", t.AdviceItem, t.AdviceItem.received_on,
                 [t.AdviceItem.reused == false(), t.AdviceItem.source.not_in(NOT_ADVICE)],
                 agency_of(t.AdviceItem.source))):
            columns = [model.rule_id, model.due, model.excused]
            if grp is not None:
                columns.append(grp.label("grp"))
            counts = {}
            for how in (deadline_counts, ended_counts):
                query = how(select(*columns).where(*where), model, done)
                if grp is not None:
                    query = query.outerjoin(t.Service, t.Service.id == model.service_id)
                query = query.group_by(*columns[:3], *(["grp"] if grp is not None else []))
                for row in s.execute(query):
                    rule, due, exc, *rest = row
                    agency = rest.pop(0) if grp is not None else ""
                    counts.setdefault((item, rule, due, bool(exc), agency), []).extend(rest)
            for key, values in counts.items():  # ended: 0 where ended_counts has no row
                out[key] = tuple(values) if len(values) == 4 else (*values, 0)
    return out


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow])
@given(ops=st.lists(operations, max_size=40))
def test_the_tally_is_what_the_items_count(db_url, ops):
    setup(db_url)
    apply_ops(db_url, ops)
    assert tallied(db_url) == counted(db_url)


def test_a_failed_transaction_leaves_the_tally_as_it_was(db_url):
    setup(db_url)
    apply_ops(db_url, [("insert", "milestone", 0, {
        "rule_id": RULES[0], "due": DAY0, "done_on": DAY0, "excused": False,
        "applicable": True})])
    before = tallied(db_url)
    with Session(engine_for(db_url)) as s:
        s.execute(update(t.Milestone).values(done_on=None, excused=True))
        s.rollback()
    assert tallied(db_url) == before == counted(db_url) != {}


def test_the_backfill_counts_what_the_triggers_do(db_url):
    """Downgrading drops the tally; upgrading again fills it from the items (one GROUP BY):
    the same rows the triggers kept."""
    setup(db_url)
    ops = [("insert", "milestone", 0, {"rule_id": r, "due": DAY0 + timedelta(days=i % 3),
                                       "done_on": DAY0 + timedelta(days=i % 4),
                                       "excused": i % 5 == 0, "applicable": i % 7 != 0})
           for i, r in enumerate(RULES * 5)]
    ops += [("insert", "advice", 0, {"rule_id": RULES[2 + i % 2], "due": DAY0,
                                     "received_on": None if i % 3 else DAY0,
                                     "excused": False, "reused": i % 6 == 0,
                                     "source": SOURCES[i % len(SOURCES)],
                                     "service_id": SERVICES[i % len(SERVICES)]})
            for i in range(30)]
    apply_ops(db_url, ops)
    kept = tallied(db_url)
    assert kept == counted(db_url) and len(kept) > 10
    engine_for(db_url).dispose()
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.set_main_option("sqlalchemy.url", db_url.replace("%", "%%"))
    command.downgrade(cfg, "0008")
    upgrade_database(db_url)
    assert tallied(db_url) == kept
    apply_ops(db_url, [("update", "milestone", 3, {"done_on": None})])  # triggers are back
    assert tallied(db_url) == counted(db_url)


def test_a_service_changing_moves_its_advice(db_url):
    """Each way a service can change what its advice is counted under: its agency changes;
    it is renumbered; a service appears with the id advice already names; it is removed."""
    setup(db_url)
    advice = {"rule_id": RULES[2], "due": DAY0, "received_on": DAY0, "excused": False,
              "reused": False, "source": "health"}

    def agencies():
        assert tallied(db_url) == counted(db_url)
        return {key[4]: n for key, (n, *_) in tallied(db_url).items()}

    apply_ops(db_url, [("insert", "advice", 0, {**advice, "service_id": sid})
                       for sid in ("svc-b", "svc-missing", "svc-c", "svc-c")])
    assert agencies() == {"education": 1, "health": 1, "social_care": 2}
    apply_ops(db_url, [("agency", "service", 2, {"agency": "other"})])  # svc-c
    assert agencies() == {"education": 1, "health": 1, "other": 2}
    apply_ops(db_url, [("service", "service", 1, {})])  # svc-b is renumbered svc-b-x
    assert agencies() == {"health": 2, "other": 2}
    apply_ops(db_url, [("service", "service", 3, {})])  # svc-missing appears ("other")
    assert agencies() == {"health": 1, "other": 3}
    apply_ops(db_url, [("service", "service", 3, {}), ("service", "service", 1, {})])
    assert agencies() == {"education": 1, "health": 1, "other": 2}  # and back


def test_a_case_ending_moves_its_steps_not_done(db_url):
    """``ended`` follows the case (closed, and since when) and an item moved between cases."""
    setup(db_url)
    step = {"rule_id": RULES[0], "excused": False, "applicable": True}

    def ended():
        assert tallied(db_url) == counted(db_url)
        return sum(e for *_, e in tallied(db_url).values())

    for done in (None, None, DAY0):  # on EHC-T1 (the first of each apply_ops)
        apply_ops(db_url, [("insert", "milestone", 0, {**step, "done_on": done,
                                                       "due": DAY0 + timedelta(days=2)})])
    assert ended() == 0
    apply_ops(db_url, [("case", "case", 0, {"is_open": False, "closed_on": DAY0})])
    assert ended() == 2  # the two not done
    apply_ops(db_url, [("case", "case", 0, {"closed_on": DAY0 + timedelta(days=3)})])
    assert ended() == 0  # closed after their due day
    apply_ops(db_url, [("case", "case", 0, {"closed_on": None})])
    assert ended() == 2
    apply_ops(db_url, [("update", "milestone", 0, {"case_reference": CASES[1]})])
    assert ended() == 1  # moved to the open case
    apply_ops(db_url, [("update", "milestone", 0, {"case_reference": CASES[0]}),
                       ("case", "case", 0, {"is_open": True})])
    assert ended() == 0


@pytest.mark.postgres
def test_concurrent_saves_do_not_deadlock(postgres_server):
    """The recorder saving many cases at once, whose deadlines share due days (so their tally
    rows), in different orders: on PostgreSQL no save fails (without the tally's advisory
    lock, about a third deadlocked) and the tally is exact."""
    url = new_database(postgres_server)
    upgrade_database(url)
    threads, per = 4, 6
    with Session(engine_for(url)) as s:
        for i in range(threads * per):
            s.add(t.Child(id=f"C{i}", given_name="T", family_name="C",
                          date_of_birth=date(2016, 1, 1)))
        s.commit()
    recorder = case_recorder(url)
    rules = [("decision_due", "assessment.decision_due", 42),
             ("draft", "assessment.draft_plan_target", 112),
             ("final_plan_due", "assessment.final_plan_due", 140)]
    sources = [AdviceSource.HEALTH, AdviceSource.EDUCATION, AdviceSource.SOCIAL_CARE,
               AdviceSource.EDUCATIONAL_PSYCHOLOGIST]

    def snapshot(ref: str, version: int) -> CaseSnapshot:
        rng = random.Random(f"{ref}/{version}")
        late = lambda due, p: (due + timedelta(days=rng.randint(-3, 3))  # noqa: E731
                               if rng.random() < p else None)
        return CaseSnapshot(
            reference=ref, child_id=ref, request_date=DAY0, version=version,
            stage=Stage.CLOSED if version == 4 else Stage.ASSESSING,
            closed_on=DAY0 + timedelta(days=60) if version == 4 else None,
            request_source=RequestSource.PARENT, policy=AssessmentPolicy(),
            milestones=[Milestone(key=key, rule_id=rule, started_on=DAY0,
                                  due=DAY0 + timedelta(days=n),
                                  done_on=late(DAY0 + timedelta(days=n), .6 * (version > 1)))
                        for key, rule, n in rng.sample(rules, len(rules))],
            advice=[AdviceItem(key=src.value, source=src, requested_on=DAY0,
                               due=DAY0 + timedelta(days=42),
                               received_on=late(DAY0 + timedelta(days=42), .7 * (version > 2)))
                    for src in rng.sample(sources, len(sources))])

    failures: list[str] = []

    def save_all(k: int) -> None:
        for version in (1, 2, 3, 4):
            for j in range(per):
                try:
                    recorder.record_case(snapshot(f"C{k * per + j}", version), [])
                except Exception as exc:  # noqa: BLE001 - counted
                    failures.append(f"{type(exc).__name__}: {str(exc)[:80]}")

    workers = [threading.Thread(target=save_all, args=(k,)) for k in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert failures == []
    assert tallied(url) == counted(url) != {}
