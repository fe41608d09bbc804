"""The pull feed's order: ``events.position``, given after commit by a *sequencer*.

Event ids cannot serve as a cursor: they are drawn when a transaction commits its events, and transactions on
different models commit in any order, so an event with a lower id may become visible after a reader has
moved past it. So positions are handed out later, by one sequencer at a time (a transaction-scoped advisory
lock): each numbers every event it can see that has no position yet, in id order. A reader that has seen
position P can never be offered an event below P afterwards. Per model, order is kept: a model's later event
is committed after its earlier one (the model's row lock), so no sequencer sees the later without the earlier.

``previous_version`` / ``new_version`` say what a stage or alias served before and after a move: for an alias,
from the event itself; for a stage, from the serving snapshot the model's previous stage change recorded (in an
earlier transaction: the events of one transaction share their time, and each records the state after all of
the transaction's changes).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from ..schemas.timestamps import epoch_ms

_SEQUENCER_LOCK = 0x5265_6745_7665  # advisory lock key: one sequencer at a time, everywhere

_ASSIGN = text("""
WITH todo AS (SELECT id FROM events WHERE position IS NULL ORDER BY id FOR UPDATE),
     top AS (SELECT coalesce(max(position), 0) AS p FROM events)
UPDATE events e SET position = n.p
FROM (SELECT todo.id, top.p + row_number() OVER (ORDER BY todo.id) AS p FROM todo, top) n
WHERE e.id = n.id
""")


def assign_positions(session: Session) -> None:
    """Number the visible events that have no position (in the caller's transaction, which must commit)."""
    if session.execute(text("SELECT EXISTS (SELECT 1 FROM events WHERE position IS NULL)")).scalar():
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _SEQUENCER_LOCK})
        # A new statement, so a new snapshot: it sees what the previous holder of the lock committed.
        session.execute(_ASSIGN)


# What a stage or alias served before and after the event (SQL over ``audit_events``, as columns of a query
# that selects from it).
PREVIOUS_VERSION = """CASE
  WHEN audit_events.action = 'alias.set' THEN (audit_events.details ->> 'previous_version')::int
  WHEN audit_events.action = 'alias.deleted' THEN audit_events.version
  WHEN audit_events.action = 'version.transitioned' THEN (
    SELECT (p.details -> 'serving' ->> audit_events.to_stage)::int FROM audit_events p
    WHERE p.model_id = audit_events.model_id AND p.action IN ('version.transitioned', 'version.deleted')
      AND p.seq < audit_events.seq AND p.occurred_at < audit_events.occurred_at AND p.details ? 'serving'
    ORDER BY p.seq DESC LIMIT 1)
END"""
NEW_VERSION = """CASE
  WHEN audit_events.action = 'alias.set' THEN audit_events.version
  WHEN audit_events.action = 'version.transitioned'
    THEN (audit_events.details -> 'serving' ->> audit_events.to_stage)::int
END"""


@dataclass(frozen=True)
class FeedEvent:
    """An event as consumers see it: in the pull feed and in the body of a native webhook delivery."""

    event_id: int
    audit_event_id: int
    position: int | None
    seq: int
    occurred_at: datetime
    actor: str
    action: str
    model_name: str | None
    version: int | None
    run_id: str | None
    from_stage: str | None
    to_stage: str | None
    previous_version: int | None
    new_version: int | None
    request_id: int | None
    details: dict[str, Any]


def event_json(e: FeedEvent) -> dict[str, Any]:
    """Its JSON (``FeedEvent`` in openapi.yaml); ``cursor`` is null outside the feed (a webhook body)."""
    return {
        "id": e.event_id,
        "audit_event_id": e.audit_event_id,
        "cursor": str(e.position) if e.position is not None else None,
        "seq": e.seq,
        "time": epoch_ms(e.occurred_at),
        "time_iso": e.occurred_at.astimezone(timezone.utc).isoformat(),
        "actor": e.actor,
        "action": e.action,
        "model": e.model_name,
        "version": e.version,
        "run_id": e.run_id,
        "from_stage": e.from_stage,
        "to_stage": e.to_stage,
        "previous_version": e.previous_version,
        "new_version": e.new_version,
        "request_id": e.request_id,
        "details": e.details,
    }
