"""Registry webhooks: create, update, delete, list (Databricks' registry-webhooks semantics). Storage only.

Delivery happens after commit, from the outbox, outside the request (``registry/events/``); a webhook's
``topics`` (what the outbox trigger matches) are derived from its events here. ``test_webhook`` is the one
call that reaches a receiver from a request, as Databricks' test endpoint does: synchronously, with a made-up
event, logged like a delivery.

Rules: a model-scoped webhook needs MANAGE on its model (to create, change, delete, test or see it); a
registry-wide one (no model) is for admins only (both checked by ``webhook_access.py``, for every dialect),
and only registry-wide webhooks may subscribe to REGISTERED_MODEL_CREATED. Secrets (HMAC secret,
Authorization value, job access token) are write-only: records never carry them. The targets are checked by
``webhook_fields.py``; storing, auditing, listing and test calls are the shared steps of ``webhook_storage.py``.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from .. import pagination
from ..auth import Actor
from ..db.unit_of_work import now, read_only, use_case
from ..errors import InvalidArgument
from ..events import databricks
from ..events.network import Refused
from ..events.sealing import unseal
from ..events.topics import databricks_topics
from ..orm import RegistryWebhook
from .webhook_access import managed_webhook, of_model, owner_for_new_webhook
from .webhook_fields import HttpTarget, JobTarget, checked_description, set_target
from .webhook_storage import add_webhook, call_receiver, remove_webhook, save_change, visible_page

EVENTS = (
    "MODEL_VERSION_CREATED",
    "MODEL_VERSION_TRANSITIONED_STAGE",
    "TRANSITION_REQUEST_CREATED",
    "COMMENT_CREATED",
    "REGISTERED_MODEL_CREATED",
    "MODEL_VERSION_TAG_SET",
    "MODEL_VERSION_TRANSITIONED_TO_STAGING",
    "MODEL_VERSION_TRANSITIONED_TO_PRODUCTION",
    "MODEL_VERSION_TRANSITIONED_TO_ARCHIVED",
    "TRANSITION_REQUEST_TO_STAGING_CREATED",
    "TRANSITION_REQUEST_TO_PRODUCTION_CREATED",
    "TRANSITION_REQUEST_TO_ARCHIVED_CREATED",
)
REGISTRY_ONLY_EVENTS = frozenset({"REGISTERED_MODEL_CREATED"})
STATUSES = ("ACTIVE", "TEST_MODE", "DISABLED")


@dataclass(frozen=True)
class WebhookRecord:
    """What callers may see of a webhook: no secret, no Authorization value, no access token."""

    id: int
    model_name: str | None
    events: tuple[str, ...]
    description: str
    status: str
    http_url: str | None
    enable_ssl_verification: bool
    job_id: str | None
    job_workspace_url: str | None
    created_by: str
    created_at: datetime
    updated_at: datetime


def _record(row: RegistryWebhook) -> WebhookRecord:
    return WebhookRecord(
        id=row.id,
        model_name=row.model.name if row.model is not None else None,
        events=tuple(row.events),
        description=row.description,
        status=row.status,
        http_url=row.http_url,
        enable_ssl_verification=row.enable_ssl_verification,
        job_id=row.job_id,
        job_workspace_url=row.job_workspace_url,
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


# --- Validation (pure) ----------------------------------------------------------------------------------

def _events(raw: object, *, registry_wide: bool) -> list[str]:
    if not isinstance(raw, (list, tuple)) or not raw:
        raise InvalidArgument("events must be a non-empty list of registry webhook events.", {"field": "events"})
    result: list[str] = []
    for event in raw:
        if not isinstance(event, str) or event not in EVENTS:
            raise InvalidArgument(f"Unknown webhook event {event!r}; one of {list(EVENTS)}.", {"field": "events"})
        if event in REGISTRY_ONLY_EVENTS and not registry_wide:
            raise InvalidArgument(f"{event} can only be used by a registry-wide webhook (no model_name).",
                                  {"field": "events"})
        if event not in result:
            result.append(event)
    return result


def _status(raw: object) -> str:
    if raw not in STATUSES:
        raise InvalidArgument(f"Unknown webhook status {raw!r}; one of {list(STATUSES)}.", {"field": "status"})
    return raw



def _load(actor: Actor, raw_id: object, doing: str, *, lock: bool = False) -> RegistryWebhook:
    return managed_webhook(actor, raw_id, doing, lock=lock, dialect="databricks")


# --- Use cases --------------------------------------------------------------------------------------

@use_case
def create_webhook(actor: Actor, events: list[str], *, model_name: str | None = None,
                   description: str | None = None, status: str | None = None,
                   http: HttpTarget | None = None, job: JobTarget | None = None) -> WebhookRecord:
    registry_wide = model_name is None
    wanted = _events(events, registry_wide=registry_wide)
    description = checked_description(description)
    status = _status(status or "ACTIVE")
    if http is None and job is None:
        raise InvalidArgument("A webhook needs http_url_spec or job_spec.", {"field": "http_url_spec"})
    model_id = owner_for_new_webhook(actor, model_name, "model_name")
    when = now()
    row = RegistryWebhook(model_id=model_id, events=wanted, topics=databricks_topics(wanted),
                          description=description, status=status, created_by=actor.name, created_at=when, updated_at=when)
    set_target(row, http, job)
    return _record(add_webhook(actor, row, when))


@use_case
def update_webhook(actor: Actor, webhook_id: object, *, events: list[str] | None = None,
                   description: str | None = None, status: str | None = None,
                   http: HttpTarget | None = None, job: JobTarget | None = None) -> WebhookRecord:
    """Change the given fields; a new http_url_spec or job_spec replaces the target wholesale (secrets
    included: a spec given without a secret leaves the webhook without one)."""
    row = _load(actor, webhook_id, "Changing", lock=True)
    if events is not None:
        row.events = _events(events, registry_wide=row.model_id is None)
        row.topics = databricks_topics(row.events)
    if description is not None:
        row.description = checked_description(description)
    if status is not None:
        row.status = _status(status)
    set_target(row, http, job)
    return _record(save_change(actor, row))


@use_case
def delete_webhook(actor: Actor, webhook_id: object) -> None:
    remove_webhook(actor, webhook_id, "databricks")


@read_only
def list_webhooks(actor: Actor, *, model_name: str | None = None, events: list[str] | None = None,
                  max_results: int | None = None, page_token: str | None = None) -> pagination.Page[WebhookRecord]:
    """Webhooks the actor manages, oldest first; ``events`` keeps those subscribed to any of them."""
    limit = pagination.page_size(max_results)
    wanted = _events(events, registry_wide=True) if events else []
    fp = pagination.fingerprint({"kind": "webhooks", "model_name": model_name, "events": sorted(wanted)})
    stmt = of_model(actor, select(RegistryWebhook).where(RegistryWebhook.dialect == "databricks"), model_name,
                    "model_name")
    if wanted:
        stmt = stmt.where(RegistryWebhook.events.overlap(wanted))
    return visible_page(actor, stmt, fp, limit, page_token, _record)


@dataclass(frozen=True)
class TestResult:
    """What the receiver answered to a test event (as Databricks' ``registry-webhooks/test`` returns it)."""

    event: str
    status_code: int
    body: str


def test_webhook(actor: Actor, webhook_id: object, event: str | None = None) -> TestResult:
    """Send a made-up ``event`` (default: one of the webhook's, at random) to the webhook now, whatever its
    status but DISABLED, sign it as a real delivery, log the attempt, and return the receiver's answer.

    No transaction is open while the receiver is called."""
    chosen, webhook_id, request = _prepare_test(actor, webhook_id, event)
    outcome, body = call_receiver(webhook_id, chosen, request)
    if outcome.status_code is None:
        raise InvalidArgument(f"The test event was not delivered: {outcome.error}", {"field": "id"})
    return TestResult(chosen, outcome.status_code, body or "")


@read_only
def _prepare_test(actor: Actor, webhook_id: object, event: str | None):
    row, chosen = _choose_test_event(actor, webhook_id, event)
    when_ms = int(now().timestamp() * 1000)
    what = databricks.test_occurrence(chosen, row.model.name if row.model is not None else None, when_ms)
    try:
        request = databricks.request(row, databricks.payload(chosen, row.id, what), secret=unseal(row.http_secret),
                                     authorization=unseal(row.http_authorization),
                                     job_token=unseal(row.job_access_token))
    except Refused as error:
        raise InvalidArgument(f"The test event cannot be sent: {error}", {"field": "id"}) from None
    return chosen, row.id, request


def _choose_test_event(actor: Actor, webhook_id: object, event: str | None) -> tuple[RegistryWebhook, str]:
    """Check a test call (permission, event among the webhook's, DISABLED excluded) and pick the event."""
    row = _load(actor, webhook_id, "Testing")
    if event is None:
        chosen = random.choice(list(row.events))  # Databricks: "a random event of the webhook"
    else:
        chosen = _events([event], registry_wide=row.model_id is None)[0]
        if chosen not in row.events:
            raise InvalidArgument(f"Webhook {row.id} is not subscribed to {chosen}.", {"field": "event"})
    if row.status == "DISABLED":
        raise InvalidArgument(f"Webhook {row.id} is DISABLED; set it to ACTIVE or TEST_MODE to test it.",
                              {"field": "id"})
    return row, chosen
