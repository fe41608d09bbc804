"""protected aliases (alias approval policies) and alias requests

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23 10:00:00

Approval policies govern a stage or an alias (exactly one); transition requests target a stage transition
or an alias change (exactly one). Existing rows are all stage rows, which satisfy the new checks.
"""
from alembic import op
import sqlalchemy as sa

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

# Exactly one target: both stages (a transition), or an alias and its action and no stages. (A CHECK passes
# on NULL, so ``alias_action IN (...)`` only bites when an action is given.)
REQUEST_KIND = ("(alias IS NULL) = (alias_action IS NULL) AND (alias IS NULL) = (to_stage IS NOT NULL) AND "
                "(to_stage IS NULL) = (from_stage IS NULL) AND alias_action IN ('set','delete')")


def upgrade():
    op.add_column('approval_policies', sa.Column('alias', sa.Text(), nullable=True))
    op.alter_column('approval_policies', 'stage', existing_type=sa.Text(), nullable=True)
    op.create_check_constraint(op.f('ck_approval_policies_stage_or_alias'), 'approval_policies',
                               '(stage IS NULL) <> (alias IS NULL)')
    op.create_index('uq_approval_policies_model_alias', 'approval_policies', ['model_id', 'alias'], unique=True,
                    postgresql_where=sa.text('alias IS NOT NULL'))
    op.create_index('uq_approval_policies_registry_alias', 'approval_policies', ['alias'], unique=True,
                    postgresql_where=sa.text('model_id IS NULL'))

    op.add_column('transition_requests', sa.Column('alias', sa.Text(), nullable=True))
    op.add_column('transition_requests', sa.Column('alias_action', sa.Text(), nullable=True))
    op.alter_column('transition_requests', 'from_stage', existing_type=sa.Text(), nullable=True)
    op.alter_column('transition_requests', 'to_stage', existing_type=sa.Text(), nullable=True)
    op.create_check_constraint(op.f('ck_transition_requests_kind'), 'transition_requests', REQUEST_KIND)


def downgrade():
    # Alias requests and alias policies have no place in the older schema: they go (approvals cascade).
    op.execute("DELETE FROM transition_requests WHERE alias IS NOT NULL")
    op.drop_constraint(op.f('ck_transition_requests_kind'), 'transition_requests', type_='check')
    op.alter_column('transition_requests', 'to_stage', existing_type=sa.Text(), nullable=False)
    op.alter_column('transition_requests', 'from_stage', existing_type=sa.Text(), nullable=False)
    op.drop_column('transition_requests', 'alias_action')
    op.drop_column('transition_requests', 'alias')

    op.execute("DELETE FROM approval_policies WHERE alias IS NOT NULL")
    op.drop_index('uq_approval_policies_registry_alias', table_name='approval_policies',
                  postgresql_where=sa.text('model_id IS NULL'))
    op.drop_index('uq_approval_policies_model_alias', table_name='approval_policies',
                  postgresql_where=sa.text('alias IS NOT NULL'))
    op.drop_constraint(op.f('ck_approval_policies_stage_or_alias'), 'approval_policies', type_='check')
    op.alter_column('approval_policies', 'stage', existing_type=sa.Text(), nullable=False)
    op.drop_column('approval_policies', 'alias')
