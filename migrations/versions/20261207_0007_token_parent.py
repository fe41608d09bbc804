"""api_tokens.parent_id: the token a token was minted with (it never outlives it)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 06:30:00

"""
from alembic import op
import sqlalchemy as sa

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    # Nullable, no default: metadata-only. Existing tokens have no known parent and stay as they are.
    op.add_column('api_tokens', sa.Column('parent_id', sa.BigInteger(), nullable=True))
    op.create_foreign_key(op.f('fk_api_tokens_parent_id_api_tokens'), 'api_tokens', 'api_tokens',
                          ['parent_id'], ['id'], ondelete='CASCADE')
    # Revoking walks a token's descendants by parent_id; most tokens have no parent.
    op.create_index('ix_api_tokens_parent_id', 'api_tokens', ['parent_id'], unique=False,
                    postgresql_where=sa.text('parent_id IS NOT NULL'))


def downgrade():
    op.drop_index('ix_api_tokens_parent_id', table_name='api_tokens',
                  postgresql_where=sa.text('parent_id IS NOT NULL'))
    op.drop_constraint(op.f('fk_api_tokens_parent_id_api_tokens'), 'api_tokens', type_='foreignkey')
    op.drop_column('api_tokens', 'parent_id')
