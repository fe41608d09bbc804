"""Registered models, their versions, tags and aliases."""
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
from sqlalchemy.orm import Mapped, attribute_keyed_dict, mapped_column, relationship

from ..extensions import db


STAGE_CHECK = "stage IN ('None', 'Staging', 'Production', 'Archived')"


class RegisteredModel(db.Model):
    __tablename__ = "registered_models"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(Text, nullable=False, unique=True)
    description: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    # Who created it (Databricks' ``user_id``). NULL only for a model whose creation left no audit event.
    created_by: Mapped[str | None] = mapped_column(Text)
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
    # Where the artifacts are when ``source`` only names another version (``models:/<name>/<version>``): that
    # version's own storage location, resolved when this one was registered, as MLflow does, so this version
    # outlives the one it was copied from. NULL: ``source`` itself is where they are.
    storage_location: Mapped[str | None] = mapped_column(Text)
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
