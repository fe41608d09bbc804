"""Registering a version: MLflow's source rules (registry/sources.py), applied by the use case so every API
gets them, and sources naming another version (services/lineage.py): resolved when registered, as MLflow."""
from __future__ import annotations

from dataclasses import replace

import pytest

from registry.auth import Actor
from registry.errors import InvalidArgument, NotFound
from registry.services.aliases import set_alias
from registry.services.models import create_model, delete_model
from registry.services.stages import transition_stage
from registry.services.versions import create_version, delete_version, get_version

from .support import events


@pytest.fixture
def source_model(ctx, alice):
    create_model(alice, "src")
    create_version(alice, "src", "s3://bucket/src/1", run_id="run-1")
    create_version(alice, "src", "s3://bucket/src/2", run_id="run-2")
    create_model(alice, "dst")
    return "src"


@pytest.fixture
def local_sources_allowed(app, monkeypatch):
    settings = app.config["REGISTRY_SETTINGS"]
    monkeypatch.setitem(app.config, "REGISTRY_SETTINGS", replace(settings, allow_local_sources=True))


@pytest.mark.parametrize("source, run_id", [
    ("/srv/models/churn", None), ("file:///srv/models/churn", None), ("churn/model", None),
    ("s3://bucket/a/../b", None), ("runs:/run-b/model", "run-a"), ("runs:/run-b/model", None),
])
def test_a_source_mlflow_refuses_is_refused_and_takes_no_number(source_model, alice, source, run_id):
    with pytest.raises(InvalidArgument, match="source"):
        create_version(alice, "dst", source, run_id=run_id)
    assert create_version(alice, "dst", "s3://bucket/ok").version == 1


def test_local_sources_are_accepted_when_the_operator_allows_them(source_model, alice, local_sources_allowed):
    created = create_version(alice, "dst", "/srv/models/churn")
    assert (created.source, created.download_uri) == ("/srv/models/churn", "/srv/models/churn")
    with pytest.raises(InvalidArgument):
        create_version(alice, "dst", "/srv/models/../secrets")


def test_a_copy_records_the_version_it_names_and_that_versions_storage(source_model, alice):
    copy = create_version(alice, "dst", "models:/src/1")
    assert (copy.source, copy.storage_location, copy.run_id) == ("models:/src/1", "s3://bucket/src/1", "run-1")
    assert events(model_name="dst")[-1].details["storage_location"] == "s3://bucket/src/1"


def test_a_copy_keeps_its_storage_after_its_source_model_is_deleted(source_model, alice):
    create_version(alice, "dst", "models:/src/2")
    delete_model(alice, "src")
    assert get_version(alice, "dst", 1).download_uri == "s3://bucket/src/2"


def test_a_copy_of_a_copy_points_at_the_original_storage(source_model, alice):
    create_version(alice, "dst", "models:/src/1")
    create_model(alice, "third")
    again = create_version(alice, "third", "models:/dst/1")
    assert (again.source, again.download_uri) == ("models:/dst/1", "s3://bucket/src/1")


@pytest.mark.parametrize("source, resolved", [
    ("models:/src@champion", "models:/src/1"),
    ("models:/src/production", "models:/src/2"),
    ("models:/src/latest", "models:/src/2"),
    ("models:/src@latest", "models:/src/2"),
])
def test_aliases_stages_and_latest_are_resolved_when_registered(source_model, alice, source, resolved):
    set_alias(alice, "src", "champion", 1)
    transition_stage(alice, "src", 2, "Production")
    copy = create_version(alice, "dst", source)
    assert copy.source == resolved
    assert copy.download_uri == f"s3://bucket/src/{resolved[-1]}"


@pytest.mark.parametrize("run_id, stored", [(None, "run-1"), ("run-1", "run-1")])
def test_a_copy_inherits_the_run_or_must_name_the_same(source_model, alice, run_id, stored):
    assert create_version(alice, "dst", "models:/src/1", run_id=run_id).run_id == stored


@pytest.mark.parametrize("run_id, model_id", [("run-2", None), ("", None), (None, "m-1")])
def test_a_copy_claiming_another_run_is_refused(source_model, alice, run_id, model_id):
    with pytest.raises(InvalidArgument, match="must match the referenced model version"):
        create_version(alice, "dst", "models:/src/1", run_id=run_id, model_id=model_id)


@pytest.mark.parametrize("source, missing", [
    ("models:/ghost/1", "name=ghost"), ("models:/src/9", "version=9"), ("models:/src@nobody", "alias nobody"),
    ("models:/src/Staging", "stage 'Staging'"),
])
def test_a_copy_of_nothing_is_not_found(source_model, alice, source, missing):
    with pytest.raises(NotFound, match=missing):
        create_version(alice, "dst", source)


def test_a_copy_needs_read_on_the_version_it_names(source_model, alice):
    """Else a copy would tell anyone with EDIT somewhere where an unreadable model's artifacts are."""
    from registry.services.identities import create_user
    from registry.services.permissions import set_model_permissions, set_registry_permissions

    create_user(alice, "mallory")
    set_registry_permissions(alice, [], merge=False)  # nobody reads by default any more
    set_model_permissions(alice, "dst", [("mallory", "EDIT")], merge=True)
    with pytest.raises(NotFound, match="name=src"):
        create_version(Actor("mallory"), "dst", "models:/src/1")
    set_model_permissions(alice, "src", [("mallory", "READ")], merge=True)
    assert create_version(Actor("mallory"), "dst", "models:/src/1").download_uri == "s3://bucket/src/1"


def test_a_prompt_is_not_a_model_source(source_model, alice):
    create_model(alice, "qa", tags={"mlflow.prompt.is_prompt": "true"})
    create_version(alice, "qa", "dummy-source", tags={"mlflow.prompt.is_prompt": "true"})
    with pytest.raises(InvalidArgument, match="Prompt versions cannot be used"):
        create_version(alice, "dst", "models:/qa/1")


def test_a_deleted_source_version_leaves_its_copy_working(source_model, alice):
    create_version(alice, "dst", "models:/src/1")
    delete_version(alice, "src", 1)
    assert get_version(alice, "dst", 1).download_uri == "s3://bucket/src/1"
