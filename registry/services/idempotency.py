"""``Idempotency-Key`` on native creates: a create sent again with its key creates nothing more.

A create that carries a key claims it in its own transaction, before it writes: it inserts the row
(caller, key, a fingerprint of the request). A concurrent request with the same key waits on that insert
(PostgreSQL makes a conflicting insert wait for the first transaction's outcome), so of several retries
racing each other exactly one creates:

* the first create commits its resource together with the key; a failed create rolls back its claim too,
  so the key stays free for a corrected request (only successful creates are remembered);
* a later request with the key and the same fingerprint answers the resource created the first time (as it
  is now: the adapter marks the answer ``Idempotent-Replayed: true``);
* the same key with another request (another route or body) is refused: ``IdempotencyKeyReused`` (409).

Keys are per caller and kept for ``KEEP``; each claim deletes a few expired ones. A replayed create is
authorised as a read of what it created (the caller created it; if they lost access since, they lose it).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert

from ..auth import Actor
from ..errors import Conflict, IdempotencyKeyReused
from ..db.unit_of_work import now, session
from ..orm import IdempotencyKey, ModelVersion, RegisteredModel

KEEP = timedelta(hours=24)
_SWEEP = 20  # expired keys deleted per claim
# SKIP LOCKED: concurrent sweeps take different rows instead of waiting on (or deadlocking with) each other.
_SWEEP_EXPIRED = text("DELETE FROM idempotency_keys WHERE ctid = ANY(ARRAY("
                      "SELECT ctid FROM idempotency_keys WHERE created_at < :cutoff LIMIT :n FOR UPDATE SKIP LOCKED))"
                      " OR (principal = :principal AND key = :key AND created_at < :cutoff)")


@dataclass
class Key:
    """A request's key and fingerprint; ``replayed`` is set when its answer is the earlier create's."""

    value: str
    fingerprint: str
    replayed: bool = False


def claim(actor: Actor, key: Key) -> IdempotencyKey | None:
    """In the caller's transaction: None when the key is now this request's (write, then ``settle``), or the
    row of the earlier create made with it."""
    s = session()
    when = now()
    s.execute(_SWEEP_EXPIRED, {"cutoff": when - KEEP, "n": _SWEEP, "principal": actor.name, "key": key.value})
    claimed = s.execute(
        insert(IdempotencyKey)
        .values(principal=actor.name, key=key.value, fingerprint=key.fingerprint, created_at=when)
        .on_conflict_do_nothing(index_elements=["principal", "key"])
        .returning(IdempotencyKey.key)
    ).scalar_one_or_none()
    if claimed is not None:
        return None
    earlier = s.scalars(select(IdempotencyKey).where(IdempotencyKey.principal == actor.name,
                                                     IdempotencyKey.key == key.value)).one()
    if earlier.fingerprint != key.fingerprint:
        raise IdempotencyKeyReused(
            "This Idempotency-Key was already used for a different request (another route or body); nothing "
            "was done. Send a new key for a new request.", {"idempotency_key": key.value})
    key.replayed = True
    return earlier


def settle(actor: Actor, key: Key, model_id: int, version: int | None = None) -> None:
    """Record what the create that claimed ``key`` made (same transaction)."""
    row = session().get(IdempotencyKey, (actor.name, key.value))
    row.model_id, row.version = model_id, version


def earlier_model(row: IdempotencyKey) -> RegisteredModel:
    model = session().get(RegisteredModel, row.model_id)
    if model is None:
        raise _gone(row)
    return model


def earlier_version(row: IdempotencyKey) -> ModelVersion:
    found = session().scalars(select(ModelVersion).where(ModelVersion.model_id == row.model_id,
                                                         ModelVersion.version == row.version)).one_or_none()
    if found is None:
        raise _gone(row)
    return found


def _gone(row: IdempotencyKey) -> Conflict:
    return Conflict("What this Idempotency-Key created has been deleted since; nothing was done.",
                    {"idempotency_key": row.key})
