"""When the database cannot answer now but may later: which failures those are, and one log line per outage.

Three kinds of failure are the database's state, not a bug of ours nor a fault of the request, and are
answered ``503`` with ``Retry-After`` (``api/errors.py``):

* ``unavailable``: no connection (refused, reset, the server restarting or shutting down, a broken socket);
* ``locked``: a lock wait gave up (``lock_timeout``: another transaction, a migration or a stuck session,
  holds the rows this write needs; ``REGISTRY_LOCK_TIMEOUT_MS``), or this process's own queue in front of
  that lock did (``db/queueing.py``);
* ``busy``: a statement ran past ``statement_timeout``, or no pooled connection came free in time.

A write refused for any of these wrote nothing: each use case is one transaction, rolled back on the error.
(The one exception is a connection lost *during* COMMIT, whose outcome no client of any database can know;
the README's "Operating" section says how a client reads a retry of such a write.)

``Outage`` keeps the log readable while the database is down: the first failure logs one warning, later ones
nothing, and the first new connection afterwards logs the recovery with the outage's length.

It also keeps ``last_ok``, the evidence stale-while-unavailable rests on (``api/replay.py``): the latest moment
at which this process *sent* the database something that it answered. Sent, not answered or handed back: under
load a request's last answer often arrives just before the change listener notices a lost database, and its
connection is handed back just after; that connection sent nothing after the loss, so it proves nothing about
the database since (counting the hand-back ended stale answers for the whole outage, issue 15).
"""
from __future__ import annotations

import logging
import threading
import time

import psycopg2
import psycopg2.errors
import psycopg2.extensions
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine

from .. import errors

log = logging.getLogger("registry.db")

# Seconds a client is asked to wait before it tries again (the Retry-After header).
RETRY_AFTER = {"unavailable": 5, "locked": 2, "busy": 2}

_BUSY = (psycopg2.errors.QueryCanceled,)
_LOCKED = (psycopg2.errors.LockNotAvailable,)


def classify(error: BaseException) -> str | None:
    """``"unavailable"``, ``"locked"``, ``"busy"``, or None for any other failure."""
    if isinstance(error, errors.Unavailable):
        return error.kind
    if isinstance(error, sa_exc.TimeoutError):  # the connection pool had nothing free in time
        return "busy"
    if isinstance(error, sa_exc.DBAPIError):
        if error.connection_invalidated:
            return "unavailable"
        error = error.orig
    if isinstance(error, _LOCKED):
        return "locked"
    if isinstance(error, _BUSY):
        return "busy"
    if isinstance(error, (psycopg2.OperationalError, psycopg2.InterfaceError)):
        # Everything else psycopg2 calls operational is about the connection: refused, closed, "the database
        # system is starting up / shutting down", "terminating connection due to administrator command".
        return "unavailable"
    return None


# A pooled connection's info: when it last sent the database something (time.monotonic()).
SENT = "registry_sent"


def _in_transaction(dbapi_connection) -> bool:
    """Whether a commit or rollback goes to the server: psycopg2 sends neither outside a transaction (then
    both return at once, with no answer from anyone). Another driver: assume it does."""
    return getattr(dbapi_connection, "status", None) != psycopg2.extensions.STATUS_READY


class Outage:
    """Whether this process currently believes the database unreachable, and since when."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.since: float | None = None  # time.monotonic() of the first failure of the current outage
        # When this process last sent the database something it answered (time.monotonic()).
        self.last_ok = float("-inf")

    @property
    def down(self) -> bool:
        return self.since is not None

    def failed(self, error: BaseException) -> None:
        with self._lock:
            if self.since is not None:
                return
            self.since = time.monotonic()
        detail = str(getattr(error, "orig", None) or error).strip().splitlines()
        log.warning("database unavailable (%s): answering 503 with Retry-After until it is back",
                    detail[0] if detail else type(error).__name__)

    def recovered(self) -> None:
        with self._lock:
            since, self.since = self.since, None
        if since is not None:
            log.warning("database reachable again after %.1fs", time.monotonic() - since)

    def answered(self, sent: float | None) -> None:
        """The database answered what was sent at ``sent``."""
        if sent is not None and sent > self.last_ok:
            with self._lock:
                self.last_ok = max(self.last_ok, sent)

    def watch(self, engine: Engine) -> None:
        """A new connection is the end of an outage. Each connection notes when it last sent something (a
        connection attempt, a statement, a commit or rollback, the pool's reset); a connection that opens, or
        is handed back unbroken, was answered all of it (a broken one is invalidated first, and comes back as
        None)."""

        def connecting(_dialect, record, _cargs, _cparams) -> None:
            record.info[SENT] = time.monotonic()

        def connected(_dbapi_connection, record) -> None:
            self.answered(record.info.get(SENT))
            self.recovered()

        def executing(connection, *_args) -> None:
            connection.info[SENT] = time.monotonic()

        def ending(connection) -> None:  # a commit or rollback
            if not (connection.invalidated or connection.closed):  # else nothing goes out (and no info is kept)
                fairy = connection.connection
                if _in_transaction(fairy.dbapi_connection):
                    fairy.info[SENT] = time.monotonic()

        def resetting(dbapi_connection, record, state) -> None:
            if not state.transaction_was_reset and _in_transaction(dbapi_connection):  # the pool rolls back
                record.info[SENT] = time.monotonic()

        def checked_in(dbapi_connection, record) -> None:
            if dbapi_connection is not None:
                self.answered(record.info.get(SENT))

        event.listen(engine, "do_connect", connecting)
        event.listen(engine, "connect", connected)
        event.listen(engine, "before_cursor_execute", executing)
        event.listen(engine, "commit", ending)
        event.listen(engine, "rollback", ending)
        event.listen(engine, "reset", resetting)
        event.listen(engine, "checkin", checked_in)
