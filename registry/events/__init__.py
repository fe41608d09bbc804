"""Events: a transactional outbox, webhook delivery in three dialects, and a pull feed.

**Outbox** (migration 0014). The audit trail is already the one choke point of every change (``audit.py``):
nothing changes a model without an audit event in the same transaction. A statement trigger on
``audit_events`` adds, in that transaction, an ``events`` row per audit event (the global event id; per model
it grows with the audit ``seq``) and a pending ``webhook_deliveries`` row for every ACTIVE webhook whose
``topics`` match (``topics.py``), then NOTIFYs ``registry_events``. A rolled-back change leaves neither; a
subscription created, changed or disabled before a commit applies to that commit's events.

**Dispatch** (``dispatcher.py``, ``deliveries.py``). Dispatchers, embedded in every server worker and/or run
as ``registry events dispatch``, claim due deliveries with ``FOR UPDATE SKIP LOCKED`` and keep the row lock
while calling the receiver: several share the work, none delivers what another holds, a crash releases the
lock (at least once, never lost). Only the oldest pending delivery of a (webhook, model) is claimable, so each
webhook gets a model's events in order. Failures retry with exponential backoff and jitter, or after
``Retry-After``, until ``REGISTRY_WEBHOOK_MAX_AGE_SECONDS``; then the delivery is *failed*, and stays in the log
to be redelivered. Every attempt is logged (``webhook_attempts``).

**Dialects**, one mechanism: ``databricks.py`` (registry webhooks: documented payloads, ``X-Databricks-Signature``,
job triggers), ``mlflow.py`` (MLflow 3 webhooks' wire and ``X-MLflow-Signature``) and ``native.py`` (Standard
Webhooks, with a rotation overlap); ``signing.py`` holds the signatures. Each dialect's API manages its own
webhooks (``services/webhooks.py``, ``mlflow_webhooks.py``, ``native_webhooks.py``) through shared steps: who may
manage which webhook (``webhook_access.py``), the shared fields (``webhook_fields.py``), storing, auditing, listing
and test calls (``webhook_storage.py``); the delivery log and replay are shared (``services/webhook_deliveries.py``).

**Network safety** (``network.py``): https only unless allowed; the peer address is checked after connecting
(private, loopback, link-local and metadata addresses refused unless allow-listed); no redirects; timeouts; a
size cap. Secrets are sealed at rest (``sealing.py``).

**Pull feed** (``feed.py``, ``services/event_feed.py``): events get feed positions after commit from one
sequencer at a time, so a cursor never skips an event that committed late; readers see what the audit trail
shows them.
"""
