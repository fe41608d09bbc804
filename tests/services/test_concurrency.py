"""Many writers at once, through the service layer, each thread on its own database connection.

These use a fresh database with real commits, so the row locks and constraints are exercised for real.
"""
from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import text

from registry import create_app
from registry.auth import Actor
from registry.errors import AlreadyExists
from registry.extensions import db
from registry.services import aliases, audit_log, identities, models, permissions, stages, versions
from tests.threads import in_app, run_at_once


ADMIN = Actor("setup", is_admin=True)


@pytest.fixture
def live_app(fresh_database_url):
    """Writers are ordinary (non-admin) actors: every authenticated user gets MANAGE_PRODUCTION registry-wide,
    so the permission checks run on every concurrent call."""
    application = create_app({"database_url": fresh_database_url, "pool_size": 40})
    with application.app_context():
        permissions.set_registry_permissions(ADMIN, [("*", "MANAGE_PRODUCTION")])
    yield application
    with application.app_context():
        db.engine.dispose()


def test_32_concurrent_version_creations_get_1_to_32_without_gaps_or_errors(live_app):
    in_app(live_app, lambda: models.create_model(ADMIN, "hot"))
    results = run_at_once(
        live_app, 32, lambda i: versions.create_version(Actor(f"writer{i}"), "hot", f"s3://b/{i}", run_id=f"r{i}")
    )
    errors = [r for r in results if isinstance(r, Exception)]
    assert errors == []
    numbers = sorted(r.version for r in results)
    assert numbers == list(range(1, 33))
    assert in_app(live_app, lambda: models.get_model(ADMIN, "hot").last_version) == 32


def test_16_concurrent_promotions_with_archive_leave_exactly_one_in_production(live_app):
    setup = ADMIN
    in_app(live_app, lambda: models.create_model(setup, "promo"))
    for i in range(16):
        in_app(live_app, lambda i=i: versions.create_version(setup, "promo", f"s3://b/{i}"))
    results = run_at_once(
        live_app, 16,
        lambda i: stages.transition_stage(Actor(f"p{i}"), "promo", i + 1, "Production",
                                          archive_existing_versions=True),
    )
    assert [r for r in results if isinstance(r, Exception)] == []
    by_stage = Counter(
        v.stage for v in in_app(live_app, lambda: versions.search_versions(ADMIN, 
            versions.VersionQuery(model_name="promo"), max_results=100).items)
    )
    assert by_stage == {"Production": 1, "Archived": 15}
    checked, problem = in_app(live_app, audit_log.verify)
    assert problem is None
    # registry permissions, created model, created versions, promotions, archivals
    assert checked == 1 + 1 + 16 + 16 + 15


def test_concurrent_creates_of_one_model_name_have_exactly_one_winner(live_app):
    results = run_at_once(live_app, 12, lambda i: models.create_model(Actor(f"c{i}"), "contested"))
    winners = [r for r in results if not isinstance(r, Exception)]
    losers = [r for r in results if isinstance(r, Exception)]
    assert len(winners) == 1
    assert all(isinstance(e, AlreadyExists) for e in losers)


def test_concurrent_renames_to_one_name_have_exactly_one_winner(live_app):
    for i in range(8):
        in_app(live_app, lambda i=i: models.create_model(ADMIN, f"src{i}"))
    results = run_at_once(live_app, 8, lambda i: models.update_model(Actor(f"r{i}", is_admin=True), f"src{i}", new_name="target"))
    winners = [r for r in results if not isinstance(r, Exception)]
    assert len(winners) == 1
    assert all(isinstance(r, AlreadyExists) for r in results if isinstance(r, Exception))


def test_mixed_writers_on_one_model_never_deadlock_and_keep_the_chain_valid(live_app):
    setup = ADMIN
    in_app(live_app, lambda: models.create_model(setup, "mixed"))
    for i in range(4):
        in_app(live_app, lambda i=i: versions.create_version(setup, "mixed", f"s3://b/{i}"))

    def work(i):
        actor = Actor(f"w{i}")
        kind = i % 6
        if kind == 0:
            return versions.create_version(actor, "mixed", f"s3://new/{i}")
        if kind == 1:
            return stages.transition_stage(actor, "mixed", 1 + i % 4, "Production", archive_existing_versions=True)
        if kind == 2:
            return aliases.set_alias(actor, "mixed", "champion", 1 + i % 4)
        if kind == 3:
            return versions.set_version_tag(actor, "mixed", 1 + i % 4, "k", str(i))
        if kind == 4:
            return models.set_model_tag(actor, "mixed", "owner", f"w{i}")
        return stages.transition_stage(actor, "mixed", 1 + i % 4, "Staging")

    results = run_at_once(live_app, 30, work)
    assert [r for r in results if isinstance(r, Exception)] == []
    _, problem = in_app(live_app, audit_log.verify)
    assert problem is None
    production = in_app(live_app, lambda: stages.latest_versions(ADMIN, "mixed", ["Production"]).versions)
    assert len(production) <= 1


def test_chain_sequence_has_no_duplicates_after_concurrent_writes(live_app):
    in_app(live_app, lambda: models.create_model(ADMIN, "seq"))
    run_at_once(live_app, 20, lambda i: versions.create_version(Actor(f"w{i}"), "seq", f"s3://bucket/{i}"))

    def duplicates():
        return db.session.execute(text(
            "SELECT chain_id, seq FROM audit_events GROUP BY chain_id, seq HAVING count(*) > 1"
        )).all()

    assert in_app(live_app, duplicates) == []


def test_a_session_never_reuses_a_chain_head_from_an_earlier_transaction(live_app):
    # Chain heads are cached per transaction only: between two transactions of one session, another session
    # may append to the chain, and the next event must follow that one.
    with live_app.app_context():
        models.create_model(ADMIN, "heads")
        versions.create_version(ADMIN, "heads", "s3://bucket/1")
        in_app(live_app, lambda: models.set_model_tag(ADMIN, "heads", "owner", "someone else"))
        versions.set_version_tag(ADMIN, "heads", 1, "checked", "yes")
        stages.transition_stage(ADMIN, "heads", 1, "Staging")
    _, problem = in_app(live_app, audit_log.verify)
    assert problem is None


def test_concurrent_creates_by_allowed_and_refused_users_number_only_the_allowed(live_app):
    # Creates that arrive together are written in batches; a caller refused for lack of EDIT fails alone, takes
    # no number, and leaves no version or event behind. Half the writers are admins (no permission check).
    in_app(live_app, lambda: models.create_model(ADMIN, "guarded"))
    in_app(live_app, lambda: permissions.set_registry_permissions(ADMIN, [("*", "READ")]))
    editors = [f"editor{i}" for i in range(24) if i % 2 == 1 and i % 4 != 1]
    for name in editors:
        in_app(live_app, lambda name=name: identities.create_token(ADMIN, name, create_user=True))
    in_app(live_app, lambda: permissions.set_model_permissions(ADMIN, "guarded", [(n, "EDIT") for n in editors]))

    def create(i):
        if i % 4 == 1:
            actor = Actor("reader")  # the registry-wide READ only
        elif i % 2 == 1:
            actor = Actor(f"editor{i}")
        else:
            actor = Actor(f"admin{i}", is_admin=True)
        return versions.create_version(actor, "guarded", f"s3://g/{i}", run_id=f"g{i}", tags={"i": str(i)})

    results = run_at_once(live_app, 24, create)
    refused = [i for i, r in enumerate(results) if isinstance(r, Exception)]
    assert refused == [i for i in range(24) if i % 4 == 1]
    assert all(type(results[i]).__name__ == "PermissionDenied" for i in refused)
    created = [r for r in results if not isinstance(r, Exception)]
    assert sorted(r.version for r in created) == list(range(1, len(created) + 1))
    stored = in_app(live_app, lambda: versions.search_versions(
        ADMIN, versions.VersionQuery(model_name="guarded"), max_results=100).items)
    assert {(v.version, v.source, v.tags["i"]) for v in stored} == {(r.version, r.source, r.tags["i"]) for r in created}
    _, problem = in_app(live_app, audit_log.verify)
    assert problem is None
