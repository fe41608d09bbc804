"""What the operators' metrics read from the database (``telemetry/collectors.py``), and the record of each
full audit verification.

Both reads run at scrape time, every 15-60 s, so each is one indexed query, bounded in rows and in time
(``SCRAPE_TIMEOUT_MS``): a scrape never loads the database however many requests or events it holds.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text

from ..audit import Action, ChainBreak, record_registry
from ..auth import SYSTEM
from ..db.unit_of_work import now, read_only, session, use_case

SCRAPE_TIMEOUT_MS = 2000
# Models reported one by one (those with the oldest pending requests): a label per model must stay bounded.
PENDING_MODELS_REPORTED = 50


@dataclass(frozen=True)
class PendingByModel:
    model: str
    kind: str  # "stage" or "alias"
    count: int
    oldest_age_seconds: float


@dataclass(frozen=True)
class PendingSummary:
    totals: dict[str, int]
    models: list[PendingByModel]


def _scrape_timeout() -> None:
    session().execute(text(f"SET LOCAL statement_timeout = {SCRAPE_TIMEOUT_MS}"))


# The partial index on pending requests (ix_transition_requests_pending) keeps this to the pending rows.
_PENDING = text("""
SELECT m.name AS model, CASE WHEN r.alias IS NULL THEN 'stage' ELSE 'alias' END AS kind,
       count(*) AS count, extract(epoch FROM now() - min(r.created_at)) AS oldest_age_seconds
FROM transition_requests r JOIN registered_models m ON m.id = r.model_id
WHERE r.status = 'pending'
GROUP BY m.name, kind
ORDER BY oldest_age_seconds DESC, m.name
""")


@read_only
def pending_requests() -> PendingSummary:
    _scrape_timeout()
    totals = {"stage": 0, "alias": 0}
    models = []
    for row in session().execute(_PENDING):
        totals[row.kind] += row.count
        if len(models) < PENDING_MODELS_REPORTED:
            models.append(PendingByModel(row.model, row.kind, row.count, max(0.0, float(row.oldest_age_seconds))))
    return PendingSummary(totals, models)


@dataclass(frozen=True)
class DeliveryBacklog:
    pending: int
    oldest_age_seconds: float  # 0 when nothing waits


# The partial index on pending deliveries (ix_webhook_deliveries_due) keeps this to the pending rows.
_BACKLOG = text("""
SELECT count(*) AS pending, coalesce(extract(epoch FROM now() - min(created_at)), 0) AS oldest_age_seconds
FROM webhook_deliveries WHERE state = 'pending'
""")


@read_only
def delivery_backlog() -> DeliveryBacklog:
    """Webhook deliveries not yet made (the outbox's lag as receivers see it)."""
    _scrape_timeout()
    row = session().execute(_BACKLOG).one()
    return DeliveryBacklog(int(row.pending), max(0.0, float(row.oldest_age_seconds)))


@dataclass(frozen=True)
class Verification:
    ran_at: datetime
    ok: bool
    events_checked: int


@read_only
def last_audit_verification() -> Verification | None:
    _scrape_timeout()
    row = session().execute(text(
        "SELECT occurred_at, details FROM audit_events WHERE action = :action ORDER BY id DESC LIMIT 1"
    ), {"action": Action.AUDIT_VERIFIED.value}).first()
    if row is None:
        return None
    return Verification(row.occurred_at, bool(row.details.get("ok")), int(row.details.get("events_checked", 0)))


@use_case
def record_audit_verification(checked: int, problem: ChainBreak | None) -> None:
    """Record the outcome of a full verification in the trail itself (registry-wide chain, admins only): the
    metrics report the last one, and a verification that found a break cannot be forgotten quietly."""
    details: dict = {"ok": problem is None, "events_checked": checked}
    if problem is not None:
        details.update(broken_event_id=problem.event_id, broken_chain_id=problem.chain_id, broken_seq=problem.seq,
                       reason=problem.reason)
    record_registry(session(), SYSTEM, Action.AUDIT_VERIFIED, details=details, now=now())
