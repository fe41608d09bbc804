"""Tokens minted with a token never outlive it (issue "Trust the served answer"), over HTTP.

A token a caller who authenticated with a token creates *for themself* expires no later than that token (no
expiry asked: the parent's expiry), and revoking a token revokes every token minted with it, and every token
minted with those, at once. A token an admin issues for another user is that user's own credential.
"""
from __future__ import annotations

from datetime import timedelta

from registry.auth import SYSTEM
from registry.services import identities


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def mint(client, headers, **body) -> dict:
    response = client.post("/api/v1/tokens", json=body, headers=headers)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def me(client, token: str) -> int:
    return client.get("/api/v1/me", headers=bearer(token)).status_code


def test_a_sixty_second_token_cannot_mint_a_token_without_expiry(secure_client, make_user):
    short = mint(secure_client, make_user("dora"), expires_in_seconds=60)
    child = mint(secure_client, bearer(short["token"]))
    assert short["expires_at"] is not None
    assert child["expires_at"] == short["expires_at"]


def test_a_longer_lifetime_is_capped_at_the_parents_expiry(secure_client, make_user):
    short = mint(secure_client, make_user("dora"), expires_in_seconds=60)
    child = mint(secure_client, bearer(short["token"]), expires_in_seconds=86400)
    assert child["expires_at"] == short["expires_at"]


def test_a_shorter_lifetime_is_kept(secure_client, make_user):
    day = mint(secure_client, make_user("dora"), expires_in_seconds=86400)
    child = mint(secure_client, bearer(day["token"]), expires_in_seconds=60)
    assert child["expires_at"] - child["created_at"] == 60 * 1000


def test_a_token_without_expiry_mints_tokens_as_asked(secure_client, make_user):
    headers = make_user("dora")  # make_user's token has no expiry
    assert mint(secure_client, headers)["expires_at"] is None
    assert mint(secure_client, headers, expires_in_seconds=3600)["expires_at"] is not None


def test_an_admin_token_minted_for_someone_else_is_that_users_own(secure_client, make_user):
    """Issuing another user's credential is an admin's decision, not a copy of the admin's own token:
    rotating an admin's token must not cut off every pipeline whose token that admin issued."""
    make_user("erin")
    short = mint(secure_client, make_user("root", admin=True), expires_in_seconds=60)
    issued = mint(secure_client, bearer(short["token"]), user="erin")
    assert (issued["user"], issued["expires_at"]) == ("erin", None)
    assert secure_client.delete(f"/api/v1/tokens/{short['id']}", headers=bearer(short["token"])).status_code == 200
    assert me(secure_client, issued["token"]) == 200


def test_an_admin_minting_for_themself_is_capped(secure_client, make_user):
    short = mint(secure_client, make_user("root", admin=True), expires_in_seconds=60)
    child = mint(secure_client, bearer(short["token"]), user="root")
    assert child["expires_at"] == short["expires_at"]


def test_revoking_a_token_revokes_its_children_and_grandchildren_at_once(secure_client, make_user):
    headers = make_user("dora")
    parent = mint(secure_client, headers, description="parent")
    child = mint(secure_client, bearer(parent["token"]), description="child")
    grandchild = mint(secure_client, bearer(child["token"]), description="grandchild")
    sibling = mint(secure_client, headers, description="sibling")  # minted with make_user's token
    for token in (parent, child, grandchild, sibling):
        assert me(secure_client, token["token"]) == 200  # known to the token cache from here on

    response = secure_client.delete(f"/api/v1/tokens/{parent['id']}", headers=bearer(sibling["token"]))
    assert response.status_code == 200

    assert [me(secure_client, t["token"]) for t in (parent, child, grandchild, sibling)] == [401, 401, 401, 200]
    listed = {t["description"]: t["revoked_at"] for t in
              secure_client.get("/api/v1/tokens", headers=headers).get_json()["tokens"]}
    assert [listed[d] is not None for d in ("parent", "child", "grandchild", "sibling")] == [True, True, True, False]


def test_each_revocation_is_audited(secure_client, make_user):
    headers = make_user("dora")
    parent = mint(secure_client, headers)
    child = mint(secure_client, bearer(parent["token"]))
    grandchild = mint(secure_client, bearer(child["token"]))
    assert secure_client.delete(f"/api/v1/tokens/{parent['id']}", headers=headers).status_code == 200
    events = secure_client.get("/api/v1/audit-events", query_string={"action": "token.revoked"},
                               headers=headers).get_json()["events"]
    assert [e["details"]["token_id"] for e in events] == [parent["id"], child["id"], grandchild["id"]]
    assert {e["actor"] for e in events} == {"dora"}


def test_revoking_a_child_leaves_its_parent_working(secure_client, make_user):
    parent = mint(secure_client, make_user("dora"))
    child = mint(secure_client, bearer(parent["token"]))
    assert secure_client.delete(f"/api/v1/tokens/{child['id']}", headers=bearer(parent["token"])).status_code == 200
    assert (me(secure_client, parent["token"]), me(secure_client, child["token"])) == (200, 401)


def test_tokens_made_without_a_token_are_unaffected(secure_app, secure_client, make_user):
    """The command line (SYSTEM) has no token: its tokens get the lifetime asked for, and no parent."""
    headers = make_user("dora")
    with secure_app.app_context():
        record, token = identities.create_token(SYSTEM, "dora", expires_in=timedelta(days=30))
    assert record.expires_at - record.created_at == timedelta(days=30)
    tokens = secure_client.get("/api/v1/tokens", headers=headers).get_json()["tokens"]
    assert secure_client.delete(f"/api/v1/tokens/{tokens[0]['id']}", headers=headers).status_code == 200
    assert me(secure_client, token) == 200

