"""initial schema: models, versions, tags, aliases and the append-only audit trail

Revision ID: 0001
Revises:
Create Date: 2026-11-22 17:55:00.249745

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = '0001'
down_revision = None
branch_labels = None
depends_on = None

# The audit trail is append-only at the database level: no code path, however buggy, can rewrite history.
# Only someone who can disable triggers (the table owner or a superuser) can tamper, and
# `registry audit verify` detects that through the hash chain.
APPEND_ONLY_FUNCTION = """
CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$
"""


def upgrade():
    op.create_table('audit_events',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('chain_id', sa.BigInteger(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.Text(), nullable=False),
    sa.Column('action', sa.Text(), nullable=False),
    sa.Column('model_id', sa.BigInteger(), nullable=True),
    sa.Column('model_name', sa.Text(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=True),
    sa.Column('run_id', sa.Text(), nullable=True),
    sa.Column('from_stage', sa.Text(), nullable=True),
    sa.Column('to_stage', sa.Text(), nullable=True),
    sa.Column('request_id', sa.BigInteger(), nullable=True),
    sa.Column('details', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('prev_hash', sa.Text(), nullable=True),
    sa.Column('hash', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_events')),
    sa.UniqueConstraint('chain_id', 'seq', name=op.f('uq_audit_events_chain_id_seq'))
    )
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.create_index('ix_audit_events_action_id', ['action', 'id'], unique=False)
        batch_op.create_index('ix_audit_events_actor_id', ['actor', 'id'], unique=False)
        batch_op.create_index('ix_audit_events_model_id_id', ['model_id', 'id'], unique=False)
        batch_op.create_index('ix_audit_events_model_name_id', ['model_name', 'id'], unique=False)
        batch_op.create_index('ix_audit_events_occurred_at', ['occurred_at'], unique=False)
        batch_op.create_index('ix_audit_events_run_id_id', ['run_id', 'id'], unique=False, postgresql_where=sa.text('run_id IS NOT NULL'))

    op.execute(APPEND_ONLY_FUNCTION)
    op.execute(
        "CREATE TRIGGER audit_events_no_update_delete BEFORE UPDATE OR DELETE ON audit_events "
        "FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()"
    )
    op.execute(
        "CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()"
    )

    op.create_table('registered_models',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('description', sa.Text(), server_default='', nullable=False),
    sa.Column('last_version', sa.Integer(), server_default='0', nullable=False),
    sa.Column('revision', sa.Integer(), server_default='1', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_registered_models')),
    sa.UniqueConstraint('name', name=op.f('uq_registered_models_name'))
    )
    with op.batch_alter_table('registered_models', schema=None) as batch_op:
        batch_op.create_index('ix_registered_models_created_at_id', ['created_at', 'id'], unique=False)
        batch_op.create_index('ix_registered_models_name_pattern', ['name'], unique=False, postgresql_ops={'name': 'text_pattern_ops'})
        batch_op.create_index('ix_registered_models_updated_at_id', ['updated_at', 'id'], unique=False)

    op.create_table('model_versions',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('model_id', sa.BigInteger(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('source', sa.Text(), nullable=False),
    sa.Column('run_id', sa.Text(), nullable=True),
    sa.Column('run_link', sa.Text(), nullable=True),
    sa.Column('description', sa.Text(), server_default='', nullable=False),
    sa.Column('status', sa.Text(), server_default='READY', nullable=False),
    sa.Column('stage', sa.Text(), server_default='None', nullable=False),
    sa.Column('created_by', sa.Text(), nullable=False),
    sa.Column('revision', sa.Integer(), server_default='1', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("stage IN ('None', 'Staging', 'Production', 'Archived')", name=op.f('ck_model_versions_stage')),
    sa.CheckConstraint('version > 0', name=op.f('ck_model_versions_version_positive')),
    sa.ForeignKeyConstraint(['model_id'], ['registered_models.id'], name=op.f('fk_model_versions_model_id_registered_models'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_model_versions')),
    sa.UniqueConstraint('model_id', 'version', name=op.f('uq_model_versions_model_id_version'))
    )
    with op.batch_alter_table('model_versions', schema=None) as batch_op:
        batch_op.create_index('ix_model_versions_model_id_stage_version', ['model_id', 'stage', 'version'], unique=False)
        batch_op.create_index('ix_model_versions_run_id', ['run_id'], unique=False, postgresql_where=sa.text('run_id IS NOT NULL'))

    op.create_table('registered_model_tags',
    sa.Column('model_id', sa.BigInteger(), nullable=False),
    sa.Column('key', sa.Text(), nullable=False),
    sa.Column('value', sa.Text(), server_default='', nullable=False),
    sa.ForeignKeyConstraint(['model_id'], ['registered_models.id'], name=op.f('fk_registered_model_tags_model_id_registered_models'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('model_id', 'key', name=op.f('pk_registered_model_tags'))
    )
    with op.batch_alter_table('registered_model_tags', schema=None) as batch_op:
        batch_op.create_index('ix_registered_model_tags_key_value', ['key', 'value'], unique=False)

    op.create_table('model_aliases',
    sa.Column('model_id', sa.BigInteger(), nullable=False),
    sa.Column('alias', sa.Text(), nullable=False),
    sa.Column('version_id', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['model_id'], ['registered_models.id'], name=op.f('fk_model_aliases_model_id_registered_models'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['version_id'], ['model_versions.id'], name=op.f('fk_model_aliases_version_id_model_versions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('model_id', 'alias', name=op.f('pk_model_aliases'))
    )
    with op.batch_alter_table('model_aliases', schema=None) as batch_op:
        batch_op.create_index('ix_model_aliases_version_id', ['version_id'], unique=False)

    op.create_table('model_version_tags',
    sa.Column('version_id', sa.BigInteger(), nullable=False),
    sa.Column('key', sa.Text(), nullable=False),
    sa.Column('value', sa.Text(), server_default='', nullable=False),
    sa.ForeignKeyConstraint(['version_id'], ['model_versions.id'], name=op.f('fk_model_version_tags_version_id_model_versions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('version_id', 'key', name=op.f('pk_model_version_tags'))
    )
    with op.batch_alter_table('model_version_tags', schema=None) as batch_op:
        batch_op.create_index('ix_model_version_tags_key_value', ['key', 'value'], unique=False)



def downgrade():
    with op.batch_alter_table('model_version_tags', schema=None) as batch_op:
        batch_op.drop_index('ix_model_version_tags_key_value')

    op.drop_table('model_version_tags')
    with op.batch_alter_table('model_aliases', schema=None) as batch_op:
        batch_op.drop_index('ix_model_aliases_version_id')

    op.drop_table('model_aliases')
    with op.batch_alter_table('registered_model_tags', schema=None) as batch_op:
        batch_op.drop_index('ix_registered_model_tags_key_value')

    op.drop_table('registered_model_tags')
    with op.batch_alter_table('model_versions', schema=None) as batch_op:
        batch_op.drop_index('ix_model_versions_run_id', postgresql_where=sa.text('run_id IS NOT NULL'))
        batch_op.drop_index('ix_model_versions_model_id_stage_version')

    op.drop_table('model_versions')
    with op.batch_alter_table('registered_models', schema=None) as batch_op:
        batch_op.drop_index('ix_registered_models_updated_at_id')
        batch_op.drop_index('ix_registered_models_name_pattern', postgresql_ops={'name': 'text_pattern_ops'})
        batch_op.drop_index('ix_registered_models_created_at_id')

    op.drop_table('registered_models')
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_events_run_id_id', postgresql_where=sa.text('run_id IS NOT NULL'))
        batch_op.drop_index('ix_audit_events_occurred_at')
        batch_op.drop_index('ix_audit_events_model_name_id')
        batch_op.drop_index('ix_audit_events_model_id_id')
        batch_op.drop_index('ix_audit_events_actor_id')
        batch_op.drop_index('ix_audit_events_action_id')

    op.execute("DROP TRIGGER audit_events_no_truncate ON audit_events")
    op.execute("DROP TRIGGER audit_events_no_update_delete ON audit_events")
    op.execute("DROP FUNCTION audit_events_append_only()")
    op.drop_table('audit_events')
