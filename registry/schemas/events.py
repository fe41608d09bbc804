"""The native API's events: the pull feed, the delivery log and redelivery (``/api/v1/events``,
``/api/v1/webhooks/{id}/deliveries``)."""
from __future__ import annotations

from typing import Any

from marshmallow import fields, validate

from ..events.feed import event_json
from ..pagination import MAX_PAGE_SIZE
from .native import MAX_WAIT_SECONDS, StrictSchema, _Page
from .timestamps import epoch_ms

_ID = validate.Range(min=1, max=2**63 - 1)


class FeedArgs(StrictSchema):
    after = fields.String()
    wait = fields.Float(validate=validate.Range(min=0, max=MAX_WAIT_SECONDS))
    max_results = fields.Integer(validate=validate.Range(min=1, max=MAX_PAGE_SIZE))


class DeliveryListArgs(_Page):
    state = fields.String(validate=validate.OneOf(["pending", "delivered", "failed"]))


class Redeliver(StrictSchema):
    delivery_id = fields.Integer(validate=_ID)
    from_event_id = fields.Integer(validate=_ID)
    to_event_id = fields.Integer(validate=_ID)


def feed_event_json(e) -> dict[str, Any]:
    return event_json(e)


def _when(value) -> int | None:
    return epoch_ms(value) if value is not None else None


def delivery_json(d) -> dict[str, Any]:
    return {
        "id": d.id,
        "webhook_id": d.webhook_id,
        "event_id": d.event_id,
        "test_event": d.test_event,
        "state": d.state,
        "created_at": epoch_ms(d.created_at),
        "next_attempt_at": _when(d.next_attempt_at),
        "finished_at": _when(d.finished_at),
        "attempts": [{"time": epoch_ms(a.attempted_at), "status_code": a.status_code, "latency_ms": a.latency_ms,
                      "response_excerpt": a.response_excerpt, "error": a.error} for a in d.attempts],
    }


class WebhookCreate(StrictSchema):
    url = fields.String(required=True)
    events = fields.List(fields.String(), required=True)
    model = fields.String()
    description = fields.String()
    status = fields.String()


class WebhookUpdate(StrictSchema):
    url = fields.String()
    events = fields.List(fields.String())
    description = fields.String()
    status = fields.String()


class WebhookListArgs(_Page):
    model = fields.String()


class SecretRotation(StrictSchema):
    overlap_seconds = fields.Integer(strict=True)


class WebhookTest(StrictSchema):
    event = fields.String()


def webhook_json(w) -> dict[str, Any]:
    out = {
        "id": str(w.id),
        "model": w.model_name,
        "url": w.url,
        "events": list(w.events),
        "description": w.description,
        "status": w.status,
        "created_by": w.created_by,
        "created_at": epoch_ms(w.created_at),
        "updated_at": epoch_ms(w.updated_at),
        "previous_secret_until": _when(w.previous_secret_until),
    }
    if w.secret is not None:
        out["secret"] = w.secret
    return out
