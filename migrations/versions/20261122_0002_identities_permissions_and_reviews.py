"""identities, tokens, permission grants, approval policies, transition requests and comments

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 17:59:23.028170

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('users',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('is_admin', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('name', name=op.f('uq_users_name'))
    )
    op.create_table('api_tokens',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('token_hash', sa.Text(), nullable=False),
    sa.Column('token_prefix', sa.Text(), nullable=False),
    sa.Column('description', sa.Text(), server_default='', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("token_hash ~ '^[0-9a-f]{64}$'", name=op.f('ck_api_tokens_token_hash_is_sha256_hex')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_api_tokens_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_api_tokens_token_hash'))
    )
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.create_index('ix_api_tokens_user_id', ['user_id'], unique=False)

    op.create_table('approval_policies',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('model_id', sa.BigInteger(), nullable=True),
    sa.Column('stage', sa.Text(), nullable=False),
    sa.Column('required_approvals', sa.Integer(), nullable=False),
    sa.Column('creator_may_not_approve', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('updated_by', sa.Text(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("stage IN ('None', 'Staging', 'Production', 'Archived')", name=op.f('ck_approval_policies_stage')),
    sa.CheckConstraint('required_approvals BETWEEN 0 AND 10', name=op.f('ck_approval_policies_required_approvals_range')),
    sa.ForeignKeyConstraint(['model_id'], ['registered_models.id'], name=op.f('fk_approval_policies_model_id_registered_models'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_approval_policies'))
    )
    with op.batch_alter_table('approval_policies', schema=None) as batch_op:
        batch_op.create_index('uq_approval_policies_model_stage', ['model_id', 'stage'], unique=True, postgresql_where=sa.text('model_id IS NOT NULL'))
        batch_op.create_index('uq_approval_policies_registry_stage', ['stage'], unique=True, postgresql_where=sa.text('model_id IS NULL'))

    op.create_table('permission_grants',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('model_id', sa.BigInteger(), nullable=True),
    sa.Column('principal', sa.Text(), nullable=False),
    sa.Column('level', sa.Integer(), nullable=False),
    sa.Column('granted_by', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('level BETWEEN 1 AND 5', name=op.f('ck_permission_grants_level_range')),
    sa.ForeignKeyConstraint(['model_id'], ['registered_models.id'], name=op.f('fk_permission_grants_model_id_registered_models'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_permission_grants'))
    )
    with op.batch_alter_table('permission_grants', schema=None) as batch_op:
        batch_op.create_index('ix_permission_grants_principal', ['principal', 'model_id'], unique=False)
        batch_op.create_index('uq_permission_grants_model_principal', ['model_id', 'principal'], unique=True, postgresql_where=sa.text('model_id IS NOT NULL'))
        batch_op.create_index('uq_permission_grants_registry_principal', ['principal'], unique=True, postgresql_where=sa.text('model_id IS NULL'))

    op.create_table('comments',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('model_id', sa.BigInteger(), nullable=False),
    sa.Column('version_id', sa.BigInteger(), nullable=False),
    sa.Column('author', sa.Text(), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['model_id'], ['registered_models.id'], name=op.f('fk_comments_model_id_registered_models'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['version_id'], ['model_versions.id'], name=op.f('fk_comments_version_id_model_versions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_comments'))
    )
    with op.batch_alter_table('comments', schema=None) as batch_op:
        batch_op.create_index('ix_comments_version_id', ['version_id', 'id'], unique=False)

    op.create_table('transition_requests',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('model_id', sa.BigInteger(), nullable=False),
    sa.Column('version_id', sa.BigInteger(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('from_stage', sa.Text(), nullable=False),
    sa.Column('to_stage', sa.Text(), nullable=False),
    sa.Column('archive_existing_versions', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('comment', sa.Text(), server_default='', nullable=False),
    sa.Column('requested_by', sa.Text(), nullable=False),
    sa.Column('status', sa.Text(), server_default='pending', nullable=False),
    sa.Column('resolved_by', sa.Text(), nullable=True),
    sa.Column('resolution_comment', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("from_stage IN ('None', 'Staging', 'Production', 'Archived')", name=op.f('ck_transition_requests_from_stage')),
    sa.CheckConstraint("status IN ('pending', 'approved', 'rejected', 'cancelled', 'superseded')", name=op.f('ck_transition_requests_status')),
    sa.CheckConstraint("to_stage IN ('None', 'Staging', 'Production', 'Archived')", name=op.f('ck_transition_requests_to_stage')),
    sa.ForeignKeyConstraint(['model_id'], ['registered_models.id'], name=op.f('fk_transition_requests_model_id_registered_models'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['version_id'], ['model_versions.id'], name=op.f('fk_transition_requests_version_id_model_versions'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_transition_requests'))
    )
    with op.batch_alter_table('transition_requests', schema=None) as batch_op:
        batch_op.create_index('ix_transition_requests_model_id_status', ['model_id', 'status', 'id'], unique=False)
        batch_op.create_index('ix_transition_requests_pending', ['id'], unique=False, postgresql_where=sa.text("status = 'pending'"))
        batch_op.create_index('ix_transition_requests_version_id_status', ['version_id', 'status'], unique=False)

    op.create_table('transition_approvals',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('request_id', sa.BigInteger(), nullable=False),
    sa.Column('approver', sa.Text(), nullable=False),
    sa.Column('comment', sa.Text(), server_default='', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['request_id'], ['transition_requests.id'], name=op.f('fk_transition_approvals_request_id_transition_requests'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_transition_approvals')),
    sa.UniqueConstraint('request_id', 'approver', name=op.f('uq_transition_approvals_request_id_approver'))
    )
    # Registry-wide default: every authenticated user may read every model. Admins change it with
    # PUT /api/v1/permissions; per-model grants add to it.
    op.execute(
        "INSERT INTO permission_grants (model_id, principal, level, granted_by, created_at) "
        "VALUES (NULL, '*', 1, 'migration', now())"
    )


def downgrade():
    op.drop_table('transition_approvals')
    with op.batch_alter_table('transition_requests', schema=None) as batch_op:
        batch_op.drop_index('ix_transition_requests_version_id_status')
        batch_op.drop_index('ix_transition_requests_pending', postgresql_where=sa.text("status = 'pending'"))
        batch_op.drop_index('ix_transition_requests_model_id_status')

    op.drop_table('transition_requests')
    with op.batch_alter_table('comments', schema=None) as batch_op:
        batch_op.drop_index('ix_comments_version_id')

    op.drop_table('comments')
    with op.batch_alter_table('permission_grants', schema=None) as batch_op:
        batch_op.drop_index('uq_permission_grants_registry_principal', postgresql_where=sa.text('model_id IS NULL'))
        batch_op.drop_index('uq_permission_grants_model_principal', postgresql_where=sa.text('model_id IS NOT NULL'))
        batch_op.drop_index('ix_permission_grants_principal')

    op.drop_table('permission_grants')
    with op.batch_alter_table('approval_policies', schema=None) as batch_op:
        batch_op.drop_index('uq_approval_policies_registry_stage', postgresql_where=sa.text('model_id IS NULL'))
        batch_op.drop_index('uq_approval_policies_model_stage', postgresql_where=sa.text('model_id IS NOT NULL'))

    op.drop_table('approval_policies')
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_index('ix_api_tokens_user_id')

    op.drop_table('api_tokens')
    op.drop_table('users')
