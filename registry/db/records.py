"""Immutable results of use cases. Built inside the transaction, so adapters never touch ORM objects."""
from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from ..orm import AuditEvent, ModelVersion, RegisteredModel


@dataclass(frozen=True, slots=True)
class ModelRecord:
    id: int
    name: str
    description: str
    created_by: str | None
    tags: dict[str, str]
    last_version: int
    revision: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class VersionRecord:
    id: int
    model_id: int
    model_name: str
    version: int
    source: str
    storage_location: str | None  # None: the source itself (see orm.ModelVersion.storage_location)
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

    @property
    def download_uri(self) -> str:
        """Where the artifacts are: what MLflow's get-download-uri answers (``storage_location or source``)."""
        return self.storage_location or self.source


@dataclass(frozen=True, slots=True)
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
    correlation_id: str | None
    seq: int
    prev_hash: str | None
    hash: str


def model_record(model: RegisteredModel) -> ModelRecord:
    return ModelRecord(
        id=model.id,
        name=model.name,
        description=model.description,
        created_by=model.created_by,
        tags={key: tag.value for key, tag in sorted(model.tags.items())},
        last_version=model.last_version,
        revision=model.revision,
        created_at=model.created_at,
        updated_at=model.updated_at,
    )


def version_record(version: ModelVersion) -> VersionRecord:
    return VersionRecord(
        id=version.id,
        model_id=version.model_id,
        model_name=version.model.name,
        version=version.version,
        source=version.source,
        storage_location=version.storage_location,
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


def version_record_from_row(row) -> VersionRecord:
    """The same record as ``version_record``, from one row of a Core SELECT (no ORM objects): the version's
    columns, ``model_name``, ``tags`` (a JSON object of key -> value, or NULL when the version has none) and
    ``aliases`` (an array ordered by alias in SQL, as the ORM relationship orders them)."""
    tags = row.tags
    return VersionRecord(
        id=row.id,
        model_id=row.model_id,
        model_name=row.model_name,
        version=row.version,
        source=row.source,
        storage_location=row.storage_location,
        run_id=row.run_id,
        run_link=row.run_link,
        description=row.description,
        status=row.status,
        stage=row.stage,
        created_by=row.created_by,
        tags=dict(sorted(tags.items())) if tags else {},
        aliases=tuple(row.aliases) if row.aliases else (),
        revision=row.revision,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


# AuditRecord's fields are the audit event's columns of the same names (all but chain_id and model_id).
_AUDIT_RECORD_FIELDS = tuple(f.name for f in fields(AuditRecord))


def audit_record(event: AuditEvent) -> AuditRecord:
    return AuditRecord(**{name: getattr(event, name) for name in _AUDIT_RECORD_FIELDS})


@dataclass(frozen=True, slots=True)
class UserRecord:
    name: str
    is_admin: bool
    created_at: datetime
    id: int | None = None
    has_password: bool = False


@dataclass(frozen=True, slots=True)
class TokenRecord:
    id: int
    user: str
    prefix: str
    description: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    scope: str


@dataclass(frozen=True, slots=True)
class GrantRecord:
    principal: str
    level: str


@dataclass(frozen=True, slots=True)
class PolicyRecord:
    stage: str | None  # a stage policy; None for an alias policy
    required_approvals: int
    creator_may_not_approve: bool
    scope: str  # "model", "registry" or "default"
    alias: str | None = None  # an alias policy (a "protected alias"); None for a stage policy


@dataclass(frozen=True, slots=True)
class ApprovalRecord:
    approver: str
    comment: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """A stage transition request (``from_stage``, ``to_stage``) or an alias request (``alias``,
    ``alias_action`` "set" or "delete"; stages None). ``version``: the version the request is about (for an
    alias request, the one the alias is to point at, or points at and is to leave)."""

    id: int
    model_name: str
    version: int
    from_stage: str | None
    to_stage: str | None
    archive_existing_versions: bool
    comment: str
    requested_by: str
    status: str
    resolved_by: str | None
    resolution_comment: str | None
    approvals: tuple[ApprovalRecord, ...]
    created_at: datetime
    updated_at: datetime
    alias: str | None = None
    alias_action: str | None = None


@dataclass(frozen=True, slots=True)
class CommentRecord:
    id: int
    model_name: str
    version: int
    author: str
    comment: str
    created_at: datetime
    updated_at: datetime


def request_record(request) -> RequestRecord:
    return RequestRecord(
        id=request.id,
        model_name=request.model.name,
        version=request.version,
        from_stage=request.from_stage,
        to_stage=request.to_stage,
        archive_existing_versions=request.archive_existing_versions,
        comment=request.comment,
        requested_by=request.requested_by,
        status=request.status,
        resolved_by=request.resolved_by,
        resolution_comment=request.resolution_comment,
        approvals=tuple(ApprovalRecord(a.approver, a.comment, a.created_at) for a in request.approvals),
        created_at=request.created_at,
        updated_at=request.updated_at,
        alias=request.alias,
        alias_action=request.alias_action,
    )


def comment_record(comment) -> CommentRecord:
    return CommentRecord(
        id=comment.id,
        model_name=comment.version.model.name,
        version=comment.version.version,
        author=comment.author,
        comment=comment.body,
        created_at=comment.created_at,
        updated_at=comment.updated_at,
    )


def token_record(token) -> TokenRecord:
    return TokenRecord(
        id=token.id,
        user=token.user.name,
        prefix=token.token_prefix,
        description=token.description,
        created_at=token.created_at,
        expires_at=token.expires_at,
        revoked_at=token.revoked_at,
        scope=token.scope,
    )
