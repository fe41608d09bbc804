"""The steps every dialect's webhook use cases share once the rules are checked: store, change or delete a
webhook with its audit event (in the caller's transaction), list the webhooks an actor may see a page at a
time, and make and log a test call. Webhook changes are audited without their secrets.
"""
from __future__ import annotations

from datetime import datetime
from typing import Callable, TypeVar

from sqlalchemy import Select

from .. import pagination
from ..audit import Action, record, record_registry
from ..auth import Actor
from ..db.unit_of_work import now, session, use_case
from ..events.deliveries import record_attempt
from ..events.dispatcher import send
from ..events.network import Policy
from ..extensions import settings
from ..orm import RegistryWebhook, WebhookDelivery
from .webhook_access import managed_webhook, may_manage
from .webhook_fields import without_credentials

T = TypeVar("T")


def audit_webhook(actor: Actor, row: RegistryWebhook, action: Action, when, **extra) -> None:
    """Webhook changes are audited without their secrets (nor the job's access token)."""
    details = {"webhook_id": row.id, "events": list(row.events), "status": row.status,
               "http_url": without_credentials(row.http_url), "job_id": row.job_id, **extra}
    if row.model_id is None:
        record_registry(session(), actor, action, details=details, now=when)
    else:
        record(session(), actor, action, model_id=row.model_id, model_name=row.model.name, details=details,
               now=when)


def add_webhook(actor: Actor, row: RegistryWebhook, when: datetime) -> RegistryWebhook:
    """Store a new webhook and record its creation at ``when``."""
    s = session()
    s.add(row)
    s.flush()
    s.refresh(row)
    audit_webhook(actor, row, Action.WEBHOOK_CREATED, when)
    return row


def save_change(actor: Actor, row: RegistryWebhook, when: datetime | None = None, **extra) -> RegistryWebhook:
    """Write the changes made to ``row`` and record them (``extra``: more audit details)."""
    row.updated_at = when or now()
    session().flush()
    audit_webhook(actor, row, Action.WEBHOOK_UPDATED, row.updated_at, **extra)
    return row


def remove_webhook(actor: Actor, webhook_id: object, dialect: str) -> None:
    """Delete the webhook, if the actor may manage it, and record the deletion."""
    row = managed_webhook(actor, webhook_id, "Deleting", lock=True, dialect=dialect)
    audit_webhook(actor, row, Action.WEBHOOK_DELETED, now())
    session().delete(row)
    session().flush()


def visible_page(actor: Actor, stmt: Select, fp: str, limit: int, page_token: str | None,
                 as_record: Callable[[RegistryWebhook], T]) -> pagination.Page[T]:
    """A page (``limit`` long at most) of the webhooks ``stmt`` selects that the actor may manage, oldest
    first."""
    after = pagination.decode_id(page_token, fp)
    if after is not None:
        stmt = stmt.where(RegistryWebhook.id > after)
    items: list[T] = []
    ids: list[int] = []
    levels: dict[int, int] = {}
    more = False
    # Visibility is decided row by row (admins see all; others the webhooks of models they MANAGE), so rows
    # are streamed until the page is full and one more visible row proves there is a next page.
    for row in session().scalars(stmt.order_by(RegistryWebhook.id)).yield_per(200):
        if not may_manage(actor, row.model_id, levels):
            continue
        if len(items) == limit:
            more = True
            break
        items.append(as_record(row))
        ids.append(row.id)
    return pagination.Page(items, pagination.encode([ids[-1]], fp) if more else None)


def call_receiver(webhook_id: int, event: str, request):
    """Send a test call's request now and log it; the outcome and the receiver's body. Call it with no
    transaction open: the receiver may be slow."""
    outcome, body = send(request, Policy.from_settings(settings()))
    log_test(webhook_id, event, outcome)
    return outcome, body


@use_case
def log_test(webhook_id: int, event: str, outcome) -> None:
    """A test call (of any dialect) is logged as a delivery without an event (``test_event``), settled."""
    s = session()
    when = now()
    delivery = WebhookDelivery(webhook_id=webhook_id, event_id=None, test_event=event, model_id=0,
                               state="delivered" if outcome.delivered else "failed", attempts=1,
                               next_attempt_at=when, created_at=when, finished_at=when)
    s.add(delivery)
    s.flush()
    record_attempt(s.connection(), delivery.id, outcome, when)
