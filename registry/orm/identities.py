"""Users, API tokens and permission grants."""
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
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db


class User(db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(Text, nullable=False, unique=True)
    is_admin: Mapped[bool] = mapped_column(nullable=False, server_default=text("false"))
    # A password for HTTP Basic sign-in (MLflow's basic-auth users), hashed with a slow KDF (werkzeug's
    # scrypt): unlike tokens, passwords are chosen by people and can be guessed. NULL: tokens only.
    password_hash: Mapped[str | None] = mapped_column(Text)
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
    # The token this one was minted with through the API (None: made by the command line or at start-up). A
    # token never outlives its parent: its expiry is capped at the parent's, and revoking revokes descendants.
    parent_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("api_tokens.id", ondelete="CASCADE"))
    # What the token may do: ``all`` (whatever its user may), or ``metrics`` (read /metrics, nothing else:
    # for a Prometheus server, services/identities.py).
    scope: Mapped[str] = mapped_column(Text, nullable=False, server_default="all")

    user: Mapped[User] = relationship(lazy="joined", innerjoin=True)

    __table_args__ = (
        CheckConstraint("token_hash ~ '^[0-9a-f]{64}$'", name="token_hash_is_sha256_hex"),
        CheckConstraint("scope IN ('all', 'metrics')", name="scope"),
        Index("ix_api_tokens_user_id", "user_id"),
        Index("ix_api_tokens_parent_id", "parent_id", postgresql_where=text("parent_id IS NOT NULL")),
    )


class PermissionGrant(db.Model):
    """A permission level for a principal (a user name, or ``*`` for every authenticated user), on one
    model or, with ``model_id`` NULL, on the whole registry (the default every model inherits). ``level``
    -1 is DENY: a veto over every other grant that reaches the principal (``services/access.py``)."""

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
        CheckConstraint("level = -1 OR level BETWEEN 1 AND 5", name="level_range"),
        Index("uq_permission_grants_model_principal", "model_id", "principal", unique=True,
              postgresql_where=text("model_id IS NOT NULL")),
        Index("uq_permission_grants_registry_principal", "principal", unique=True,
              postgresql_where=text("model_id IS NULL")),
        Index("ix_permission_grants_principal", "principal", "model_id"),
        Index("ix_permission_grants_denials", "principal", "model_id", postgresql_where=text("level < 0")),
    )


class InstanceSecret(db.Model):
    """A secret this installation made for itself, shared by all its processes and hosts: the console's
    cookie-signing key when ``REGISTRY_SECRET_KEY`` is not set. Never shown or audited."""

    __tablename__ = "instance_secrets"

    name: Mapped[str] = mapped_column(Text, primary_key=True)
    value: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
