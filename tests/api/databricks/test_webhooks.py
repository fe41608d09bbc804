"""Registry webhooks: create, update, delete, list, test (delivery itself: tests/events/)."""
from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from tests.events.receiver import Receiver

from .conftest import API, assert_error, ok

HOOKS = API + "/registry-webhooks"
HTTP = {"url": "https://hooks.example/x", "secret": "s3cr3t", "authorization": "Bearer abc",
        "enable_ssl_verification": False}
SECRETS = ("s3cr3t", "Bearer abc", "job-token")


def create(team, who: str = "owner", **fields) -> dict:
    body = {"model_name": "fraud", "events": ["MODEL_VERSION_CREATED"], "http_url_spec": HTTP, **fields}
    return ok(team.as_(who).post(HOOKS + "/create", body))["webhook"]


def listed(team, who: str = "admin", **query) -> dict:
    return ok(team.as_(who).get(HOOKS + "/list", query))


def test_create_answers_the_webhook_without_its_secrets(team):
    hook = create(team, description="slack", status="TEST_MODE",
                  events=["MODEL_VERSION_CREATED", "TRANSITION_REQUEST_CREATED"])

    assert {k: hook[k] for k in ("model_name", "description", "status", "events", "http_url_spec")} == {
        "model_name": "fraud", "description": "slack", "status": "TEST_MODE",
        "events": ["MODEL_VERSION_CREATED", "TRANSITION_REQUEST_CREATED"],
        "http_url_spec": {"url": "https://hooks.example/x", "enable_ssl_verification": False}}
    assert hook["id"].isdigit() and isinstance(hook["creation_timestamp"], int)
    assert not any(secret in json.dumps(hook) for secret in SECRETS)


def test_create_defaults_to_active(team):
    assert create(team)["status"] == "ACTIVE"


def test_create_a_job_webhook_keeps_its_access_token_to_itself(team):
    hook = create(team, http_url_spec=None,
                  job_spec={"job_id": "42", "access_token": "job-token", "workspace_url": "https://other.example"})

    assert hook["job_spec"] == {"job_id": "42", "workspace_url": "https://other.example"}
    assert "http_url_spec" not in hook and "job-token" not in json.dumps(hook)


@pytest.mark.parametrize("fields", [
    {"events": []},
    {"events": ["MODEL_DELETED"]},
    {"events": ["REGISTERED_MODEL_CREATED"]},  # registry-wide only
    {"status": "PAUSED"},
    {"http_url_spec": {"url": "ftp://hooks.example/x"}},
    {"http_url_spec": {"url": "http://hooks.example/x"}},  # https only, unless the operator allows http
    {"http_url_spec": {"url": "not a url"}},
    {"http_url_spec": {"url": "https://user:pa55@hooks.example/x"}},  # credentials: use "authorization"
    {"http_url_spec": {"url": "https://tok3n@hooks.example/x"}},
    {"http_url_spec": None, "job_spec": {"job_id": "1", "access_token": "t",
                                         "workspace_url": "https://user:pa55@other.example"}},
    {"http_url_spec": None},
    {"job_spec": {"job_id": "1", "access_token": "t"}},  # both targets
    {"http_url_spec": None, "job_spec": {"job_id": "1"}},  # no access token
])
def test_invalid_webhook_is_invalid_parameter_value(team, fields):
    body = {"model_name": "fraud", "events": ["MODEL_VERSION_CREATED"], "http_url_spec": HTTP, **fields}
    body = {k: v for k, v in body.items() if v is not None}

    assert_error(team.as_("owner").post(HOOKS + "/create", body), 400, "INVALID_PARAMETER_VALUE")


def test_model_webhook_needs_manage_on_the_model(team):
    response = team.as_("prod").post(HOOKS + "/create", {"model_name": "fraud", "events": ["COMMENT_CREATED"],
                                                         "http_url_spec": HTTP})

    assert_error(response, 403, "PERMISSION_DENIED")


def test_webhook_on_unknown_model_is_resource_does_not_exist(team):
    response = team.as_("admin").post(HOOKS + "/create", {"model_name": "nope", "events": ["COMMENT_CREATED"],
                                                          "http_url_spec": HTTP})

    assert_error(response, 404, "RESOURCE_DOES_NOT_EXIST")


def test_registry_wide_webhook_is_for_admins(team):
    body = {"events": ["REGISTERED_MODEL_CREATED"], "http_url_spec": HTTP}

    assert_error(team.as_("owner").post(HOOKS + "/create", body), 403, "PERMISSION_DENIED")
    hook = ok(team.as_("admin").post(HOOKS + "/create", body))["webhook"]
    assert "model_name" not in hook and hook["events"] == ["REGISTERED_MODEL_CREATED"]


def test_update_changes_the_given_fields_only(team):
    hook = create(team, description="d", status="TEST_MODE")

    updated = ok(team.as_("owner").patch(HOOKS + "/update", {"id": hook["id"], "status": "ACTIVE",
                                                             "events": ["COMMENT_CREATED"]}))["webhook"]

    assert (updated["status"], updated["events"], updated["description"], updated["http_url_spec"]) == (
        "ACTIVE", ["COMMENT_CREATED"], "d", hook["http_url_spec"])


def test_update_may_switch_the_target_to_a_job(team):
    hook = create(team)

    updated = ok(team.as_("owner").patch(HOOKS + "/update", {"id": hook["id"], "job_spec": {
        "job_id": "7", "access_token": "job-token"}}))["webhook"]

    assert updated["job_spec"] == {"job_id": "7"} and "http_url_spec" not in updated


def test_update_of_someone_elses_model_webhook_needs_manage(team):
    hook = create(team)

    response = team.as_("prod").patch(HOOKS + "/update", {"id": hook["id"], "status": "DISABLED"})

    assert_error(response, 403, "PERMISSION_DENIED")


def test_delete_removes_the_webhook(team):
    hook = create(team)

    assert ok(team.as_("owner").delete(HOOKS + "/delete", {"id": hook["id"]})) == {}
    assert listed(team) == {}
    assert_error(team.as_("owner").delete(HOOKS + "/delete", {"id": hook["id"]}), 404, "RESOURCE_DOES_NOT_EXIST")


@pytest.mark.parametrize("webhook_id", ["987654321", "wh-1"])
def test_unknown_webhook_is_resource_does_not_exist(team, webhook_id):
    response = team.as_("admin").patch(HOOKS + "/update", {"id": webhook_id, "status": "ACTIVE"})

    assert_error(response, 404, "RESOURCE_DOES_NOT_EXIST")


def test_list_filters_by_model_and_by_any_of_the_events(team):
    ok(team.as_("owner").post(API + "/registered-models/create", {"name": "other"}))
    a = create(team, events=["MODEL_VERSION_CREATED"])
    b = create(team, events=["COMMENT_CREATED", "MODEL_VERSION_TAG_SET"])
    c = create(team, model_name="other", events=["COMMENT_CREATED"])

    assert [w["id"] for w in listed(team)["webhooks"]] == [a["id"], b["id"], c["id"]]
    assert [w["id"] for w in listed(team, model_name="fraud")["webhooks"]] == [a["id"], b["id"]]
    events = ["COMMENT_CREATED", "MODEL_VERSION_CREATED"]
    assert [w["id"] for w in listed(team, model_name="fraud", events=events)["webhooks"]] == [a["id"], b["id"]]
    assert [w["id"] for w in listed(team, events=["MODEL_VERSION_TAG_SET"])["webhooks"]] == [b["id"]]


def test_list_pages_with_next_page_token(team):
    made = [create(team)["id"] for _ in range(3)]

    first = listed(team, max_results=2)
    second = listed(team, max_results=2, page_token=first["next_page_token"])

    assert [w["id"] for w in first["webhooks"]] == made[:2]
    assert [w["id"] for w in second["webhooks"]] == made[2:] and "next_page_token" not in second


def test_list_shows_only_webhooks_the_caller_manages(team):
    create(team)
    ok(team.as_("admin").post(HOOKS + "/create", {"events": ["REGISTERED_MODEL_CREATED"], "http_url_spec": HTTP}))

    assert [w.get("model_name") for w in listed(team, who="owner")["webhooks"]] == ["fraud"]
    assert listed(team, who="prod") == {}


def test_list_never_shows_secrets(team):
    create(team)
    create(team, http_url_spec=None, job_spec={"job_id": "1", "access_token": "job-token"})

    text = json.dumps(listed(team))

    assert not any(secret in text for secret in SECRETS)


def test_deleting_the_model_deletes_its_webhooks(team):
    create(team)

    ok(team.as_("owner").delete(API + "/model-versions/delete", {"name": "fraud", "version": "1"}))
    ok(team.as_("owner").delete(API + "/model-versions/delete", {"name": "fraud", "version": "2"}))
    ok(team.as_("owner").delete(API + "/registered-models/delete", {"name": "fraud"}))

    assert listed(team) == {}


@pytest.fixture
def loopback_allowed(secure_app, monkeypatch):
    """The operator's settings that let a receiver on this machine in (tests/events/receiver.py)."""
    settings = secure_app.config["REGISTRY_SETTINGS"].with_overrides(
        {"webhook_allow_http": True, "webhook_allow_networks": ("127.0.0.0/8",)})
    monkeypatch.setitem(secure_app.config, "REGISTRY_SETTINGS", settings)


def test_test_call_sends_the_event_and_answers_the_receivers_status_and_body(team, loopback_allowed):
    with Receiver(answers=[(202, {})]) as receiver:
        hook = create(team, status="TEST_MODE", http_url_spec={"url": receiver.url, "secret": "s3cr3t"},
                      events=["MODEL_VERSION_TRANSITIONED_TO_PRODUCTION"])

        answer = ok(team.as_("owner").post(HOOKS + "/test", {"id": hook["id"]}))
        [sent] = receiver.wait_for(1)

    assert answer == {"status_code": 202, "body": '{"ok": true}',
                      "webhook": {"status_code": 202, "body": '{"ok": true}'}}
    assert sent.headers["X-Databricks-Signature"] == hmac.new(b"s3cr3t", sent.body, hashlib.sha256).hexdigest()
    assert {k: sent.json[k] for k in ("event", "webhook_id", "model_name", "to_stage")} == {
        "event": "MODEL_VERSION_TRANSITIONED_TO_PRODUCTION", "webhook_id": hook["id"], "model_name": "fraud",
        "to_stage": "Production"}


def test_test_call_reports_a_failing_receiver_as_databricks_does(team, loopback_allowed):
    with Receiver(answers=[(503, {})]) as receiver:
        hook = create(team, http_url_spec={"url": receiver.url})
        answer = ok(team.as_("owner").post(HOOKS + "/test", {"id": hook["id"]}))
    assert (answer["status_code"], answer["body"]) == (503, "try later")


def test_test_call_to_a_loopback_receiver_is_refused_by_default(team):
    with Receiver() as receiver:
        hook = create(team, http_url_spec={"url": receiver.url.replace("http://", "https://")})
        message = assert_error(team.as_("owner").post(HOOKS + "/test", {"id": hook["id"]}), 400,
                               "INVALID_PARAMETER_VALUE")
    assert "127.0.0.1" in message and "REGISTRY_WEBHOOK_ALLOW_NETWORKS" in message and receiver.received == []


def test_test_call_with_an_event_the_webhook_lacks_is_invalid(team):
    hook = create(team)

    response = team.as_("owner").post(HOOKS + "/test", {"id": hook["id"], "event": "COMMENT_CREATED"})

    assert_error(response, 400, "INVALID_PARAMETER_VALUE")


def test_test_call_needs_manage(team):
    hook = create(team)

    assert_error(team.as_("prod").post(HOOKS + "/test", {"id": hook["id"]}), 403, "PERMISSION_DENIED")


def test_list_offers_no_next_page_when_only_hidden_webhooks_remain(team):
    made = [create(team)["id"] for _ in range(2)]
    ok(team.as_("admin").post(HOOKS + "/create", {"events": ["REGISTERED_MODEL_CREATED"], "http_url_spec": HTTP}))

    page = listed(team, who="owner", max_results=2)

    assert [w["id"] for w in page["webhooks"]] == made and "next_page_token" not in page


def test_webhook_follows_its_model_through_a_rename(team):
    hook = create(team)

    ok(team.as_("owner").post(API + "/registered-models/rename", {"name": "fraud", "new_name": "fraud-v2"}))

    assert [(w["id"], w["model_name"]) for w in listed(team)["webhooks"]] == [(hook["id"], "fraud-v2")]


def test_webhook_changes_are_audited_without_secrets(secure_app, db_session):
    """Creating, changing and deleting a webhook each leave an audit event; the secret never appears."""
    from sqlalchemy import text

    from registry.auth import SYSTEM
    from registry.services import webhooks

    with secure_app.app_context():
        created = webhooks.create_webhook(
            SYSTEM, ["MODEL_VERSION_CREATED"],
            http=webhooks.HttpTarget(url="https://hooks.example.com/x", secret="s3cr3t-value"))
        webhooks.update_webhook(SYSTEM, created.id, status="DISABLED")
        webhooks.delete_webhook(SYSTEM, created.id)
    rows = db_session.execute(text(
        "SELECT action, details::text FROM audit_events WHERE action LIKE 'webhook.%' ORDER BY id")).all()
    assert [r.action for r in rows] == ["webhook.created", "webhook.updated", "webhook.deleted"]
    assert all("s3cr3t-value" not in r.details for r in rows)


def test_url_with_credentials_is_refused_on_update_too(team):
    hook = create(team)

    response = team.as_("owner").patch(HOOKS + "/update", {"id": hook["id"], "http_url_spec": {
        "url": "https://user:pa55@hooks.example/x"}})

    assert_error(response, 400, "INVALID_PARAMETER_VALUE")


def test_credentials_in_a_url_stored_earlier_never_reach_the_audit_trail(team, db_session):
    """Before URLs with credentials were refused, one may have been stored: its events record it without them."""
    from sqlalchemy import text

    hook = create(team)
    db_session.execute(text("UPDATE registry_webhooks SET http_url = 'https://user:pa55@hooks.example/x' "
                            "WHERE id = :id"), {"id": int(hook["id"])})
    db_session.commit()

    ok(team.as_("owner").patch(HOOKS + "/update", {"id": hook["id"], "status": "DISABLED"}))
    ok(team.as_("owner").delete(HOOKS + "/delete", {"id": hook["id"]}))

    rows = db_session.execute(text("SELECT details->>'http_url' FROM audit_events "
                                   "WHERE action IN ('webhook.updated', 'webhook.deleted') ORDER BY id")).scalars()
    assert list(rows) == ["https://hooks.example/x", "https://hooks.example/x"]
