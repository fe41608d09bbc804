"""Change notifications: what every process has heard of, and the clock that entries are labelled with.

Writers announce through the unit of work (``db/unit_of_work.py``): at commit, one statement bumps each changed
model's ``generation`` and NOTIFYs; PostgreSQL delivers the notification to every listening process, on every
host, when (and only if) the transaction commits. The writing process is told at once, after its own commit.

A message names one **scope**: a model id (its new generation), or ``GRANTS`` / ``TOKENS`` (a permission or
token, or a user's password, admin role or existence, changed). The hub numbers every message it dispatches
(``sequence``) and remembers, per scope, the number of the last one. With ``epoch`` (bumped whenever the
listener connects or disconnects, since notifications may have been missed around either), that gives the
**label** of a read: ``label()`` taken *before* the data is read. ``is_current(scope, label)`` is true while the listener is healthy, has not reset,
and no message about ``scope`` arrived since: exactly when an answer read after the label is still the truth.
"""
from __future__ import annotations

import json
import logging
import os
import select
import sys
import threading
import time
from dataclasses import dataclass
from typing import Callable, Union

import psycopg2
import psycopg2.extensions

from ..telemetry import metrics

log = logging.getLogger("registry.cache")

CHANNEL = "registry_changes"
DELETED = 2**62  # generation announced for a deleted model: newer than anything a waiter has seen
GRANTS = "grants"
TOKENS = "tokens"
Scope = Union[int, str]  # a model id, GRANTS or TOKENS


@dataclass(frozen=True, slots=True)
class Label:
    """When a read began, on the hub's clock: the listener epoch and the last message number."""

    epoch: int
    sequence: int


def encode(scope: Scope, generation: int | None = None) -> str:
    """The NOTIFY payload of a change (the unit of work writes model messages in SQL, in the same shape)."""
    message = {"m": scope, "g": generation} if isinstance(scope, int) else {scope: 1}
    return json.dumps(message, separators=(",", ":"))


def _scope_of(message: dict) -> tuple[Scope, int | None] | None:
    if "m" in message:
        return int(message["m"]), int(message["g"])
    for scope in (GRANTS, TOKENS):
        if scope in message:
            return scope, None
    return None


class Hub:
    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.healthy = False
        self.epoch = 0
        self.sequence = 0
        self._last: dict[Scope, int] = {}
        self._generations: dict[int, int] = {}
        self._lock = threading.Lock()
        # Model id -> [the condition its long-polls wait on, how many wait]: a change wakes only the waiters of
        # its model (with 10,000 waiters over 1,000 models, not all 10,000), a reset wakes everyone.
        self._waiting: dict[int, list] = {}
        # Waiters on any change (watch streams, the events feed: ``wait_any``), few per process.
        self._condition = threading.Condition(self._lock)
        self._callbacks: list[Callable[[Scope | None], None]] = []
        self._listener: Listener | None = None
        self._listener_pid: int | None = None
        self._start_lock = threading.Lock()
        self.closing = False  # the process is shutting down: long-polls answer now, nobody waits any more

    # --- the clock -----------------------------------------------------------------------------------------

    def label(self) -> Label:
        return Label(self.epoch, self.sequence)

    def is_current(self, scope: Scope, label: Label) -> bool:
        return self.healthy and label.epoch == self.epoch and self._last.get(scope, 0) <= label.sequence

    def generation(self, model_id: int) -> int:
        """The newest generation heard of for the model (-1: nothing heard)."""
        return self._generations.get(model_id, -1)

    # --- receiving -----------------------------------------------------------------------------------------

    def on_change(self, callback: Callable[[Scope | None], None]) -> None:
        """``callback(scope)`` after each message; ``callback(None)`` means "anything may have changed"."""
        self._callbacks.append(callback)

    def dispatch(self, message: dict | None) -> None:
        # Order matters: number the message first (labels taken before it stop being current), then let the
        # caches drop what it invalidates, and only then wake waiters, so a woken waiter always reads afresh.
        parsed = None if message is None else _scope_of(message)
        if message is not None and parsed is None:
            return  # not ours
        with self._lock:
            if parsed is not None and parsed[1] is not None and parsed[1] <= self._generations.get(parsed[0], -1):
                # Heard already: the writing process announces its own commit at once and then hears it again
                # from PostgreSQL (and an older generation arriving late is contained in a newer one). Nothing
                # read since the first hearing can be stale because of it, so nothing is dropped again: the
                # woken long-polls keep sharing one read instead of reading again after the echo.
                return
            self.sequence += 1
            if parsed is not None:
                scope, generation = parsed
                self._last[scope] = self.sequence
                if generation is not None:
                    self._generations[scope] = generation
        for callback in self._callbacks:
            callback(None if parsed is None else parsed[0])
        with self._lock:
            if parsed is None:
                for condition, _count in self._waiting.values():
                    condition.notify_all()
            elif (waiting := self._waiting.get(parsed[0])) is not None:
                waiting[0].notify_all()
            self._condition.notify_all()

    def set_healthy(self, healthy: bool) -> None:
        if healthy == self.healthy:
            return
        with self._lock:
            self.epoch += 1  # before ``healthy`` flips: a label taken on either side of it is never current
            self.healthy = healthy
        self.dispatch(None)
        metrics.LISTENER_UP.set(1 if healthy else 0)
        (metrics.LISTENER_CONNECTS if healthy else metrics.LISTENER_DISCONNECTS).inc()

    def wait(self, model_id: int, seen_generation: int, timeout: float, label: Label | None = None) -> bool:
        """Block until a generation newer than ``seen_generation`` is heard of for the model, or the listener
        resets (since ``label``, taken before the caller read its answer), or ``timeout`` passes. Returns True
        when the caller should read again."""
        deadline = time.monotonic() + timeout
        with self._lock:
            waiting = self._waiting.get(model_id)
            if waiting is None:
                waiting = self._waiting[model_id] = [threading.Condition(self._lock), 0]
            waiting[1] += 1
            try:
                while self._generations.get(model_id, -1) <= seen_generation:
                    if self.closing:
                        return False  # shutting down: answer with what the caller has, at once
                    if label is not None and label.epoch != self.epoch:
                        return True
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    waiting[0].wait(remaining)
                    if not self.healthy:
                        return True
                return True
            finally:
                waiting[1] -= 1
                if waiting[1] == 0:
                    del self._waiting[model_id]

    def close(self) -> None:
        """The process is shutting down (SIGTERM, ``deploy/gunicorn.conf.py``): wake every long-poll so it
        answers now with its current answer, let no new one wait, and stop the listener."""
        with self._lock:
            self.closing = True
            for condition, _count in self._waiting.values():
                condition.notify_all()
            self._condition.notify_all()

    def changes_since(self, scopes, label: Label) -> tuple[Label, set | None]:
        """Atomically: a new label, and which of ``scopes`` had a message after ``label`` (None: all of them
        may have changed, as the listener reset or is down). Taken under the lock, so a message is either
        before the new label and reported here, or after it and wakes the next ``wait_any``."""
        with self._condition:
            now = Label(self.epoch, self.sequence)
            if label.epoch != self.epoch or not self.healthy:
                return now, None
            return now, {scope for scope in scopes if self._last.get(scope, 0) > label.sequence}

    def wait_any(self, scopes, label: Label, timeout: float, *, any_after: int | None = None) -> bool:
        """Block until a message about one of ``scopes`` arrives after ``label`` (or any message numbered
        after ``any_after``), or the listener resets, or ``timeout`` passes; True when something may have
        changed. The many-scope form of ``wait``, for streams of several answers (``services/watching.py``)."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while True:
                if self.closing:
                    return False  # shutting down: the caller answers (or ends its stream) now
                if label.epoch != self.epoch or (any_after is not None and self.sequence > any_after):
                    return True
                if any(self._last.get(scope, 0) > label.sequence for scope in scopes):
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._condition.wait(remaining)

    def ensure_listening(self) -> None:
        """Start this process's listener once; after a fork the child starts its own."""
        pid = os.getpid()
        if self._listener_pid == pid and self._listener is not None and self._listener.running:
            return
        with self._start_lock:
            if self._listener_pid == pid and self._listener is not None and self._listener.running:
                return
            self.set_healthy(False)
            self._listener = Listener(self)
            self._listener_pid = pid
            self._listener.start()


class Listener(threading.Thread):
    """LISTENs on one dedicated connection and feeds the hub; reconnects with backoff."""

    def __init__(self, hub: Hub) -> None:
        super().__init__(name="registry-listener", daemon=True)
        self.hub = hub
        self.failing_since: float | None = None  # one warning per outage, not one per retry
        # True until run() returns. Every request asks (ensure_listening); Thread.is_alive() would answer the
        # same, but under gevent it yields to other greenlets on each call (a non-blocking lock acquire), a
        # hidden switch per request: the worker's own turn-taking (registry/workers.py) is the one place.
        self.running = True

    def run(self) -> None:
        try:
            self._run()
        finally:
            self.running = False

    def _run(self) -> None:
        backoff = 0.2
        while not self.hub.closing:
            try:
                self._listen()
                backoff = 0.2
            except psycopg2.OperationalError as exc:
                self.hub.set_healthy(False)
                if sys.is_finalizing() or self.hub.closing:
                    return
                if "does not exist" in str(exc):
                    log.warning("change listener stopping: %s", exc)
                    return
                self._failed("disconnected", exc)
            except Exception as exc:  # anything else: degrade to uncached reads, then retry
                self.hub.set_healthy(False)
                self._failed("failed", exc)
            time.sleep(backoff)
            backoff = min(backoff * 2, 5.0)

    def _failed(self, what: str, exc: Exception) -> None:
        if self.failing_since is None:
            self.failing_since = time.monotonic()
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            log.warning("change listener %s (%s); caches bypassed, reconnecting", what, first_line)

    def _connected(self) -> None:
        if self.failing_since is not None:
            log.warning("change listener reconnected after %.1fs", time.monotonic() - self.failing_since)
            self.failing_since = None

    def _listen(self) -> None:
        connection = psycopg2.connect(self.hub.dsn, application_name="registry-listener")
        try:
            connection.set_isolation_level(psycopg2.extensions.ISOLATION_LEVEL_AUTOCOMMIT)
            with connection.cursor() as cursor:
                cursor.execute(f"LISTEN {CHANNEL}")
            self.hub.set_healthy(True)
            self._connected()
            while not self.hub.closing:
                ready, _, _ = select.select([connection], [], [], 5.0)
                if not ready:
                    # Idle: prove the connection is alive (a silent half-open socket would hide changes).
                    with connection.cursor() as cursor:
                        cursor.execute("SELECT 1")
                connection.poll()
                while connection.notifies:
                    note = connection.notifies.pop(0)
                    try:
                        message = json.loads(note.payload)
                    except ValueError:
                        continue
                    if isinstance(message, dict):
                        self.hub.dispatch(message)
        finally:
            self.hub.set_healthy(False)
            connection.close()
