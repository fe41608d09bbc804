"""Approval policies, transition and alias requests, approvals and comments."""
from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

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
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db

if TYPE_CHECKING:  # relationships name their targets; SQLAlchemy resolves them in its registry
    from .models import ModelVersion, RegisteredModel
from .models import STAGE_CHECK


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
        # "My requests" in the console: one requester's, newest first.
        Index("ix_transition_requests_requested_by_id", "requested_by", "id"),
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
