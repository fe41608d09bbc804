"""HTTP behaviour of /api/v1 model versions: versions, tags, search, stages, aliases, errors."""
from __future__ import annotations

from urllib.parse import quote

import pytest

from tests.api.support import assert_error, walk

ACTOR = {"X-Registry-Actor": "alice"}


def create_model(client, name: str = "churn") -> None:
    assert client.post("/api/v1/models", json={"name": name}).status_code == 201


def create_version(client, model: str = "churn", **fields) -> dict:
    fields.setdefault("source", "s3://bucket/model")
    response = client.post(f"/api/v1/models/{quote(model)}/versions", json=fields, headers=ACTOR)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def transition(client, version: int, stage: str, model: str = "churn", **fields):
    return client.post(f"/api/v1/models/{model}/versions/{version}/transition", json={"stage": stage, **fields})


@pytest.fixture
def churn(client):
    create_model(client, "churn")
    return "churn"


# --- create ---------------------------------------------------------------------------------------------

def test_create_version_answers_201_with_location_and_etag(client, churn):
    response = client.post("/api/v1/models/churn/versions", json={"source": "s3://b/1"})
    assert response.status_code == 201
    assert response.headers["Location"] == "/api/v1/models/churn/versions/1"
    assert response.headers["ETag"] == f'"{response.get_json()["revision"]}"'


def test_create_version_renders_all_fields(client, churn):
    body = create_version(client, source="s3://b/1", run_id="run-1", run_link="http://ml/run-1",
                          description="first", tags={"framework": "sklearn"})
    assert {k: body[k] for k in ("model", "version", "stage", "status", "source", "run_id", "run_link",
                                 "description", "tags", "aliases", "created_by", "revision")} == {
        "model": "churn", "version": 1, "stage": "None", "status": "READY", "source": "s3://b/1",
        "run_id": "run-1", "run_link": "http://ml/run-1", "description": "first",
        "tags": {"framework": "sklearn"}, "aliases": [], "created_by": "alice", "revision": 1,
    }
    assert isinstance(body["created_at"], int) and body["created_at"] == body["updated_at"]


def test_actor_header_becomes_created_by(client, churn):
    response = client.post("/api/v1/models/churn/versions", json={"source": "s3://b/s"},
                           headers={"X-Registry-Actor": "ci-bot@example.com"})
    assert response.get_json()["created_by"] == "ci-bot@example.com"
    assert client.get("/api/v1/models/churn/versions/1").get_json()["created_by"] == "ci-bot@example.com"


def test_created_by_defaults_to_anonymous(client, churn):
    assert client.post("/api/v1/models/churn/versions", json={"source": "s3://b/s"}).get_json()["created_by"] == "anonymous"


def test_versions_are_numbered_in_sequence_and_counted_on_the_model(client, churn):
    assert [create_version(client)["version"] for _ in range(3)] == [1, 2, 3]
    assert client.get("/api/v1/models/churn").get_json()["last_version"] == 3


def test_a_deleted_version_number_is_never_reused(client, churn):
    create_version(client)
    create_version(client)
    assert client.delete("/api/v1/models/churn/versions/2").status_code == 204
    assert create_version(client)["version"] == 3


def test_create_version_of_unknown_model_is_404(client):
    error = assert_error(client.post("/api/v1/models/nope/versions", json={"source": "s3://b/s"}), 404, "NOT_FOUND")
    assert error["details"] == {"model": "nope"}


# --- read, update, delete -------------------------------------------------------------------------------

def test_get_version_returns_it_with_etag(client, churn):
    created = create_version(client)
    response = client.get("/api/v1/models/churn/versions/1")
    assert response.status_code == 200
    assert response.get_json() == created
    assert response.headers["ETag"] == f'"{created["revision"]}"'


def test_get_unknown_version_is_404_naming_the_version(client, churn):
    error = assert_error(client.get("/api/v1/models/churn/versions/7"), 404, "NOT_FOUND")
    assert error["details"] == {"model": "churn", "version": 7}


def test_get_version_of_unknown_model_is_404_naming_the_model(client):
    error = assert_error(client.get("/api/v1/models/nope/versions/1"), 404, "NOT_FOUND")
    assert error["details"] == {"model": "nope"}


def test_patch_version_description(client, churn):
    created = create_version(client)
    response = client.patch("/api/v1/models/churn/versions/1", json={"description": "better"})
    assert response.status_code == 200
    body = response.get_json()
    assert body["description"] == "better"
    assert body["revision"] == created["revision"] + 1
    assert response.headers["ETag"] == f'"{body["revision"]}"'


def test_patch_version_with_stale_if_match_is_412_and_changes_nothing(client, churn):
    created = create_version(client, description="old")
    response = client.patch("/api/v1/models/churn/versions/1", json={"description": "new"},
                            headers={"If-Match": f'"{created["revision"] + 1}"'})
    assert_error(response, 412, "PRECONDITION_FAILED")
    assert client.get("/api/v1/models/churn/versions/1").get_json()["description"] == "old"


def test_patch_version_with_current_etag_succeeds(client, churn):
    create_version(client)
    etag = client.get("/api/v1/models/churn/versions/1").headers["ETag"]
    response = client.patch("/api/v1/models/churn/versions/1", json={"description": "new"},
                            headers={"If-Match": etag})
    assert response.status_code == 200


def test_patch_version_with_if_match_star_succeeds(client, churn):
    create_version(client)
    response = client.patch("/api/v1/models/churn/versions/1", json={"description": "new"},
                            headers={"If-Match": "*"})
    assert response.status_code == 200


def test_patch_version_with_an_etag_made_stale_by_a_tag_is_412(client, churn):
    create_version(client)
    etag = client.get("/api/v1/models/churn/versions/1").headers["ETag"]
    client.put("/api/v1/models/churn/versions/1/tags/k", json={"value": "v"})
    response = client.patch("/api/v1/models/churn/versions/1", json={"description": "new"},
                            headers={"If-Match": etag})
    assert_error(response, 412, "PRECONDITION_FAILED")


@pytest.mark.parametrize("header", ["1", "abc", 'W/"1"', '"-1"'])
def test_patch_version_with_malformed_if_match_is_400(client, churn, header):
    create_version(client)
    response = client.patch("/api/v1/models/churn/versions/1", json={"description": "x"},
                            headers={"If-Match": header})
    assert assert_error(response, 400, "INVALID_ARGUMENT")["details"] == {"field": "If-Match"}


def test_patch_unknown_version_is_404(client, churn):
    assert_error(client.patch("/api/v1/models/churn/versions/3", json={"description": "x"}), 404, "NOT_FOUND")


def test_delete_version_answers_204_and_it_is_gone(client, churn):
    create_version(client)
    response = client.delete("/api/v1/models/churn/versions/1")
    assert response.status_code == 204 and response.get_data() == b""
    assert_error(client.get("/api/v1/models/churn/versions/1"), 404, "NOT_FOUND")


def test_delete_unknown_version_is_404(client, churn):
    assert_error(client.delete("/api/v1/models/churn/versions/1"), 404, "NOT_FOUND")


# --- version tags ---------------------------------------------------------------------------------------

def test_put_version_tag_sets_it(client, churn):
    create_version(client)
    response = client.put("/api/v1/models/churn/versions/1/tags/accuracy", json={"value": "0.93"})
    assert response.status_code == 200
    assert response.get_json()["tags"] == {"accuracy": "0.93"}
    assert response.headers["ETag"] == f'"{response.get_json()["revision"]}"'


def test_delete_version_tag_answers_204_and_removes_it(client, churn):
    create_version(client, tags={"a": "1", "b": "2"})
    assert client.delete("/api/v1/models/churn/versions/1/tags/a").status_code == 204
    assert client.get("/api/v1/models/churn/versions/1").get_json()["tags"] == {"b": "2"}


def test_delete_absent_version_tag_is_204(client, churn):
    create_version(client)
    assert client.delete("/api/v1/models/churn/versions/1/tags/absent").status_code == 204


def test_tag_on_unknown_version_is_404(client, churn):
    assert_error(client.put("/api/v1/models/churn/versions/9/tags/k", json={"value": "v"}), 404, "NOT_FOUND")


# --- listing: pagination and filters --------------------------------------------------------------------

def test_listing_a_models_versions_walks_every_page_newest_first(client, churn):
    for _ in range(8):
        create_version(client)
    pages = walk(client, "/api/v1/models/churn/versions", "versions", max_results=3)
    assert [len(p) for p in pages] == [3, 3, 2]
    assert [v["version"] for p in pages for v in p] == list(range(8, 0, -1))


def test_listing_versions_of_unknown_model_is_404(client):
    assert_error(client.get("/api/v1/models/nope/versions"), 404, "NOT_FOUND")


def test_listing_versions_of_a_model_without_versions_is_empty(client, churn):
    assert client.get("/api/v1/models/churn/versions").get_json() == {"versions": [], "next_page_token": None}


def test_listing_a_models_versions_excludes_other_models(client, churn):
    create_model(client, "other")
    create_version(client, "other")
    create_version(client)
    assert [v["model"] for v in client.get("/api/v1/models/churn/versions").get_json()["versions"]] == ["churn"]


def versions_of(client, path: str, **params) -> list[tuple[str, int]]:
    response = client.get(path, query_string=params)
    assert response.status_code == 200, response.get_data(as_text=True)
    return [(v["model"], v["version"]) for v in response.get_json()["versions"]]


def test_filter_a_models_versions_by_run_id(client, churn):
    create_version(client, run_id="r1")
    create_version(client, run_id="r2")
    create_version(client, run_id="r1")
    assert versions_of(client, "/api/v1/models/churn/versions", run_id="r1") == [("churn", 3), ("churn", 1)]


@pytest.mark.parametrize("spelling", ["Staging", "staging", "STAGING"])
def test_filter_a_models_versions_by_stage_in_any_case(client, churn, spelling):
    for _ in range(3):
        create_version(client)
    transition(client, 2, "Staging")
    assert versions_of(client, "/api/v1/models/churn/versions", stage=spelling) == [("churn", 2)]


def test_filter_a_models_versions_by_tags(client, churn):
    create_version(client, tags={"framework": "sklearn", "gpu": "no"})
    create_version(client, tags={"framework": "torch", "gpu": "yes"})
    create_version(client, tags={"framework": "sklearn", "gpu": "yes"})
    path = "/api/v1/models/churn/versions"
    assert versions_of(client, path, tag="framework=sklearn") == [("churn", 3), ("churn", 1)]
    assert versions_of(client, path, tag=["framework=sklearn", "gpu=yes"]) == [("churn", 3)]


def test_global_version_search_by_run_id_spans_models(client):
    for name in ("a", "b", "c"):
        create_model(client, name)
    create_version(client, "a", run_id="shared")
    create_version(client, "b", run_id="other")
    create_version(client, "c", run_id="shared")
    create_version(client, "a", run_id="shared")
    assert versions_of(client, "/api/v1/versions", run_id="shared") == [("a", 2), ("c", 1), ("a", 1)]


def test_global_version_search_by_model_stage_and_tag(client):
    for name in ("a", "b"):
        create_model(client, name)
        create_version(client, name, tags={"k": "v"})
        create_version(client, name)
        transition(client, 1, "Production", model=name)
    assert versions_of(client, "/api/v1/versions", model="b", stage="production", tag="k=v") == [("b", 1)]


def test_global_version_search_walks_every_page(client):
    expected = []
    for name in ("a", "b", "c"):
        create_model(client, name)
        for _ in range(3):
            expected.append((name, create_version(client, name, run_id="walk")["version"]))
    pages = walk(client, "/api/v1/versions", "versions", max_results=2, run_id="walk")
    seen = [(v["model"], v["version"]) for p in pages for v in p]
    assert len(pages) == 5
    assert seen == expected[::-1]


# --- stages ---------------------------------------------------------------------------------------------

def test_transition_moves_the_version_and_returns_it(client, churn):
    created = create_version(client)
    response = transition(client, 1, "Staging")
    assert response.status_code == 200
    body = response.get_json()
    assert body["stage"] == "Staging"
    assert body["revision"] == created["revision"] + 1
    assert response.headers["ETag"] == f'"{body["revision"]}"'


def test_transition_stage_names_are_case_insensitive_and_rendered_canonically(client, churn):
    create_version(client)
    assert transition(client, 1, "pRoDuCtIoN").get_json()["stage"] == "Production"


def test_transition_without_archiving_leaves_other_versions_in_the_stage(client, churn):
    create_version(client)
    create_version(client)
    transition(client, 1, "Production")
    transition(client, 2, "Production")
    assert client.get("/api/v1/models/churn/versions/1").get_json()["stage"] == "Production"


def test_transition_with_archive_existing_versions_archives_the_others(client, churn):
    for _ in range(3):
        create_version(client)
    transition(client, 1, "Production")
    transition(client, 2, "Staging")
    response = transition(client, 3, "Production", archive_existing_versions=True)
    assert response.status_code == 200
    stages = {v["version"]: v["stage"] for v in client.get("/api/v1/models/churn/versions").get_json()["versions"]}
    assert stages == {1: "Archived", 2: "Staging", 3: "Production"}


@pytest.mark.parametrize("stage", ["None", "Archived", "none"])
def test_archive_existing_versions_to_an_inactive_stage_is_422(client, churn, stage):
    create_version(client)
    error = assert_error(transition(client, 1, stage, archive_existing_versions=True), 422, "INVALID_TRANSITION")
    assert error["details"]["stage"] == stage.capitalize()
    assert client.get("/api/v1/models/churn/versions/1").get_json()["stage"] == "None"


def test_transition_of_unknown_version_is_404(client, churn):
    assert_error(transition(client, 4, "Staging"), 404, "NOT_FOUND")


def test_latest_versions_gives_the_highest_version_per_stage(client, churn):
    for _ in range(5):
        create_version(client)
    transition(client, 1, "Production")
    transition(client, 2, "Production")
    transition(client, 3, "Staging")
    response = client.get("/api/v1/models/churn/latest-versions")
    assert response.status_code == 200
    got = [(v["stage"], v["version"]) for v in response.get_json()["versions"]]
    assert got == [("None", 5), ("Staging", 3), ("Production", 2)]


def test_latest_versions_accepts_repeated_stage_filters(client, churn):
    for _ in range(4):
        create_version(client)
    transition(client, 1, "Production")
    transition(client, 2, "Staging")
    transition(client, 3, "Archived")
    response = client.get("/api/v1/models/churn/latest-versions?stage=production&stage=Archived")
    assert [(v["stage"], v["version"]) for v in response.get_json()["versions"]] == [
        ("Production", 1), ("Archived", 3)]


def test_latest_versions_of_unknown_model_is_404(client):
    assert_error(client.get("/api/v1/models/nope/latest-versions"), 404, "NOT_FOUND")


def test_stage_endpoint_returns_the_highest_production_version(client, churn):
    for _ in range(4):
        create_version(client)
    transition(client, 1, "Production")
    transition(client, 3, "Production")
    response = client.get("/api/v1/models/churn/stages/production")
    assert response.status_code == 200
    body = response.get_json()
    assert (body["version"], body["stage"]) == (3, "Production")
    # The serving ETag follows the model's generation (see test_serving.py for its semantics).
    assert response.headers["ETag"].endswith(f'.{body["generation"]}"')


def test_stage_endpoint_is_404_when_no_version_is_in_the_stage(client, churn):
    create_version(client)
    transition(client, 1, "Staging")
    error = assert_error(client.get("/api/v1/models/churn/stages/Production"), 404, "NOT_FOUND")
    assert error["details"] == {"model": "churn", "stage": "Production"}


def test_stage_endpoint_of_unknown_model_is_404_naming_the_model(client):
    error = assert_error(client.get("/api/v1/models/nope/stages/Production"), 404, "NOT_FOUND")
    assert error["details"] == {"model": "nope"}


# --- aliases --------------------------------------------------------------------------------------------

def test_put_alias_points_it_at_the_version(client, churn):
    create_version(client)
    response = client.put("/api/v1/models/churn/aliases/champion", json={"version": 1})
    assert response.status_code == 200
    body = response.get_json()
    assert (body["version"], body["aliases"]) == (1, ["champion"])
    assert response.headers["ETag"] == f'"{body["revision"]}"'


def test_get_alias_resolves_to_its_version(client, churn):
    create_version(client)
    create_version(client)
    client.put("/api/v1/models/churn/aliases/champion", json={"version": 1})
    response = client.get("/api/v1/models/churn/aliases/champion")
    assert response.status_code == 200
    assert response.get_json()["version"] == 1


def test_moving_an_alias_takes_it_off_the_previous_version(client, churn):
    create_version(client)
    create_version(client)
    client.put("/api/v1/models/churn/aliases/champion", json={"version": 1})
    client.put("/api/v1/models/churn/aliases/champion", json={"version": 2})
    assert client.get("/api/v1/models/churn/versions/1").get_json()["aliases"] == []
    assert client.get("/api/v1/models/churn/aliases/champion").get_json()["version"] == 2


def test_latest_alias_resolves_to_the_highest_version(client, churn):
    for _ in range(3):
        create_version(client)
    assert client.get("/api/v1/models/churn/aliases/latest").get_json()["version"] == 3


def test_delete_alias_answers_204_and_it_no_longer_resolves(client, churn):
    create_version(client)
    client.put("/api/v1/models/churn/aliases/champion", json={"version": 1})
    assert client.delete("/api/v1/models/churn/aliases/champion").status_code == 204
    error = assert_error(client.get("/api/v1/models/churn/aliases/champion"), 404, "NOT_FOUND")
    assert error["details"] == {"model": "churn", "alias": "champion"}


def test_unknown_alias_is_404(client, churn):
    assert_error(client.get("/api/v1/models/churn/aliases/ghost"), 404, "NOT_FOUND")


def test_alias_to_unknown_version_is_404(client, churn):
    assert_error(client.put("/api/v1/models/churn/aliases/champion", json={"version": 5}), 404, "NOT_FOUND")


def test_deleting_a_version_drops_its_aliases(client, churn):
    create_version(client)
    client.put("/api/v1/models/churn/aliases/champion", json={"version": 1})
    client.delete("/api/v1/models/churn/versions/1")
    assert_error(client.get("/api/v1/models/churn/aliases/champion"), 404, "NOT_FOUND")


def test_versions_of_a_model_with_spaces_and_unicode_in_its_name(client):
    name = "fraud détecteur 模型 v2"
    create_model(client, name)
    response = client.post(f"/api/v1/models/{quote(name)}/versions", json={"source": "s3://b/s"})
    assert response.status_code == 201
    assert client.get(response.headers["Location"]).get_json()["model"] == name
    assert client.post(f"/api/v1/models/{quote(name)}/versions/1/transition",
                       json={"stage": "Production"}).status_code == 200
    assert client.get(f"/api/v1/models/{quote(name)}/stages/Production").get_json()["model"] == name
