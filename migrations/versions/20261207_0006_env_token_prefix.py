"""REGISTRY_ADMIN_TOKEN no longer shows its first characters as its prefix

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 06:00:00

"""
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    # The operator chose that token, so its first characters are a piece of a secret that may not be random.
    # Matched by description, as ensure_admin_token stores it: a token some user described the same way gets
    # the label too, which only changes how it is listed (erring towards hiding). The token.created events of
    # these tokens keep their old prefix: audit rows are append-only and hash-chained; non-admins never see them.
    op.execute("UPDATE api_tokens SET token_prefix = 'env' WHERE description = 'REGISTRY_ADMIN_TOKEN'")


def downgrade():
    pass  # the old prefixes came from the secret itself, which the registry never had in clear after hashing
