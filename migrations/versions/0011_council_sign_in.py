"""council sign-in (OpenID Connect): who each council identity is, the sign-ins under way, and
the ID token of a session started that way

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-08 01:30:00

Written by hand (services/council_sign_in.py; docs/access.md, "Signing in with the council's
accounts").
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('councilidentity',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('user_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('issuer', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('subject', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['staffuser.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('issuer', 'subject')
    )
    with op.batch_alter_table('councilidentity', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_councilidentity_user_id'), ['user_id'],
                              unique=False)

    op.create_table('councilsignin',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('nonce', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('code_verifier', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('next_url', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('expires_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('councilsignin', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_councilsignin_expires_at'), ['expires_at'],
                              unique=False)

    op.add_column('staffsession', sa.Column('id_token', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('staffsession', schema=None) as batch_op:
        batch_op.drop_column('id_token')
    op.drop_table('councilsignin')
    op.drop_table('councilidentity')
