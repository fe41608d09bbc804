"""One database read for many requests that miss the same cache entry at once.

When a change is announced, every long-poll waiting on the model wakes and reads its answer again, and the
change has just dropped the cached answer: without this, 5,000 waiters on one model would send PostgreSQL
5,000 identical statements. Instead the first of them reads (and stores the answer in the cache) while the
others wait for that read's result: one read per key per process.

A request may take a read in flight only if the cache could have given it that read's answer: the read's
label (the hub's clock, taken before it began) is still current for the scope the request expects (no message
about that model since, no listener reset; ``Hub.is_current``), and the answer turns out to be about that
scope. Otherwise, or if the shared read failed, the request reads on its own. Requests that expect no
particular scope (a first read of a name) always read on their own, as before.
"""
from __future__ import annotations

import threading
from typing import Callable, Hashable, TypeVar

from .hub import Hub, Label, Scope

R = TypeVar("R")


class _Flight:
    __slots__ = ("label", "done", "result", "failed", "sharers")

    def __init__(self, label: Label) -> None:
        self.label = label
        self.done = threading.Event()
        self.result = None
        self.failed = False
        self.sharers = 0  # requests waiting for this read besides its own


class Flights:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self._lock = threading.Lock()
        self._flights: dict[Hashable, _Flight] = {}

    def sharers(self, key: Hashable) -> int:
        """How many requests wait for the read of ``key`` now in flight (0: none in flight)."""
        flight = self._flights.get(key)
        return 0 if flight is None else flight.sharers

    def share(self, key: Hashable, scope: Scope, read: Callable[[Label], R], scope_of: Callable[[R], Scope]) -> R:
        """``read(label)`` (which must take its data after ``label``), or the result of one already running for
        ``key`` whose label is still current for ``scope`` and whose result is about ``scope``."""
        with self._lock:
            flight = self._flights.get(key)
            leading = flight is None or not self.hub.is_current(scope, flight.label)
            if leading:
                flight = self._flights[key] = _Flight(self.hub.label())
            else:
                flight.sharers += 1
        if not leading:
            flight.done.wait()
            if not flight.failed and scope_of(flight.result) == scope:
                return flight.result
            return read(self.hub.label())
        try:
            flight.result = read(flight.label)
            return flight.result
        except BaseException:
            flight.failed = True
            raise
        finally:
            with self._lock:
                if self._flights.get(key) is flight:
                    del self._flights[key]
            flight.done.set()
