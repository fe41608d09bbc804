"""``databricks/registered-models/get`` (the model's id and the caller's level) and
``databricks/model-versions/transition-stage`` (direct transitions that obey approval policies)."""
from __future__ import annotations

import pytest

from .conftest import API, assert_error, ok

GET = API + "/databricks/registered-models/get"
TRANSITION = API + "/databricks/model-versions/transition-stage"


def transition(team, who: str, version: str = "1", stage: str = "Staging", archive: bool = False, **fields):
    body = {"name": "fraud", "version": version, "stage": stage, "archive_existing_versions": archive, **fields}
    return team.as_(who).post(TRANSITION, body)


@pytest.mark.parametrize("who, level", [
    ("reader", "CAN_READ"),
    ("writer", "CAN_EDIT"),
    ("stager", "CAN_MANAGE_STAGING_VERSIONS"),
    ("prod", "CAN_MANAGE_PRODUCTION_VERSIONS"),
    ("owner", "CAN_MANAGE"),  # the creator manages the model
    ("admin", "CAN_MANAGE"),
])
def test_get_answers_the_callers_permission_level(team, who, level):
    model = ok(team.as_(who).get(GET, {"name": "fraud"}))["registered_model_databricks"]

    assert model["permission_level"] == level


def test_get_answers_id_name_timestamps_and_latest_version_per_stage(team):
    ok(transition(team, "stager", version="1", stage="Staging"))

    model = ok(team.as_("reader").get(GET, {"name": "fraud"}))["registered_model_databricks"]

    assert model["name"] == "fraud" and model["id"].isdigit()
    assert isinstance(model["creation_timestamp"], int) and isinstance(model["last_updated_timestamp"], int)
    assert sorted((v["version"], v["current_stage"]) for v in model["latest_versions"]) == [
        ("1", "Staging"), ("2", "None")]


@pytest.mark.parametrize("who", ["reader", "owner", "admin"])
def test_get_names_the_models_creator_as_user_id_to_every_reader(team, who):
    """Databricks: "the username of the user that created the object"."""
    model = ok(team.as_(who).get(GET, {"name": "fraud"}))["registered_model_databricks"]
    assert model["user_id"] == "owner"


def test_get_of_unknown_model_is_resource_does_not_exist(team):
    assert_error(team.as_("admin").get(GET, {"name": "nope"}), 404, "RESOURCE_DOES_NOT_EXIST")


def test_get_without_name_is_invalid(team):
    assert_error(team.as_("admin").get(GET), 400, "INVALID_PARAMETER_VALUE")


def test_transition_answers_both_version_shapes(team):
    ok(team.request("reader", stage="Production"))

    body = ok(transition(team, "stager", stage="Staging", comment="to staging"))

    databricks, mlflow = body["model_version_databricks"], body["model_version"]
    assert databricks["current_stage"] == mlflow["current_stage"] == "Staging"
    assert databricks["version"] == mlflow["version"] == "1"
    assert databricks["permission_level"] == "CAN_MANAGE_STAGING_VERSIONS"
    # The request was made from None; the version has left None, so it is no longer open.
    assert "open_requests" not in databricks


def test_transition_lists_open_requests_still_pending(team):
    ok(transition(team, "stager", stage="Staging"))
    ok(team.request("reader", stage="Production"))

    body = ok(transition(team, "stager", stage="Staging", comment="again"))

    assert [(r["activity_type"], r["user_id"], r["to_stage"])
            for r in body["model_version_databricks"]["open_requests"]] == [
        ("REQUESTED_TRANSITION", "reader", "Production")]


def test_transition_archives_existing_versions_when_asked(team):
    ok(transition(team, "prod", version="1", stage="Production"))

    ok(transition(team, "prod", version="2", stage="Production", archive=True))

    assert (team.stage_of("1"), team.stage_of("2")) == ("Archived", "Production")


@pytest.mark.parametrize("who, stage", [("reader", "Staging"), ("writer", "Staging"), ("stager", "Production")])
def test_transition_beyond_the_callers_level_says_a_request_is_needed(team, who, stage):
    message = assert_error(transition(team, who, stage=stage), 403, "PERMISSION_DENIED")

    assert "transition request" in message
    assert team.stage_of("1") == "None"


def test_transition_refused_by_an_approval_policy_says_a_request_is_needed(team):
    team.require_approvals(1, "Production")

    message = assert_error(transition(team, "prod", stage="Production"), 403, "PERMISSION_DENIED")

    assert "transition request" in message
    assert team.stage_of("1") == "None"


def test_transition_to_an_unknown_stage_is_invalid(team):
    assert_error(transition(team, "prod", stage="Canary"), 400, "INVALID_PARAMETER_VALUE")
