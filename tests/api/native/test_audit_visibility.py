"""Who sees which audit event, over HTTP with authentication on (issue "Trust the served answer").

An event is visible exactly to those who may read what it describes, written from the rules (not computed by
the code under test):

* an event about a model needs READ on it, except ``permissions.changed`` and ``webhook.*`` on a model, which
  need MANAGE on it (what the permissions and webhooks APIs need);
* registry-wide events (chain 0): ``user.created``, ``token.*`` and registry-wide ``webhook.*`` are for admins,
  except that a user sees the token events about their own tokens; registry-wide ``permissions.changed`` is
  for whoever may read the registry-wide permissions (registry-wide READ); ``policy.changed`` for everyone;
* admins see everything.
"""
from __future__ import annotations

import pytest

MODEL = "churn"
HOOKS = "/api/2.0/mlflow/registry-webhooks/create"
HOOK_URL = "https://hooks.example/x"

# (action, model) of every kind of event the world below records, and who may see it. "own" = the token
# events about the caller's own tokens.
KINDS = {
    ("user.created", None): "admin",
    ("token.created", None): "admin-or-own",
    ("token.revoked", None): "admin-or-own",
    ("webhook.created", None): "admin",
    ("permissions.changed", None): "registry-read",
    ("policy.changed", None): "everyone",
    ("model.created", MODEL): "model-read",
    ("policy.changed", MODEL): "model-read",
    ("permissions.changed", MODEL): "model-manage",
    ("webhook.created", MODEL): "model-manage",
}


def ok(response, status: int = 200) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    return response.get_json()


@pytest.fixture
def world(secure_client, make_user):
    """An admin ``root``; ``reader`` (only the registry-wide ``*`` = READ); ``manager`` (MANAGE on churn);
    ``editor`` (EDIT on churn); each kind of event of KINDS recorded at least once."""
    root = make_user("root", admin=True)
    ok(secure_client.post("/api/v1/models", json={"name": MODEL}, headers=root), 201)
    people = {"root": root, "reader": make_user("reader"), "manager": make_user("manager", "MANAGE", model=MODEL)}
    ok(secure_client.patch("/api/v1/permissions", json={"grants": [{"principal": "*", "level": "READ"}]},
                           headers=root))
    people["editor"] = make_user("editor", "EDIT", model=MODEL)
    ok(secure_client.put("/api/v1/approval-policies/Production", json={"required_approvals": 0}, headers=root))
    ok(secure_client.put(f"/api/v1/models/{MODEL}/approval-policies/Staging", json={"required_approvals": 0},
                         headers=root))
    ok(secure_client.post(HOOKS, json={"model_name": MODEL, "events": ["MODEL_VERSION_CREATED"],
                                       "http_url_spec": {"url": HOOK_URL}}, headers=root))
    ok(secure_client.post(HOOKS, json={"events": ["REGISTERED_MODEL_CREATED"], "http_url_spec": {"url": HOOK_URL}},
                          headers=root))
    for who in ("reader", "root"):  # a token of one's own, revoked: token.created and token.revoked
        made = ok(secure_client.post("/api/v1/tokens", json={"description": "spare"}, headers=people[who]), 201)
        ok(secure_client.delete(f"/api/v1/tokens/{made['id']}", headers=people[who]))
    everything = events(secure_client, root)
    assert {(e["action"], e["model"]) for e in everything} == set(KINDS)  # the world has every kind
    return people


def events(client, headers, **query) -> list[dict]:
    return ok(client.get("/api/v1/audit-events", query_string={"max_results": 1000, **query},
                         headers=headers))["events"]


def may_see(rule: str, caller: str, event: dict) -> bool:
    """The rules of the module docstring, for the callers of ``world``."""
    model_level = {"root": 5, "manager": 5, "editor": 2, "reader": 1, "nobody": 0}[caller]
    registry_read = caller != "nobody"
    own = event["details"].get("user") == {"nobody": "reader"}.get(caller, caller)  # "nobody" is reader, demoted
    return {
        "admin": caller == "root",
        "admin-or-own": caller == "root" or own,
        "registry-read": registry_read,
        "everyone": True,
        "model-read": model_level >= 1,
        "model-manage": model_level >= 5,
    }[rule]


@pytest.mark.parametrize("caller", ["reader", "editor", "manager", "root", "nobody"])
def test_each_kind_of_event_is_shown_exactly_to_those_who_may_read_it(secure_client, world, caller):
    root = world["root"]
    if caller == "nobody":
        # "*" READ removed: no registry-wide READ, and no grant on churn either
        ok(secure_client.put("/api/v1/permissions", json={"grants": []}, headers=root))
        world["nobody"] = world["reader"]
    everything = events(secure_client, root)
    want = [e["id"] for e in everything if may_see(KINDS[(e["action"], e["model"])], caller, e)]
    got = [e["id"] for e in events(secure_client, world[caller])]
    wrong = {(e["action"], e["model"], e["details"].get("user")): e["id"] in got for e in everything
             if (e["id"] in got) != (e["id"] in want)}
    assert wrong == {}  # (action, model, user) -> shown although it should not be, or the reverse


def test_a_reader_sees_no_name_admin_flag_token_id_or_prefix_of_others(secure_client, world):
    body = secure_client.get("/api/v1/audit-events", query_string={"max_results": 1000},
                             headers=world["reader"]).get_data(as_text=True)
    roots = ok(secure_client.get("/api/v1/tokens", headers=world["root"]))["tokens"]
    assert [t["prefix"] for t in roots if t["user"] == "root" and t["prefix"] in body] == []
    assert '"is_admin"' not in body and "manager" not in body and HOOK_URL not in body


@pytest.mark.parametrize("action", ["token.created", "user.created", "webhook.created", "permissions.changed"])
def test_filtering_by_a_hidden_action_finds_nothing_hidden(secure_client, world, action):
    shown = events(secure_client, world["reader"], action=action)
    assert all(may_see(KINDS[(e["action"], e["model"])], "reader", e) for e in shown)


def test_request_history_is_shown_to_readers_of_the_model(secure_client, world):
    root = world["root"]
    ok(secure_client.post(f"/api/v1/models/{MODEL}/versions", json={"source": "s3://b/1"}, headers=root), 201)
    request = ok(secure_client.post(f"/api/v1/models/{MODEL}/versions/1/transition-requests",
                                    json={"stage": "Staging"}, headers=world["reader"]), 201)
    history = ok(secure_client.get(f"/api/v1/transition-requests/{request['id']}/history", headers=world["reader"]))
    assert [e["action"] for e in history["events"]] == ["request.created"]
