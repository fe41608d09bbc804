"""The one freshness rule (registry/cache), unit-tested without a database: the hub is driven by hand."""
from __future__ import annotations

from registry.cache.hub import GRANTS, TOKENS, Hub
from registry.cache.store import ENTRY_OVERHEAD, Store


def healthy_hub() -> Hub:
    hub = Hub("postgresql://unused")  # never listens: these tests play the listener
    hub.set_healthy(True)
    return hub


def model_change(hub: Hub, model_id: int, generation: int) -> None:
    hub.dispatch({"m": model_id, "g": generation})


def test_an_entry_read_before_no_change_is_kept_and_served():
    hub = healthy_hub()
    store = Store(hub, 1 << 20)
    label = hub.label()
    assert store.put("k", 7, label, "answer", 10)
    assert store.get("k").payload == "answer"


def test_an_entry_whose_model_changed_after_its_label_is_refused():
    hub = healthy_hub()
    store = Store(hub, 1 << 20)
    label = hub.label()
    model_change(hub, 7, 2)  # announced while the answer was being read
    assert not store.put("k", 7, label, "stale", 10)
    assert store.get("k") is None


def test_a_change_of_another_model_does_not_refuse_the_entry():
    hub = healthy_hub()
    store = Store(hub, 1 << 20)
    label = hub.label()
    model_change(hub, 8, 2)
    assert store.put("k", 7, label, "answer", 10)


def test_an_entry_read_across_a_listener_reconnect_is_refused():
    """Notifications sent while the listener was away are lost: nothing read before a reconnect is kept,
    even when no message about its model arrived (finding 2 of the issue)."""
    hub = healthy_hub()
    store = Store(hub, 1 << 20)
    label = hub.label()
    hub.set_healthy(False)
    hub.set_healthy(True)
    assert not store.put("k", 7, label, "maybe stale", 10)
    assert store.get("k") is None


def test_nothing_is_kept_or_served_while_the_listener_is_down():
    hub = healthy_hub()
    store = Store(hub, 1 << 20)
    assert store.put("k", 7, hub.label(), "answer", 10)
    hub.set_healthy(False)
    assert store.get("k") is None
    assert not store.put("k2", 7, hub.label(), "answer", 10)


def test_a_message_drops_its_scope_only():
    hub = healthy_hub()
    store = Store(hub, 1 << 20)
    label = hub.label()
    for key, scope in (("a", 7), ("b", 7), ("c", 8), ("t", TOKENS), ("g", GRANTS)):
        assert store.put(key, scope, label, key, 10)
    model_change(hub, 7, 3)
    assert [k for k in "abctg" if store.get(k) is not None] == ["c", "t", "g"]
    hub.dispatch({"grants": 1})
    assert [k for k in "abctg" if store.get(k) is not None] == ["c", "t"]
    hub.dispatch({"tokens": 1})
    assert [k for k in "abctg" if store.get(k) is not None] == ["c"]
    assert store.bytes == 10 + ENTRY_OVERHEAD


def test_a_reset_drops_everything():
    hub = healthy_hub()
    store = Store(hub, 1 << 20)
    assert store.put("k", 7, hub.label(), "answer", 10)
    hub.set_healthy(False)
    hub.set_healthy(True)
    assert store.get("k") is None and len(store) == 0 and store.bytes == 0


def test_the_cache_is_bounded_in_bytes_and_evicts_the_oldest_first():
    hub = healthy_hub()
    budget = 100 * (1000 + ENTRY_OVERHEAD)
    store = Store(hub, budget)
    for i in range(1000):
        store.put(("k", i), i, hub.label(), b"x" * 1000, 1000)
        assert store.bytes <= budget
    assert store.get(("k", 999)) is not None
    assert store.get(("k", 0)) is None
    assert len(store) == 100
    assert store.evictions == 900


def test_an_entry_larger_than_an_eighth_of_the_budget_is_not_cached():
    hub = healthy_hub()
    store = Store(hub, 80_000)
    assert not store.put("big", 7, hub.label(), b"x" * 10_000, 10_000)
    assert store.put("small", 7, hub.label(), b"x" * 1000, 1000)


def test_replacing_a_key_keeps_the_byte_count_exact():
    hub = healthy_hub()
    store = Store(hub, 1 << 20)
    store.put("k", 7, hub.label(), "a", 100)
    store.put("k", 7, hub.label(), "b", 300)
    assert store.bytes == 300 + ENTRY_OVERHEAD and store.get("k").payload == "b"


def test_a_waiter_is_woken_by_a_reset_that_happened_after_its_label():
    hub = healthy_hub()
    label = hub.label()
    hub.set_healthy(False)
    hub.set_healthy(True)
    assert hub.wait(7, 1, timeout=5, label=label) is True


def test_entries_held_when_the_listener_goes_down_are_the_last_known_until_it_reconnects():
    hub = healthy_hub()
    store = Store(hub, 1 << 20)
    assert store.put("k", 7, hub.label(), "answer", 10)
    assert store.last_known("k") is None  # while the listener is up, nothing is "last known": get serves
    hub.set_healthy(False)
    assert store.get("k") is None  # never served as fresh
    assert store.last_known("k").payload == "answer"
    assert store.last_known_since is not None
    assert not store.put("k2", 7, hub.label(), "read while down", 10)
    hub.set_healthy(True)
    assert store.last_known("k") is None and store.get("k") is None


def test_a_change_heard_while_the_listener_is_down_drops_the_last_known_answers_of_its_scope():
    # The writing process hears its own commit even without a listener (one that committed as the database
    # went away): that model's answers are wrong now, the others' are not. Whether the commit shows the
    # database answering after the loss is the outage's evidence (db/availability.py), not the store's.
    hub = healthy_hub()
    store = Store(hub, 1 << 20)
    assert store.put("k", 7, hub.label(), "answer", 10)
    assert store.put("j", 8, hub.label(), "other answer", 10)
    hub.set_healthy(False)
    model_change(hub, 8, 3)
    assert store.last_known("j") is None
    assert store.last_known("k").payload == "answer"
    hub.set_healthy(True)
    assert store.last_known("k") is None and store.last_known_since is None


def test_hearing_a_change_again_drops_nothing_read_since_it_was_first_heard():
    """The writing process announces its commit at once and hears it again from PostgreSQL; an older
    generation may also arrive after a newer one. Neither is news: what was read since stays current."""
    hub = healthy_hub()
    store = Store(hub, 1 << 20)
    model_change(hub, 7, 3)
    label = hub.label()
    assert store.put("k", 7, label, "answer at generation 3", 10)
    model_change(hub, 7, 3)  # the echo
    model_change(hub, 7, 2)  # late
    assert store.get("k").payload == "answer at generation 3"
    assert hub.is_current(7, label)
    model_change(hub, 7, 4)
    assert store.get("k") is None
