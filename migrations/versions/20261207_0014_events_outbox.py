"""Events: the outbox (``events``), webhook deliveries and their attempts, and what each webhook matches

An AFTER INSERT trigger on ``audit_events`` is the outbox's one choke point: every audited change gets its
``events`` row, and a pending delivery for every ACTIVE webhook whose topics match, in the transaction that
made the change. ``registry/events/__init__.py`` explains the design.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 13:00:00

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

# Topics of the Databricks events, as registry/events/topics.py computes them for new or changed webhooks.
_DATABRICKS_TOPICS = {
    'MODEL_VERSION_CREATED': ['version.created'],
    'MODEL_VERSION_TRANSITIONED_STAGE': ['version.transitioned'],
    'TRANSITION_REQUEST_CREATED': ['request.created:None', 'request.created:Staging', 'request.created:Production',
                                   'request.created:Archived'],
    'COMMENT_CREATED': ['comment.created'],
    'REGISTERED_MODEL_CREATED': ['model.created'],
    'MODEL_VERSION_TAG_SET': ['version.tag_set'],
    'MODEL_VERSION_TRANSITIONED_TO_STAGING': ['version.transitioned:Staging'],
    'MODEL_VERSION_TRANSITIONED_TO_PRODUCTION': ['version.transitioned:Production'],
    'MODEL_VERSION_TRANSITIONED_TO_ARCHIVED': ['version.transitioned:Archived'],
    'TRANSITION_REQUEST_TO_STAGING_CREATED': ['request.created:Staging'],
    'TRANSITION_REQUEST_TO_PRODUCTION_CREATED': ['request.created:Production'],
    'TRANSITION_REQUEST_TO_ARCHIVED_CREATED': ['request.created:Archived'],
}

_OUTBOX_FUNCTION = """
CREATE FUNCTION registry_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    fanned integer;
BEGIN
    WITH outbox AS (
        INSERT INTO events (audit_event_id, model_id)
        SELECT id, model_id FROM new_audit_events ORDER BY id
        RETURNING id, audit_event_id
    ), fanout AS (
        INSERT INTO webhook_deliveries (webhook_id, event_id, model_id, state, next_attempt_at, created_at)
        SELECT w.id, o.id, coalesce(a.model_id, 0), 'pending', a.occurred_at, a.occurred_at
        FROM outbox o
        JOIN new_audit_events a ON a.id = o.audit_event_id
        JOIN registry_webhooks w
          ON w.status = 'ACTIVE'
         AND (w.model_id IS NULL OR w.model_id = a.model_id)
         AND w.topics && ARRAY[a.action, a.action || ':' || coalesce(a.to_stage, '')]
        ORDER BY o.id, w.id
        RETURNING 1
    )
    SELECT count(*) INTO fanned FROM fanout;
    -- Wakes the dispatchers; delivered only on commit. (The feed's long-polls wake on the change
    -- notifications every audited commit sends already.)
    IF fanned > 0 THEN
        PERFORM pg_notify('registry_events', 'd');
    END IF;
    RETURN NULL;
END
$$
"""


def upgrade():
    # One table for the webhooks of the three dialects (Databricks registry webhooks, MLflow 3 webhooks, the
    # native API's Standard Webhooks); each is managed through its own API and delivered in its own format.
    op.add_column('registry_webhooks', sa.Column('dialect', sa.Text(), nullable=False, server_default='databricks'))
    op.create_check_constraint(op.f('ck_registry_webhooks_dialect'), 'registry_webhooks', "dialect IN ('databricks', 'mlflow', 'native')")
    op.add_column('registry_webhooks', sa.Column('name', sa.Text(), nullable=True))
    op.add_column('registry_webhooks', sa.Column('previous_secret', sa.Text(), nullable=True))
    op.add_column('registry_webhooks', sa.Column('previous_secret_until', sa.DateTime(timezone=True), nullable=True))
    op.add_column('registry_webhooks', sa.Column('topics', postgresql.ARRAY(sa.Text()), nullable=False,
                                                 server_default='{}'))
    for event, topics in _DATABRICKS_TOPICS.items():
        op.execute(sa.text("UPDATE registry_webhooks SET topics = topics || CAST(:t AS text[]) "
                           "WHERE :e = ANY(events)").bindparams(t=topics, e=event))
    op.create_index('ix_registry_webhooks_topics', 'registry_webhooks', ['topics'], postgresql_using='gin')

    op.create_table(
        'events',
        sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column('audit_event_id', sa.BigInteger(), nullable=False),
        sa.Column('model_id', sa.BigInteger(), nullable=True),
        sa.Column('position', sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_events')),
        sa.UniqueConstraint('audit_event_id', name=op.f('uq_events_audit_event_id')),
        sa.UniqueConstraint('position', name=op.f('uq_events_position')),
    )
    op.create_index('ix_events_unpositioned', 'events', ['id'], postgresql_where=sa.text('position IS NULL'))

    op.create_table(
        'webhook_deliveries',
        sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column('webhook_id', sa.BigInteger(), nullable=False),
        sa.Column('event_id', sa.BigInteger(), nullable=True),
        sa.Column('model_id', sa.BigInteger(), nullable=False),
        sa.Column('state', sa.Text(), nullable=False),
        sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
        sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('test_event', sa.Text(), nullable=True),
        sa.CheckConstraint("state IN ('pending', 'delivered', 'failed')", name=op.f('ck_webhook_deliveries_state')),
        sa.CheckConstraint("(event_id IS NULL) = (test_event IS NOT NULL)",
                           name=op.f('ck_webhook_deliveries_event_or_test')),
        sa.ForeignKeyConstraint(['webhook_id'], ['registry_webhooks.id'], ondelete='CASCADE',
                                name=op.f('fk_webhook_deliveries_webhook_id_registry_webhooks')),
        sa.ForeignKeyConstraint(['event_id'], ['events.id'],
                                name=op.f('fk_webhook_deliveries_event_id_events')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_deliveries')),
        sa.UniqueConstraint('webhook_id', 'event_id', name=op.f('uq_webhook_deliveries_webhook_id_event_id')),
    )
    op.create_index('ix_webhook_deliveries_due', 'webhook_deliveries', ['next_attempt_at'],
                    postgresql_where=sa.text("state = 'pending'"))
    op.create_index('ix_webhook_deliveries_queue', 'webhook_deliveries', ['webhook_id', 'model_id', 'event_id'],
                    postgresql_where=sa.text("state = 'pending'"))
    op.create_index('ix_webhook_deliveries_event_id', 'webhook_deliveries', ['event_id'])

    op.create_table(
        'webhook_attempts',
        sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column('delivery_id', sa.BigInteger(), nullable=False),
        sa.Column('attempted_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('status_code', sa.Integer(), nullable=True),
        sa.Column('latency_ms', sa.Integer(), nullable=False),
        sa.Column('response_excerpt', sa.Text(), nullable=True),
        sa.Column('error', sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(['delivery_id'], ['webhook_deliveries.id'], ondelete='CASCADE',
                                name=op.f('fk_webhook_attempts_delivery_id_webhook_deliveries')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_attempts')),
    )
    op.create_index('ix_webhook_attempts_delivery_id_id', 'webhook_attempts', ['delivery_id', 'id'])

    op.execute(_OUTBOX_FUNCTION)
    op.execute("""
        CREATE TRIGGER audit_events_outbox AFTER INSERT ON audit_events
        REFERENCING NEW TABLE AS new_audit_events
        FOR EACH STATEMENT EXECUTE FUNCTION registry_outbox()
    """)


def downgrade():
    op.execute("DROP TRIGGER audit_events_outbox ON audit_events")
    op.execute("DROP FUNCTION registry_outbox()")
    op.drop_table('webhook_attempts')
    op.drop_table('webhook_deliveries')
    op.drop_table('events')
    op.drop_index('ix_registry_webhooks_topics', table_name='registry_webhooks')
    op.drop_column('registry_webhooks', 'topics')
    op.drop_column('registry_webhooks', 'previous_secret_until')
    op.drop_column('registry_webhooks', 'previous_secret')
    op.drop_column('registry_webhooks', 'name')
    op.drop_constraint('ck_registry_webhooks_dialect', 'registry_webhooks')
    op.drop_column('registry_webhooks', 'dialect')
