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
"""
from __future__ import annotations

import logging
import threading
import time

import psycopg2
import psycopg2.errors
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


class Outage:
    """Whether this process currently believes the database unreachable, and since when."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.since: float | None = None  # time.monotonic() of the first failure of the current outage
        # When this process last saw the database answer (a connection opened, or handed back unbroken).
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

    def watch(self, engine: Engine) -> None:
        """A new connection is the end of an outage; a connection handed back unbroken shows the database
        answered (a broken one is invalidated first, and comes back as None)."""

        def connected(_dbapi_connection, _record) -> None:
            self.last_ok = time.monotonic()
            self.recovered()

        def checked_in(dbapi_connection, _record) -> None:
            if dbapi_connection is not None:
                self.last_ok = time.monotonic()

        event.listen(engine, "connect", connected)
        event.listen(engine, "checkin", checked_in)
