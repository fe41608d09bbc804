"""The outbox: every audited change writes its event, and a pending delivery for each matching ACTIVE webhook,
in the transaction of the change (the trigger on audit_events is the one choke point)."""
from __future__ import annotations

import pytest
from sqlalchemy import text

from registry.errors import RegistryError
from registry.extensions import db
from registry.services import models, stages, versions, webhooks


def rows(sql: str, **params):
    found = [tuple(r) for r in db.session.execute(text(sql), params)]
    db.session.rollback()
    return found


def hook(actor, events, *, model="fraud", status="ACTIVE"):
    return webhooks.create_webhook(actor, events, model_name=model, status=status,
                                   http=webhooks.HttpTarget(url="https://hooks.example/x", secret="s3cr3t"))


def test_every_audit_event_gets_an_event_row_in_order(ctx, alice):
    models.create_model(alice, "fraud")
    versions.create_version(alice, "fraud", "s3://b/1")
    stages.transition_stage(alice, "fraud", 1, "Staging")

    audited = rows("SELECT a.id, a.action FROM audit_events a WHERE a.model_name = 'fraud' ORDER BY a.id")
    outbox = rows("SELECT a.id, a.action FROM events e JOIN audit_events a ON a.id = e.audit_event_id "
                  "WHERE a.model_name = 'fraud' ORDER BY e.id")
    assert outbox == audited and [a for _, a in outbox] == ["model.created", "version.created",
                                                            "version.transitioned"]


def test_a_matching_active_webhook_gets_a_pending_delivery(ctx, alice):
    models.create_model(alice, "fraud")
    created = hook(alice, ["MODEL_VERSION_CREATED", "MODEL_VERSION_TRANSITIONED_TO_PRODUCTION"])
    hook(alice, ["MODEL_VERSION_CREATED"], status="TEST_MODE")
    hook(alice, ["MODEL_VERSION_CREATED"], status="DISABLED")
    versions.create_version(alice, "fraud", "s3://b/1")
    stages.transition_stage(alice, "fraud", 1, "Staging")  # not subscribed: only to Production
    stages.transition_stage(alice, "fraud", 1, "Production")

    deliveries = rows("SELECT d.webhook_id, a.action, a.to_stage, d.state FROM webhook_deliveries d "
                      "JOIN events e ON e.id = d.event_id JOIN audit_events a ON a.id = e.audit_event_id "
                      "ORDER BY d.id")
    assert deliveries == [(created.id, "version.created", "None", "pending"),
                          (created.id, "version.transitioned", "Production", "pending")]


def test_a_webhook_on_another_model_gets_nothing_and_a_registry_wide_one_everything_it_wants(ctx, alice):
    models.create_model(alice, "fraud")
    models.create_model(alice, "churn")
    hook(alice, ["MODEL_VERSION_CREATED"], model="churn")
    wide = webhooks.create_webhook(alice, ["REGISTERED_MODEL_CREATED", "MODEL_VERSION_CREATED"],
                                   http=webhooks.HttpTarget(url="https://hooks.example/all"))
    models.create_model(alice, "spam")
    versions.create_version(alice, "fraud", "s3://b/1")

    assert rows("SELECT d.webhook_id, a.action, a.model_name FROM webhook_deliveries d JOIN events e "
                "ON e.id = d.event_id JOIN audit_events a ON a.id = e.audit_event_id ORDER BY d.id") == [
        (wide.id, "model.created", "spam"), (wide.id, "version.created", "fraud")]


def test_a_request_for_an_alias_is_no_transition_request(ctx, alice):
    from registry.events.topics import databricks_event

    assert databricks_event(["TRANSITION_REQUEST_CREATED"], "request.created", None) is None
    assert databricks_event(["TRANSITION_REQUEST_CREATED"], "request.created", "Production") == \
        "TRANSITION_REQUEST_CREATED"
    assert databricks_event(["TRANSITION_REQUEST_CREATED", "TRANSITION_REQUEST_TO_PRODUCTION_CREATED"],
                            "request.created", "Production") == "TRANSITION_REQUEST_TO_PRODUCTION_CREATED"


def test_a_failed_write_leaves_no_event_and_no_delivery(ctx, alice):
    models.create_model(alice, "fraud")
    hook(alice, ["MODEL_VERSION_TRANSITIONED_STAGE"])
    before = rows("SELECT count(*) FROM events")
    with pytest.raises(RegistryError):
        stages.transition_stage(alice, "fraud", 7, "Staging")  # no such version

    assert rows("SELECT count(*) FROM events") == before
    assert rows("SELECT count(*) FROM webhook_deliveries") == [(0,)]


def test_a_subscription_change_applies_to_the_next_event(ctx, alice):
    models.create_model(alice, "fraud")
    created = hook(alice, ["MODEL_VERSION_CREATED"])
    versions.create_version(alice, "fraud", "s3://b/1")
    webhooks.update_webhook(alice, created.id, status="DISABLED")
    versions.create_version(alice, "fraud", "s3://b/2")
    webhooks.update_webhook(alice, created.id, status="ACTIVE", events=["MODEL_VERSION_TAG_SET"])
    versions.create_version(alice, "fraud", "s3://b/3")
    versions.set_version_tag(alice, "fraud", 3, "k", "v")

    assert rows("SELECT a.action, a.version FROM webhook_deliveries d JOIN events e ON e.id = d.event_id "
                "JOIN audit_events a ON a.id = e.audit_event_id ORDER BY d.id") == [
        ("version.created", 1), ("version.tag_set", 3)]
