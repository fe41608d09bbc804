"""model generation counter for the serving hot path

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 18:12:00

"""
from alembic import op
import sqlalchemy as sa

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    # A constant default makes this a metadata-only change in PostgreSQL >= 11: no table rewrite.
    op.add_column('registered_models', sa.Column('generation', sa.BigInteger(), server_default='0', nullable=False))


def downgrade():
    op.drop_column('registered_models', 'generation')
