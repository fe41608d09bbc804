"""registry webhooks (Databricks registry-webhooks API): storage only, delivery comes later

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 19:30:00

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('registry_webhooks',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('model_id', sa.BigInteger(), nullable=True),
    sa.Column('events', postgresql.ARRAY(sa.Text()), nullable=False),
    sa.Column('description', sa.Text(), server_default='', nullable=False),
    sa.Column('status', sa.Text(), server_default='ACTIVE', nullable=False),
    sa.Column('http_url', sa.Text(), nullable=True),
    sa.Column('http_secret', sa.Text(), nullable=True),
    sa.Column('http_authorization', sa.Text(), nullable=True),
    sa.Column('enable_ssl_verification', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('job_id', sa.Text(), nullable=True),
    sa.Column('job_access_token', sa.Text(), nullable=True),
    sa.Column('job_workspace_url', sa.Text(), nullable=True),
    sa.Column('created_by', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('ACTIVE', 'TEST_MODE', 'DISABLED')", name=op.f('ck_registry_webhooks_status')),
    sa.CheckConstraint('(http_url IS NULL) <> (job_id IS NULL)', name=op.f('ck_registry_webhooks_one_target')),
    sa.CheckConstraint('cardinality(events) > 0', name=op.f('ck_registry_webhooks_events_not_empty')),
    sa.ForeignKeyConstraint(['model_id'], ['registered_models.id'],
                            name=op.f('fk_registry_webhooks_model_id_registered_models'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_registry_webhooks'))
    )
    with op.batch_alter_table('registry_webhooks', schema=None) as batch_op:
        batch_op.create_index('ix_registry_webhooks_model_id_id', ['model_id', 'id'], unique=False)


def downgrade():
    with op.batch_alter_table('registry_webhooks', schema=None) as batch_op:
        batch_op.drop_index('ix_registry_webhooks_model_id_id')
    op.drop_table('registry_webhooks')
