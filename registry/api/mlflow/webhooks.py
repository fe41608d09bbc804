"""MLflow 3 webhooks: ``/api/2.0/mlflow/webhooks[/{id}[/test]]`` as ``MlflowClient().create_webhook`` and
friends call them (proto JSON: enums by name, events as ``{"entity": "MODEL_VERSION", "action": "CREATED"}``,
empty fields omitted). Delivery: ``registry/events/mlflow.py``."""
from __future__ import annotations

from typing import Any

from ...errors import InvalidArgument
from ...schemas.timestamps import epoch_ms
from ...services import mlflow_webhooks
from ..authn import current_actor
from . import bp, ok
from .wire import params

DEFAULT_PAGE = 100


def _events(p) -> list[str] | None:
    raw = p.raw("events")
    if raw is None or raw == []:
        return None
    if not isinstance(raw, list) or not all(isinstance(e, dict) and isinstance(e.get("entity"), str)
                                            and isinstance(e.get("action"), str) for e in raw):
        raise InvalidArgument("events must be a list of {entity, action} objects.", {"field": "events"})
    return [f"{e['entity'].lower()}.{e['action'].lower()}" for e in raw]


def _json(w: mlflow_webhooks.MlflowWebhook) -> dict[str, Any]:
    out: dict[str, Any] = {"webhook_id": str(w.id), "name": w.name}
    if w.description:
        out["description"] = w.description
    out.update({"url": w.url, "status": w.status, "creation_timestamp": epoch_ms(w.created_at),
                "last_updated_timestamp": epoch_ms(w.updated_at),
                "events": [{"entity": e.partition(".")[0].upper(), "action": e.partition(".")[2].upper()}
                           for e in w.events]})
    return out


@bp.post("/webhooks")
def create_mlflow_webhook():
    p = params()
    made = mlflow_webhooks.create(current_actor(), name=p.required("name"), url=p.required("url"),
                                  events=_events(p) or [], description=p.string("description"),
                                  secret=p.string("secret"), status=p.string("status"))
    return ok({"webhook": _json(made)})


@bp.get("/webhooks")
def list_mlflow_webhooks():
    p = params()
    page = mlflow_webhooks.search(current_actor(), p.integer("max_results") or DEFAULT_PAGE,
                                  p.string("page_token") or None)
    body: dict[str, Any] = {}
    if page.items:
        body["webhooks"] = [_json(w) for w in page.items]
    if page.next_page_token:
        body["next_page_token"] = page.next_page_token
    return ok(body)


@bp.get("/webhooks/<webhook_id>")
def get_mlflow_webhook(webhook_id: str):
    return ok({"webhook": _json(mlflow_webhooks.get(current_actor(), webhook_id))})


@bp.patch("/webhooks/<webhook_id>")
def update_mlflow_webhook(webhook_id: str):
    p = params()
    changed = mlflow_webhooks.update(current_actor(), webhook_id, name=p.string("name") or None,
                                     description=p.string("description"), url=p.string("url") or None,
                                     events=_events(p), secret=p.string("secret"), status=p.string("status"))
    return ok({"webhook": _json(changed)})


@bp.delete("/webhooks/<webhook_id>")
def delete_mlflow_webhook(webhook_id: str):
    mlflow_webhooks.delete(current_actor(), webhook_id)
    return ok()


@bp.post("/webhooks/<webhook_id>/test")
def test_mlflow_webhook(webhook_id: str):
    p = params()
    event = p.raw("event")
    chosen = None
    if event is not None:
        if not isinstance(event, dict) or not isinstance(event.get("entity"), str) \
                or not isinstance(event.get("action"), str):
            raise InvalidArgument("event must be an {entity, action} object.", {"field": "event"})
        chosen = f"{event['entity'].lower()}.{event['action'].lower()}"
    result = mlflow_webhooks.test(current_actor(), webhook_id, chosen)
    out: dict[str, Any] = {"success": result.success}
    if result.response_status is not None:
        out["response_status"] = result.response_status
    if result.response_body:
        out["response_body"] = result.response_body
    if result.error_message:
        out["error_message"] = result.error_message
    return ok({"result": out})
