"""The unmodified databricks-sdk (``WorkspaceClient(host=<our url>, token=..., auth_type="pat")``) against a real
gunicorn server with authentication on: the review workflow across users, comments, the Databricks model
variants, permissions and webhooks."""
from __future__ import annotations

import itertools

import hashlib
import hmac

import pytest
import requests
from databricks.sdk.errors import BadRequest, PermissionDenied, ResourceDoesNotExist
from databricks.sdk.service.ml import (
    ActivityType,
    HttpUrlSpec,
    PermissionLevel,
    RegisteredModelAccessControlRequest,
    RegisteredModelPermissionLevel,
    RegistryWebhookEvent,
    RegistryWebhookStatus,
)

from tests.clients import native, user_token
from tests.events.receiver import Receiver
from tests.server import ADMIN_TOKEN

_names = itertools.count(1)


@pytest.fixture(scope="module")
def tokens(registry_url) -> dict[str, str]:
    """A requester (READ, as every user), two reviewers, and the bootstrap admin."""
    return {
        "alice": user_token(registry_url, "alice@example.com"),
        "bob": user_token(registry_url, "bob@example.com", "MANAGE_PRODUCTION"),
        "carol": user_token(registry_url, "carol@example.com", "MANAGE_STAGING"),
        "admin": ADMIN_TOKEN,
    }


@pytest.fixture
def model(registry_url) -> str:
    """A fresh model with versions 1 and 2 (in None), made through the native API."""
    name = f"sdk-model-{next(_names)}"
    native(registry_url, "POST", "/models", {"name": name}, expect=201)
    for i in (1, 2):
        native(registry_url, "POST", f"/models/{name}/versions", {"source": f"s3://bucket/{i}"}, expect=201)
    return name


@pytest.fixture
def clients(sdk, tokens):
    return {who: sdk(token).model_registry for who, token in tokens.items()}


def stage_of(registry, name: str, version: str) -> str:
    return registry.get_model_version(name, version).model_version.current_stage


def test_host_metadata_probe_answers_404_json_without_authentication(registry_url):
    response = requests.get(registry_url + "/.well-known/databricks-config", timeout=10)

    assert response.status_code == 404
    assert response.headers["Content-Type"].startswith("application/json")


def test_request_then_approval_by_another_user_moves_the_version(clients, model):
    alice, bob = clients["alice"], clients["bob"]

    created = alice.create_transition_request(model, "1", "Production", comment="ready")
    assert (created.request.to_stage, created.request.user_id, created.request.comment) == (
        "Production", "alice@example.com", "ready")
    listed = list(bob.list_transition_requests(model, "1"))
    assert [(a.activity_type, a.user_id, a.to_stage) for a in listed] == [
        (ActivityType.REQUESTED_TRANSITION, "alice@example.com", "Production")]

    approved = bob.approve_transition_request(model, "1", "Production", archive_existing_versions=True,
                                              comment="ship it")

    assert (approved.activity.activity_type, approved.activity.user_id, approved.activity.comment) == (
        ActivityType.APPROVED_REQUEST, "bob@example.com", "ship it")
    assert stage_of(bob, model, "1") == "Production"
    assert list(bob.list_transition_requests(model, "1")) == []


def test_approval_archives_the_previous_production_version(clients, model):
    alice, bob = clients["alice"], clients["bob"]
    alice.create_transition_request(model, "1", "Production")
    bob.approve_transition_request(model, "1", "Production", archive_existing_versions=True)
    alice.create_transition_request(model, "2", "Production")

    bob.approve_transition_request(model, "2", "Production", archive_existing_versions=True)

    assert (stage_of(bob, model, "1"), stage_of(bob, model, "2")) == ("Archived", "Production")


def test_requester_cannot_approve_their_own_request(clients, model):
    clients["bob"].create_transition_request(model, "1", "Staging")

    with pytest.raises(PermissionDenied):
        clients["bob"].approve_transition_request(model, "1", "Staging", archive_existing_versions=False)


def test_approving_without_a_pending_request_is_resource_does_not_exist(clients, model):
    with pytest.raises(ResourceDoesNotExist):
        clients["bob"].approve_transition_request(model, "1", "Production", archive_existing_versions=False)


def test_rejection_closes_the_request_and_leaves_the_stage(clients, model):
    clients["alice"].create_transition_request(model, "2", "Staging", comment="try it")

    rejected = clients["carol"].reject_transition_request(model, "2", "Staging", comment="tests are red")

    assert (rejected.activity.activity_type, rejected.activity.comment) == (
        ActivityType.REJECTED_REQUEST, "tests are red")
    assert list(clients["carol"].list_transition_requests(model, "2")) == []
    assert stage_of(clients["carol"], model, "2") == "None"


def test_requester_cancels_their_request(clients, model):
    clients["alice"].create_transition_request(model, "1", "Staging")

    cancelled = clients["alice"].delete_transition_request(model, "1", "Staging", "alice@example.com",
                                                           comment="too early")

    assert cancelled.activity.activity_type == ActivityType.CANCELLED_REQUEST
    assert list(clients["alice"].list_transition_requests(model, "1")) == []


def test_comment_create_update_delete(clients, model, registry_url):
    bob = clients["bob"]

    made = bob.create_comment(model, "1", "metrics look fine").comment
    updated = bob.update_comment(made.id, "metrics look great").comment
    assert (updated.id, updated.comment, updated.user_id) == (made.id, "metrics look great", "bob@example.com")

    bob.delete_comment(made.id)

    assert native(registry_url, "GET", f"/models/{model}/versions/1/comments")["comments"] == []


def test_get_model_answers_id_latest_versions_and_the_callers_level(clients, model):
    alice_view = clients["alice"].get_model(model).registered_model_databricks
    bob_view = clients["bob"].get_model(model).registered_model_databricks

    assert alice_view.id == bob_view.id and alice_view.id.isdigit()
    assert (alice_view.permission_level, bob_view.permission_level) == (
        PermissionLevel.CAN_READ, PermissionLevel.CAN_MANAGE_PRODUCTION_VERSIONS)
    assert sorted(v.version for v in alice_view.latest_versions) == ["2"]


def test_get_model_names_its_creator_as_user_id(clients):
    """Databricks' ``user_id`` is "the username of the user that created the object", whoever reads it."""
    name = f"sdk-model-{next(_names)}"
    clients["carol"].create_model(name)  # carol may: MANAGE_STAGING registry-wide includes EDIT
    views = [clients[who].get_model(name).registered_model_databricks for who in ("alice", "carol", "admin")]
    assert [view.user_id for view in views] == ["carol@example.com"] * 3


def test_direct_transition_by_a_manager_answers_the_databricks_version(clients, model):
    response = clients["carol"].transition_stage(model, "1", "Staging", archive_existing_versions=False,
                                                 comment="smoke test")

    version = response.model_version_databricks
    assert (version.current_stage, version.permission_level) == (
        "Staging", PermissionLevel.CAN_MANAGE_STAGING_VERSIONS)


def test_direct_transition_without_permission_says_to_request_it(clients, model):
    with pytest.raises(PermissionDenied, match="transition request"):
        clients["alice"].transition_stage(model, "1", "Production", archive_existing_versions=False)

    assert stage_of(clients["alice"], model, "1") == "None"


def test_direct_transition_refused_by_approval_policy_says_to_request_it(clients, model, registry_url):
    native(registry_url, "PUT", f"/models/{model}/approval-policies/Production", {"required_approvals": 1})

    with pytest.raises(PermissionDenied, match="transition request"):
        clients["bob"].transition_stage(model, "1", "Production", archive_existing_versions=False)


def test_permissions_get_update_set_and_levels(clients, model):
    admin = clients["admin"]
    model_id = admin.get_model(model).registered_model_databricks.id

    updated = admin.update_permissions(model_id, access_control_list=[RegisteredModelAccessControlRequest(
        user_name="alice@example.com", permission_level=RegisteredModelPermissionLevel.CAN_EDIT)])
    assert updated.object_id == f"/registered-models/{model_id}"
    alice_entry = next(e for e in updated.access_control_list if e.user_name == "alice@example.com")
    assert [(p.permission_level, p.inherited) for p in alice_entry.all_permissions] == [
        (RegisteredModelPermissionLevel.CAN_EDIT, False)]
    assert clients["alice"].get_model(model).registered_model_databricks.permission_level == PermissionLevel.CAN_EDIT

    replaced = admin.set_permissions(model_id, access_control_list=[RegisteredModelAccessControlRequest(
        user_name="carol@example.com", permission_level=RegisteredModelPermissionLevel.CAN_MANAGE)])
    direct = {e.user_name for e in replaced.access_control_list
              if e.user_name and any(not p.inherited for p in e.all_permissions)}
    assert direct == {"carol@example.com"}
    assert admin.get_permissions(model_id).access_control_list == replaced.access_control_list

    levels = admin.get_permission_levels(model_id).permission_levels
    assert [level.permission_level for level in levels] == [
        RegisteredModelPermissionLevel.CAN_READ, RegisteredModelPermissionLevel.CAN_EDIT,
        RegisteredModelPermissionLevel.CAN_MANAGE_STAGING_VERSIONS,
        RegisteredModelPermissionLevel.CAN_MANAGE_PRODUCTION_VERSIONS, RegisteredModelPermissionLevel.CAN_MANAGE]


def test_root_permissions_are_the_registry_wide_grants(clients):
    root = clients["admin"].get_permissions("root")

    assert root.object_id == "/registered-models/root"
    assert any(e.group_name == "users" for e in root.access_control_list)


def test_non_manager_cannot_read_a_models_permissions(clients, model):
    model_id = clients["bob"].get_model(model).registered_model_databricks.id

    with pytest.raises(PermissionDenied):
        clients["bob"].get_permissions(model_id)


def test_webhooks_create_list_update_test_delete(clients, model):
    admin = clients["admin"]
    receiver = Receiver().__enter__()
    hook = admin.create_webhook(
        events=[RegistryWebhookEvent.MODEL_VERSION_CREATED, RegistryWebhookEvent.TRANSITION_REQUEST_CREATED],
        http_url_spec=HttpUrlSpec(url=receiver.url, secret="s3cr3t", enable_ssl_verification=True),
        model_name=model, description="ci", status=RegistryWebhookStatus.TEST_MODE,
    ).webhook
    assert (hook.model_name, hook.status, hook.http_url_spec.url) == (
        model, RegistryWebhookStatus.TEST_MODE, receiver.url)

    listed = list(admin.list_webhooks(model_name=model, events=[RegistryWebhookEvent.TRANSITION_REQUEST_CREATED]))
    assert [w.id for w in listed] == [hook.id]

    updated = admin.update_webhook(hook.id, status=RegistryWebhookStatus.ACTIVE).webhook
    assert (updated.status, updated.description) == (RegistryWebhookStatus.ACTIVE, "ci")

    try:
        tested = admin.test_registry_webhook(hook.id, event=RegistryWebhookEvent.MODEL_VERSION_CREATED)
        [sent] = receiver.wait_for(1)
    finally:
        receiver.__exit__(None, None, None)
    assert (tested.status_code, tested.body) == (200, '{"ok": true}')
    assert sent.json["event"] == "MODEL_VERSION_CREATED" and sent.json["model_name"] == model
    assert sent.headers["X-Databricks-Signature"] == hmac.new(b"s3cr3t", sent.body, hashlib.sha256).hexdigest()

    admin.delete_webhook(hook.id)
    assert list(admin.list_webhooks(model_name=model)) == []
