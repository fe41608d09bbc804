"""The serving reads' statements (``services/serving.py``), run the cheapest way psycopg2 and PostgreSQL allow.

A serving read that misses the cache is the hot path's one database call, and the first read of every model
after a deploy is one. Through the ORM session and SQLAlchemy's Core it cost ~430 us of this process's CPU, and
PostgreSQL parsed and planned the statement every time (~190 us of its ~250 us); as a prepared statement
EXECUTEd on a pooled connection in autocommit, ~80 us here and ~40 us there (in-process, 3,000 reads of
different models). So a ``Prepared`` statement:

* runs on a connection of the app's own pool (its checkout hooks ping a connection that sat idle, keep the pool
  metrics and note what was sent for ``db/availability``), in autocommit: one round trip, no BEGIN or ROLLBACK,
  and the connection goes back transactional;
* is PREPAREd once per pooled connection (remembered in the connection's ``info``, which lives and dies with
  the connection), then EXECUTEd. Behind a transaction pooler (``REGISTRY_DB_TRANSACTION_POOLER``) two
  statements may reach two server connections, so there it is sent whole each time;
* joins the session's transaction instead when one is open (inside ``one_read``, a use case, or a test's
  outer transaction): the same SQL through the session, seeing what that transaction sees.

A failure closes the connection instead of returning it, and is raised as SQLAlchemy raises a statement's
failure (``DBAPIError``), so ``db/availability`` and the error handlers treat it like any other, and
``read_only`` (around every serving read) tries a read that met a dropped connection once more on a new one.
On a dropped connection the pool is recycled as SQLAlchemy recycles it, so the next readers do not meet the
other dead connections one by one.
"""
from __future__ import annotations

import re
import time
from collections import namedtuple
from typing import Any

import psycopg2
from sqlalchemy import exc as sa_exc
from sqlalchemy import text
from sqlalchemy.engine import Connection

from ..extensions import db, settings
from .availability import SENT
from .unit_of_work import READING_KEY, open_session

_PREPARED = "registry_prepared"  # a pooled connection's info: the names PREPAREd on it
_PARAMETER = re.compile(r"(?<![:\w]):(\w+)")


class Prepared:
    """One statement with ``:name`` parameters, PREPAREd as ``name`` on each connection that runs it."""

    def __init__(self, name: str, sql: str) -> None:
        self.name = name
        self.text = text(sql)  # the session's form
        self.parameters = list(dict.fromkeys(_PARAMETER.findall(sql)))  # $1, $2 ... in order of appearance
        positional = _PARAMETER.sub(lambda m: f"${self.parameters.index(m.group(1)) + 1}", sql)
        self.prepare = f"PREPARE {name} AS {positional}"
        self.execute = f"EXECUTE {name} ({', '.join(['%s'] * len(self.parameters))})"
        self.whole = _PARAMETER.sub(r"%(\1)s", sql)  # for a transaction pooler
        self._row_type = None  # a namedtuple of the result's columns, made from the first result

    def rows(self, **values: Any) -> list:
        """Every row, each with the columns as attributes (as the session's rows have them)."""
        s = open_session()
        if s is not None and (READING_KEY in s.info or s.in_transaction() or isinstance(s.bind, Connection)):
            return s.execute(self.text, values).all()
        return _on_own_connection(self, values)

    def first(self, **values: Any):
        found = self.rows(**values)
        return found[0] if found else None

    def row_type(self, description):
        if self._row_type is None:
            self._row_type = namedtuple(f"{self.name}_row", [column.name for column in description])
        return self._row_type


def _on_own_connection(statement: Prepared, values: dict) -> list:
    engine = db.engine
    pooled = engine.raw_connection()  # the pool's checkout hooks run here
    try:
        return _run(statement, values, pooled, whole=settings().transaction_pooler)
    except psycopg2.Error as error:
        dropped = engine.dialect.is_disconnect(error, pooled.dbapi_connection, None)
        if dropped:
            # As SQLAlchemy does when one of its statements meets a dropped connection: every connection the
            # pool holds now is recycled at its next checkout (they went to the same server), this one at once.
            engine.pool._invalidate(pooled, error)
        else:
            pooled.invalidate(error)  # whatever state it was left in, it is not handed to anyone else
        raise sa_exc.DBAPIError.instance(statement.execute, values, error, psycopg2.Error,
                                         connection_invalidated=dropped) from error
    finally:
        pooled.close()  # back to the pool; an invalidated connection is discarded instead


def _run(statement: Prepared, values: dict, pooled, *, whole: bool) -> list:
    connection = pooled.dbapi_connection
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            pooled.info[SENT] = time.monotonic()
            if whole:
                cursor.execute(statement.whole, values)
            else:
                prepared = pooled.info.setdefault(_PREPARED, set())
                if statement.name not in prepared:
                    cursor.execute(statement.prepare)
                    prepared.add(statement.name)
                cursor.execute(statement.execute, [values[name] for name in statement.parameters])
            row_type = statement.row_type(cursor.description)
            return [row_type(*row) for row in cursor.fetchall()]
    finally:
        if not connection.closed:
            connection.autocommit = False
