"""MLflow's auth API on the wire (``api/mlflow/auth.py``): its permission names mapped onto ours, and its
user and permission objects.

MLflow's levels on a registered model, and ours (README "Using MLflow's auth API"):

* READ → READ; EDIT → EDIT; MANAGE → MANAGE; DENY → DENY (a veto, as in MLflow 3.17+).
* USE → READ. USE gates nothing MLflow checks on a registered model (it is the tier of gateway resources);
  here READ already includes using a model (loading it, serving lookups), so it is shown back as READ.
* NO_PERMISSIONS: not grantable through the per-user API (MLflow 3.17+ refuses it too: no grant expresses
  "nothing"). Through the legacy ``registered-models/permissions`` API it was the per-user veto of the
  default permission, which is DENY here, and DENY is shown there as NO_PERMISSIONS.

Ours shown in MLflow's terms: MANAGE_STAGING and MANAGE_PRODUCTION are EDIT (MLflow has nothing between EDIT
and MANAGE; MANAGE there includes deleting and changing permissions, which those levels do not), and no
level at all is NO_PERMISSIONS.
"""
from __future__ import annotations

from typing import Any, Iterable

from ..db.records import UserRecord
from ..errors import InvalidArgument
from ..lifecycle import Permission

REGISTERED_MODEL = "registered_model"
WORKSPACE = "workspace"
ALL_RESOURCES = "*"

MLFLOW_LEVELS = ("READ", "USE", "EDIT", "MANAGE", "NO_PERMISSIONS", "DENY")
_GRANTABLE = ("DENY", "EDIT", "MANAGE", "READ", "USE")  # sorted, as MLflow lists them
_TO_OURS = {"READ": Permission.READ, "USE": Permission.READ, "EDIT": Permission.EDIT,
            "MANAGE": Permission.MANAGE, "DENY": Permission.DENY}


def grantable_level(raw: object) -> Permission:
    """A level for MLflow 3.17's ``users/permissions/grant``, refused in MLflow's words."""
    if not isinstance(raw, str) or raw not in MLFLOW_LEVELS:
        raise InvalidArgument(f"Invalid permission '{raw}'. Valid permissions are: {MLFLOW_LEVELS}",
                              {"field": "permission"})
    if raw not in _TO_OURS:
        raise InvalidArgument(f"Invalid permission '{raw}' for resource_type='{REGISTERED_MODEL}'. "
                              f"Resource-level grants accept only: {_GRANTABLE}.", {"field": "permission"})
    return _TO_OURS[raw]


def legacy_level(raw: object) -> Permission:
    """A level for the pre-3.17 ``registered-models/permissions`` API, where NO_PERMISSIONS was the veto."""
    if raw == "NO_PERMISSIONS":
        return Permission.DENY
    return grantable_level(raw)


def level_name(held: int) -> str:
    """Our level (a Permission, DENY, or 0 for nothing) in MLflow's terms."""
    if held == Permission.DENY:
        return "DENY"
    if held < Permission.READ:
        return "NO_PERMISSIONS"
    if held >= Permission.MANAGE:
        return "MANAGE"
    return "READ" if held == Permission.READ else "EDIT"


def legacy_level_name(held: int) -> str:
    return "NO_PERMISSIONS" if held == Permission.DENY else level_name(held)


def resource(resource_type: object, resource_id: object) -> str | None:
    """The model named by MLflow's (resource_type, resource_id), or None for ``*`` (registry-wide)."""
    if resource_type == WORKSPACE:
        raise InvalidArgument("resource_type 'workspace' is not supported by the per-user permission "
                              "convenience APIs.", {"field": "resource_type"})
    if resource_type != REGISTERED_MODEL:
        raise InvalidArgument(f"Invalid resource type {resource_type!r}: this server is a model registry and "
                              f"holds only '{REGISTERED_MODEL}' resources.", {"field": "resource_type"})
    if not isinstance(resource_id, str) or not resource_id:
        raise InvalidArgument("Missing value for required parameter 'resource_id'.", {"field": "resource_id"})
    return None if resource_id == ALL_RESOURCES else resource_id


def user_json(user: UserRecord, model_grants: Iterable[tuple[str, Permission]] = ()) -> dict[str, Any]:
    """MLflow's ``User``; the permission lists are what clients before 3.17 read (experiments: none here)."""
    return {
        "id": user.id,
        "username": user.name,
        "is_admin": user.is_admin,
        "experiment_permissions": [],
        "registered_model_permissions": [
            {"name": name, "user_id": user.id, "permission": legacy_level_name(held)} for name, held in model_grants
        ],
    }


def user_permission_json(held: int) -> dict[str, Any]:
    """``users/permissions/get``: ``allowed`` is whether the user may use the model, which here is READ."""
    return {"allowed": held >= Permission.READ, "permission": level_name(held)}


def registered_model_permission_json(model: str, user_id: int, held: int) -> dict[str, Any]:
    return {"registered_model_permission": {"name": model, "user_id": user_id,
                                            "permission": legacy_level_name(held)}}
