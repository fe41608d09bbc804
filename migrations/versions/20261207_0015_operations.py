"""audit_events.correlation_id (the X-Request-Id of the request that recorded an event) and api_tokens.scope
(``all``, or ``metrics``: a token that may read /metrics and nothing else)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 13:30:00

"""
from alembic import op
import sqlalchemy as sa

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade():
    # Nullable, no default: adding it rewrites nothing, and every existing event keeps its hash (audit.py
    # hashes the field only when it is set).
    op.add_column('audit_events', sa.Column('correlation_id', sa.Text(), nullable=True))
    op.add_column('api_tokens', sa.Column('scope', sa.Text(), server_default='all', nullable=False))
    op.create_check_constraint(op.f('ck_api_tokens_scope'), 'api_tokens', "scope IN ('all', 'metrics')")


def downgrade():
    op.drop_constraint(op.f('ck_api_tokens_scope'), 'api_tokens', type_='check')
    op.drop_column('api_tokens', 'scope')
    op.drop_column('audit_events', 'correlation_id')
