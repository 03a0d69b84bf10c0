"""the lists' partial indexes in the lists' own order: due date, case, item

Revision ID: 0008
Revises: 0006
Create Date: 2026-12-01 11:20:00

Written by hand (docs/benchmarks.md, "Managers' lists and statistics at national scale").

A page of the late or due-soon list is in order of due date, then case reference, then item
key. 0007's indexes gave the due date only, so every item due on the same day as the page's
last one was read, joined and sorted first: on the due-soon list at national scale, the 4,000
items due today. Keyed (excused, due, case_reference, key), the index is the page's order, and a
page reads its 50 items and stops. The columns after the key are what the filtered counts read.
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0006'
branch_labels = None
depends_on = None

NOT_FAMILY = ("rule_id NOT IN ('assessment.draft_comments_due', "
              "'review.amendment_comments_due')")
MILESTONE_WHERE = dict(
    sqlite_where=sa.text(f"done_on IS NULL AND applicable = 1 AND listed = 1 AND {NOT_FAMILY}"),
    postgresql_where=sa.text(f"done_on IS NULL AND applicable AND listed AND {NOT_FAMILY}"))
ADVICE_WHERE = dict(
    sqlite_where=sa.text("received_on IS NULL AND reused = 0 AND listed = 1"),
    postgresql_where=sa.text("received_on IS NULL AND NOT reused AND listed"))


def upgrade() -> None:
    op.drop_index('ix_milestone_listed_due', table_name='milestone')
    op.create_index('ix_milestone_listed_due', 'milestone',
                    ['excused', 'due', 'case_reference', 'key', 'rule_id'], **MILESTONE_WHERE)
    op.drop_index('ix_adviceitem_listed_due', table_name='adviceitem')
    op.create_index('ix_adviceitem_listed_due', 'adviceitem',
                    ['excused', 'due', 'case_reference', 'key', 'source', 'service_id'],
                    **ADVICE_WHERE)


def downgrade() -> None:
    op.drop_index('ix_adviceitem_listed_due', table_name='adviceitem')
    op.create_index('ix_adviceitem_listed_due', 'adviceitem',
                    ['excused', 'due', 'source', 'service_id', 'case_reference'], **ADVICE_WHERE)
    op.drop_index('ix_milestone_listed_due', table_name='milestone')
    op.create_index('ix_milestone_listed_due', 'milestone',
                    ['excused', 'due', 'rule_id', 'case_reference'], **MILESTONE_WHERE)
