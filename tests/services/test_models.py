"""Registered models: create, read, search (filters, orderings, cursors), update, rename, delete, tags."""
from __future__ import annotations

import pytest
from sqlalchemy import text

from registry.errors import AlreadyExists, InvalidArgument, NotFound, PreconditionFailed
from registry.orm import ModelAlias, ModelVersion, ModelVersionTag, RegisteredModelTag
from registry.services.aliases import set_alias
from registry.services.models import (
    ModelQuery,
    create_model,
    delete_model,
    delete_model_tag,
    get_model,
    search_models,
    set_model_tag,
    update_model,
)
from registry.services.stages import transition_stage
from registry.services.versions import (
    VersionQuery,
    create_version,
    get_version,
    search_versions,
    set_version_tag,
)

from .support import count_rows, events, events_after, last_event_id, walk

ORDERINGS = [(column, descending) for column in ("name", "created_at", "updated_at") for descending in (False, True)]


def names_of(actor, query: ModelQuery, page_size: int = 1000) -> list[str]:
    return [m.name for m in walk(lambda size, token: search_models(actor, query, size, token), page_size)]


def test_create_model_stores_description_and_tags(ctx, alice):
    created = create_model(alice, "churn", description="predicts churn", tags={"team": "growth", "tier": "1"})

    fetched = get_model(alice, "churn")
    assert fetched == created
    assert (fetched.name, fetched.description) == ("churn", "predicts churn")
    assert fetched.tags == {"team": "growth", "tier": "1"}
    assert fetched.last_version == 0


def test_create_model_with_taken_name_raises_already_exists(ctx, alice, bob):
    create_model(alice, "churn")

    with pytest.raises(AlreadyExists):
        create_model(bob, "churn", description="second")
    assert get_model(alice, "churn").description == ""


def test_get_missing_model_raises_not_found(ctx, alice):
    with pytest.raises(NotFound, match="name=ghost"):
        get_model(alice, "ghost")


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("a_", ["a_b"]),  # '_' is literal, not "any one character"
        ("a%", ["a%c"]),  # '%' is literal, not "anything"
        ("a\\", ["a\\d"]),  # the escape character itself is literal too
        ("ab", ["abc"]),
        ("a", ["a%c", "a\\d", "a_b", "abc", "axb"]),
    ],
)
def test_search_by_name_prefix_treats_like_wildcards_literally(ctx, alice, prefix, expected):
    for name in ("a_b", "axb", "a%c", "abc", "a\\d", "zab"):
        create_model(alice, name)

    assert sorted(names_of(alice, ModelQuery(name_prefix=prefix))) == sorted(expected)


@pytest.mark.parametrize(
    ("fragment", "expected"),
    [("_", ["x_y"]), ("%", ["p%q"]), ("ab", ["abc", "cab"])],
)
def test_search_by_name_contains_matches_literal_substring(ctx, alice, fragment, expected):
    for name in ("abc", "cab", "x_y", "xzy", "p%q", "pzq"):
        create_model(alice, name)

    assert sorted(names_of(alice, ModelQuery(name_contains=fragment))) == sorted(expected)


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ((("team", "x"),), ["a", "b"]),
        ((("team", "x"), ("env", "prod")), ["a"]),  # several filters combine with AND
        ((("team", "y"), ("env", "dev")), []),
        ((("env", "prod"),), ["a", "c"]),
    ],
)
def test_search_by_tags_requires_every_filter_to_match(ctx, alice, filters, expected):
    create_model(alice, "a", tags={"team": "x", "env": "prod"})
    create_model(alice, "b", tags={"team": "x", "env": "dev"})
    create_model(alice, "c", tags={"team": "y", "env": "prod"})
    create_model(alice, "d")

    assert sorted(names_of(alice, ModelQuery(tags=filters))) == expected


@pytest.mark.parametrize(("order_by", "descending"), ORDERINGS)
def test_search_orders_by_requested_column_and_direction(ctx, alice, order_by, descending):
    # Creation order, name order and update order all differ, so each ordering gives a different answer.
    for name in ("delta", "alpha", "charlie", "bravo"):
        create_model(alice, name)
    for name in ("charlie", "delta", "alpha", "bravo"):
        set_model_tag(alice, name, "touched", "yes")
    records = [get_model(alice, n) for n in ("alpha", "bravo", "charlie", "delta")]
    expected = [r.name for r in sorted(records, key=lambda r: (getattr(r, order_by), r.id), reverse=descending)]

    assert names_of(alice, ModelQuery(order_by=order_by, descending=descending)) == expected


def test_search_rejects_unknown_ordering(ctx, alice):
    with pytest.raises(InvalidArgument):
        search_models(alice, ModelQuery(order_by="description"))


@pytest.mark.parametrize(("order_by", "descending"), ORDERINGS)
def test_pagination_walks_every_model_exactly_once(ctx, alice, order_by, descending):
    for i in range(25):
        create_model(alice, f"model-{(i * 11) % 25:02d}")
    for i in range(0, 25, 3):
        set_model_tag(alice, f"model-{i:02d}", "touched", "yes")
    query = ModelQuery(order_by=order_by, descending=descending)

    walked = names_of(alice, query, page_size=7)

    assert len(walked) == 25 and len(set(walked)) == 25
    assert walked == names_of(alice, query)  # same order as one big page


@pytest.mark.parametrize(("order_by", "descending"), ORDERINGS)
def test_pagination_walks_models_with_equal_sort_keys_exactly_once(ctx, db_session, alice, order_by, descending):
    for i in range(25):
        create_model(alice, f"model-{i:02d}")
    # Only three distinct timestamps: the cursor must break ties by id, not skip or repeat rows.
    db_session.execute(text(
        "UPDATE registered_models SET created_at = timestamptz '2024-01-01' + (id % 3) * interval '1 day', "
        "updated_at = timestamptz '2024-02-01' + (id % 3) * interval '1 hour'"
    ))
    db_session.commit()
    query = ModelQuery(order_by=order_by, descending=descending)

    walked = names_of(alice, query, page_size=7)

    assert len(walked) == 25 and len(set(walked)) == 25
    assert walked == names_of(alice, query)


@pytest.mark.parametrize(("order_by", "descending"), ORDERINGS)
def test_every_ordering_pages_through_the_one_keyset_implementation(ctx, alice, monkeypatch, order_by, descending):
    from registry.db import filters

    calls = []
    real = filters.sorted_page

    def spy(stmt, sort, *args, **kwargs):
        calls.append(sort)
        return real(stmt, sort, *args, **kwargs)

    monkeypatch.setattr(filters, "sorted_page", spy)
    for i in range(3):
        create_model(alice, f"model-{i}")
    query = ModelQuery(order_by=order_by, descending=descending)

    assert len(names_of(alice, query, page_size=2)) == 3
    assert calls == [(filters.SortKey(order_by, descending),)] * 2


def test_a_descending_ordering_is_the_ascending_one_reversed_even_among_ties(ctx, db_session, alice):
    for i in range(9):
        create_model(alice, f"model-{i}")
    db_session.execute(text("UPDATE registered_models SET created_at = timestamptz '2024-01-01'"))
    db_session.commit()

    ascending = names_of(alice, ModelQuery(order_by="created_at"), page_size=4)
    assert names_of(alice, ModelQuery(order_by="created_at", descending=True), page_size=4) == ascending[::-1]


@pytest.mark.parametrize(
    "changed",
    [
        ModelQuery(name_prefix="model-1"),
        ModelQuery(tags=(("team", "x"),)),
        ModelQuery(order_by="created_at"),
        ModelQuery(descending=True),
    ],
)
def test_page_token_reused_with_different_query_is_rejected(ctx, alice, changed):
    for i in range(5):
        create_model(alice, f"model-{i}")
    token = search_models(alice, ModelQuery(), max_results=2).next_page_token
    assert token is not None

    with pytest.raises(InvalidArgument, match="different query"):
        search_models(alice, changed, max_results=2, page_token=token)


def test_update_model_changes_description(ctx, alice, bob):
    before = create_model(alice, "churn", description="old")

    after = update_model(bob, "churn", description="new")

    assert after.description == "new" and get_model(alice, "churn").description == "new"
    assert after.revision == before.revision + 1


def test_rename_keeps_versions_aliases_and_tags(ctx, alice):
    create_model(alice, "old", tags={"team": "x"})
    create_version(alice, "old", "s3://bucket/one")
    create_version(alice, "old", "s3://bucket/two")
    set_alias(alice, "old", "champion", 1)

    renamed = update_model(alice, "old", new_name="new")

    assert renamed.name == "new" and renamed.tags == {"team": "x"} and renamed.last_version == 2
    with pytest.raises(NotFound):
        get_model(alice, "old")
    assert [v.version for v in search_versions(alice, VersionQuery(model_name="new")).items] == [2, 1]
    assert get_version(alice, "new", 1).aliases == ("champion",)


def test_audit_search_by_new_name_returns_events_recorded_under_old_name(ctx, alice):
    create_model(alice, "old")
    create_version(alice, "old", "s3://bucket/one")

    update_model(alice, "old", new_name="new")

    history = events(model_name="new")
    assert [(e.action, e.model_name) for e in history] == [
        ("model.created", "old"),
        ("version.created", "old"),
        ("model.renamed", "new"),
    ]
    assert history[-1].details == {"from": "old", "to": "new"}


def test_rename_to_existing_name_raises_already_exists(ctx, alice):
    create_model(alice, "a")
    create_model(alice, "b")

    with pytest.raises(AlreadyExists):
        update_model(alice, "a", new_name="b")
    assert {get_model(alice, "a").name, get_model(alice, "b").name} == {"a", "b"}


def test_update_with_stale_revision_raises_precondition_failed(ctx, alice, bob):
    created = create_model(alice, "churn", description="v0")
    update_model(bob, "churn", description="v1")

    with pytest.raises(PreconditionFailed):
        update_model(alice, "churn", description="v2", expected_revision=created.revision)
    assert get_model(alice, "churn").description == "v1"


def test_update_with_current_revision_succeeds(ctx, alice):
    created = create_model(alice, "churn", description="v0")

    assert update_model(alice, "churn", description="v1", expected_revision=created.revision).description == "v1"


def test_delete_model_removes_versions_tags_and_aliases(ctx, alice):
    create_model(alice, "churn", tags={"team": "x"})
    create_version(alice, "churn", "s3://bucket/one")
    create_version(alice, "churn", "s3://bucket/two")
    set_version_tag(alice, "churn", 1, "k", "v")
    set_alias(alice, "churn", "champion", 2)

    delete_model(alice, "churn")

    with pytest.raises(NotFound):
        get_model(alice, "churn")
    counts = {t.__tablename__: count_rows(t) for t in (ModelVersion, ModelVersionTag, ModelAlias, RegisteredModelTag)}
    assert counts == {"model_versions": 0, "model_version_tags": 0, "model_aliases": 0, "registered_model_tags": 0}


def test_delete_model_keeps_audit_events_and_records_each_version(ctx, alice, bob):
    create_model(alice, "churn")
    create_version(alice, "churn", "s3://bucket/one", run_id="r1")
    create_version(alice, "churn", "s3://bucket/two", run_id="r2")
    transition_stage(alice, "churn", 2, "Production")
    before = [e.id for e in events(model_name="churn")]

    delete_model(bob, "churn")

    history = events(model_name="churn")
    assert [e.id for e in history[: len(before)]] == before
    assert [(e.actor, e.action, e.version, e.run_id, e.from_stage) for e in history[len(before):]] == [
        ("bob", "version.deleted", 1, "r1", "None"),
        ("bob", "version.deleted", 2, "r2", "Production"),
        ("bob", "model.deleted", None, None, None),
    ]


def test_set_model_tag_adds_then_overwrites(ctx, alice):
    create_model(alice, "churn")

    assert set_model_tag(alice, "churn", "team", "x").tags == {"team": "x"}
    assert set_model_tag(alice, "churn", "team", "y").tags == {"team": "y"}
    assert [e.details for e in events(action="model.tag_set")] == [
        {"key": "team", "value": "x", "previous": None},
        {"key": "team", "value": "y", "previous": "x"},
    ]


def test_delete_model_tag_removes_it(ctx, alice):
    create_model(alice, "churn", tags={"team": "x", "env": "prod"})

    delete_model_tag(alice, "churn", "team")

    assert get_model(alice, "churn").tags == {"env": "prod"}


def test_delete_absent_model_tag_is_a_no_op_without_event(ctx, alice):
    created = create_model(alice, "churn", tags={"team": "x"})
    marker = last_event_id()

    delete_model_tag(alice, "churn", "missing")

    assert events_after(marker) == []
    assert get_model(alice, "churn") == created
