"""The delivery log and replay: every attempt of every delivery, per webhook or per event; redeliver one
delivery or a range of events. Visible to exactly those who may see the webhook (MANAGE on its model;
admins for registry-wide ones). Secrets are never part of the log: attempts record the answer, not the request.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, text, update

from .. import pagination
from ..audit import Action
from ..auth import Actor
from ..db.unit_of_work import now, read_only, session, use_case
from ..errors import InvalidArgument, NotFound
from ..orm import WebhookAttempt, WebhookDelivery
from .webhook_access import managed_webhook, may_manage
from .webhook_storage import audit_webhook


@dataclass(frozen=True)
class AttemptRecord:
    attempted_at: datetime
    status_code: int | None
    latency_ms: int
    response_excerpt: str | None
    error: str | None


@dataclass(frozen=True)
class DeliveryRecord:
    id: int
    webhook_id: int
    event_id: int | None
    test_event: str | None
    state: str
    next_attempt_at: datetime | None
    created_at: datetime
    finished_at: datetime | None
    attempts: tuple[AttemptRecord, ...]


def _records(rows: list[WebhookDelivery]) -> list[DeliveryRecord]:
    by_delivery: dict[int, list[AttemptRecord]] = {row.id: [] for row in rows}
    if rows:
        for a in session().scalars(select(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(list(by_delivery)))
                                   .order_by(WebhookAttempt.id)):
            by_delivery[a.delivery_id].append(AttemptRecord(a.attempted_at, a.status_code, a.latency_ms,
                                                            a.response_excerpt, a.error))
    return [DeliveryRecord(r.id, r.webhook_id, r.event_id, r.test_event, r.state,
                           r.next_attempt_at if r.state == "pending" else None, r.created_at, r.finished_at,
                           tuple(by_delivery[r.id])) for r in rows]


@read_only
def webhook_deliveries(actor: Actor, webhook_id: object, *, state: str | None = None,
                       max_results: int | None = None, page_token: str | None = None):
    """The webhook's deliveries, newest first, each with every attempt."""
    hook = managed_webhook(actor, webhook_id, "Reading the deliveries of")
    if state is not None and state not in ("pending", "delivered", "failed"):
        raise InvalidArgument("state must be pending, delivered or failed.", {"field": "state"})
    limit = pagination.page_size(max_results)
    fp = pagination.fingerprint({"kind": "deliveries", "webhook": hook.id, "state": state})
    stmt = select(WebhookDelivery).where(WebhookDelivery.webhook_id == hook.id)
    if state is not None:
        stmt = stmt.where(WebhookDelivery.state == state)
    before = pagination.decode_id(page_token, fp)
    if before is not None:
        stmt = stmt.where(WebhookDelivery.id < before)
    rows = list(session().scalars(stmt.order_by(WebhookDelivery.id.desc()).limit(limit + 1)))
    token = pagination.encode([rows[limit - 1].id], fp) if len(rows) > limit else None
    return pagination.Page(_records(rows[:limit]), token)


@read_only
def event_deliveries(actor: Actor, event_id: int) -> list[DeliveryRecord]:
    """The deliveries of one event to the webhooks the actor may see (none visible: not found)."""
    rows = list(session().scalars(select(WebhookDelivery).where(WebhookDelivery.event_id == event_id)
                                  .order_by(WebhookDelivery.id)))
    levels: dict[int, int] = {}
    hooks = {}
    visible = []
    for row in rows:
        if row.webhook_id not in hooks:
            model_id = session().execute(text("SELECT model_id FROM registry_webhooks WHERE id = :id"),
                                         {"id": row.webhook_id}).scalar()
            hooks[row.webhook_id] = may_manage(actor, model_id, levels)
        if hooks[row.webhook_id]:
            visible.append(row)
    return _records(visible)


@use_case
def redeliver(actor: Actor, webhook_id: object, *, delivery_id: int | None = None,
              from_event: int | None = None, to_event: int | None = None) -> int:
    """Queue again one delivery, or the webhook's deliveries of the events ``from_event``..``to_event``
    (inclusive; either end may be open), whatever their state; returns how many. The maximum age of their
    retries counts from now. Dispatchers are woken at commit."""
    if (delivery_id is None) == (from_event is None and to_event is None):
        raise InvalidArgument("Give either a delivery id or an event range (from_event_id, to_event_id).",
                              {"field": "delivery_id"})
    if from_event is not None and to_event is not None and from_event > to_event:
        raise InvalidArgument("from_event_id must not be after to_event_id.", {"field": "from_event_id"})
    hook = managed_webhook(actor, webhook_id, "Redelivering to", lock=True)
    stmt = update(WebhookDelivery).where(WebhookDelivery.webhook_id == hook.id,
                                         WebhookDelivery.event_id.is_not(None))
    if delivery_id is not None:
        stmt = stmt.where(WebhookDelivery.id == delivery_id)
    if from_event is not None:
        stmt = stmt.where(WebhookDelivery.event_id >= from_event)
    if to_event is not None:
        stmt = stmt.where(WebhookDelivery.event_id <= to_event)
    when = now()
    count = session().execute(stmt.values(state="pending", next_attempt_at=when, created_at=when,
                                          finished_at=None)).rowcount
    if delivery_id is not None and count == 0:
        raise NotFound(f"Delivery {delivery_id} of webhook {hook.id} not found (test calls cannot be redelivered).",
                       {"delivery_id": delivery_id})
    audit_webhook(actor, hook, Action.WEBHOOK_REDELIVERED, when, redelivered=count, delivery_id=delivery_id,
                  from_event_id=from_event, to_event_id=to_event)
    session().execute(text("SELECT pg_notify('registry_events', 'd')"))
    return count
