"""Writers of one model take turns inside the process before they queue on its row lock.

Writes to one model are serialised by its row lock in PostgreSQL anyway (db/loading.py). When many
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


class _Slot:
    __slots__ = ("item", "done", "result", "error")

    def __init__(self, item) -> None:
        self.item = item
        self.done = threading.Event()
        self.result = None
        self.error: BaseException | None = None

    def outcome(self):
        if self.error is not None:
            raise self.error
        return self.result


class Batcher:
    """Requests for one model that arrive while a batch of them is being written wait, and are then written
    together in the next batch: one transaction, one row lock, one commit for several writes.

    The caller that finds no batch running for its model becomes the writer: it writes batches until the
    queue is empty (its own request is in the first), while the others wait on an event, holding no
    connection. ``write(model_name, items)`` returns one outcome per item, in order: a result, or an exception
    that belongs to that item alone. If ``write`` itself raises, the whole batch failed: each item is then
    written again on its own, so that one item's failure is never reported for another.
    """

    def __init__(self, write: Callable[[str, list], list], max_batch: int = 64) -> None:
        self._write = write
        self._max_batch = max_batch
        self._guard = threading.Lock()
        self._queues: dict[tuple[object, str], list[_Slot]] = {}

    def submit(self, model_name: str, item, scope: object = None):
        """``scope``: what the writer's transaction depends on besides the model (the app, whose database and
        session the writer uses): requests of different scopes are never written together."""
        slot = _Slot(item)
        key = (scope, model_name)
        with self._guard:
            queue = self._queues.get(key)
            writer = queue is None
            if writer:
                queue = self._queues[key] = []
            queue.append(slot)
        if not writer:
            slot.done.wait()
            return slot.outcome()
        while True:
            with self._guard:
                batch = queue[: self._max_batch]
                del queue[: self._max_batch]
                if not batch:
                    del self._queues[key]
                    break
            self._write_batch(model_name, batch)
        return slot.outcome()

    def _write_batch(self, model_name: str, batch: list[_Slot]) -> None:
        try:
            try:
                outcomes = self._write(model_name, [slot.item for slot in batch])
            except Exception:
                if len(batch) == 1:
                    raise
                for slot in batch:  # find out whose write failed: each on its own
                    self._write_batch(model_name, [slot])
                return
            for slot, outcome in zip(batch, outcomes, strict=True):
                if isinstance(outcome, BaseException):
                    slot.error = outcome
                else:
                    slot.result = outcome
        except BaseException as error:
            for slot in batch:
                slot.error = error
        finally:
            for slot in batch:
                slot.done.set()
