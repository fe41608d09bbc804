"""The native /api/v1 wire format: request schemas (strict) and response renderers."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from ..pagination import MAX_PAGE_SIZE
from .timestamps import epoch_ms, from_epoch_ms, parse_instant
from ..db.records import (
    AuditRecord,
    CommentRecord,
    GrantRecord,
    ModelRecord,
    PolicyRecord,
    RequestRecord,
    TokenRecord,
    UserRecord,
    VersionRecord,
)


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE


class _Tags(fields.Dict):
    def __init__(self, **kwargs):
        super().__init__(keys=fields.String(), values=fields.String(), **kwargs)


class _JsonBoolean(fields.Boolean):
    """Only JSON true/false. ``truthy={True}`` alone still accepts 1 and 0.0, since 1 == True in Python."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


class ModelCreate(StrictSchema):
    name = fields.String(required=True)
    description = fields.String(allow_none=True)
    tags = _Tags()


class ModelUpdate(StrictSchema):
    name = fields.String()
    description = fields.String(allow_none=True)
    force = _JsonBoolean(load_default=False)  # an admin's override of an approval policy (renames)


class VersionCreate(StrictSchema):
    source = fields.String(required=True)
    run_id = fields.String(allow_none=True)
    run_link = fields.String(allow_none=True)
    description = fields.String(allow_none=True)
    tags = _Tags()
    model_id = fields.String(allow_none=True)


class VersionUpdate(StrictSchema):
    description = fields.String(required=True, allow_none=True)


class TagValue(StrictSchema):
    value = fields.String(required=True)


class _QueryBoolean(fields.Field):
    """A query-string boolean: ``true`` or ``false`` (any case), nothing else."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise ValidationError("Must be true or false.")


class ForceArgs(StrictSchema):
    """``?force=true``: an admin's override of an approval policy (deletes)."""

    force = _QueryBoolean(load_default=False)


class Transition(StrictSchema):
    stage = fields.String(required=True)
    archive_existing_versions = _JsonBoolean(load_default=False)
    comment = fields.String(allow_none=True)
    force = _JsonBoolean(load_default=False)


class RequestCreate(StrictSchema):
    stage = fields.String(required=True)
    archive_existing_versions = _JsonBoolean(load_default=False)
    comment = fields.String(allow_none=True)


class AliasRequestCreate(StrictSchema):
    alias = fields.String(required=True)
    comment = fields.String(allow_none=True)


class Review(StrictSchema):
    comment = fields.String(allow_none=True)


class CommentBody(StrictSchema):
    comment = fields.String(required=True)


class PolicyBody(StrictSchema):
    required_approvals = fields.Integer(required=True, strict=True)
    creator_may_not_approve = _JsonBoolean(load_default=False)


class Grant(StrictSchema):
    principal = fields.String(required=True)
    level = fields.String(required=True)


class GrantsBody(StrictSchema):
    grants = fields.List(fields.Nested(Grant), required=True)


class UserCreate(StrictSchema):
    name = fields.String(required=True)
    is_admin = _JsonBoolean(load_default=False)


class TokenCreate(StrictSchema):
    user = fields.String()
    description = fields.String(load_default="")
    expires_in_seconds = fields.Integer(strict=True, validate=validate.Range(min=60, max=10 * 365 * 86400))
    scope = fields.String(load_default="all", validate=validate.OneOf(["all", "metrics"]))


class AliasSet(StrictSchema):
    version = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=2_147_483_647))
    force = _JsonBoolean(load_default=False)


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
        # isascii: str.isdigit() also accepts characters such as '²' that int() refuses.
        if isinstance(value, str) and value.isascii() and value.lstrip("-").isdigit():
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            try:
                return from_epoch_ms(value)
            except OverflowError:
                raise ValidationError("Out of range.") from None
        if isinstance(value, str):
            try:
                parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                raise ValidationError("Not an ISO 8601 timestamp or epoch milliseconds.") from None
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
        raise ValidationError("Not an ISO 8601 timestamp or epoch milliseconds.")


class _AsOf(fields.Field):
    """An instant in the past or present: RFC 3339 with an offset, or epoch milliseconds (the end of that
    millisecond: an event shown at that time has happened by then). See ``timestamps.parse_instant``."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str):
            try:
                return parse_instant(value, datetime.now(timezone.utc))
            except ValueError:
                pass
        raise ValidationError("Not an RFC 3339 date-time with an offset (2026-11-03T14:00:00Z) or epoch "
                              "milliseconds.")


MAX_WAIT_SECONDS = 60


class ServingArgs(StrictSchema):
    """``GET .../stages/{stage}`` and ``.../aliases/{alias}``: a long-poll, or the answer as of an instant."""

    wait = fields.Float(validate=validate.Range(min=0, max=MAX_WAIT_SECONDS))
    as_of = _AsOf()


class WatchArgs(StrictSchema):
    """``GET /watch``: ``select`` repeated, one per answer (``services/watching.py`` parses each)."""

    select = fields.List(fields.String(), required=True)


class TimelineArgs(StrictSchema):
    since = _AsOf()
    until = _AsOf()


class AuditListArgs(_Page):
    model = fields.String()
    version = fields.Integer(validate=validate.Range(min=1, max=2_147_483_647))
    run_id = fields.String()
    actor = fields.String()
    action = fields.String()
    request_id = fields.Integer(validate=validate.Range(min=1, max=2**63 - 1))
    since = _Instant()
    until = _Instant()


class RequestListArgs(_Page):
    status = fields.String()


class InboxArgs(StrictSchema):
    max_results = fields.Integer(validate=validate.Range(min=1, max=MAX_PAGE_SIZE))


class TokenListArgs(StrictSchema):
    user = fields.String()


def model_json(m: ModelRecord) -> dict[str, Any]:
    return {
        "name": m.name,
        "description": m.description,
        "tags": m.tags,
        "last_version": m.last_version,
        "created_by": m.created_by,
        "revision": m.revision,
        "created_at": epoch_ms(m.created_at),
        "updated_at": epoch_ms(m.updated_at),
    }


def current_version_json(model_name: str, generation: int, v: Any) -> dict[str, Any]:
    """The serving answer (``GET /models/{name}/stages/{stage}`` and ``/aliases/{alias}``): the version a stage
    or alias points at, with the model's ``generation`` (its ETag's counter). ``v``: a serving CurrentVersion."""
    return {
        "model": model_name,
        "version": v.version,
        "stage": v.stage,
        "status": v.status,
        "source": v.source,
        "storage_location": v.storage_location,
        "run_id": v.run_id,
        "run_link": v.run_link,
        "aliases": list(v.aliases),
        "generation": generation,
        "created_at": epoch_ms(v.created_at),
        "updated_at": epoch_ms(v.updated_at),
    }


def version_json(v: VersionRecord) -> dict[str, Any]:
    return {
        "model": v.model_name,
        "version": v.version,
        "stage": v.stage,
        "status": v.status,
        "source": v.source,
        "storage_location": v.download_uri,
        "run_id": v.run_id,
        "run_link": v.run_link,
        "description": v.description,
        "tags": v.tags,
        "aliases": list(v.aliases),
        "created_by": v.created_by,
        "revision": v.revision,
        "created_at": epoch_ms(v.created_at),
        "updated_at": epoch_ms(v.updated_at),
    }


def audit_json(e: AuditRecord) -> dict[str, Any]:
    return {
        "id": e.id,
        "time": epoch_ms(e.occurred_at),
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
        "correlation_id": e.correlation_id,
        "seq": e.seq,
        "prev_hash": e.prev_hash,
        "hash": e.hash,
    }


def request_json(r: RequestRecord) -> dict[str, Any]:
    return {
        "id": r.id,
        "model": r.model_name,
        "version": r.version,
        "from_stage": r.from_stage,
        "to_stage": r.to_stage,
        "archive_existing_versions": r.archive_existing_versions,
        "comment": r.comment,
        "requested_by": r.requested_by,
        "status": r.status,
        "resolved_by": r.resolved_by,
        "resolution_comment": r.resolution_comment,
        "alias": r.alias,
        "alias_action": r.alias_action,
        "approvals": [
            {"approver": a.approver, "comment": a.comment, "created_at": epoch_ms(a.created_at)} for a in r.approvals
        ],
        "created_at": epoch_ms(r.created_at),
        "updated_at": epoch_ms(r.updated_at),
    }


def comment_json(c: CommentRecord) -> dict[str, Any]:
    return {"id": c.id, "model": c.model_name, "version": c.version, "author": c.author, "comment": c.comment,
            "created_at": epoch_ms(c.created_at), "updated_at": epoch_ms(c.updated_at)}


def policy_json(p: PolicyRecord) -> dict[str, Any]:
    """A stage policy (``{"stage", ...}``) or an alias policy (``{"alias", ...}``)."""
    subject = {"alias": p.alias} if p.alias is not None else {"stage": p.stage}
    return {**subject, "required_approvals": p.required_approvals,
            "creator_may_not_approve": p.creator_may_not_approve, "scope": p.scope}


def policies_json(records: list[PolicyRecord]) -> dict[str, Any]:
    """A policy listing: stage policies under ``policies`` (as before), alias policies under ``alias_policies``."""
    return {"policies": [policy_json(p) for p in records if p.alias is None],
            "alias_policies": [policy_json(p) for p in records if p.alias is not None]}


def grants_json(grants: list[GrantRecord]) -> dict[str, Any]:
    return {"grants": [{"principal": g.principal, "level": g.level} for g in grants]}


def user_json(u: UserRecord) -> dict[str, Any]:
    return {"name": u.name, "is_admin": u.is_admin, "created_at": epoch_ms(u.created_at)}


def token_json(t: TokenRecord) -> dict[str, Any]:
    return {
        "id": t.id, "user": t.user, "prefix": t.prefix, "description": t.description,
        "created_at": epoch_ms(t.created_at),
        "expires_at": epoch_ms(t.expires_at) if t.expires_at else None,
        "revoked_at": epoch_ms(t.revoked_at) if t.revoked_at else None,
        "scope": t.scope,
    }


def error_json(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}
