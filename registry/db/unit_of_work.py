"""One use case = one transaction, and what its commit announces.

``use_case`` commits once when the function returns and rolls back on any exception, so a failed write
leaves nothing behind (not even its audit event) and the session is clean for the next call. ``read_only``
ends its transaction too (the serving reads' own statements run beside it, in autocommit: ``prepared.py``);
``one_read`` groups several read use cases (a console page) into one
transaction that looks up the model and the reader's level once.

**Announcing changes.** A transaction changed exactly the models whose audit chains it appended to (every
change is audited: ``audit.record``), plus registry-wide grants or tokens when a use case says so
(``announce``). When it commits, one statement, while the model locks are still held, inserts its buffered
audit events, moves each changed model's chain head and ``generation``, and NOTIFYs every process
(``cache/hub.py``); PostgreSQL delivers the notifications only if the commit succeeds. After the commit, the
writing process's own hub hears of them at once, before the use case returns: a process reads its own writes.
"""
from __future__ import annotations

import functools
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Callable, Iterator, ParamSpec, TypeVar

from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from .. import audit
from ..cache.hub import CHANNEL, DELETED, Scope, encode
from ..extensions import caches, db

P = ParamSpec("P")
R = TypeVar("R")

_SCOPES_KEY = "registry_announce"
_DELIVER_KEY = "registry_deliver"
READING_KEY = "registry_reading"  # inside ``one_read``: {memo key: value}


def session() -> Session:
    return db.session


def open_session() -> Session | None:
    """The session of this app context if one was opened, else None (without opening one: a serving read that
    runs its one statement outside the session, ``prepared.py``, saves making a session and removing it)."""
    scoped = db.session
    if scoped.registry.has() or isinstance(scoped.session_factory.kw.get("bind"), Connection):
        return scoped()  # (sessions made bound to one connection, as the tests' outer transaction, are used always)
    return None


def _end_transaction() -> None:
    s = open_session()
    if s is not None:
        s.rollback()


def now() -> datetime:
    return datetime.now(timezone.utc)


def use_case(fn: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        s = db.session
        if READING_KEY in s.info:
            raise RuntimeError(f"{fn.__name__} writes inside one_read(), which is for reads only")
        try:
            result = fn(*args, **kwargs)
            s.commit()
            return result
        except BaseException:
            s.rollback()
            raise

    return run


def read_only(fn: Callable[P, R]) -> Callable[P, R]:
    """Reads end their transaction too, so a long-lived session never pins an old snapshot or a connection.

    A read that fails on a pooled connection the database dropped (a restart, a failover: SQLAlchemy then
    invalidates the whole pool) is tried once more on a new connection: a read changes nothing, so this is
    safe, and the first reader after a restart is answered instead of refused. Writes are never retried."""
    return _read(fn)


def _read(fn: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        s = open_session()
        if s is not None and READING_KEY in s.info:  # part of a larger read (one_read) that ends it itself
            return fn(*args, **kwargs)
        try:
            try:
                return fn(*args, **kwargs)
            except DBAPIError as error:
                if not error.connection_invalidated:
                    raise
                _end_transaction()  # the retry runs on a new connection
                return fn(*args, **kwargs)
        finally:
            _end_transaction()

    return run


@contextmanager
def one_read() -> Iterator[None]:
    """Several read use cases as one read: one transaction, and what they look up alike (the model by name, the
    reader's level on it) looked up once. A console page calls five to ten use cases, each of which finds the
    model and checks the reader's level; apart, that was 40 statements for one version page. Reads only: a
    use case that writes refuses to run inside."""
    s = db.session
    s.info[READING_KEY] = {}
    try:
        yield
    finally:
        s.info.pop(READING_KEY, None)
        s.rollback()


def reading() -> bool:
    """Inside ``one_read``: a lookup there is shared by the read's use cases (``read_once``)."""
    return READING_KEY in db.session.info


def read_once(key: tuple, load: Callable[[], R]) -> R:
    """``load()``, or inside ``one_read`` the value it gave the first time for ``key``. Outside, nothing is kept."""
    memo = db.session.info.get(READING_KEY)
    if memo is None:
        return load()
    if key not in memo:
        memo[key] = load()
    return memo[key]


def announce(s: Session, scope: Scope) -> None:
    """This transaction changes something every process caches besides models (``GRANTS``, ``TOKENS``)."""
    s.info.setdefault(_SCOPES_KEY, set()).add(scope)


# One round trip at commit: events in, heads and generations moved, one notification per change (a deleted
# model is announced with the DELETED generation, so its waiters wake and its answers drop).
_COMMIT = text(f"""
WITH events AS ({audit.INSERT_EVENTS}),
bumped AS (
    UPDATE registered_models m
    SET generation = m.generation + 1,
        audit_seq = coalesce(h.seq, m.audit_seq),
        audit_hash = CASE WHEN h.seq IS NULL THEN m.audit_hash ELSE h.hash END
    FROM unnest(CAST(:ids AS bigint[]), CAST(:head_seqs AS bigint[]), CAST(:head_hashes AS text[])) AS h(id, seq, hash)
    WHERE m.id = h.id
    RETURNING m.id, m.generation
)
SELECT id, generation, pg_notify(:channel, json_build_object('m', id, 'g', generation)::text) FROM bumped
UNION ALL
SELECT c.id, {DELETED}, pg_notify(:channel, json_build_object('m', c.id, 'g', {DELETED})::text)
FROM unnest(CAST(:ids AS bigint[])) AS c(id) WHERE NOT EXISTS (SELECT 1 FROM bumped b WHERE b.id = c.id)
UNION ALL
SELECT NULL, NULL, pg_notify(:channel, p) FROM unnest(CAST(:payloads AS text[])) AS p
""")


@event.listens_for(Session, "before_commit")
def _write_and_announce(s: Session) -> None:
    appended = audit.take_appended(s)
    scopes = s.info.pop(_SCOPES_KEY, None) or set()
    if appended.empty and not scopes:
        return
    s.flush()  # deletions must reach the database first: a deleted model is announced as such
    heads, events = appended.heads, appended.events
    payloads = [encode(scope) for scope in sorted(scopes, key=str)]
    rows = s.execute(_COMMIT, {
        **events, "ids": list(heads), "head_seqs": [h[0] for h in heads.values()],
        "head_hashes": [h[1] for h in heads.values()], "payloads": payloads, "channel": CHANNEL,
    }).all()
    messages = [{"m": row.id, "g": row.generation} for row in rows if row.id is not None]
    s.info[_DELIVER_KEY] = messages + [{scope: 1} for scope in scopes]


@event.listens_for(Session, "after_commit")
def _deliver_locally(s: Session) -> None:
    messages = s.info.pop(_DELIVER_KEY, None)
    current = caches() if messages else None
    if current is not None:
        for message in messages:
            current.hub.dispatch(message)


@event.listens_for(Session, "after_rollback")
def _discard(s: Session) -> None:
    s.info.pop(_SCOPES_KEY, None)
    s.info.pop(_DELIVER_KEY, None)
