"""The MLflow wire format (``/api/2.0/mlflow``): entity renderers and the error body, exactly as MLflow's
server writes them (proto3 JSON): versions are strings, timestamps epoch milliseconds, and empty repeated
fields and unset optionals are omitted. Shared by the MLflow and Databricks adapters."""
from __future__ import annotations

from typing import Any, Iterable

from flask import Response, jsonify

from .. import errors
from ..db.records import ModelRecord, VersionRecord
from .timestamps import epoch_ms


def tags_json(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": key, "value": value} for key, value in tags.items()]


def model_version_json(record: VersionRecord, *, with_aliases: bool = True) -> dict[str, Any]:
    """A ``ModelVersion`` in MLflow's field order. ``run_id``/``run_link`` are ``""`` when absent, as MLflow
    stores them; ``user_id`` is the creator (Databricks sends it; OSS MLflow leaves it unset)."""
    out: dict[str, Any] = {
        "name": record.model_name,
        "version": str(record.version),
        "creation_timestamp": epoch_ms(record.created_at),
        "last_updated_timestamp": epoch_ms(record.updated_at),
        "user_id": record.created_by,
        "current_stage": record.stage,
        "description": record.description,
        "source": record.source,
        "run_id": record.run_id or "",
        "status": record.status,
    }
    if record.tags:
        out["tags"] = tags_json(record.tags)
    out["run_link"] = record.run_link or ""
    if with_aliases and record.aliases:
        out["aliases"] = list(record.aliases)
    return out


def registered_model_json(
    record: ModelRecord, latest_versions: Iterable[VersionRecord], aliases: dict[str, int]
) -> dict[str, Any]:
    """A ``RegisteredModel``. Its ``latest_versions`` carry no aliases, as in MLflow (they are listed once,
    on the model, as ``{alias, version}``)."""
    out: dict[str, Any] = {
        "name": record.name,
        "creation_timestamp": epoch_ms(record.created_at),
        "last_updated_timestamp": epoch_ms(record.updated_at),
    }
    if record.description:
        out["description"] = record.description
    latest = [model_version_json(v, with_aliases=False) for v in latest_versions]
    if latest:
        out["latest_versions"] = latest
    if record.tags:
        out["tags"] = tags_json(record.tags)
    if aliases:
        out["aliases"] = [{"alias": alias, "version": str(version)} for alias, version in aliases.items()]
    return out


# --- Errors ------------------------------------------------------------------------------------------

# Domain error -> (MLflow error code, HTTP status). MLflow answers RESOURCE_ALREADY_EXISTS with 400, and
# its client treats 5xx as retryable, so every deterministic refusal here is a 4xx.
_BY_ERROR: dict[type[errors.RegistryError], tuple[str, int]] = {
    errors.InvalidArgument: ("INVALID_PARAMETER_VALUE", 400),
    errors.InvalidTransition: ("INVALID_PARAMETER_VALUE", 400),
    errors.Unauthenticated: ("UNAUTHENTICATED", 401),
    errors.PermissionDenied: ("PERMISSION_DENIED", 403),
    errors.NotFound: ("RESOURCE_DOES_NOT_EXIST", 404),
    errors.AlreadyExists: ("RESOURCE_ALREADY_EXISTS", 400),
    errors.Conflict: ("RESOURCE_CONFLICT", 409),
    errors.PreconditionFailed: ("RESOURCE_CONFLICT", 409),
}

# HTTP-level failures (no route, wrong method, body too large) under an MLflow path.
_BY_STATUS: dict[int, str] = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "ENDPOINT_NOT_FOUND",
    405: "ENDPOINT_NOT_FOUND",
    409: "RESOURCE_CONFLICT",
    503: "TEMPORARILY_UNAVAILABLE",
}
# No "Request Timeout" or "Too Many Requests" here or anywhere: MLflow 3.18's client takes them for "not
# processed" and sends a create or a transition again (tests/api/test_retry_statuses.py). A busy database is
# a 503, which it does not repeat.


def error_code_for(error: errors.RegistryError) -> tuple[str, int]:
    for cls in type(error).__mro__:
        if cls in _BY_ERROR:
            return _BY_ERROR[cls]
    return "INTERNAL_ERROR", 500


def error_code_for_status(status: int) -> str:
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    return "INVALID_PARAMETER_VALUE" if status < 500 else "INTERNAL_ERROR"


def mlflow_error(code: str, message: str, status: int) -> Response:
    """MLflow's error body ``{"error_code", "message"}`` with the given status."""
    response = jsonify({"error_code": code, "message": message})
    response.status_code = status
    return response
