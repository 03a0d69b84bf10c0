"""the late and due-soon lists at national scale: whether an item's case lists it, kept by
triggers; partial indexes that count the lists from the index alone; school names ignoring case

Revision ID: 0007
Revises: 0005
Create Date: 2026-12-01 09:10:00

Written by hand (docs/benchmarks.md, "Managers' lists and statistics at national scale").

The lists (``store.worklist``) show the open deadlines of open cases. Without this revision the
database finds them through ``ix_milestone_open_due`` / ``ix_adviceitem_open_due`` (everything
not done, by due date) and then reads each item's case to see whether it is open. But most
items not done belong to cases long closed: a step never recorded, a deadline that no longer
applies, advice a review stopped chasing at its meeting. They pile up year after year, and
counting the late list read them all, and the case of each, at every request.

``listed`` on ``milestone`` and ``adviceitem`` says whether the item's case puts it on the
lists: the case is open (and, for advice, still chasing it: an assessment, or a review before
its meeting). The database keeps it from the ``case`` row with triggers, so every writer (the
recorder, the plans import, a fix by hand) keeps it right without knowing about it:

- when a case's ``is_open``, ``stage`` or ``kind`` changes, its items follow;
- an item added (or moved to another case) takes its case's value.

The new partial indexes hold only what the lists can show (not done, applicable, not the
family's own periods, listed), keyed by ``excused`` then ``due``, so the unfiltered count is a
range of one index and the first page is read in order from it.
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0005'
branch_labels = None
depends_on = None

# as store.tables.FAMILY_RULE_IDS (the family's own periods, never late)
NOT_FAMILY = ("rule_id NOT IN ('assessment.draft_comments_due', "
              "'review.amendment_comments_due')")
ADVICE_CHASED = "(is_open AND (kind <> 'review' OR stage = 'meeting_set'))"

SQLITE_TRIGGERS = (
    # a case changes: its items follow (only those whose value changes are written)
    """CREATE TRIGGER trg_case_listed AFTER UPDATE OF is_open, stage, kind ON "case"
    WHEN OLD.is_open IS NOT NEW.is_open OR OLD.stage IS NOT NEW.stage
        OR OLD.kind IS NOT NEW.kind
    BEGIN
        UPDATE milestone SET listed = NEW.is_open
            WHERE case_reference = NEW.reference AND listed IS NOT NEW.is_open;
        UPDATE adviceitem
            SET listed = (NEW.is_open AND (NEW.kind <> 'review' OR NEW.stage = 'meeting_set'))
            WHERE case_reference = NEW.reference AND listed IS NOT
                (NEW.is_open AND (NEW.kind <> 'review' OR NEW.stage = 'meeting_set'));
    END""",
    # an item is added, or moved to another case: it takes its case's value
    *(f"""CREATE TRIGGER trg_{table}_listed_{event} AFTER {sql} ON {table}
    WHEN NEW.listed IS NOT coalesce((SELECT {value} FROM "case"
                                      WHERE reference = NEW.case_reference), 0)
    BEGIN
        UPDATE {table} SET listed = coalesce((SELECT {value} FROM "case"
                                               WHERE reference = NEW.case_reference), 0)
            WHERE id = NEW.id;
    END"""
      for table, value in (("milestone", "is_open"), ("adviceitem", ADVICE_CHASED))
      for event, sql in (("insert", "INSERT"), ("move", "UPDATE OF case_reference"))),
)
SQLITE_DROP = ("trg_case_listed", "trg_milestone_listed_insert", "trg_milestone_listed_move",
               "trg_adviceitem_listed_insert", "trg_adviceitem_listed_move")

POSTGRES_TRIGGERS = (
    """CREATE FUNCTION worklist_case_listed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE milestone SET listed = NEW.is_open
            WHERE case_reference = NEW.reference AND listed IS DISTINCT FROM NEW.is_open;
        UPDATE adviceitem
            SET listed = (NEW.is_open AND (NEW.kind <> 'review' OR NEW.stage = 'meeting_set'))
            WHERE case_reference = NEW.reference AND listed IS DISTINCT FROM
                (NEW.is_open AND (NEW.kind <> 'review' OR NEW.stage = 'meeting_set'));
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER trg_case_listed AFTER UPDATE OF is_open, stage, kind ON "case"
    FOR EACH ROW WHEN (OLD.is_open IS DISTINCT FROM NEW.is_open
        OR OLD.stage IS DISTINCT FROM NEW.stage OR OLD.kind IS DISTINCT FROM NEW.kind)
    EXECUTE FUNCTION worklist_case_listed()""",
    f"""CREATE FUNCTION worklist_item_listed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_TABLE_NAME = 'milestone' THEN
            NEW.listed := coalesce((SELECT is_open FROM "case"
                                    WHERE reference = NEW.case_reference), false);
        ELSE
            NEW.listed := coalesce((SELECT {ADVICE_CHASED} FROM "case"
                                    WHERE reference = NEW.case_reference), false);
        END IF;
        RETURN NEW;
    END $$""",
    *(f"""CREATE TRIGGER trg_{table}_listed BEFORE INSERT OR UPDATE OF case_reference
    ON {table} FOR EACH ROW EXECUTE FUNCTION worklist_item_listed()"""
      for table in ("milestone", "adviceitem")),
)


def upgrade() -> None:
    for table in ('milestone', 'adviceitem'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('listed', sa.Boolean(), nullable=False,
                                          server_default=sa.true()))

    # the items of the cases held already
    case = sa.table('case', sa.column('reference'), sa.column('is_open'), sa.column('kind'),
                    sa.column('stage'))
    milestone = sa.table('milestone', sa.column('case_reference'), sa.column('listed'))
    advice = sa.table('adviceitem', sa.column('case_reference'), sa.column('listed'))
    op.execute(sa.update(milestone).where(milestone.c.case_reference.in_(
        sa.select(case.c.reference).where(case.c.is_open == sa.false()))).values(listed=False))
    op.execute(sa.update(advice).where(advice.c.case_reference.in_(
        sa.select(case.c.reference).where(sa.or_(
            case.c.is_open == sa.false(),
            sa.and_(case.c.kind == 'review', case.c.stage != 'meeting_set'))))
    ).values(listed=False))

    op.drop_index('ix_milestone_open_due', table_name='milestone')
    op.drop_index('ix_adviceitem_open_due', table_name='adviceitem')
    op.create_index('ix_milestone_listed_due', 'milestone',
                    ['excused', 'due', 'rule_id', 'case_reference'],
                    sqlite_where=sa.text(f"done_on IS NULL AND applicable = 1 AND listed = 1 "
                                         f"AND {NOT_FAMILY}"),
                    postgresql_where=sa.text(f"done_on IS NULL AND applicable AND listed AND "
                                             f"{NOT_FAMILY}"))
    for name, columns in (
            ('ix_adviceitem_listed_due',
             ['excused', 'due', 'source', 'service_id', 'case_reference']),
            ('ix_adviceitem_listed_service', ['service_id', 'excused', 'due'])):
        op.create_index(name, 'adviceitem', columns,
                        sqlite_where=sa.text("received_on IS NULL AND reused = 0 AND "
                                             "listed = 1"),
                        postgresql_where=sa.text("received_on IS NULL AND NOT reused AND "
                                                 "listed"))
    op.create_index('ix_case_setting_name_lower', 'case', [sa.text('lower(setting_name)')])

    dialect = op.get_bind().dialect.name
    for stmt in {"sqlite": SQLITE_TRIGGERS, "postgresql": POSTGRES_TRIGGERS}.get(dialect, ()):
        op.execute(stmt)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for name in SQLITE_DROP:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    elif dialect == "postgresql":
        op.execute('DROP TRIGGER IF EXISTS trg_case_listed ON "case"')
        for table in ("milestone", "adviceitem"):
            op.execute(f"DROP TRIGGER IF EXISTS trg_{table}_listed ON {table}")
        op.execute("DROP FUNCTION IF EXISTS worklist_case_listed()")
        op.execute("DROP FUNCTION IF EXISTS worklist_item_listed()")
    op.drop_index('ix_case_setting_name_lower', table_name='case')
    op.drop_index('ix_adviceitem_listed_service', table_name='adviceitem')
    op.drop_index('ix_adviceitem_listed_due', table_name='adviceitem')
    op.drop_index('ix_milestone_listed_due', table_name='milestone')
    op.create_index('ix_milestone_open_due', 'milestone', ['due'],
                    sqlite_where=sa.text('done_on IS NULL'),
                    postgresql_where=sa.text('done_on IS NULL'))
    op.create_index('ix_adviceitem_open_due', 'adviceitem', ['due'],
                    sqlite_where=sa.text('received_on IS NULL'),
                    postgresql_where=sa.text('received_on IS NULL'))
    for table in ('adviceitem', 'milestone'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column('listed')
