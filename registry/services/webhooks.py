"""Registry webhooks: create, update, delete, list (Databricks' registry-webhooks semantics). Storage only.

Delivery happens after commit, from the outbox, outside the request (``registry/events/``); a webhook's
``topics`` (what the outbox trigger matches) are derived from its events here. ``test_webhook`` is the one
call that reaches a receiver from a request, as Databricks' test endpoint does: synchronously, with a made-up
event, logged like a delivery.

Rules: a model-scoped webhook needs MANAGE on its model (to create, change, delete, test or see it); a
registry-wide one (no model) is for admins only, and only registry-wide webhooks may subscribe to
REGISTERED_MODEL_CREATED. Secrets (HMAC secret, Authorization value, job access token) are write-only:
records never carry them.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import select

from .. import names, pagination
from ..audit import Action, record, record_registry
from ..auth import Actor
from ..errors import InvalidArgument, NotFound
from ..lifecycle import Permission
from ..events import databricks
from ..events.deliveries import record_attempt
from ..events.dispatcher import send
from ..events.network import Policy, Refused
from ..events.sealing import seal, unseal
from ..extensions import settings
from ..events.topics import databricks_topics
from ..orm import RegistryWebhook, WebhookDelivery
from ..db.loading import find_model, lock_model
from .access import authorize, level, lock_parent, require_admin
from ..db.unit_of_work import now, read_only, session, use_case

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
MAX_URL = 4096
MAX_SECRET = 4096


@dataclass(frozen=True)
class HttpTarget:
    url: str
    secret: str | None = None
    authorization: str | None = None
    enable_ssl_verification: bool = True


@dataclass(frozen=True)
class JobTarget:
    job_id: str
    access_token: str
    workspace_url: str | None = None


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


def _url(raw: object, field: str) -> str:
    text = names.bounded_text(raw, field, MAX_URL, required=True)
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidArgument(f"{field} must be an absolute http(s) URL.", {"field": field})
    # As Databricks, https only; but a self-hosted registry often notifies services on its own private
    # network, so the operator may allow http (the dispatcher checks again: the setting may change).
    if parts.scheme == "http" and not settings().webhook_allow_http:
        raise InvalidArgument(f"{field} must be an https URL (the operator may allow http with "
                              "REGISTRY_WEBHOOK_ALLOW_HTTP=true).", {"field": field})
    # A URL is shown to whoever manages the webhook and recorded in the audit trail; credentials belong in the
    # write-only http_url_spec.authorization (e.g. "Basic <base64>"), which neither ever shows.
    if "@" in parts.netloc:
        raise InvalidArgument(f"{field} must not carry credentials (user:password@); send them in "
                              "http_url_spec.authorization instead.", {"field": field})
    return text


def _without_credentials(url: str | None) -> str | None:
    """The URL without its user:password@ part (URLs stored before those were refused may have one)."""
    parts = urlsplit(url) if url is not None else None
    if parts is None or "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def _optional(raw: object, field: str, maximum: int = MAX_SECRET) -> str | None:
    return names.bounded_text(raw, field, maximum) or None


def _check_http(target: HttpTarget) -> HttpTarget:
    if not isinstance(target.enable_ssl_verification, bool):
        raise InvalidArgument("enable_ssl_verification must be a boolean.",
                              {"field": "http_url_spec.enable_ssl_verification"})
    return HttpTarget(_url(target.url, "http_url_spec.url"), _optional(target.secret, "http_url_spec.secret"),
                      _optional(target.authorization, "http_url_spec.authorization"),
                      target.enable_ssl_verification)


def _check_job(target: JobTarget) -> JobTarget:
    job_id = names.bounded_text(target.job_id, "job_spec.job_id", 256, required=True)
    token = names.bounded_text(target.access_token, "job_spec.access_token", MAX_SECRET, required=True)
    workspace = _url(target.workspace_url, "job_spec.workspace_url") if target.workspace_url else None
    return JobTarget(job_id, token, workspace)


def _set_target(row: RegistryWebhook, http: HttpTarget | None, job: JobTarget | None) -> None:
    if http is not None and job is not None:
        raise InvalidArgument("Give either http_url_spec or job_spec, not both.", {"field": "http_url_spec"})
    if http is not None:
        http = _check_http(http)
        row.http_url, row.http_secret, row.http_authorization = http.url, seal(http.secret), seal(http.authorization)
        row.enable_ssl_verification = http.enable_ssl_verification
        row.job_id = row.job_access_token = row.job_workspace_url = None
    elif job is not None:
        job = _check_job(job)
        row.job_id, row.job_access_token, row.job_workspace_url = job.job_id, seal(job.access_token), job.workspace_url
        row.http_url = row.http_secret = row.http_authorization = None
        row.enable_ssl_verification = True


def _webhook_id(raw: object) -> int:
    text = str(raw).strip() if isinstance(raw, (str, int)) and not isinstance(raw, bool) else ""
    if not text.isdigit() or len(text) > 18:
        raise _not_found(raw)
    return int(text)


def _not_found(raw: object) -> NotFound:
    return NotFound(f"Registry webhook {raw} not found.", {"webhook_id": str(raw)})


# --- Authorisation ----------------------------------------------------------------------------------

def _load(actor: Actor, raw_id: object, doing: str, *, lock: bool = False,
          dialect: str | None = "databricks") -> RegistryWebhook:
    """The webhook, if the actor may manage it; a webhook on a model the actor cannot read is "not found".
    Each dialect's API sees its own webhooks only (``dialect``; None: any, for the delivery log).

    With ``lock``, the model row is locked first (the lock every model write takes first), then the webhook.
    """
    webhook_id = _webhook_id(raw_id)
    s = session()
    row = s.get(RegistryWebhook, webhook_id)
    if row is None or (dialect is not None and row.dialect != dialect):
        raise _not_found(raw_id)
    if row.model_id is None:
        require_admin(actor, f"{doing} a registry-wide webhook")
    else:
        model = row.model
        if lock:
            model = lock_parent(select(RegistryWebhook.model_id).where(RegistryWebhook.id == webhook_id),
                                _not_found(raw_id))
        authorize(actor, model, Permission.MANAGE, f"{doing} a webhook", missing=_not_found(raw_id))
    if lock:
        row = s.scalars(select(RegistryWebhook).where(RegistryWebhook.id == webhook_id)
                        .with_for_update(of=RegistryWebhook).execution_options(populate_existing=True)).one_or_none()
        if row is None:  # deleted while we waited for the lock
            raise _not_found(raw_id)
    return row


def managed_webhook(actor: Actor, raw_id: object, doing: str, *, lock: bool = False,
                    dialect: str | None = None) -> RegistryWebhook:
    """The webhook if ``actor`` may manage it (see ``_load``): for the delivery log, replay and the other
    dialects' APIs."""
    return _load(actor, raw_id, doing, lock=lock, dialect=dialect)


def checked_url(raw: object, field: str) -> str:
    return _url(raw, field)


def audit_webhook(actor: Actor, row: RegistryWebhook, action: Action, when, **extra) -> None:
    _audit(actor, row, action, when, **extra)


def may_manage(actor: Actor, model_id: int | None, levels: dict[int, int]) -> bool:
    """Whether ``actor`` may see a webhook on ``model_id`` (None: registry-wide); ``levels`` memoises."""
    if model_id is None:
        return actor.is_admin
    return levels.setdefault(model_id, level(actor, model_id)) >= Permission.MANAGE


def _audit(actor: Actor, row: RegistryWebhook, action: Action, when, **extra) -> None:
    """Webhook changes are audited without their secrets (nor the job's access token)."""
    details = {"webhook_id": row.id, "events": list(row.events), "status": row.status,
               "http_url": _without_credentials(row.http_url), "job_id": row.job_id, **extra}
    if row.model_id is None:
        record_registry(session(), actor, action, details=details, now=when)
    else:
        record(session(), actor, action, model_id=row.model_id, model_name=row.model.name, details=details,
               now=when)


# --- Use cases --------------------------------------------------------------------------------------

@use_case
def create_webhook(actor: Actor, events: list[str], *, model_name: str | None = None,
                   description: str | None = None, status: str | None = None,
                   http: HttpTarget | None = None, job: JobTarget | None = None) -> WebhookRecord:
    registry_wide = model_name is None
    wanted = _events(events, registry_wide=registry_wide)
    description = names.bounded_text(description, "description", names.MAX_DESCRIPTION) or ""
    status = _status(status or "ACTIVE")
    if http is None and job is None:
        raise InvalidArgument("A webhook needs http_url_spec or job_spec.", {"field": "http_url_spec"})
    if registry_wide:
        require_admin(actor, "Creating a registry-wide webhook")
        model_id = None
    else:
        model = lock_model(names.model_name(model_name, "model_name"))
        authorize(actor, model, Permission.MANAGE, "Creating a webhook")
        model_id = model.id
    when = now()
    row = RegistryWebhook(model_id=model_id, events=wanted, topics=databricks_topics(wanted),
                          description=description, status=status, created_by=actor.name, created_at=when, updated_at=when)
    _set_target(row, http, job)
    s = session()
    s.add(row)
    s.flush()
    s.refresh(row)
    _audit(actor, row, Action.WEBHOOK_CREATED, when)
    return _record(row)


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
        row.description = names.bounded_text(description, "description", names.MAX_DESCRIPTION) or ""
    if status is not None:
        row.status = _status(status)
    _set_target(row, http, job)
    row.updated_at = now()
    session().flush()
    _audit(actor, row, Action.WEBHOOK_UPDATED, row.updated_at)
    return _record(row)


@use_case
def delete_webhook(actor: Actor, webhook_id: object) -> None:
    row = _load(actor, webhook_id, "Deleting", lock=True)
    _audit(actor, row, Action.WEBHOOK_DELETED, now())
    session().delete(row)
    session().flush()


@read_only
def list_webhooks(actor: Actor, *, model_name: str | None = None, events: list[str] | None = None,
                  max_results: int | None = None, page_token: str | None = None) -> pagination.Page[WebhookRecord]:
    """Webhooks the actor manages, oldest first; ``events`` keeps those subscribed to any of them."""
    limit = pagination.page_size(max_results)
    wanted = _events(events, registry_wide=True) if events else []
    fp = pagination.fingerprint({"kind": "webhooks", "model_name": model_name, "events": sorted(wanted)})
    stmt = select(RegistryWebhook).where(RegistryWebhook.dialect == "databricks")
    if model_name is not None:
        model = find_model(names.model_name(model_name, "model_name"))
        authorize(actor, model, Permission.MANAGE, "Listing webhooks")
        stmt = stmt.where(RegistryWebhook.model_id == model.id)
    if wanted:
        stmt = stmt.where(RegistryWebhook.events.overlap(wanted))
    after = pagination.decode_id(page_token, fp)
    if after is not None:
        stmt = stmt.where(RegistryWebhook.id > after)
    stmt = stmt.order_by(RegistryWebhook.id)
    items: list[WebhookRecord] = []
    levels: dict[int, int] = {}
    more = False
    # Visibility is decided row by row (admins see all; others the webhooks of models they MANAGE), so rows
    # are streamed until the page is full and one more visible row proves there is a next page.
    for row in session().scalars(stmt).yield_per(200):
        if not may_manage(actor, row.model_id, levels):
            continue
        if len(items) == limit:
            more = True
            break
        items.append(_record(row))
    token = pagination.encode([items[-1].id], fp) if more else None
    return pagination.Page(items, token)


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
    outcome, body = send(request, Policy.from_settings(settings()))
    log_test(webhook_id, chosen, outcome)
    if outcome.status_code is None:
        raise InvalidArgument(f"The test event was not delivered: {outcome.error}", {"field": "id"})
    return TestResult(chosen, outcome.status_code, body or "")


@read_only
def _prepare_test(actor: Actor, webhook_id: object, event: str | None):
    row = _choose_test_event(actor, webhook_id, event)
    chosen = row[1]
    row = row[0]
    when_ms = int(now().timestamp() * 1000)
    what = databricks.test_occurrence(chosen, row.model.name if row.model is not None else None, when_ms)
    try:
        request = databricks.request(row, databricks.payload(chosen, row.id, what), secret=unseal(row.http_secret),
                                     authorization=unseal(row.http_authorization),
                                     job_token=unseal(row.job_access_token))
    except Refused as error:
        raise InvalidArgument(f"The test event cannot be sent: {error}", {"field": "id"}) from None
    return chosen, row.id, request


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
