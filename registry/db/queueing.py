"""Writers of one model take turns inside the process before they queue on its row lock.

Writes to one model are serialised by its row lock in PostgreSQL anyway (db/loading.py). When many
threads of a process write to the same model at once, every one of them waits inside PostgreSQL, and each
commit wakes them all to compete for the lock again: database CPU spent on waiting, which the writers then
lack (measured: creates on 4 hot models from 32 clients cost ~40% more CPU per request than from 4). Taking
turns here first means at most one thread per process waits in the database per model; the others wait on a
process-local lock, holding neither a connection nor a database backend. Correctness never depends on this
(the row lock does that); it only decides who waits where.

**Bounded waits.** When a model's row is held elsewhere (a migration, a stuck transaction), the writer in the
model's turn gives up after ``REGISTRY_LOCK_TIMEOUT_MS`` in PostgreSQL, and everyone queued behind it here is
refused with it at once (``locked``: 503 with Retry-After) instead of taking the same wait one after another;
a holder that keeps the turn that long for any other reason gets its waiters refused too. A queue that keeps
moving is never cut short. So a locked model holds its own writers for about one lock timeout, and never the
threads that writers of *other* models need (issue 15: those fell from 56.6 to 1.0 writes/s while one model
was locked for 40 s).
"""
from __future__ import annotations

import functools
import threading
import time
from typing import Callable, ParamSpec, TypeVar

from .. import errors
from . import availability

P = ParamSpec("P")
R = TypeVar("R")


class _Turn:
    """One model's turn: who holds it since when, who waits, and how many holders were refused the lock."""

    __slots__ = ("condition", "busy", "held_since", "refusals", "users")

    def __init__(self) -> None:
        self.condition = threading.Condition(threading.Lock())
        self.busy = False
        self.held_since = 0.0
        self.refusals = 0
        self.users = 0


class ModelTurns:
    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, _Turn] = {}  # model name -> its turn, while someone writes it

    def run(self, model_name: str, fn: Callable[[], R], timeout: float | None = None) -> R:
        """``fn()`` in the model's turn. Waiting is bounded by progress, not by the queue's length: a waiter is
        refused (``Unavailable``, "locked") when the holder ahead of it was refused the model's lock (the row
        is held elsewhere: waiting would only repeat that wait), or has held the turn for ``timeout`` seconds
        without finishing. A queue that keeps moving is waited out however long it is."""
        with self._guard:
            turn = self._locks.get(model_name)
            if turn is None:
                turn = self._locks[model_name] = _Turn()
            turn.users += 1
        try:
            with turn.condition:
                refusals = turn.refusals
                while turn.busy:
                    if turn.refusals != refusals:
                        raise locked(model_name)
                    if timeout is None:
                        turn.condition.wait()
                        continue
                    stuck_for = time.monotonic() - turn.held_since
                    if stuck_for >= timeout:
                        raise locked(model_name)
                    turn.condition.wait(timeout - stuck_for)
                if turn.refusals != refusals:  # the holder we waited behind was refused the lock
                    raise locked(model_name)
                turn.busy, turn.held_since = True, time.monotonic()
            refused = False
            try:
                return fn()
            except Exception as error:
                refused = availability.classify(error) == "locked"
                raise
            finally:
                with turn.condition:
                    turn.busy = False
                    turn.refusals += refused
                    turn.condition.notify_all()
        finally:
            with self._guard:
                turn.users -= 1
                if turn.users == 0:
                    del self._locks[model_name]  # only models being written right now are tracked


_TURNS = ModelTurns()


def locked(model_name: str) -> errors.Unavailable:
    retry_after = availability.RETRY_AFTER["locked"]
    return errors.Unavailable(
        f"Model '{model_name}' is being changed by another request or transaction that is taking long; nothing "
        f"was written. Try again in {retry_after} s.", kind="locked", retry_after=retry_after)


def lock_timeout() -> float:
    """Seconds a writer may wait for a model here: the database's own lock_timeout."""
    from ..extensions import settings

    return settings().lock_timeout_ms / 1000


def one_writer_per_model(fn: Callable[P, R]) -> Callable[P, R]:
    """For a use case whose second argument is the model name (``fn(actor, model_name, ...)``): run it, commit
    included, in the model's turn. Apply outside ``@use_case`` so the turn lasts until the commit."""

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        return _TURNS.run(str(args[1]), lambda: fn(*args, **kwargs), timeout=lock_timeout())

    return run


class _Slot:
    __slots__ = ("item", "done", "leads", "result", "error")

    def __init__(self, item) -> None:
        self.item = item
        self.done = threading.Event()  # set when the outcome is known, or when this caller is to lead
        self.leads = False
        self.result = None
        self.error: BaseException | None = None

    def outcome(self):
        if self.error is not None:
            raise self.error
        return self.result


class Batcher:
    """Requests for one model that arrive while a batch of them is being written wait, and are then written
    together in the next batch: one transaction, one row lock, one commit for several writes.

    The caller that finds no batch running for its model becomes the writer: it writes one batch (its own
    request is in it) and, if more requests queued meanwhile, hands the writing on to the first of them before
    it returns, so every caller is answered as soon as its own batch is written, never after the batches
    queued behind it. The others wait on an event, holding no connection. ``write(model_name, items)``
    returns one outcome per item, in order: a result, or an exception that belongs to that item alone. If
    ``write`` itself raises, the whole batch failed: each item is then written again on its own, so that one
    item's failure is never reported for another, unless the failure is the database's (an outage, a lock
    wait that gave up: ``db/availability.py``), which is no item's fault and is everyone's answer at once;
    a batch refused the lock is the answer of everyone queued behind it too (they would only wait again).
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
            if not slot.leads:
                return slot.outcome()
        with self._guard:  # this caller's request is at the head of the queue
            batch = queue[: self._max_batch]
            del queue[: self._max_batch]
        try:
            self._write_batch(model_name, batch)
        finally:
            refused = batch[0].error if availability.classify(batch[0].error) == "locked" else None
            with self._guard:
                if refused is not None:  # the row is held elsewhere: those queued would only wait again
                    for waiting in queue:
                        waiting.error = refused
                        waiting.done.set()
                    queue.clear()
                if queue:
                    successor = queue[0]
                    successor.leads = True
                    successor.done.set()
                else:
                    del self._queues[key]
        return slot.outcome()

    def _write_batch(self, model_name: str, batch: list[_Slot]) -> None:
        try:
            try:
                outcomes = self._write(model_name, [slot.item for slot in batch])
            except Exception as error:
                if len(batch) == 1 or availability.classify(error) is not None:
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
