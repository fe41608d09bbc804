"""Change notifications: PostgreSQL NOTIFY on commit, one LISTEN connection per process.

Writers call ``publish_*`` inside their transaction; PostgreSQL delivers the notification to every listening
process, on every host, when (and only if) the transaction commits. The writing process is told at once,
after its own commit, through a session hook.

Each process keeps one ``Hub`` per database (per app): the newest generation it has heard of per model, the
long-poll waiters, and the callbacks that drop cached answers. Its ``Listener`` thread holds one dedicated
connection. While the listener is not connected, ``healthy`` is False and caches are bypassed, so a missed
notification can never leave a stale answer in place.
"""
from __future__ import annotations

import json
import logging
import os
import select
import sys
import threading
import time
from typing import Callable

import psycopg2
import psycopg2.extensions
from flask import current_app, has_app_context
from sqlalchemy import event, func, select as sa_select
from sqlalchemy.orm import Session

log = logging.getLogger("registry.changes")

CHANNEL = "registry_changes"
DELETED = 2**62  # generation recorded for a deleted model: newer than anything a waiter has seen
_PENDING_KEY = "registry_pending_changes"
_CHANGED_KEY = "registry_changed_models"
_HUB_KEY = "registry_hub"


# --- publishing (inside the writer's transaction) ----------------------------------------------------------


def _publish(session: Session, message: dict) -> None:
    session.execute(sa_select(func.pg_notify(CHANNEL, json.dumps(message, separators=(",", ":")))))
    session.info.setdefault(_PENDING_KEY, []).append(message)


def model_changed(session: Session, model_id: int) -> None:
    """Note that this transaction changes the model. Every audited change calls this (audit.record), so no
    write can forget it; on commit the model gets a new generation and every process hears of it (the
    audit trail's commit writer bumps and notifies in the same statement as it writes the events)."""
    session.info.setdefault(_CHANGED_KEY, set()).add(model_id)


def pop_changed(session: Session) -> set[int]:
    return session.info.pop(_CHANGED_KEY, None) or set()


def announce(session: Session, generations: dict[int, int], changed: set[int]) -> None:
    """Record what this transaction announced (``generations``: the new generation of each changed model still
    there), for delivery to this process after the commit; models deleted in it are announced as deleted."""
    pending = session.info.setdefault(_PENDING_KEY, [])
    pending.extend({"m": model_id, "g": generation} for model_id, generation in generations.items())
    for model_id in sorted(changed - generations.keys()):
        _publish(session, {"m": model_id, "g": DELETED})


def publish_grants(session: Session) -> None:
    _publish(session, {"grants": 1})


def publish_tokens(session: Session) -> None:
    _publish(session, {"tokens": 1})


@event.listens_for(Session, "after_commit")
def _deliver_locally(session: Session) -> None:
    pending = session.info.pop(_PENDING_KEY, None)
    if pending and has_app_context():
        local = current_app.extensions.get(_HUB_KEY)
        if local is not None:
            for message in pending:
                local.dispatch(message)


@event.listens_for(Session, "after_rollback")
def _discard(session: Session) -> None:
    session.info.pop(_PENDING_KEY, None)
    session.info.pop(_CHANGED_KEY, None)


# --- receiving ---------------------------------------------------------------------------------------------


class Hub:
    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.healthy = False
        # Counts listener connects and disconnects: notifications may have been missed around each one.
        self.resets = 0
        self._condition = threading.Condition()
        self._generations: dict[int, int] = {}
        self._callbacks: list[Callable[[dict | None], None]] = []
        self._listener: Listener | None = None
        self._listener_pid: int | None = None
        self._start_lock = threading.Lock()

    def on_change(self, callback: Callable[[dict | None], None]) -> None:
        """``callback(message)`` for each change; ``callback(None)`` means "anything may have changed"."""
        self._callbacks.append(callback)

    def generation(self, model_id: int) -> int:
        """The newest generation heard of for the model (-1: nothing heard)."""
        return self._generations.get(model_id, -1)

    def dispatch(self, message: dict | None) -> None:
        # Order matters: record the new generation first (caches refuse older answers from then on), then
        # drop cached answers, and only then wake waiters, so a woken waiter always reads afresh.
        if message is not None and "m" in message:
            model_id, generation = int(message["m"]), int(message["g"])
            with self._condition:
                if generation > self._generations.get(model_id, -1):
                    self._generations[model_id] = generation
        for callback in self._callbacks:
            callback(message)
        with self._condition:
            self._condition.notify_all()

    def set_healthy(self, healthy: bool) -> None:
        changed = healthy != self.healthy
        self.healthy = healthy
        if changed:
            with self._condition:
                self.resets += 1
            # Going down or coming back: notifications may have been missed; forget everything cached.
            self.dispatch(None)

    def wait(self, model_id: int, seen_generation: int, timeout: float, resets: int | None = None) -> bool:
        """Block until a generation newer than ``seen_generation`` is heard of for the model, or the listener
        resets, or ``timeout`` passes. Returns True when the caller should read again.

        ``resets``: the value of ``self.resets`` taken before the caller read its answer. If the listener has
        (re)connected since, a change may have been committed while nobody listened, so read again now."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while self._generations.get(model_id, -1) <= seen_generation:
                if resets is not None and resets != self.resets:
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._condition.wait(remaining)
                if not self.healthy:
                    return True
            return True

    def ensure_listening(self) -> None:
        """Start this process's listener once; after a fork the child starts its own."""
        pid = os.getpid()
        if self._listener_pid == pid and self._listener is not None and self._listener.is_alive():
            return
        with self._start_lock:
            if self._listener_pid == pid and self._listener is not None and self._listener.is_alive():
                return
            self.healthy = False
            self._listener = Listener(self)
            self._listener_pid = pid
            self._listener.start()


def hub_for(app) -> Hub:
    hub = app.extensions.get(_HUB_KEY)
    if hub is None:
        url = app.config["SQLALCHEMY_DATABASE_URI"].replace("postgresql+psycopg2://", "postgresql://", 1)
        hub = app.extensions[_HUB_KEY] = Hub(url)
    return hub


class Listener(threading.Thread):
    """LISTENs on one dedicated connection and feeds the hub; reconnects with backoff."""

    def __init__(self, hub: Hub) -> None:
        super().__init__(name="registry-listener", daemon=True)
        self.hub = hub

    def run(self) -> None:
        backoff = 0.2
        while True:
            try:
                self._listen()
                backoff = 0.2
            except psycopg2.OperationalError as exc:
                self.hub.set_healthy(False)
                if sys.is_finalizing():
                    return
                if "does not exist" in str(exc):
                    log.warning("change listener stopping: %s", exc)
                    return
                log.warning("change listener disconnected (%s); retrying in %.1fs", exc, backoff)
            except Exception as exc:  # anything else: degrade to uncached reads, then retry
                self.hub.set_healthy(False)
                log.warning("change listener failed (%s); retrying in %.1fs", exc, backoff)
            time.sleep(backoff)
            backoff = min(backoff * 2, 5.0)

    def _listen(self) -> None:
        connection = psycopg2.connect(self.hub.dsn, application_name="registry-listener")
        try:
            connection.set_isolation_level(psycopg2.extensions.ISOLATION_LEVEL_AUTOCOMMIT)
            with connection.cursor() as cursor:
                cursor.execute(f"LISTEN {CHANNEL}")
            self.hub.set_healthy(True)
            while True:
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
                    self.hub.dispatch(message)
        finally:
            self.hub.set_healthy(False)
            connection.close()
