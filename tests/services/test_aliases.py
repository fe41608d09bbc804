"""Aliases: set, move, resolve, reserved names, delete."""
from __future__ import annotations

import pytest

from registry.errors import InvalidArgument, NotFound
from registry.services.aliases import delete_alias, get_version_by_alias, set_alias
from registry.services.models import create_model
from registry.services.versions import create_version, delete_version, get_version

from .support import events, events_after, last_event_id, summary


@pytest.fixture
def model(ctx, alice):
    create_model(alice, "churn")
    for i in range(3):
        create_version(alice, "churn", f"s3://bucket/{i + 1}", run_id=f"run-{i + 1}")
    return "churn"


def test_set_alias_points_it_at_the_version(model, alice):
    result = set_alias(alice, "churn", "champion", 2)

    assert result.version == 2 and result.aliases == ("champion",)
    assert get_version_by_alias(alice, "churn", "champion").version == 2
    assert get_version(alice, "churn", 2).aliases == ("champion",)


def test_set_alias_records_an_event_without_previous_version(model, alice):
    marker = last_event_id()

    set_alias(alice, "churn", "champion", "2")

    new = events_after(marker)
    assert [summary(e) for e in new] == [("alice", "alias.set", "churn", 2, "run-2", None, None)]
    assert new[0].details == {"alias": "champion", "previous_version": None}


def test_moving_alias_repoints_it_and_leaves_old_version(model, alice):
    set_alias(alice, "churn", "champion", 1)

    set_alias(alice, "churn", "champion", 3)

    assert get_version_by_alias(alice, "churn", "champion").version == 3
    assert get_version(alice, "churn", 1).aliases == ()


def test_moving_alias_records_previous_version(model, alice, bob):
    set_alias(alice, "churn", "champion", 1)
    marker = last_event_id()

    set_alias(bob, "churn", "champion", 3)

    new = events_after(marker)
    assert [summary(e) for e in new] == [("bob", "alias.set", "churn", 3, "run-3", None, None)]
    assert new[0].details == {"alias": "champion", "previous_version": 1}


def test_setting_alias_to_its_current_version_records_nothing(model, alice):
    set_alias(alice, "churn", "champion", 1)
    marker = last_event_id()

    set_alias(alice, "churn", "champion", 1)

    assert events_after(marker) == []


@pytest.mark.parametrize("alias", ["LATEST", "latest", "Latest"])
def test_latest_resolves_to_highest_version_case_insensitively(model, alice, alias):
    set_alias(alice, "churn", "champion", 1)

    assert get_version_by_alias(alice, "churn", alias).version == 3


def test_latest_follows_deletion_of_the_highest_version(model, alice):
    delete_version(alice, "churn", 3)

    assert get_version_by_alias(alice, "churn", "latest").version == 2


def test_latest_of_model_without_versions_raises_not_found(ctx, alice):
    create_model(alice, "empty")

    with pytest.raises(NotFound):
        get_version_by_alias(alice, "empty", "latest")


@pytest.mark.parametrize("alias", ["latest", "LaTeSt", "v1", "V7", "v12"])
def test_reserved_alias_names_are_rejected_on_write(model, alice, alias):
    with pytest.raises(InvalidArgument, match="reserved"):
        set_alias(alice, "churn", alias, 1)
    assert events(action="alias.set") == []


@pytest.mark.parametrize("alias", ["", "with space", "dot.ted", "slash/ed"])
def test_malformed_alias_names_are_rejected(model, alice, alias):
    with pytest.raises(InvalidArgument):
        set_alias(alice, "churn", alias, 1)


def test_alias_names_like_reserved_ones_are_allowed(model, alice):
    for alias in ("latest-good", "v1x", "version1"):
        set_alias(alice, "churn", alias, 1)

    assert get_version(alice, "churn", 1).aliases == ("latest-good", "v1x", "version1")


def test_missing_alias_raises_not_found(model, alice):
    with pytest.raises(NotFound, match="alias nobody not found"):
        get_version_by_alias(alice, "churn", "nobody")


def test_delete_alias_removes_it_and_records_event(model, alice, bob):
    set_alias(alice, "churn", "champion", 2)
    marker = last_event_id()

    delete_alias(bob, "churn", "champion")

    with pytest.raises(NotFound):
        get_version_by_alias(alice, "churn", "champion")
    assert [summary(e) for e in events_after(marker)] == [("bob", "alias.deleted", "churn", 2, "run-2", None, None)]


def test_delete_alias_is_idempotent_and_second_delete_records_nothing(model, alice):
    set_alias(alice, "churn", "champion", 2)
    delete_alias(alice, "churn", "champion")
    marker = last_event_id()

    delete_alias(alice, "churn", "champion")
    delete_alias(alice, "churn", "never-set")

    assert events_after(marker) == []


def test_alias_to_missing_version_raises_not_found(model, alice):
    with pytest.raises(NotFound, match="version=9"):
        set_alias(alice, "churn", "champion", 9)
    with pytest.raises(NotFound):
        get_version_by_alias(alice, "churn", "champion")


def test_alias_on_missing_model_raises_not_found(ctx, alice):
    with pytest.raises(NotFound, match="name=ghost"):
        set_alias(alice, "ghost", "champion", 1)
