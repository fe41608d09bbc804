"""Fixtures: a real PostgreSQL, databases built by the real migrations, and per-test isolation.

* ``app`` / ``client``: one migrated database for the session; each test runs inside an outer transaction
  that is rolled back afterwards. Services still call ``commit()``: the session joins the outer
  transaction in "create_savepoint" mode, so a commit releases a savepoint and nothing leaks between tests.
* ``fresh_database_url``: a brand-new database cloned from a migrated template, for tests that need real
  commits seen by other connections or processes (concurrency, gunicorn, CLI).
"""
from __future__ import annotations

import os

import pytest
from flask_migrate import upgrade
from sqlalchemy.orm import Session, scoped_session, sessionmaker

from registry import create_app
from registry.auth import Actor
from registry.extensions import CACHES_KEY
from registry.extensions import db
from tests import pg

# The suite sends thousands of writes from one address (and often one token) in a minute: rate limits are off
# for every app and server it starts (the environment is inherited), except where a test sets its own
# (tests/api/test_rate_limits.py).
for _name in ("TOKEN_WRITES", "TOKEN_SEARCHES", "ADDRESS_WRITES", "ADDRESS_SEARCHES", "ADDRESS_SIGN_INS",
              "USER_SIGN_INS"):
    os.environ.setdefault(f"REGISTRY_RATE_LIMIT_{_name}", "off")


@pytest.fixture(scope="session")
def admin_url(tmp_path_factory):
    url, server = pg.server_admin_url(tmp_path_factory.mktemp("pg"))
    yield url
    if server is not None:
        server.cleanup()


def migrate_database(url: str) -> None:
    app = create_app({"database_url": url})
    with app.app_context():
        upgrade()
        db.engine.dispose()


@pytest.fixture(scope="session")
def template_database(admin_url):
    """Migrated once, never connected to again, so it can be cloned with CREATE DATABASE ... TEMPLATE."""
    name = pg.create_database(admin_url, prefix="registry_template")
    migrate_database(pg.with_database(admin_url, name))
    yield name
    pg.drop_database(admin_url, name)


@pytest.fixture
def fresh_database_url(admin_url, template_database):
    name = pg.create_database(admin_url, template=template_database)
    yield pg.with_database(admin_url, name)
    pg.drop_database(admin_url, name)


@pytest.fixture
def empty_database_url(admin_url):
    """A brand-new database with no schema at all, for tests of what happens before migrations run."""
    name = pg.create_database(admin_url)
    yield pg.with_database(admin_url, name)
    pg.drop_database(admin_url, name)


@pytest.fixture(scope="session")
def session_database_url(admin_url, template_database):
    name = pg.create_database(admin_url, template=template_database)
    yield pg.with_database(admin_url, name)
    pg.drop_database(admin_url, name)


# The session-long apps made so far (``app``, ``secure_app``): every test's data is rolled back, so each test
# ends by making all of them forget what they cached (``db_session``).
_SESSION_APPS: list = []


def session_app(database_url: str, auth_enabled: bool):
    """A session-long app in testing mode on ``database_url``; its connection pool is closed at the end."""
    application = create_app({"database_url": database_url, "auth_enabled": auth_enabled})
    application.config["TESTING"] = True
    _SESSION_APPS.append(application)
    yield application
    with application.app_context():
        db.engine.dispose()


@pytest.fixture(scope="session")
def app(session_database_url):
    # Authentication is tested on its own app (``secure_app``); here every caller is an admin named by the
    # X-Registry-Actor header, so these tests exercise the registry's behaviour rather than its guards.
    yield from session_app(session_database_url, auth_enabled=False)


@pytest.fixture
def db_session(app, monkeypatch):
    """Everything a test does, commits included, is undone when it ends."""
    with app.app_context():
        connection = db.engine.connect()
        outer = connection.begin()
        factory = sessionmaker(bind=connection, class_=Session, join_transaction_mode="create_savepoint")
        session = scoped_session(factory)
        monkeypatch.setattr(db, "session", session)
        try:
            yield session
        finally:
            session.remove()
            outer.rollback()
            connection.close()
            # The serving caches may hold answers read inside the rolled-back transaction (in production they
            # only ever see committed data): forget them, as a listener reset would, in every app that may have
            # read it (all share this session).
            for application in _SESSION_APPS:
                application.extensions[CACHES_KEY].hub.dispatch(None)


@pytest.fixture
def client(app, db_session):
    return app.test_client()


@pytest.fixture
def ctx(app, db_session):
    """An app context for calling services directly."""
    with app.app_context():
        yield


@pytest.fixture
def alice():
    """An admin: service tests exercise behaviour; permission tests build non-admin actors themselves."""
    return Actor("alice", is_admin=True)


@pytest.fixture
def bob():
    return Actor("bob", is_admin=True)


@pytest.fixture(scope="session")
def secure_app(session_database_url):
    """Authentication on, as in production: callers need a token."""
    yield from session_app(session_database_url, auth_enabled=True)


@pytest.fixture
def secure_client(secure_app, db_session):
    yield secure_app.test_client()
    secure_app.extensions[CACHES_KEY].hub.dispatch(None)


@pytest.fixture
def make_user(secure_app, db_session):
    """``make_user(name, level=None, admin=False, model=None)`` creates a user with a fresh token and returns the
    headers that authenticate as them. ``level`` (e.g. "EDIT") is granted registry-wide, or on ``model``."""
    from registry.auth import SYSTEM
    from registry.services import identities, permissions

    def make(name: str, level: str | None = None, *, admin: bool = False, model: str | None = None):
        with secure_app.app_context():
            _, token = identities.create_token(SYSTEM, name, create_user=True, admin=admin)
            if level is not None:
                if model is None:
                    permissions.set_registry_permissions(SYSTEM, [(name, level)], merge=True)
                else:
                    permissions.set_model_permissions(SYSTEM, model, [(name, level)], merge=True)
        return {"Authorization": f"Bearer {token}"}

    return make
