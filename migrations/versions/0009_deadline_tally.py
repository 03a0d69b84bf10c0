"""the statistics at national scale: deadlines counted by rule, due day, exception and agency in
a tally the database keeps as the milestones and advice change

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 12:30:00

Written by hand (docs/statistics.md, "At national scale").

Every deadline measure counts, for its rules, the deadlines due in a period by day: how many,
how many done, how many done on or before the due day (``store.timeliness.deadline_counts``),
and of those not done how many belong to a case that ended on or before the day
(``ended_counts``). From the items that is a range of 0006's indexes and a look-up of each
unlisted step's case, but a year of national figures is about five million index entries to
read at every request of the statistics page. ``deadline_day`` holds those four counts already
added up, one row per

    (item "milestone" or "advice", rule_id, due, excused, agency)

so the page reads one row per rule, day and exception (and agency): a few thousand.

**What a row counts** is what ``store.timeliness._deadline_rows`` counts from the items, and
only that: milestones with ``applicable`` true; advice with ``reused`` false whose source is
not the family's own views (``store.timeliness.NOT_ADVICE``); an item with no due day is not
counted. ``agency`` is, for advice, ``store.timeliness.agency_of``: the agency of the service
asked, else the agency its source is counted under (``domain.agencies.AGENCY_FOR_SOURCE``,
written out in ``by_source`` below), else "other"; for milestones it is ''. ``n`` is the
number of items, ``done`` those with a done (received) date, ``on_time`` those whose date is
on or before the due day, ``ended`` those not done whose case is closed (``is_open`` false)
with no closing day or one on or before the due day (``ended_counts`` also asks ``listed``
false, which 0007's triggers make true of every item of a closed case).

**Why it stays exact.** The counts are sums over the items of each item's contribution (1; 1 if
done; 1 if on time; 1 if ended) to the row of its key. A contribution depends on the item's
own columns (``WATCHED``), its case's ``is_open`` and ``closed_on``, and for advice its
service's agency. Every change to any of those runs a trigger, in the transaction that makes
the change and after it, that subtracts the contribution as it was and adds it as it is (an
insert has no old row; a delete no new one), from the same expressions as the backfill:

- a milestone or piece of advice inserted, deleted, or updated in a watched column;
- a case whose ``is_open`` or ``closed_on`` changes: its items not done move in or out of
  ``ended`` (a case cannot be added with items, or removed with them: the foreign keys);
- a service whose agency (or id) changes, or a service added or removed that advice names:
  its advice moves from the agency it was counted under to the one it is now.

So after every committed transaction each row equals the ``GROUP BY`` of the items that the
backfill (``BACKFILL``) runs: tests/test_deadline_tally.py checks it after random writes on
SQLite and PostgreSQL, against the items counted by ``store.timeliness``'s own definitions.
Rows whose counts fall to 0 are kept (``n = 0``) and the statistics skip them.

The changes are applied as one ``INSERT ... SELECT ... GROUP BY ... ON CONFLICT DO UPDATE`` per
item written, its rows in key order: an update that does not change what is counted touches no
row; one that changes only the done date touches one. On PostgreSQL each trigger first takes
a transaction-level advisory lock (``TALLY_LOCK``), so transactions that change deadlines write
the tally one at a time: without it, concurrent saves of cases sharing due days deadlocked
often (docs/statistics.md, "At national scale"). It also means a trigger that waited sees, in
its next statement (READ COMMITTED), what the transaction before it committed: a case closed or
a service's agency changed at the same moment as its items are written is counted right.
What still comes from the items: the breakdowns by setting, service and transfer.

Two indexes for the rest of the page: DfE's decisions count the refused cases closed in the
period from ``ix_case_stage_closed_on`` alone, and measure g's reviews not amended after all
come with their case from ``ix_review_not_amended_on`` (now with ``case_reference``), instead
of a read of each row.
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

KEY = "item, rule_id, due, excused, agency"
COUNTS = "n, done, on_time, ended"
SUMS = "sum(n), sum(done), sum(on_time), sum(ended)"
UPSERT = (f"ON CONFLICT ({KEY}) DO UPDATE SET n = deadline_day.n + excluded.n, "
          "done = deadline_day.done + excluded.done, "
          "on_time = deadline_day.on_time + excluded.on_time, "
          "ended = deadline_day.ended + excluded.ended")


def by_source(source: str) -> str:
    """The agency advice from ``source`` is counted under when its service does not say: as
    domain.agencies.AGENCY_FOR_SOURCE (the sources whose agency is None there, and any
    other, are "other"), which is what store.timeliness.agency_of reads."""
    return (f"CASE {source} WHEN 'education' THEN 'education' WHEN 'health' THEN 'health' "
            "WHEN 'educational_psychologist' THEN 'educational_psychology' "
            "WHEN 'social_care' THEN 'social_care' ELSE 'other' END")


def agency(row: str) -> str:
    """store.timeliness.agency_of for the advice item ``row``."""
    return (f"coalesce((SELECT agency FROM service WHERE id = {row}.service_id), "
            f"{by_source(row + '.source')})")


# What _deadline_rows counts (as store.timeliness: applicable; not reused and not
# NOT_ADVICE = the family's views), with a due day. Written so that the same text is true or
# false on SQLite (0/1) and PostgreSQL (boolean).
def counted(table: str, row: str) -> str:
    if table == "milestone":
        return f"{row}.applicable AND {row}.due IS NOT NULL"
    return f"NOT {row}.reused AND {row}.source NOT IN ('family') AND {row}.due IS NOT NULL"


DONE = {"milestone": "done_on", "adviceitem": "received_on"}
ITEM = {"milestone": "milestone", "adviceitem": "advice"}


def ended_by_case(table: str, row: str) -> str:
    """1 when ``row`` is not done and its case has ended (closed, on or before its due day),
    as store.timeliness.ended_counts counts it, looking its case up."""
    done = f"{row}.{DONE[table]}"
    return (f"CASE WHEN {done} IS NULL AND EXISTS (SELECT 1 FROM \"case\" AS c "
            f"WHERE c.reference = {row}.case_reference AND NOT c.is_open "
            f"AND coalesce(c.closed_on, {row}.due) <= {row}.due) THEN 1 ELSE 0 END")


def ended_if(table: str, row: str, case: str) -> str:
    """The same, for the items of the case row ``case`` (a trigger's OLD or NEW)."""
    done = f"{row}.{DONE[table]}"
    return (f"CASE WHEN {done} IS NULL AND NOT {case}.is_open "
            f"AND coalesce({case}.closed_on, {row}.due) <= {row}.due THEN 1 ELSE 0 END")


def contribution(table: str, row: str, sign: str, agency_sql: str | None = None,
                 where: str | None = None, ended_sql: str | None = None) -> str:
    """A SELECT of the row ``row`` of ``table`` makes to its tally (times ``sign``): from the
    trigger's OLD or NEW (no FROM), or from the table itself (``row`` = the table)."""
    done = f"{row}.{DONE[table]}"
    agency_sql = "''" if table == "milestone" else (agency_sql or agency(row))
    return (f"SELECT '{ITEM[table]}' AS item, {row}.rule_id AS rule_id, {row}.due AS due, "
            f"{row}.excused AS excused, {agency_sql} AS agency, {sign} AS n, "
            f"{sign} * CASE WHEN {done} IS NOT NULL THEN 1 ELSE 0 END AS done, "
            f"{sign} * CASE WHEN {done} <= {row}.due THEN 1 ELSE 0 END AS on_time, "
            f"{sign} * {ended_sql or ended_by_case(table, row)} AS ended"
            + (f" FROM {table} WHERE {where} AND {counted(table, row)}" if where else
               f" WHERE {counted(table, row)}"))


def apply(*parts: str) -> str:
    """Add the contributions ``parts`` to the tally: one upsert, summed by key (PostgreSQL
    cannot update one row twice in a statement), in key order, skipping keys whose change
    is nothing."""
    return (f"INSERT INTO deadline_day ({KEY}, {COUNTS}) "
            f"SELECT {KEY}, {SUMS} FROM ("
            + " UNION ALL ".join(parts) +
            f") AS d WHERE true GROUP BY {KEY} "
            "HAVING sum(n) <> 0 OR sum(done) <> 0 OR sum(on_time) <> 0 OR sum(ended) <> 0 "
            f"ORDER BY {KEY} {UPSERT}")


# The columns an item's key or counts depend on.
WATCHED = {"milestone": ("rule_id", "due", "excused", "done_on", "applicable",
                         "case_reference"),
           "adviceitem": ("rule_id", "due", "excused", "received_on", "reused", "source",
                          "service_id", "case_reference")}


def item_statements(table: str) -> dict[str, str]:
    return {"INSERT": apply(contribution(table, "NEW", "1")),
            "DELETE": apply(contribution(table, "OLD", "-1")),
            "UPDATE": apply(contribution(table, "OLD", "-1"), contribution(table, "NEW", "1"))}


def service_statement(old_id: str, old_agency: str, new_id: str, new_agency: str) -> str:
    """A service's advice moves from the agency it was counted under before the change (the
    old row's, for the advice naming its old id; its source's, for advice naming its new id,
    which no service had) to the one after it."""
    where = f"adviceitem.service_id IN ({old_id}, {new_id})"
    src = by_source("adviceitem.source")
    before = (f"CASE WHEN adviceitem.service_id = {old_id} THEN {old_agency} ELSE {src} END")
    after = (f"CASE WHEN adviceitem.service_id = {new_id} THEN {new_agency} ELSE {src} END")
    return apply(contribution("adviceitem", "adviceitem", "-1", before, where),
                 contribution("adviceitem", "adviceitem", "1", after, where))


def case_statement(table: str) -> str:
    """A case closes, reopens or changes the day it closed: its items not done move in or
    out of ``ended`` (the other counts do not change)."""
    where = f"{table}.case_reference = NEW.reference"
    return apply(contribution(table, table, "-1", where=where,
                              ended_sql=ended_if(table, table, "OLD")),
                 contribution(table, table, "1", where=where,
                              ended_sql=ended_if(table, table, "NEW")))


CASE_CHANGES = ("is_open", "closed_on")

SERVICE = {"INSERT": service_statement("NULL", "NULL", "NEW.id", "NEW.agency"),
           "DELETE": service_statement("OLD.id", "OLD.agency", "NULL", "NULL"),
           "UPDATE": service_statement("OLD.id", "OLD.agency", "NEW.id", "NEW.agency")}


def _sqlite_triggers() -> list[str]:
    out = []
    for table in ("milestone", "adviceitem"):
        stmts = item_statements(table)
        changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in WATCHED[table])
        out += [
            f"CREATE TRIGGER trg_{table}_tally_insert AFTER INSERT ON {table} "
            f"BEGIN {stmts['INSERT']}; END",
            f"CREATE TRIGGER trg_{table}_tally_delete AFTER DELETE ON {table} "
            f"BEGIN {stmts['DELETE']}; END",
            f"CREATE TRIGGER trg_{table}_tally_update AFTER UPDATE OF "
            f"{', '.join(WATCHED[table])} ON {table} WHEN {changed} "
            f"BEGIN {stmts['UPDATE']}; END",
        ]
    out.append(
        f"CREATE TRIGGER trg_case_tally AFTER UPDATE OF {', '.join(CASE_CHANGES)} ON \"case\" "
        f"WHEN " + " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in CASE_CHANGES)
        + " BEGIN " + "; ".join(case_statement(t) for t in ("milestone", "adviceitem"))
        + "; END")
    out += [
        f"CREATE TRIGGER trg_service_tally_insert AFTER INSERT ON service "
        f"BEGIN {SERVICE['INSERT']}; END",
        f"CREATE TRIGGER trg_service_tally_delete AFTER DELETE ON service "
        f"BEGIN {SERVICE['DELETE']}; END",
        f"CREATE TRIGGER trg_service_tally_update AFTER UPDATE OF id, agency ON service "
        f"WHEN OLD.id IS NOT NEW.id OR OLD.agency IS NOT NEW.agency "
        f"BEGIN {SERVICE['UPDATE']}; END",
    ]
    return out


SQLITE_DROP = tuple(f"trg_{table}_tally_{op_}" for table in ("milestone", "adviceitem",
                                                             "service")
                    for op_ in ("insert", "delete", "update")) + ("trg_case_tally",)


# PostgreSQL: one writer of the tally at a time, until it commits (a transaction-level advisory
# lock taken before any tally row is). Without it, concurrent saves of cases sharing due days
# lock the same tally rows in different orders and deadlock often (docs/statistics.md).
TALLY_LOCK = "PERFORM pg_advisory_xact_lock(8245091673)"


def _pg_function(name: str, stmts: dict[str, str]) -> str:
    return (f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
            "BEGIN\n"
            f"    {TALLY_LOCK};\n"
            f"    IF TG_OP = 'INSERT' THEN {stmts['INSERT']};\n"
            f"    ELSIF TG_OP = 'DELETE' THEN {stmts['DELETE']};\n"
            f"    ELSE {stmts['UPDATE']};\n"
            "    END IF;\n"
            "    RETURN NULL;\n"
            "END $$")


def _pg_triggers() -> list[str]:
    out = []
    for table in ("milestone", "adviceitem"):
        out += [_pg_function(f"deadline_tally_{table}", item_statements(table)),
                f"CREATE TRIGGER trg_{table}_tally AFTER INSERT OR DELETE OR UPDATE OF "
                f"{', '.join(WATCHED[table])} ON {table} FOR EACH ROW "
                f"EXECUTE FUNCTION deadline_tally_{table}()"]
    out += [_pg_function("deadline_tally_service", SERVICE),
            "CREATE TRIGGER trg_service_tally AFTER INSERT OR DELETE OR UPDATE OF id, agency "
            "ON service FOR EACH ROW EXECUTE FUNCTION deadline_tally_service()"]
    out += ["CREATE FUNCTION deadline_tally_case() RETURNS trigger LANGUAGE plpgsql AS $$\n"
            f"BEGIN\n    {TALLY_LOCK};\n"
            + "".join(f"    {case_statement(t)};\n" for t in ("milestone", "adviceitem"))
            + "    RETURN NULL;\nEND $$",
            f"CREATE TRIGGER trg_case_tally AFTER UPDATE OF {', '.join(CASE_CHANGES)} "
            "ON \"case\" FOR EACH ROW WHEN ("
            + " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in CASE_CHANGES)
            + ") EXECUTE FUNCTION deadline_tally_case()"]
    return out


def _backfill(table: str) -> str:
    c = contribution(table, table, "1", where="true")
    return f"SELECT {KEY}, {SUMS} FROM ({c}) AS d GROUP BY {KEY}"


# Every item there is, counted: the tally the triggers keep from here on.
BACKFILL = (f"INSERT INTO deadline_day ({KEY}, {COUNTS}) "
            f"{_backfill('milestone')} UNION ALL {_backfill('adviceitem')}")


def create_triggers(dialect: str) -> list[str]:
    return {"sqlite": _sqlite_triggers, "postgresql": _pg_triggers}[dialect]()


def drop_triggers(dialect: str) -> list[str]:
    if dialect == "sqlite":
        return [f"DROP TRIGGER IF EXISTS {name}" for name in SQLITE_DROP]
    tables = ("milestone", "adviceitem", "service", "case")
    return ([f'DROP TRIGGER IF EXISTS trg_{table}_tally ON "{table}"' for table in tables]
            + [f"DROP FUNCTION IF EXISTS deadline_tally_{table}()" for table in tables])


NOT_AMENDED = dict(sqlite_where=sa.text('not_amended_on IS NOT NULL'),
                   postgresql_where=sa.text('not_amended_on IS NOT NULL'))


def upgrade() -> None:
    op.create_table(
        'deadline_day',
        sa.Column('item', sa.String(length=10), nullable=False),
        sa.Column('rule_id', sa.String(length=60), nullable=False),
        sa.Column('due', sa.Date(), nullable=False),
        sa.Column('excused', sa.Boolean(), nullable=False),
        sa.Column('agency', sa.String(length=30), nullable=False),
        sa.Column('n', sa.Integer(), nullable=False),
        sa.Column('done', sa.Integer(), nullable=False),
        sa.Column('on_time', sa.Integer(), nullable=False),
        sa.Column('ended', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('item', 'rule_id', 'due', 'excused', 'agency'),
        sqlite_with_rowid=False,
    )
    # DfE's decisions: the refused cases closed in the period, from the index alone (not
    # each refused case's row: at national scale, tens of thousands of random reads)
    op.create_index('ix_case_stage_closed_on', 'case', ['stage', 'closed_on', 'reference'])
    # measure g: the reviews that decided not to amend after all, now with their case
    op.drop_index('ix_review_not_amended_on', table_name='review')
    op.create_index('ix_review_not_amended_on', 'review', ['not_amended_on', 'case_reference'],
                    **NOT_AMENDED)
    dialect = op.get_bind().dialect.name
    op.execute(BACKFILL)
    for stmt in create_triggers(dialect):
        op.execute(stmt)


def downgrade() -> None:
    for stmt in drop_triggers(op.get_bind().dialect.name):
        op.execute(stmt)
    op.drop_index('ix_review_not_amended_on', table_name='review')
    op.create_index('ix_review_not_amended_on', 'review', ['not_amended_on'], **NOT_AMENDED)
    op.drop_index('ix_case_stage_closed_on', table_name='case')
    op.drop_table('deadline_day')
