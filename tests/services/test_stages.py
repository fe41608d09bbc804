"""Stage transitions, archiving the target stage's occupants, and stage lookups."""
from __future__ import annotations

import pytest

from registry.errors import InvalidArgument, InvalidTransition, NotFound
from registry.services.models import create_model
from registry.services import serving
from registry.services.stages import latest_versions, transition_stage
from registry.services.versions import VersionQuery, create_version, get_version, search_versions

from .support import events_after, last_event_id, summary


@pytest.fixture
def model(ctx, alice):
    create_model(alice, "churn")
    return "churn"


def versions(alice, count: int) -> None:
    for i in range(count):
        create_version(alice, "churn", f"s3://bucket/{i + 1}", run_id=f"run-{i + 1}")


def stages(actor) -> dict[int, str]:
    return {v.version: v.stage for v in search_versions(actor, VersionQuery(model_name="churn")).items}


def test_transition_moves_version_and_records_from_and_to(model, alice, bob):
    versions(alice, 1)
    marker = last_event_id()

    moved = transition_stage(bob, "churn", 1, "Staging")

    assert moved.stage == "Staging" == get_version(alice, "churn", 1).stage
    assert [summary(e) for e in events_after(marker)] == [
        ("bob", "version.transitioned", "churn", 1, "run-1", "None", "Staging"),
    ]


@pytest.mark.parametrize("spelling", ["production", "PRODUCTION", "pRoDuCtIoN"])
def test_stage_names_are_case_insensitive_and_stored_canonically(model, alice, spelling):
    versions(alice, 1)

    assert transition_stage(alice, "churn", 1, spelling).stage == "Production"
    assert get_version(alice, "churn", 1).stage == "Production"


def test_a_padded_stage_is_refused_as_mlflow_refuses_it(model, alice):
    versions(alice, 1)

    with pytest.raises(InvalidArgument, match="Invalid Model Version stage:  Production ."):
        transition_stage(alice, "churn", 1, " Production ")
    assert get_version(alice, "churn", 1).stage == "None"


def test_transition_to_unknown_stage_raises_invalid_argument(model, alice):
    versions(alice, 1)

    with pytest.raises(InvalidArgument):
        transition_stage(alice, "churn", 1, "Canary")


def test_archive_existing_archives_other_versions_in_target_stage_only(model, alice):
    versions(alice, 5)
    transition_stage(alice, "churn", 1, "Production")
    transition_stage(alice, "churn", 2, "Production")
    transition_stage(alice, "churn", 3, "Staging")

    transition_stage(alice, "churn", 4, "Production", archive_existing_versions=True)

    assert stages(alice) == {1: "Archived", 2: "Archived", 3: "Staging", 4: "Production", 5: "None"}


def test_archive_existing_records_each_archival_as_its_own_event(model, alice, bob):
    versions(alice, 4)
    transition_stage(alice, "churn", 1, "Staging")
    transition_stage(alice, "churn", 2, "Staging")
    transition_stage(alice, "churn", 3, "Production")
    marker = last_event_id()

    transition_stage(bob, "churn", 4, "Staging", archive_existing_versions=True)

    new = events_after(marker)
    assert [summary(e) for e in new] == [
        ("bob", "version.transitioned", "churn", 1, "run-1", "Staging", "Archived"),
        ("bob", "version.transitioned", "churn", 2, "run-2", "Staging", "Archived"),
        ("bob", "version.transitioned", "churn", 4, "run-4", "None", "Staging"),
    ]
    # Each records what every stage serves afterwards (for the serving history, services/history.py).
    serving = {"None": None, "Staging": 4, "Production": 3, "Archived": 2}
    assert new[-1].details == {"archive_existing_versions": True, "archived_versions": [1, 2], "serving": serving}
    assert [e.details["serving"] for e in new] == [serving] * 3


@pytest.mark.parametrize("target", ["None", "Archived", "archived"])
def test_archive_existing_into_inactive_stage_is_refused_and_changes_nothing(model, alice, target):
    versions(alice, 3)
    transition_stage(alice, "churn", 1, "Production")
    transition_stage(alice, "churn", 2, "Staging")
    before = stages(alice)
    marker = last_event_id()

    with pytest.raises(InvalidTransition):
        transition_stage(alice, "churn", 2, target, archive_existing_versions=True)

    assert stages(alice) == before
    assert events_after(marker) == []


def test_same_stage_transition_without_archiving_records_nothing(model, alice):
    versions(alice, 1)
    moved = transition_stage(alice, "churn", 1, "Staging")
    marker = last_event_id()

    again = transition_stage(alice, "churn", 1, "staging")

    assert again.stage == "Staging" and again.revision == moved.revision
    assert events_after(marker) == []


def test_same_stage_transition_with_archiving_still_archives_the_others(model, alice):
    versions(alice, 2)
    transition_stage(alice, "churn", 1, "Production")
    transition_stage(alice, "churn", 2, "Production")

    transition_stage(alice, "churn", 2, "Production", archive_existing_versions=True)

    assert stages(alice) == {1: "Archived", 2: "Production"}


def test_any_stage_may_move_back(model, alice):
    versions(alice, 1)
    transition_stage(alice, "churn", 1, "Archived")

    assert transition_stage(alice, "churn", 1, "Production").stage == "Production"


def test_transition_of_missing_version_raises_not_found(model, alice):
    with pytest.raises(NotFound, match="version=9"):
        transition_stage(alice, "churn", 9, "Staging")


@pytest.fixture
def spread(model, alice):
    """v1 Production, v2 Staging, v3 Production, v4 Staging, v5 None, v6 Archived."""
    versions(alice, 6)
    for number, stage in [(1, "Production"), (2, "Staging"), (3, "Production"), (4, "Staging"), (6, "Archived")]:
        transition_stage(alice, "churn", number, stage)


def test_latest_versions_gives_highest_version_of_every_stage_by_default(spread, alice):
    assert [(v.stage, v.version) for v in latest_versions(alice, "churn").versions] == [
        ("None", 5), ("Staging", 4), ("Production", 3), ("Archived", 6),
    ]


@pytest.mark.parametrize(
    ("wanted", "expected"),
    [
        (["Production"], [("Production", 3)]),
        (["staging", "production"], [("Staging", 4), ("Production", 3)]),
        (["Production", "Staging"], [("Production", 3), ("Staging", 4)]),
    ],
)
def test_latest_versions_filtered_by_stages(spread, alice, wanted, expected):
    assert [(v.stage, v.version) for v in latest_versions(alice, "churn", wanted).versions] == expected


def test_latest_versions_omits_empty_stages(model, alice):
    versions(alice, 2)
    transition_stage(alice, "churn", 1, "Staging")

    assert [(v.stage, v.version) for v in latest_versions(alice, "churn").versions] == [("None", 2), ("Staging", 1)]


def test_latest_versions_of_missing_model_raises_not_found(ctx, alice):
    with pytest.raises(NotFound):
        latest_versions(alice, "ghost")


@pytest.mark.parametrize(("stage", "expected"), [("Production", 3), ("staging", 4), ("None", 5), ("Archived", 6)])
def test_current_version_is_highest_version_in_stage(spread, alice, stage, expected):
    assert serving.resolve(alice, "churn", stage=stage).version.version == expected


def test_current_version_of_empty_stage_is_none_and_explained(model, alice):
    versions(alice, 1)

    answer = serving.resolve(alice, "churn", stage="production")
    assert answer.version is None
    error = serving.not_found(answer, serving.answer_key("churn", stage="production"))
    assert "no version in stage Production" in error.message


def test_current_version_of_missing_model_raises_model_not_found(ctx, alice):
    with pytest.raises(NotFound, match="Registered Model with name=ghost"):
        serving.resolve(alice, "ghost", stage="Production")
