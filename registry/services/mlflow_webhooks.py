"""MLflow 3 webhooks (``/api/2.0/mlflow/webhooks``): registry-wide, so admins only (as every registry-wide
webhook here). Events are MLflow's ``entity.action`` names; the user gives the secret (optional, write-only,
sealed). Stored with ``dialect = 'mlflow'``; delivered from the outbox like the others, which MLflow itself
does not do (it posts from a thread after the write, and forgets what it could not deliver)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from .. import names, pagination
from ..auth import Actor
from ..db.unit_of_work import now, read_only, use_case
from ..errors import InvalidArgument
from ..events import mlflow
from ..events.sealing import seal, unseal
from ..events.topics import MLFLOW, mlflow_topics
from ..orm import RegistryWebhook
from .access import require_admin
from .webhook_access import managed_webhook
from .webhook_fields import checked_description, checked_url
from .webhook_storage import add_webhook, call_receiver, remove_webhook, save_change, visible_page

STATUSES = ("ACTIVE", "DISABLED")


@dataclass(frozen=True)
class MlflowWebhook:
    id: int
    name: str
    description: str
    url: str
    events: tuple[str, ...]
    status: str
    created_at: datetime
    updated_at: datetime


def _record(row: RegistryWebhook) -> MlflowWebhook:
    return MlflowWebhook(row.id, row.name or "", row.description, row.http_url, tuple(row.events), row.status,
                         row.created_at, row.updated_at)


def _events(raw: object) -> list[str]:
    if not isinstance(raw, (list, tuple)) or not raw:
        raise InvalidArgument("events must be a non-empty list of webhook events.", {"field": "events"})
    found = []
    for event in raw:
        if event not in MLFLOW:
            raise InvalidArgument(f"Invalid webhook event {event!r}; one of {sorted(MLFLOW)}.", {"field": "events"})
        if event not in found:
            found.append(event)
    return found


def _status(raw: object) -> str:
    if raw not in STATUSES:
        raise InvalidArgument(f"Invalid webhook status {raw!r}; one of {list(STATUSES)}.", {"field": "status"})
    return raw


def _name(raw: object) -> str:
    return names.bounded_text(raw, "name", 256, required=True)


def _load(actor: Actor, webhook_id: object, doing: str, *, lock: bool = False) -> RegistryWebhook:
    return managed_webhook(actor, webhook_id, doing, lock=lock, dialect="mlflow")


@use_case
def create(actor: Actor, *, name: object, url: object, events: object, description: str | None = None,
           secret: str | None = None, status: str | None = None) -> MlflowWebhook:
    require_admin(actor, "Creating a webhook")
    wanted = _events(events)
    when = now()
    row = RegistryWebhook(dialect="mlflow", name=_name(name), http_url=checked_url(url, "url"), events=wanted,
                          topics=mlflow_topics(wanted), status=_status(status or "ACTIVE"),
                          description=checked_description(description),
                          http_secret=seal(names.bounded_text(secret, "secret", 4096) or None),
                          created_by=actor.name, created_at=when, updated_at=when)
    return _record(add_webhook(actor, row, when))


@read_only
def get(actor: Actor, webhook_id: object) -> MlflowWebhook:
    return _record(_load(actor, webhook_id, "Reading"))


@read_only
def search(actor: Actor, max_results: int | None = None, page_token: str | None = None):
    require_admin(actor, "Listing webhooks")
    limit = pagination.page_size(max_results)
    fp = pagination.fingerprint({"kind": "mlflow-webhooks"})
    # MLflow webhooks are registry-wide: an admin sees every one.
    stmt = select(RegistryWebhook).where(RegistryWebhook.dialect == "mlflow")
    return visible_page(actor, stmt, fp, limit, page_token, _record)


@use_case
def update(actor: Actor, webhook_id: object, *, name: str | None = None, description: str | None = None,
           url: str | None = None, events: list[str] | None = None, secret: str | None = None,
           status: str | None = None) -> MlflowWebhook:
    """MLflow's rules: only what is given changes; an empty secret removes it."""
    row = _load(actor, webhook_id, "Changing", lock=True)
    if name is not None:
        row.name = _name(name)
    if description is not None:
        row.description = checked_description(description)
    if url is not None:
        row.http_url = checked_url(url, "url")
    if events is not None:
        row.events = _events(events)
        row.topics = mlflow_topics(row.events)
    if secret is not None:
        row.http_secret = seal(names.bounded_text(secret, "secret", 4096) or None)
    if status is not None:
        row.status = _status(status)
    return _record(save_change(actor, row))


@use_case
def delete(actor: Actor, webhook_id: object) -> None:
    remove_webhook(actor, webhook_id, "mlflow")


@dataclass(frozen=True)
class TestResult:
    success: bool
    response_status: int | None
    response_body: str | None
    error_message: str | None


def test(actor: Actor, webhook_id: object, event: str | None = None) -> TestResult:
    """MLflow's test: the example payload of ``event`` (default: the webhook's first), sent now; the receiver's
    answer, or the error. Logged in the delivery log."""
    row_id, chosen, request = _prepare_test(actor, webhook_id, event)
    outcome, body = call_receiver(row_id, chosen, request)
    if outcome.status_code is None:
        return TestResult(False, None, None, f"Failed to test webhook: {outcome.error}")
    return TestResult(outcome.status_code < 400, outcome.status_code, body, None)


@read_only
def _prepare_test(actor: Actor, webhook_id: object, event: str | None):
    row = _load(actor, webhook_id, "Testing")
    chosen = _events([event])[0] if event is not None else row.events[0]
    when_ms = int(now().timestamp() * 1000)
    return row.id, chosen, mlflow.request(row.http_url, f"test-{row.id}-{when_ms}", chosen, mlflow.example(chosen),
                                          unseal(row.http_secret))
