"""Check a pooled connection before use only when the check can find something.

SQLAlchemy's ``pool_pre_ping`` spends a round trip on every checkout. A connection handed back a moment ago is
alive unless the server went away in that very moment, which the next statement reports anyway; what a check
catches is a connection that sat idle while the server restarted, failed over or timed it out. So connections
idle for longer than ``REGISTRY_DB_PING_AFTER_SECONDS`` are pinged at checkout, and the rest are used at once
(measured: the pre-ping was 17% of a version create's wall time under load). A failed ping discards the
connection and the pool takes another, through SQLAlchemy's documented checkout protocol (raising
``DisconnectionError``).

The same hooks keep the pool's metrics (``telemetry/metrics.py``): connections in use and in overflow, the
pool's capacity, and how often a checkout took the last free connection (the next request then waits).
"""
from __future__ import annotations

import time

from sqlalchemy import event, exc
from sqlalchemy.engine import Engine

from .telemetry import metrics

_LAST_USED = "registry_last_used"


def _report(pool, returning: int = 0) -> int | None:
    """Gauges of a QueuePool (the engine's default); other pools report nothing. ``returning``: the checkin
    hook runs before the pool takes the connection back, which it still counts as checked out."""
    checked_out, overflow = getattr(pool, "checkedout", None), getattr(pool, "overflow", None)
    if checked_out is None or overflow is None:
        return None
    in_use = checked_out() - returning
    metrics.DB_POOL_CHECKED_OUT.set(in_use)
    metrics.DB_POOL_OVERFLOW.set(max(0, overflow()))
    return in_use


def ping_idle_connections(engine: Engine, idle_seconds: float) -> None:
    pool = engine.pool
    capacity = pool.size() + max(0, getattr(pool, "_max_overflow", 0)) if hasattr(pool, "size") else None
    if capacity is not None:
        metrics.DB_POOL_CAPACITY.set(capacity)

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection, record, _proxy) -> None:
        in_use = _report(pool)
        if capacity is not None and in_use is not None and in_use >= capacity:
            metrics.DB_POOL_EXHAUSTED.inc()
        last_used = record.info.get(_LAST_USED)
        if last_used is not None and time.monotonic() - last_used < idle_seconds and not dbapi_connection.closed:
            return
        try:
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute("SELECT 1")
            finally:
                cursor.close()
            # psycopg2 began a transaction for the ping: end it, so that the connection is handed over as the
            # pool keeps it (db/prepared.py switches a clean one to autocommit; psycopg2 refuses mid-transaction).
            dbapi_connection.rollback()
        except Exception as error:  # any failure means "do not use this connection"
            raise exc.DisconnectionError(f"pooled connection failed its check: {error}") from error

    @event.listens_for(engine, "checkin")
    def _note_use(_dbapi_connection, record) -> None:
        record.info[_LAST_USED] = time.monotonic()
        _report(pool, returning=1)
