"""audit chain head kept on the model row

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 20:50:00

"""
from alembic import op
import sqlalchemy as sa

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    # Constant defaults: metadata-only in PostgreSQL >= 11, then one pass to copy each chain's last event.
    op.add_column('registered_models', sa.Column('audit_seq', sa.BigInteger(), server_default='0', nullable=False))
    op.add_column('registered_models', sa.Column('audit_hash', sa.Text(), nullable=True))
    op.execute("""
        UPDATE registered_models m SET audit_seq = h.seq, audit_hash = h.hash
        FROM (SELECT DISTINCT ON (chain_id) chain_id, seq, hash FROM audit_events
              ORDER BY chain_id, seq DESC) h
        WHERE m.id = h.chain_id
    """)


def downgrade():
    op.drop_column('registered_models', 'audit_hash')
    op.drop_column('registered_models', 'audit_seq')
