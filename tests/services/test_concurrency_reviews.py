"""Concurrent reviews of transition requests, through the service layer, each thread on its own connection.

A fresh database with real commits, so the model row lock that every review takes is exercised for real:
racing reviewers must leave each request in exactly one consistent state and apply a transition at most once.
"""
from __future__ import annotations

from collections import Counter

import pytest

from registry import create_app
from registry.auth import Actor
from registry.errors import Conflict
from registry.extensions import db
from registry.services import audit_log, models, permissions, policies, reviews, versions
from registry.services.audit_log import AuditQuery
from tests.threads import in_app, run_at_once

ADMIN = Actor("setup", is_admin=True)
ASKER = Actor("asker")


@pytest.fixture
def live_app(fresh_database_url):
    """Reviewers are ordinary users: everyone holds MANAGE_PRODUCTION registry-wide, so every concurrent call
    runs the permission and self-approval checks."""
    application = create_app({"database_url": fresh_database_url, "pool_size": 40})
    with application.app_context():
        permissions.set_registry_permissions(ADMIN, [("*", "MANAGE_PRODUCTION")])
        models.create_model(ADMIN, "race")
    yield application
    with application.app_context():
        db.engine.dispose()


def add_versions(app, count: int) -> None:
    for i in range(count):
        in_app(app, lambda i=i: versions.create_version(ADMIN, "race", f"s3://bucket/{i}", run_id=f"run-{i}"))


def stages(app) -> dict[int, str]:
    found = in_app(app, lambda: versions.search_versions(ADMIN, versions.VersionQuery(model_name="race"), 100).items)
    return {v.version: v.stage for v in found}


def request_events(app, request_id: int) -> list[str]:
    page = in_app(app, lambda: audit_log.search_events(ADMIN, AuditQuery(request_id=request_id), 1000))
    return [e.action for e in page.items]


def assert_chain_verifies(app) -> None:
    _, problem = in_app(app, audit_log.verify)
    assert problem is None


@pytest.mark.parametrize("required", [1, 2])
def test_concurrent_approvals_apply_the_transition_exactly_once(live_app, required):
    in_app(live_app, lambda: policies.set_model_policy(ADMIN, "race", "Production", required_approvals=required))
    add_versions(live_app, 1)
    request = in_app(live_app, lambda: reviews.create_request(ASKER, "race", 1, "Production"))

    results = run_at_once(live_app, 12, lambda i: reviews.approve(Actor(f"rev{i}"), request.id))

    accepted = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, Exception)]
    assert len(accepted) == required
    assert all(isinstance(e, Conflict) for e in refused) and len(refused) == 12 - required
    final = in_app(live_app, lambda: reviews.get_request(ADMIN, request.id))
    assert final.status == "approved" and len(final.approvals) == required
    assert len({a.approver for a in final.approvals}) == required
    assert stages(live_app) == {1: "Production"}
    assert Counter(request_events(live_app, request.id))["version.transitioned"] == 1
    assert_chain_verifies(live_app)


def test_concurrent_approve_reject_and_cancel_leave_one_outcome(live_app):
    rounds = 6
    add_versions(live_app, rounds)
    outcomes = {"approve": "approved", "reject": "rejected", "cancel": "cancelled"}
    for number in range(1, rounds + 1):
        request = in_app(live_app, lambda n=number: reviews.create_request(ASKER, "race", n, "Staging"))
        moves = [lambda: reviews.approve(Actor("approver"), request.id),
                 lambda: reviews.reject(Actor("rejecter"), request.id),
                 lambda: reviews.cancel(ASKER, request.id)]

        results = run_at_once(live_app, 3, lambda i: moves[i]())

        winners = [verb for verb, r in zip(outcomes, results) if not isinstance(r, Exception)]
        assert len(winners) == 1, results
        assert all(isinstance(r, Conflict) for r in results if isinstance(r, Exception))
        final = in_app(live_app, lambda: reviews.get_request(ADMIN, request.id))
        assert final.status == outcomes[winners[0]]
        assert stages(live_app)[number] == ("Staging" if winners[0] == "approve" else "None")
        # One creation event and one closing event (plus the transition if approved), nothing from the losers.
        closing = {"approve": ["request.approved", "version.transitioned"], "reject": ["request.rejected"],
                   "cancel": ["request.cancelled"]}[winners[0]]
        assert request_events(live_app, request.id) == ["request.created", *closing]
    assert_chain_verifies(live_app)


def test_concurrent_approved_promotions_with_archive_leave_one_version_in_production(live_app):
    count = 8
    add_versions(live_app, count)
    requests = [in_app(live_app, lambda n=n: reviews.create_request(ASKER, "race", n, "Production",
                                                                     archive_existing_versions=True))
                for n in range(1, count + 1)]

    results = run_at_once(live_app, count, lambda i: reviews.approve(Actor(f"rev{i}"), requests[i].id))

    assert [r for r in results if isinstance(r, Exception)] == []
    assert all(r.status == "approved" for r in results)
    assert Counter(stages(live_app).values()) == {"Production": 1, "Archived": count - 1}
    assert_chain_verifies(live_app)
