"""The MLflow 3 dialect of a delivery, byte for byte what MLflow's ``mlflow/webhooks/delivery.py`` sends:
body ``{"entity", "action", "timestamp", "data"}`` with ``data`` shaped as ``mlflow/webhooks/types.py``
says for the event; headers ``X-MLflow-Delivery-Id``, ``X-MLflow-Timestamp`` (Unix seconds) and, when the
webhook has a secret, ``X-MLflow-Signature: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`` keyed with
the secret as given. The delivery id is stable across retries (MLflow draws a new one per call; receivers
that deduplicate by it are better served by ours)."""
from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timezone
from typing import Any

from . import signing
from .network import Request


def data(event: str, model_name: str | None, version: int | None, details: dict[str, Any],
         run_id: str | None = None) -> dict[str, Any]:
    v = str(version) if version is not None else None
    if event == "registered_model.created":
        return {"name": model_name, "tags": details.get("tags") or {}, "description": details.get("description")}
    if event == "model_version.created":
        return {"name": model_name, "version": v, "source": details.get("source"), "run_id": run_id,
                "tags": details.get("tags") or {}, "description": details.get("description")}
    if event == "model_version_tag.set":
        return {"name": model_name, "version": v, "key": details.get("key"), "value": details.get("value")}
    if event == "model_version_tag.deleted":
        return {"name": model_name, "version": v, "key": details.get("key")}
    if event == "model_version_alias.created":
        return {"name": model_name, "alias": details.get("alias"), "version": v}
    if event == "model_version_alias.deleted":
        return {"name": model_name, "alias": details.get("alias")}
    return {"name": model_name}


def example(event: str, model_name: str = "example_model") -> dict[str, Any]:
    """The made-up data of a test call (MLflow sends its example payloads)."""
    details = {"tags": {"example_key": "example_value"}, "description": "An example", "source": "models:/123",
               "key": "example_key", "value": "example_value", "alias": "example_alias"}
    return data(event, model_name, 1, details, run_id="12345abcde")


def request(url: str, delivery_id: int | str, event: str, payload: dict[str, Any], secret: str | None) -> Request:
    entity, _, action = event.partition(".")
    body = json.dumps({"entity": entity, "action": action, "timestamp": datetime.now(timezone.utc).isoformat(),
                       "data": payload})
    message_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"registry-delivery:{delivery_id}"))
    timestamp = int(time.time())
    headers = {"X-MLflow-Delivery-Id": message_id, "X-MLflow-Timestamp": str(timestamp)}
    if secret:
        headers["X-MLflow-Signature"] = signing.v1(secret.encode(), message_id, timestamp, body.encode())
    return Request(url, body.encode(), headers, True)
