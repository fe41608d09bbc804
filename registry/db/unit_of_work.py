"""One use case = one transaction.

``use_case`` commits once when the function returns and rolls back on any exception, so a failed write
leaves nothing behind (not even its audit event) and the session is clean for the next call.
"""
from __future__ import annotations

import functools
from datetime import datetime, timezone
from typing import Callable, ParamSpec, TypeVar

from sqlalchemy.orm import Session

from ..extensions import db

P = ParamSpec("P")
R = TypeVar("R")


def session() -> Session:
    return db.session


def now() -> datetime:
    return datetime.now(timezone.utc)


def use_case(fn: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        s = db.session
        try:
            result = fn(*args, **kwargs)
            s.commit()
            return result
        except BaseException:
            s.rollback()
            raise

    return run


def read_only(fn: Callable[P, R]) -> Callable[P, R]:
    """Reads end their transaction too, so a long-lived session never pins an old snapshot or a connection."""

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        s = db.session
        try:
            return fn(*args, **kwargs)
        finally:
            s.rollback()

    return run
