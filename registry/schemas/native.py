"""The native /api/v1 wire format: request schemas (strict) and response renderers."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from ..pagination import MAX_PAGE_SIZE
from ..services.records import AuditRecord, ModelRecord, VersionRecord


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE


class _Tags(fields.Dict):
    def __init__(self, **kwargs):
        super().__init__(keys=fields.String(), values=fields.String(), **kwargs)


class ModelCreate(StrictSchema):
    name = fields.String(required=True)
    description = fields.String(allow_none=True)
    tags = _Tags()


class ModelUpdate(StrictSchema):
    name = fields.String()
    description = fields.String(allow_none=True)


class VersionCreate(StrictSchema):
    source = fields.String(required=True)
    run_id = fields.String(allow_none=True)
    run_link = fields.String(allow_none=True)
    description = fields.String(allow_none=True)
    tags = _Tags()


class VersionUpdate(StrictSchema):
    description = fields.String(required=True, allow_none=True)


class TagValue(StrictSchema):
    value = fields.String(required=True)


class Transition(StrictSchema):
    stage = fields.String(required=True)
    archive_existing_versions = fields.Boolean(truthy={True}, falsy={False}, load_default=False)


class AliasSet(StrictSchema):
    version = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))


class _Page(StrictSchema):
    max_results = fields.Integer(validate=validate.Range(min=1, max=MAX_PAGE_SIZE))
    page_token = fields.String()


_MODEL_ORDERS = ["name", "-name", "created_at", "-created_at", "updated_at", "-updated_at"]


class ModelListArgs(_Page):
    name_prefix = fields.String()
    name_contains = fields.String()
    tag = fields.List(fields.String())
    order_by = fields.String(validate=validate.OneOf(_MODEL_ORDERS), load_default="name")


class VersionListArgs(_Page):
    run_id = fields.String()
    stage = fields.String()
    tag = fields.List(fields.String())


class GlobalVersionListArgs(VersionListArgs):
    model = fields.String()


class LatestVersionsArgs(StrictSchema):
    stage = fields.List(fields.String())


class _Instant(fields.Field):
    """Epoch milliseconds or an ISO 8601 timestamp (a naive one is taken as UTC)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str) and value.lstrip("-").isdigit():
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            try:
                return datetime.fromtimestamp(value / 1000, tz=timezone.utc)
            except (OverflowError, OSError, ValueError):
                raise ValidationError("Out of range.") from None
        if isinstance(value, str):
            try:
                parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                raise ValidationError("Not an ISO 8601 timestamp or epoch milliseconds.") from None
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
        raise ValidationError("Not an ISO 8601 timestamp or epoch milliseconds.")


class AuditListArgs(_Page):
    model = fields.String()
    version = fields.Integer(validate=validate.Range(min=1, max=2_147_483_647))
    run_id = fields.String()
    actor = fields.String()
    action = fields.String()
    since = _Instant()
    until = _Instant()


def millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def model_json(m: ModelRecord) -> dict[str, Any]:
    return {
        "name": m.name,
        "description": m.description,
        "tags": m.tags,
        "last_version": m.last_version,
        "revision": m.revision,
        "created_at": millis(m.created_at),
        "updated_at": millis(m.updated_at),
    }


def version_json(v: VersionRecord) -> dict[str, Any]:
    return {
        "model": v.model_name,
        "version": v.version,
        "stage": v.stage,
        "status": v.status,
        "source": v.source,
        "run_id": v.run_id,
        "run_link": v.run_link,
        "description": v.description,
        "tags": v.tags,
        "aliases": list(v.aliases),
        "created_by": v.created_by,
        "revision": v.revision,
        "created_at": millis(v.created_at),
        "updated_at": millis(v.updated_at),
    }


def audit_json(e: AuditRecord) -> dict[str, Any]:
    return {
        "id": e.id,
        "time": millis(e.occurred_at),
        "time_iso": e.occurred_at.astimezone(timezone.utc).isoformat(),
        "actor": e.actor,
        "action": e.action,
        "model": e.model_name,
        "version": e.version,
        "run_id": e.run_id,
        "from_stage": e.from_stage,
        "to_stage": e.to_stage,
        "request_id": e.request_id,
        "details": e.details,
        "seq": e.seq,
        "prev_hash": e.prev_hash,
        "hash": e.hash,
    }


def error_json(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}
