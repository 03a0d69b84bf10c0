"""deadlines know the day they were entered; escalations to the ADQA group are queued for their
daily message

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 22:30:00

Written by hand (docs/advice-chasing.md, "Entering history is not chasing";
docs/adqa-digest.md, "The daily message").
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN on both databases: the tables keep their triggers (0007, 0009).
    for table in ('milestone', 'adviceitem'):
        op.add_column(table, sa.Column('entered_on', sa.Date(), nullable=True))
    op.create_table('adqaescalation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('case_reference', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('advice_key', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('step', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('what', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
    sa.Column('service_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('contact_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('requested_on', sa.Date(), nullable=False),
    sa.Column('due', sa.Date(), nullable=False),
    sa.Column('step_on', sa.Date(), nullable=False),
    sa.Column('queued_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('for_day', sa.Date(), nullable=False),
    sa.Column('listed_on', sa.Date(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key')
    )
    with op.batch_alter_table('adqaescalation', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_adqaescalation_case_reference'), ['case_reference'], unique=False)
        batch_op.create_index(batch_op.f('ix_adqaescalation_for_day'), ['for_day'], unique=False)
        batch_op.create_index(batch_op.f('ix_adqaescalation_listed_on'), ['listed_on'], unique=False)


def downgrade() -> None:
    op.drop_table('adqaescalation')
    for table in ('milestone', 'adviceitem'):
        op.drop_column(table, 'entered_on')
