"""Stale-while-unavailable: while the database cannot be reached, a serving answer this process held when it
lost contact is still answered, marked stale; anything else is a 503. After recovery only fresh answers.

The database is taken away from the app alone by cutting a TCP forwarder between them (tests/tcp_switch.py):
the server itself keeps running, so another session can change Production meanwhile (a partition), which is
the hardest case for "no stale answer after recovery"."""
from __future__ import annotations

import time

import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from registry import create_app
from registry.extensions import CACHES_KEY, db
from registry.services import stages, versions, models
from registry.auth import Actor
from tests.tcp_switch import tcp_switch

from .support import assert_error, listening

ADMIN = {"X-Registry-Actor": "alice"}
PRODUCTION = "/api/v1/models/churn/stages/Production"
BOUND = 30  # bounds a wait for the listener so a broken one fails the test; no speed assertion


def _wait_for(predicate) -> None:
    deadline = time.monotonic() + BOUND
    while not predicate():
        assert time.monotonic() < deadline
        time.sleep(0.02)


@pytest.fixture
def direct_app(fresh_database_url):
    """An app on the database directly: the "other host" that keeps writing while ours is cut off."""
    application = create_app({"database_url": fresh_database_url, "auth_enabled": False})
    yield application
    application.extensions[CACHES_KEY].hub.close()
    with application.app_context():
        db.engine.dispose()


@pytest.fixture
def switch(fresh_database_url):
    url = make_url(fresh_database_url)
    with tcp_switch(url.host or url.query.get("host"), url.port or 5432) as forwarder:
        yield forwarder


@pytest.fixture(params=[False], ids=["auth-off"])
def auth_enabled(request):
    return request.param


@pytest.fixture
def cut_off_app(fresh_database_url, switch, direct_app, auth_enabled):
    url = make_url(fresh_database_url).difference_update_query(["host"]).set(host="127.0.0.1", port=switch.port)
    application = create_app({"database_url": url.render_as_string(hide_password=False),
                              "auth_enabled": auth_enabled})
    application.config["TESTING"] = True
    alice = Actor("alice", is_admin=True)
    with direct_app.app_context():
        models.create_model(alice, "churn")
        versions.create_version(alice, "churn", "s3://b/1")
        versions.create_version(alice, "churn", "s3://b/2")
        stages.transition_stage(alice, "churn", 1, "Production")
    listening(application)
    yield application
    application.extensions[CACHES_KEY].hub.close()
    with application.app_context():
        db.engine.dispose()


def test_a_held_serving_answer_is_served_marked_stale_while_the_database_is_unreachable(cut_off_app, switch,
                                                                                          direct_app):
    client = cut_off_app.test_client()
    hub = cut_off_app.extensions[CACHES_KEY].hub
    fresh = client.get(PRODUCTION, headers=ADMIN)
    assert fresh.status_code == 200 and fresh.get_json()["version"] == 1
    assert client.get(PRODUCTION, headers=ADMIN).status_code == 200  # kept for replay

    switch.cut()
    _wait_for(lambda: not hub.healthy)
    stale = client.get(PRODUCTION, headers=ADMIN)
    never_read = client.get("/api/v1/models/churn/stages/Staging", headers=ADMIN)
    write = client.post("/api/v1/models/churn/versions", json={"source": "s3://b/3"}, headers=ADMIN)

    assert stale.status_code == 200, stale.get_data(as_text=True)
    assert stale.get_data() == fresh.get_data() and stale.headers["ETag"] == fresh.headers["ETag"]
    assert stale.headers["Warning"].startswith("110")
    assert int(stale.headers["X-Registry-Stale"]) >= 0
    assert "X-Registry-Stale" not in fresh.headers
    assert_error(never_read, 503, "UNAVAILABLE")
    assert_error(write, 503, "UNAVAILABLE")

    # Meanwhile another host, which still reaches the database, promotes version 2.
    with direct_app.app_context():
        stages.transition_stage(Actor("bob", is_admin=True), "churn", 2, "Production",
                                archive_existing_versions=True)
    switch.restore()
    _wait_for(lambda: hub.healthy)
    after = client.get(PRODUCTION, headers=ADMIN)
    assert after.status_code == 200 and after.get_json()["version"] == 2
    assert "X-Registry-Stale" not in after.headers and "Warning" not in after.headers


def test_no_stale_answer_once_this_process_reached_the_database_again(cut_off_app, switch, direct_app):
    """Requests reach the database again before the listener is back: from then on the answers held before
    prove nothing (another host may have changed them), so none is served stale, even if the database goes
    away again before the listener reconnects."""
    client = cut_off_app.test_client()
    store = cut_off_app.extensions[CACHES_KEY].store
    hub = cut_off_app.extensions[CACHES_KEY].hub
    assert client.get(PRODUCTION, headers=ADMIN).status_code == 200
    assert client.get(PRODUCTION, headers=ADMIN).status_code == 200
    switch.cut()
    _wait_for(lambda: not hub.healthy)
    assert client.get(PRODUCTION, headers=ADMIN).headers.get("X-Registry-Stale") is not None
    # The database is reachable to this process for a moment (the listener has not noticed yet).
    hub.close()  # keep the listener from reconnecting: only the request path reaches the database
    switch.restore()
    assert client.get("/api/v1/models/churn", headers=ADMIN).status_code == 200
    switch.cut()
    again = client.get(PRODUCTION, headers=ADMIN)
    assert_error(again, 503, "UNAVAILABLE")


def _warm(client, *paths) -> None:
    for path in paths:
        for _ in range(2):  # the second is answered from the cache: it is held
            assert client.get(path, headers=ADMIN).status_code == 200


def _stale(response) -> bool:
    return response.status_code == 200 and "X-Registry-Stale" in response.headers


def test_a_connection_handed_back_after_the_loss_proves_nothing_if_it_sent_nothing_since(cut_off_app, switch):
    """Under load a request's last answer from the database often comes just before the listener notices the
    loss, and its connection is handed back just after (a thread switch, the response being rendered). That
    connection sent nothing after the loss, so it shows no answer from the database since: stale answers
    must still be given (they were not: every warmed read of the outage got 503)."""
    client = cut_off_app.test_client()
    hub = cut_off_app.extensions[CACHES_KEY].hub
    _warm(client, PRODUCTION)
    with cut_off_app.app_context():
        connection = db.engine.connect()
        connection.execute(text("SELECT 1"))
        connection.commit()  # the database's last answer to this process, before the loss
        switch.cut()
        _wait_for(lambda: not hub.healthy)
        connection.close()  # handed back now: nothing is sent
    assert _stale(client.get(PRODUCTION, headers=ADMIN))


def test_a_commit_announced_after_the_loss_drops_only_its_own_models_answers(cut_off_app, switch, direct_app):
    """A write that committed just before the loss is announced in this process just after it (unit of work:
    after the commit). Its model's held answers are wrong now and go; the others stay (they were all dropped,
    so a write racing the outage ended stale answers for every model)."""
    alice = Actor("alice", is_admin=True)
    with direct_app.app_context():
        models.create_model(alice, "other")
        versions.create_version(alice, "other", "s3://o/1")
        stages.transition_stage(alice, "other", 1, "Production")
    client = cut_off_app.test_client()
    hub = cut_off_app.extensions[CACHES_KEY].hub
    other = "/api/v1/models/other/stages/Production"
    _warm(client, PRODUCTION, other)

    def cut_before_the_announcement(_session) -> None:
        switch.cut()
        _wait_for(lambda: not hub.healthy)

    event.listen(Session, "after_commit", cut_before_the_announcement, insert=True)
    try:
        with cut_off_app.app_context():
            stages.transition_stage(alice, "other", 1, "Archived")
    finally:
        event.remove(Session, "after_commit", cut_before_the_announcement)
    assert _stale(client.get(PRODUCTION, headers=ADMIN))
    assert_error(client.get(other, headers=ADMIN), 503, "UNAVAILABLE")


def _end_the_listeners_session(app, direct_app) -> None:
    """The listener alone loses the database (its session is ended, and it stays away); requests still reach
    the database on their pooled connections."""
    hub = app.extensions[CACHES_KEY].hub
    hub.close()  # the listener stops for good once its connection ends
    with direct_app.app_context():
        db.session.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                "WHERE application_name = 'registry-listener'"))
        db.session.rollback()
    _wait_for(lambda: not hub.healthy)


def test_a_statement_answered_after_the_loss_ends_stale_answers(cut_off_app, switch, direct_app):
    """An answer to a statement sent after the loss proves the database reachable then, so another host may
    have changed anything meanwhile: when the database then goes away, nothing is answered stale."""
    client = cut_off_app.test_client()
    _warm(client, PRODUCTION)
    _end_the_listeners_session(cut_off_app, direct_app)
    assert client.get("/api/v1/models/churn", headers=ADMIN).status_code == 200  # a pooled connection answers
    switch.cut()
    assert_error(client.get(PRODUCTION, headers=ADMIN), 503, "UNAVAILABLE")


def test_a_commit_answered_after_the_loss_ends_stale_answers(cut_off_app, switch, direct_app):
    """The same for a transaction whose statements went out before the loss and its COMMIT after."""
    client = cut_off_app.test_client()
    _warm(client, PRODUCTION)
    with cut_off_app.app_context():
        connection = db.engine.connect()
        connection.execute(text("SELECT 1"))
        _end_the_listeners_session(cut_off_app, direct_app)
        connection.commit()
        connection.close()
    switch.cut()
    assert_error(client.get(PRODUCTION, headers=ADMIN), 503, "UNAVAILABLE")


@pytest.mark.parametrize("auth_enabled", [True], ids=["auth-on"])
def test_a_stale_answer_goes_only_to_a_caller_whose_token_and_level_were_known(cut_off_app, switch, direct_app):
    from registry.auth import SYSTEM
    from registry.services import identities

    with direct_app.app_context():
        _, seen = identities.create_token(SYSTEM, "reader", create_user=True, admin=True)
        _, unseen = identities.create_token(SYSTEM, "other", create_user=True, admin=True)
    client = cut_off_app.test_client()
    hub = cut_off_app.extensions[CACHES_KEY].hub
    for _ in range(2):
        assert client.get(PRODUCTION, headers={"Authorization": f"Bearer {seen}"}).status_code == 200
    switch.cut()
    _wait_for(lambda: not hub.healthy)
    known = client.get(PRODUCTION, headers={"Authorization": f"Bearer {seen}"})
    stranger = client.get(PRODUCTION, headers={"Authorization": f"Bearer {unseen}"})
    assert known.status_code == 200 and "X-Registry-Stale" in known.headers
    assert_error(stranger, 503, "UNAVAILABLE")


def test_a_read_on_a_pooled_connection_broken_by_a_restart_is_answered_once_the_database_is_back(cut_off_app,
                                                                                                  switch):
    # A restart breaks every pooled connection; the first read on one must not fail (nor be answered stale)
    # once the database answers again: a read is tried once more on a new connection.
    client = cut_off_app.test_client()
    assert client.get("/api/v1/models/churn", headers=ADMIN).status_code == 200
    switch.cut()
    switch.restore()
    again = client.get("/api/v1/models/churn", headers=ADMIN)
    assert again.status_code == 200, again.get_data(as_text=True)
    assert "X-Registry-Stale" not in again.headers


MLFLOW_READS = [("POST", "/api/2.0/mlflow/registered-models/get-latest-versions",
                 {"name": "churn", "stages": ["Production"]}),
                ("GET", "/api/2.0/mlflow/registered-models/alias?name=churn&alias=champion", None)]


@pytest.mark.parametrize("auth_enabled", [True], ids=["auth-on"])
@pytest.mark.parametrize("credential", ["bearer", "basic-password"])
def test_mlflow_serving_reads_of_a_signed_in_reader_are_answered_stale(cut_off_app, switch, direct_app, credential):
    """The MLflow dialect's serving reads, for a non-admin reader (registry-wide READ) signed in with a token or
    with HTTP Basic user:password: who they are and what they may read is remembered with the answers."""
    import base64

    from registry.auth import SYSTEM
    from registry.services import aliases, identities, permissions

    with direct_app.app_context():
        aliases.set_alias(Actor("alice", is_admin=True), "churn", "champion", 1)
        if credential == "bearer":
            _, token = identities.create_token(SYSTEM, "pat", create_user=True)
            headers = {"Authorization": f"Bearer {token}"}
        else:
            identities.create_user(SYSTEM, "pat", password="correct horse battery")
            headers = {"Authorization": "Basic " + base64.b64encode(b"pat:correct horse battery").decode()}
        permissions.set_registry_permissions(SYSTEM, [("pat", "READ")], merge=True)
    client = cut_off_app.test_client()
    hub = cut_off_app.extensions[CACHES_KEY].hub

    def read(method, path, body):
        return client.open(path, method=method, json=body, headers=headers)

    fresh = []
    for call in MLFLOW_READS:
        fresh.append(read(*call))
        assert fresh[-1].status_code == 200, fresh[-1].get_data(as_text=True)
        assert read(*call).status_code == 200
    switch.cut()
    _wait_for(lambda: not hub.healthy)
    for call, before in zip(MLFLOW_READS, fresh):
        stale = read(*call)
        assert _stale(stale), (call, stale.status_code, stale.get_data(as_text=True))
        assert stale.get_json() == before.get_json()
