"""The managers' lists and the statistics at national scale: ``python -m bench national``.

Two parts, both in this module:

**The generator** (``generate``) writes a national-scale case database straight into the
tables, with bulk inserts (the driver's executemany of each table's INSERT, in chunks, on
SQLite; ``COPY`` on PostgreSQL), not through the workflows: they would take days to make this
much history, and what is measured here is reading it. The schema comes from the Alembic
migrations (``cli.system.upgrade_database``), so the indexes and triggers are the real ones, and
foreign keys stay checked. It is reproducible from ``--seed``. Its shape at the default scale
(``--plans 640000 --assessments 155000``), as on ``TODAY`` (1 December 2026):

- England's 153 councils' directories in one (fewer councils for a small run): per council 16
  schools (two of them special schools, with more children), 2 health teams, 1-2 social care
  teams and an educational psychology service, and 50 national "other" services; 1-3 contacts
  each. About 3,100 services. Council sizes vary about tenfold.
- Staff: a caseworker for about every 200 open cases of their council, and 100 managers.
- Two years of requests for an EHC needs assessment (``--assessments`` a year), each through
  the steps the workflow records: the decision whether to assess (82% within 6 weeks; a quarter
  refused; 2% withdrawn), advice from the five Reg 6(1) sources with its service, contact and
  escalation ladder (on time for 92% of the family's, 78% of education's, 62% of educational
  psychology's, 45% of health's and 40% of social care's), the decision whether to issue a plan
  (5% no plan), the draft and a school consulted, and the final plan (about 45% within 20
  weeks). About 3% of assessments have a Reg 10(4) exception and 4% of health and social care
  advice a Reg 8(2) one; ``excused`` is worked out with ``statutory.clock.excusing_exceptions``,
  as the recorder does.
- ``--plans`` active EHC plans: those the generated assessments issued, and the rest as
  imported plans. Each has its current review cycle (a ``case`` of kind "review", its
  ``review`` row, the milestones of the stage it has reached, its advice once a meeting is set)
  and, where the plan is old enough, the cycle before it, closed (so that a year's statistics
  see the reviews that were done, not only those still open). 70% of reviews are held by their
  anniversary, the rest 45 days late on average. 1/6 of plans have a phase transfer in 2027 and
  1/6 had one in 2026, dealt with by the cycle whose review falls in the year before it.
- Some of what is done is never recorded (6% of review invitations and advice circulations,
  10% of review reports and schools' responses): such items stay open in closed cases, as they
  do in a real database.
- Children: fake names and dates of birth only.
- Not written: case events, letters, emails, advice submissions. Neither the lists nor the
  statistics read them.

**The benchmark** (``time_queries``) times, against that database, what a manager's request
costs: ``store.worklist.query`` for the late list (the first page of 50 with its exact total),
unfiltered and with the usual filters and sorts, the due-soon list (14 days), and the statistics
page (``statistics_page``: the calls ``/statistics`` makes, for its default period). Each shape
runs ``--repeats`` times with varied filter values, each in a new session, after one untimed
run; p50, p95 and max of the wall time are reported, and the CPU time per request of this
process and of the database server. On SQLite it runs twice: first as the application leaves
the file (it never runs ``ANALYZE``: no ``sqlite_stat1``), then after ``ANALYZE``.

The summary goes to stdout as JSON and to ``bench/results/national-*.json`` with a markdown
table; progress to stderr. The figures are in docs/benchmarks.md.
"""

from __future__ import annotations

from domain.identifiers import assessment_workflow_id, review_reference, review_workflow_id

import argparse
import itertools
import json
import math
import os
import random
import re
import resource
import shutil
import statistics
import sys
import tempfile
import time
import tomllib
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

from bench.assessment_throughput import (
    ROOT,
    log,
    machine,
    machine_cpu_seconds,
    new_pg_database,
    postgres_server,
    save_results,
    source_version,
    tree_cpu_seconds,
)

TODAY = date(2026, 12, 1)
STAMP = datetime(2026, 12, 1, 6, 0, tzinfo=timezone.utc)  # every created_at / updated_at
CHUNK = 20_000  # rows buffered before the tables are written, parents first

SOURCES = ("family", "education", "health", "educational_psychologist", "social_care")
# The share of each source's advice received by its due day, and of advice never received.
ADVICE_ON_TIME = {"family": 0.92, "education": 0.78, "educational_psychologist": 0.62,
                  "health": 0.45, "social_care": 0.40}
ADVICE_NEVER = {"family": 0.01, "education": 0.02, "educational_psychologist": 0.03,
                "health": 0.06, "social_care": 0.07}
FAMILY_RULES = ("assessment.draft_comments_due", "review.amendment_comments_due")
SOURCE_AGENCY = {"education": "education", "health": "health",
                 "educational_psychologist": "educational_psychology",
                 "social_care": "social_care"}

# --- the rows, as the migrations make the tables ----------------------------------------------

COLUMNS = {
    "child": ("id", "given_name", "family_name", "date_of_birth", "council_reference",
              "open_case_reference", "created_at"),
    "service": ("id", "name", "agency", "team_email", "is_default", "ladder", "active",
                "created_at"),
    "contact": ("id", "service_id", "name", "email", "role", "is_lead", "active", "created_at"),
    "staffuser": ("id", "email", "name", "role", "password_hash", "active", "failed_sign_ins",
                  "locked_until", "created_at", "last_signed_in_at"),
    "case": ("reference", "kind", "child_id", "workflow_id", "stage", "is_open", "request_date",
             "request_source", "plan_decided_on", "closed_on", "close_reason", "policy",
             "version", "updated_at", "setting_name", "caseworker_id"),
    "plan": ("reference", "child_id", "issued_on", "origin", "source_case_reference",
             "workflow_id", "status", "current_cycle", "review_due", "nc_year", "nc_year_as_of",
             "setting_type", "setting_name", "transfer_kind", "transfer_year", "transfer_due",
             "ended_on", "version", "updated_at", "caseworker_id"),
    "review": ("case_reference", "plan_reference", "cycle", "anchor_on", "meeting_on",
               "meeting_held_on", "decision", "decided_on", "amendments_sent_on",
               "amended_plan_issued_on", "not_amended_on", "cease_consulted_on", "ceased_on",
               "outcomes"),
    "milestone": ("case_reference", "key", "kind", "rule_id", "started_on", "due", "done_on",
                  "applicable", "alerts_fired", "excused", "listed"),
    "adviceitem": ("case_reference", "key", "source", "label", "requested_on", "due",
                   "received_on", "reused", "rule_id", "alerts_fired", "service_id",
                   "contact_id", "ladder", "submission_id", "expected_on", "excused", "listed"),
    "caseexception": ("case_reference", "id", "kind", "reason", "starts_on", "ends_on",
                      "evidence", "advice_key", "recorded_on", "withdrawn_on",
                      "withdrawal_reason"),
}
JSON_COLUMNS = {"service": {"ladder"}, "case": {"policy"}, "review": {"outcomes"},
                "milestone": {"alerts_fired"}, "adviceitem": {"alerts_fired", "ladder"}}
ORDER = tuple(COLUMNS)  # parents before children


class Loader:
    """Buffers rows per table and writes them in chunks, every table in ``ORDER`` so that a
    row's parent is always written first (foreign keys stay checked). ``done_with`` marks a
    point where every row added so far has its parents added too: only there is it written."""

    def __init__(self, url: str) -> None:
        from store.db import make_engine

        self.url = url
        self.pg = url.startswith("postgresql")
        self.engine = make_engine(url)
        self.rows: dict[str, list[tuple]] = {name: [] for name in ORDER}
        self.counts = dict.fromkeys(ORDER, 0)
        self.buffered = 0
        self._sql: dict[str, str] = {}
        self._json: dict[int, tuple] = {}
        self._convert = {
            name: [(i, c in JSON_COLUMNS.get(name, ())) for i, c in enumerate(cols)
                   if c in JSON_COLUMNS.get(name, ()) or c in ("created_at", "updated_at")]
            for name, cols in COLUMNS.items()}
        if not self.pg:
            import sqlite3

            from sqlalchemy import event

            @event.listens_for(self.engine, "connect")
            def _big_cache(dbapi_conn, _record) -> None:
                # the loading connection only: 1 GB of page cache, so that the indexes being
                # filled in random order stay in memory
                dbapi_conn.execute("PRAGMA cache_size=-1000000")

            from sqlmodel.sql.sqltypes import UTCDateTime

            # what SQLAlchemy's Date type stores on SQLite (and the driver's old default)
            sqlite3.register_adapter(date, date.isoformat)

            self.stamp_sqlite = UTCDateTime().dialect_impl(self.engine.dialect) \
                .bind_processor(self.engine.dialect)(STAMP)

    def add(self, table: str, row: tuple) -> None:
        self.rows[table].append(row)
        self.buffered += 1

    def done_with(self) -> None:
        if self.buffered >= CHUNK:
            self.flush()

    def flush(self) -> None:
        with self.engine.begin() as conn:
            for name in ORDER:
                rows = self.rows[name]
                if not rows:
                    continue
                if self.pg:
                    self._copy(conn, name, rows)
                else:
                    conn.exec_driver_sql(self._insert_sql(name),
                                         [self._sqlite_row(name, r) for r in rows])
                self.counts[name] += len(rows)
                self.rows[name] = []
        self.buffered = 0

    def _insert_sql(self, name: str) -> str:
        """The table's INSERT with the columns in ``COLUMNS`` order, for executemany."""
        if name not in self._sql:
            prep = self.engine.dialect.identifier_preparer
            cols = COLUMNS[name]
            self._sql[name] = (f"INSERT INTO {prep.quote(name)} "
                               f"({', '.join(prep.quote(c) for c in cols)}) "
                               f"VALUES ({', '.join('?' * len(cols))})")
        return self._sql[name]

    def _sqlite_row(self, name: str, row: tuple) -> tuple:
        """The values as SQLAlchemy's SQLite types store them: JSON as its text, ``STAMP`` as
        the DateTime type writes it; dates (YYYY-MM-DD, the adapter registered in
        ``__init__``) and booleans (0/1) are left to the driver."""
        convert = self._convert[name]
        if not convert:
            return row
        out = list(row)
        for i, is_json in convert:
            v = out[i]
            if v is not None:
                out[i] = self.json(v) if is_json else self.stamp_sqlite
        return tuple(out)

    def json(self, v) -> str:
        if isinstance(v, dict):  # the ladders: a few objects shared by every advice item
            key = id(v)
            if key not in self._json:
                self._json[key] = (v, json.dumps(v))
            return self._json[key][1]
        return json.dumps(v)

    def _copy(self, conn, name: str, rows: list[tuple]) -> None:
        cols = COLUMNS[name]
        js = [i for i, c in enumerate(cols) if c in JSON_COLUMNS.get(name, ())]
        cur = conn.connection.driver_connection.cursor()
        with cur.copy(f'COPY "{name}" ({", ".join(cols)}) FROM STDIN') as copy:
            for r in rows:
                if js:
                    r = list(r)
                    for i in js:
                        r[i] = None if r[i] is None else self.json(r[i])
                copy.write_row(r)


# --- names, references, dates ----------------------------------------------------------------

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
PLACE_A = ("North", "South", "East", "West", "Upper", "Lower", "Great", "Little", "Kings",
           "Queens", "Old", "New", "High", "Long", "Broad", "Saint", "Mid", "Fair")
PLACE_B = ("ford", "ham", "ton", "bury", "field", "wick", "ley", "stead", "borough", "mouth",
           "chester", "worth", "dale", "moor", "bridge", "port")
SCHOOL_WORDS = ("Oak", "Elm", "Ash", "Beech", "Willow", "Hill", "Park", "Green", "Brook",
                "Meadow", "Church", "Castle", "Mill", "Orchard", "River", "Valley", "St Mary's",
                "St John's", "Holy Trinity", "Riverside", "Heath", "Forest")
SCHOOL_KINDS = ("Primary School", "Academy", "High School", "Infant School", "Junior School",
                "College", "Nursery School", "CofE Primary School")
GIVEN = ("Sam", "Alex", "Jo", "Charlie", "Robin", "Jamie", "Ali", "Kit", "Max", "Noor", "Ava",
         "Leo", "Mia", "Zac", "Ivy", "Finn", "Ella", "Remi", "Ola", "Tao", "Ari", "Bea", "Cal",
         "Dev", "Eli", "Fae", "Gus", "Hal", "Isa", "Jude")
FAMILY = ("Example", "Sample", "Testing", "Placeholder", "Fictional", "Madeup", "Notreal",
          "Dummy", "Specimen", "Pretend", "Standin", "Invented", "Mock", "Proxy", "Surrogate",
          "Model", "Typical", "Generic", "Anon", "Nominal")
NC_YEARS = ("N2", "R", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13",
            "14")
NC_WEIGHTS = (2, 4, 5, 6, 7, 7, 7, 7, 8, 8, 8, 8, 7, 5, 4, 3)


def reference(prefix: str, n: int, salt: int) -> str:
    """A case or plan reference that looks random but is unique: ``n`` times an odd number
    modulo 32**8 is a bijection."""
    x = (n * 0x9E3779B97F4A7C15 + salt) % (1 << 40)
    s = "".join(CROCKFORD[(x >> (5 * i)) & 31] for i in range(8))
    return f"{prefix}-{s[:4]}-{s[4:]}"


def year_after(d: date) -> date:
    try:
        return d.replace(year=d.year + 1)
    except ValueError:  # 29 February
        return date(d.year + 1, 2, 28)


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def days(n: float) -> timedelta:
    return timedelta(days=int(n))


@dataclass
class Council:
    name: str
    weight: float
    schools: list[tuple[str, str, str]] = field(default_factory=list)  # id, name, contact id
    school_weights: list[float] = field(default_factory=list)
    cum_school_weights: list[float] = field(default_factory=list)
    services: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # agency -> ids
    caseworkers: list[str] = field(default_factory=list)


@dataclass
class _Exc:
    kind: object
    starts_on: date
    ends_on: date | None
    withdrawn_on: date | None = None
    advice_key: str | None = None


class Generator:
    def __init__(self, loader: Loader, *, plans: int, assessments: int, seed: int,
                 today: date = TODAY) -> None:
        from domain.ladder import LadderConfig
        from domain.case import AssessmentPolicy, ReviewPolicy
        from statutory import RULES

        self.out = loader
        self.plans_wanted = plans
        self.per_year = assessments
        self.rng = random.Random(seed)
        self.seed = seed
        self.today = today
        self.rules = RULES
        config = LadderConfig.model_validate(
            tomllib.loads((ROOT / "config" / "escalation.toml").read_text()))
        self.ladders = {s: config.for_source(s).model_dump() for s in SOURCES}
        self.ladder_steps = {s: ([(st["name"], st["anchor"], st["days"]) for st in l["steps"]],
                                 l["repeat_every_days"] if l["steps"] else None)
                             for s, l in self.ladders.items()}
        self.assessment_policy = AssessmentPolicy().model_dump()
        self.review_policy = ReviewPolicy().model_dump()
        self.children = 0
        # England's 153 councils at national scale; fewer for a small run
        self.n_councils = max(2, min(153, plans // 4000))
        self.councils: list[Council] = []
        self.other_services: list[tuple[str, str]] = []
        self.plans_made = 0
        self.stats = {"late": 0, "due_soon": 0}

    # --- ids and small helpers ----------------------------------------------------------------

    def uid(self) -> str:
        return f"{self.rng.getrandbits(128):032x}"

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def late_by(self, mean: float) -> int:
        return 1 + int(self.rng.expovariate(1 / mean))

    def done(self, due: date, p_on_time: float, mean_late: float, p_never: float = 0.0,
             earliest: date | None = None, span: int = 14) -> date | None:
        """When a step due on ``due`` was done (possibly in the future: not done yet)."""
        r = self.rng.random()
        if r < p_never:
            return None
        if r < p_never + p_on_time:
            d = due - days(self.rng.randint(0, span))
        else:
            d = due + days(self.late_by(mean_late))
        if earliest is not None and d < earliest:
            d = earliest
        return d

    def as_of(self, d: date | None) -> date | None:
        """A date, if it has come by today; otherwise the step is not done yet."""
        return d if d is not None and d <= self.today else None

    def alerts(self, due: date, done: date | None) -> list[str]:
        """What ``domain.alerts.ALERT_LADDER`` has fired for a milestone by today."""
        limit = self.today if done is None else min(self.today, done - timedelta(days=1))
        out = []
        if due - timedelta(days=5) <= limit:
            out.append("due_soon")
        if due + timedelta(days=1) <= limit:
            out.append("overdue")
        return out

    def ladder_fired(self, source: str, requested: date, due: date,
                     received: date | None) -> list[str]:
        limit = self.today if received is None else min(self.today, received - timedelta(days=1))
        steps, every = self.ladder_steps[source]
        out, last = [], requested
        for name, anchor, n in steps:
            on = (requested if anchor == "requested" else due) + timedelta(days=n)
            last = max(last, on)
            if on <= limit or (anchor == "requested" and n == 0):
                out.append(name)
        k = 1
        while every and last + timedelta(days=every * k) <= limit:
            out.append(f"repeat-{k}")
            k += 1
        return out

    def excused(self, rule_id: str, started: date, due: date, excs: list[_Exc],
                advice_key: str | None = None) -> bool:
        if not excs:
            return False
        from statutory.clock import excusing_exceptions

        return bool(excusing_exceptions(self.rules[rule_id], started, due, excs,
                                        advice_key=advice_key))

    # --- the directory and the staff ----------------------------------------------------------

    def directory(self) -> None:
        rng = self.rng
        names = [a + b for a in PLACE_A for b in PLACE_B]
        rng.shuffle(names)
        ladder_none = None
        for i in range(self.n_councils):
            # council sizes vary about tenfold (lognormal)
            council = Council(names[i], math.exp(rng.gauss(0, 0.6)))
            words = list(SCHOOL_WORDS)
            rng.shuffle(words)
            for j in range(16):
                if j < 2:
                    name = f"{council.name} {words[j]} Special School"
                else:
                    name = f"{council.name} {words[j]} {rng.choice(SCHOOL_KINDS)}"
                sid, cid = self.service(name, "education", ladder_none)
                council.schools.append((sid, name, cid))
                council.school_weights.append(6.0 if j < 2 else 1.0)
            for agency, n, what in (("health", 2, ("Community Paediatrics", "CAMHS",
                                                   "Speech and Language Therapy",
                                                   "Children's Community Nursing")),
                                    ("social_care", rng.choice((1, 2)),
                                     ("Children's Social Care", "Disabled Children's Team")),
                                    ("educational_psychology", 1,
                                     ("Educational Psychology Service",))):
                picks = rng.sample(what, n)
                council.services[agency] = [self.service(f"{council.name} {p}", agency, None)
                                            for p in picks]
            self.councils.append(council)
        for j in range(50):
            self.other_services.append(self.service(f"National Advice Service {j + 1:02d}",
                                                    "other", None))
        self.weights = [c.weight for c in self.councils]
        self.cum_weights = list(itertools.accumulate(self.weights))
        for c in self.councils:
            c.cum_school_weights = list(itertools.accumulate(c.school_weights))

    def service(self, name: str, agency: str, ladder) -> tuple[str, str]:
        sid = self.uid()
        email = f"{slug(name)[:60]}@services.example"
        self.out.add("service", (sid, name, agency, email, False, ladder, True, STAMP))
        lead = None
        for k in range(self.rng.choice((1, 2, 2, 3))):
            cid = self.uid()
            self.out.add("contact", (cid, sid, f"{self.rng.choice(GIVEN)} "
                                     f"{self.rng.choice(FAMILY)}", f"p{k}.{email}",
                                     "Lead" if k == 0 else "Practitioner", k == 0, True, STAMP))
            lead = lead or cid
        return sid, lead

    def staff(self, open_cases: int) -> None:
        total_w = sum(self.weights)
        n = 0
        for c in self.councils:
            want = max(2, round(open_cases * c.weight / total_w / 200))
            for _ in range(want):
                uid = self.uid()
                self.out.add("staffuser", (
                    uid, f"caseworker{n:05d}@council.example",
                    f"{self.rng.choice(GIVEN)} {self.rng.choice(FAMILY)} {n}", "caseworker",
                    "$argon2id$v=19$m=65536,t=3,p=4$bench$not-a-real-hash", True, 0, None,
                    STAMP, None))
                c.caseworkers.append(uid)
                n += 1
        for k in range(100):
            self.out.add("staffuser", (
                self.uid(), f"manager{k:03d}@council.example", f"Manager {k}", "manager",
                "$argon2id$v=19$m=65536,t=3,p=4$bench$not-a-real-hash", True, 0, None, STAMP,
                None))
        self.caseworker_count = n

    def council(self) -> Council:
        return self.rng.choices(self.councils, cum_weights=self.cum_weights)[0]

    def caseworker(self, c: Council) -> str | None:
        return None if self.chance(0.01) else self.rng.choice(c.caseworkers)

    def school(self, c: Council) -> tuple[str, str, str]:
        return self.rng.choices(c.schools, cum_weights=c.cum_school_weights)[0]

    def child(self, cid: str, nc_year: str | None, open_case: str | None = None) -> str:
        """The child's row (fake name and date of birth)."""
        rng = self.rng
        offset = NC_YEARS.index(nc_year) - 1 if nc_year else rng.randint(0, 12)  # R: 0
        born_year = 2026 - 5 - offset  # a reception child in 2026/27 was born 2021/22
        dob = date(born_year, 9, 1) + days(rng.randint(0, 364))
        self.children += 1
        self.out.add("child", (cid, rng.choice(GIVEN), rng.choice(FAMILY), dob,
                               f"P{self.children:08d}", open_case, STAMP))
        return cid

    # --- assessments --------------------------------------------------------------------------

    def assessments(self) -> list[tuple]:
        """Two years of requests; returns the plans they issued (for their reviews)."""
        from statutory import ExceptionKind

        rng, today = self.rng, self.today
        n_total = 2 * self.per_year
        issued = []
        for n in range(n_total):
            ref = reference("EHC", n, self.seed)
            r = today - days(rng.random() * 730)
            council = self.council()
            school_id, school_name, school_contact = self.school(council)
            worker = self.caseworker(council)
            child = self.uid()
            source = rng.choices(("parent", "school", "young_person", "other"),
                                 (60, 35, 2, 3))[0]
            ms: list[list] = []  # key, kind, rule, started, due, done, applicable
            advice: list[tuple] = []
            excs: list[_Exc] = []
            exc_rows: list[tuple] = []
            stage, closed, plan_decided = "awaiting_decision", None, None

            def milestone(key, rule, started, due, done=None, applicable=True, kind="milestone"):
                ms.append([key, kind, rule, started, due, done, applicable])
                return ms[-1]

            dec = milestone("decision_due", "assessment.decision_due", r, r + days(42))
            nop = milestone("no_plan_notice_due", "assessment.no_plan_notice_due", r,
                            r + days(112))
            draft = milestone("draft_plan_target", "assessment.draft_plan_target", r,
                              r + days(112))
            final = milestone("final_plan_due", "assessment.final_plan_due", r, r + days(140))
            la_exception = self.chance(0.03)
            if la_exception:
                starts = r + days(rng.randint(10, 100))
                ends = starts + days(rng.randint(14, 70))
                kind = rng.choice((ExceptionKind.PERSONAL_CIRCUMSTANCES,
                                   ExceptionKind.ABSENT_FROM_AREA,
                                   ExceptionKind.SCHOOL_CLOSURE))
                if starts <= today:
                    excs.append(_Exc(kind, starts, ends if ends <= today else None))
                    exc_rows.append((ref, "X1", kind.value, "Recorded for the benchmark",
                                     starts, ends if ends <= today else None, None, None,
                                     starts, None, None))
            # the decision whether to assess
            if rng.random() < 0.82:
                decided = r + days(rng.randint(14, 42))
            else:
                decided = r + days(42 + self.late_by(18 if not la_exception else 40))
            withdrawn = self.chance(0.02)
            if withdrawn:
                closed = r + days(rng.randint(5, 40))
            if withdrawn and closed <= today:
                stage = "closed"
            elif decided <= today:
                dec[5] = decided
                if self.chance(0.25):
                    stage, closed = "refused", decided
                    for m in (nop, draft, final):
                        m[6] = False
                else:
                    stage = "assessing"
                    self.assessment(ref, r, decided, council, (school_id, school_name,
                                    school_contact), ms, advice, excs, exc_rows, milestone,
                                    final, draft, nop, la_exception, issued, worker, child)
                    stage, closed, plan_decided = self._outcome
            is_open = stage in ("awaiting_decision", "assessing", "drafting", "draft_served")
            self.child(child, None, open_case=ref if is_open else None)
            self.out.add("case", (ref, "assessment", child, assessment_workflow_id(ref), stage, is_open,
                                  r, source, plan_decided, closed,
                                  "Request withdrawn" if stage == "closed" else None,
                                  self.assessment_policy, 10 + len(ms) + len(advice), STAMP,
                                  school_name, worker))
            rows = []
            for key, kind, rule, started, due, done, applicable in ms:
                done = self.as_of(done)
                rows.append((ref, key, kind, rule, started, due, done, applicable,
                             self.alerts(due, done) if applicable and (is_open or done) else [],
                             self.excused(rule, started, due, excs)))
            self.tally("assessment", stage, is_open, rows, advice)
            for row in rows:  # listed: as the triggers of migration 0007 would set it
                self.out.add("milestone", (*row, is_open))
            for row in advice:
                self.out.add("adviceitem", (*row, is_open))
            for row in exc_rows:
                self.out.add("caseexception", row)
            self.out.done_with()
            if (n + 1) % 50_000 == 0:
                log(f"  {n + 1:,} of {n_total:,} assessments")
        return issued

    def tally(self, kind: str, stage: str, is_open: bool, milestones: list[tuple],
              advice: list[tuple]) -> None:
        """Count the case's items on the late and due-soon (14 days) lists by the rules of
        ``store.worklist``, worked out here from the rows, for the test to compare."""
        if not is_open:
            return
        today, soon = self.today, self.today + timedelta(days=14)
        dues = [m[5] for m in milestones if m[6] is None and m[7] and not m[9]
                and m[3] not in FAMILY_RULES]
        if kind != "review" or stage == "meeting_set":
            dues += [a[5] for a in advice if a[6] is None and not a[7] and not a[15]]
        for due in dues:
            if due < today:
                self.stats["late"] += 1
            elif due <= soon:
                self.stats["due_soon"] += 1

    def assessment(self, ref, r, decided, council, school, ms, advice, excs, exc_rows,
                   milestone, final, draft, nop, la_exception, issued, worker, child) -> None:
        """From the decision to assess to the final plan (or no plan); sets ``_outcome``."""
        from statutory import ExceptionKind

        rng, today = self.rng, self.today
        school_id, school_name, school_contact = school
        asked = decided + days(rng.randint(0, 7))
        last_advice = asked
        for source in SOURCES:
            due = asked + days(42)
            if source == "family":
                service_id = contact_id = None
            elif source == "education":
                service_id, contact_id = school_id, school_contact
            else:
                service_id, contact_id = rng.choice(council.services[SOURCE_AGENCY[source]])
            a_exc = None
            if source in ("health", "social_care") and self.chance(0.04):
                starts = asked + days(rng.randint(7, 35))
                if starts <= today:
                    kind = rng.choice((ExceptionKind.ADVICE_MISSED_APPOINTMENT,
                                       ExceptionKind.ADVICE_EXCEPTIONAL_CIRCUMSTANCES,
                                       ExceptionKind.ADVICE_ABSENT_FROM_AREA))
                    ends = starts + days(rng.randint(14, 60))
                    ends = ends if ends <= today else None
                    a_exc = _Exc(kind, starts, ends, advice_key=source)
                    excs.append(a_exc)
                    exc_rows.append((ref, f"X{len(exc_rows) + 1}", kind.value,
                                     "Recorded for the benchmark", starts, ends, None, source,
                                     starts, None, None))
            received = self.done(due, 0.2 if a_exc else ADVICE_ON_TIME[source],
                                 40 if a_exc else 18, ADVICE_NEVER[source],
                                 earliest=asked + days(3), span=30)
            if received is not None:
                last_advice = max(last_advice, received)
            got = self.as_of(received)
            advice.append((ref, source, source, None, asked, due, got, False,
                           "assessment.advice_due",
                           self.ladder_fired(source, asked, due, got), service_id, contact_id,
                           self.ladders[source], None, None,
                           self.excused("assessment.advice_due", asked, due, excs, source)))
        # the decision whether to issue a plan, the draft, the final plan
        if rng.random() < 0.58 and not la_exception:
            f = r + days(140 - rng.randint(0, 25))
        else:
            f = r + days(140 + self.late_by(75))
        ds = f - days(rng.randint(16, 35))
        pd = ds - days(rng.randint(3, 20))
        floor = max(asked + days(14), min(last_advice, asked + days(60)))
        if pd < floor:
            pd = floor
            ds = pd + days(rng.randint(3, 20))
            f = max(f, ds + days(rng.randint(16, 35)))
        if pd > today:
            self._outcome = ("assessing", None, None)
            return
        if self.chance(0.05):  # no plan (Reg 10)
            nop[5] = pd
            draft[6] = final[6] = False
            self._outcome = ("no_plan", pd, None)
            return
        nop[6] = False
        if ds > today:
            self._outcome = ("drafting", None, pd)
            return
        draft[5] = ds
        milestone("draft_comments_due", "assessment.draft_comments_due", ds, ds + days(15),
                  ds + days(rng.randint(5, 15)) if self.chance(0.7) else None)
        setting_done = self.done(ds + days(15), 0.65, 12, 0.1, earliest=ds + days(2))
        milestone(f"setting:{slug(school_name)}", "assessment.setting_response_due", ds,
                  ds + days(15), setting_done, kind="setting")
        if f > today:
            self._outcome = ("draft_served", None, pd)
            return
        final[5] = f
        issued.append((ref, child, f, council, school, worker))
        self._outcome = ("final_issued", f, pd)

    # --- plans and their review cycles --------------------------------------------------------

    def plans(self, from_assessments: list[tuple]) -> None:
        rng = self.rng
        n_import = max(0, self.plans_wanted - len(from_assessments))
        total = len(from_assessments) + n_import
        for k, (ref, child, f, council, school, worker) in enumerate(from_assessments):
            nc = rng.choices(NC_YEARS, NC_WEIGHTS)[0]
            self.plan(ref, child, f, "assessment", council, school, worker, nc, f, 1)
            if (k + 1) % 100_000 == 0:
                log(f"  {k + 1:,} of {total:,} plans")
        for n in range(n_import):
            council = self.council()
            school = self.school(council)
            nc = rng.choices(NC_YEARS, NC_WEIGHTS)[0]
            ref = reference("PLN", n, self.seed + 1)
            age = rng.randint(2, 12)  # years since the plan was issued
            issued = self.today - days(365 * age + rng.randint(0, 364))
            # the review chain starts two to three years back, at cycle ``age - 2``
            anchor = self.today - days(730 + rng.randint(0, 364))
            worker = self.caseworker(council)
            child = self.child(self.uid(), nc)
            self.plan(ref, child, issued, "import", council, school, worker, nc, anchor,
                      max(1, age - 2), keep_from=self.today - days(450))
            k = len(from_assessments) + n + 1
            if k % 100_000 == 0:
                log(f"  {k:,} of {total:,} plans")

    def plan(self, ref, child, issued_on, origin, council, school, worker, nc, anchor,
             cycle, keep_from: date | None = None) -> None:
        rng, today = self.rng, self.today
        school_name = school[1]
        self._cycle_council, self._cycle_school = council, (school[0], school[2])
        # phase transfers: 1/6 of plans move in September 2027, 1/6 moved in September 2026;
        # the cycle whose review falls due within 12 months of the deadline deals with it
        draw = rng.random()
        kind = "post16" if rng.random() < 0.35 else "school"
        year = 2027 if draw < 1 / 6 else 2026 if draw < 2 / 6 else None
        transfer = None if year is None else (
            kind, date(year, 2, 15) if kind == "school" else date(year, 3, 31))
        cycles = []
        while True:
            c = self.cycle(anchor, transfer)
            if c["transfer"] is not None:
                transfer = None
            cycles.append(c)
            if c["closed_on"] is None or c["closed_on"] > today:
                break
            anchor = c["meeting"]
        current = cycles[-1]
        kept = [c for c in cycles[:-1] if keep_from is None or c["closed_on"] >= keep_from]
        kept = kept[-1:]  # the cycle before the current one, closed
        first_cycle = cycle + len(cycles) - 1 - len(kept)
        plan_review_due = None
        for i, c in enumerate([*kept, current]):
            due = self.write_cycle(ref, first_cycle + i, c, child, school_name, worker)
            if c is current:
                plan_review_due = due
        cur_t = current["transfer"]
        self.out.add("plan", (
            ref, child, issued_on, origin, ref if origin == "assessment" else None,
            review_workflow_id(ref), "active", first_cycle + len(kept), plan_review_due, nc,
            date(2026, 9, 1), "special" if "Special" in school_name else "mainstream",
            school_name, cur_t[0] if cur_t else None, cur_t[1].year if cur_t else None,
            cur_t[1] if cur_t else None, None, 20, STAMP, worker))
        self.plans_made += 1
        self.out.done_with()

    def cycle(self, anchor: date, transfer: tuple[str, date] | None = None) -> dict:
        """The dates of one review cycle from ``anchor`` (they may lie after today). A cycle
        that deals with a phase transfer has its meeting in the autumn before the deadline and
        amends the plan (on time for about two thirds)."""
        rng = self.rng
        due = year_after(anchor)
        if transfer is not None and due <= transfer[1] - timedelta(days=365):
            transfer = None  # the next cycle's
        if rng.random() < 0.70:
            meeting = due - days(rng.randint(1, 42))
        else:
            meeting = due + days(self.late_by(45))
        if transfer is not None:
            meeting = max(anchor + days(90), min(meeting, transfer[1] - days(rng.randint(
                90, 180))))
        set_on = meeting - days(rng.randint(28, 70))
        decided = self.done(meeting + days(28), 0.8 if transfer else 0.55, 25,
                            earliest=meeting + days(1), span=26)
        r = rng.random()
        decision = "maintain" if r < 0.58 else "amend" if r < 0.98 else "cease"
        if transfer is not None:
            decision = "amend"
        c = {"anchor": anchor, "due": due, "meeting": meeting, "set_on": set_on,
             "decided": decided, "decision": decision, "not_amended": None, "issued": None,
             "transfer": transfer}
        if decision == "maintain":
            c["closed_on"] = decided
        elif decision == "amend":
            if self.chance(0.05):
                c["not_amended"] = decided + days(rng.randint(15, 50))
                c["closed_on"] = c["not_amended"]
            elif transfer is not None:
                c["issued"] = self.done(transfer[1], 0.75, 30, earliest=decided + days(16),
                                        span=40)
                c["closed_on"] = c["issued"]
            else:
                c["issued"] = self.done(decided + days(56), 0.45, 45, earliest=decided + days(16),
                                        span=30)
                c["closed_on"] = c["issued"]
        else:
            c["closed_on"] = None  # ceasing: stays open (the plan is still maintained today)
        return c

    def write_cycle(self, plan_ref, n, c, child, school_name, worker) -> date | None:
        """The cycle's rows as they stand today; returns the plan's review due (if open)."""
        rng, today = self.rng, self.today
        ref = review_reference(plan_ref, n)
        meeting, set_on, decided = c["meeting"], c["set_on"], c["decided"]
        closed = self.as_of(c["closed_on"])
        stage = "awaiting_meeting"
        if closed is not None:
            stage = "maintained" if c["decision"] == "maintain" else "amended"
        elif decided <= today and c["decision"] == "amend":
            stage = "amending"
        elif decided <= today and c["decision"] == "cease":
            stage = "ceasing"
        elif meeting <= today:
            stage = "meeting_held"
        elif set_on <= today:
            stage = "meeting_set"
        is_open = closed is None
        ms: list[tuple] = []

        def milestone(key, rule, started, due, done=None, applicable=True):
            done = self.as_of(done)
            ms.append((ref, key, "milestone", rule, started, due, done, applicable,
                       self.alerts(due, done) if applicable and (is_open or done) else [],
                       False))

        held = meeting if meeting <= today else None
        milestone("review_due", "review.review_due", c["anchor"], c["due"], held)
        if c["transfer"] is not None:  # done when the cycle ends (ReviewWorkflow._end_cycle)
            kind, due = c["transfer"]
            milestone("phase_transfer_due", f"review.phase_transfer_due.{kind}", c["anchor"],
                      due, closed)
        advice_rows = []
        if set_on <= today:
            notice = meeting - days(14)
            milestone("invitations_due", "review.invitations_due", meeting, notice,
                      self.done(notice, 0.8, 5, 0.06, earliest=set_on, span=10))
            milestone("advice_circulated_due", "review.advice_circulated_due", meeting, notice,
                      self.done(notice, 0.7, 6, 0.06, earliest=set_on, span=7))
            council_services = self._cycle_council
            for source in ("education", "health", "social_care", "educational_psychologist"):
                if source != "education" and not self.chance(
                        {"health": 0.6, "social_care": 0.3, "educational_psychologist": 0.3}[
                            source]):
                    continue
                asked = set_on + days(rng.randint(0, 5))
                if source == "education":
                    service_id, contact_id = self._cycle_school
                else:
                    service_id, contact_id = rng.choice(
                        council_services.services[SOURCE_AGENCY[source]])
                received = self.as_of(self.done(notice, min(0.9, ADVICE_ON_TIME[source] + 0.1),
                                                10, 0.08, earliest=asked + days(2), span=12))
                advice_rows.append((ref, source, source, None, asked, notice, received, False,
                                    "review.advice_circulated_due",
                                    self.ladder_fired(source, asked, notice, received),
                                    service_id, contact_id, self.ladders[source], None, None,
                                    False))
        if held is not None:
            milestone("report_due", "review.report_due", meeting, meeting + days(14),
                      self.done(meeting + days(14), 0.55, 20, 0.10, earliest=meeting, span=13))
            milestone("decision_due", "review.decision_due", meeting, meeting + days(28),
                      decided)
        amendments = None
        if decided <= today and c["decision"] == "amend":
            amendments = decided
            milestone("amendment_comments_due", "review.amendment_comments_due", decided,
                      decided + days(15),
                      decided + days(rng.randint(3, 15)) if self.chance(0.6) else None)
            milestone("final_amended_plan_due", "review.final_amended_plan_due", decided,
                      decided + days(56), c["issued"] or c["not_amended"])
        cease_consulted = meeting + days(7) if c["decision"] == "cease" and held else None
        self.out.add("case", (ref, "review", child, review_workflow_id(plan_ref), stage, is_open,
                              c["anchor"], "review", None, closed, None, self.review_policy,
                              10 + len(ms), STAMP, school_name, worker))
        self.out.add("review", (
            ref, plan_ref, n, c["anchor"], meeting if set_on <= today else None, held,
            c["decision"] if decided <= today else None, self.as_of(decided), amendments,
            self.as_of(c["issued"]), self.as_of(c["not_amended"]), cease_consulted, None, []))
        self.tally("review", stage, is_open, ms, advice_rows)
        for row in ms:
            self.out.add("milestone", (*row, is_open))
        for row in advice_rows:
            self.out.add("adviceitem", (*row, is_open and stage == "meeting_set"))
        if not is_open:
            return None
        open_dues = [row[5] for row in ms if row[6] is None and row[7]
                     and row[1] in ("review_due", "phase_transfer_due")]
        return min(open_dues) if open_dues else None

    # --- the whole database -------------------------------------------------------------------

    def run(self) -> None:
        self.directory()
        open_estimate = self.plans_wanted + int(self.per_year * 0.45)
        self.staff(open_estimate)
        issued = self.assessments()
        log(f"  {len(issued):,} assessments issued a plan; adding the plans' reviews")
        self.plans(issued)
        self.out.flush()


def _tally_migration():
    """Migration 0009 (the deadline tally), for its backfill."""
    import importlib.util

    path = ROOT / "migrations" / "versions" / "0009_deadline_tally.py"
    spec = importlib.util.spec_from_file_location("migration_0009", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextmanager
def tally_paused(engine):
    """The deadline tally's triggers (migration 0009) off while the tables are filled, and
    the tally counted afresh from what was written, by the migration's own backfill: the
    same rows the triggers would have kept (tests/test_bench_national.py checks), without a
    trigger per row written. On SQLite the triggers are dropped and made again from their
    own SQL (``sqlite_master``); on PostgreSQL disabled and enabled."""
    from sqlalchemy import text

    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            saved = conn.execute(text(
                "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
                "AND name LIKE 'trg\\_%\\_tally%' ESCAPE '\\'")).all()
            expected = set(_tally_migration().SQLITE_DROP)
            if {name for name, _ in saved} != expected:
                raise RuntimeError(f"the tally's triggers are not {sorted(expected)}")
            for name, _ in saved:
                conn.execute(text(f"DROP TRIGGER {name}"))
        else:
            saved = [(table, None) for table in ("milestone", "adviceitem", "service", "case")]
            for table, _ in saved:
                conn.execute(text(f'ALTER TABLE "{table}" DISABLE TRIGGER trg_{table}_tally'))
    try:
        yield
    finally:  # even after a failure: what was written is counted, and the triggers are back
        _tally_resumed(engine, saved)


def _tally_resumed(engine, saved: list[tuple[str, str | None]]) -> None:
    from sqlalchemy import text

    with engine.begin() as conn:
        conn.execute(text("DELETE FROM deadline_day"))
        conn.execute(text(_tally_migration().BACKFILL))
        for name, sql in saved:
            conn.execute(text(sql if sql is not None else
                              f'ALTER TABLE "{name}" ENABLE TRIGGER trg_{name}_tally'))


def generate(url: str, *, plans: int = 640_000, assessments: int = 155_000, seed: int = 1,
             today: date = TODAY) -> dict:
    """Migrate ``url`` and fill it; returns what was written and how long it took."""
    from cli.system import upgrade_database

    t0 = time.monotonic()
    upgrade_database(url)
    migrated = time.monotonic() - t0
    loader = Loader(url)
    gen = Generator(loader, plans=plans, assessments=assessments, seed=seed, today=today)
    t1 = time.monotonic()
    with tally_paused(loader.engine):
        gen.run()
    loader.engine.dispose()
    written = time.monotonic() - t1
    return {"seconds": round(migrated + written, 1), "migrate_seconds": round(migrated, 1),
            "rows": loader.counts, "plans": gen.plans_made,
            "caseworkers": gen.caseworker_count,
            "expected": {"late": gen.stats["late"], "due_soon_14_days": gen.stats["due_soon"]},
            "scale": {"plans": plans, "assessments_per_year": assessments, "seed": seed,
                      "today": today.isoformat()}}


# --- the benchmark ---------------------------------------------------------------------------


def statistics_page(session, on: date = TODAY, timings: dict | None = None) -> dict:
    """What the statistics page (``/statistics``, ``services.statistics.dashboard``) asks
    the database for, by the same calls, for its default period
    (``services.periods.default_period``: the last four quarters, ``on``'s so far). Everything but the HTML and the charts. When the page asks for more (or other)
    figures, add them here, so that the benchmark keeps costing what the page costs. (Each
    call is named as it was when the functions were ``api.statistics``'s: the results and the
    tests read them by these names.)"""
    from services import statistics as st
    from services.periods import default_period

    frm, to = default_period(on)
    period = dict(session=session, from_date=frm, to_date=to)
    calls: dict[str, Callable[[], object]] = {
        "every measure (api.statistics.timeliness)":
            lambda: st.timeliness(**period, as_of=on),
        "DfE figures (api.statistics.dfe)": lambda: st.dfe(**period),
        "advice by agency (api.statistics.timeliness_measure)":
            lambda: st.timeliness_measure(**period, measure="advice", as_of=on,
                                          group_by="agency"),
    }
    out: dict = {"from": frm, "to": to}
    for name, call in calls.items():
        t0 = time.perf_counter()
        out[name] = call()
        if timings is not None:
            timings.setdefault(name, []).append(time.perf_counter() - t0)
    return out


@dataclass
class Shape:
    name: str
    which: str
    filters: Callable[[random.Random], dict]
    sort: str = "due"
    days: int = 14


def shapes(values: dict) -> list[Shape]:
    """The requests a manager makes of the late and due-soon lists; the filter values vary."""
    return [
        Shape("late", "late", lambda r: {}),
        Shape("late, agency", "late", lambda r: {"agency": r.choice(values["agencies"])}),
        Shape("late, service", "late", lambda r: {"service_id": r.choice(values["services"])}),
        Shape("late, caseworker", "late",
              lambda r: {"caseworker_id": r.choice(values["caseworkers"])}),
        Shape("late, school", "late", lambda r: {"school": r.choice(values["schools"])}),
        Shape("late, stage", "late", lambda r: {"stage": r.choice(values["stages"])}),
        Shape("late, min days overdue", "late",
              lambda r: {"min_days_overdue": r.choice((7, 14, 28, 42, 60, 90))}),
        Shape("late, by days overdue", "late", lambda r: {}, sort="-days_overdue"),
        Shape("late, by caseworker", "late", lambda r: {}, sort="caseworker"),
        Shape("late, agency, by caseworker", "late",
              lambda r: {"agency": r.choice(values["agencies"])}, sort="caseworker"),
        Shape("due soon (14 days)", "due_soon", lambda r: {}),
        Shape("due soon, caseworker", "due_soon",
              lambda r: {"caseworker_id": r.choice(values["caseworkers"])}),
        Shape("due soon, agency", "due_soon", lambda r: {"agency": r.choice(values["agencies"])}),
    ]


def filter_values(engine) -> dict:
    """Real filter values from the database: caseworkers, services that owe advice, schools."""
    from sqlalchemy import select
    from sqlmodel import Session

    from store import tables as t

    with Session(engine) as s:
        caseworkers = list(s.scalars(select(t.StaffUser.id).where(
            t.StaffUser.role == "caseworker").order_by(t.StaffUser.id)))
        services = list(s.scalars(select(t.Service.id).where(
            t.Service.agency.in_(("health", "social_care", "educational_psychology",
                                  "education"))).order_by(t.Service.id)))
        schools = list(s.scalars(select(t.Service.name).where(
            t.Service.agency == "education").order_by(t.Service.name)))
    # as a manager types them: any case
    schools = [n.upper() if i % 3 == 0 else n.lower() if i % 3 == 1 else n
               for i, n in enumerate(schools)]
    return {"caseworkers": caseworkers, "services": services, "schools": schools,
            "agencies": ["health", "social_care", "education", "educational_psychology",
                         "la", "setting"],
            "stages": ["assessing", "drafting", "awaiting_meeting", "meeting_held",
                       "amending"]}


def percentiles(xs: list[float]) -> dict:
    xs = sorted(xs)
    n = len(xs)

    def q(p: float) -> float:  # nearest rank
        return xs[min(n - 1, max(0, math.ceil(p * n) - 1))]

    return {"n": n, "p50_ms": round(q(0.5) * 1000, 1), "p95_ms": round(q(0.95) * 1000, 1),
            "max_ms": round(xs[-1] * 1000, 1), "mean_ms": round(statistics.fmean(xs) * 1000, 1)}


def time_queries(url: str, *, repeats: int, stats_repeats: int, seed: int,
                 today: date = TODAY, server_pid: int | None = None) -> dict:
    """Every shape ``repeats`` times (after one untimed run each), then the statistics."""
    from sqlmodel import Session

    from store.db import make_engine
    from store.worklist import Filters, query

    engine = make_engine(url)
    values = filter_values(engine)
    rng = random.Random(seed)
    out: dict = {"shapes": {}, "statistics": {}}
    cpu0 = _cpu(server_pid)
    wall0 = time.monotonic()
    for shape in shapes(values):
        times, totals = [], []
        for i in range(repeats + 1):
            filters = Filters(**shape.filters(rng))
            if i == 1:
                before, started = _cpu(server_pid), time.monotonic()
            t0 = time.perf_counter()
            with Session(engine) as s:
                page = query(s, shape.which, today, days=shape.days, filters=filters,
                             sort=shape.sort, page_size=50)
            elapsed = time.perf_counter() - t0
            if i:  # the first run warms the cache and is not counted
                times.append(elapsed)
                totals.append(page.total)
        used = _cpu_share(before, _cpu(server_pid), time.monotonic() - started)
        out["shapes"][shape.name] = {
            **percentiles(times), "total_min": min(totals),
            "total_median": int(statistics.median(totals)), "total_max": max(totals),
            # CPU per request: this process (the application's side) and the server's
            "cpu_ms": round(1000 * (used["benchmark_cpu_s"] + used["server_cpu_s"]) / repeats, 1),
            "other_processes_cores": used["other_processes_cores"]}
        r = out["shapes"][shape.name]
        log(f"  {shape.name:30} p50 {r['p50_ms']:8.1f}  p95 {r['p95_ms']:8.1f}  "
            f"max {r['max_ms']:8.1f} ms  cpu {r['cpu_ms']:7.1f} ms  "
            f"total {r['total_median']:,}  (others: {r['other_processes_cores']} cores)")
    timings: dict[str, list[float]] = {}
    whole = []
    for i in range(stats_repeats + 1):
        if i == 1:
            before, started = _cpu(server_pid), time.monotonic()
        t0 = time.perf_counter()
        with Session(engine) as s:
            figures = statistics_page(s, today, timings if i else None)
        if i:
            whole.append(time.perf_counter() - t0)
    used = _cpu_share(before, _cpu(server_pid), time.monotonic() - started)
    dfe = figures["DfE figures (api.statistics.dfe)"]
    out["statistics"] = {"from": figures["from"].isoformat(), "to": figures["to"].isoformat(),
                         **percentiles(whole),
                         "cpu_ms": round(1000 * (used["benchmark_cpu_s"]
                                                 + used["server_cpu_s"]) / stats_repeats, 1),
                         "other_processes_cores": used["other_processes_cores"],
                         "parts": {k: percentiles(v) for k, v in timings.items()},
                         "final_plans_issued": dfe.final_plans.plans_issued_den,
                         "final_plans_within_20_weeks":
                             dfe.final_plans.plans_issued_within_20_weeks}
    r = out["statistics"]
    log(f"  {'statistics page':30} p50 {r['p50_ms']:8.1f}  p95 {r['p95_ms']:8.1f}  "
        f"max {r['max_ms']:8.1f} ms  cpu {r['cpu_ms']:7.1f} ms  ({r['from']} to {r['to']})")
    out["cpu"] = _cpu_share(cpu0, _cpu(server_pid), time.monotonic() - wall0)
    engine.dispose()
    return out


def _cpu(server_pid: int | None) -> dict:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return {"machine": machine_cpu_seconds(), "self": ru.ru_utime + ru.ru_stime,
            "server": tree_cpu_seconds(server_pid) if server_pid else 0.0}


def _cpu_share(a: dict, b: dict, wall: float) -> dict:
    used = {k: b[k] - a[k] for k in a}
    others = used["machine"] - used["self"] - used["server"]
    return {"wall_s": round(wall, 2), "benchmark_cpu_s": round(used["self"], 3),
            "server_cpu_s": round(used["server"], 3), "other_processes_cpu_s": round(others, 2),
            "other_processes_cores": round(others / wall, 2) if wall else None}


def sqlite_size(url: str) -> int:
    path = Path(url.split("///", 1)[1])
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())


def pg_size(url: str) -> int:
    from sqlalchemy import text

    from store.db import make_engine

    engine = make_engine(url)
    with engine.connect() as conn:
        size = conn.execute(text("SELECT pg_database_size(current_database())")).scalar()
    engine.dispose()
    return int(size)


def maintenance(url: str, sql: str) -> float:
    """Run ``sql`` outside a transaction (ANALYZE, VACUUM, checkpoints); returns seconds."""
    from sqlalchemy import text

    from store.db import make_engine

    engine = make_engine(url)
    t0 = time.monotonic()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for stmt in sql.split(";"):
            if stmt.strip():
                conn.execute(text(stmt))
    engine.dispose()
    return round(time.monotonic() - t0, 1)


def has_data(url: str) -> bool:
    from sqlalchemy import inspect, text

    from store.db import make_engine

    engine = make_engine(url)
    try:
        if "plan" not in inspect(engine).get_table_names():
            return False
        with engine.connect() as conn:
            return bool(conn.execute(text("SELECT count(*) FROM plan")).scalar())
    finally:
        engine.dispose()


def sqlite_database(opts: argparse.Namespace, stack: ExitStack) -> tuple[str, dict | None]:
    """The SQLite file: ``--file`` (reused if it is there; otherwise made under another name and
    renamed once complete, so that a run stopped half-way is not taken for a database), or a
    temporary one. Returns its URL and what generating it took (None: reused)."""
    if opts.file:
        path = Path(opts.file).resolve()
        if path.exists():
            return f"sqlite:///{path}", None
        partial = path.with_name(path.name + ".partial")
    else:
        folder = Path(tempfile.mkdtemp(prefix="ehc-national-"))
        stack.callback(shutil.rmtree, folder, ignore_errors=True)
        path = partial = folder / "ehc.db"
    for p in (partial, Path(f"{partial}-wal"), Path(f"{partial}-shm")):
        p.unlink(missing_ok=True)
    made = generate(f"sqlite:///{partial}", plans=opts.plans, assessments=opts.assessments,
                    seed=opts.seed)
    maintenance(f"sqlite:///{partial}", "PRAGMA wal_checkpoint(TRUNCATE)")
    if partial != path:
        partial.rename(path)
    return f"sqlite:///{path}", made


def postmaster_pid(url: str) -> int | None:
    """The PostgreSQL server's pid, from its data directory, when it runs on this machine."""
    from sqlalchemy import text

    from store.db import make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            folder = conn.execute(text("SHOW data_directory")).scalar()
        return int((Path(folder) / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError):
        return None
    finally:
        engine.dispose()


def run_database(kind: str, opts: argparse.Namespace, stack: ExitStack) -> dict:
    from cli.system import upgrade_database

    log(f"{kind}: {opts.plans:,} plans and {opts.assessments:,} assessments a year "
        f"(seed {opts.seed})")
    made: dict | None = None
    if kind == "sqlite":
        url, made = sqlite_database(opts, stack)
        server_pid = None
    else:
        if opts.pg_url:
            url = opts.pg_url
        else:
            server, _ = stack.enter_context(postgres_server())
            url = new_pg_database(server)
        server_pid = postmaster_pid(url)
        if not has_data(url):
            made = generate(url, plans=opts.plans, assessments=opts.assessments,
                            seed=opts.seed)
    result: dict = {"db": kind}
    if made is None:  # a database made before: brought up to date as a council's would be
        log(f"{kind}: reusing the database at {url}; migrating it")
        t0 = time.monotonic()
        upgrade_database(url)
        result["generation"] = {"reused": True,
                                "migrate_seconds": round(time.monotonic() - t0, 1)}
    else:
        result["generation"] = made
        log(f"{kind}: generated in {made['seconds']} s: {made['rows']}")
    runs = []
    if kind == "sqlite":
        maintenance(url, "PRAGMA wal_checkpoint(TRUNCATE)")
        result["size_bytes"] = sqlite_size(url)
        if not opts.analyzed_only:
            maintenance(url, "DROP TABLE IF EXISTS sqlite_stat1")
            log(f"{kind}: as the application leaves it (no ANALYZE)")
            runs.append({"label": "no ANALYZE (as the application leaves the file)",
                         **time_queries(url, repeats=opts.repeats,
                                        stats_repeats=opts.stats_repeats, seed=opts.seed)})
        result["analyze_s"] = maintenance(url, "ANALYZE")
        log(f"{kind}: after ANALYZE ({result['analyze_s']} s)")
        runs.append({"label": "after ANALYZE",
                     **time_queries(url, repeats=opts.repeats,
                                    stats_repeats=opts.stats_repeats, seed=opts.seed)})
    else:
        result["analyze_s"] = maintenance(url, "VACUUM ANALYZE")
        result["size_bytes"] = pg_size(url)
        log(f"{kind}: after VACUUM ANALYZE ({result['analyze_s']} s)")
        runs.append({"label": "after VACUUM ANALYZE",
                     **time_queries(url, repeats=opts.repeats, stats_repeats=opts.stats_repeats,
                                    seed=opts.seed, server_pid=server_pid)})
        result["server"] = pg_settings(url)
    result["runs"] = runs
    return result


def pg_settings(url: str) -> dict:
    from sqlalchemy import text

    from store.db import make_engine

    engine = make_engine(url)
    with engine.connect() as conn:
        out = {name: conn.execute(text(f"SHOW {name}")).scalar()
               for name in ("server_version", "shared_buffers", "work_mem",
                            "effective_cache_size", "random_page_cost", "jit")}
    engine.dispose()
    return out


def _cell(r: dict) -> str:
    return f"{r['p50_ms']} / {r['p95_ms']} / {r['max_ms']} ({r['cpu_ms']})"


def markdown(summary: dict) -> str:
    lines = [f"National scale ({summary['scale']['plans']:,} plans, "
             f"{summary['scale']['assessments_per_year']:,} assessments a year, seed "
             f"{summary['scale']['seed']}), as on {summary['scale']['today']}; "
             f"{summary['repeats']} runs per shape (ms)", ""]
    cols = []
    for db in summary["databases"]:
        for run in db["runs"]:
            cols.append((f"{db['db']}: {run['label']}", run))
    lines.append("| query | " + " | ".join(f"{name}: p50 / p95 / max (CPU per request)"
                                           for name, _ in cols) + " | items (median) |")
    lines.append("|---|" + "---:|" * len(cols) + "---:|")
    names = list(cols[0][1]["shapes"]) if cols else []
    for name in names:
        cells = [_cell(r["shapes"][name]) for _, r in cols]
        lines.append(f"| {name} | " + " | ".join(cells) +
                     f" | {cols[-1][1]['shapes'][name]['total_median']:,} |")
    if cols:
        cells = [_cell(r["statistics"]) for _, r in cols]
        st = cols[0][1]["statistics"]
        lines.append(f"| statistics page ({st['from']} to {st['to']}) | "
                     + " | ".join(cells) + " | |")
    lines.append("")
    for db in summary["databases"]:
        g = db["generation"]
        lines.append(f"- {db['db']}: generated in {g.get('seconds', 'n/a (reused)')} s, "
                     f"{db['size_bytes'] / 2**30:.2f} GiB; rows: {g.get('rows', '')}")
        for run in db["runs"]:
            lines.append(f"  - {run['label']}: other processes used "
                         f"{run['cpu']['other_processes_cores']} cores during the queries")
    return "\n".join(lines)


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench national", description=__doc__.split(
        "\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    p.add_argument("--plans", type=int, default=640_000)
    p.add_argument("--assessments", type=int, default=155_000, help="requests a year (two "
                   "years are made)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--repeats", type=int, default=50, help="timed runs per query shape")
    p.add_argument("--stats-repeats", type=int, default=10, help="timed runs of the statistics")
    p.add_argument("--file", help="the SQLite file: kept afterwards, and reused (after "
                   "migrating it) if it is there (otherwise a temporary file)")
    p.add_argument("--pg-url", help="an existing PostgreSQL database to use (reused if it "
                   "holds plans, after migrating it) instead of a new one on a throwaway server")
    p.add_argument("--analyzed-only", action="store_true",
                   help="SQLite: skip the run without ANALYZE")
    return p.parse_args(argv)


def main(argv: list[str]) -> int:
    opts = parse(argv)
    started = datetime.now(timezone.utc)
    version = source_version()
    summary: dict = {
        "benchmark": "national", "started": started.isoformat(timespec="seconds"),
        "scale": {"plans": opts.plans, "assessments_per_year": opts.assessments,
                  "seed": opts.seed, "today": TODAY.isoformat()},
        "repeats": opts.repeats, "stats_repeats": opts.stats_repeats,
        "machine": machine(), "sqlite": __import__("sqlite3").sqlite_version,
        "source": version, "databases": [],
        "load_average_at_start": os.getloadavg(),
    }
    kinds = ("sqlite", "postgres") if opts.db == "both" else (opts.db,)
    with ExitStack() as stack:
        for kind in kinds:
            summary["databases"].append(run_database(kind, opts, stack))
    summary["load_average_at_end"] = os.getloadavg()
    if source_version()["code_sha256"] != version["code_sha256"]:
        summary["warning"] = "the code changed during the run"
        log("warning: the code changed during the run")
    save_results(f"national-{opts.plans}-{opts.db}", summary, markdown(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
