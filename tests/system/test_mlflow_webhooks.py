"""MLflow 3 webhooks through the unmodified MLflow client, delivered by the server's embedded dispatcher to a
receiver on loopback that verifies them as MLflow's documentation says (and with MLflow's own signer)."""
from __future__ import annotations

import base64
import hashlib
import hmac

from mlflow.entities.webhook import WebhookEvent, WebhookStatus

try:  # MLflow's own signer (private; compared against when this MLflow version has it)
    from mlflow.webhooks.delivery import _generate_hmac_signature
except ImportError:  # pragma: no cover
    _generate_hmac_signature = None

from tests.clients import unique
from tests.events.receiver import Receiver


def verify_mlflow_signature(payload: str, signature: str, secret: str, delivery_id: str, timestamp: str) -> bool:
    """The receiver-side check from MLflow's webhook documentation."""
    if not signature or not signature.startswith("v1,"):
        return False
    signed_content = f"{delivery_id}.{timestamp}.{payload}"
    expected = base64.b64encode(hmac.new(secret.encode("utf-8"), signed_content.encode("utf-8"),
                                         hashlib.sha256).digest()).decode("utf-8")
    return hmac.compare_digest(signature[3:], expected)


def verified(request, secret: str) -> dict:
    headers = request.headers
    payload = request.body.decode()
    assert verify_mlflow_signature(payload, headers["X-MLflow-Signature"], secret, headers["X-MLflow-Delivery-Id"],
                                   headers["X-MLflow-Timestamp"])
    if _generate_hmac_signature is not None:
        assert headers["X-MLflow-Signature"] == _generate_hmac_signature(
            secret, headers["X-MLflow-Delivery-Id"], headers["X-MLflow-Timestamp"], payload)
    return request.json


def test_the_mlflow_client_manages_webhooks_and_events_arrive_signed(client):
    with Receiver() as receiver:
        hook = client.create_webhook(name="deploys", url=receiver.url, secret="s3cr3t", description="ci",
                                     events=["model_version.created", "model_version_alias.created"])
        assert (hook.name, hook.url, hook.status, hook.description) == ("deploys", receiver.url,
                                                                         WebhookStatus.ACTIVE, "ci")
        assert [str(e) for e in hook.events] == ["model_version.created", "model_version_alias.created"]
        assert hook.webhook_id in [w.webhook_id for w in client.list_webhooks()]
        assert client.get_webhook(hook.webhook_id).name == "deploys"

        tested = client.test_webhook(hook.webhook_id, event=WebhookEvent("model_version", "created"))
        assert (tested.success, tested.response_status) == (True, 200)
        test_call = verified(receiver.wait_for(1)[0], "s3cr3t")
        assert (test_call["entity"], test_call["action"]) == ("model_version", "created")

        name = unique("hooked")
        client.create_registered_model(name)
        client.create_model_version(name, "s3://bucket/model", run_id="run-1")
        client.set_registered_model_alias(name, "champion", "1")
        received = receiver.wait_for(3)
        events = [verified(r, "s3cr3t") for r in received[1:]]
        assert [(e["entity"], e["action"], e["data"]) for e in events] == [
            ("model_version", "created", {"name": name, "version": "1", "source": "s3://bucket/model",
                                          "run_id": "run-1", "tags": {}, "description": None}),
            ("model_version_alias", "created", {"name": name, "alias": "champion", "version": "1"})]

        changed = client.update_webhook(hook.webhook_id, status=WebhookStatus.DISABLED, name="paused")
        assert (changed.status, changed.name, changed.url) == (WebhookStatus.DISABLED, "paused", receiver.url)
        client.delete_webhook(hook.webhook_id)
        assert hook.webhook_id not in [w.webhook_id for w in client.list_webhooks()]
