"""The pull feed (/api/v1/events) and the delivery log and redelivery (/api/v1/webhooks/{id}/...)."""
from __future__ import annotations

import json

import pytest

from .test_audit_visibility import HOOKS, MODEL, events, ok, world  # noqa: F401  (world is a fixture)

ADMIN = {"X-Registry-Actor": "alice"}


def feed(client, headers=ADMIN, **query) -> dict:
    return ok(client.get("/api/v1/events", query_string={"max_results": 1000, **query}, headers=headers))


@pytest.mark.parametrize("caller", ["reader", "editor", "manager", "root"])
def test_the_feed_shows_each_caller_exactly_the_audit_events_they_may_read(secure_client, world, caller):
    shown = [e["audit_event_id"] for e in feed(secure_client, world[caller])["events"]]
    assert shown == [e["id"] for e in events(secure_client, world[caller])]


def test_the_feed_pages_in_order_from_a_durable_cursor(client):
    ok(client.post("/api/v1/models", json={"name": "fraud"}, headers=ADMIN), 201)
    for n in range(1, 4):
        ok(client.post("/api/v1/models/fraud/versions", json={"source": f"s3://b/{n}"}, headers=ADMIN), 201)
    everything = feed(client)["events"]
    pages, cursor = [], "0"
    while True:
        page = feed(client, after=cursor, max_results=2)
        if not page["events"]:
            break
        pages += page["events"]
        cursor = page["cursor"]
    assert pages == everything and cursor == everything[-1]["cursor"]
    fraud = [(e["action"], e["version"], e["seq"]) for e in everything if e["model"] == "fraud"]
    assert fraud == [("model.created", None, 1), ("version.created", 1, 2), ("version.created", 2, 3),
                     ("version.created", 3, 4)]
    ok(client.post("/api/v1/models/fraud/versions", json={"source": "s3://b/4"}, headers=ADMIN), 201)
    assert [e["version"] for e in feed(client, after=cursor)["events"]] == [4]


def test_stage_and_alias_moves_carry_the_previous_and_the_new_version(client):
    ok(client.post("/api/v1/models", json={"name": "fraud"}, headers=ADMIN), 201)
    for n in (1, 2):
        ok(client.post("/api/v1/models/fraud/versions", json={"source": f"s3://b/{n}"}, headers=ADMIN), 201)
    cursor = feed(client)["cursor"]
    for n in (1, 2):
        ok(client.post(f"/api/v1/models/fraud/versions/{n}/transition", json={"stage": "Production",
                                                                          "archive_existing_versions": True},
                       headers=ADMIN))
        ok(client.put("/api/v1/models/fraud/aliases/champion", json={"version": n}, headers=ADMIN))
    moves = [(e["action"], e["version"], e["to_stage"], e["previous_version"], e["new_version"])
             for e in feed(client, after=cursor)["events"]]
    assert moves == [
        ("version.transitioned", 1, "Production", None, 1), ("alias.set", 1, None, None, 1),
        ("version.transitioned", 1, "Archived", None, 1),  # archived in favour of 2: Archived now serves 1
        ("version.transitioned", 2, "Production", 1, 2), ("alias.set", 2, None, 1, 2)]


@pytest.mark.parametrize("after", ["abc", "-1", "1" * 30])
def test_a_bad_cursor_is_a_400(client, after):
    response = client.get("/api/v1/events", query_string={"after": after}, headers=ADMIN)
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "INVALID_ARGUMENT"


def hook(client, headers, model=MODEL, **spec) -> str:
    made = ok(client.post(HOOKS, json={"model_name": model, "events": ["MODEL_VERSION_CREATED"],
                                       "http_url_spec": {"url": "https://hooks.example/x", "secret": "s3cr3t",
                                                         **spec}}, headers=headers))
    return made["webhook"]["id"]


def test_the_delivery_log_lists_a_webhooks_deliveries_without_secrets(secure_client, world):
    root = world["root"]
    webhook_id = hook(secure_client, root, authorization="Bearer t0ken")
    ok(secure_client.post(f"/api/v1/models/{MODEL}/versions", json={"source": "s3://b/1"}, headers=root), 201)
    log = ok(secure_client.get(f"/api/v1/webhooks/{webhook_id}/deliveries", headers=world["manager"]))
    [delivery] = log["deliveries"]
    assert (delivery["state"], delivery["attempts"], delivery["webhook_id"]) == ("pending", [], int(webhook_id))
    text = json.dumps(log)
    assert "s3cr3t" not in text and "t0ken" not in text
    by_event = ok(secure_client.get(f"/api/v1/events/{delivery['event_id']}/deliveries", headers=root))
    # world's own webhook on the model subscribes to MODEL_VERSION_CREATED too
    assert delivery["id"] in [d["id"] for d in by_event["deliveries"]] and len(by_event["deliveries"]) == 2


@pytest.mark.parametrize("caller", ["reader", "editor"])
def test_only_those_who_may_see_the_webhook_see_its_deliveries(secure_client, world, caller):
    root = world["root"]
    webhook_id = hook(secure_client, root)
    ok(secure_client.post(f"/api/v1/models/{MODEL}/versions", json={"source": "s3://b/1"}, headers=root), 201)
    [delivery] = ok(secure_client.get(f"/api/v1/webhooks/{webhook_id}/deliveries", headers=root))["deliveries"]

    denied = secure_client.get(f"/api/v1/webhooks/{webhook_id}/deliveries", headers=world[caller])
    assert denied.status_code == 403
    by_event = ok(secure_client.get(f"/api/v1/events/{delivery['event_id']}/deliveries", headers=world[caller]))
    assert by_event == {"deliveries": []}
    refused = secure_client.post(f"/api/v1/webhooks/{webhook_id}/redeliver", json={"delivery_id": delivery["id"]},
                                 headers=world[caller])
    assert refused.status_code == 403


def test_redelivery_of_a_range_queues_the_deliveries_again_and_is_audited(secure_client, world, db_session):
    from sqlalchemy import text

    root = world["root"]
    webhook_id = hook(secure_client, root)
    for n in (1, 2, 3):
        ok(secure_client.post(f"/api/v1/models/{MODEL}/versions", json={"source": f"s3://b/{n}"}, headers=root), 201)
    db_session.execute(text("UPDATE webhook_deliveries SET state = 'failed', finished_at = now()"))
    db_session.commit()
    delivered = ok(secure_client.get(f"/api/v1/webhooks/{webhook_id}/deliveries", headers=root))["deliveries"]
    first, last = min(d["event_id"] for d in delivered), max(d["event_id"] for d in delivered)

    answer = ok(secure_client.post(f"/api/v1/webhooks/{webhook_id}/redeliver",
                                   json={"from_event_id": first + 1, "to_event_id": last}, headers=world["manager"]))

    assert answer == {"redelivered": 2}
    states = {d["event_id"]: d["state"] for d in
              ok(secure_client.get(f"/api/v1/webhooks/{webhook_id}/deliveries", headers=root))["deliveries"]}
    assert states == {first: "failed", first + 1: "pending", last: "pending"}
    audited = events(secure_client, root, action="webhook.redelivered")
    assert [(e["actor"], e["details"]["redelivered"]) for e in audited] == [("manager", 2)]


@pytest.mark.parametrize("body", [{}, {"delivery_id": 1, "from_event_id": 1}, {"from_event_id": 5, "to_event_id": 2},
                                  {"delivery_id": "x"}, {"delivery_id": 0}])
def test_a_bad_redelivery_is_a_400(secure_client, world, body):
    webhook_id = hook(secure_client, world["root"])
    response = secure_client.post(f"/api/v1/webhooks/{webhook_id}/redeliver", json=body, headers=world["root"])
    assert response.status_code == 400, response.get_data(as_text=True)
