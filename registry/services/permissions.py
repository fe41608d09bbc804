"""Grants: read and change who holds which level, per model and registry-wide (DESIGN §3). The rules that
use grants (levels, authorisation, hiding) live in ``access.py``."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, exists, select

from .. import names
from ..audit import Action, record, record_registry
from ..auth import Actor, validate_user_name
from ..cache.hub import GRANTS
from ..errors import InvalidArgument, NotFound
from ..lifecycle import Permission
from ..orm import PermissionGrant, User
from ..db.loading import find_model, lock_model
from ..db.records import GrantRecord
from ..db.unit_of_work import announce, now, read_only, session, use_case
from .access import EVERYONE, REGISTRY_GRANTS_READ, authorize, authorize_registry, model_by_id, require_admin


def parse_level(raw: object) -> Permission:
    """Accept READ / CAN_READ / MANAGE_STAGING / CAN_MANAGE_STAGING_VERSIONS … (native and Databricks names)."""
    if isinstance(raw, str):
        key = raw.strip().upper().removeprefix("CAN_").removesuffix("_VERSIONS")
        if key in Permission.__members__:
            return Permission[key]
    raise InvalidArgument(
        f"Unknown permission level {raw!r}; use one of {[p.name for p in Permission]}.", {"field": "level"}
    )


def _check_principal(principal: object) -> str:
    if principal == EVERYONE:
        return EVERYONE
    name = validate_user_name(principal, field="principal")
    if not session().scalar(select(exists().where(User.name == name))):
        raise InvalidArgument(f"No user named {name}.", {"field": "principal"})
    return name


def _normalise_grants(grants: list[tuple[object, object]]) -> dict[str, Permission]:
    result: dict[str, Permission] = {}
    for principal, level in grants:
        name = _check_principal(principal)
        if name in result:
            raise InvalidArgument(f"Principal {name} is listed twice.", {"field": "principal"})
        result[name] = parse_level(level)
    return result


def _grants(model_id: int | None) -> list[GrantRecord]:
    scope = PermissionGrant.model_id.is_(None) if model_id is None else PermissionGrant.model_id == model_id
    rows = session().scalars(select(PermissionGrant).where(scope).order_by(PermissionGrant.principal)).all()
    return [GrantRecord(g.principal, Permission(g.level).name) for g in rows]


def _replace(model_id: int | None, wanted: dict[str, Permission], actor: Actor, when, merge: bool) -> dict:
    s = session()
    scope = PermissionGrant.model_id.is_(None) if model_id is None else PermissionGrant.model_id == model_id
    before = {g.principal: g.level for g in s.scalars(select(PermissionGrant).where(scope))}
    after = dict(before) if merge else {}
    after.update({p: int(level) for p, level in wanted.items()})
    s.execute(delete(PermissionGrant).where(scope))
    announce(s, GRANTS)
    for principal, level in after.items():
        s.add(PermissionGrant(model_id=model_id, principal=principal, level=level, granted_by=actor.name,
                              created_at=when))
    s.flush()
    render = lambda grants: {p: Permission(level).name for p, level in sorted(grants.items())}  # noqa: E731
    return {"before": render(before), "after": render(after)}


@read_only
def get_model_permissions(actor: Actor, model_name: str) -> list[GrantRecord]:
    model = find_model(names.model_name(model_name))
    authorize(actor, model, Permission.MANAGE, "Reading permissions")
    return _grants(model.id)


@use_case
def set_model_permissions(actor: Actor, model_name: str, grants: list[tuple[object, object]],
                          *, merge: bool = False) -> list[GrantRecord]:
    """Replace (or, with ``merge``, add to) the model's direct grants. MANAGE only."""
    model = lock_model(names.model_name(model_name))
    authorize(actor, model, Permission.MANAGE, "Changing permissions")
    wanted = _normalise_grants(grants)
    when = now()
    change = _replace(model.id, wanted, actor, when, merge)
    record(session(), actor, Action.PERMISSIONS_CHANGED, model_id=model.id, model_name=model.name,
           details=change, now=when)
    return _grants(model.id)


@use_case
def revoke_model_permission(actor: Actor, model_name: str, principal: object) -> list[GrantRecord]:
    """Remove one principal's direct grant on the model (registry-wide grants stay). MANAGE only."""
    model = lock_model(names.model_name(model_name))
    authorize(actor, model, Permission.MANAGE, "Changing permissions")
    name = principal if principal == EVERYONE else validate_user_name(principal, field="principal")
    held = {g.principal: Permission[g.level] for g in _grants(model.id)}
    if held.pop(name, None) is None:
        raise NotFound(f"{name} holds no grant on {model.name}.", {"model": model.name, "principal": name})
    when = now()
    change = _replace(model.id, held, actor, when, merge=False)
    record(session(), actor, Action.PERMISSIONS_CHANGED, model_id=model.id, model_name=model.name,
           details=change, now=when)
    return _grants(model.id)


@read_only
def get_registry_permissions(actor: Actor) -> list[GrantRecord]:
    authorize_registry(actor, REGISTRY_GRANTS_READ, "Reading registry-wide permissions")
    return _grants(None)


@use_case
def set_registry_permissions(actor: Actor, grants: list[tuple[object, object]],
                             *, merge: bool = False) -> list[GrantRecord]:
    require_admin(actor, "Changing registry-wide permissions")
    wanted = _normalise_grants(grants)
    when = now()
    change = _replace(None, wanted, actor, when, merge)
    record_registry(session(), actor, Action.PERMISSIONS_CHANGED, details=change, now=when)
    return _grants(None)


@read_only
def my_level(actor: Actor, model_name: str) -> Permission:
    model = find_model(names.model_name(model_name))
    return Permission(authorize(actor, model, Permission.READ, "Reading"))


# --- Addressed by model id (Databricks' permissions API: /permissions/registered-models/{id}, where the id
# ``None`` stands for the registry itself, Databricks' "root" object) ---------------------------------------

@dataclass(frozen=True)
class Acl:
    """A model's direct grants and the registry-wide grants it inherits (for the registry: its own)."""

    model_id: int | None
    direct: tuple[GrantRecord, ...]
    inherited: tuple[GrantRecord, ...]


def _acl(model_id: int | None) -> Acl:
    if model_id is None:
        return Acl(None, tuple(_grants(None)), ())
    return Acl(model_id, tuple(_grants(model_id)), tuple(_grants(None)))


@read_only
def get_acl(actor: Actor, model_id: int | None) -> Acl:
    """Reading a model's permissions needs MANAGE on it; the registry's, registry-wide READ."""
    if model_id is None:
        authorize_registry(actor, REGISTRY_GRANTS_READ, "Reading registry-wide permissions")
    else:
        model_by_id(actor, model_id, Permission.MANAGE, "Reading permissions", lock=False)
    return _acl(model_id)


@use_case
def set_acl(actor: Actor, model_id: int | None, grants: list[tuple[object, object]], *, merge: bool = False) -> Acl:
    """Replace (or, with ``merge``, add to) the direct grants of a model (MANAGE) or of the registry (admins).

    The answer is not re-authorised: whoever just changed the grants may have removed their own. The
    name-addressed use cases run through ``__wrapped__`` (their bodies), inside this one transaction."""
    if model_id is None:
        set_registry_permissions.__wrapped__(actor, grants, merge=merge)
    else:
        model = model_by_id(actor, model_id, Permission.MANAGE, "Changing permissions", lock=True)
        set_model_permissions.__wrapped__(actor, model.name, grants, merge=merge)
    return _acl(model_id)
