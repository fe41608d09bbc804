"""/api/v1/webhooks: permissions, bad input, secrets shown once, and each dialect's API seeing its own."""
from __future__ import annotations

import json

import pytest

from .test_audit_visibility import HOOKS, MODEL, ok, world  # noqa: F401  (world is a fixture)

URL = "https://hooks.example/native"


def create(client, headers, **fields):
    body = {"url": URL, "model": MODEL, "events": ["version.created"], **fields}
    return client.post("/api/v1/webhooks", json=body, headers=headers)


def made(client, headers, **fields) -> dict:
    return ok(create(client, headers, **fields), 201)


def test_a_manager_creates_lists_changes_and_deletes_a_webhook(secure_client, world):
    manager = world["manager"]
    hook = made(secure_client, manager, description="deploys")
    assert hook["secret"].startswith("whsec_") and hook["model"] == MODEL and hook["status"] == "ACTIVE"
    listed = ok(secure_client.get("/api/v1/webhooks", query_string={"model": MODEL}, headers=manager))["webhooks"]
    assert [w["id"] for w in listed] == [hook["id"]] and '"secret"' not in json.dumps(listed)
    changed = ok(secure_client.patch(f"/api/v1/webhooks/{hook['id']}",
                                     json={"events": ["alias.set", "version.transitioned:Production"],
                                           "status": "DISABLED"}, headers=manager))
    assert (changed["events"], changed["status"]) == (["alias.set", "version.transitioned:Production"], "DISABLED")
    assert secure_client.delete(f"/api/v1/webhooks/{hook['id']}", headers=manager).status_code == 204
    assert secure_client.get(f"/api/v1/webhooks/{hook['id']}", headers=manager).status_code == 404


@pytest.mark.parametrize("caller", ["reader", "editor"])
def test_without_manage_nothing_is_seen_or_done(secure_client, world, caller):
    hook = made(secure_client, world["manager"])
    headers = world[caller]
    assert create(secure_client, headers).status_code == 403
    assert secure_client.get(f"/api/v1/webhooks/{hook['id']}", headers=headers).status_code == 403
    assert secure_client.patch(f"/api/v1/webhooks/{hook['id']}", json={"status": "DISABLED"},
                               headers=headers).status_code == 403
    assert secure_client.post(f"/api/v1/webhooks/{hook['id']}/rotate-secret", json={},
                              headers=headers).status_code == 403
    assert secure_client.post(f"/api/v1/webhooks/{hook['id']}/test", json={}, headers=headers).status_code == 403
    assert secure_client.delete(f"/api/v1/webhooks/{hook['id']}", headers=headers).status_code == 403
    assert ok(secure_client.get("/api/v1/webhooks", headers=headers))["webhooks"] == []


def test_a_registry_wide_webhook_is_for_admins(secure_client, world):
    response = create(secure_client, world["manager"], model=None)
    assert response.status_code == 400  # "model": null is not a string
    body = {"url": URL, "events": ["model.created"]}
    assert secure_client.post("/api/v1/webhooks", json=body, headers=world["manager"]).status_code == 403
    assert secure_client.post("/api/v1/webhooks", json=body, headers=world["root"]).status_code == 201


@pytest.mark.parametrize("fields", [
    {"events": []}, {"events": ["version.exploded"]}, {"events": ["version.transitioned:Prod"]},
    {"url": "http://hooks.example/x"}, {"url": "ftp://hooks.example/x"}, {"url": "https://u:p@hooks.example/x"},
    {"status": "TEST_MODE"}, {"secret": "mine"},
])
def test_bad_webhooks_are_400(secure_client, world, fields):
    response = create(secure_client, world["manager"], **fields)
    assert response.status_code == 400, response.get_data(as_text=True)


@pytest.mark.parametrize("overlap", [-1, 10**9, "1h"])
def test_a_bad_overlap_is_400(secure_client, world, overlap):
    hook = made(secure_client, world["manager"])
    response = secure_client.post(f"/api/v1/webhooks/{hook['id']}/rotate-secret", json={"overlap_seconds": overlap},
                                  headers=world["manager"])
    assert response.status_code == 400


def test_each_dialects_api_sees_only_its_own_webhooks(secure_client, world):
    root = world["root"]
    native = made(secure_client, root)
    databricks = [w["id"] for w in ok(secure_client.get("/api/2.0/mlflow/registry-webhooks/list",
                                                        headers=root))["webhooks"]]
    assert native["id"] not in databricks and databricks
    assert secure_client.get(f"/api/v1/webhooks/{databricks[0]}", headers=root).status_code == 404
    response = secure_client.delete("/api/2.0/mlflow/registry-webhooks/delete", query_string={"id": native["id"]},
                                    headers=root)
    assert response.status_code == 404
