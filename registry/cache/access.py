"""Who is asking and what they may read, remembered: token digest (or user and password digest) -> actor,
principal x model -> level, principal -> standing (registry-wide level and vetoed models).

All live in the one store under the one freshness rule: credential entries are scoped ``TOKENS`` (dropped
when any token is revoked or any user's password, admin role or existence changes), level and veto entries
``GRANTS`` (dropped when any grant changes). Expiry is checked on every hit. The loaders are the services'
database lookups; only successful lookups are remembered.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Callable

from .hub import GRANTS, TOKENS
from .store import Store

_SMALL = 200  # bytes an actor or a level entry costs, about


def cached_actor(store: Store, digest: str, kind: str = "token") -> Any | None:
    """The actor a credential digest belongs to (``kind``: "token", or "password" for a digest of a user name
    and password), if remembered and unexpired; None means "ask the database"."""
    entry = store.get((kind, digest))
    if entry is None:
        return None
    actor, expires_at = entry.payload
    if expires_at is not None and expires_at <= datetime.now(timezone.utc):
        return None
    return actor


def actor(store: Store, digest: str, load: Callable[[], tuple[Any, datetime | None]], kind: str = "token") -> Any:
    """``load()`` returns (actor, expires_at) or raises; the answer is remembered under the freshness rule."""
    hit = cached_actor(store, digest, kind)
    if hit is not None:
        return hit
    label = store.hub.label()
    found, expires_at = load()
    store.put((kind, digest), TOKENS, label, (found, expires_at), _SMALL)
    return found


def cached_level(store: Store, principal: str, model_id: int) -> int | None:
    entry = store.get(("level", principal, model_id))
    return None if entry is None else entry.payload


def level(store: Store, principal: str, model_id: int, load: Callable[[], int]) -> int:
    """The principal's level on a model (``model_id`` 0: registry-wide), remembered under the freshness rule."""
    hit = cached_level(store, principal, model_id)
    if hit is not None:
        return hit
    label = store.hub.label()
    found = load()
    store.put(("level", principal, model_id), GRANTS, label, found, _SMALL)
    return found


def cached_standing(store: Store, principal: str) -> Any | None:
    entry = store.get(("standing", principal))
    return None if entry is None else entry.payload


def standing(store: Store, principal: str, load: Callable[[], Any]) -> Any:
    """The principal's registry-wide level and vetoes (``services.access.Standing``), remembered under the
    freshness rule."""
    hit = cached_standing(store, principal)
    if hit is not None:
        return hit
    label = store.hub.label()
    found = load()
    store.put(("standing", principal), GRANTS, label, found, _SMALL)
    return found
