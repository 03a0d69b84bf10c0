"""who viewed or exported a child's record (the access log, append-only); the day the
retention rule anonymised a child

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-08 01:30:00

Written by hand (docs/data-protection.md).
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

REFUSAL = "access_log is append-only: its rows are never changed or deleted"
# Only the rows about a child the retention rule has already anonymised may go (and only
# ``services.retention`` deletes them); nothing may change a row.
RETAINED = ("EXISTS (SELECT 1 FROM child WHERE child.id = OLD.child_id "
            "AND child.anonymised_on IS NOT NULL)")

SQLITE_TRIGGERS = (
    f"""CREATE TRIGGER trg_access_log_no_update BEFORE UPDATE ON access_log
    BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END""",
    f"""CREATE TRIGGER trg_access_log_no_delete BEFORE DELETE ON access_log
    WHEN NOT {RETAINED}
    BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END""",
)
POSTGRES_TRIGGERS = (
    f"""CREATE FUNCTION access_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP = 'DELETE' AND {RETAINED} THEN
        RETURN OLD;
      END IF;
      RAISE EXCEPTION '{REFUSAL}';
    END $$""",
    """CREATE TRIGGER trg_access_log_append_only BEFORE UPDATE OR DELETE ON access_log
    FOR EACH ROW EXECUTE FUNCTION access_log_append_only()""",
    f"""CREATE FUNCTION access_log_no_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION '{REFUSAL}'; END $$""",
    """CREATE TRIGGER trg_access_log_no_truncate BEFORE TRUNCATE ON access_log
    FOR EACH STATEMENT EXECUTE FUNCTION access_log_no_truncate()""",
)


def upgrade() -> None:
    op.add_column('child', sa.Column('anonymised_on', sa.Date(), nullable=True))
    op.create_table('access_log',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('staff_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('who', sqlmodel.sql.sqltypes.AutoString(length=400), nullable=False),
    sa.Column('via', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
    sa.Column('child_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('reference', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.Column('what', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('route', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.ForeignKeyConstraint(['child_id'], ['child.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('access_log', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_access_log_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_access_log_staff_id'), ['staff_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_access_log_child_id'), ['child_id'], unique=False)
    dialect = op.get_bind().dialect.name
    for stmt in {"sqlite": SQLITE_TRIGGERS, "postgresql": POSTGRES_TRIGGERS}.get(dialect, ()):
        op.execute(stmt)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS trg_access_log_append_only ON access_log")
        op.execute("DROP TRIGGER IF EXISTS trg_access_log_no_truncate ON access_log")
        op.execute("DROP FUNCTION IF EXISTS access_log_append_only()")
        op.execute("DROP FUNCTION IF EXISTS access_log_no_truncate()")
    op.drop_table('access_log')
    with op.batch_alter_table('child', schema=None) as batch_op:
        batch_op.drop_column('anonymised_on')
