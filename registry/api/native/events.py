"""/api/v1/events (the pull feed, a long-poll), an event's deliveries, and a webhook's delivery log and
redelivery."""
from __future__ import annotations

import time

from flask import Blueprint, jsonify

from ...extensions import caches
from ...schemas import events as wire
from ...services import event_feed, webhook_deliveries
from .http import args, body, current_actor

bp = Blueprint("native_events", __name__, url_prefix="/api/v1")


@bp.get("/events")
def feed():
    q = args(wire.FeedArgs)
    actor, after = current_actor(), event_feed.parse_cursor(q.get("after"))
    hub = caches().hub
    label = hub.label()  # before reading: any change after it wakes the wait below
    event_feed.sequence()
    page = event_feed.read(actor, after, q.get("max_results"))
    wait = q.get("wait") or 0
    if not page.events and wait > 0 and caches().waiters.try_enter():
        try:
            deadline = time.monotonic() + wait
            while not page.events:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not hub.wait_any((), label, remaining, any_after=label.sequence):
                    break
                label = hub.label()
                event_feed.sequence()
                page = event_feed.read(actor, after, q.get("max_results"))
        finally:
            caches().waiters.leave()
    return jsonify({"events": [wire.feed_event_json(e) for e in page.events], "cursor": page.cursor})


@bp.get("/events/<int:event_id>/deliveries")
def event_deliveries(event_id: int):
    found = webhook_deliveries.event_deliveries(current_actor(), event_id)
    return jsonify({"deliveries": [wire.delivery_json(d) for d in found]})


@bp.get("/webhooks/<webhook_id>/deliveries")
def webhook_deliveries_log(webhook_id: str):
    q = args(wire.DeliveryListArgs)
    page = webhook_deliveries.webhook_deliveries(current_actor(), webhook_id, state=q.get("state"),
                                                 max_results=q.get("max_results"), page_token=q.get("page_token"))
    return jsonify({"deliveries": [wire.delivery_json(d) for d in page.items],
                    "next_page_token": page.next_page_token})


@bp.post("/webhooks/<webhook_id>/redeliver")
def redeliver(webhook_id: str):
    data = body(wire.Redeliver)
    count = webhook_deliveries.redeliver(current_actor(), webhook_id, delivery_id=data.get("delivery_id"),
                                         from_event=data.get("from_event_id"), to_event=data.get("to_event_id"))
    return jsonify({"redelivered": count})
