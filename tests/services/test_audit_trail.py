"""The audit trail: which events each use case writes, how they are queried, and that failures write none."""
from __future__ import annotations

from datetime import timedelta

import pytest

from registry.errors import AlreadyExists, InvalidArgument, InvalidTransition, NotFound
from registry.services import aliases, models, serving, stages, versions
from registry.services.audit_log import AuditQuery, search_events
from registry.services.models import create_model, get_model, update_model
from registry.services.stages import transition_stage
from registry.services.versions import VersionQuery, create_version, get_version, search_versions

from .support import events, events_after, last_event_id, summary, walk


@pytest.fixture
def seeded(ctx, alice):
    """Model "m" (tag team=x) with v1 (run r1, Production, tag k=v, alias champion) and v2 (run r2, None)."""
    create_model(alice, "m", tags={"team": "x"})
    create_version(alice, "m", "s3://bucket/1", run_id="r1", tags={"k": "v"})
    create_version(alice, "m", "s3://bucket/2", run_id="r2")
    transition_stage(alice, "m", 1, "Production")
    aliases.set_alias(alice, "m", "champion", 1)


# (use case run by bob on the seeded registry, the events it must write: actor, action, model, version,
# run_id, from_stage, to_stage)
USE_CASES = {
    "create_model": (
        lambda bob: models.create_model(bob, "n"),
        [("bob", "model.created", "n", None, None, None, None)],
    ),
    "update_model_description": (
        lambda bob: models.update_model(bob, "m", description="new"),
        [("bob", "model.updated", "m", None, None, None, None)],
    ),
    "rename_model": (
        lambda bob: models.update_model(bob, "m", new_name="m2"),
        [("bob", "model.renamed", "m2", None, None, None, None)],
    ),
    "update_and_rename_model": (
        lambda bob: models.update_model(bob, "m", description="new", new_name="m2"),
        [
            ("bob", "model.updated", "m", None, None, None, None),
            ("bob", "model.renamed", "m2", None, None, None, None),
        ],
    ),
    "set_model_tag": (
        lambda bob: models.set_model_tag(bob, "m", "env", "prod"),
        [("bob", "model.tag_set", "m", None, None, None, None)],
    ),
    "delete_model_tag": (
        lambda bob: models.delete_model_tag(bob, "m", "team"),
        [("bob", "model.tag_deleted", "m", None, None, None, None)],
    ),
    "delete_model": (
        lambda bob: models.delete_model(bob, "m"),
        [
            ("bob", "version.deleted", "m", 1, "r1", "Production", None),
            ("bob", "version.deleted", "m", 2, "r2", "None", None),
            ("bob", "model.deleted", "m", None, None, None, None),
        ],
    ),
    "create_version": (
        lambda bob: versions.create_version(bob, "m", "s3://bucket/3", run_id="r3"),
        [("bob", "version.created", "m", 3, "r3", None, "None")],
    ),
    "update_version": (
        lambda bob: versions.update_version(bob, "m", 1, description="new"),
        [("bob", "version.updated", "m", 1, "r1", None, None)],
    ),
    "delete_version": (
        lambda bob: versions.delete_version(bob, "m", 1),
        [
            ("bob", "alias.deleted", "m", 1, "r1", None, None),
            ("bob", "version.deleted", "m", 1, "r1", "Production", None),
        ],
    ),
    "set_version_tag": (
        lambda bob: versions.set_version_tag(bob, "m", 2, "k", "w"),
        [("bob", "version.tag_set", "m", 2, "r2", None, None)],
    ),
    "delete_version_tag": (
        lambda bob: versions.delete_version_tag(bob, "m", 1, "k"),
        [("bob", "version.tag_deleted", "m", 1, "r1", None, None)],
    ),
    "transition": (
        lambda bob: stages.transition_stage(bob, "m", 2, "Staging"),
        [("bob", "version.transitioned", "m", 2, "r2", "None", "Staging")],
    ),
    "transition_archiving": (
        lambda bob: stages.transition_stage(bob, "m", 2, "Production", archive_existing_versions=True),
        [
            ("bob", "version.transitioned", "m", 1, "r1", "Production", "Archived"),
            ("bob", "version.transitioned", "m", 2, "r2", "None", "Production"),
        ],
    ),
    "set_alias": (
        lambda bob: aliases.set_alias(bob, "m", "challenger", 2),
        [("bob", "alias.set", "m", 2, "r2", None, None)],
    ),
    "move_alias": (
        lambda bob: aliases.set_alias(bob, "m", "champion", 2),
        [("bob", "alias.set", "m", 2, "r2", None, None)],
    ),
    "delete_alias": (
        lambda bob: aliases.delete_alias(bob, "m", "champion"),
        [("bob", "alias.deleted", "m", 1, "r1", None, None)],
    ),
}


@pytest.mark.parametrize("use_case", USE_CASES)
def test_use_case_writes_exactly_its_events(seeded, bob, use_case):
    run, expected = USE_CASES[use_case]
    marker = last_event_id()

    run(bob)

    assert [summary(e) for e in events_after(marker)] == expected


@pytest.mark.parametrize(
    "read",
    [
        lambda actor: models.get_model(actor, "m"),
        lambda actor: models.search_models(actor, models.ModelQuery()),
        lambda actor: versions.get_version(actor, "m", 1),
        lambda actor: versions.search_versions(actor, VersionQuery(model_name="m")),
        lambda actor: stages.latest_versions(actor, "m"),
        lambda actor: serving.resolve(actor, "m", stage="Production"),
        lambda actor: aliases.get_version_by_alias(actor, "m", "champion"),
    ],
)
def test_reads_write_no_events(seeded, alice, read):
    marker = last_event_id()

    read(alice)

    assert events_after(marker) == []


def test_events_of_one_model_chain_in_order(seeded):
    chain = events(model_name="m")

    assert [e.seq for e in chain] == list(range(1, len(chain) + 1))
    assert chain[0].prev_hash is None
    assert all(later.prev_hash == earlier.hash for earlier, later in zip(chain, chain[1:]))


@pytest.fixture
def history(ctx, alice, bob):
    """Two models, two actors, two runs; returns every event, oldest first."""
    create_model(alice, "a")
    create_model(bob, "b")
    create_version(alice, "a", "s3://bucket/a1", run_id="r1")
    create_version(bob, "b", "s3://bucket/b1", run_id="r1")
    create_version(bob, "a", "s3://bucket/a2", run_id="r2")
    transition_stage(alice, "a", 2, "Production")
    transition_stage(bob, "b", 1, "Staging")
    models.set_model_tag(alice, "b", "team", "x")
    return events()


@pytest.mark.parametrize(
    ("filters", "keep"),
    [
        ({"model_name": "a"}, lambda e: e.model_name == "a"),
        ({"model_name": "a", "version": 2}, lambda e: e.model_name == "a" and e.version == 2),
        ({"run_id": "r1"}, lambda e: e.run_id == "r1"),
        ({"actor": "bob"}, lambda e: e.actor == "bob"),
        ({"action": "version.transitioned"}, lambda e: e.action == "version.transitioned"),
        ({"actor": "alice", "model_name": "b"}, lambda e: e.actor == "alice" and e.model_name == "b"),
    ],
)
def test_event_query_filters(history, filters, keep):
    expected = [e for e in history if keep(e)]
    assert expected and len(expected) < len(history)  # the filter must really select something, not everything

    assert events(**filters) == expected


def test_event_query_by_time_range(history):
    # Event boundaries taken from the trail itself: since is inclusive, until exclusive.
    start, end = history[2].occurred_at, history[5].occurred_at
    expected = [e for e in history if start <= e.occurred_at < end]
    assert 0 < len(expected) < len(history)

    assert events(since=start, until=end) == expected
    assert events(since=start) == [e for e in history if e.occurred_at >= start]
    assert events(until=end) == [e for e in history if e.occurred_at < end]


def test_event_query_with_since_after_until_is_rejected(history, alice):
    with pytest.raises(InvalidArgument):
        search_events(alice, AuditQuery(since=history[-1].occurred_at, until=history[0].occurred_at - timedelta(seconds=1)))


def test_event_query_by_unknown_model_finds_nothing(history):
    assert events(model_name="ghost") == []


@pytest.mark.parametrize("filters", [{}, {"model_name": "a"}, {"actor": "bob"}])
def test_event_pagination_walks_every_event_exactly_once(history, alice, filters):
    expected = events(**filters)

    walked = walk(lambda size, token: search_events(alice, AuditQuery(**filters), size, token), page_size=2)

    assert walked == expected
    assert len({e.id for e in walked}) == len(walked)


def test_event_page_token_reused_with_different_filters_is_rejected(history, alice):
    token = search_events(alice, AuditQuery(actor="alice"), max_results=1).next_page_token
    assert token is not None

    with pytest.raises(InvalidArgument, match="different query"):
        search_events(alice, AuditQuery(actor="bob"), max_results=1, page_token=token)


def test_version_filter_without_model_is_rejected(history, alice):
    with pytest.raises(InvalidArgument, match="version"):
        search_events(alice, AuditQuery(version=1))


def test_unknown_action_filter_is_rejected(history, alice):
    with pytest.raises(InvalidArgument, match="Unknown action"):
        search_events(alice, AuditQuery(action="model.exploded"))


def test_failed_create_version_leaves_no_event_and_no_version(ctx, alice):
    created = create_model(alice, "m")
    marker = last_event_id()

    with pytest.raises(InvalidArgument):
        create_version(alice, "m", "s3://bucket/1", tags={"bad..key": "v"})

    assert events_after(marker) == []
    assert get_model(alice, "m") == created
    assert search_versions(alice, VersionQuery(model_name="m")).items == []
    assert create_version(alice, "m", "s3://bucket/1").version == 1  # the number was not consumed


def test_failed_transition_leaves_no_event_and_no_change(seeded, alice, bob):
    before = [get_version(alice, "m", n) for n in (1, 2)]
    marker = last_event_id()

    with pytest.raises(InvalidTransition):
        transition_stage(bob, "m", 2, "Archived", archive_existing_versions=True)

    assert events_after(marker) == []
    assert [get_version(alice, "m", n) for n in (1, 2)] == before


def test_failed_rename_rolls_back_the_description_change_made_before_it(seeded, alice, bob):
    # update_model changes the description (and records model.updated) before it discovers the name is taken.
    create_model(alice, "taken")
    before = get_model(alice, "m")
    marker = last_event_id()

    with pytest.raises(AlreadyExists):
        update_model(bob, "m", description="changed", new_name="taken")

    assert events_after(marker) == []
    assert get_model(alice, "m") == before


def test_failed_delete_of_missing_version_leaves_no_event(seeded, bob):
    marker = last_event_id()

    with pytest.raises(NotFound):
        versions.delete_version(bob, "m", 9)

    assert events_after(marker) == []


def test_events_outlive_their_model(seeded, bob):
    before = events(model_name="m")

    models.delete_model(bob, "m")

    after = events(model_name="m")
    assert after[: len(before)] == before
    assert after[-1].action == "model.deleted" and after[-1].details == {"versions": [1, 2]}
