"""The review console end to end in a real Chromium, against a real gunicorn with two workers: a requester
files a request, two reviewers approve it from their inboxes, and the version is served from Production.
Also: what the console refuses (forged forms, missing CSRF tokens), signing out, revocation, accessibility.
"""
from __future__ import annotations

import re

import pytest
import requests

from tests.clients import native, user_token
from tests.system.browser import README_SHOTS, UPDATE_README_SHOTS, accessibility_problems

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def people(registry_url):
    """Users of one module-wide server, and a model ``fraud`` with v1 in Production, v2 waiting (Production
    needs two approvals)."""
    tokens = {"req": user_token(registry_url, "rhea", "READ"),
              "rev1": user_token(registry_url, "viktor", "MANAGE_PRODUCTION"),
              "rev2": user_token(registry_url, "wanda", "MANAGE_PRODUCTION"),
              "owner": user_token(registry_url, "oscar", "MANAGE")}
    native(registry_url, "POST", "/models", {"name": "fraud", "description": "Flags fraudulent payments",
                                             "tags": {"team": "risk"}}, expect=201)
    for i, auc in ((1, "0.91"), (2, "0.94")):
        native(registry_url, "POST", "/models/fraud/versions",
               {"source": f"s3://models/fraud/{i}", "run_id": f"run-{i}", "tags": {"auc": auc}}, expect=201)
    native(registry_url, "POST", "/models/fraud/versions/1/transition", {"stage": "Production"})
    native(registry_url, "PUT", "/models/fraud/approval-policies/Production", {"required_approvals": 2})
    return tokens


def sign_in(page, url: str, token: str) -> None:
    page.goto(f"{url}/signin")
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{url}/")


def test_a_request_is_filed_reviewed_by_two_and_served_from_production(registry_url, people, new_page):
    url = registry_url
    requester = new_page()
    sign_in(requester, url, people["req"])
    requester.goto(f"{url}/models/fraud/versions/2")
    requester.get_by_label("Request a move to").select_option("Production")
    requester.get_by_label("Archive the versions now in that stage, once approved").check()
    requester.locator("#request-comment").fill("AUC 0.94 on the holdout")
    requester.get_by_role("button", name="Request", exact=True).click()
    assert "Requested None → Production" in requester.locator("[role=status]").inner_text()
    request_block = requester.locator("article.request").first
    assert request_block.get_by_role("button", name="Approve").count() == 0  # not on one's own request
    assert request_block.get_by_role("button", name="Cancel request").count() == 1

    first = new_page()
    sign_in(first, url, people["rev1"])
    row = first.locator("tbody tr", has_text="fraud")
    assert "None → Production" in row.inner_text() and "rhea" in row.inner_text() and "0 / 2" in row.inner_text()
    row.get_by_role("link", name=re.compile("Review")).click()
    changed = first.locator("table.diff tr.changed th").all_inner_texts()
    assert [c.replace("(changed)", "").strip(" ≠\n") for c in changed] == ["Source", "Run ID", "tag auc"]
    first.locator("article.request textarea").fill("Holdout numbers check out")
    first.get_by_role("button", name="Approve").click()
    assert "it is now pending" in first.locator("[role=status]").inner_text()
    assert "1 / 2" in first.locator("article.request").first.inner_text()

    second = new_page()
    sign_in(second, url, people["rev2"])
    second.locator("tbody tr", has_text="fraud").get_by_role("link", name=re.compile("Review")).click()
    second.locator("article.request textarea").fill("Agreed")
    second.get_by_role("button", name="Approve").click()
    assert "it is now approved" in second.locator("[role=status]").inner_text()

    second.goto(f"{url}/models/fraud")
    production = second.locator(".card", has=second.locator(".stage-production"))
    assert production.locator(".big").inner_text() == "v2"
    lane = second.locator(".lane", has=second.locator("h3 .stage-production"))
    assert lane.locator("li.current").inner_text().startswith("v2")  # the timeline's current segment
    assert "by wanda" in lane.locator("li.current").inner_text()
    assert lane.locator("li").nth(1).inner_text().startswith("v1")  # what it served before
    second.get_by_label("Served at (UTC)").fill("2020-01-01T00:00:00")
    second.get_by_role("button", name="Show").click()
    assert "the model did not exist yet" in second.locator("section", has_text="What was served when").inner_text()
    served = requests.get(f"{url}/api/v1/models/fraud/stages/Production",
                          headers={"Authorization": f"Bearer {people['req']}"}, timeout=10).json()
    assert served["version"] == 2


def test_a_forged_approval_and_a_missing_csrf_token_are_refused(registry_url, people, new_page):
    url = registry_url
    native(url, "POST", "/models/fraud/versions", {"source": "s3://models/fraud/3"}, expect=201)
    requester = new_page()
    sign_in(requester, url, people["rev1"])
    requester.goto(f"{url}/models/fraud/versions/3")
    requester.get_by_label("Request a move to").select_option("Staging")
    requester.get_by_role("button", name="Request", exact=True).click()
    block = requester.locator("article.request").first
    request_id = int(block.get_attribute("id").removeprefix("request-"))
    assert block.get_by_role("button", name="Approve").count() == 0
    csrf = requester.locator("input[name=csrf_token]").first.get_attribute("value")

    forged = requester.request.post(f"{url}/requests/{request_id}/approve", form={"csrf_token": csrf})
    assert forged.status == 403 and "You cannot approve your own transition request." in forged.text()
    without_token = requester.request.post(f"{url}/requests/{request_id}/cancel", form={})
    assert without_token.status == 400
    status = native(url, "GET", f"/transition-requests/{request_id}")["status"]
    assert status == "pending"


def test_signing_out_ends_access(registry_url, people, new_page):
    page = new_page()
    sign_in(page, registry_url, people["rev2"])
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/signin"))
    page.goto(f"{registry_url}/models")
    assert "/signin" in page.url


def test_revoking_the_token_ends_the_session_on_every_worker(registry_url, new_page):
    token = user_token(registry_url, "yusuf", "READ")
    page = new_page()
    sign_in(page, registry_url, token)
    for _ in range(6):  # keep-alive off in the checks below: requests spread over both workers
        assert page.request.get(f"{registry_url}/models", max_redirects=0,
                                headers={"Connection": "close"}).status == 200
    mine = [t for t in native(registry_url, "GET", "/tokens?user=yusuf")["tokens"]
            if t["description"] != "console session"]
    native(registry_url, "DELETE", f"/tokens/{mine[0]['id']}")
    statuses = {page.request.get(f"{registry_url}/models", max_redirects=0, headers={"Connection": "close"}).status
                for _ in range(6)}
    assert statuses == {302}
    page.goto(f"{registry_url}/")
    assert "Your session has ended" in page.content()


PAGES = ["/", "/models", "/models/fraud", "/models/fraud/versions/2", "/audit"]


@pytest.mark.parametrize("path", PAGES)
def test_pages_have_labels_ordered_headings_and_keyboard_access(registry_url, people, new_page, path):
    page = new_page()
    sign_in(page, registry_url, people["rev1"])
    page.goto(registry_url + path)
    assert accessibility_problems(page) == []


def test_a_managers_model_page_with_its_permission_forms_is_accessible(registry_url, people, new_page):
    page = new_page()
    sign_in(page, registry_url, people["owner"])
    page.goto(f"{registry_url}/models/fraud")
    assert page.get_by_role("button", name="Grant").count() == 1
    assert accessibility_problems(page) == []


def test_the_sign_in_page_is_accessible_too(registry_url, new_page):
    page = new_page()
    page.goto(f"{registry_url}/signin")
    assert accessibility_problems(page) == []


def test_screenshots_of_the_main_pages(registry_url, people, new_page, tmp_path):
    """Small PNGs of the main pages, on a laptop and on a phone (written into the README's folder only with
    REGISTRY_UPDATE_SCREENSHOTS=1). The phone layout must not scroll sideways."""
    target = README_SHOTS if UPDATE_README_SHOTS else tmp_path
    target.mkdir(exist_ok=True)
    for device, viewport in (("laptop", {"width": 1280, "height": 800}), ("phone", {"width": 390, "height": 844})):
        page = new_page(viewport)
        sign_in(page, registry_url, people["rev2"])
        for name, path in (("inbox", "/"), ("model", "/models/fraud"), ("version", "/models/fraud/versions/2")):
            page.goto(registry_url + path)
            width = page.evaluate("() => document.documentElement.scrollWidth")
            assert width <= viewport["width"], (device, path, width)
            page.screenshot(path=str(target / f"{name}-{device}.png"))
    assert len(list(target.glob("*.png"))) >= 6
