"""The outbox and the delivery log: ``events`` (one per audit event), ``webhook_deliveries`` (one per webhook
and event, or per test call) and ``webhook_attempts`` (every HTTP attempt of a delivery).

Rows of the first two are written by the database trigger ``audit_events_outbox`` (migration 0014), in the
transaction that records the audit event; see ``registry/events/__init__.py``.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, Index, Integer, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db

DELIVERY_STATES = ("pending", "delivered", "failed")


class Event(db.Model):
    """An audit event as the outbox sees it. ``id`` is the global event id (per model it grows with the model's
    audit ``seq``); ``position`` is its place in the pull feed, given after commit (``events/feed.py``)."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    # No foreign key, as elsewhere for audit events: the trail is append-only, and its own trigger (not a
    # foreign key error) must be what refuses a TRUNCATE of it.
    audit_event_id: Mapped[int] = mapped_column(BigInteger, nullable=False, unique=True)
    model_id: Mapped[int | None] = mapped_column(BigInteger)  # no foreign key: events outlive their model
    position: Mapped[int | None] = mapped_column(BigInteger, unique=True)

    __table_args__ = (
        Index("ix_events_unpositioned", "id", postgresql_where=text("position IS NULL")),
    )


class WebhookDelivery(db.Model):
    """One event (or one test call: ``test_event``) to one webhook, until delivered or given up on.

    ``model_id`` (0 for registry-wide events) keys the per-webhook, per-model queue that keeps order."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    webhook_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("registry_webhooks.id", ondelete="CASCADE"),
                                            nullable=False)
    event_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("events.id"))
    model_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    state: Mapped[str] = mapped_column(Text, nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    test_event: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        CheckConstraint("state IN ('pending', 'delivered', 'failed')", name="state"),
        CheckConstraint("(event_id IS NULL) = (test_event IS NOT NULL)", name="event_or_test"),
        UniqueConstraint("webhook_id", "event_id"),
        Index("ix_webhook_deliveries_due", "next_attempt_at", postgresql_where=text("state = 'pending'")),
        Index("ix_webhook_deliveries_queue", "webhook_id", "model_id", "event_id",
              postgresql_where=text("state = 'pending'")),
        Index("ix_webhook_deliveries_event_id", "event_id"),
    )


class WebhookAttempt(db.Model):
    """One HTTP attempt: when, the answer's status (None if there was none), latency, the start of the answer's
    body, or the error. Never the request's headers: they carry the signature and the Authorization value."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    delivery_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("webhook_deliveries.id", ondelete="CASCADE"),
                                             nullable=False)
    attempted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    status_code: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[int] = mapped_column(Integer, nullable=False)
    response_excerpt: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_webhook_attempts_delivery_id_id", "delivery_id", "id"),)
