"""``updated_at`` (MLflow's ``last_updated_timestamp``) moves exactly where MLflow's SqlAlchemyStore moves it.

The model's: creating a version, a transition (direct or an approved request), deleting a version, a
description change, a rename. A version's: a transition (the versions it archives too), a description change,
a rename of its model. Tags and aliases move no timestamp (MLflow's rule), only the revision (the native ETag),
since the representation did change."""
from __future__ import annotations

import pytest

from registry.auth import Actor
from registry.services import reviews
from registry.services.aliases import delete_alias, set_alias
from registry.services.models import create_model, delete_model_tag, get_model, set_model_tag, update_model
from registry.services.stages import transition_stage
from registry.services.versions import (
    create_version,
    delete_version,
    delete_version_tag,
    get_version,
    set_version_tag,
    update_version,
)


@pytest.fixture
def model(ctx, alice):
    create_model(alice, "churn")
    create_version(alice, "churn", "s3://b/1")
    create_version(alice, "churn", "s3://b/2")
    return "churn"


def stamps(actor, name: str = "churn"):
    return get_model(actor, name).updated_at, [get_version(actor, name, v).updated_at for v in (1, 2)]


def test_creating_a_version_moves_the_models(model, alice):
    before, _ = stamps(alice)
    created = create_version(alice, "churn", "s3://b/3")
    assert get_model(alice, "churn").updated_at == created.updated_at > before


def test_a_transition_moves_the_model_the_version_and_the_versions_it_archives(model, alice):
    transition_stage(alice, "churn", 1, "Production")
    model_before, (v1_before, v2_before) = stamps(alice)

    moved = transition_stage(alice, "churn", 2, "Production", archive_existing_versions=True)

    model_after, (v1_after, v2_after) = stamps(alice)
    assert model_after == v1_after == v2_after == moved.updated_at
    assert model_after > model_before and v1_after > v1_before and v2_after > v2_before


def test_an_approved_request_moves_the_models(model, alice):
    request = reviews.create_request(Actor("rita"), "churn", 1, "Staging")
    before, _ = stamps(alice)
    reviews.approve(alice, request.id)
    after, (v1, _) = stamps(alice)
    assert after == v1 > before


def test_deleting_a_version_moves_the_models(model, alice):
    before, _ = stamps(alice)
    delete_version(alice, "churn", 2)
    assert get_model(alice, "churn").updated_at > before


def test_a_description_change_moves_the_models_but_not_its_versions(model, alice):
    before, versions_before = stamps(alice)
    update_model(alice, "churn", description="new")
    after, versions_after = stamps(alice)
    assert after > before and versions_after == versions_before


def test_a_version_description_change_moves_the_version_only(model, alice):
    before, (v1_before, v2_before) = stamps(alice)
    update_version(alice, "churn", 1, description="new")
    after, (v1_after, v2_after) = stamps(alice)
    assert (after, v2_after) == (before, v2_before) and v1_after > v1_before


def test_a_rename_moves_the_model_and_every_version(model, alice):
    before, versions_before = stamps(alice)
    renamed = update_model(alice, "churn", new_name="churn-2")
    after, versions_after = stamps(alice, "churn-2")
    assert after == renamed.updated_at > before
    assert versions_after == [after, after] and all(a > b for a, b in zip(versions_after, versions_before))
    assert [get_version(alice, "churn-2", v).revision for v in (1, 2)] == [2, 2]  # their name changed


def test_tags_and_aliases_move_no_timestamp_but_the_revision(model, alice):
    before, versions_before = stamps(alice)
    model_revision, version_revision = get_model(alice, "churn").revision, get_version(alice, "churn", 1).revision

    set_model_tag(alice, "churn", "team", "growth")
    delete_model_tag(alice, "churn", "team")
    set_version_tag(alice, "churn", 1, "validated", "yes")
    delete_version_tag(alice, "churn", 1, "validated")
    set_alias(alice, "churn", "champion", 1)
    delete_alias(alice, "churn", "champion")

    assert stamps(alice) == (before, versions_before)
    assert get_model(alice, "churn").revision == model_revision + 2
    assert get_version(alice, "churn", 1).revision == version_revision + 4
