"""indexes for the timeliness statistics (store.timeliness)

Revision ID: 0006
Revises: 0007
Create Date: 2026-12-01 10:00:00

Written by hand. Planned as the revision after 0005; 0007 (the managers' lists) landed on 0005
first, so this one follows it and the history stays a single line (0005, 0007, 0006): a
database already at 0007 upgrades to this one like any other.

Each deadline measure counts, for the rules it is about, the deadlines due in a period (or, for
DfE's method, done in it) by day, from one range of one index read in its order: no row of the
table is fetched and no sort is needed. The columns after the range are what the counting
reads. A step not done counts as late unless its case ended on or before its due day; only a
step whose case the lists no longer show (``listed`` false, kept by 0007's triggers) can be
one of those, so the partial indexes ``ix_*_unlisted`` hold just the steps not done and not
listed, and only their cases are looked up (is it closed, and since when). The review indexes
serve measure f (decisions by the day made) and measure g (the few amendments decided
against, Reg 22(4)); ``ix_case_kind_request`` counts requests by the day received.
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0007'
branch_labels = None
depends_on = None

INDEXES = (
    ('ix_milestone_statistics', 'milestone',
     ['rule_id', 'due', 'excused', 'applicable', 'done_on', 'case_reference']),
    ('ix_milestone_done', 'milestone',
     ['rule_id', 'done_on', 'excused', 'applicable', 'due', 'started_on', 'case_reference']),
    ('ix_adviceitem_statistics', 'adviceitem',
     ['rule_id', 'due', 'excused', 'reused', 'source', 'received_on', 'service_id',
      'case_reference']),
    ('ix_case_kind_request', 'case', ['kind', 'request_date']),
    ('ix_review_decided_on', 'review',
     ['decided_on', 'decision', 'not_amended_on', 'case_reference']),
)
# the steps not done whose case the lists no longer show
UNLISTED = (
    ('ix_milestone_unlisted', 'milestone',
     ['rule_id', 'due', 'excused', 'applicable', 'case_reference'], 'done_on'),
    ('ix_adviceitem_unlisted', 'adviceitem',
     ['rule_id', 'due', 'excused', 'reused', 'source', 'service_id', 'case_reference'],
     'received_on'),
)


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)
    op.create_index('ix_review_not_amended_on', 'review', ['not_amended_on'],
                    sqlite_where=sa.text('not_amended_on IS NOT NULL'),
                    postgresql_where=sa.text('not_amended_on IS NOT NULL'))
    for name, table, columns, done in UNLISTED:
        op.create_index(name, table, columns,
                        sqlite_where=sa.text(f'{done} IS NULL AND listed = 0'),
                        postgresql_where=sa.text(f'{done} IS NULL AND NOT listed'))


def downgrade() -> None:
    for name, table, _, _ in reversed(UNLISTED):
        op.drop_index(name, table_name=table)
    op.drop_index('ix_review_not_amended_on', table_name='review')
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
