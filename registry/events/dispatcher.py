"""The dispatcher: threads that claim due deliveries, call receivers and settle the deliveries.

It runs inside every server worker (``REGISTRY_EVENTS_DISPATCHER=embedded``, the default, started by
``deploy/gunicorn.conf.py``) and as ``registry events dispatch``; any number of them share the work through
the database (``deliveries.py``). Each has ``REGISTRY_EVENTS_CONCURRENCY`` threads, one delivery in flight
each, and a listener on the ``registry_events`` channel that the outbox trigger notifies when a commit
created deliveries. A notification wakes one thread; a thread that found work wakes one more, so a burst
spreads over all of them while an idle dispatcher has one thread looking (every ``POLL_SECONDS``, for retries
coming due and notifications missed while the listener was down) and holds at most one pooled connection.
"""
from __future__ import annotations

import logging
import select
import threading
import time
from datetime import timezone

import psycopg2
import psycopg2.extensions

from ..telemetry import metrics
from . import databricks, mlflow, native, network
from .sealing import unseal
from .topics import mlflow_event
from .deliveries import Claimed, Outcome, claim, seconds_until_due, settle

log = logging.getLogger("registry.events")

CHANNEL = "registry_events"
POLL_SECONDS = 1.0


def attempt(claimed: Claimed, policy: network.Policy) -> Outcome:
    """Call the receiver once, in the webhook's dialect (no database access here)."""
    row = claimed.row
    if row.status != "ACTIVE":
        return Outcome(None, 0, None, f"the webhook is {row.status}", refused=True)
    try:
        request = _request(row)
    except network.Refused as error:
        return Outcome(None, 0, None, f"refused: {error}", refused=True)
    if request is None:  # the webhook's events changed since the delivery was queued
        return Outcome(None, 0, None, "the webhook no longer subscribes to this event", refused=True)
    return send(request, policy)[0]


def _request(row) -> network.Request | None:
    if row.dialect == "native":
        secrets = native.live_secrets(unseal(row.http_secret), unseal(row.previous_secret), row.previous_secret_until)
        return native.request(row.http_url, f"msg_{row.delivery_id}", native.body(row.action, native.data(row)),
                              secrets)
    if row.dialect == "mlflow":
        event = mlflow_event(list(row.subscribed), row.action)
        if event is None:
            return None
        return mlflow.request(row.http_url, row.delivery_id, event,
                              mlflow.data(event, row.model_name, row.version, row.details or {}, row.run_id),
                              unseal(row.http_secret))
    what = databricks.Occurrence(row.action, row.model_name, row.version, row.from_stage, row.to_stage,
                                 int(row.occurred_at.astimezone(timezone.utc).timestamp() * 1000), row.details or {})
    event = databricks.event_for(list(row.subscribed), what)
    if event is None:
        return None
    return databricks.request(row, databricks.payload(event, row.webhook_id, what), secret=unseal(row.http_secret),
                              authorization=unseal(row.http_authorization), job_token=unseal(row.job_access_token))


def send(request: network.Request, policy: network.Policy) -> tuple[Outcome, str | None]:
    """One attempt, as the log records it, and the answer's body (up to ``network.MAX_RESPONSE``)."""
    started = time.perf_counter()
    try:
        answer = network.post(request.url, request.body, request.headers, policy, verify_tls=request.verify_tls)
    except network.Refused as error:
        return Outcome(None, 0, None, f"refused: {error}", refused=True), None
    except OSError as error:
        elapsed = int((time.perf_counter() - started) * 1000)
        return Outcome(None, elapsed, None, f"{type(error).__name__}: {error}"), None
    error = None
    if 300 <= answer.status < 400:
        error = "redirects are not followed"
    outcome = Outcome(answer.status, answer.latency_ms, answer.excerpt, error, answer.retry_after)
    return outcome, answer.body.decode("utf-8", "replace")


class Dispatcher:
    """``start()`` / ``stop()``. Its threads work inside ``app``'s context (its engine, settings and keys); the
    listener has a psycopg2 connection of its own."""

    def __init__(self, app):
        from ..extensions import db

        settings = app.config["REGISTRY_SETTINGS"]
        self._app = app
        self._connect = lambda: db.engine.connect()
        self._dsn = settings.database_url.replace("postgresql+psycopg2://", "postgresql://", 1)
        self._policy = network.Policy.from_settings(settings)
        self._settings = settings
        self._stopping = threading.Event()
        self._wake = threading.Condition()
        self._rings = 0
        self._threads: list[threading.Thread] = []

    def start(self) -> "Dispatcher":
        for n in range(self._settings.events_concurrency):
            self._spawn(lambda poller=(n == 0): self._work(poller), f"registry-dispatch-{n}")
        self._spawn(self._listen, "registry-dispatch-listener")
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Let in-flight deliveries finish (their receivers' timeouts bound the wait)."""
        self._stopping.set()
        self._ring(everyone=True)
        for thread in self._threads:
            thread.join(timeout)

    def _spawn(self, target, name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _ring(self, everyone: bool = False) -> None:
        with self._wake:
            self._rings += 1
            if everyone:
                self._wake.notify_all()
            else:
                self._wake.notify()

    def run_once(self) -> float | None:
        """Claim, attempt and settle one due delivery and return None; when none is due, return how long to
        wait for the next (at most ``POLL_SECONDS``: a notification or another dispatcher may bring one)."""
        with self._connect() as conn:
            with conn.begin():
                claimed = claim(conn)
                if claimed is None:
                    due = seconds_until_due(conn)
                    return POLL_SECONDS if due is None else min(POLL_SECONDS, max(0.01, float(due)))
                outcome = attempt(claimed, self._policy)
                state = settle(conn, claimed, outcome, base_ms=self._settings.webhook_backoff_ms,
                               max_age_seconds=self._settings.webhook_max_age_seconds)
        metrics.WEBHOOK_ATTEMPTS.labels("retrying" if state == "pending" else state).inc()
        log.info("delivery %s: %s (%s)", claimed.id, state, outcome.status_code or outcome.error)
        return None

    def _work(self, poller: bool) -> None:
        with self._app.app_context():
            self._work_in_context(poller)

    def _work_in_context(self, poller: bool) -> None:
        while not self._stopping.is_set():
            seen = self._rings  # a ring after this is never missed: the wait below is skipped
            try:
                wait = self.run_once()
                if wait is None:
                    self._ring()  # there may be more: let one more thread help
                    continue
            except Exception:  # noqa: BLE001 - a database outage must not end the thread
                log.exception("dispatcher: claiming or settling a delivery failed; retrying")
                wait = POLL_SECONDS
            with self._wake:
                if self._rings == seen and not self._stopping.is_set():
                    # The others sleep until rung (a long timeout only guards against a lost ring).
                    self._wake.wait(wait if poller else 30 * POLL_SECONDS)

    def _listen(self) -> None:
        while not self._stopping.is_set():
            try:
                conn = psycopg2.connect(self._dsn, application_name="registry-dispatch")
            except psycopg2.Error:
                self._stopping.wait(POLL_SECONDS)
                continue
            try:
                conn.set_isolation_level(psycopg2.extensions.ISOLATION_LEVEL_AUTOCOMMIT)
                conn.cursor().execute(f"LISTEN {CHANNEL}")
                self._ring()  # deliveries may have been created while nobody listened
                while not self._stopping.is_set():
                    if select.select([conn], [], [], POLL_SECONDS) == ([], [], []):
                        continue
                    conn.poll()
                    if any(n.payload == "d" for n in conn.notifies):
                        self._ring()
                    conn.notifies.clear()
            except (psycopg2.Error, OSError):
                log.warning("dispatcher: lost the notification connection; reconnecting")
            finally:
                conn.close()


def for_app(app) -> Dispatcher:
    """A dispatcher on ``app``'s database and settings."""
    return Dispatcher(app)
