"""audit_events (model_id, version, id): one version's events without reading all of its model's

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 11:55:00

The console's version page lists the version's audit history; with only (model_id, id), a model with
100,000 versions had all of its events read and filtered (tests/perf/run_console.py: 205 ms). Building it
takes a SHARE lock on audit_events (writes wait, reads do not) for one pass over the table.
"""
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('ix_audit_events_model_id_version_id', 'audit_events', ['model_id', 'version', 'id'], unique=False)


def downgrade():
    op.drop_index('ix_audit_events_model_id_version_id', table_name='audit_events')
