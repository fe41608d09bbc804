"""The pull feed over real commits: a cursor never skips an event committed late, and a long-poll wakes when an
event is committed."""
from __future__ import annotations

import threading

from sqlalchemy import text

from registry.extensions import db
from registry.services import models, versions

ADMIN = {"X-Registry-Actor": "alice"}


def read(client, after="0", **query):
    response = client.get("/api/v1/events", query_string={"after": after, **query}, headers=ADMIN)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def test_an_event_committed_after_a_later_one_is_not_skipped_by_the_cursor(live, live_app, alice):
    models.create_model(alice, "slow")
    models.create_model(alice, "fast")
    client = live_app.test_client()
    cursor = read(client)["cursor"]
    # A transaction on "slow" records its event (the outbox row gets its id now) but has not committed yet...
    with db.engine.connect() as late:
        tx = late.begin()
        late.execute(text("SELECT id FROM registered_models WHERE name = 'slow' FOR UPDATE"))
        late.execute(text("""
            INSERT INTO audit_events (chain_id, seq, occurred_at, actor, action, model_id, model_name, details, hash)
            SELECT id, audit_seq + 1, now(), 'late', 'model.updated', id, name, '{}', repeat('0', 64)
            FROM registered_models WHERE name = 'slow'"""))
        late_id = late.execute(text("SELECT max(id) FROM events")).scalar()
        # ...while one on "fast", with a greater event id, commits and is read.
        versions.create_version(alice, "fast", "s3://b/1")
        page = read(client, after=cursor)
        assert [(e["model"], e["action"]) for e in page["events"]] == [("fast", "version.created")]
        assert page["events"][0]["id"] > late_id
        tx.commit()
    assert [(e["model"], e["actor"]) for e in read(client, after=page["cursor"])["events"]] == [("slow", "late")]


def test_a_long_poll_wakes_when_an_event_is_committed(live, live_app, alice):
    models.create_model(alice, "fraud")
    client = live_app.test_client()
    cursor = read(client)["cursor"]
    answer = {}
    poller = threading.Thread(target=lambda: answer.update(read(client, after=cursor, wait=30)))
    poller.start()
    versions.create_version(alice, "fraud", "s3://b/1")
    poller.join(60)
    assert [(e["model"], e["version"]) for e in answer["events"]] == [("fraud", 1)]
