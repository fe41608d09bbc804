"""Model versions: numbering, fields, search, pagination, update, delete, tags."""
from __future__ import annotations

import pytest

from registry.errors import InvalidArgument, NotFound, PreconditionFailed
from registry.orm import ModelVersionTag
from registry.services.aliases import set_alias
from registry.services.models import create_model, delete_model, get_model
from registry.services.stages import transition_stage
from registry.services.versions import (
    VersionQuery,
    create_version,
    delete_version,
    delete_version_tag,
    get_version,
    search_versions,
    set_version_tag,
    update_version,
)

from .support import count_rows, events, events_after, last_event_id, summary, walk


@pytest.fixture
def model(ctx, alice):
    return create_model(alice, "churn")


def found(actor, query: VersionQuery, page_size: int = 1000) -> list[tuple[str, int]]:
    items = walk(lambda size, token: search_versions(actor, query, size, token), page_size)
    return [(v.model_name, v.version) for v in items]


def test_versions_are_numbered_one_two_three(model, alice):
    numbers = [create_version(alice, "churn", f"s3://bucket/{i}").version for i in range(3)]

    assert numbers == [1, 2, 3]
    assert get_model(alice, "churn").last_version == 3


def test_numbering_is_per_model(model, alice):
    create_model(alice, "other")
    create_version(alice, "churn", "s3://bucket/a")
    create_version(alice, "churn", "s3://bucket/b")

    assert create_version(alice, "other", "s3://bucket/c").version == 1


def test_number_of_deleted_highest_version_is_never_reused(model, alice):
    for i in range(3):
        create_version(alice, "churn", f"s3://bucket/{i}")
    delete_version(alice, "churn", 3)

    assert create_version(alice, "churn", "s3://bucket/again").version == 4


def test_create_version_on_missing_model_raises_not_found(ctx, alice):
    with pytest.raises(NotFound, match="name=ghost"):
        create_version(alice, "ghost", "s3://bucket/x")


def test_create_version_stores_every_field(model, alice):
    created = create_version(
        alice, "churn", "s3://bucket/model", run_id="run-1", run_link="http://mlflow/run-1",
        description="first cut", tags={"framework": "sklearn", "data": "2024-01"},
    )

    fetched = get_version(alice, "churn", 1)
    assert fetched == created
    assert (fetched.source, fetched.run_id, fetched.run_link, fetched.description) == (
        "s3://bucket/model", "run-1", "http://mlflow/run-1", "first cut")
    assert fetched.tags == {"data": "2024-01", "framework": "sklearn"}
    assert (fetched.stage, fetched.status, fetched.created_by, fetched.aliases) == ("None", "READY", "alice", ())


@pytest.fixture
def populated(ctx, alice):
    """churn v1..v3 and fraud v1..v2, with runs, stages and tags spread between them."""
    create_model(alice, "churn")
    create_model(alice, "fraud")
    create_version(alice, "churn", "s3://bucket/c1", run_id="run-a", tags={"data": "jan"})
    create_version(alice, "fraud", "s3://bucket/f1", run_id="run-b", tags={"data": "jan", "gpu": "yes"})
    create_version(alice, "churn", "s3://bucket/c2", run_id="run-b", tags={"data": "feb", "gpu": "yes"})
    create_version(alice, "churn", "s3://bucket/c3", tags={"data": "jan", "gpu": "yes"})
    create_version(alice, "fraud", "s3://bucket/f2", run_id="run-a")
    transition_stage(alice, "churn", 2, "Production")
    transition_stage(alice, "fraud", 2, "Production")
    transition_stage(alice, "churn", 3, "Staging")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (VersionQuery(model_name="churn"), [("churn", 3), ("churn", 2), ("churn", 1)]),
        (VersionQuery(run_id="run-b"), [("churn", 2), ("fraud", 1)]),
        (VersionQuery(stage="Production"), [("fraud", 2), ("churn", 2)]),
        (VersionQuery(stage="staging"), [("churn", 3)]),
        (VersionQuery(tags=(("data", "jan"),)), [("churn", 3), ("fraud", 1), ("churn", 1)]),
        (VersionQuery(tags=(("data", "jan"), ("gpu", "yes"))), [("churn", 3), ("fraud", 1)]),
        (VersionQuery(model_name="churn", run_id="run-a"), [("churn", 1)]),
        (VersionQuery(model_name="fraud", stage="Staging"), []),
    ],
)
def test_search_versions_filters(populated, alice, query, expected):
    assert found(alice, query) == expected


def test_search_versions_rejects_unknown_stage(populated, alice):
    with pytest.raises(InvalidArgument):
        search_versions(alice, VersionQuery(stage="Canary"))


@pytest.mark.parametrize("query", [VersionQuery(), VersionQuery(model_name="churn"), VersionQuery(tags=(("k", "v"),))])
def test_version_pagination_walks_every_version_exactly_once(ctx, alice, query):
    for name in ("churn", "fraud"):
        create_model(alice, name)
    for i in range(10):
        create_version(alice, "churn" if i % 3 else "fraud", f"s3://bucket/{i}", tags={"k": "v"})

    walked = found(alice, query, page_size=3)

    assert len(walked) == len(set(walked)) == len(found(alice, query))
    assert walked == found(alice, query)


def test_version_page_token_reused_with_different_filters_is_rejected(populated, alice):
    token = search_versions(alice, VersionQuery(model_name="churn"), max_results=1).next_page_token
    assert token is not None

    with pytest.raises(InvalidArgument, match="different query"):
        search_versions(alice, VersionQuery(model_name="fraud"), max_results=1, page_token=token)


def test_get_missing_version_of_existing_model_names_the_version(model, alice):
    with pytest.raises(NotFound) as raised:
        get_version(alice, "churn", 7)
    assert raised.value.message == "Model Version (name=churn, version=7) not found"


def test_get_version_of_missing_model_names_the_model(ctx, alice):
    with pytest.raises(NotFound) as raised:
        get_version(alice, "ghost", 1)
    assert raised.value.message == "Registered Model with name=ghost not found"


def test_update_version_description(model, alice, bob):
    created = create_version(alice, "churn", "s3://bucket/x", description="old")

    updated = update_version(bob, "churn", 1, description="new")

    assert updated.description == "new" == get_version(alice, "churn", 1).description
    assert updated.revision == created.revision + 1


def test_update_version_with_matching_revision_succeeds(model, alice):
    created = create_version(alice, "churn", "s3://bucket/x")

    assert update_version(alice, "churn", 1, description="new", expected_revision=created.revision).description == "new"


def test_update_version_with_stale_revision_raises_precondition_failed(model, alice, bob):
    created = create_version(alice, "churn", "s3://bucket/x", description="v0")
    update_version(bob, "churn", 1, description="v1")

    with pytest.raises(PreconditionFailed):
        update_version(alice, "churn", 1, description="v2", expected_revision=created.revision)
    assert get_version(alice, "churn", 1).description == "v1"


def test_delete_version_removes_it_and_its_aliases(model, alice):
    create_version(alice, "churn", "s3://bucket/1")
    create_version(alice, "churn", "s3://bucket/2")
    set_alias(alice, "churn", "champion", 2)
    set_alias(alice, "churn", "backup", 2)
    set_alias(alice, "churn", "old", 1)

    delete_version(alice, "churn", 2)

    with pytest.raises(NotFound):
        get_version(alice, "churn", 2)
    assert get_version(alice, "churn", 1).aliases == ("old",)


def test_delete_version_records_alias_deleted_then_version_deleted(model, alice, bob):
    create_version(alice, "churn", "s3://bucket/1", run_id="r1")
    transition_stage(alice, "churn", 1, "Staging")
    set_alias(alice, "churn", "champion", 1)
    set_alias(alice, "churn", "backup", 1)
    marker = last_event_id()

    delete_version(bob, "churn", 1)

    new = events_after(marker)
    assert [summary(e) for e in new] == [
        ("bob", "alias.deleted", "churn", 1, "r1", None, None),
        ("bob", "alias.deleted", "churn", 1, "r1", None, None),
        ("bob", "version.deleted", "churn", 1, "r1", "Staging", None),
    ]
    assert sorted(e.details["alias"] for e in new[:2]) == ["backup", "champion"]


def test_delete_version_removes_its_tags(model, alice):
    create_version(alice, "churn", "s3://bucket/1", tags={"a": "1", "b": "2"})

    delete_version(alice, "churn", 1)

    assert count_rows(ModelVersionTag) == 0


def test_delete_missing_version_raises_not_found(model, alice):
    with pytest.raises(NotFound):
        delete_version(alice, "churn", 1)


def test_version_tag_set_overwrite_delete(model, alice):
    create_version(alice, "churn", "s3://bucket/1")

    assert set_version_tag(alice, "churn", 1, "k", "v1").tags == {"k": "v1"}
    assert set_version_tag(alice, "churn", 1, "k", "v2").tags == {"k": "v2"}
    delete_version_tag(alice, "churn", 1, "k")

    assert get_version(alice, "churn", 1).tags == {}
    assert [(e.action, e.details) for e in events(model_name="churn", version=1)][1:] == [
        ("version.tag_set", {"key": "k", "value": "v1", "previous": None}),
        ("version.tag_set", {"key": "k", "value": "v2", "previous": "v1"}),
        ("version.tag_deleted", {"key": "k", "previous": "v2"}),
    ]


def test_delete_absent_version_tag_is_a_no_op_without_event(model, alice):
    created = create_version(alice, "churn", "s3://bucket/1", tags={"k": "v"})
    marker = last_event_id()

    delete_version_tag(alice, "churn", 1, "missing")

    assert events_after(marker) == []
    assert get_version(alice, "churn", 1) == created


def test_versions_of_deleted_model_are_gone(model, alice):
    create_version(alice, "churn", "s3://bucket/1")

    delete_model(alice, "churn")

    with pytest.raises(NotFound, match="Registered Model"):
        get_version(alice, "churn", 1)
