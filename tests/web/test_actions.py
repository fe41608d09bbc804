"""The console's forms call the same use cases as the API, so they are refused exactly as the API refuses them:
a forged form gets the API's status code and changes nothing."""
from __future__ import annotations

from registry.auth import SYSTEM, Actor
from registry.services import aliases, comments, permissions, reviews, versions
from registry.services.reviews import RequestQuery

from .console import post_form, text

VERSION_2 = "/models/churn/versions/2"


def requests_of(secure_app, version=2):
    with secure_app.app_context():
        return reviews.list_requests(SYSTEM, RequestQuery(model_name="churn", version=version)).items


def test_a_request_filed_in_the_console_is_a_real_request(secure_app, world, browser_for):
    console = browser_for(world.reader)
    response = post_form(console, VERSION_2, f"{VERSION_2}/requests", stage="Production",
                         archive_existing_versions="on", comment="AUC +0.05")
    assert response.status_code == 302 and response.headers["Location"].startswith(VERSION_2 + "#request-")
    [request] = requests_of(secure_app)
    assert (request.requested_by, request.to_stage, request.archive_existing_versions, request.comment) == \
        ("reed", "Production", True, "AUC +0.05")


def test_two_approvals_move_the_version_to_production(secure_app, world, browser_for):
    with secure_app.app_context():
        request = reviews.create_request(Actor("reed"), "churn", 2, "Production", archive_existing_versions=True)
    first = post_form(browser_for(world.reviewer), VERSION_2, f"/requests/{request.id}/approve", comment="lgtm")
    assert first.status_code == 302
    assert requests_of(secure_app)[0].status == "pending"
    second = browser_for(world.reviewer2)
    response = post_form(second, VERSION_2, f"/requests/{request.id}/approve", comment="ship it")
    assert response.status_code == 302
    assert requests_of(secure_app)[0].status == "approved"
    with secure_app.app_context():
        assert versions.get_version(SYSTEM, "churn", 2).stage == "Production"
        assert versions.get_version(SYSTEM, "churn", 1).stage == "Archived"


def test_a_forged_approval_of_ones_own_request_is_refused_as_the_api_refuses_it(secure_app, world, browser_for,
                                                                              secure_client):
    with secure_app.app_context():
        request = reviews.create_request(Actor("rev"), "churn", 2, "Production")
    response = post_form(browser_for(world.reviewer), VERSION_2, f"/requests/{request.id}/approve")
    api = secure_client.post(f"/api/v1/transition-requests/{request.id}/approve", json={}, headers=world.reviewer)
    assert response.status_code == api.status_code == 403
    assert api.get_json()["error"]["message"] in text(response)
    assert requests_of(secure_app)[0].approvals == ()


def test_a_reader_cannot_approve_reject_or_cancel_anothers_request(secure_app, world, browser_for):
    with secure_app.app_context():
        request = reviews.create_request(Actor("rev"), "churn", 2, "Production")
    console = browser_for(world.reader)
    for decision in ("approve", "reject", "cancel"):
        assert post_form(console, VERSION_2, f"/requests/{request.id}/{decision}").status_code == 403, decision
    assert requests_of(secure_app)[0].status == "pending"


def test_a_request_on_a_model_you_cannot_read_is_not_found(secure_app, world, browser_for):
    with secure_app.app_context():
        request = reviews.create_request(Actor("olga"), "secret", 1, "Staging")
    response = post_form(browser_for(world.reader), VERSION_2, f"/requests/{request.id}/approve")
    assert response.status_code == 404


def test_a_forged_direct_promotion_past_the_policy_is_refused(secure_app, world, browser_for):
    response = post_form(browser_for(world.reviewer), VERSION_2, f"{VERSION_2}/transition", stage="Production")
    assert response.status_code == 403 and "approval" in text(response).lower()
    with secure_app.app_context():
        assert versions.get_version(SYSTEM, "churn", 2).stage == "None"


def test_a_direct_transition_the_policy_allows_is_applied(secure_app, world, browser_for):
    response = post_form(browser_for(world.reviewer), VERSION_2, f"{VERSION_2}/transition", stage="Staging")
    assert response.status_code == 302
    with secure_app.app_context():
        assert versions.get_version(SYSTEM, "churn", 2).stage == "Staging"


def test_the_requester_may_cancel_and_a_reviewer_may_reject(secure_app, world, browser_for):
    with secure_app.app_context():
        mine = reviews.create_request(Actor("reed"), "churn", 2, "Production")
    assert post_form(browser_for(world.reader), VERSION_2, f"/requests/{mine.id}/cancel").status_code == 302
    with secure_app.app_context():
        other = reviews.create_request(Actor("reed"), "churn", 2, "Staging")
    assert post_form(browser_for(world.reviewer), VERSION_2, f"/requests/{other.id}/reject",
                     comment="not yet").status_code == 302
    statuses = {r.id: (r.status, r.resolution_comment) for r in requests_of(secure_app)}
    assert statuses == {mine.id: ("cancelled", ""), other.id: ("rejected", "not yet")}


def test_aliases_set_by_a_permitted_user_and_requested_by_a_reader(secure_app, world, browser_for):
    assert post_form(browser_for(world.reviewer), VERSION_2, f"{VERSION_2}/alias", alias="champion",
                     mode="set").status_code == 302
    assert post_form(browser_for(world.reader), VERSION_2, f"{VERSION_2}/alias", alias="challenger",
                     mode="set").status_code == 403
    assert post_form(browser_for(world.reader), VERSION_2, f"{VERSION_2}/alias", alias="challenger",
                     mode="request").status_code == 302
    with secure_app.app_context():
        assert aliases.get_version_by_alias(SYSTEM, "churn", "champion").version == 2
    assert [r.alias for r in requests_of(secure_app)] == ["challenger"]


def test_comments_add_edit_own_and_delete_own(secure_app, world, browser_for):
    owner = browser_for(world.owner)
    assert post_form(owner, VERSION_2, f"{VERSION_2}/comments", comment="looks good").status_code == 302
    with secure_app.app_context():
        [comment] = comments.list_comments(SYSTEM, "churn", 2)
    assert post_form(owner, VERSION_2, f"/comments/{comment.id}/edit", comment="looks great").status_code == 302
    other = browser_for(world.reviewer)
    assert post_form(other, VERSION_2, f"/comments/{comment.id}/edit", comment="defaced").status_code == 403
    assert post_form(other, VERSION_2, f"/comments/{comment.id}/delete", back=VERSION_2).status_code == 403
    with secure_app.app_context():
        assert [c.comment for c in comments.list_comments(SYSTEM, "churn", 2)] == ["looks great"]
    assert post_form(owner, VERSION_2, f"/comments/{comment.id}/delete", back=VERSION_2).status_code == 302
    with secure_app.app_context():
        assert comments.list_comments(SYSTEM, "churn", 2) == []


def test_readers_cannot_comment(world, browser_for):
    assert post_form(browser_for(world.reader), VERSION_2, f"{VERSION_2}/comments", comment="hi").status_code == 403


def test_every_console_post_needs_the_csrf_token(secure_app, world, browser_for):
    with secure_app.app_context():
        request = reviews.create_request(Actor("reed"), "churn", 2, "Production")
    console = browser_for(world.admin)
    for action in (f"{VERSION_2}/requests", f"{VERSION_2}/transition", f"/requests/{request.id}/approve",
                   f"/requests/{request.id}/reject", f"/requests/{request.id}/cancel", f"{VERSION_2}/alias",
                   "/models/churn/aliases/champion/delete", f"{VERSION_2}/comments", "/comments/1/edit",
                   "/comments/1/delete", "/audit/verify", "/signout", "/signin", "/models/churn/permissions",
                   "/models/churn/permissions/revoke"):
        response = console.post(action, data={"stage": "Staging", "alias": "x", "comment": "c", "model": "churn"})
        assert response.status_code == 400, action
        assert "Form expired or forged" in text(response), action
    assert requests_of(secure_app)[0].status == "pending"


def test_posting_while_signed_out_is_refused(secure_app, db_session, world):
    client = secure_app.test_client()
    page = client.get("/signin")
    from .console import csrf_from
    response = client.post(f"{VERSION_2}/requests", data={"csrf_token": csrf_from(text(page)), "stage": "Staging"})
    assert response.status_code == 401


def grants_of(secure_app, model="churn"):
    with secure_app.app_context():
        return {g.principal: g.level for g in permissions.get_model_permissions(SYSTEM, model)}


def test_a_manager_grants_and_revokes_access_from_the_model_page(secure_app, world, browser_for):
    console = browser_for(world.owner)
    granted = post_form(console, "/models/churn", "/models/churn/permissions", principal="rev", level="MANAGE")
    assert granted.status_code == 302
    assert grants_of(secure_app)["rev"] == "MANAGE"
    page = text(console.get("/models/churn"))
    assert "rev now holds MANAGE on churn." in page
    revoked = post_form(console, "/models/churn", "/models/churn/permissions/revoke", principal="reed")
    assert revoked.status_code == 302
    assert "reed" not in grants_of(secure_app)
    assert browser_for(world.reader).get("/models/churn").status_code == 404  # reed can no longer read it


def test_only_managers_may_change_permissions_and_a_forged_form_changes_nothing(secure_app, world, browser_for):
    before = grants_of(secure_app)
    reviewer = browser_for(world.reviewer)  # MANAGE_PRODUCTION: below MANAGE
    assert "Grant access" not in text(reviewer.get("/models/churn"))
    assert post_form(reviewer, "/models/churn", "/models/churn/permissions", principal="rev",
                     level="MANAGE").status_code == 403
    assert post_form(reviewer, "/models/churn", "/models/churn/permissions/revoke", principal="olga").status_code == 403
    reader = browser_for(world.reader)  # on a model they cannot read at all: as if it did not exist
    assert post_form(reader, "/models/churn", "/models/secret/permissions", principal="reed",
                     level="READ").status_code == 404
    assert grants_of(secure_app) == before


def test_bad_grants_are_400s_and_revoking_nothing_is_a_404(secure_app, world, browser_for):
    console = browser_for(world.owner)
    assert post_form(console, "/models/churn", "/models/churn/permissions", principal="nobody-here",
                     level="READ").status_code == 400
    assert post_form(console, "/models/churn", "/models/churn/permissions", principal="rev",
                     level="SUPREME").status_code == 400
    assert post_form(console, "/models/churn", "/models/churn/permissions/revoke", principal="root").status_code == 404
