"""Grants: read and change who holds which level, per model and registry-wide (DESIGN §3). The rules that
use grants (levels, authorisation, hiding) live in ``access.py``."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select

from .. import names
from ..audit import Action, lock_registry_chain, record, record_registry
from ..auth import Actor, validate_user_name
from ..cache.hub import GRANTS
from ..errors import AlreadyExists, InvalidArgument, NotFound, PermissionDenied
from ..lifecycle import Permission
from ..orm import PermissionGrant, RegisteredModel, User
from ..db.loading import find_model, lock_model
from ..db.records import GrantRecord
from ..db.unit_of_work import announce, now, read_only, session, use_case
from .access import (
    EVERYONE,
    NO_ACCESS,
    REGISTRY_GRANTS_READ,
    authorize,
    authorize_registry,
    level as level_of,
    model_by_id,
    readable,
    require_admin,
)


def parse_level(raw: object) -> Permission:
    """Accept READ / CAN_READ / MANAGE_STAGING / CAN_MANAGE_STAGING_VERSIONS … (native and Databricks names),
    and DENY (a veto: ``access.py``)."""
    if isinstance(raw, Permission):
        return raw
    if isinstance(raw, str):
        key = raw.strip().upper()
        if key != "DENY":
            key = key.removeprefix("CAN_").removesuffix("_VERSIONS")
        if key in Permission.__members__ and (key != "DENY" or raw.strip().upper() == "DENY"):
            return Permission[key]
    raise InvalidArgument(
        f"Unknown permission level {raw!r}; use one of {[p.name for p in Permission]}.", {"field": "level"}
    )


def _check_principal(principal: object) -> str:
    if principal == EVERYONE:
        return EVERYONE
    name = validate_user_name(principal, field="principal")
    if _share_lock_user(name) is None:
        raise InvalidArgument(f"No user named {name}.", {"field": "principal"})
    return name


def _share_lock_user(name: str) -> int | None:
    """The user's id, their row share-locked until commit: a user being deleted (``identities.delete_user``
    locks the row FOR UPDATE) cannot be granted anything that would outlive them."""
    return session().scalar(select(User.id).where(User.name == name).with_for_update(read=True))


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


def _replace(model_id: int | None, wanted: dict[str, Permission], actor: Actor, when, merge: bool,
             *, drop: frozenset[str] = frozenset(), keep_denials: bool = False) -> dict:
    """Write the scope's grants: ``wanted`` over the current ones (``merge``) or instead of them; ``drop``
    removes principals; ``keep_denials`` keeps the DENY grants of principals ``wanted`` does not name (a
    dialect without DENY replacing what it can express must not lift a veto it cannot even show)."""
    s = session()
    scope = PermissionGrant.model_id.is_(None) if model_id is None else PermissionGrant.model_id == model_id
    before = {g.principal: g.level for g in s.scalars(select(PermissionGrant).where(scope))}
    if merge:
        after = dict(before)
    elif keep_denials:
        after = {p: level for p, level in before.items() if level == Permission.DENY}
    else:
        after = {}
    after.update({p: int(level) for p, level in wanted.items()})
    for principal in drop:
        after.pop(principal, None)
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
                          *, merge: bool = False, keep_denials: bool = False) -> list[GrantRecord]:
    """Replace (or, with ``merge``, add to) the model's direct grants. MANAGE only."""
    model = lock_model(names.model_name(model_name))
    authorize(actor, model, Permission.MANAGE, "Changing permissions")
    wanted = _normalise_grants(grants)
    when = now()
    change = _replace(model.id, wanted, actor, when, merge, keep_denials=keep_denials)
    record(session(), actor, Action.PERMISSIONS_CHANGED, model_id=model.id, model_name=model.name,
           details=change, now=when)
    return _grants(model.id)


@use_case
def revoke_model_permission(actor: Actor, model_name: str, principal: object) -> list[GrantRecord]:
    """Remove one principal's direct grant on the model (registry-wide grants stay). MANAGE only."""
    model, _ = _grant_scope(actor, model_name, "Changing permissions")
    name = principal if principal == EVERYONE else validate_user_name(principal, field="principal")
    if _direct_level(model.id, name) is None:
        raise NotFound(f"{name} holds no grant on {model.name}.", {"model": model.name, "principal": name})
    _write_one(actor, model, {}, drop=frozenset({name}))
    return _grants(model.id)


@read_only
def get_registry_permissions(actor: Actor) -> list[GrantRecord]:
    authorize_registry(actor, REGISTRY_GRANTS_READ, "Reading registry-wide permissions")
    return _grants(None)


@use_case
def set_registry_permissions(actor: Actor, grants: list[tuple[object, object]],
                             *, merge: bool = False, keep_denials: bool = False) -> list[GrantRecord]:
    require_admin(actor, "Changing registry-wide permissions")
    wanted = _normalise_grants(grants)
    when = now()
    change = _replace(None, wanted, actor, when, merge, keep_denials=keep_denials)
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
def set_acl(actor: Actor, model_id: int | None, grants: list[tuple[object, object]], *, merge: bool = False,
            keep_denials: bool = False) -> Acl:
    """Replace (or, with ``merge``, add to) the direct grants of a model (MANAGE) or of the registry (admins).

    The answer is not re-authorised: whoever just changed the grants may have removed their own. The
    name-addressed use cases run through ``__wrapped__`` (their bodies), inside this one transaction."""
    if model_id is None:
        set_registry_permissions.__wrapped__(actor, grants, merge=merge, keep_denials=keep_denials)
    else:
        model = model_by_id(actor, model_id, Permission.MANAGE, "Changing permissions", lock=True)
        set_model_permissions.__wrapped__(actor, model.name, grants, merge=merge, keep_denials=keep_denials)
    return _acl(model_id)


# --- One user's grant on one model, or registry-wide (model None: MLflow's resource id "*"), as MLflow's
# auth API manages them: create (refused if the user has one), update (refused if not), delete, read. -------

def _grant_scope(actor: Actor, model_name: str | None, doing: str) -> tuple[RegisteredModel | None, int | None]:
    """The model, locked (MANAGE needed on it), or None for the registry itself (admins only)."""
    if model_name is None:
        require_admin(actor, f"{doing} registry-wide")
        lock_registry_chain(session())  # registry-wide grant writes queue here, as model writes on the model
        return None, None
    model = lock_model(names.model_name(model_name))
    authorize(actor, model, Permission.MANAGE, doing)
    return model, model.id


def _existing_user(name: str) -> tuple[str, int]:
    """The user's name and id; NotFound in MLflow's words."""
    name = validate_user_name(name, field="username")
    user_id = _share_lock_user(name)
    if user_id is None:
        raise NotFound(f"User with username={name} not found", {"user": name})
    return name, user_id


def _direct_level(model_id: int | None, principal: str) -> int | None:
    scope = PermissionGrant.model_id.is_(None) if model_id is None else PermissionGrant.model_id == model_id
    return session().scalar(select(PermissionGrant.level).where(scope, PermissionGrant.principal == principal))


def _on(model: RegisteredModel | None) -> str:
    return "the registry" if model is None else f"registered model {model.name}"


def _write_one(actor: Actor, model: RegisteredModel | None, wanted: dict[str, Permission],
               drop: frozenset[str] = frozenset()) -> None:
    when = now()
    change = _replace(None if model is None else model.id, wanted, actor, when, merge=True, drop=drop)
    if model is None:
        record_registry(session(), actor, Action.PERMISSIONS_CHANGED, details=change, now=when)
    else:
        record(session(), actor, Action.PERMISSIONS_CHANGED, model_id=model.id, model_name=model.name,
               details=change, now=when)


@use_case
def grant_user(actor: Actor, user_name: str, model_name: str | None, level: Permission, *,
               update: bool = False) -> tuple[int, Permission]:
    """Give one user a level (DENY included) on a model (MANAGE) or registry-wide (admins). Creating refuses
    a user who already has a grant there (AlreadyExists), updating one who has none (NotFound), as MLflow
    does; updating to the level held changes nothing and records nothing. Returns the user's id and level."""
    model, model_id = _grant_scope(actor, model_name, "Changing permissions")
    user, user_id = _existing_user(user_name)
    level = parse_level(level)
    held = _direct_level(model_id, user)
    if held is not None and not update:
        raise AlreadyExists(f"Permission for user={user} on {_on(model)} already exists.", {"user": user})
    if held is None and update:
        raise NotFound(f"Permission for user={user} on {_on(model)} not found.", {"user": user})
    if held != level:
        _write_one(actor, model, {user: level})
    return user_id, level


@use_case
def revoke_user(actor: Actor, user_name: str, model_name: str | None) -> None:
    """Remove one user's grant on a model (MANAGE) or registry-wide (admins); NotFound if there is none."""
    model, model_id = _grant_scope(actor, model_name, "Changing permissions")
    user, _ = _existing_user(user_name)
    if _direct_level(model_id, user) is None:
        raise NotFound(f"Permission for user={user} on {_on(model)} not found.", {"user": user})
    _write_one(actor, model, {}, drop=frozenset({user}))


@read_only
def user_grant(actor: Actor, user_name: str, model_name: str | None) -> tuple[int, Permission]:
    """One user's own grant on a model (MANAGE needed) or registry-wide (registry-wide READ); NotFound if none."""
    if model_name is None:
        authorize_registry(actor, REGISTRY_GRANTS_READ, "Reading registry-wide permissions")
        model = None
    else:
        model = find_model(names.model_name(model_name))
        authorize(actor, model, Permission.MANAGE, "Reading permissions")
    user, user_id = _existing_user(user_name)
    held = _direct_level(None if model is None else model.id, user)
    if held is None:
        raise NotFound(f"Permission for user={user} on {_on(model)} not found.", {"user": user})
    return user_id, Permission(held)


@read_only
def effective_level(actor: Actor, user_name: str, model_name: str | None) -> int:
    """What a user holds on a model (or registry-wide), all grants and vetoes considered: a Permission,
    DENY, or 0 for nothing. Yourself, or anyone for admins. A model that does not exist is held by nobody
    (0), and so, when you ask about yourself, is one you may not read: the answer must not tell you it exists
    any more than a 404 would, so a veto on you shows as nothing."""
    user = validate_user_name(user_name, field="username")
    if not actor.is_admin and actor.name != user:
        raise PermissionDenied("Reading another user's permissions requires an admin.", {"required": "ADMIN"})
    is_admin = session().scalar(select(User.is_admin).where(User.name == user))
    if is_admin is None:
        raise NotFound(f"User with username={user} not found", {"user": user})
    subject = Actor(user, is_admin=is_admin)
    if model_name is None:
        held = level_of(subject, None)
    else:
        model = session().scalars(select(RegisteredModel).where(
            RegisteredModel.name == names.model_name(model_name))).one_or_none()
        held = NO_ACCESS if model is None else level_of(subject, model.id)
    if not actor.is_admin and held < Permission.READ:
        return NO_ACCESS
    return held


def drop_principal(actor: Actor, name: str) -> dict:
    """Remove the grants to ``name`` (a user being deleted), inside the caller's transaction: each model
    whose grants change is locked first, in id order (the one lock order), and records the change in its
    own chain. Returns what was removed, for the caller's registry-wide event. The caller then locks the
    user, which waits for grants being written to them, and sweeps up those (``drop_stragglers``)."""
    s = session()
    held = dict(s.execute(select(PermissionGrant.model_id, PermissionGrant.level)
                          .where(PermissionGrant.principal == name)).all())
    models = s.scalars(select(RegisteredModel).where(RegisteredModel.id.in_([m for m in held if m is not None]))
                       .order_by(RegisteredModel.id).with_for_update()).all()
    for model in models:
        _write_one(actor, model, {}, drop=frozenset({name}))
    if None in held:
        _replace(None, {}, actor, now(), merge=True, drop=frozenset({name}))
    return {"registry_grant": None if held.get(None) is None else Permission(held[None]).name,
            "model_grants_removed": [m.name for m in models]}


@read_only
def user_model_grants(actor: Actor, user_name: str) -> list[tuple[str, Permission]]:
    """A user's direct grants on models, by model name (what MLflow lists with the user). Yourself, or anyone
    for admins; a user sees only the grants on models they may read, so a veto does not name its model."""
    user = validate_user_name(user_name, field="username")
    if not actor.is_admin and actor.name != user:
        raise PermissionDenied("Reading another user's permissions requires an admin.", {"required": "ADMIN"})
    stmt = (select(RegisteredModel.name, PermissionGrant.level)
            .join(RegisteredModel, RegisteredModel.id == PermissionGrant.model_id)
            .where(PermissionGrant.principal == user, readable(actor, PermissionGrant.model_id))
            .order_by(RegisteredModel.name))
    return [(name, Permission(held)) for name, held in session().execute(stmt)]


def drop_stragglers(name: str) -> list[int | None]:
    """After the user row is locked FOR UPDATE: remove grants to ``name`` committed since ``drop_principal``
    read them (no new ones can start: granting share-locks the user). Their models were not locked, so they
    are recorded in the caller's registry-wide event. Returns their model ids (None: registry-wide)."""
    gone = list(session().scalars(delete(PermissionGrant).where(PermissionGrant.principal == name)
                                  .returning(PermissionGrant.model_id)))
    if gone:
        announce(session(), GRANTS)
    return gone
