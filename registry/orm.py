"""Mapped classes. Named "orm" because "model" already means an ML model here.

Every schema change goes through a migration in migrations/versions; tests check that these classes and
the migrations agree.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, attribute_keyed_dict, mapped_column, relationship

from .extensions import db

STAGE_CHECK = "stage IN ('None', 'Staging', 'Production', 'Archived')"


class RegisteredModel(db.Model):
    __tablename__ = "registered_models"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(Text, nullable=False, unique=True)
    description: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    # Counter for version numbers: incremented under the row lock, never decremented, so numbers are
    # never reused after a delete (MLflow's behaviour).
    last_version: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    # Bumped on every change of the row; the native API's ETag / If-Match token.
    revision: Mapped[int] = mapped_column(Integer, nullable=False, server_default="1")
    # Bumped on every change that can alter a serving answer (stages, aliases, version deletion, rename):
    # the hot path's ETag and long-poll cursor.
    generation: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    # The head of the model's audit chain (seq and hash of its last event; 0 and NULL before the first),
    # written with every event at commit. A writer reads it with the row lock instead of querying the
    # chain, and `registry audit verify` checks it, so removing a chain's last events is detected too.
    audit_seq: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    audit_hash: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)

    # Loaded on access (searches ask for it with selectinload): versions reach their model through a join
    # on every load, and must not drag the model's tags along.
    tags: Mapped[dict[str, "RegisteredModelTag"]] = relationship(
        collection_class=attribute_keyed_dict("key"),
        cascade="all, delete-orphan",
        passive_deletes=True,
        lazy="select",
    )

    __table_args__ = (
        # Prefix search (LIKE 'abc%') under any database collation.
        Index("ix_registered_models_name_pattern", "name", postgresql_ops={"name": "text_pattern_ops"}),
        Index("ix_registered_models_created_at_id", "created_at", "id"),
        Index("ix_registered_models_updated_at_id", "updated_at", "id"),
    )


class RegisteredModelTag(db.Model):
    __tablename__ = "registered_model_tags"

    model_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("registered_models.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(Text, primary_key=True)
    value: Mapped[str] = mapped_column(Text, nullable=False, server_default="")

    __table_args__ = (Index("ix_registered_model_tags_key_value", "key", "value"),)


class ModelVersion(db.Model):
    __tablename__ = "model_versions"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    model_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("registered_models.id", ondelete="CASCADE"), nullable=False
    )
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    source: Mapped[str] = mapped_column(Text, nullable=False)
    run_id: Mapped[str | None] = mapped_column(Text)
    run_link: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    status: Mapped[str] = mapped_column(Text, nullable=False, server_default="READY")
    stage: Mapped[str] = mapped_column(Text, nullable=False, server_default="None")
    created_by: Mapped[str] = mapped_column(Text, nullable=False)
    revision: Mapped[int] = mapped_column(Integer, nullable=False, server_default="1")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)

    model: Mapped[RegisteredModel] = relationship(lazy="joined", innerjoin=True)
    tags: Mapped[dict[str, "ModelVersionTag"]] = relationship(
        collection_class=attribute_keyed_dict("key"),
        cascade="all, delete-orphan",
        passive_deletes=True,
        lazy="selectin",
    )
    aliases: Mapped[list["ModelAlias"]] = relationship(
        lazy="selectin", viewonly=True, order_by="ModelAlias.alias"
    )

    __table_args__ = (
        UniqueConstraint("model_id", "version"),
        CheckConstraint(STAGE_CHECK, name="stage"),
        CheckConstraint("version > 0", name="version_positive"),
        # "Latest version per stage" and "current Production" read this index backwards.
        Index("ix_model_versions_model_id_stage_version", "model_id", "stage", "version"),
        Index("ix_model_versions_run_id", "run_id", postgresql_where=text("run_id IS NOT NULL")),
    )


class ModelVersionTag(db.Model):
    __tablename__ = "model_version_tags"

    version_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(Text, primary_key=True)
    value: Mapped[str] = mapped_column(Text, nullable=False, server_default="")

    __table_args__ = (Index("ix_model_version_tags_key_value", "key", "value"),)


class ModelAlias(db.Model):
    __tablename__ = "model_aliases"

    model_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("registered_models.id", ondelete="CASCADE"), primary_key=True
    )
    alias: Mapped[str] = mapped_column(Text, primary_key=True)
    version_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("model_versions.id", ondelete="CASCADE"), nullable=False
    )

    version: Mapped[ModelVersion] = relationship(viewonly=True)

    __table_args__ = (Index("ix_model_aliases_version_id", "version_id"),)


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
    prev_hash: Mapped[str | None] = mapped_column(Text)
    hash: Mapped[str] = mapped_column(Text, nullable=False)

    __table_args__ = (
        UniqueConstraint("chain_id", "seq"),
        Index("ix_audit_events_model_name_id", "model_name", "id"),
        Index("ix_audit_events_model_id_id", "model_id", "id"),
        Index("ix_audit_events_run_id_id", "run_id", "id", postgresql_where=text("run_id IS NOT NULL")),
        Index("ix_audit_events_actor_id", "actor", "id"),
        Index("ix_audit_events_action_id", "action", "id"),
        Index("ix_audit_events_occurred_at", "occurred_at"),
    )


# --- Identities, permissions and reviews -------------------------------------------------------------


class User(db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(Text, nullable=False, unique=True)
    is_admin: Mapped[bool] = mapped_column(nullable=False, server_default=text("false"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class ApiToken(db.Model):
    """Only a SHA-256 digest of the token is stored; the token itself is shown once at creation.

    A fast digest suffices because tokens are 256-bit random strings: unlike passwords they cannot be
    guessed, so a slow KDF would only cost latency on every request.
    """

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    token_hash: Mapped[str] = mapped_column(Text, nullable=False, unique=True)
    # The first characters of the token, so a user can tell their tokens apart in a listing.
    token_prefix: Mapped[str] = mapped_column(Text, nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    user: Mapped[User] = relationship(lazy="joined", innerjoin=True)

    __table_args__ = (
        CheckConstraint("token_hash ~ '^[0-9a-f]{64}$'", name="token_hash_is_sha256_hex"),
        Index("ix_api_tokens_user_id", "user_id"),
    )


class PermissionGrant(db.Model):
    """A permission level for a principal (a user name, or ``*`` for every authenticated user), on one
    model or, with ``model_id`` NULL, on the whole registry (the default every model inherits)."""

    __tablename__ = "permission_grants"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    model_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("registered_models.id", ondelete="CASCADE")
    )
    principal: Mapped[str] = mapped_column(Text, nullable=False)
    level: Mapped[int] = mapped_column(Integer, nullable=False)
    granted_by: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)

    __table_args__ = (
        CheckConstraint("level BETWEEN 1 AND 5", name="level_range"),
        Index("uq_permission_grants_model_principal", "model_id", "principal", unique=True,
              postgresql_where=text("model_id IS NOT NULL")),
        Index("uq_permission_grants_registry_principal", "principal", unique=True,
              postgresql_where=text("model_id IS NULL")),
        Index("ix_permission_grants_principal", "principal", "model_id"),
    )


class ApprovalPolicy(db.Model):
    """Approvals a change needs, per model or registry-wide (NULL), for a stage or an alias ("protected alias")."""

    __tablename__ = "approval_policies"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    model_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("registered_models.id", ondelete="CASCADE")
    )
    stage: Mapped[str | None] = mapped_column(Text)
    alias: Mapped[str | None] = mapped_column(Text)
    required_approvals: Mapped[int] = mapped_column(Integer, nullable=False)
    creator_may_not_approve: Mapped[bool] = mapped_column(nullable=False, server_default=text("false"))
    updated_by: Mapped[str] = mapped_column(Text, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)

    __table_args__ = (
        CheckConstraint(STAGE_CHECK, name="stage"),
        CheckConstraint("(stage IS NULL) <> (alias IS NULL)", name="stage_or_alias"),
        CheckConstraint("required_approvals BETWEEN 0 AND 10", name="required_approvals_range"),
        Index("uq_approval_policies_model_stage", "model_id", "stage", unique=True,
              postgresql_where=text("model_id IS NOT NULL")),
        Index("uq_approval_policies_registry_stage", "stage", unique=True,
              postgresql_where=text("model_id IS NULL")),
        Index("uq_approval_policies_model_alias", "model_id", "alias", unique=True,
              postgresql_where=text("alias IS NOT NULL")),
        Index("uq_approval_policies_registry_alias", "alias", unique=True,
              postgresql_where=text("model_id IS NULL")),
    )


REQUEST_STATUS_CHECK = "status IN ('pending', 'approved', 'rejected', 'cancelled', 'superseded')"


class TransitionRequest(db.Model):
    """A reviewed change of what serves: a stage transition, or (``alias`` set, stages NULL) an alias change."""
    __tablename__ = "transition_requests"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    model_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("registered_models.id", ondelete="CASCADE"), nullable=False
    )
    # SET NULL: a deleted version's requests stay readable (as superseded) with their version number.
    version_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("model_versions.id", ondelete="SET NULL"))
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    from_stage: Mapped[str | None] = mapped_column(Text)
    to_stage: Mapped[str | None] = mapped_column(Text)
    alias: Mapped[str | None] = mapped_column(Text)
    alias_action: Mapped[str | None] = mapped_column(Text)
    archive_existing_versions: Mapped[bool] = mapped_column(nullable=False, server_default=text("false"))
    comment: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    requested_by: Mapped[str] = mapped_column(Text, nullable=False)
    status: Mapped[str] = mapped_column(Text, nullable=False, server_default="pending")
    resolved_by: Mapped[str | None] = mapped_column(Text)
    resolution_comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)

    model: Mapped[RegisteredModel] = relationship(lazy="joined", innerjoin=True)
    approvals: Mapped[list["TransitionApproval"]] = relationship(
        lazy="selectin", order_by="TransitionApproval.id", cascade="all, delete-orphan", passive_deletes=True
    )

    __table_args__ = (
        CheckConstraint(REQUEST_STATUS_CHECK, name="status"),
        CheckConstraint("from_stage IN ('None', 'Staging', 'Production', 'Archived')", name="from_stage"),
        CheckConstraint("to_stage IN ('None', 'Staging', 'Production', 'Archived')", name="to_stage"),
        CheckConstraint("(alias IS NULL) = (alias_action IS NULL) AND (alias IS NULL) = (to_stage IS NOT NULL) AND "
                        "(to_stage IS NULL) = (from_stage IS NULL) AND alias_action IN ('set','delete')", name="kind"),
        Index("ix_transition_requests_model_id_status", "model_id", "status", "id"),
        Index("ix_transition_requests_version_id_status", "version_id", "status"),
        Index("ix_transition_requests_pending", "id", postgresql_where=text("status = 'pending'")),
    )


class TransitionApproval(db.Model):
    __tablename__ = "transition_approvals"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    request_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("transition_requests.id", ondelete="CASCADE"), nullable=False
    )
    approver: Mapped[str] = mapped_column(Text, nullable=False)
    comment: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)

    # Distinct approvers, enforced by the database as well as by the service.
    __table_args__ = (UniqueConstraint("request_id", "approver"),)


class Comment(db.Model):
    __tablename__ = "comments"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    model_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("registered_models.id", ondelete="CASCADE"), nullable=False
    )
    version_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("model_versions.id", ondelete="CASCADE"), nullable=False
    )
    author: Mapped[str] = mapped_column(Text, nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)

    version: Mapped[ModelVersion] = relationship(lazy="joined", innerjoin=True)

    __table_args__ = (Index("ix_comments_version_id", "version_id", "id"),)


# --- Registry webhooks (Databricks' registry-webhooks API) -------------------------------------------


WEBHOOK_STATUS_CHECK = "status IN ('ACTIVE', 'TEST_MODE', 'DISABLED')"


class RegistryWebhook(db.Model):
    """A subscription to registry events, on one model or (``model_id`` NULL) registry-wide.

    Exactly one target: an HTTP URL or a job. The secret, the Authorization value and the job's access token
    are write-only on the API; they are kept here because delivery needs them in clear (HMAC key, header).
    """

    __tablename__ = "registry_webhooks"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    model_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("registered_models.id", ondelete="CASCADE")
    )
    events: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    status: Mapped[str] = mapped_column(Text, nullable=False, server_default="ACTIVE")
    http_url: Mapped[str | None] = mapped_column(Text)
    http_secret: Mapped[str | None] = mapped_column(Text)
    http_authorization: Mapped[str | None] = mapped_column(Text)
    enable_ssl_verification: Mapped[bool] = mapped_column(nullable=False, server_default=text("true"))
    job_id: Mapped[str | None] = mapped_column(Text)
    job_access_token: Mapped[str | None] = mapped_column(Text)
    job_workspace_url: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)

    model: Mapped[RegisteredModel | None] = relationship(lazy="joined")

    __table_args__ = (
        CheckConstraint(WEBHOOK_STATUS_CHECK, name="status"),
        CheckConstraint("(http_url IS NULL) <> (job_id IS NULL)", name="one_target"),
        CheckConstraint("cardinality(events) > 0", name="events_not_empty"),
        Index("ix_registry_webhooks_model_id_id", "model_id", "id"),
    )
