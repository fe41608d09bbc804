"""db/queueing.py: writers of one model take turns, and their requests are written in batches."""
from __future__ import annotations

import threading
import time

from registry.db.queueing import Batcher, ModelTurns

TIMEOUT = 30  # bounds a broken hand-off so that the test fails instead of hanging; not a speed assertion


def _run_threads(count, target):
    barrier = threading.Barrier(count)
    results = [None] * count

    def run(i):
        barrier.wait()
        try:
            results[i] = target(i)
        except Exception as error:
            results[i] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT)
        assert not t.is_alive()
    return results


def test_turns_let_one_writer_per_model_in_at_a_time():
    turns = ModelTurns()
    inside = {"a": 0, "b": 0}
    most = {"a": 0, "b": 0}
    guard = threading.Lock()

    def write(i):
        model = "ab"[i % 2]

        def body():
            with guard:
                inside[model] += 1
                most[model] = max(most[model], inside[model])
            time.sleep(0.002)  # let the others pile up behind the turn
            with guard:
                inside[model] -= 1
            return i

        return turns.run(model, body)

    assert _run_threads(16, write) == list(range(16))
    assert most == {"a": 1, "b": 1}
    assert turns._locks == {}  # nothing is kept for models nobody is writing


def test_every_request_gets_its_own_outcome_in_order_and_batches_form():
    batches = []

    def write(model, items):
        batches.append(list(items))
        time.sleep(0.005)  # while one batch is written, the next one gathers
        return [f"{model}:{item}" for item in items]

    batcher = Batcher(write)
    results = _run_threads(24, lambda i: batcher.submit("m", i))
    assert results == [f"m:{i}" for i in range(24)]
    assert sorted(i for batch in batches for i in batch) == list(range(24))  # each written exactly once
    assert max(len(batch) for batch in batches) > 1
    assert batcher._queues == {}


def test_an_item_refused_on_its_own_does_not_fail_the_others():
    def write(model, items):
        return [ValueError(f"no {item}") if item % 5 == 0 else item * 10 for item in items]

    batcher = Batcher(write)
    results = _run_threads(12, lambda i: batcher.submit("m", i))
    for i, result in enumerate(results):
        if i % 5 == 0:
            assert isinstance(result, ValueError) and str(result) == f"no {i}"
        else:
            assert result == i * 10


def test_a_failed_batch_is_retried_item_by_item_so_only_the_culprit_fails():
    attempts = []

    def write(model, items):
        attempts.append(list(items))
        time.sleep(0.002)
        if 7 in items:
            raise RuntimeError("item 7 breaks any transaction it is in")
        return [item for item in items]

    batcher = Batcher(write)
    results = _run_threads(16, lambda i: batcher.submit("m", i))
    assert isinstance(results[7], RuntimeError)
    assert [r for i, r in enumerate(results) if i != 7] == [i for i in range(16) if i != 7]
    assert [7] in attempts  # retried alone


def test_different_scopes_and_models_are_never_written_together():
    seen = []

    def write(model, items):
        seen.append((model, {scope for scope, _ in items}))
        time.sleep(0.002)
        return [i for _, i in items]

    batcher = Batcher(write)
    results = _run_threads(
        20, lambda i: batcher.submit(f"m{i % 2}", (i % 3, i), scope=i % 3))
    assert results == list(range(20))
    assert all(len(scopes) == 1 for _, scopes in seen)


def test_a_caller_gets_its_outcome_without_waiting_for_the_batches_queued_behind_it():
    # Issue 15: the caller that became the writer used to keep writing batch after batch until the queue was
    # empty, so its own answer (often a failure) waited for everyone queued behind it.
    first_started, release_first, release_second = threading.Event(), threading.Event(), threading.Event()

    def write(model, items):
        if "first" in items:
            first_started.set()
            release_first.wait(TIMEOUT)
            raise_for = [RuntimeError("first refused") if item == "first" else item for item in items]
            return raise_for
        release_second.wait(2 * TIMEOUT)  # the next batch is stuck (a held lock, say)
        return list(items)

    batcher = Batcher(write)
    outcomes: dict[str, object] = {}
    answered = {name: threading.Event() for name in ("first", "second")}

    def submit(name):
        try:
            outcomes[name] = batcher.submit("m", name)
        except Exception as error:
            outcomes[name] = error
        answered[name].set()

    threads = [threading.Thread(target=submit, args=("first",))]
    threads[0].start()
    assert first_started.wait(TIMEOUT)
    threads.append(threading.Thread(target=submit, args=("second",)))
    threads[1].start()
    while not batcher._queues[(None, "m")]:  # "second" is queued behind the running batch
        time.sleep(0.001)
    release_first.set()
    try:
        assert answered["first"].wait(TIMEOUT), "the first caller waited for the batch queued behind it"
        assert isinstance(outcomes["first"], RuntimeError)
        assert not answered["second"].is_set()
    finally:
        release_second.set()
    for t in threads:
        t.join(TIMEOUT)
    assert outcomes["second"] == "second"
    assert batcher._queues == {}


def test_a_batch_failing_for_the_database_is_not_retried_item_by_item():
    # A lock timeout or an outage is no item's fault: trying each item again alone would only wait again.
    from psycopg2.errors import LockNotAvailable

    calls = []
    started, release = threading.Event(), threading.Event()

    def write(model, items):
        calls.append(list(items))
        if items == ["block"]:
            started.set()
            release.wait(TIMEOUT)
            return list(items)
        raise LockNotAvailable("lock timeout")

    batcher = Batcher(write)
    blocker = threading.Thread(target=batcher.submit, args=("m", "block"))
    blocker.start()
    assert started.wait(TIMEOUT)
    results = {}

    def submit(i):
        try:
            results[i] = batcher.submit("m", i)
        except Exception as error:
            results[i] = error

    waiting = [threading.Thread(target=submit, args=(i,)) for i in range(3)]
    for t in waiting:
        t.start()
    while len(batcher._queues[(None, "m")]) < 3:
        time.sleep(0.001)
    release.set()
    for t in [blocker, *waiting]:
        t.join(TIMEOUT)
    assert all(isinstance(results[i], LockNotAvailable) for i in range(3))
    assert calls == [["block"], [0, 1, 2]]


def test_a_turn_not_granted_within_the_lock_timeout_is_refused_as_locked():
    from registry.errors import Unavailable

    turns = ModelTurns()
    inside, release = threading.Event(), threading.Event()
    holder = threading.Thread(target=turns.run, args=("m", lambda: (inside.set(), release.wait(TIMEOUT))))
    holder.start()
    assert inside.wait(TIMEOUT)
    try:
        try:
            turns.run("m", lambda: "never", timeout=0.05)
        except Unavailable as error:
            assert error.kind == "locked" and error.retry_after >= 1
        else:
            raise AssertionError("a turn held too long must be refused, not waited for")
        assert turns.run("other", lambda: "free", timeout=0.05) == "free"
    finally:
        release.set()
        holder.join(TIMEOUT)


def test_a_queue_that_keeps_moving_never_refuses_its_writers_however_long_it_is():
    # Sixteen writers of one model, each quick, queue far longer in total than the timeout: none is refused,
    # because the turn keeps changing hands (the bound is on a holder that does not move, not on the queue).
    turns = ModelTurns()

    def write(i):
        return turns.run("m", lambda: (time.sleep(0.02), i)[1], timeout=0.05)

    assert sorted(_run_threads(16, write)) == list(range(16))


def test_writers_queued_behind_a_turn_refused_for_the_lock_are_refused_at_once():
    # The model's row is held elsewhere: the writer in the turn gives up after lock_timeout, and those queued
    # behind it would only wait as long again, one after the other: they are answered with it.
    from psycopg2.errors import LockNotAvailable

    from registry.errors import Unavailable

    turns = ModelTurns()
    inside, release = threading.Event(), threading.Event()
    calls = []

    def blocked():
        calls.append(1)
        inside.set()
        release.wait(TIMEOUT)
        raise LockNotAvailable("lock timeout")

    results = {}

    def first():
        try:
            turns.run("m", blocked, timeout=TIMEOUT)
        except Exception as error:
            results["first"] = error

    def queued(i):
        try:
            results[i] = turns.run("m", blocked, timeout=TIMEOUT)
        except Exception as error:
            results[i] = error

    holder = threading.Thread(target=first)
    holder.start()
    assert inside.wait(TIMEOUT)
    waiting = [threading.Thread(target=queued, args=(i,)) for i in range(3)]
    for t in waiting:
        t.start()
    while turns._locks["m"].users < 4:
        time.sleep(0.001)
    release.set()
    for t in [holder, *waiting]:
        t.join(TIMEOUT)
    assert isinstance(results["first"], LockNotAvailable)
    assert all(isinstance(results[i], Unavailable) and results[i].kind == "locked" for i in range(3)), results
    assert len(calls) == 1


def test_requests_queued_behind_a_batch_refused_for_the_lock_are_refused_with_it():
    from psycopg2.errors import LockNotAvailable

    calls = []
    started, release = threading.Event(), threading.Event()

    def write(model, items):
        calls.append(list(items))
        started.set()
        release.wait(TIMEOUT)
        raise LockNotAvailable("lock timeout")

    batcher = Batcher(write)
    results = {}

    def submit(i):
        try:
            results[i] = batcher.submit("m", i)
        except Exception as error:
            results[i] = error

    leader = threading.Thread(target=submit, args=("leader",))
    leader.start()
    assert started.wait(TIMEOUT)
    queued = [threading.Thread(target=submit, args=(i,)) for i in range(3)]
    for t in queued:
        t.start()
    while len(batcher._queues[(None, "m")]) < 3:
        time.sleep(0.001)
    release.set()
    for t in [leader, *queued]:
        t.join(TIMEOUT)
    assert all(isinstance(results[k], LockNotAvailable) for k in ("leader", 0, 1, 2)), results
    assert calls == [["leader"]]  # nobody waited for the lock a second time
    assert batcher._queues == {}
