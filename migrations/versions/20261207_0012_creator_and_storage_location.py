"""registered_models.created_by (Databricks' user_id: who created the model) and
model_versions.storage_location (where a version's artifacts are, resolved when it was registered)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 12:00:00

"""
from alembic import op
import sqlalchemy as sa

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('registered_models', sa.Column('created_by', sa.Text(), nullable=True))
    # Every model's creation is in its audit chain (chain_id is the model's id, never reused), so existing
    # models get their real creator.
    op.execute("""
        UPDATE registered_models m SET created_by = e.actor
        FROM audit_events e
        WHERE e.chain_id = m.id AND e.action = 'model.created'
    """)
    # NULL: the source itself is the storage location (every version registered before this revision).
    op.add_column('model_versions', sa.Column('storage_location', sa.Text(), nullable=True))


def downgrade():
    op.drop_column('model_versions', 'storage_location')
    op.drop_column('registered_models', 'created_by')
