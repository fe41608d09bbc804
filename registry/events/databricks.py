"""The Databricks dialect of a delivery: the documented registry-webhook payloads, ``X-Databricks-Signature``
(hex HMAC-SHA256 of the body with the webhook's secret), the ``Authorization`` value copied as given, and job
targets triggered through ``jobs/run-now`` with the payload as ``event_message``."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from . import signing
from .network import Refused, Request
from .topics import databricks_event

_TEXT = {
    "MODEL_VERSION_CREATED": "A new version {version} of model {model_name} was registered.",
    "MODEL_VERSION_TRANSITIONED_STAGE": "Version {version} of model {model_name} moved from {from_stage} to {to_stage}.",
    "TRANSITION_REQUEST_CREATED": "A transition of version {version} of model {model_name} from {from_stage} to "
                                  "{to_stage} was requested.",
    "COMMENT_CREATED": "A comment was made on version {version} of model {model_name}.",
    "REGISTERED_MODEL_CREATED": "Model {model_name} was created.",
    "MODEL_VERSION_TAG_SET": "A tag was set on version {version} of model {model_name}.",
}


def _family(event: str) -> str:
    if event.startswith("MODEL_VERSION_TRANSITIONED_"):
        return "MODEL_VERSION_TRANSITIONED_STAGE"
    if event.startswith("TRANSITION_REQUEST_"):
        return "TRANSITION_REQUEST_CREATED"
    return event


@dataclass(frozen=True)
class Occurrence:
    """What a payload says about an event (an audit event, or the made-up one of a test call)."""

    action: str
    model_name: str | None
    version: int | None
    from_stage: str | None
    to_stage: str | None
    occurred_ms: int
    details: dict[str, Any]


def payload(event: str, webhook_id: int, what: Occurrence) -> dict[str, Any]:
    family = _family(event)
    body: dict[str, Any] = {"event": event, "webhook_id": str(webhook_id), "event_timestamp": what.occurred_ms}
    if what.model_name is not None:
        body["model_name"] = what.model_name
    if what.version is not None and family != "REGISTERED_MODEL_CREATED":
        body["version"] = str(what.version)
    if family in ("MODEL_VERSION_TRANSITIONED_STAGE", "TRANSITION_REQUEST_CREATED"):
        body["to_stage"] = what.to_stage
        body["from_stage"] = what.from_stage
    if family == "MODEL_VERSION_TAG_SET":
        body["tags"] = [{"key": what.details.get("key"), "value": what.details.get("value")}]
    if family in ("COMMENT_CREATED", "TRANSITION_REQUEST_CREATED") and what.details.get("comment"):
        body["comment"] = what.details["comment"]
    body["text"] = _TEXT[family].format(model_name=what.model_name, version=what.version,
                                        from_stage=what.from_stage, to_stage=what.to_stage)
    return body


def event_for(subscribed: list[str], what: Occurrence) -> str | None:
    return databricks_event(subscribed, what.action, what.to_stage)


def test_occurrence(event: str, model_name: str | None, now_ms: int) -> Occurrence:
    """The made-up event a test call sends (Databricks sends a mock event of the chosen type)."""
    family = _family(event)
    to_stage = next((s for s in ("Staging", "Production", "Archived") if f"_TO_{s.upper()}" in event), "Staging")
    action = {"MODEL_VERSION_CREATED": "version.created", "MODEL_VERSION_TRANSITIONED_STAGE": "version.transitioned",
              "TRANSITION_REQUEST_CREATED": "request.created", "COMMENT_CREATED": "comment.created",
              "REGISTERED_MODEL_CREATED": "model.created", "MODEL_VERSION_TAG_SET": "version.tag_set"}[family]
    details = {"key": "test_key", "value": "test_value", "comment": "This is a test comment."}
    return Occurrence(action, model_name or "test-model", 1, "None", to_stage, now_ms, details)


def request(target, body: dict[str, Any], *, secret: str | None, authorization: str | None,
            job_token: str | None) -> Request:
    """How to deliver ``body`` to a webhook's target (``target``: url, verify flag, job id and workspace)."""
    data = json.dumps(body, separators=(",", ":")).encode()
    if target.http_url is not None:
        headers = {}
        if secret:
            headers["X-Databricks-Signature"] = signing.databricks(secret, data)
        if authorization:
            headers["Authorization"] = authorization
        return Request(target.http_url, data, headers, target.enable_ssl_verification)
    if not target.job_workspace_url:
        raise Refused("job_spec.workspace_url is needed: this registry is not a Databricks workspace")
    message = data.decode()
    run = {"job_id": int(target.job_id) if str(target.job_id).isdigit() else target.job_id,
           "notebook_params": {"event_message": message}, "python_named_params": {"event_message": message},
           "python_params": [message], "jar_params": [message], "spark_submit_params": [message]}
    url = f"{(target.job_workspace_url or '').rstrip('/')}/api/2.1/jobs/run-now"
    return Request(url, json.dumps(run, separators=(",", ":")).encode(),
                   {"Authorization": f"Bearer {job_token}"}, True)
