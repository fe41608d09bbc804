"""Who may do what, in one place: levels, authorisation, what a read may show, hiding as "not found", and
locking the model a child row belongs to (DESIGN §3).

Effective level = the highest grant to the actor or to ``*`` (every authenticated user), on the model or on
the registry, unless one of those grants is DENY: then the level is DENY, below READ, whatever else is
granted (an explicit veto, as MLflow's DENY). Admins hold everything: a DENY does not bind them, since
they could lift it themselves and the registry must keep someone able to repair its grants; to bar an
admin, take the admin role away first. A model the actor cannot even READ is reported as not found, so its
existence does not leak; addressed by a child's id (a request, a comment, a webhook), it is that child that
is "not found", since the model's own message would name the model.

The reads that answer for every model from the registry-wide level (``may_read``, ``holding``, the replay's
``may_read_remembered``) take it from the actor's ``standing``: that level together with the models vetoed
for them one by one, read in one query and remembered as one entry, so no path reads past a DENY and the
serving path still costs one cache lookup per request.

Writes decide with a level read from the database, under the model's row lock. Reads (search filters, the
serving path, response replay) may use levels from the per-process cache (``cache/access.py``), which are
as fresh as any cached answer: dropped when a grant change is announced.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import ColumnElement, and_, exists, false, or_, select, text, true

from ..auth import Actor
from ..cache import access as cached
from ..cache.store import Store
from ..db.loading import lock_model_by_id, model_not_found
from ..db.unit_of_work import read_once, reading, session
from ..errors import NotFound, PermissionDenied
from ..extensions import caches
from ..lifecycle import Permission
from ..orm import PermissionGrant, RegisteredModel

EVERYONE = "*"
NO_ACCESS = 0
REGISTRY = 0  # the registry's own "model id" in level lookups (model ids start at 1)

DENIED = int(Permission.DENY)

# Any DENY among the grants that reach the principal wins; otherwise the highest grant (NULL: none).
_LEVEL = text("""
SELECT CASE WHEN min(level) < 0 THEN -1 ELSE max(level) END FROM permission_grants
WHERE principal IN (:principal, '*') AND (model_id IS NULL OR model_id = :model_id)
""")


class ModelLike(Protocol):
    id: int
    name: str


def _load_level(principal: str, model_id: int) -> int:
    scope = None if model_id == REGISTRY else model_id
    return session().execute(_LEVEL, {"principal": principal, "model_id": scope}).scalar() or NO_ACCESS


def level(actor: Actor, model_id: int | None, *, cached_ok: bool = False) -> int:
    """The actor's effective level on a model (``model_id`` None: on the registry itself); 0 = none, DENIED
    (-1) = vetoed. ``cached_ok``: a read may take it from the per-process cache."""
    if actor.is_admin:
        return int(Permission.MANAGE)
    key = REGISTRY if model_id is None else model_id
    current = caches() if cached_ok else None
    if current is not None and reading() and cached.cached_level(current.store, actor.name, key) is None:
        current = None  # inside one read: looked up once and shared with its other use cases (not remembered)
    if current is None:
        return read_once(("level", actor.name, key), lambda: _load_level(actor.name, key))
    return cached.level(current.store, actor.name, key, lambda: _load_level(actor.name, key))


_LEVELS = text("""
SELECT m.id, CASE WHEN min(g.level) < 0 THEN -1 ELSE max(g.level) END
FROM unnest(CAST(:model_ids AS bigint[])) AS m(id)
LEFT JOIN permission_grants g
  ON g.principal IN (:principal, '*') AND (g.model_id IS NULL OR g.model_id = m.id)
GROUP BY m.id
""")


def levels(actor: Actor, model_ids) -> dict[int, int]:
    """``level`` for many models in one query (from the database): model id -> effective level."""
    ids = list(set(model_ids))
    if actor.is_admin:
        return dict.fromkeys(ids, int(Permission.MANAGE))
    held = dict(session().execute(_LEVELS, {"principal": actor.name, "model_ids": ids}).all())
    return {i: held.get(i) or NO_ACCESS for i in ids}


@dataclass(frozen=True)
class Standing:
    """A principal's registry-wide level (DENIED if vetoed registry-wide: every model is barred) and the
    models vetoed for them one by one (by a DENY to them or to ``*``)."""

    registry: int
    vetoed: frozenset[int]

    def bars(self, model_id: int | None) -> bool:
        return self.registry == DENIED or (model_id is not None and model_id in self.vetoed)


ADMIN_STANDING = Standing(int(Permission.MANAGE), frozenset())

_STANDING = text("""
SELECT model_id, level FROM permission_grants
WHERE principal IN (:principal, '*') AND (model_id IS NULL OR level < 0)
""")


def _load_standing(principal: str) -> Standing:
    rows = session().execute(_STANDING, {"principal": principal}).all()
    registry = [held for model_id, held in rows if model_id is None]
    level_there = DENIED if any(held < 0 for held in registry) else max(registry, default=NO_ACCESS)
    return Standing(level_there, frozenset(model_id for model_id, _ in rows if model_id is not None))


def standing(actor: Actor) -> Standing:
    """The actor's standing, from the per-process cache (dropped with levels when any grant changes)."""
    if actor.is_admin:
        return ADMIN_STANDING
    current = caches()
    if current is not None and reading() and cached.cached_standing(current.store, actor.name) is None:
        # Inside one read: looked up once and shared by its use cases, but not remembered: a value read earlier
        # in the read must not be stored under a label taken now (a change in between would be missed).
        current = None
    if current is None:
        return read_once(("standing", actor.name), lambda: _load_standing(actor.name))
    return cached.standing(current.store, actor.name, lambda: _load_standing(actor.name))


def authorize(actor: Actor, model: ModelLike, needed: Permission, doing: str,
              *, missing: NotFound | None = None) -> int:
    """Raise unless the actor holds ``needed`` on the model; return the actor's level. Without READ the model
    is not found: ``missing`` is what to report instead of the model's own "not found" (for a child row
    addressed by its id)."""
    held = level(actor, model.id)
    if held < Permission.READ:
        raise missing or model_not_found(model.name)
    if held < needed:
        raise PermissionDenied(
            f"{doing} on registered model {model.name} requires {needed.name}; you have {Permission(held).name}.",
            {"model": model.name, "required": needed.name, "held": Permission(held).name},
        )
    return held


def authorize_registry(actor: Actor, needed: Permission, doing: str) -> None:
    held = level(actor, None)
    if held < needed:
        name = Permission(held).name if held else "no permission"
        raise PermissionDenied(f"{doing} requires registry-wide {needed.name}; you have {name}.",
                               {"required": needed.name, "held": name})


def require_admin(actor: Actor, doing: str) -> None:
    if not actor.is_admin:
        raise PermissionDenied(f"{doing} requires an admin.", {"required": "ADMIN"})


def may_read(actor: Actor, model_id: int) -> bool:
    """READ on the model, for reads (cached levels). A registry-wide grant (the common case: ``*`` READ)
    answers for every model from one entry, so a new model costs no permission query, unless a DENY bars
    the actor from this model."""
    held = standing(actor)
    if held.bars(model_id):
        return False
    return held.registry >= Permission.READ or level(actor, model_id, cached_ok=True) >= Permission.READ


def may_read_remembered(store: Store, actor: Actor, model_id: int) -> bool:
    """READ on the model, from remembered levels only (no query; for the response replay, which runs outside
    any app context): True only when the cache proves it. False means "unknown or denied": the caller must
    take the ordinary path, which decides and remembers."""
    if actor.is_admin:
        return True
    known = cached.cached_standing(store, actor.name)
    if known is None or known.bars(model_id):
        return False
    if known.registry >= Permission.READ:
        return True
    held = cached.cached_level(store, actor.name, model_id)
    return held is not None and held >= Permission.READ


def holding(actor: Actor, needed: Permission, model_id_column) -> ColumnElement[bool]:
    """A WHERE clause keeping rows whose model the actor holds ``needed`` on (no clause needed for admins and
    for actors with a registry-wide grant of that level and no DENY). A NULL model id matches no grant: rows
    about no model (or a deleted one) pass only on the registry-wide level."""
    held = standing(actor)
    if held.registry == DENIED:
        return false()
    if held.registry >= needed:
        kept = true()
    else:
        kept = exists().where(PermissionGrant.model_id == model_id_column,
                              PermissionGrant.principal.in_([actor.name, EVERYONE]),
                              PermissionGrant.level >= int(needed))
    if held.vetoed:
        kept = and_(kept, or_(model_id_column.is_(None), model_id_column.notin_(sorted(held.vetoed))))
    return kept


def readable(actor: Actor, model_id_column) -> ColumnElement[bool]:
    """A WHERE clause keeping rows whose model the actor may READ."""
    return holding(actor, Permission.READ, model_id_column)


# Reading the registry-wide grants needs this registry-wide level (the grants of one model: MANAGE on it).
REGISTRY_GRANTS_READ = Permission.READ


def may_read_registry_grants(actor: Actor) -> bool:
    """For filtering reads (cached level); the permissions API itself checks the database."""
    return standing(actor).registry >= REGISTRY_GRANTS_READ


def lock_parent(model_id_of_child, missing: NotFound) -> RegisteredModel:
    """Lock the model a child row belongs to (``model_id_of_child``: a scalar SELECT of its model id), the
    lock every model write takes first; ``missing`` when the child or its model is gone. Reload the child
    afterwards: it may have changed while we waited for the lock."""
    model_id = session().scalar(model_id_of_child)
    model = lock_model_by_id(model_id) if model_id is not None else None
    if model is None:
        raise missing
    return model


def model_by_id(actor: Actor, model_id: int, needed: Permission, doing: str, *, lock: bool) -> RegisteredModel:
    """A model addressed by id (Databricks' permissions API), if the actor may ``needed`` on it; one the
    actor cannot read is "not found" by id."""
    missing = NotFound(f"Registered model with id {model_id} not found.", {"registered_model_id": str(model_id)})
    if lock:
        model = lock_parent(select(RegisteredModel.id).where(RegisteredModel.id == model_id), missing)
    else:
        model = session().get(RegisteredModel, model_id)
        if model is None:
            raise missing
    authorize(actor, model, needed, doing, missing=missing)
    return model


def grant_creator(actor: Actor, model_id: int, when) -> None:
    """Whoever creates a model manages it (Databricks' rule), unless they are an admin already."""
    if not actor.is_admin:
        session().add(PermissionGrant(model_id=model_id, principal=actor.name, level=int(Permission.MANAGE),
                                      granted_by=actor.name, created_at=when))

