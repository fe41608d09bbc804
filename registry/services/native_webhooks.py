"""Native webhooks (``/api/v1/webhooks``): Standard Webhooks deliveries of any audited event type.

A webhook watches one model (MANAGE on it) or the whole registry (admins), for a list of event types: audit
actions (``version.transitioned``), optionally narrowed to a target stage (``version.transitioned:Production``).
The secret is made by the server and shown once, at creation and at each rotation; a rotation keeps signing
with the previous secret too for ``overlap_seconds``. Stored in the webhook table with ``dialect = 'native'``;
permissions (``webhook_access.py``), storage and auditing (``webhook_storage.py``) are shared with the other
dialects.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from .. import pagination
from ..audit import ACTIONS
from ..auth import Actor
from ..db.unit_of_work import now, read_only, use_case
from ..errors import InvalidArgument
from ..events import native, signing
from ..events.sealing import seal, unseal
from ..orm import RegistryWebhook
from .webhook_access import managed_webhook, of_model, owner_for_new_webhook
from .webhook_fields import checked_description, checked_url
from .webhook_storage import add_webhook, call_receiver, remove_webhook, save_change, visible_page

STATUSES = ("ACTIVE", "DISABLED")
STAGES = ("None", "Staging", "Production", "Archived")
MAX_OVERLAP_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True)
class NativeWebhook:
    id: int
    model_name: str | None
    url: str
    events: tuple[str, ...]
    description: str
    status: str
    created_by: str
    created_at: datetime
    updated_at: datetime
    previous_secret_until: datetime | None
    secret: str | None = None  # only in the answer that made it


def _record(row: RegistryWebhook, secret: str | None = None) -> NativeWebhook:
    until = row.previous_secret_until if row.previous_secret and row.previous_secret_until and \
        row.previous_secret_until > now() else None
    return NativeWebhook(row.id, row.model.name if row.model is not None else None, row.http_url,
                         tuple(row.events), row.description, row.status, row.created_by, row.created_at,
                         row.updated_at, until, secret)


def _event_types(raw: object) -> list[str]:
    if not isinstance(raw, (list, tuple)) or not raw:
        raise InvalidArgument("events must be a non-empty list of event types.", {"field": "events"})
    found: list[str] = []
    for item in raw:
        action, _, stage = item.partition(":") if isinstance(item, str) else ("", "", "")
        if action not in ACTIONS or (stage and stage not in STAGES):
            raise InvalidArgument(f"Unknown event type {item!r}: an audit action such as version.transitioned, "
                                  "optionally with a target stage (version.transitioned:Production).",
                                  {"field": "events"})
        if item not in found:
            found.append(item)
    return found


def _status(raw: object) -> str:
    if raw not in STATUSES:
        raise InvalidArgument(f"status must be one of {list(STATUSES)}.", {"field": "status"})
    return raw


def _load(actor: Actor, webhook_id: object, doing: str, *, lock: bool = False) -> RegistryWebhook:
    return managed_webhook(actor, webhook_id, doing, lock=lock, dialect="native")


@use_case
def create(actor: Actor, url: str, events: list[str], *, model_name: str | None = None,
           description: str | None = None, status: str | None = None) -> NativeWebhook:
    url = checked_url(url, "url")
    wanted = _event_types(events)
    description = checked_description(description)
    status = _status(status or "ACTIVE")
    model_id = owner_for_new_webhook(actor, model_name, "model")
    secret = signing.new_standard_secret()
    when = now()
    row = RegistryWebhook(dialect="native", model_id=model_id, events=wanted, topics=wanted, description=description,
                          status=status, http_url=url, http_secret=seal(secret), created_by=actor.name,
                          created_at=when, updated_at=when)
    return _record(add_webhook(actor, row, when), secret)


@read_only
def get(actor: Actor, webhook_id: object) -> NativeWebhook:
    return _record(_load(actor, webhook_id, "Reading"))


@read_only
def search(actor: Actor, *, model_name: str | None = None, max_results: int | None = None,
           page_token: str | None = None) -> pagination.Page[NativeWebhook]:
    """The native webhooks the actor may manage, oldest first."""
    limit = pagination.page_size(max_results)
    fp = pagination.fingerprint({"kind": "native-webhooks", "model": model_name})
    stmt = of_model(actor, select(RegistryWebhook).where(RegistryWebhook.dialect == "native"), model_name, "model")
    return visible_page(actor, stmt, fp, limit, page_token, _record)


@use_case
def update(actor: Actor, webhook_id: object, *, url: str | None = None, events: list[str] | None = None,
           description: str | None = None, status: str | None = None) -> NativeWebhook:
    row = _load(actor, webhook_id, "Changing", lock=True)
    if url is not None:
        row.http_url = checked_url(url, "url")
    if events is not None:
        row.events = row.topics = _event_types(events)
    if description is not None:
        row.description = checked_description(description)
    if status is not None:
        row.status = _status(status)
    return _record(save_change(actor, row))


@use_case
def rotate_secret(actor: Actor, webhook_id: object, overlap_seconds: int = 24 * 3600) -> NativeWebhook:
    """A new secret, returned once; the current one goes on signing too for ``overlap_seconds``."""
    if not isinstance(overlap_seconds, int) or not 0 <= overlap_seconds <= MAX_OVERLAP_SECONDS:
        raise InvalidArgument(f"overlap_seconds must be between 0 and {MAX_OVERLAP_SECONDS}.",
                              {"field": "overlap_seconds"})
    row = _load(actor, webhook_id, "Rotating the secret of", lock=True)
    secret = signing.new_standard_secret()
    when = now()
    row.previous_secret, row.previous_secret_until = row.http_secret, when + timedelta(seconds=overlap_seconds)
    row.http_secret = seal(secret)
    save_change(actor, row, when, secret_rotated=True, overlap_seconds=overlap_seconds)
    return _record(row, secret)


@use_case
def delete(actor: Actor, webhook_id: object) -> None:
    remove_webhook(actor, webhook_id, "native")


@dataclass(frozen=True)
class TestAnswer:
    event: str
    status_code: int | None
    body: str
    error: str | None


def test(actor: Actor, webhook_id: object, event: str | None = None) -> TestAnswer:
    """Send a made-up event (``data.test`` is true) now, signed as a delivery; log it; return the answer.
    No transaction is open while the receiver is called."""
    chosen, hook_id, request = _prepare_test(actor, webhook_id, event)
    outcome, body = call_receiver(hook_id, chosen, request)
    return TestAnswer(chosen, outcome.status_code, body or "", outcome.error)


@read_only
def _prepare_test(actor: Actor, webhook_id: object, event: str | None):
    row = _load(actor, webhook_id, "Testing")
    chosen = _event_types([event])[0] if event is not None else row.events[0]
    action, _, stage = chosen.partition(":")
    data = {"id": None, "action": action, "model": row.model.name if row.model is not None else None,
            "to_stage": stage or None, "test": True}
    secrets = native.live_secrets(unseal(row.http_secret), unseal(row.previous_secret), row.previous_secret_until)
    return chosen, row.id, native.request(row.http_url, f"msg_test_{int(now().timestamp() * 1000)}",
                                          native.body(action, data), secrets)
