"""The audit trail cannot be changed through the database, and tampering past the trigger is detected."""
from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from registry.audit import compute_hash
from registry.orm import AuditEvent
from registry.services.audit_log import verify
from registry.services.models import create_model, set_model_tag
from registry.services.stages import transition_stage
from registry.services.versions import create_version

from .support import count_rows, events


@pytest.fixture
def trail(ctx, alice, bob):
    """Two models' chains; returns model "a"'s events, oldest first."""
    create_model(alice, "a")
    create_model(bob, "b")
    create_version(alice, "a", "s3://bucket/a1", run_id="r1")
    create_version(bob, "b", "s3://bucket/b1")
    transition_stage(alice, "a", 1, "Staging")
    set_model_tag(bob, "a", "team", "x")
    return events(model_name="a")


def bypass_trigger(db_session) -> None:
    """What only a superuser or the table owner can do: switch triggers off for this transaction."""
    db_session.execute(text("SET LOCAL session_replication_role = replica"))


def test_verify_on_untouched_trail_checks_every_event(trail):
    total = count_rows(AuditEvent)
    assert total == len(events()) > len(trail)

    assert verify() == (total, None)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_events SET actor = 'mallory' WHERE id = :id",
        "DELETE FROM audit_events WHERE id = :id",
        "TRUNCATE audit_events",
    ],
    ids=["update", "delete", "truncate"],
)
def test_database_refuses_to_change_audit_events(trail, db_session, statement):
    target = trail[1]

    # A savepoint of its own, so the refused statement does not poison the test's transaction.
    with pytest.raises(DBAPIError, match="append-only"):
        with db_session.begin_nested():
            db_session.execute(text(statement), {"id": target.id})

    assert events(model_name="a") == trail
    assert verify()[1] is None


def test_verify_reports_an_altered_event(trail, db_session):
    target = trail[1]
    bypass_trigger(db_session)
    db_session.execute(text("UPDATE audit_events SET actor = 'mallory' WHERE id = :id"), {"id": target.id})
    db_session.commit()

    checked, broken = verify()

    assert broken is not None
    assert (broken.event_id, broken.seq) == (target.id, target.seq)
    assert "hash" in broken.reason
    assert checked < len(events())


def test_verify_reports_the_event_after_a_removed_one(trail, db_session):
    removed, following = trail[1], trail[2]
    bypass_trigger(db_session)
    db_session.execute(text("DELETE FROM audit_events WHERE id = :id"), {"id": removed.id})
    db_session.commit()

    checked, broken = verify()

    assert broken is not None
    assert (broken.event_id, broken.seq) == (following.id, following.seq)
    assert "removed" in broken.reason


def test_verify_reports_a_rehashed_event_through_the_next_link(trail, db_session):
    # A forger who also recomputes the altered event's own hash still breaks the next event's prev_hash.
    target, following = trail[1], trail[2]
    bypass_trigger(db_session)
    row = db_session.execute(text("SELECT * FROM audit_events WHERE id = :id"), {"id": target.id}).mappings().one()
    forged = {k: row[k] for k in ("chain_id", "seq", "occurred_at", "action", "model_id", "model_name", "version",
                                  "run_id", "from_stage", "to_stage", "request_id", "details", "correlation_id",
                                  "prev_hash")}
    forged_hash = compute_hash(actor="mallory", **forged)
    db_session.execute(text("UPDATE audit_events SET actor = 'mallory', hash = :h WHERE id = :id"),
                       {"h": forged_hash, "id": target.id})
    db_session.commit()

    _, broken = verify()

    assert broken is not None
    assert broken.event_id == following.id
    assert "prev_hash" in broken.reason


def test_every_model_row_records_the_head_of_its_chain(trail, db_session):
    heads = dict(db_session.execute(text("SELECT name, audit_seq FROM registered_models")).all())
    assert heads == {"a": len(trail), "b": len(events(model_name="b"))}
    hashes = db_session.execute(text("SELECT audit_hash FROM registered_models WHERE name = 'a'")).scalar_one()
    assert hashes == trail[-1].hash


@pytest.mark.parametrize("removed", [1, 2], ids=["last event", "last two events"])
def test_verify_reports_events_removed_from_the_end_of_a_chain(trail, db_session, removed):
    bypass_trigger(db_session)
    for event in trail[-removed:]:
        db_session.execute(text("DELETE FROM audit_events WHERE id = :id"), {"id": event.id})
    db_session.commit()

    _, broken = verify()

    assert broken is not None
    assert broken.chain_id == db_session.execute(text("SELECT id FROM registered_models WHERE name = 'a'")).scalar_one()
    assert broken.seq == len(trail) - removed
    assert "removed from its end" in broken.reason


def test_the_next_event_continues_the_chain_from_the_recorded_head(trail, alice):
    # The head comes from the model row read under its lock (no query of the chain): the next event must
    # still link to the true last event, and the whole trail must verify.
    create_version(alice, "a", "s3://bucket/a2")
    transition_stage(alice, "a", 2, "Production", archive_existing_versions=True)
    after = events(model_name="a")
    assert [e.seq for e in after] == list(range(1, len(after) + 1))
    assert after[len(trail)].prev_hash == trail[-1].hash
    assert verify()[1] is None
