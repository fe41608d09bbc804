"""The audit trail's rows (append-only: a trigger refuses UPDATE, DELETE and TRUNCATE)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    DateTime,
    Index,
    Integer,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db

# The actions the serving-history indexes cover, as SQL lists (also used verbatim by db/history.py's queries:
# a partial index serves a query only when the planner can prove the query's WHERE implies the index's).
SERVING_CHANGES = ("'model.created', 'model.renamed', 'version.transitioned', 'version.deleted', "
                   "'alias.set', 'alias.deleted'")
VERSION_CHANGES = "'version.created', 'version.transitioned', 'version.deleted'"


class AuditEvent(db.Model):
    """Append-only (a trigger refuses UPDATE, DELETE and TRUNCATE) and hash-chained per model.

    No foreign keys: events outlive the models they describe. ``chain_id`` is the model's id, which a
    sequence never reuses, so a model's chain survives renames and deletion.
    """

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    chain_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    seq: Mapped[int] = mapped_column(Integer, nullable=False)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    actor: Mapped[str] = mapped_column(Text, nullable=False)
    action: Mapped[str] = mapped_column(Text, nullable=False)
    model_id: Mapped[int | None] = mapped_column(BigInteger)
    model_name: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int | None] = mapped_column(Integer)
    run_id: Mapped[str | None] = mapped_column(Text)
    from_stage: Mapped[str | None] = mapped_column(Text)
    to_stage: Mapped[str | None] = mapped_column(Text)
    request_id: Mapped[int | None] = mapped_column(BigInteger)
    details: Mapped[dict] = mapped_column(JSONB, nullable=False, server_default=text("'{}'::jsonb"))
    # The X-Request-Id of the HTTP request that recorded it (audit.py); NULL from the command line.
    correlation_id: Mapped[str | None] = mapped_column(Text)
    prev_hash: Mapped[str | None] = mapped_column(Text)
    hash: Mapped[str] = mapped_column(Text, nullable=False)

    __table_args__ = (
        UniqueConstraint("chain_id", "seq"),
        Index("ix_audit_events_model_name_id", "model_name", "id"),
        Index("ix_audit_events_model_id_id", "model_id", "id"),
        # One version's events (its history on the console's version page) without reading the model's all.
        Index("ix_audit_events_model_id_version_id", "model_id", "version", "id"),
        Index("ix_audit_events_run_id_id", "run_id", "id", postgresql_where=text("run_id IS NOT NULL")),
        Index("ix_audit_events_actor_id", "actor", "id"),
        Index("ix_audit_events_action_id", "action", "id"),
        Index("ix_audit_events_occurred_at", "occurred_at"),
        # The serving history ("what was in Production at t?", the stage/alias timeline: db/history.py).
        # Partial, so they hold only the events that change what a serving lookup returns: a model with
        # 100,000 versions and a long trail is answered without reading its other events.
        Index("ix_audit_events_serving_history", "model_id", "occurred_at", "seq",
              postgresql_where=text(f"action IN ({SERVING_CHANGES})")),
        Index("ix_audit_events_version_history", "model_id", "version", "seq",
              postgresql_where=text(f"action IN ({VERSION_CHANGES})")),
        Index("ix_audit_events_stage_entries", "model_id", "to_stage", "version", "seq",
              postgresql_where=text("action = 'version.transitioned'")),
        Index("ix_audit_events_stage_exits", "model_id", "from_stage", "seq", "version",
              postgresql_where=text("action IN ('version.transitioned', 'version.deleted')")),
        Index("ix_audit_events_alias_history", "model_id", text("(details ->> 'alias')"), "seq",
              postgresql_where=text("action IN ('alias.set', 'alias.deleted')")),
    )


# --- Identities, permissions and reviews -------------------------------------------------------------
