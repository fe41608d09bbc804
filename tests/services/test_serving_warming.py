"""Warming (registry/warming.py, ``serving.warm`` and ``serving.warm_aliases``): every model's current answer in
a stage, or behind its aliases, read a page of models at a time into the one cache, must be exactly what the
serving reads would have read and kept, and must obey the freshness rule like any other entry (a change heard
after the page's label drops it)."""
from __future__ import annotations

import pytest

from registry.extensions import CACHES_KEY
from registry.services import aliases, models, serving, stages, versions


@pytest.fixture
def hub(app, ctx):
    hub = app.extensions[CACHES_KEY].hub
    hub.set_healthy(True)  # as if listening (no listener thread: the tests play it)
    return hub


@pytest.fixture
def registry(alice):
    """Five models: v2 of m0..m2 in Production (v1 archived, v2 behind ``champion``), m3 with a version in
    Staging only, m4 with no version; m0's version carries tags."""
    for i in range(5):
        models.create_model(alice, f"m{i}")
    for i in range(3):
        for n in (1, 2):
            versions.create_version(alice, f"m{i}", f"s3://b/m{i}/{n}", run_id=f"run-{i}-{n}",
                                    tags={"team": "fraud", "n": str(n)} if i == 0 else None)
        stages.transition_stage(alice, f"m{i}", 1, "Production")
        stages.transition_stage(alice, f"m{i}", 2, "Production", archive_existing_versions=True)
        aliases.set_alias(alice, f"m{i}", "champion", 2)
    versions.create_version(alice, "m3", "s3://b/m3/1")
    stages.transition_stage(alice, "m3", 1, "Staging")
    return [f"m{i}" for i in range(5)]


def warm_all(stage: str, page: int) -> int:
    after, pages = 0, 0
    while after is not None:
        after = serving.warm(stage, after=after, page=page).last
        pages += 1
    return pages


def warm_all_aliases(only, page: int) -> list:
    after, keys = 0, []
    while after is not None:
        warmed = serving.warm_aliases(only, after=after, page=page)
        keys += warmed.keys
        after = warmed.last
    return keys


def cached(app, key):
    entry = app.extensions[CACHES_KEY].store.get(key)
    return None if entry is None else entry.payload


@pytest.mark.parametrize("page", [2, 5, 500])
def test_warming_keeps_what_the_serving_reads_would_have_read(app, hub, alice, registry, page):
    assert warm_all("Production", page) == len(registry) // page + 1
    for name in registry:
        answer = cached(app, ("stage", name, "Production"))
        assert answer == serving._read("stage", name, "Production"), name
        assert cached(app, ("records", name, ("Production",))) == serving._read_records(name, ["Production"])
    assert cached(app, ("stage", "m0", "Production")).version.version == 2
    assert cached(app, ("stage", "m3", "Production")).version is None
    assert cached(app, ("records", "m0", ("Production",)))[1][0].tags == {"n": "2", "team": "fraud"}
    # What the reads answer now comes from those entries, and is still checked for READ.
    assert serving.resolve(alice, "m1", stage="Production").version.version == 2
    assert [r.version for r in serving.latest_records(alice, "m1", ["Production"])[1]] == [2]


def test_warming_another_stage(app, hub, registry):
    warm_all("Staging", 500)
    assert cached(app, ("stage", "m3", "Staging")).version.version == 1
    assert cached(app, ("stage", "m0", "Production")) is None


def test_a_change_heard_while_a_page_was_read_is_not_overwritten(app, hub, alice, registry, monkeypatch):
    real_page = serving._read_page
    m1 = serving._read("stage", "m1", "Production").model_id

    generations = iter(range(1000, 2000))

    def page_then_a_change(*args):
        rows = real_page(*args)
        # m1 changed after the page was read: what the page says of it may be wrong.
        hub.dispatch({"m": m1, "g": next(generations)})
        return rows

    monkeypatch.setattr(serving, "_read_page", page_then_a_change)
    warm_all("Production", 500)
    assert cached(app, ("stage", "m1", "Production")) is None
    assert cached(app, ("records", "m1", ("Production",))) is None
    assert cached(app, ("stage", "m2", "Production")) is not None
    warm_all_aliases(None, 500)
    assert cached(app, ("alias", "m1", "champion")) is None
    assert cached(app, ("alias record", "m1", "champion")) is None
    assert cached(app, ("alias", "m2", "champion")) is not None


def test_nothing_is_kept_while_the_listener_is_down(app, hub, registry):
    hub.set_healthy(False)
    warm_all("Production", 500)
    hub.set_healthy(True)
    assert cached(app, ("stage", "m0", "Production")) is None


def test_a_reader_without_read_is_refused_a_warmed_answer(app, hub, alice, registry):
    from registry.auth import Actor
    from registry.errors import NotFound
    from registry.services import permissions

    permissions.set_registry_permissions(alice, [], merge=False)
    warm_all("Production", 500)
    outsider = Actor("outsider")
    with pytest.raises(NotFound):
        serving.resolve(outsider, "m0", stage="Production")
    with pytest.raises(NotFound):
        serving.latest_records(outsider, "m0", ["Production"])


@pytest.mark.parametrize("page", [1, 2, 500])
def test_warming_aliases_keeps_what_the_alias_reads_would_have_read(app, hub, alice, registry, page):
    aliases.set_alias(alice, "m0", "shadow", 1)
    keys = warm_all_aliases(None, page)
    assert sorted(keys) == sorted([("alias", f"m{i}", "champion") for i in range(3)] + [("alias", "m0", "shadow")])
    for _, name, alias in keys:
        assert cached(app, ("alias", name, alias)) == serving._read("alias", name, alias), (name, alias)
        assert cached(app, ("alias record", name, alias)) == serving._read_alias_record("alias", name, alias)
    assert cached(app, ("alias", "m0", "shadow")).version.version == 1
    assert cached(app, ("alias record", "m0", "champion"))[1].tags == {"n": "2", "team": "fraud"}
    assert serving.alias_record(alice, "m1", "champion").version == 2


def test_warming_only_the_named_aliases(app, hub, alice, registry):
    aliases.set_alias(alice, "m0", "shadow", 1)
    assert warm_all_aliases(("shadow", "absent"), 2) == [("alias", "m0", "shadow")]
    assert cached(app, ("alias", "m0", "champion")) is None


def test_the_whole_version_behind_an_alias_is_cached_until_the_model_changes(app, hub, alice, registry):
    record = serving.alias_record(alice, "m1", "champion")
    assert cached(app, ("alias record", "m1", "champion"))[1] == record
    aliases.set_alias(alice, "m1", "champion", 1)
    hub.dispatch({"m": record.model_id, "g": 999})  # as the listener would hear the commit
    assert cached(app, ("alias record", "m1", "champion")) is None
    assert serving.alias_record(alice, "m1", "champion").version == 1


def test_an_unset_alias_is_cached_as_unset_and_still_refused(app, hub, alice, registry):
    from registry.errors import NotFound

    for _ in range(2):
        with pytest.raises(NotFound) as refused:
            serving.alias_record(alice, "m1", "nobody")
        assert "alias" in refused.value.details
    assert cached(app, ("alias record", "m1", "nobody"))[1] is None
    with pytest.raises(NotFound) as missing:
        serving.alias_record(alice, "no-such-model", "champion")
    assert "alias" not in missing.value.details


def test_a_reader_without_read_is_refused_a_warmed_alias(app, hub, alice, registry):
    from registry.auth import Actor
    from registry.errors import NotFound
    from registry.services import permissions

    permissions.set_registry_permissions(alice, [], merge=False)
    warm_all_aliases(None, 500)
    outsider = Actor("outsider")
    with pytest.raises(NotFound) as refused:
        serving.alias_record(outsider, "m0", "champion")
    assert "alias" not in refused.value.details  # the same as a model that does not exist
    with pytest.raises(NotFound):
        serving.resolve(outsider, "m0", alias="champion")


def test_a_warming_stopped_at_the_caches_share_still_counts_as_done(app, hub, registry, monkeypatch):
    """A worker whose cache's share fills up has warmed all it will: it must say so (the metric a deploy waits
    for), not stay silent as if the listener had gone down."""
    from registry import warming

    monkeypatch.setattr(warming, "_SHARE_OF_CACHE", 1e-9)  # full after the first page
    warmer = warming.Warmer(app)
    warmer._warm_all()
    assert warmer.warmed == 1
    hub.set_healthy(False)  # the listener down: nothing is kept, and that is not a warming
    warmer._warm_all()
    assert warmer.warmed == 1
    hub.set_healthy(True)
