"""The audit trail: events written in the caller's transaction, hash-chained per model.

Chain rule: every model-scoped write locks the model row before it records events, so the events of one
chain are appended by one transaction at a time and ``seq`` / ``prev_hash`` never race. Events about the
registry as a whole (users, tokens, registry-wide permissions and policies) form chain 0, serialised by a
transaction-scoped advisory lock instead (model ids start at 1, so chain 0 is never a model's). ``verify_chain``
recomputes every hash and proves that no row was altered or removed from the middle of a chain.

Every event records ``correlation_id``: the ``X-Request-Id`` of the HTTP request that made it (None from the
command line), so an event leads to that request's log lines. It is hashed when present.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from typing import Any, Iterable, Iterator

from sqlalchemy import event as sa_event, func, insert, select
from sqlalchemy.orm import Session

from .auth import Actor
from .telemetry.context import current_request_id
from .orm import AuditEvent, RegisteredModel


class Action(str, Enum):
    MODEL_CREATED = "model.created"
    MODEL_UPDATED = "model.updated"
    MODEL_RENAMED = "model.renamed"
    MODEL_DELETED = "model.deleted"
    MODEL_TAG_SET = "model.tag_set"
    MODEL_TAG_DELETED = "model.tag_deleted"
    VERSION_CREATED = "version.created"
    VERSION_UPDATED = "version.updated"
    VERSION_DELETED = "version.deleted"
    VERSION_TAG_SET = "version.tag_set"
    VERSION_TAG_DELETED = "version.tag_deleted"
    VERSION_TRANSITIONED = "version.transitioned"
    ALIAS_SET = "alias.set"
    ALIAS_DELETED = "alias.deleted"
    REQUEST_CREATED = "request.created"
    REQUEST_APPROVED = "request.approved"
    REQUEST_REJECTED = "request.rejected"
    REQUEST_CANCELLED = "request.cancelled"
    REQUEST_SUPERSEDED = "request.superseded"
    COMMENT_CREATED = "comment.created"
    COMMENT_UPDATED = "comment.updated"
    COMMENT_DELETED = "comment.deleted"
    PERMISSIONS_CHANGED = "permissions.changed"
    POLICY_CHANGED = "policy.changed"
    USER_CREATED = "user.created"
    USER_UPDATED = "user.updated"
    USER_DELETED = "user.deleted"
    TOKEN_CREATED = "token.created"
    TOKEN_REVOKED = "token.revoked"
    WEBHOOK_CREATED = "webhook.created"
    WEBHOOK_UPDATED = "webhook.updated"
    WEBHOOK_DELETED = "webhook.deleted"
    AUDIT_VERIFIED = "audit.verified"
    WEBHOOK_REDELIVERED = "webhook.redelivered"

    def __str__(self) -> str:
        return self.value


ACTIONS = frozenset(a.value for a in Action)


def _canonical(event: dict[str, Any]) -> bytes:
    return json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


# The one list of an event's fields, in column order, with their SQL types (for the one-statement insert at
# commit): what ``_append`` writes, what ``compute_hash`` covers (all but ``hash`` itself) and what ``verify``
# recomputes. Written out rather than read from the ORM table on purpose: a column added to the table later
# must not silently join the hash, which would break the verification of every event recorded before it.
EVENT_FIELDS: tuple[tuple[str, str], ...] = (
    ("chain_id", "bigint"), ("seq", "integer"), ("occurred_at", "timestamptz"), ("actor", "text"),
    ("action", "text"), ("model_id", "bigint"), ("model_name", "text"), ("version", "integer"),
    ("run_id", "text"), ("from_stage", "text"), ("to_stage", "text"), ("request_id", "bigint"),
    ("details", "jsonb"), ("correlation_id", "text"), ("prev_hash", "text"), ("hash", "text"),
)
HASHED_FIELDS = tuple(name for name, _ in EVENT_FIELDS if name != "hash")
_HASHED = frozenset(HASHED_FIELDS)


def compute_hash(**event: Any) -> str:
    """SHA-256 of the canonical JSON of exactly the HASHED_FIELDS (a missing or unknown one is a TypeError)."""
    if event.keys() != _HASHED:
        missing, unknown = _HASHED - event.keys(), event.keys() - _HASHED
        raise TypeError(f"compute_hash needs exactly the event's fields; missing {sorted(missing)}, "
                        f"unknown {sorted(unknown)}")
    # Microsecond UTC timestamps survive a round trip through timestamptz exactly.
    payload = {**event, "occurred_at": event["occurred_at"].astimezone(timezone.utc).isoformat()}
    if payload["correlation_id"] is None:
        # Added later (migration 0015): an event without one hashes exactly as every event recorded before it.
        del payload["correlation_id"]
    return hashlib.sha256(_canonical(payload)).hexdigest()


def record(
    session: Session,
    actor: Actor,
    action: Action,
    *,
    model_id: int,
    model_name: str,
    version: int | None = None,
    run_id: str | None = None,
    from_stage: str | None = None,
    to_stage: str | None = None,
    request_id: int | None = None,
    details: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> None:
    """Append one event to the model's chain. The caller must hold the model row lock (see module doc)."""
    return _append(session, actor, action, now, chain_id=model_id, details=details or {}, model_id=model_id,
                   model_name=model_name, version=version, run_id=run_id or None, from_stage=from_stage,
                   to_stage=to_stage, request_id=request_id)


REGISTRY_CHAIN = 0
_REGISTRY_CHAIN_LOCK = 0x5265_6741_7564  # advisory lock key for chain 0


def lock_registry_chain(session: Session) -> None:
    """Serialise registry-wide writes for the rest of the transaction (re-entrant within it)."""
    session.execute(select(func.pg_advisory_xact_lock(_REGISTRY_CHAIN_LOCK)))


def record_registry(session: Session, actor: Actor, action: Action, *, details: dict[str, Any] | None = None,
                    now: datetime | None = None) -> None:
    """Append an event about the registry as a whole to chain 0 (users, tokens, registry-wide rules)."""
    lock_registry_chain(session)
    return _append(session, actor, action, now, chain_id=REGISTRY_CHAIN, details=details or {})


def _append(session: Session, actor: Actor, action: Action, now: datetime | None, *, chain_id: int,
            details: dict[str, Any], **about: Any) -> None:
    """``about``: the event's other fields that say what it is about (model_id, model_name, version, ...);
    those not given are None. A misspelt one is refused by ``compute_hash``."""
    model_id = about.get("model_id")
    if model_id is not None:
        session.info.setdefault(_APPENDED_KEY, set()).add(model_id)
    # The chain's head is looked up once per transaction: the chain lock is held until commit, so nobody
    # else can append in between (a transition that archives ten versions writes eleven events). Writers
    # that locked the model row usually know it already (``known_head``); otherwise it is queried.
    heads = session.info.setdefault(_HEADS_KEY, {})
    head = heads.get(chain_id)
    if head is None:
        head = session.execute(
            select(AuditEvent.seq, AuditEvent.hash)
            .where(AuditEvent.chain_id == chain_id)
            .order_by(AuditEvent.seq.desc())
            .limit(1)
        ).first()
    seq, prev_hash = (head[0] + 1, head[1]) if head and head[0] else (1, None)
    fields: dict[str, Any] = dict.fromkeys(HASHED_FIELDS)
    fields.update(about, chain_id=chain_id, seq=seq, occurred_at=now or datetime.now(timezone.utc),
                  actor=actor.name, action=str(action), details=details, prev_hash=prev_hash,
                  correlation_id=current_request_id())
    fields["hash"] = compute_hash(**fields)
    # Written at commit, all of the transaction's events in one statement (see _commit_changes).
    session.info.setdefault(_PENDING_KEY, []).append(fields)
    heads[chain_id] = (seq, fields["hash"])


_HEADS_KEY = "registry_audit_heads"
_PENDING_KEY = "registry_audit_pending"
_APPENDED_KEY = "registry_audit_models"


def known_head(session: Session, model_id: int, seq: int, hash_: str | None) -> None:
    """The model's chain head as read from its row *under the row lock* (``registered_models.audit_seq`` /
    ``audit_hash``): saves the query for it. Seq 0 means the chain is empty."""
    session.info.setdefault(_HEADS_KEY, {}).setdefault(model_id, (seq, hash_))


def restored(session: Session, model_id: int, seq: int, hash_: str | None) -> None:
    """A model's chain was written back whole from a backup (``services/backups.py``), not appended to: at
    commit its row keeps this head and the change is announced like any other (its generation moves)."""
    session.info.setdefault(_HEADS_KEY, {})[model_id] = (seq, hash_)
    session.info.setdefault(_APPENDED_KEY, set()).add(model_id)


_EVENT_COLUMNS = tuple(name for name, _ in EVENT_FIELDS)
# The transaction's buffered events as one INSERT over arrays: a fragment of the unit of work's commit
# statement (db/unit_of_work.py), which also moves each changed model's chain head and generation.
INSERT_EVENTS = (f"INSERT INTO audit_events ({', '.join(_EVENT_COLUMNS)}) SELECT * FROM unnest("
                 + ", ".join(f"CAST(:{name} AS {sql_type}[])" for name, sql_type in EVENT_FIELDS) + ")")


def _event_arrays(pending: list[dict[str, Any]]) -> dict[str, list]:
    arrays: dict[str, list] = {column: [] for column in _EVENT_COLUMNS}
    for event in pending:
        for column in _EVENT_COLUMNS:
            value = event[column]
            arrays[column].append(json.dumps(value, ensure_ascii=False) if column == "details" else value)
    return arrays


def write_pending(session: Session) -> None:
    """Insert the transaction's buffered events now, before reading them back (commit writes the rest)."""
    pending = session.info.pop(_PENDING_KEY, None)
    if pending:
        session.execute(insert(AuditEvent.__table__), pending)


@dataclass(frozen=True)
class Appended:
    """What a transaction added to the trail, for its commit: the events still to insert (as ``INSERT_EVENTS``
    parameters), and each model whose chain it appended to, with that chain's new head (None, None when
    its events were rolled back to a savepoint: the model row keeps its head)."""

    events: dict[str, list]
    heads: dict[int, tuple[int | None, str | None]]

    @property
    def empty(self) -> bool:
        return not self.heads and not self.events["seq"]


def take_appended(session: Session) -> Appended:
    models = session.info.pop(_APPENDED_KEY, None) or set()
    pending = session.info.pop(_PENDING_KEY, None) or []
    heads = session.info.get(_HEADS_KEY, {})
    return Appended(_event_arrays(pending), {m: heads.get(m, (None, None)) for m in sorted(models)})


@sa_event.listens_for(Session, "after_commit")
@sa_event.listens_for(Session, "after_soft_rollback")
def _forget(session: Session, *_args) -> None:
    # Heads are only valid while the transaction holds the chain's lock.
    session.info.pop(_HEADS_KEY, None)
    session.info.pop(_PENDING_KEY, None)


@sa_event.listens_for(Session, "after_rollback")
def _forget_models(session: Session) -> None:
    session.info.pop(_APPENDED_KEY, None)


@dataclass(frozen=True)
class ChainBreak:
    event_id: int | None
    chain_id: int
    seq: int | None
    reason: str


def _recompute(event: AuditEvent) -> str:
    return compute_hash(**{name: getattr(event, name) for name in HASHED_FIELDS})


def _iter_events(session: Session, chain_id: int | None) -> Iterator[AuditEvent]:
    stmt = select(AuditEvent).order_by(AuditEvent.chain_id, AuditEvent.seq).execution_options(yield_per=2000)
    if chain_id is not None:
        stmt = stmt.where(AuditEvent.chain_id == chain_id)
    yield from session.scalars(stmt)


def verify_chain(session: Session, chain_id: int | None = None) -> tuple[int, ChainBreak | None]:
    """Walk every chain (or the one given: a model's id), then check each existing model's recorded head
    against the end of its chain; return (events checked, first break or None)."""
    ends: dict[int, tuple[int, str]] = {}
    checked, problem = check_chains(_iter_events(session, chain_id), ends)
    if problem is not None:
        return checked, problem
    return checked, _check_heads(session, ends, chain_id)


def check_chains(events: Iterable[Any], ends: dict[int, tuple[int, str]] | None = None) -> tuple[int, ChainBreak | None]:
    """The one chain walk, over rows from the database or from an export file (``registry audit verify
    --export``): ``events`` in (chain_id, seq) order, each with ``id`` and the HASHED_FIELDS and ``hash`` as
    attributes. Fills ``ends`` with each chain's last (seq, hash), for the caller to compare with the heads
    the models recorded; returns (events checked, first break or None)."""
    checked = 0
    chain_id: int | None = None
    expected_seq = 1
    prev_hash: str | None = None
    ends = {} if ends is None else ends
    for event in events:
        if event.chain_id != chain_id:
            chain_id, expected_seq, prev_hash = event.chain_id, 1, None
        if event.seq != expected_seq:
            return checked, ChainBreak(
                event.id, event.chain_id, event.seq,
                f"expected seq {expected_seq} but found {event.seq}: events were removed",
            )
        if event.prev_hash != prev_hash:
            return checked, ChainBreak(
                event.id, event.chain_id, event.seq, "prev_hash does not match the previous event's hash"
            )
        if _recompute(event) != event.hash:
            return checked, ChainBreak(event.id, event.chain_id, event.seq, "content does not match its hash")
        prev_hash = event.hash
        ends[event.chain_id] = (event.seq, event.hash)
        expected_seq += 1
        checked += 1
    return checked, None


def compare_heads(heads: Iterable[tuple[int, int, str | None]], ends: dict[int, tuple[int, str]]) -> ChainBreak | None:
    """The chain alone cannot show that its *last* events were removed; the head on the model row can.
    ``heads``: (model id, recorded seq, recorded hash) of every model that exists."""
    for model_id, seq, hash_ in heads:
        end_seq, end_hash = ends.get(model_id, (0, None))
        if (seq, hash_) != (end_seq, end_hash):
            return ChainBreak(None, model_id, end_seq or None,
                              f"the model's recorded chain head is seq {seq}, but the chain ends at seq {end_seq}: "
                              "events were removed from its end")
    return None


def _check_heads(session: Session, ends: dict[int, tuple[int, str]], chain_id: int | None) -> ChainBreak | None:
    stmt = select(RegisteredModel.id, RegisteredModel.audit_seq, RegisteredModel.audit_hash).order_by(RegisteredModel.id)
    if chain_id is not None:
        stmt = stmt.where(RegisteredModel.id == chain_id)
    return compare_heads(session.execute(stmt), ends)
