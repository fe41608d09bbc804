"""Immutable results of use cases. Built inside the transaction, so adapters never touch ORM objects."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..orm import AuditEvent, ModelVersion, RegisteredModel


@dataclass(frozen=True)
class ModelRecord:
    id: int
    name: str
    description: str
    tags: dict[str, str]
    last_version: int
    revision: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class VersionRecord:
    id: int
    model_name: str
    version: int
    source: str
    run_id: str | None
    run_link: str | None
    description: str
    status: str
    stage: str
    created_by: str
    tags: dict[str, str]
    aliases: tuple[str, ...]
    revision: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class AuditRecord:
    id: int
    occurred_at: datetime
    actor: str
    action: str
    model_name: str | None
    version: int | None
    run_id: str | None
    from_stage: str | None
    to_stage: str | None
    request_id: int | None
    details: dict[str, Any]
    seq: int
    prev_hash: str | None
    hash: str


def model_record(model: RegisteredModel) -> ModelRecord:
    return ModelRecord(
        id=model.id,
        name=model.name,
        description=model.description,
        tags={key: tag.value for key, tag in sorted(model.tags.items())},
        last_version=model.last_version,
        revision=model.revision,
        created_at=model.created_at,
        updated_at=model.updated_at,
    )


def version_record(version: ModelVersion) -> VersionRecord:
    return VersionRecord(
        id=version.id,
        model_name=version.model.name,
        version=version.version,
        source=version.source,
        run_id=version.run_id,
        run_link=version.run_link,
        description=version.description,
        status=version.status,
        stage=version.stage,
        created_by=version.created_by,
        tags={key: tag.value for key, tag in sorted(version.tags.items())},
        aliases=tuple(a.alias for a in version.aliases),
        revision=version.revision,
        created_at=version.created_at,
        updated_at=version.updated_at,
    )


def audit_record(event: AuditEvent) -> AuditRecord:
    return AuditRecord(
        id=event.id,
        occurred_at=event.occurred_at,
        actor=event.actor,
        action=event.action,
        model_name=event.model_name,
        version=event.version,
        run_id=event.run_id,
        from_stage=event.from_stage,
        to_stage=event.to_stage,
        request_id=event.request_id,
        details=event.details,
        seq=event.seq,
        prev_hash=event.prev_hash,
        hash=event.hash,
    )
