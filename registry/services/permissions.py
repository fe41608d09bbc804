"""Who may do what: the permission ladder per model with a registry-wide default (DESIGN §3).

Effective level = the highest grant to the actor or to ``*`` (every authenticated user), on the model or on
the registry. Admins hold everything. A model the actor cannot even READ is reported as not found, so its
existence does not leak.
"""
from __future__ import annotations

from dataclasses import dataclass

from flask import current_app
from sqlalchemy import ColumnElement, delete, exists, func, or_, select, true

from .. import names
from ..audit import Action, record, record_registry
from ..changes import publish_grants
from ..auth import Actor, validate_user_name
from ..errors import InvalidArgument, NotFound, PermissionDenied
from ..lifecycle import Permission
from ..orm import PermissionGrant, RegisteredModel, User
from . import serving
from ..db.loading import ModelRef, find_model, lock_model, model_not_found
from ..db.records import GrantRecord
from ..db.unit_of_work import now, read_only, session, use_case

EVERYONE = "*"
NO_ACCESS = 0


def _principals(actor: Actor) -> list[str]:
    return [actor.name, EVERYONE]


def level_on_model(actor: Actor, model_id: int | None) -> int:
    """The actor's effective level on a model (``model_id`` None: on the registry itself); 0 = none."""
    if actor.is_admin:
        return int(Permission.MANAGE)
    scope = PermissionGrant.model_id.is_(None)
    if model_id is not None:
        scope = or_(scope, PermissionGrant.model_id == model_id)
    level = session().scalar(
        select(func.max(PermissionGrant.level)).where(PermissionGrant.principal.in_(_principals(actor)), scope)
    )
    return level or NO_ACCESS


def authorize(actor: Actor, model: RegisteredModel | ModelRef, needed: Permission, doing: str) -> int:
    """Raise unless the actor holds ``needed`` on the model; return the actor's level."""
    level = level_on_model(actor, model.id)
    if level < Permission.READ:
        raise model_not_found(model.name)
    if level < needed:
        raise PermissionDenied(
            f"{doing} on registered model {model.name} requires {needed.name}; you have {Permission(level).name}.",
            {"model": model.name, "required": needed.name, "held": Permission(level).name},
        )
    return level


def authorize_registry(actor: Actor, needed: Permission, doing: str) -> None:
    level = level_on_model(actor, None)
    if level < needed:
        held = Permission(level).name if level else "no permission"
        raise PermissionDenied(
            f"{doing} requires registry-wide {needed.name}; you have {held}.",
            {"required": needed.name, "held": held},
        )


def require_admin(actor: Actor, doing: str) -> None:
    if not actor.is_admin:
        raise PermissionDenied(f"{doing} requires an admin.", {"required": "ADMIN"})


def _registry_level_for_reads(actor: Actor) -> int:
    """The registry-wide level, from the per-process cache when known. Only for filtering what a read shows:
    the cache is dropped when any grant changes (a notification, milliseconds after the commit), which a
    read may lag by that much; writes check against the database, under the model lock."""
    if actor.is_admin:
        return int(Permission.MANAGE)
    return serving.cache_for(current_app).level_or_load(
        actor.name, serving.REGISTRY_LEVEL, lambda: level_on_model(actor, None))


def holding(actor: Actor, needed: Permission, model_id_column) -> ColumnElement[bool]:
    """A WHERE clause keeping rows whose model the actor holds ``needed`` on (no clause needed for admins and
    for actors with a registry-wide grant of that level). A NULL model id matches no grant: rows about no
    model (or a deleted one) pass only on the registry-wide level."""
    if _registry_level_for_reads(actor) >= needed:
        return true()
    return exists().where(
        PermissionGrant.model_id == model_id_column,
        PermissionGrant.principal.in_(_principals(actor)),
        PermissionGrant.level >= int(needed),
    )


def readable_models(actor: Actor, model_id_column) -> ColumnElement[bool]:
    """A WHERE clause keeping rows whose model the actor may READ."""
    return holding(actor, Permission.READ, model_id_column)


# Reading the registry-wide grants needs this registry-wide level (the grants of one model: MANAGE on it).
REGISTRY_GRANTS_READ = Permission.READ


def may_read_registry_grants(actor: Actor) -> bool:
    """For filtering reads (see ``_registry_level_for_reads``); the permissions API checks the database."""
    return _registry_level_for_reads(actor) >= REGISTRY_GRANTS_READ


def grant_creator(actor: Actor, model_id: int, when) -> None:
    """Whoever creates a model manages it (Databricks' rule), unless they are an admin already."""
    if not actor.is_admin:
        session().add(PermissionGrant(model_id=model_id, principal=actor.name, level=int(Permission.MANAGE),
                                      granted_by=actor.name, created_at=when))


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
    publish_grants(s)
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


def _model_by_id(actor: Actor, model_id: int, needed: Permission, doing: str, *, lock: bool) -> RegisteredModel:
    """The model, if the actor may ``needed`` on it. Addressed by id, a model the actor cannot read is
    "not found" by id: the usual message would name it."""
    name = session().scalar(select(RegisteredModel.name).where(RegisteredModel.id == model_id))
    missing = NotFound(f"Registered model with id {model_id} not found.", {"registered_model_id": str(model_id)})
    if name is None:
        raise missing
    model = lock_model(name) if lock else find_model(name)
    if level_on_model(actor, model.id) < Permission.READ:
        raise missing
    authorize(actor, model, needed, doing)
    return model


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
        _model_by_id(actor, model_id, Permission.MANAGE, "Reading permissions", lock=False)
    return _acl(model_id)


@use_case
def set_acl(actor: Actor, model_id: int | None, grants: list[tuple[object, object]], *, merge: bool = False) -> Acl:
    """Replace (or, with ``merge``, add to) the direct grants of a model (MANAGE) or of the registry (admins).

    The answer is not re-authorised: whoever just changed the grants may have removed their own. The
    name-addressed use cases run through ``__wrapped__`` (their bodies), inside this one transaction."""
    if model_id is None:
        set_registry_permissions.__wrapped__(actor, grants, merge=merge)
    else:
        model = _model_by_id(actor, model_id, Permission.MANAGE, "Changing permissions", lock=True)
        set_model_permissions.__wrapped__(actor, model.name, grants, merge=merge)
    return _acl(model_id)
