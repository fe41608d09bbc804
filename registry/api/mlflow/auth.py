"""MLflow's auth API (what ``mlflow.server.get_app_client("basic-auth")`` calls), over our users and grants.

* ``/api/2.0/mlflow/users/{create,get,update-password,update-admin,delete}``: MLflow users are our users; a
  password set here lets the user sign in with HTTP Basic (MLFLOW_TRACKING_USERNAME/PASSWORD) besides tokens.
* ``/api/3.0/mlflow/users/permissions/{grant,revoke,get}`` (MLflow 3.17+'s client): one user's grant on a
  registered model (``resource_id`` its name, or ``*``: registry-wide).
* ``/api/2.0/mlflow/registered-models/permissions/{create,get,update,delete}``: the same grants through the
  API of clients before 3.17.

Who may call them is decided by the use cases (``services/identities.py``, ``services/permissions.py``), as
MLflow decides it: admins manage users, users read themselves and change their own password, MANAGE on a
model manages its grants, registry-wide grants are the admins'. Level names: ``schemas/mlflow_auth.py``.
"""
from __future__ import annotations

from flask import Blueprint

from ...errors import InvalidArgument
from ...schemas import mlflow_auth as wire
from ...services import identities, permissions
from ..authn import current_actor
from . import bp, ok
from .wire import params

# /api/3.0/mlflow and /ajax-api/3.0/mlflow (registered by ``api/mlflow/__init__.py``).
bp3 = Blueprint("mlflow_v3", __name__)


# --- users ------------------------------------------------------------------------------------------------

@bp.post("/users/create")
def create_user():
    p = params()
    user = identities.create_user(current_actor(), p.required("username"), password=p.required("password"))
    return ok({"user": wire.user_json(user)})


@bp.get("/users/get")
def get_user():
    actor, name = current_actor(), params().required("username")
    user = identities.get_user(actor, name)
    return ok({"user": wire.user_json(user, permissions.user_model_grants(actor, name))})


@bp.patch("/users/update-password")
def update_user_password():
    p = params()
    identities.set_password(current_actor(), p.required("username"), p.required("password"),
                            current_password=p.string("current_password"))
    return ok()


@bp.patch("/users/update-admin")
def update_user_admin():
    p = params()
    if "is_admin" not in p:
        raise InvalidArgument("Missing value for required parameter 'is_admin'.", {"field": "is_admin"})
    identities.set_admin(current_actor(), p.required("username"), p.boolean("is_admin"))
    return ok()


@bp.delete("/users/delete")
def delete_user():
    identities.delete_user(current_actor(), params().required("username"))
    return ok()


# --- one user's permission on a registered model (MLflow 3.17+) -------------------------------------------

def _target():
    p = params()
    model = wire.resource(p.required("resource_type"), p.required("resource_id"))
    return p, p.required("username"), model


@bp3.post("/users/permissions/grant")
def grant_user_permission():
    p, user, model = _target()
    level = wire.grantable_level(p.required("permission"))
    permissions.grant_user(current_actor(), user, model, level)
    return ok()


@bp3.post("/users/permissions/revoke")
def revoke_user_permission():
    _, user, model = _target()
    permissions.revoke_user(current_actor(), user, model)
    return ok()


@bp3.get("/users/permissions/get")
def get_user_permission():
    _, user, model = _target()
    return ok(wire.user_permission_json(permissions.effective_level(current_actor(), user, model)))


# --- the same, through the registered-models/permissions API of clients before 3.17 -------------------------

@bp.post("/registered-models/permissions/create")
def create_registered_model_permission():
    p = params()
    name, user = p.required("name"), p.required("username")
    user_id, held = permissions.grant_user(current_actor(), user, name, wire.legacy_level(p.required("permission")))
    return ok(wire.registered_model_permission_json(name, user_id, held))


@bp.get("/registered-models/permissions/get")
def get_registered_model_permission():
    p = params()
    name = p.required("name")
    user_id, held = permissions.user_grant(current_actor(), p.required("username"), name)
    return ok(wire.registered_model_permission_json(name, user_id, held))


@bp.patch("/registered-models/permissions/update")
def update_registered_model_permission():
    p = params()
    level = wire.legacy_level(p.required("permission"))
    permissions.grant_user(current_actor(), p.required("username"), p.required("name"), level, update=True)
    return ok()


@bp.delete("/registered-models/permissions/delete")
def delete_registered_model_permission():
    p = params()
    permissions.revoke_user(current_actor(), p.required("username"), p.required("name"))
    return ok()
