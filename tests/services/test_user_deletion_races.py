"""Deleting a user must take every grant to them along, even grants being written at that moment: a user
created later under the same name must inherit nothing. Real commits on a fresh database; the racing
transaction is played by hand on its own connection, so the interleaving is exact, not timed."""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import text

from registry import create_app
from registry.auth import Actor
from registry.errors import NotFound
from registry.extensions import db
from registry.services import identities, models, permissions
from tests.threads import in_app

ADMIN = Actor("setup", is_admin=True)


@pytest.fixture
def live_app(fresh_database_url):
    application = create_app({"database_url": fresh_database_url, "pool_size": 5})
    with application.app_context():
        identities.create_user(ADMIN, "mia")
        models.create_model(ADMIN, "churn")
    yield application
    with application.app_context():
        db.engine.dispose()


def grants_to(app, name: str) -> list:
    return in_app(app, lambda: db.session.execute(
        text("SELECT model_id, level FROM permission_grants WHERE principal = :p"), {"p": name}).all())


def in_thread(app, fn):
    outcome = {}

    def run():
        with app.app_context():
            try:
                outcome["result"] = fn()
            except Exception as exc:  # asserted on by the test
                outcome["error"] = exc
    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def test_a_grant_committed_while_the_deletion_waits_is_removed_with_the_user(live_app):
    with in_app(live_app, lambda: db.engine.connect()) as other:
        # Another writer is granting mia something: it holds her row share-locked, its grant not committed.
        other.execute(text("SELECT id FROM users WHERE name = 'mia' FOR SHARE"))
        other.execute(text("INSERT INTO permission_grants (model_id, principal, level, granted_by, created_at) "
                            "SELECT id, 'mia', 5, 'x', now() FROM registered_models WHERE name = 'churn'"))
        thread, outcome = in_thread(live_app, lambda: identities.delete_user(ADMIN, "mia"))
        thread.join(timeout=1)
        assert thread.is_alive()  # waiting for the writer's lock on mia
        other.commit()
    thread.join(timeout=30)
    assert "error" not in outcome, outcome
    assert grants_to(live_app, "mia") == []
    in_app(live_app, lambda: identities.create_user(ADMIN, "mia"))
    assert in_app(live_app, lambda: permissions.effective_level(ADMIN, "mia", "churn")) == 1  # `*` READ only


def test_a_grant_to_a_user_being_deleted_waits_and_is_refused(live_app):
    with in_app(live_app, lambda: db.engine.connect()) as deleter:
        deleter.execute(text("SELECT id FROM users WHERE name = 'mia' FOR UPDATE"))
        thread, outcome = in_thread(
            live_app, lambda: permissions.grant_user(ADMIN, "mia", "churn", permissions.Permission.MANAGE))
        thread.join(timeout=1)
        assert thread.is_alive()  # the grant waits for the deletion
        deleter.execute(text("DELETE FROM users WHERE name = 'mia'"))
        deleter.commit()
    thread.join(timeout=30)
    assert isinstance(outcome.get("error"), NotFound), outcome
    assert grants_to(live_app, "mia") == []
