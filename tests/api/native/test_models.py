"""HTTP behaviour of /api/v1/models: create, read, list, update/rename, delete, tags, errors."""
from __future__ import annotations

from urllib.parse import quote

import pytest

from tests.api.support import assert_error, walk

ACTOR = {"X-Registry-Actor": "alice"}


def create(client, name: str, **fields):
    response = client.post("/api/v1/models", json={"name": name, **fields}, headers=ACTOR)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


# --- create ---------------------------------------------------------------------------------------------

def test_create_model_answers_201_with_location_and_etag(client):
    response = client.post("/api/v1/models", json={"name": "churn"}, headers=ACTOR)
    assert response.status_code == 201
    assert response.headers["Location"] == "/api/v1/models/churn"
    assert response.headers["ETag"] == f'"{response.get_json()["revision"]}"'


def test_create_model_renders_all_fields(client):
    body = create(client, "churn", description="predicts churn", tags={"team": "growth", "tier": "1"})
    assert body["name"] == "churn"
    assert body["description"] == "predicts churn"
    assert body["tags"] == {"team": "growth", "tier": "1"}
    assert body["last_version"] == 0
    assert body["revision"] == 1
    assert isinstance(body["created_at"], int) and body["created_at"] == body["updated_at"]


def test_create_model_without_description_gives_empty_description(client):
    assert create(client, "churn")["description"] == ""


def test_create_duplicate_model_is_409(client):
    create(client, "churn")
    error = assert_error(client.post("/api/v1/models", json={"name": "churn"}), 409, "ALREADY_EXISTS")
    assert error["details"] == {"model": "churn"}


# --- read -----------------------------------------------------------------------------------------------

def test_get_model_returns_it_with_etag(client):
    created = create(client, "churn", tags={"a": "b"})
    response = client.get("/api/v1/models/churn")
    assert response.status_code == 200
    assert response.get_json() == created
    assert response.headers["ETag"] == f'"{created["revision"]}"'


def test_get_unknown_model_is_404(client):
    error = assert_error(client.get("/api/v1/models/nope"), 404, "NOT_FOUND")
    assert error["details"] == {"model": "nope"}


def test_unknown_route_is_404_with_error_shape(client):
    assert_error(client.get("/api/v1/no-such-thing"), 404, "NOT_FOUND")


@pytest.mark.parametrize(
    "method, path, allowed",
    [
        ("PUT", "/api/v1/models", {"GET", "POST"}),
        ("POST", "/api/v1/models/churn", {"GET", "PATCH", "DELETE"}),
        ("GET", "/api/v1/models/churn/versions/1/transition", {"POST"}),
        ("POST", "/api/v1/audit-events", {"GET"}),
        ("DELETE", "/healthz", {"GET"}),
    ],
)
def test_wrong_method_is_405_with_allow_header(client, method, path, allowed):
    response = client.open(path, method=method)
    assert_error(response, 405, "METHOD_NOT_ALLOWED")
    assert allowed <= {m.strip() for m in response.headers["Allow"].split(",")}


def test_model_name_with_spaces_and_unicode_works_in_the_path(client):
    name = "churn model — é 模型"
    response = client.post("/api/v1/models", json={"name": name})
    assert response.status_code == 201
    location = response.headers["Location"]
    assert location.isascii()  # percent-encoded
    assert client.get(location).get_json()["name"] == name
    assert client.get("/api/v1/models/" + quote(name)).get_json()["name"] == name


# --- update ---------------------------------------------------------------------------------------------

def test_patch_description_bumps_revision_and_etag(client):
    created = create(client, "churn")
    response = client.patch("/api/v1/models/churn", json={"description": "new"})
    assert response.status_code == 200
    body = response.get_json()
    assert body["description"] == "new"
    assert body["revision"] == created["revision"] + 1
    assert response.headers["ETag"] == f'"{body["revision"]}"'


def test_patch_name_renames_the_model(client):
    create(client, "churn")
    response = client.patch("/api/v1/models/churn", json={"name": "retention"})
    assert response.status_code == 200
    assert response.get_json()["name"] == "retention"
    assert client.get("/api/v1/models/retention").status_code == 200
    assert_error(client.get("/api/v1/models/churn"), 404, "NOT_FOUND")


def test_rename_keeps_versions(client):
    create(client, "churn")
    client.post("/api/v1/models/churn/versions", json={"source": "s3://b/1"})
    client.patch("/api/v1/models/churn", json={"name": "retention"})
    response = client.get("/api/v1/models/retention/versions/1")
    assert response.status_code == 200
    assert response.get_json()["model"] == "retention"


def test_rename_onto_an_existing_name_is_409(client):
    create(client, "churn")
    create(client, "retention")
    assert_error(client.patch("/api/v1/models/churn", json={"name": "retention"}), 409, "ALREADY_EXISTS")


def test_patch_unknown_model_is_404(client):
    assert_error(client.patch("/api/v1/models/nope", json={"description": "x"}), 404, "NOT_FOUND")


def test_patch_with_stale_if_match_is_412_and_changes_nothing(client):
    created = create(client, "churn", description="old")
    stale = f'"{created["revision"] + 5}"'
    response = client.patch("/api/v1/models/churn", json={"description": "new"}, headers={"If-Match": stale})
    error = assert_error(response, 412, "PRECONDITION_FAILED")
    assert error["details"]["revision"] == created["revision"]
    assert client.get("/api/v1/models/churn").get_json()["description"] == "old"


def test_patch_with_current_revision_in_if_match_succeeds(client):
    create(client, "churn")
    etag = client.get("/api/v1/models/churn").headers["ETag"]
    response = client.patch("/api/v1/models/churn", json={"description": "new"}, headers={"If-Match": etag})
    assert response.status_code == 200
    assert response.get_json()["description"] == "new"


def test_patch_with_if_match_star_succeeds(client):
    create(client, "churn")
    response = client.patch("/api/v1/models/churn", json={"description": "new"}, headers={"If-Match": "*"})
    assert response.status_code == 200


def test_second_writer_with_the_same_etag_gets_412(client):
    create(client, "churn")
    etag = client.get("/api/v1/models/churn").headers["ETag"]
    first = client.patch("/api/v1/models/churn", json={"description": "a"}, headers={"If-Match": etag})
    assert first.status_code == 200
    second = client.patch("/api/v1/models/churn", json={"description": "b"}, headers={"If-Match": etag})
    assert_error(second, 412, "PRECONDITION_FAILED")


@pytest.mark.parametrize("header", ["1", "abc", 'W/"1"', '"x"', '"1", "2"', '""', '"99999999999"'])
def test_malformed_if_match_is_400(client, header):
    create(client, "churn")
    response = client.patch("/api/v1/models/churn", json={"description": "x"}, headers={"If-Match": header})
    assert assert_error(response, 400, "INVALID_ARGUMENT")["details"] == {"field": "If-Match"}


# --- delete ---------------------------------------------------------------------------------------------

def test_delete_model_answers_204_and_it_is_gone(client):
    create(client, "churn")
    response = client.delete("/api/v1/models/churn")
    assert response.status_code == 204
    assert response.get_data() == b""
    assert_error(client.get("/api/v1/models/churn"), 404, "NOT_FOUND")


def test_delete_unknown_model_is_404(client):
    assert_error(client.delete("/api/v1/models/nope"), 404, "NOT_FOUND")


def test_delete_model_deletes_its_versions(client):
    create(client, "churn")
    client.post("/api/v1/models/churn/versions", json={"source": "s3://b/1"})
    client.delete("/api/v1/models/churn")
    create(client, "churn")
    assert_error(client.get("/api/v1/models/churn/versions/1"), 404, "NOT_FOUND")


# --- tags -----------------------------------------------------------------------------------------------

def test_put_model_tag_sets_it_and_returns_the_model(client):
    created = create(client, "churn")
    response = client.put("/api/v1/models/churn/tags/team", json={"value": "growth"})
    assert response.status_code == 200
    body = response.get_json()
    assert body["tags"] == {"team": "growth"}
    assert response.headers["ETag"] == f'"{body["revision"]}"' and body["revision"] > created["revision"]


def test_put_model_tag_overwrites_the_value(client):
    create(client, "churn", tags={"team": "a"})
    client.put("/api/v1/models/churn/tags/team", json={"value": "b"})
    assert client.get("/api/v1/models/churn").get_json()["tags"] == {"team": "b"}


def test_delete_model_tag_answers_204_and_removes_it(client):
    create(client, "churn", tags={"team": "a", "keep": "b"})
    assert client.delete("/api/v1/models/churn/tags/team").status_code == 204
    assert client.get("/api/v1/models/churn").get_json()["tags"] == {"keep": "b"}


def test_delete_absent_model_tag_is_204(client):
    create(client, "churn")
    assert client.delete("/api/v1/models/churn/tags/absent").status_code == 204


def test_tag_on_unknown_model_is_404(client):
    assert_error(client.put("/api/v1/models/nope/tags/k", json={"value": "v"}), 404, "NOT_FOUND")


# --- list: pagination and filters -----------------------------------------------------------------------

@pytest.mark.parametrize("order_by", ["name", "-name", "created_at", "-created_at", "updated_at", "-updated_at"])
def test_listing_models_walks_every_page_once(client, order_by):
    names = [f"m{i:02d}" for i in range(11)]
    for name in names:
        create(client, name)
    pages = walk(client, "/api/v1/models", "models", max_results=3, order_by=order_by)
    assert [len(p) for p in pages] == [3, 3, 3, 2]
    seen = [m["name"] for page in pages for m in page]
    assert len(seen) == len(set(seen))
    assert sorted(seen) == names
    if order_by in ("name", "created_at", "updated_at"):  # created in name order
        assert seen == names
    else:
        assert seen == names[::-1]


def test_listing_models_on_an_exact_page_boundary_ends_without_an_empty_page(client):
    for name in ("a", "b", "c", "d"):
        create(client, name)
    pages = walk(client, "/api/v1/models", "models", max_results=2)
    assert [[m["name"] for m in p] for p in pages][:2] == [["a", "b"], ["c", "d"]]
    assert all(pages[:2]) and sum(len(p) for p in pages) == 4


def test_page_token_from_another_query_is_refused(client):
    for name in ("a", "b", "c"):
        create(client, name)
    token = client.get("/api/v1/models?max_results=1").get_json()["next_page_token"]
    response = client.get("/api/v1/models", query_string={"max_results": 1, "order_by": "-name", "page_token": token})
    assert assert_error(response, 400, "INVALID_ARGUMENT")["details"] == {"field": "page_token"}


def listed(client, **params) -> list[str]:
    response = client.get("/api/v1/models", query_string=params)
    assert response.status_code == 200, response.get_data(as_text=True)
    return [m["name"] for m in response.get_json()["models"]]


def test_filter_models_by_name_prefix(client):
    for name in ("fraud-eu", "fraud-us", "churn", "xfraud"):
        create(client, name)
    assert listed(client, name_prefix="fraud") == ["fraud-eu", "fraud-us"]


def test_filter_models_by_name_contains(client):
    for name in ("fraud-eu", "fraud-us", "churn", "xfraud"):
        create(client, name)
    assert listed(client, name_contains="rau") == ["fraud-eu", "fraud-us", "xfraud"]


@pytest.mark.parametrize("param", ["name_prefix", "name_contains"])
def test_name_filters_treat_like_wildcards_literally(client, param):
    for name in ("a%b", "a_b", "axb"):
        create(client, name)
    assert listed(client, **{param: "a_"}) == ["a_b"]
    assert listed(client, **{param: "a%"}) == ["a%b"]


def test_filter_models_by_one_tag(client):
    create(client, "a", tags={"team": "growth"})
    create(client, "b", tags={"team": "risk"})
    create(client, "c")
    assert listed(client, tag="team=growth") == ["a"]


def test_repeated_tag_filters_must_all_match(client):
    create(client, "a", tags={"team": "growth", "tier": "1"})
    create(client, "b", tags={"team": "growth", "tier": "2"})
    create(client, "c", tags={"tier": "1"})
    assert listed(client, tag=["team=growth", "tier=1"]) == ["a"]


def test_tag_filter_with_empty_value_matches_empty_tags(client):
    create(client, "a", tags={"flag": ""})
    create(client, "b", tags={"flag": "x"})
    assert listed(client, tag="flag=") == ["a"]


def test_filters_combine_with_pagination(client):
    for i in range(5):
        create(client, f"fraud-{i}", tags={"team": "risk"})
        create(client, f"churn-{i}", tags={"team": "risk"})
    pages = walk(client, "/api/v1/models", "models", max_results=2, name_prefix="fraud", tag="team=risk")
    assert [m["name"] for p in pages for m in p] == [f"fraud-{i}" for i in range(5)]
def test_tag_key_with_slash_can_be_set_and_deleted(client):
    client.post("/api/v1/models", json={"name": "m", "tags": {"team/owner": "a"}})
    assert client.put("/api/v1/models/m/tags/team/owner", json={"value": "b"}).get_json()["tags"] == {"team/owner": "b"}
    assert client.delete("/api/v1/models/m/tags/team/owner").status_code == 204
    assert client.get("/api/v1/models/m").get_json()["tags"] == {}
