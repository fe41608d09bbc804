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
