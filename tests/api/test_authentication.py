"""Who am I, and API tokens over HTTP: created and shown once, listed without secrets, revoked (issue 3)."""
from __future__ import annotations

import pytest

TOKEN_FIELDS = {"id", "user", "prefix", "description", "created_at", "expires_at", "revoked_at", "scope"}


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def create_token(client, headers, **body) -> dict:
    response = client.post("/api/v1/tokens", json=body, headers=headers)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


# --- /me ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("admin", [False, True])
def test_me_names_the_authenticated_principal(secure_client, make_user, admin):
    headers = make_user("dora", admin=admin)
    response = secure_client.get("/api/v1/me", headers=headers)
    assert response.status_code == 200
    assert response.get_json() == {"name": "dora", "is_admin": admin}


def test_actor_header_is_ignored_when_authentication_is_on(secure_client, make_user):
    headers = {**make_user("dora"), "X-Registry-Actor": "root"}
    assert secure_client.get("/api/v1/me", headers=headers).get_json() == {"name": "dora", "is_admin": False}


def test_audit_events_name_the_authenticated_principal(secure_client, make_user):
    headers = make_user("dora", "EDIT")
    assert secure_client.post("/api/v1/models", json={"name": "churn"},
                              headers={**headers, "X-Registry-Actor": "mallory"}).status_code == 201
    events = secure_client.get("/api/v1/audit-events", query_string={"model": "churn"}, headers=headers)
    assert [(e["actor"], e["action"]) for e in events.get_json()["events"]] == [("dora", "model.created")]


def test_responses_do_not_carry_the_auth_disabled_marker_when_auth_is_on(secure_client, make_user):
    assert "X-Registry-Auth" not in secure_client.get("/api/v1/me", headers=make_user("dora")).headers


# --- creating tokens ------------------------------------------------------------------------------------

def test_user_creates_a_token_for_themselves_that_authenticates_as_them(secure_client, make_user):
    headers = make_user("dora")
    created = create_token(secure_client, headers, description="laptop")
    assert set(created) == TOKEN_FIELDS | {"token"}
    assert (created["user"], created["description"], created["revoked_at"]) == ("dora", "laptop", None)
    assert created["token"].startswith("reg_") and created["token"].startswith(created["prefix"])
    me = secure_client.get("/api/v1/me", headers=bearer(created["token"]))
    assert me.get_json() == {"name": "dora", "is_admin": False}


def test_token_without_user_is_for_the_caller_even_when_the_caller_is_an_admin(secure_client, make_user):
    created = create_token(secure_client, make_user("root", admin=True))
    assert created["user"] == "root"


def test_token_may_be_requested_for_oneself_by_name(secure_client, make_user):
    assert create_token(secure_client, make_user("dora"), user="dora")["user"] == "dora"


def test_user_cannot_create_a_token_for_someone_else(secure_client, make_user):
    make_user("erin")
    response = secure_client.post("/api/v1/tokens", json={"user": "erin"}, headers=make_user("dora"))
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "PERMISSION_DENIED"
    assert "token" not in response.get_json()


def test_admin_creates_a_token_for_someone_else_that_authenticates_as_them(secure_client, make_user):
    make_user("erin")
    created = create_token(secure_client, make_user("root", admin=True), user="erin")
    assert created["user"] == "erin"
    assert secure_client.get("/api/v1/me", headers=bearer(created["token"])).get_json()["name"] == "erin"


def test_token_for_an_unknown_user_is_not_created(secure_client, make_user):
    response = secure_client.post("/api/v1/tokens", json={"user": "ghost"}, headers=make_user("root", admin=True))
    assert response.status_code == 404


def test_token_with_lifetime_records_its_expiry(secure_client, make_user):
    created = create_token(secure_client, make_user("dora"), expires_in_seconds=3600)
    assert created["expires_at"] - created["created_at"] == 3600 * 1000


def test_token_without_lifetime_never_expires(secure_client, make_user):
    assert create_token(secure_client, make_user("dora"))["expires_at"] is None


@pytest.mark.parametrize("seconds", [0, 59, -1, 10 * 365 * 86400 + 1, "3600", 1.5])
def test_token_lifetime_out_of_range_is_refused(secure_client, make_user, seconds):
    response = secure_client.post("/api/v1/tokens", json={"expires_in_seconds": seconds}, headers=make_user("dora"))
    assert response.status_code == 400


def test_every_new_token_is_different(secure_client, make_user):
    headers = make_user("dora")
    tokens = {create_token(secure_client, headers)["token"] for _ in range(5)}
    assert len(tokens) == 5


# --- listing: secrets are never shown again ---------------------------------------------------------------

def test_token_is_shown_once_and_never_again(secure_client, make_user):
    root = make_user("root", admin=True)
    created = create_token(secure_client, root, description="ci")
    secret = created["token"]
    for path in ["/api/v1/tokens", "/api/v1/tokens?user=root", "/api/v1/audit-events", "/api/v1/users"]:
        response = secure_client.get(path, headers=root)
        assert response.status_code == 200
        assert secret not in response.get_data(as_text=True), path
        assert secret[len(created["prefix"]):] not in response.get_data(as_text=True), path


def test_token_listing_has_no_secret_field(secure_client, make_user):
    headers = make_user("dora")
    create_token(secure_client, headers)
    listed = secure_client.get("/api/v1/tokens", headers=headers).get_json()["tokens"]
    assert len(listed) == 2  # make_user's and this one
    assert all(set(t) == TOKEN_FIELDS for t in listed)


def test_user_lists_only_their_own_tokens(secure_client, make_user):
    make_user("erin")
    listed = secure_client.get("/api/v1/tokens", headers=make_user("dora")).get_json()["tokens"]
    assert {t["user"] for t in listed} == {"dora"}


def test_user_cannot_list_someone_elses_tokens(secure_client, make_user):
    make_user("erin")
    response = secure_client.get("/api/v1/tokens", query_string={"user": "erin"}, headers=make_user("dora"))
    assert response.status_code == 403


def test_admin_lists_everyones_tokens_or_one_users(secure_client, make_user):
    make_user("erin")
    root = make_user("root", admin=True)
    everyone = secure_client.get("/api/v1/tokens", headers=root).get_json()["tokens"]
    assert {t["user"] for t in everyone} == {"erin", "root"}
    erin = secure_client.get("/api/v1/tokens", query_string={"user": "erin"}, headers=root).get_json()["tokens"]
    assert {t["user"] for t in erin} == {"erin"}


# --- revoking -------------------------------------------------------------------------------------------

def test_revoked_token_stops_authenticating_and_others_keep_working(secure_client, make_user):
    headers = make_user("dora")
    spare = create_token(secure_client, headers)
    revoked = secure_client.delete(f"/api/v1/tokens/{spare['id']}", headers=headers)
    assert revoked.status_code == 200
    assert revoked.get_json()["revoked_at"] is not None
    assert "token" not in revoked.get_json()
    assert secure_client.get("/api/v1/me", headers=bearer(spare["token"])).status_code == 401
    assert secure_client.get("/api/v1/me", headers=headers).status_code == 200


def test_revoking_twice_keeps_the_first_revocation(secure_client, make_user):
    headers = make_user("dora")
    spare = create_token(secure_client, headers)
    first = secure_client.delete(f"/api/v1/tokens/{spare['id']}", headers=headers).get_json()
    second = secure_client.delete(f"/api/v1/tokens/{spare['id']}", headers=headers).get_json()
    assert second["revoked_at"] == first["revoked_at"]


def test_revoked_token_is_listed_as_revoked(secure_client, make_user):
    headers = make_user("dora")
    spare = create_token(secure_client, headers)
    secure_client.delete(f"/api/v1/tokens/{spare['id']}", headers=headers)
    listed = {t["id"]: t for t in secure_client.get("/api/v1/tokens", headers=headers).get_json()["tokens"]}
    assert listed[spare["id"]]["revoked_at"] is not None


def test_user_cannot_revoke_someone_elses_token(secure_client, make_user):
    erin = make_user("erin")
    erins = secure_client.get("/api/v1/tokens", headers=erin).get_json()["tokens"][0]
    response = secure_client.delete(f"/api/v1/tokens/{erins['id']}", headers=make_user("dora"))
    assert response.status_code == 404
    assert secure_client.get("/api/v1/me", headers=erin).status_code == 200


def test_admin_revokes_someone_elses_token(secure_client, make_user):
    erin = make_user("erin")
    erins = secure_client.get("/api/v1/tokens", headers=erin).get_json()["tokens"][0]
    response = secure_client.delete(f"/api/v1/tokens/{erins['id']}", headers=make_user("root", admin=True))
    assert response.status_code == 200
    assert secure_client.get("/api/v1/me", headers=erin).status_code == 401


def test_revoking_an_unknown_token_is_not_found(secure_client, make_user):
    assert secure_client.delete("/api/v1/tokens/999999999", headers=make_user("root", admin=True)).status_code == 404


# --- users ----------------------------------------------------------------------------------------------

def test_admin_creates_a_user_who_then_gets_a_token(secure_client, make_user):
    root = make_user("root", admin=True)
    created = secure_client.post("/api/v1/users", json={"name": "frank"}, headers=root)
    assert created.status_code == 201
    assert created.get_json()["name"] == "frank" and created.get_json()["is_admin"] is False
    token = create_token(secure_client, root, user="frank")["token"]
    assert secure_client.get("/api/v1/me", headers=bearer(token)).get_json() == {"name": "frank", "is_admin": False}


def test_creating_an_existing_user_conflicts(secure_client, make_user):
    root = make_user("root", admin=True)
    assert secure_client.post("/api/v1/users", json={"name": "root"}, headers=root).status_code == 409


@pytest.mark.parametrize("name", ["*", "", "has space", "x" * 129])
def test_invalid_user_names_are_refused(secure_client, make_user, name):
    response = secure_client.post("/api/v1/users", json={"name": name}, headers=make_user("root", admin=True))
    assert response.status_code == 400


def test_user_listing_is_admin_only(secure_client, make_user):
    assert secure_client.get("/api/v1/users", headers=make_user("dora")).status_code == 403
    users = secure_client.get("/api/v1/users", headers=make_user("root", admin=True)).get_json()["users"]
    assert [u["name"] for u in users] == ["dora", "root"]


# --- REGISTRY_AUTH=disabled -----------------------------------------------------------------------------

def test_auth_disabled_makes_the_caller_an_admin_named_by_the_actor_header(client):
    response = client.get("/api/v1/me", headers={"X-Registry-Actor": "carol"})
    assert response.status_code == 200
    assert response.get_json() == {"name": "carol", "is_admin": True}


def test_auth_disabled_without_actor_header_acts_as_anonymous_admin(client):
    assert client.get("/api/v1/me").get_json() == {"name": "anonymous", "is_admin": True}


def test_auth_disabled_ignores_authorization_headers(client):
    response = client.get("/api/v1/me", headers={"Authorization": "Bearer reg_bogus", "X-Registry-Actor": "carol"})
    assert response.status_code == 200
    assert response.get_json()["name"] == "carol"


def test_auth_disabled_marks_every_response(client):
    assert client.get("/api/v1/me").headers["X-Registry-Auth"] == "disabled"


def test_auth_disabled_allows_admin_only_actions(client):
    headers = {"X-Registry-Actor": "carol"}
    assert client.put("/api/v1/permissions", json={"grants": []}, headers=headers).status_code == 200
    assert client.post("/api/v1/users", json={"name": "frank"}, headers=headers).status_code == 201
    assert client.post("/api/v1/models", json={"name": "churn"}, headers=headers).status_code == 201
