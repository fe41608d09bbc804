"""Webhook secrets are encrypted at rest, never stored or shown in clear; keys rotate."""
from __future__ import annotations

from sqlalchemy import text

from registry.events import sealing
from registry.services import models, webhooks


def stored(db_session, webhook_id: int):
    return db_session.execute(text("SELECT http_secret, http_authorization FROM registry_webhooks WHERE id = :id"),
                              {"id": webhook_id}).one()


def test_secrets_are_stored_sealed(ctx, alice, db_session):
    models.create_model(alice, "fraud")
    created = webhooks.create_webhook(alice, ["MODEL_VERSION_CREATED"], model_name="fraud", http=webhooks.HttpTarget(
        url="https://hooks.example/x", secret="s3cr3t-value", authorization="Bearer t0ken"))

    secret, authorization = stored(db_session, created.id)
    assert secret.startswith(sealing.PREFIX) and "s3cr3t-value" not in secret and "t0ken" not in authorization
    assert (sealing.unseal(secret), sealing.unseal(authorization)) == ("s3cr3t-value", "Bearer t0ken")


def test_a_value_sealed_with_an_old_key_opens_after_rotation(app, monkeypatch):
    old, new = "o" * 32, "n" * 32
    with app.app_context():
        monkeypatch.setitem(app.config, "REGISTRY_SETTINGS",
                            app.config["REGISTRY_SETTINGS"].with_overrides({"secret_keys": (old,)}))
        sealed = sealing.seal("s3cr3t")
        monkeypatch.setitem(app.config, "REGISTRY_SETTINGS",
                            app.config["REGISTRY_SETTINGS"].with_overrides({"secret_keys": (new, old)}))
        assert sealing.unseal(sealed) == "s3cr3t"
        resealed = sealing.seal("s3cr3t")
        monkeypatch.setitem(app.config, "REGISTRY_SETTINGS",
                            app.config["REGISTRY_SETTINGS"].with_overrides({"secret_keys": (new,)}))
        assert sealing.unseal(resealed) == "s3cr3t"


def test_values_stored_before_sealing_are_read_as_they_are(app):
    with app.app_context():
        assert sealing.unseal("legacy-secret") == "legacy-secret"
