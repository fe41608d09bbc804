"""Registry webhooks (Databricks' registry-webhooks)."""
from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db

if TYPE_CHECKING:  # relationships name their targets; SQLAlchemy resolves them in its registry
    from .models import RegisteredModel


WEBHOOK_STATUS_CHECK = "status IN ('ACTIVE', 'TEST_MODE', 'DISABLED')"


class RegistryWebhook(db.Model):
    """A subscription to registry events, on one model or (``model_id`` NULL) registry-wide.

    Exactly one target: an HTTP URL or a job. The secret, the Authorization value and the job's access token
    are write-only on the API; delivery needs them in clear (HMAC key, header), so they are kept here
    encrypted (``registry/events/sealing.py``).
    """

    __tablename__ = "registry_webhooks"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    # Which API manages it and how it is delivered: "databricks", "mlflow" or "native" (registry/events/).
    dialect: Mapped[str] = mapped_column(Text, nullable=False, server_default="databricks")
    name: Mapped[str | None] = mapped_column(Text)  # MLflow webhooks have one
    model_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("registered_models.id", ondelete="CASCADE")
    )
    events: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False)
    # What the webhook matches in the outbox trigger: audit actions, alone or as "action:ToStage"
    # (registry/events/topics.py derives them from ``events``).
    topics: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False, server_default="{}")
    description: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    status: Mapped[str] = mapped_column(Text, nullable=False, server_default="ACTIVE")
    http_url: Mapped[str | None] = mapped_column(Text)
    http_secret: Mapped[str | None] = mapped_column(Text)
    http_authorization: Mapped[str | None] = mapped_column(Text)
    enable_ssl_verification: Mapped[bool] = mapped_column(nullable=False, server_default=text("true"))
    job_id: Mapped[str | None] = mapped_column(Text)
    job_access_token: Mapped[str | None] = mapped_column(Text)
    job_workspace_url: Mapped[str | None] = mapped_column(Text)
    # After a secret rotation (native webhooks), deliveries are signed with the old secret too until then.
    previous_secret: Mapped[str | None] = mapped_column(Text)
    previous_secret_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)

    model: Mapped[RegisteredModel | None] = relationship(lazy="joined")

    __table_args__ = (
        CheckConstraint(WEBHOOK_STATUS_CHECK, name="status"),
        CheckConstraint("dialect IN ('databricks', 'mlflow', 'native')", name="dialect"),
        CheckConstraint("(http_url IS NULL) <> (job_id IS NULL)", name="one_target"),
        CheckConstraint("cardinality(events) > 0", name="events_not_empty"),
        Index("ix_registry_webhooks_model_id_id", "model_id", "id"),
        Index("ix_registry_webhooks_topics", "topics", postgresql_using="gin"),
    )
