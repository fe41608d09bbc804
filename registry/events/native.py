"""The native dialect of a delivery: Standard Webhooks (https://www.standardwebhooks.com).

Body ``{"type": <audit action>, "timestamp": <ISO 8601>, "data": <the event as the pull feed shows it>}``;
headers ``webhook-id`` (``msg_<delivery id>``: the same on every retry and redelivery, for receivers that
deduplicate), ``webhook-timestamp`` (Unix seconds of the attempt) and ``webhook-signature``: ``v1,<base64>``
for the current secret, and after a rotation also for the previous one until its overlap ends
(space-separated, as the specification allows), so receivers can switch secrets without losing a delivery.
"""
from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from typing import Any

from . import signing
from .feed import FeedEvent, event_json
from .network import Request


def data(row) -> dict[str, Any]:
    """The event as ``GET /api/v1/events`` shows it (``feed.event_json``), from a claim row."""
    return event_json(FeedEvent(
        row.event_id, row.audit_event_id, None, row.seq, row.occurred_at, row.actor, row.action, row.model_name,
        row.version, row.run_id, row.from_stage, row.to_stage, row.previous_version, row.new_version,
        row.request_id, row.details or {}))


def body(event_type: str, data: dict[str, Any]) -> bytes:
    document = {"type": event_type, "timestamp": datetime.now(timezone.utc).isoformat(), "data": data}
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def request(url: str, message_id: str, payload: bytes, secrets: list[str]) -> Request:
    timestamp = int(time.time())
    signatures = " ".join(signing.v1(signing.standard_key(s), message_id, timestamp, payload) for s in secrets)
    return Request(url, payload, {"webhook-id": message_id, "webhook-timestamp": str(timestamp),
                                  "webhook-signature": signatures}, True)


def live_secrets(current: str | None, previous: str | None, previous_until: datetime | None) -> list[str]:
    found = [current] if current else []
    if previous and previous_until is not None and previous_until > datetime.now(timezone.utc):
        found.append(previous)
    return found
