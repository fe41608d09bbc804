"""/api/v1/webhooks: native webhooks (Standard Webhooks deliveries), their secret rotation and test calls.
Their delivery logs are in ``events.py``."""
from __future__ import annotations

from flask import Blueprint, jsonify

from ...schemas import events as wire
from ...services import native_webhooks
from .http import args, body, current_actor

bp = Blueprint("native_webhooks", __name__, url_prefix="/api/v1")


@bp.post("/webhooks")
def create_webhook():
    data = body(wire.WebhookCreate)
    made = native_webhooks.create(current_actor(), data["url"], data["events"], model_name=data.get("model"),
                                  description=data.get("description"), status=data.get("status"))
    return jsonify(wire.webhook_json(made)), 201


@bp.get("/webhooks")
def list_webhooks():
    q = args(wire.WebhookListArgs)
    page = native_webhooks.search(current_actor(), model_name=q.get("model"), max_results=q.get("max_results"),
                                  page_token=q.get("page_token"))
    return jsonify({"webhooks": [wire.webhook_json(w) for w in page.items], "next_page_token": page.next_page_token})


@bp.get("/webhooks/<webhook_id>")
def get_webhook(webhook_id: str):
    return jsonify(wire.webhook_json(native_webhooks.get(current_actor(), webhook_id)))


@bp.patch("/webhooks/<webhook_id>")
def update_webhook(webhook_id: str):
    data = body(wire.WebhookUpdate)
    return jsonify(wire.webhook_json(native_webhooks.update(current_actor(), webhook_id, **data)))


@bp.delete("/webhooks/<webhook_id>")
def delete_webhook(webhook_id: str):
    native_webhooks.delete(current_actor(), webhook_id)
    return "", 204


@bp.post("/webhooks/<webhook_id>/rotate-secret")
def rotate_secret(webhook_id: str):
    data = body(wire.SecretRotation)
    made = native_webhooks.rotate_secret(current_actor(), webhook_id, **data)
    return jsonify(wire.webhook_json(made))


@bp.post("/webhooks/<webhook_id>/test")
def test_webhook(webhook_id: str):
    answer = native_webhooks.test(current_actor(), webhook_id, body(wire.WebhookTest).get("event"))
    return jsonify({"event": answer.event, "status_code": answer.status_code, "body": answer.body,
                    "error": answer.error})
