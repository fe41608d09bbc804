"""Idempotency keys of native creates (``services/idempotency.py``)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Index, Integer, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db


class IdempotencyKey(db.Model):
    """A create a caller sent with ``Idempotency-Key``: what it asked (a digest of route and body) and what it
    created (a model, or one of its versions). No foreign key: the record outlives a later deletion, which a
    replay then reports."""

    __tablename__ = "idempotency_keys"

    principal: Mapped[str] = mapped_column(Text, primary_key=True)
    key: Mapped[str] = mapped_column(Text, primary_key=True)
    fingerprint: Mapped[str] = mapped_column(Text, nullable=False)
    model_id: Mapped[int | None] = mapped_column(BigInteger)
    version: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)

    __table_args__ = (Index("ix_idempotency_keys_created_at", "created_at"),)
