"""The delivery queue in the database: claim the next due delivery, settle it after an attempt.

**Claiming.** A dispatcher thread claims one delivery in its own transaction with ``FOR UPDATE SKIP LOCKED``
and keeps that transaction (and the row lock) open while it calls the receiver, then records the attempt and
commits. So two dispatchers never hold the same delivery; a dispatcher that dies mid-delivery loses its
connection, PostgreSQL releases the lock, and the delivery is claimed again: at least once, never lost.

**Order.** Only the oldest pending delivery of each (webhook, model) queue is claimable: a later event of the
model waits while an earlier one is in flight or waiting for its retry. Event ids grow with the model's audit
sequence (they are assigned by the trigger while the model's row lock is held), so "oldest" is "lowest id".

**Retries.** A failed attempt is retried after ``Retry-After`` if the receiver sent one, else after an
exponential backoff with jitter; once the next attempt would come later than the maximum age after the event,
the delivery is *failed* (and stays replayable). A receiver the network policy refuses fails at once.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from .feed import NEW_VERSION, PREVIOUS_VERSION

MAX_BACKOFF_SECONDS = 3600

_CLAIM = text(f"""
SELECT d.id AS delivery_id, d.attempts, d.created_at, d.event_id,
       w.id AS webhook_id, w.dialect, w.status, w.events AS subscribed, w.http_url, w.http_secret,
       w.http_authorization, w.enable_ssl_verification, w.job_id, w.job_access_token, w.job_workspace_url,
       w.previous_secret, w.previous_secret_until,
       audit_events.id AS audit_event_id, audit_events.seq, audit_events.actor, audit_events.action,
       audit_events.model_name, audit_events.version, audit_events.run_id, audit_events.from_stage,
       audit_events.to_stage, audit_events.request_id, audit_events.occurred_at, audit_events.details,
       {PREVIOUS_VERSION} AS previous_version, {NEW_VERSION} AS new_version
FROM webhook_deliveries d
JOIN registry_webhooks w ON w.id = d.webhook_id
JOIN events e ON e.id = d.event_id
JOIN audit_events ON audit_events.id = e.audit_event_id
WHERE d.state = 'pending' AND d.next_attempt_at <= now()
  AND NOT EXISTS (SELECT 1 FROM webhook_deliveries p
                  WHERE p.webhook_id = d.webhook_id AND p.model_id = d.model_id AND p.state = 'pending'
                    AND p.event_id < d.event_id)
ORDER BY d.next_attempt_at, d.id
LIMIT 1
FOR UPDATE OF d SKIP LOCKED
""")


@dataclass(frozen=True)
class Claimed:
    """A claimed delivery with its webhook as it is *now* (a changed URL or secret applies at once)."""

    row: Any

    @property
    def id(self) -> int:
        return self.row.delivery_id


def claim(conn: Connection) -> Claimed | None:
    row = conn.execute(_CLAIM).first()
    return Claimed(row) if row is not None else None


def seconds_until_due(conn: Connection) -> float | None:
    """How long until the earliest pending delivery is due (None: nothing pending)."""
    return conn.execute(text("SELECT extract(epoch FROM min(next_attempt_at) - now()) FROM webhook_deliveries "
                             "WHERE state = 'pending'")).scalar()


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    latency_ms: int
    excerpt: str | None
    error: str | None
    retry_after: float | None = None
    refused: bool = False

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300 and self.error is None


def record_attempt(conn: Connection, delivery_id: int, outcome: Outcome, at: datetime) -> None:
    conn.execute(text("""
        INSERT INTO webhook_attempts (delivery_id, attempted_at, status_code, latency_ms, response_excerpt, error)
        VALUES (:d, :at, :status, :latency, :excerpt, :error)
    """), {"d": delivery_id, "at": at, "status": outcome.status_code, "latency": outcome.latency_ms,
           "excerpt": outcome.excerpt, "error": outcome.error})


def backoff(attempts: int, base_ms: int) -> float:
    """Seconds before the next attempt after ``attempts`` failed ones: doubling, with +-50% jitter so that
    receivers coming back up are not hit by every delivery at the same instant."""
    seconds = min(MAX_BACKOFF_SECONDS, base_ms / 1000 * 2 ** max(0, attempts - 1))
    return seconds * random.uniform(0.5, 1.5)


def settle(conn: Connection, claimed: Claimed, outcome: Outcome, *, base_ms: int, max_age_seconds: int) -> str:
    """Record the attempt and move the delivery on; returns its new state."""
    now = datetime.now(timezone.utc)
    record_attempt(conn, claimed.id, outcome, now)
    attempts = claimed.row.attempts + 1
    if outcome.delivered:
        state, next_at = "delivered", now
    else:
        delay = outcome.retry_after if outcome.retry_after is not None else backoff(attempts, base_ms)
        next_at = now + timedelta(seconds=delay)
        give_up = outcome.refused or next_at > claimed.row.created_at + timedelta(seconds=max_age_seconds)
        state = "failed" if give_up else "pending"
    conn.execute(text("""
        UPDATE webhook_deliveries
        SET state = :state, attempts = :attempts, next_attempt_at = :next_at,
            finished_at = CASE WHEN :state = 'pending' THEN NULL ELSE now() END
        WHERE id = :id
    """), {"state": state, "attempts": attempts, "next_at": next_at, "id": claimed.id})
    return state
