"""/api/v1 access control: who am I, users, tokens, permissions, approval policies (per stage, and per alias:
"protected aliases")."""
from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, jsonify

from ...schemas import native as wire
from ...services import identities, permissions, policies
from .http import args, body, current_actor

bp = Blueprint("native_access", __name__, url_prefix="/api/v1")


@bp.get("/me")
def me():
    actor = current_actor()
    return jsonify({"name": actor.name, "is_admin": actor.is_admin})


@bp.get("/users")
def list_users():
    return jsonify({"users": [wire.user_json(u) for u in identities.list_users(current_actor())]})


@bp.post("/users")
def create_user():
    data = body(wire.UserCreate)
    return jsonify(wire.user_json(identities.create_user(current_actor(), data["name"], is_admin=data["is_admin"]))), 201


@bp.post("/tokens")
def create_token():
    """The token is in this response only; the registry keeps just its hash."""
    data = body(wire.TokenCreate)
    actor = current_actor()
    expires = data.get("expires_in_seconds")
    record, token = identities.create_token(
        actor, data.get("user", actor.name), description=data["description"],
        expires_in=timedelta(seconds=expires) if expires else None, scope=data["scope"],
    )
    return jsonify({**wire.token_json(record), "token": token}), 201


@bp.get("/tokens")
def list_tokens():
    q = args(wire.TokenListArgs)
    return jsonify({"tokens": [wire.token_json(t) for t in identities.list_tokens(current_actor(), q.get("user"))]})


@bp.delete("/tokens/<int:token_id>")
def revoke_token(token_id: int):
    return jsonify(wire.token_json(identities.revoke_token(current_actor(), token_id)))


def _grants(data) -> list[tuple[str, str]]:
    return [(g["principal"], g["level"]) for g in data["grants"]]


@bp.get("/models/<name>/permissions")
def get_model_permissions(name: str):
    return jsonify(wire.grants_json(permissions.get_model_permissions(current_actor(), name)))


@bp.put("/models/<name>/permissions")
def replace_model_permissions(name: str):
    grants = _grants(body(wire.GrantsBody))
    return jsonify(wire.grants_json(permissions.set_model_permissions(current_actor(), name, grants)))


@bp.patch("/models/<name>/permissions")
def merge_model_permissions(name: str):
    grants = _grants(body(wire.GrantsBody))
    return jsonify(wire.grants_json(permissions.set_model_permissions(current_actor(), name, grants, merge=True)))


@bp.get("/permissions")
def get_registry_permissions():
    return jsonify(wire.grants_json(permissions.get_registry_permissions(current_actor())))


@bp.put("/permissions")
def replace_registry_permissions():
    grants = _grants(body(wire.GrantsBody))
    return jsonify(wire.grants_json(permissions.set_registry_permissions(current_actor(), grants)))


@bp.patch("/permissions")
def merge_registry_permissions():
    grants = _grants(body(wire.GrantsBody))
    return jsonify(wire.grants_json(permissions.set_registry_permissions(current_actor(), grants, merge=True)))


@bp.get("/models/<name>/approval-policies")
def get_model_policies(name: str):
    return jsonify(wire.policies_json(policies.get_model_policies(current_actor(), name)))


@bp.put("/models/<name>/approval-policies/<stage>")
def set_model_policy(name: str, stage: str):
    data = body(wire.PolicyBody)
    return jsonify(wire.policy_json(policies.set_model_policy(
        current_actor(), name, stage, required_approvals=data["required_approvals"],
        creator_may_not_approve=data["creator_may_not_approve"])))


@bp.get("/models/<name>/approval-policies/aliases/<alias>")
def get_model_alias_policy(name: str, alias: str):
    return jsonify(wire.policy_json(policies.get_model_alias_policy(current_actor(), name, alias)))


@bp.put("/models/<name>/approval-policies/aliases/<alias>")
def set_model_alias_policy(name: str, alias: str):
    data = body(wire.PolicyBody)
    return jsonify(wire.policy_json(policies.set_model_alias_policy(
        current_actor(), name, alias, required_approvals=data["required_approvals"],
        creator_may_not_approve=data["creator_may_not_approve"])))


@bp.get("/approval-policies")
def get_registry_policies():
    return jsonify(wire.policies_json(policies.get_registry_policies(current_actor())))


@bp.get("/approval-policies/aliases/<alias>")
def get_registry_alias_policy(alias: str):
    return jsonify(wire.policy_json(policies.get_registry_alias_policy(current_actor(), alias)))


@bp.put("/approval-policies/aliases/<alias>")
def set_registry_alias_policy(alias: str):
    data = body(wire.PolicyBody)
    return jsonify(wire.policy_json(policies.set_registry_alias_policy(
        current_actor(), alias, required_approvals=data["required_approvals"],
        creator_may_not_approve=data["creator_may_not_approve"])))


@bp.put("/approval-policies/<stage>")
def set_registry_policy(stage: str):
    data = body(wire.PolicyBody)
    return jsonify(wire.policy_json(policies.set_registry_policy(
        current_actor(), stage, required_approvals=data["required_approvals"],
        creator_may_not_approve=data["creator_may_not_approve"])))
