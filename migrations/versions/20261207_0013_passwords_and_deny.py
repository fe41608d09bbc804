"""users.password_hash (MLflow's basic-auth passwords) and DENY grants (level -1, an explicit veto)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 13:00:00

"""
from alembic import op
import sqlalchemy as sa

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade():
    # NULL: the user signs in with API tokens only (every user made before this revision).
    op.add_column('users', sa.Column('password_hash', sa.Text(), nullable=True))
    op.drop_constraint(op.f('ck_permission_grants_level_range'), 'permission_grants', type_='check')
    op.create_check_constraint(op.f('ck_permission_grants_level_range'), 'permission_grants',
                               'level = -1 OR level BETWEEN 1 AND 5')
    # A principal's vetoes are read on their own (access.denials): few rows, found without scanning grants.
    op.create_index('ix_permission_grants_denials', 'permission_grants', ['principal', 'model_id'],
                    postgresql_where=sa.text('level < 0'))


def downgrade():
    op.drop_index('ix_permission_grants_denials', table_name='permission_grants',
                  postgresql_where=sa.text('level < 0'))
    op.execute("DELETE FROM permission_grants WHERE level < 0")
    op.drop_constraint(op.f('ck_permission_grants_level_range'), 'permission_grants', type_='check')
    op.create_check_constraint(op.f('ck_permission_grants_level_range'), 'permission_grants', 'level BETWEEN 1 AND 5')
    op.drop_column('users', 'password_hash')
