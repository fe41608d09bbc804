"""The Databricks Workspace Model Registry wire format: shapes as ``databricks-sdk`` (0.156) parses them.

Entities that Databricks shares with MLflow (``ModelVersion``, tags, timestamps) come from
``schemas/mlflow.py``. Unset optionals are omitted; extra fields are ignored by the SDK.

Identifiers: a model's ``id`` is our model id; a comment's ``id`` is its comment id; an open request's
activity ``id`` is its request id (the native API's ``/api/v1/transition-requests/{id}``); every other
activity's ``id`` is the id of the audit event it was made from.
"""
from __future__ import annotations

from typing import Any, Iterable

from ..lifecycle import Permission
from ..db.records import (
    AuditRecord,
    CommentRecord,
    GrantRecord,
    ModelRecord,
    RequestRecord,
    VersionRecord,
)
from ..services.webhooks import WebhookRecord
from .mlflow import model_version_json, tags_json
from .timestamps import epoch_ms

# --- Permission levels -----------------------------------------------------------------------------------

LEVEL_NAMES: dict[Permission, str] = {
    Permission.READ: "CAN_READ",
    Permission.EDIT: "CAN_EDIT",
    Permission.MANAGE_STAGING: "CAN_MANAGE_STAGING_VERSIONS",
    Permission.MANAGE_PRODUCTION: "CAN_MANAGE_PRODUCTION_VERSIONS",
    Permission.MANAGE: "CAN_MANAGE",
}
LEVELS_BY_NAME: dict[str, Permission] = {name: level for level, name in LEVEL_NAMES.items()}
DENY_NAME = "DENY"

LEVEL_DESCRIPTIONS: dict[Permission, str] = {
    Permission.READ: "Can view the model, its versions, requests and comments, and request stage transitions.",
    Permission.EDIT: "Can also create versions and edit descriptions, tags and comments.",
    Permission.MANAGE_STAGING: "Can also transition versions, and approve or reject requests, between "
                               "None, Staging and Archived.",
    Permission.MANAGE_PRODUCTION: "Can also transition versions, and approve or reject requests, to and from "
                                  "Production.",
    Permission.MANAGE: "Can also rename and delete the model and its versions, and change its permissions, "
                       "approval policies and webhooks.",
}

ROOT_ID = "root"
OBJECT_TYPE = "registered-model"
# "*" (every authenticated user) is Databricks' built-in "users" group; admins are its "admins" group.
EVERYONE_GROUP = "users"
ADMINS_GROUP = "admins"


def level_name(level: Permission | int | str) -> str:
    """A level's Databricks name. DENY has none in Databricks: it is shown as ``DENY`` (the SDK, which knows
    only its own levels, reads it as None) rather than hidden, so a Databricks client sees the veto is there."""
    if isinstance(level, str):
        level = Permission[level]
    if level == Permission.DENY:
        return DENY_NAME
    return LEVEL_NAMES[Permission(level)]


def object_id(model_id: int | None) -> str:
    return f"/registered-models/{ROOT_ID if model_id is None else model_id}"


def _principal_json(principal: str) -> dict[str, str]:
    if principal == "*":
        return {"group_name": EVERYONE_GROUP}
    return {"user_name": principal, "display_name": principal}


def permissions_json(model_id: int | None, direct: Iterable[GrantRecord],
                     inherited: Iterable[GrantRecord] = ()) -> dict[str, Any]:
    """``RegisteredModelPermissions``: a model's direct grants, plus the registry-wide ones it inherits from
    ``/registered-models/root``; admins appear as the ``admins`` group with CAN_MANAGE."""
    entries: dict[str, list[dict[str, Any]]] = {}
    for grant in direct:
        entries.setdefault(grant.principal, []).append(
            {"permission_level": level_name(grant.level), "inherited": False})
    for grant in inherited:
        entries.setdefault(grant.principal, []).append(
            {"permission_level": level_name(grant.level), "inherited": True,
             "inherited_from_object": [object_id(None)]})
    acl = [{**_principal_json(principal), "all_permissions": perms} for principal, perms in entries.items()]
    admins = {"permission_level": "CAN_MANAGE", "inherited": model_id is not None}
    if model_id is not None:
        admins["inherited_from_object"] = [object_id(None)]
    acl.append({"group_name": ADMINS_GROUP, "all_permissions": [admins]})
    return {"object_id": object_id(model_id), "object_type": OBJECT_TYPE, "access_control_list": acl}


def permission_levels_json() -> dict[str, Any]:
    return {"permission_levels": [{"permission_level": LEVEL_NAMES[level], "description": LEVEL_DESCRIPTIONS[level]}
                                  for level in LEVEL_NAMES]}


# --- Models and versions ---------------------------------------------------------------------------------

def model_databricks_json(model: ModelRecord, latest: Iterable[VersionRecord], level: Permission) -> dict[str, Any]:
    """``ModelDatabricks``: the model, its latest version per stage and the caller's permission level."""
    out: dict[str, Any] = {
        "id": str(model.id),
        "name": model.name,
        "creation_timestamp": epoch_ms(model.created_at),
        "last_updated_timestamp": epoch_ms(model.updated_at),
        "permission_level": level_name(level),
    }
    if model.description:
        out["description"] = model.description
    if model.created_by:
        out["user_id"] = model.created_by  # Databricks: "the username of the user that created the object"
    versions = [model_version_json(v, with_aliases=False) for v in latest]
    if versions:
        out["latest_versions"] = versions
    if model.tags:
        out["tags"] = tags_json(model.tags)
    return out


def version_databricks_json(version: VersionRecord, level: Permission,
                            open_requests: Iterable[RequestRecord]) -> dict[str, Any]:
    """``ModelVersionDatabricks``: a ModelVersion plus the caller's level and the version's open requests."""
    out = model_version_json(version, with_aliases=False)
    out["permission_level"] = level_name(level)
    requests = [request_activity_json(r) for r in open_requests]
    if requests:
        out["open_requests"] = requests
    return out


# --- Activities, requests, comments ----------------------------------------------------------------------

def request_activity_json(request: RequestRecord) -> dict[str, Any]:
    """An open request as Databricks lists it: a REQUESTED_TRANSITION activity by the requester."""
    out: dict[str, Any] = {
        "id": str(request.id),
        "activity_type": "REQUESTED_TRANSITION",
        "from_stage": request.from_stage,
        "to_stage": request.to_stage,
        "user_id": request.requested_by,
        "creation_timestamp": epoch_ms(request.created_at),
        "last_updated_timestamp": epoch_ms(request.updated_at),
    }
    if request.comment:
        out["comment"] = request.comment
    return out


def transition_request_json(request: RequestRecord, viewer: str) -> dict[str, Any]:
    """``TransitionRequest`` (create's answer). The requester may cancel it; whether the viewer may approve
    depends on levels and policies, which the native inbox answers, so no other action is advertised."""
    out = request_activity_json(request)
    if viewer == request.requested_by:
        out["available_actions"] = ["CANCEL_TRANSITION_REQUEST"]
    return out


# Audit action -> Databricks activity type. A transition recorded with reason "archive_existing_versions"
# is the side effect of another version's promotion: SYSTEM_TRANSITION.
_ACTIVITY_TYPES = {
    "request.created": "REQUESTED_TRANSITION",
    "request.approved": "APPROVED_REQUEST",
    "request.rejected": "REJECTED_REQUEST",
    "request.cancelled": "CANCELLED_REQUEST",
    "comment.created": "NEW_COMMENT",
    "version.transitioned": "APPLIED_TRANSITION",
}


def activity_type(event: AuditRecord) -> str | None:
    if event.action == "version.transitioned" and event.details.get("reason") == "archive_existing_versions":
        return "SYSTEM_TRANSITION"
    return _ACTIVITY_TYPES.get(event.action)


def _system_comment(event: AuditRecord) -> str | None:
    if event.details.get("reason") == "archive_existing_versions":
        return (f"Archived because version {event.details.get('promoted_version')} was moved to "
                f"{event.from_stage} with archive_existing_versions.")
    return None


def activity_json(event: AuditRecord) -> dict[str, Any] | None:
    """An ``Activity`` made from an audit event (None for events that are not activities)."""
    kind = activity_type(event)
    if kind is None:
        return None
    when = epoch_ms(event.occurred_at)
    out: dict[str, Any] = {
        "id": str(event.id),
        "activity_type": kind,
        "user_id": event.actor,
        "creation_timestamp": when,
        "last_updated_timestamp": when,
    }
    if event.from_stage is not None:
        out["from_stage"] = event.from_stage
    if event.to_stage is not None:
        out["to_stage"] = event.to_stage
    comment = event.details.get("comment")
    if isinstance(comment, str) and comment:
        out["comment"] = comment
    system_comment = _system_comment(event)
    if system_comment:
        out["system_comment"] = system_comment
    return out


def comment_json(comment: CommentRecord, viewer: str, viewer_is_admin: bool) -> dict[str, Any]:
    """``CommentObject``. Only the author may edit a comment; the author or an admin may delete it."""
    actions = []
    if viewer == comment.author:
        actions.append("EDIT_COMMENT")
    if viewer == comment.author or viewer_is_admin:
        actions.append("DELETE_COMMENT")
    out: dict[str, Any] = {
        "id": str(comment.id),
        "user_id": comment.author,
        "comment": comment.comment,
        "creation_timestamp": epoch_ms(comment.created_at),
        "last_updated_timestamp": epoch_ms(comment.updated_at),
    }
    if actions:
        out["available_actions"] = actions
    return out


# --- Webhooks ----------------------------------------------------------------------------------------------

def webhook_json(webhook: WebhookRecord) -> dict[str, Any]:
    """``RegistryWebhook`` without secrets: no HMAC secret, no Authorization value, no job access token."""
    out: dict[str, Any] = {
        "id": str(webhook.id),
        "events": list(webhook.events),
        "status": webhook.status,
        "creation_timestamp": epoch_ms(webhook.created_at),
        "last_updated_timestamp": epoch_ms(webhook.updated_at),
    }
    if webhook.model_name is not None:
        out["model_name"] = webhook.model_name
    if webhook.description:
        out["description"] = webhook.description
    if webhook.http_url is not None:
        out["http_url_spec"] = {"url": webhook.http_url,
                                "enable_ssl_verification": webhook.enable_ssl_verification}
    if webhook.job_id is not None:
        job: dict[str, Any] = {"job_id": webhook.job_id}
        if webhook.job_workspace_url:
            job["workspace_url"] = webhook.job_workspace_url
        out["job_spec"] = job
    return out
