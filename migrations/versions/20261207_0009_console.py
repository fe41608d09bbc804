"""The review console: instance_secrets (its cookie-signing key when REGISTRY_SECRET_KEY is unset) and an
index for a requester's own requests

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 10:30:00

"""
from alembic import op
import sqlalchemy as sa

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'instance_secrets',
        sa.Column('name', sa.Text(), nullable=False),
        sa.Column('value', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_instance_secrets')),
    )
    op.create_index('ix_transition_requests_requested_by_id', 'transition_requests', ['requested_by', 'id'],
                    unique=False)


def downgrade():
    op.drop_index('ix_transition_requests_requested_by_id', table_name='transition_requests')
    op.drop_table('instance_secrets')
