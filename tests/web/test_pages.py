"""What each console page shows, and to whom: every page goes through the services' read rules, so a model
you cannot read is "not found" here exactly as in the API."""
from __future__ import annotations

import re

import pytest

from registry.auth import SYSTEM, Actor
from registry.services import reviews, versions

from .console import text


def test_the_models_page_lists_readable_models_with_what_they_serve(world, browser_for):
    page = text(browser_for(world.reader).get("/models"))
    assert "churn" in page and "secret" not in page
    row = re.search(r"<tr>\s*<td><a href=\"/models/churn\">churn</a></td>(.*?)</tr>", page, re.S).group(1)
    assert "/models/churn/versions/1" in row  # Production is v1


def test_the_models_page_searches_by_prefix_substring_and_tag(world, browser_for):
    console = browser_for(world.owner)
    assert "/models/churn\"" in text(console.get("/models?q=chu&match=prefix"))
    assert "/models/churn\"" not in text(console.get("/models?q=hur&match=prefix"))
    assert "/models/churn\"" in text(console.get("/models?q=hur&match=contains"))
    assert "/models/churn\"" in text(console.get("/models?tag=team%3Dgrowth"))
    assert "/models/churn\"" not in text(console.get("/models?tag=team%3Dother"))
    assert "No model you may read matches" in text(console.get("/models?q=zzz"))


def test_bad_search_input_is_a_400_page_not_an_error(world, browser_for):
    console = browser_for(world.owner)
    for query in ("tag=novalue", "match=regex", "page_token=garbage"):
        response = console.get(f"/models?{query}")
        assert response.status_code == 400, query
        assert "<h1>" in text(response)


def test_the_models_page_is_cursor_paginated(secure_app, world, browser_for):
    with secure_app.app_context():
        from registry.services import models
        for i in range(55):
            models.create_model(SYSTEM, f"bulk-{i:03d}")
    console = browser_for(world.admin)
    first = text(console.get("/models?q=bulk-"))
    assert first.count('href="/models/bulk-') == 50
    next_link = re.search(r'rel="next" href="([^"]+)"', first).group(1).replace("&amp;", "&")
    second = text(console.get(next_link))
    assert second.count('href="/models/bulk-') == 5 and "bulk-054" in second and "bulk-000" not in second


def test_a_model_you_cannot_read_is_not_found_as_a_missing_one_is(world, browser_for):
    console = browser_for(world.reader)
    for path in ("/models/secret", "/models/secret/versions/1", "/models/nothing", "/models/nothing/versions/1"):
        response = console.get(path)
        assert response.status_code == 404, path
        assert "Not found" in text(response)
    assert text(console.get("/models/secret")).replace("secret", "nothing") == \
        text(console.get("/models/nothing"))


def test_the_model_page_shows_stages_policies_and_versions(world, browser_for):
    page = text(browser_for(world.reader).get("/models/churn"))
    assert "Serving now" in page and "/models/churn/versions/1" in page
    assert re.search(r"stage-production\">Production</span></td>\s*<td>2</td>", page)
    assert "Permissions" not in page  # for MANAGE holders only


def test_the_model_page_shows_permissions_to_managers(world, browser_for):
    page = text(browser_for(world.owner).get("/models/churn"))
    assert "Permissions" in page and "rev2" in page and "MANAGE_PRODUCTION" in page


def test_the_versions_table_filters_by_stage_and_pages(secure_app, world, browser_for):
    with secure_app.app_context():
        for i in range(60):
            versions.create_version(SYSTEM, "churn", f"s3://bucket/churn/x{i}")
    console = browser_for(world.reader)
    production = text(console.get("/models/churn?stage=Production"))
    assert re.findall(r'href="/models/churn/versions/(\d+)">v\d+</a></td>\s*<td><span class="badge', production) == ["1"]
    everything = text(console.get("/models/churn"))
    listed = re.findall(r'<td><a href="/models/churn/versions/(\d+)">v\d+</a></td>\s*<td><span class="badge', everything)
    assert listed == [str(n) for n in range(62, 12, -1)]
    assert "Older versions" in everything
    assert console.get("/models/churn?stage=Nonsense").status_code == 400


def test_the_version_page_shows_details_and_the_diff_against_production(world, browser_for):
    page = text(browser_for(world.reader).get("/models/churn/versions/2"))
    assert "s3://bucket/churn/2" in page
    assert '<a href="https://tracking.example/runs/run-two" rel="noopener noreferrer">run-two</a>' in page
    diff = re.search(r'<table class="diff">(.*?)</table>', page, re.S).group(1)
    changed = re.findall(r'<tr class="changed"><th scope="row">([^<]+?) <', diff)
    assert changed == ["Source", "Run ID", "tag auc"]
    assert '<tr class="same"><th scope="row">Created by' in diff


def test_the_production_version_says_it_is_the_one_in_production(world, browser_for):
    page = text(browser_for(world.reader).get("/models/churn/versions/1"))
    assert "This version is the one in Production." in page


def test_a_reader_is_offered_requests_only(world, browser_for):
    page = text(browser_for(world.reader).get("/models/churn/versions/2"))
    assert "Request a transition" in page
    assert "Transition now" not in page and ">Set alias<" not in page and "Add a comment" not in page


def test_a_reviewer_may_transition_to_staging_directly_but_not_to_production(world, browser_for):
    page = text(browser_for(world.reviewer).get("/models/churn/versions/2"))
    direct = re.search(r'<select id="direct-stage" name="stage">(.*?)</select>', page, re.S).group(1)
    assert "Staging" in direct and "Production" not in direct  # Production needs 2 approvals
    assert ">Set alias<" in page


def test_the_inbox_shows_what_waits_with_approvals_so_far(secure_app, world, browser_for):
    with secure_app.app_context():
        request = reviews.create_request(Actor("reed"), "churn", 2, "Production", comment="better AUC")
        reviews.approve(Actor("rev2"), request.id, "fine")
    page = text(browser_for(world.reviewer).get("/"))
    row = re.search(r'<tbody>(.*?)</tbody>', page, re.S).group(1)
    assert "churn" in row and "None → Production" in row and "reed" in row
    assert re.search(r"1 / 2\s*<span class=\"muted\">\(rev2\)</span>", row)
    assert "Nothing waits for you" in text(browser_for(world.reviewer2).get("/"))  # already approved
    mine = text(browser_for(world.reader).get("/"))
    assert "Nothing waits for you" in mine and "status-pending" in mine


def test_the_requester_sees_no_approve_button_on_their_own_request(secure_app, world, browser_for):
    with secure_app.app_context():
        request = reviews.create_request(Actor("rev"), "churn", 2, "Production")
    page = text(browser_for(world.reviewer).get("/models/churn/versions/2"))
    block = re.search(rf'<article class="request" id="request-{request.id}".*?</article>', page, re.S).group(0)
    assert ">Approve<" not in block and ">Reject<" not in block and "Cancel request" in block
    assert "You cannot approve your own transition request." in block
    other = text(browser_for(world.reviewer2).get("/models/churn/versions/2"))
    assert ">Approve<" in other and ">Reject<" in other and "Cancel request" not in other


def test_the_audit_page_filters_and_shows_only_what_the_reader_may_see(world, browser_for):
    page = text(browser_for(world.reader).get("/audit?model=churn&action=version.created"))
    assert page.count("<code>version.created</code>") == 2
    assert "secret" not in text(browser_for(world.reader).get("/audit"))
    assert browser_for(world.reader).get("/audit?since=yesterday").status_code == 400
    assert browser_for(world.reader).get("/audit?version=x&model=churn").status_code == 400


@pytest.mark.parametrize("who,status", [("admin", 200), ("owner", 403)])
def test_only_admins_verify_chains(world, browser_for, who, status):
    from .console import post_form
    response = post_form(browser_for(getattr(world, who)), "/audit", "/audit/verify", model="churn")
    assert response.status_code == status
    if status == 200:
        assert "verified" in text(response) and "events intact" in text(response)


def test_an_unknown_console_url_is_a_console_404_and_an_unknown_api_url_stays_json(world, browser_for):
    console = browser_for(world.reader)
    page = console.get("/no-such-page")
    assert page.status_code == 404 and "<h1>Not found" in text(page)
    api = console.get("/api/v1/no-such-route")
    assert api.status_code == 404 and api.get_json()["error"]["code"] == "NOT_FOUND"
    mlflow = console.get("/api/2.0/mlflow/no-such-route")
    assert mlflow.status_code == 404 and mlflow.get_json()["error_code"] == "ENDPOINT_NOT_FOUND"


def test_a_deny_hides_the_model_in_the_console_even_from_its_manager(secure_app, world, browser_for):
    console = browser_for(world.owner)
    assert console.get("/models/churn").status_code == 200
    with secure_app.app_context():
        from registry.services import permissions
        permissions.set_model_permissions(SYSTEM, "churn", [("olga", "DENY")], merge=True)
    for path in ("/models/churn", "/models/churn/versions/1"):
        assert console.get(path).status_code == 404, path
    assert "/models/churn\"" not in text(console.get("/models"))
    page = text(browser_for(world.admin).get("/models/churn"))  # admins are not bound, and see the veto
    assert re.search(r"<td>olga</td><td>DENY</td>", page)
