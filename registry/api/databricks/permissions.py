"""Databricks' registered-model permissions API: ``/api/2.0/permissions/registered-models/{id}``.

``{id}`` is a model's ``id`` (``databricks/registered-models/get`` gives it) or ``root``, the registry
itself (registry-wide grants, which every model inherits). GET reads, PUT replaces the object's direct
grants, PATCH adds to them; ``/permissionLevels`` describes the levels.

Principals: ``user_name`` (and ``service_principal_name``, also a user here) name users; the group ``users``
is every authenticated user (our ``*``); the group ``admins`` always holds CAN_MANAGE and cannot be changed;
other groups do not exist here.

DENY grants (vetoes, ``services/access.py``) have no Databricks level: they are shown as ``DENY``, cannot be
set here, and a PUT keeps those of the principals it does not name (it replaces what Databricks can
express; it must not silently lift a veto). Naming a principal replaces their grant, a DENY included.
"""
from __future__ import annotations

from flask import Blueprint, jsonify

from ...errors import InvalidArgument, NotFound
from ...schemas import databricks as wire
from ...services import permissions
from ..authn import current_actor
from ..mlflow.wire import params

bp = Blueprint("databricks_permissions", __name__)


def _model_id(raw: str) -> int | None:
    if raw == wire.ROOT_ID:
        return None
    if raw.isdigit() and len(raw) <= 18:
        return int(raw)
    raise NotFound(f"Registered model with id {raw} not found.", {"registered_model_id": raw})


def _principal(entry: dict) -> str | None:
    """The grant's principal; None for an ``admins`` entry, which changes nothing (admins manage all)."""
    given = [key for key in ("user_name", "group_name", "service_principal_name") if entry.get(key) is not None]
    if len(given) != 1:
        raise InvalidArgument("Each access control entry names exactly one of user_name, group_name or "
                              "service_principal_name.", {"field": "access_control_list"})
    value = entry[given[0]]
    if given[0] != "group_name":
        return value
    if value == wire.EVERYONE_GROUP:
        return permissions.EVERYONE
    if value == wire.ADMINS_GROUP:
        if entry.get("permission_level") != "CAN_MANAGE":
            raise InvalidArgument("The admins group always holds CAN_MANAGE.", {"field": "access_control_list"})
        return None
    raise InvalidArgument(f"Unknown group {value!r}: the only groups are '{wire.EVERYONE_GROUP}' (every user) "
                          f"and '{wire.ADMINS_GROUP}'.", {"field": "access_control_list"})


def _grants() -> list[tuple[object, object]]:
    acl = params().raw("access_control_list")
    if acl is None:
        acl = []
    if not isinstance(acl, list) or not all(isinstance(entry, dict) for entry in acl):
        raise InvalidArgument("access_control_list must be a list of objects.", {"field": "access_control_list"})
    grants = []
    for entry in acl:
        principal = _principal(entry)
        level = entry.get("permission_level")
        if level == wire.DENY_NAME:
            raise InvalidArgument("DENY is not a Databricks permission level: set a veto with "
                                  "PUT /api/v1/models/{name}/permissions or MLflow's permissions API.",
                                  {"field": "permission_level"})
        if level not in wire.LEVELS_BY_NAME:
            raise InvalidArgument(f"Unknown permission_level {level!r}; one of {list(wire.LEVELS_BY_NAME)}.",
                                  {"field": "permission_level"})
        if principal is not None:
            grants.append((principal, wire.LEVELS_BY_NAME[level].name))
    return grants


def _acl(acl: permissions.Acl):
    return jsonify(wire.permissions_json(acl.model_id, acl.direct, acl.inherited))


@bp.get("/registered-models/<registered_model_id>")
def get_permissions(registered_model_id: str):
    return _acl(permissions.get_acl(current_actor(), _model_id(registered_model_id)))


@bp.put("/registered-models/<registered_model_id>")
def set_permissions(registered_model_id: str):
    model_id = _model_id(registered_model_id)
    return _acl(permissions.set_acl(current_actor(), model_id, _grants(), keep_denials=True))


@bp.patch("/registered-models/<registered_model_id>")
def update_permissions(registered_model_id: str):
    model_id = _model_id(registered_model_id)
    return _acl(permissions.set_acl(current_actor(), model_id, _grants(), merge=True))


@bp.get("/registered-models/<registered_model_id>/permissionLevels")
def get_permission_levels(registered_model_id: str):
    _model_id(registered_model_id)
    return jsonify(wire.permission_levels_json())
