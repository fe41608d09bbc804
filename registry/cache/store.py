"""The one cache of a process: every entry is labelled, scoped and sized, and obeys one freshness rule.

An entry is stored only if its label (the hub's clock read *before* its data was read) is still current for
its scope when it is stored (``Hub.is_current``): no message about the scope arrived in between, and the
listener neither reset nor went down. A message drops every entry of its scope; a listener reset drops
everything; while the listener is down nothing is served or stored. So no entry can outlive the change
that made it wrong, however slow its reader was.

**Last known answers.** When the listener goes down, the entries held at that moment (each one current then)
are set aside as the *last known* ones instead of being dropped; a listener reconnect drops them all, a change
heard meanwhile those of its scope. (With the listener down, a change is heard only from this process's own
commit, announced just after it: a write that committed as the database went away. Its scope's answers are
wrong now; the others are not, and whether that commit shows the database answering after the loss is the
outage's evidence, ``db/availability.py``: it used to drop every last known answer, so one write racing the
outage ended stale answers for every model.) They are never served by ``get``: only ``last_known`` returns
them, and the response replay
(``responses.py``) asks for them only for a request that has just failed because the database is
unreachable (stale-while-unavailable, marked as stale; the README's "Operating" section gives the reasoning).

Memory is bounded in bytes (``max_bytes``), not entries: an entry's ``size`` is what its owner says it
costs (a rendered body counts its bytes), and the oldest entries are evicted to make room. An entry larger
than an eighth of the budget is not cached at all.

Lookups (hit or miss, by the entry's kind: the first element of its key), evictions, bytes and entries are
exported as metrics (``telemetry/metrics.py``).
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Hashable

from ..telemetry import metrics
from .hub import Hub, Label, Scope

# What an entry costs beyond its payload's own bytes: its key, the entry object and its index slots.
ENTRY_OVERHEAD = 400


@dataclass(frozen=True, slots=True)
class Entry:
    scope: Scope
    label: Label
    payload: Any
    size: int


class Store:
    def __init__(self, hub: Hub, max_bytes: int) -> None:
        self.hub = hub
        self.max_bytes = max_bytes
        self.bytes = 0
        self.evictions = 0
        self._lock = threading.Lock()
        # Oldest first; an OrderedDict evicts its oldest in O(1) (a plain dict's first item gets slower to
        # reach as deletions pile up at its front).
        self._entries: OrderedDict[Hashable, Entry] = OrderedDict()
        # Scope -> the keys of its entries (a dict as an ordered set: removal is O(1) when one scope has many).
        self._by_scope: dict[Scope, dict[Hashable, None]] = {}
        # The entries held when the listener last went down (and their keys by scope), and when that was
        # (time.monotonic()).
        self._last_known: dict[Hashable, Entry] = {}
        self._last_known_by_scope: dict[Scope, dict[Hashable, None]] = {}
        self.last_known_since: float | None = None
        hub.on_change(self._on_change)

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable) -> Entry | None:
        entry = self._entries.get(key)
        if entry is None or not self.hub.is_current(entry.scope, entry.label):
            metrics.count_cache_lookup(_kind(key), "miss")
            return None
        metrics.count_cache_lookup(_kind(key), "hit")
        return entry

    def last_known(self, key: Hashable) -> Entry | None:
        """The entry held under ``key`` when the listener went down, while it is still down; else None."""
        if self.hub.healthy:
            return None
        return self._last_known.get(key)

    def forget_last_known(self) -> None:
        with self._lock:
            self._forget_last_known()

    def _forget_last_known(self) -> None:
        self._last_known, self._last_known_by_scope, self.last_known_since = {}, {}, None

    def put(self, key: Hashable, scope: Scope, label: Label, payload: Any, size: int) -> bool:
        """Keep ``payload`` (read after ``label`` was taken) unless its scope changed since; True if kept."""
        size += ENTRY_OVERHEAD
        if size > self.max_bytes // 8:
            return False
        with self._lock:
            if not self.hub.is_current(scope, label):
                return False
            self._remove(key)
            while self._entries and self.bytes + size > self.max_bytes:
                old_key, old = self._entries.popitem(last=False)
                self._unindex(old_key, old)
                self.evictions += 1
                metrics.CACHE_EVICTIONS.inc()
            self._entries[key] = Entry(scope, label, payload, size)
            self._by_scope.setdefault(scope, {})[key] = None
            self.bytes += size
            self._report()
            return True

    def discard(self, key: Hashable) -> None:
        with self._lock:
            self._remove(key)
            self._report()

    def _report(self) -> None:
        metrics.CACHE_BYTES.set(self.bytes)
        metrics.CACHE_ENTRIES.set(len(self._entries))

    def _remove(self, key: Hashable) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._unindex(key, entry)

    def _unindex(self, key: Hashable, entry: Entry) -> None:
        self.bytes -= entry.size
        keys = self._by_scope.get(entry.scope)
        if keys is not None:
            keys.pop(key, None)
            if not keys:
                del self._by_scope[entry.scope]

    def _on_change(self, scope: Scope | None) -> None:
        with self._lock:
            if scope is None:
                if not self.hub.healthy and self._entries:  # the listener just went down
                    self._last_known, self._last_known_by_scope = self._entries, self._by_scope
                    self.last_known_since = time.monotonic()
                    self._entries, self._by_scope = OrderedDict(), {}
                else:
                    self._entries.clear()
                    self._by_scope.clear()
                    if self.hub.healthy:
                        self._forget_last_known()
                self.bytes = 0
                self._report()
                return
            # A change was heard: what was known of its scope is wrong now (the others: see the docstring).
            for key in self._last_known_by_scope.pop(scope, ()):
                self._last_known.pop(key, None)
            for key in self._by_scope.pop(scope, ()):
                entry = self._entries.pop(key, None)
                if entry is not None:
                    self.bytes -= entry.size
            self._report()


class LastKnown:
    """The store's last known entries seen through ``get``, for lookups written against a store (remembered
    tokens and levels, ``access.py``): who may see a last known answer is decided by what was known with it."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.hub = store.hub

    def get(self, key: Hashable) -> Entry | None:
        return self.store.last_known(key)


def _kind(key: Hashable) -> str:
    """What an entry is, for the lookup metric: the first element of its key ("token", "level", or the
    endpoint of a replayed response); a fixed set, decided by the code."""
    if isinstance(key, tuple) and key and isinstance(key[0], str):
        return key[0]
    return "other"
