"""serving history: partial indexes on audit_events for "what was served when"

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 11:30:00

The as-of answer (``GET .../stages/{stage}?as_of=``) and the stage/alias timeline replay a model's audit
trail (``registry/db/history.py``). Five partial indexes hold only the events that change what a serving
lookup returns, so a model with 100,000 versions and a long trail is answered from a few index probes:

* ``ix_audit_events_serving_history`` (model_id, occurred_at, seq) over model.created/renamed,
  version.transitioned/deleted, alias.set/deleted: the point in the chain that an instant falls on, the
  model's name then, the last transition before it (whose ``details.serving`` says what each stage
  served), and the timeline's window of changes;
* ``ix_audit_events_version_history`` (model_id, version, seq) over version.created/transitioned/deleted:
  where one version stood at a point in the chain, and when each version was created;
* ``ix_audit_events_stage_entries`` (model_id, to_stage, version, seq) and ``ix_audit_events_stage_exits``
  (model_id, from_stage, seq, version) over transitions (and deletions, for exits): when a stage's answer
  fell to a lower version, and the replay of trails recorded before transitions wrote ``details.serving``;
* ``ix_audit_events_alias_history`` (model_id, details->>'alias', seq) over alias.set/deleted.

Building them takes a SHARE lock on audit_events (writes wait, reads do not) for about one pass over it.
"""
from alembic import op
import sqlalchemy as sa

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

SERVING_CHANGES = ("action IN ('model.created', 'model.renamed', 'version.transitioned', 'version.deleted', "
                   "'alias.set', 'alias.deleted')")
VERSION_CHANGES = "action IN ('version.created', 'version.transitioned', 'version.deleted')"
TRANSITIONS = "action = 'version.transitioned'"
EXITS = "action IN ('version.transitioned', 'version.deleted')"
ALIAS_CHANGES = "action IN ('alias.set', 'alias.deleted')"


def upgrade():
    op.create_index('ix_audit_events_serving_history', 'audit_events', ['model_id', 'occurred_at', 'seq'],
                    postgresql_where=sa.text(SERVING_CHANGES))
    op.create_index('ix_audit_events_version_history', 'audit_events', ['model_id', 'version', 'seq'],
                    postgresql_where=sa.text(VERSION_CHANGES))
    op.create_index('ix_audit_events_stage_entries', 'audit_events', ['model_id', 'to_stage', 'version', 'seq'],
                    postgresql_where=sa.text(TRANSITIONS))
    op.create_index('ix_audit_events_stage_exits', 'audit_events', ['model_id', 'from_stage', 'seq', 'version'],
                    postgresql_where=sa.text(EXITS))
    op.create_index('ix_audit_events_alias_history', 'audit_events',
                    ['model_id', sa.text("(details ->> 'alias')"), 'seq'], postgresql_where=sa.text(ALIAS_CHANGES))


def downgrade():
    for name in ('ix_audit_events_alias_history', 'ix_audit_events_stage_exits', 'ix_audit_events_stage_entries',
                 'ix_audit_events_version_history', 'ix_audit_events_serving_history'):
        op.drop_index(name, table_name='audit_events')
