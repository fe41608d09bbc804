"""The audit hash: deterministic, sensitive to every field, insensitive to representation details."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from registry.audit import compute_hash

BASE = dict(
    chain_id=7,
    seq=3,
    occurred_at=datetime(2024, 5, 1, 12, 30, 45, 123456, tzinfo=timezone.utc),
    actor="alice",
    action="version.transitioned",
    model_id=7,
    model_name="fraud",
    version=2,
    run_id="run-1",
    from_stage="Staging",
    to_stage="Production",
    request_id=11,
    details={"archive_existing_versions": True, "comment": "ship it"},
    # Added with request ids (migration 0015): None hashes as if the field did not exist, so the pinned hashes
    # of events recorded before it still hold (test_hashes_of_known_events_never_change).
    correlation_id=None,
    prev_hash="a" * 64,
)

# One different value per field; some go to None, since "absent" must not collide with "present".
CHANGES = {
    "chain_id": 8,
    "seq": 4,
    "occurred_at": BASE["occurred_at"] + timedelta(microseconds=1),
    "actor": "bob",
    "action": "version.updated",
    "model_id": 8,
    "model_name": "fraud2",
    "version": None,
    "run_id": None,
    "from_stage": "None",
    "to_stage": "Archived",
    "request_id": None,
    "details": {"archive_existing_versions": False, "comment": "ship it"},
    "correlation_id": "req-1",
    "prev_hash": None,
}


def test_changes_cover_every_field():
    assert set(CHANGES) == set(BASE)


def test_hash_is_deterministic_sha256_hex():
    first = compute_hash(**BASE)
    assert first == compute_hash(**dict(BASE))
    assert len(first) == 64 and int(first, 16) >= 0


@pytest.mark.parametrize("field", list(CHANGES))
def test_hash_changes_when_a_single_field_changes(field):
    assert compute_hash(**{**BASE, field: CHANGES[field]}) != compute_hash(**BASE)


def test_hash_ignores_key_order_in_details():
    reordered = {"comment": "ship it", "archive_existing_versions": True}
    assert list(reordered) != list(BASE["details"])
    assert compute_hash(**{**BASE, "details": reordered}) == compute_hash(**BASE)


def test_hash_ignores_key_order_in_nested_details():
    one = {"outer": {"a": 1, "b": [1, {"x": 1, "y": 2}]}, "z": None}
    two = {"z": None, "outer": {"b": [1, {"y": 2, "x": 1}], "a": 1}}
    assert compute_hash(**{**BASE, "details": one}) == compute_hash(**{**BASE, "details": two})


@pytest.mark.parametrize("offset_hours", [2, -5, 14])
def test_equivalent_instants_in_other_timezones_hash_the_same(offset_hours):
    zone = timezone(timedelta(hours=offset_hours))
    same_instant = BASE["occurred_at"].astimezone(zone)
    assert same_instant.utcoffset() != timedelta(0)
    assert compute_hash(**{**BASE, "occurred_at": same_instant}) == compute_hash(**BASE)


def test_same_wall_clock_in_another_timezone_hashes_differently():
    shifted = BASE["occurred_at"].replace(tzinfo=timezone(timedelta(hours=2)))
    assert compute_hash(**{**BASE, "occurred_at": shifted}) != compute_hash(**BASE)


def test_unicode_fields_hash_deterministically():
    event = {**BASE, "model_name": "модель", "details": {"note": "ü 模型"}}
    assert compute_hash(**event) == compute_hash(**dict(event))
    assert compute_hash(**event) != compute_hash(**{**event, "model_name": "модел"})


# Hashes of recorded events must verify forever: these were computed before the event's fields were listed in
# one place (audit.EVENT_FIELDS); any change to what is hashed, or how, breaks them.
PINNED = {
    "base": "c0ff10e7e91398f684e534aa9abc259bd4a36c7941916aeb01d51240d5b00fc9",
    "registry-wide, empty": "6b44cad5fc40ab162e4f7003e185591bede922f79b3baeb6387848a1814b5d0c",
}


def test_hashes_of_known_events_never_change():
    registry_wide = {**BASE, "version": None, "details": {}, "prev_hash": None, "model_id": None,
                     "model_name": None, "chain_id": 0}
    assert compute_hash(**BASE) == PINNED["base"]
    assert compute_hash(**registry_wide) == PINNED["registry-wide, empty"]


def test_a_request_id_is_hashed_when_present():
    assert compute_hash(**{**BASE, "correlation_id": "req-1"}) != compute_hash(**{**BASE, "correlation_id": "req-2"})
    assert compute_hash(**{**BASE, "correlation_id": "req-1"}) != PINNED["base"]


def test_the_one_list_of_event_fields_is_the_audit_table_and_the_hash():
    from registry.audit import EVENT_FIELDS, HASHED_FIELDS
    from registry.orm import AuditEvent

    assert [name for name, _ in EVENT_FIELDS] == [c for c in AuditEvent.__table__.columns.keys() if c != "id"]
    assert set(HASHED_FIELDS) == set(BASE)


@pytest.mark.parametrize("change", ["missing", "extra"])
def test_hash_refuses_an_incomplete_or_unknown_field(change):
    event = {k: v for k, v in BASE.items() if k != "seq"} if change == "missing" else {**BASE, "sequence": 1}
    with pytest.raises(TypeError):
        compute_hash(**event)
