"""Writers of one model take turns inside the process before they queue on its row lock.

Writes to one model are serialised by its row lock in PostgreSQL anyway (services/loading.py). When many
threads of a process write to the same model at once, every one of them waits inside PostgreSQL, and each
commit wakes them all to compete for the lock again: database CPU spent on waiting, which the writers then
lack (measured: creates on 4 hot models from 32 clients cost ~40% more CPU per request than from 4). Taking
turns here first means at most one thread per process waits in the database per model; the others wait on a
process-local lock, holding neither a connection nor a database backend. Correctness never depends on this
(the row lock does that); it only decides who waits where.
"""
from __future__ import annotations

import functools
import threading
from typing import Callable, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


class ModelTurns:
    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, tuple[threading.Lock, list[int]]] = {}  # model name -> (lock, [users])

    def run(self, model_name: str, fn: Callable[[], R]) -> R:
        with self._guard:
            entry = self._locks.get(model_name)
            if entry is None:
                entry = self._locks[model_name] = (threading.Lock(), [0])
            entry[1][0] += 1
        try:
            with entry[0]:
                return fn()
        finally:
            with self._guard:
                entry[1][0] -= 1
                if entry[1][0] == 0:
                    del self._locks[model_name]  # only models being written right now are tracked


_TURNS = ModelTurns()


def one_writer_per_model(fn: Callable[P, R]) -> Callable[P, R]:
    """For a use case whose second argument is the model name (``fn(actor, model_name, ...)``): run it, commit
    included, in the model's turn. Apply outside ``@use_case`` so the turn lasts until the commit."""

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        return _TURNS.run(str(args[1]), lambda: fn(*args, **kwargs))

    return run
