"""Warming (registry/warming.py, ``serving.warm``): every model's current answer in a stage, read a page of
models at a time into the one cache, must be exactly what the serving reads would have read and kept, and must
obey the freshness rule like any other entry (a change heard after the page's label drops it)."""
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
        after = serving.warm(stage, after=after, page=page)
        pages += 1
    return pages


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

    def page_then_a_change(*args):
        rows = real_page(*args)
        hub.dispatch({"m": m1, "g": 999})  # m1 changed after the page was read: what the page says of it may be wrong
        return rows

    monkeypatch.setattr(serving, "_read_page", page_then_a_change)
    warm_all("Production", 500)
    assert cached(app, ("stage", "m1", "Production")) is None
    assert cached(app, ("records", "m1", ("Production",))) is None
    assert cached(app, ("stage", "m2", "Production")) is not None


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
