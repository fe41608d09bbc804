"""Native webhooks over the API, delivered to a real receiver that verifies them with the reference
Standard Webhooks library; secret rotation with an overlap; filters by model and event type."""
from __future__ import annotations

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from registry.services import models, stages, versions

from .receiver import Receiver
from .test_delivery import states, wait_until

ADMIN = {"X-Registry-Actor": "alice"}


def ok(response, status=200):
    assert response.status_code == status, response.get_data(as_text=True)
    return response.get_json()


def test_a_stage_move_is_delivered_signed_as_standard_webhooks_says(live, live_app, alice, dispatchers):
    client = live_app.test_client()
    with Receiver() as receiver:
        models.create_model(alice, "fraud")
        models.create_model(alice, "churn")
        made = ok(client.post("/api/v1/webhooks", json={"url": receiver.url, "model": "fraud",
                                                        "events": ["version.transitioned:Production"]},
                              headers=ADMIN), 201)
        assert made["secret"].startswith("whsec_")
        assert "secret" not in ok(client.get(f"/api/v1/webhooks/{made['id']}", headers=ADMIN))
        dispatchers(1)
        for name in ("churn", "fraud"):
            for n in (1, 2):
                versions.create_version(alice, name, f"s3://b/{n}")
                stages.transition_stage(alice, name, n, "Staging")
                stages.transition_stage(alice, name, n, "Production", archive_existing_versions=True)
        received = receiver.wait_for(2)
        wait_until(lambda: states() == ["delivered"] * 2)

    verified = [Webhook(made["secret"]).verify(r.body, r.headers) for r in received]
    assert [(v["type"], v["data"]["model"], v["data"]["version"], v["data"]["previous_version"],
             v["data"]["new_version"]) for v in verified] == [
        ("version.transitioned", "fraud", 1, None, 1), ("version.transitioned", "fraud", 2, 1, 2)]
    assert verified[1]["data"]["seq"] > verified[0]["data"]["seq"] and verified[1]["data"]["actor"] == "alice"
    assert len({r.headers["webhook-id"] for r in received}) == 2


def test_after_a_rotation_both_secrets_verify_until_the_overlap_ends(live, live_app, alice, dispatchers):
    client = live_app.test_client()
    with Receiver() as receiver:
        models.create_model(alice, "fraud")
        made = ok(client.post("/api/v1/webhooks", json={"url": receiver.url, "events": ["version.created"]},
                              headers=ADMIN), 201)
        rotated = ok(client.post(f"/api/v1/webhooks/{made['id']}/rotate-secret", json={"overlap_seconds": 3600},
                                 headers=ADMIN))
        assert rotated["secret"] != made["secret"] and rotated["previous_secret_until"] is not None
        dispatchers(1)
        versions.create_version(alice, "fraud", "s3://b/1")
        [first] = receiver.wait_for(1)
        ok(client.post(f"/api/v1/webhooks/{made['id']}/rotate-secret", json={"overlap_seconds": 0}, headers=ADMIN))
        versions.create_version(alice, "fraud", "s3://b/2")
        second = receiver.wait_for(2)[1]

    for secret in (made["secret"], rotated["secret"]):
        Webhook(secret).verify(first.body, first.headers)
    try:
        Webhook(rotated["secret"]).verify(second.body, second.headers)
        assert False, "the rotated-out secret still verifies after an overlap of 0"
    except WebhookVerificationError:
        pass


def test_the_test_call_sends_a_verifiable_test_event(live, live_app, alice):
    client = live_app.test_client()
    with Receiver(answers=[(418, {})]) as receiver:
        models.create_model(alice, "fraud")
        made = ok(client.post("/api/v1/webhooks", json={"url": receiver.url, "model": "fraud",
                                                        "events": ["alias.set"]}, headers=ADMIN), 201)
        answer = ok(client.post(f"/api/v1/webhooks/{made['id']}/test", json={}, headers=ADMIN))
        [sent] = receiver.wait_for(1)
    assert (answer["event"], answer["status_code"], answer["body"]) == ("alias.set", 418, "try later")
    assert Webhook(made["secret"]).verify(sent.body, sent.headers)["data"]["test"] is True
    log = ok(client.get(f"/api/v1/webhooks/{made['id']}/deliveries", headers=ADMIN))["deliveries"]
    assert [(d["test_event"], d["state"], d["attempts"][0]["status_code"]) for d in log] == [("alias.set", "failed", 418)]
