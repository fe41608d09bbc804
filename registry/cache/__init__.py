"""Per-process caches, kept fresh by one rule, below the services.

**The freshness rule.** Every cached thing — a serving answer, a rendered response, a token's owner, a
principal's level — is an entry in one ``Store``, with a *scope* (the model it is about, or ``GRANTS`` /
``TOKENS``) and a *label*: the ``Hub``'s clock (listener epoch, last message number) read *before* its data
was read. An entry is stored only if, at that moment, no change of its scope has been heard of since the
label and the change listener has not reset (``Hub.is_current``); any later change of the scope drops it,
and a listener reset or outage drops and bypasses everything. Nothing else decides freshness.

* ``hub.py``     the clock: NOTIFY messages (one per committed change), the LISTEN thread, generations and
                 the waits of long-polls and watch streams;
* ``store.py``   the entries: the rule above, a byte budget, eviction of the oldest, and the *last known*
                 entries set aside when the listener goes down (served only as marked-stale answers while the
                 database is unreachable: ``api/replay.py``);
* ``flights.py`` one database read for many requests that miss the same entry at once (woken long-polls);
* ``waiters.py`` how many long-polls and watch streams a worker lets wait (its socket budget) and the answer
                 beyond it;
* ``access.py``  token (or user and password) -> actor, principal x model -> level, principal -> standing
                 (registry-wide level and vetoed models), as entries;
* ``responses.py`` WSGI replay of rendered read responses, keyed by the *parsed* request.

Changes are announced by the unit of work (``db/unit_of_work.py``) when a transaction commits.
"""
from __future__ import annotations

from dataclasses import dataclass

from .flights import Flights
from .hub import Hub
from .store import Store
from .waiters import WaiterBudget


@dataclass
class Caches:
    """One app's per-process cache state."""

    hub: Hub
    store: Store
    # Long-polls waiting now, and how many may (waiters.py); a limit of 0 turns long-polling off.
    waiters: WaiterBudget
    # Reads of one answer that run at once share one database read (flights.py).
    flights: Flights

    @classmethod
    def create(cls, dsn: str, *, max_bytes: int, max_waiters: int) -> "Caches":
        hub = Hub(dsn)
        return cls(hub, Store(hub, max_bytes), WaiterBudget(max_waiters), Flights(hub))
