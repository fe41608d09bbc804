"""Shared reads (registry/cache/flights.py): many misses of one key at once cost one read, never a stale one."""
from __future__ import annotations

import threading
import time

from registry.cache.flights import Flights
from registry.cache.hub import Hub

JOIN = 10


def healthy_hub() -> Hub:
    hub = Hub("postgresql://unused")  # never listens: the tests play the listener
    hub.set_healthy(True)
    return hub


class SlowRead:
    """A read that blocks until released, counting how often it ran; its answer is about model ``scope``."""

    def __init__(self, scope: int) -> None:
        self.scope = scope
        self.calls = 0
        self.started = threading.Event()
        self.release = threading.Event()

    def __call__(self, label):
        self.calls += 1
        self.started.set()
        assert self.release.wait(JOIN)
        return (self.scope, self.calls)


def run(target) -> tuple[threading.Thread, list]:
    result: list = []
    thread = threading.Thread(target=lambda: result.append(target()), daemon=True)
    thread.start()
    return thread, result


def until(condition) -> None:
    deadline = time.monotonic() + JOIN
    while not condition():
        assert time.monotonic() < deadline, "never happened"
        time.sleep(0.01)


def scope_of(answer):
    return answer[0]


def test_requests_that_miss_while_a_read_of_their_key_runs_share_it():
    hub, read = healthy_hub(), SlowRead(7)
    flights = Flights(hub)
    leader, first = run(lambda: flights.share("k", 7, read, scope_of))
    assert read.started.wait(JOIN)
    joiners = [run(lambda: flights.share("k", 7, read, scope_of)) for _ in range(20)]
    until(lambda: flights.sharers("k") == 20)
    read.release.set()
    for thread, _ in [(leader, first), *joiners]:
        thread.join(JOIN)
    assert read.calls == 1
    assert first == [(7, 1)] and all(result == [(7, 1)] for _, result in joiners)


def test_a_read_that_began_before_a_change_of_the_model_is_not_shared():
    hub, read = healthy_hub(), SlowRead(7)
    flights = Flights(hub)
    leader, _ = run(lambda: flights.share("k", 7, read, scope_of))
    assert read.started.wait(JOIN)
    hub.dispatch({"m": 7, "g": 5})  # the answer being read may already be stale for whoever comes now
    late, result = run(lambda: flights.share("k", 7, read, scope_of))
    read.release.set()
    leader.join(JOIN)
    late.join(JOIN)
    assert read.calls == 2 and result == [(7, 2)]


def test_a_shared_answer_about_another_model_than_expected_is_read_again():
    hub, read = healthy_hub(), SlowRead(8)  # the name now belongs to model 8
    flights = Flights(hub)
    leader, _ = run(lambda: flights.share("k", 8, read, scope_of))
    assert read.started.wait(JOIN)
    expecting_seven, result = run(lambda: flights.share("k", 7, read, scope_of))
    read.release.set()
    leader.join(JOIN)
    expecting_seven.join(JOIN)
    assert read.calls == 2 and result == [(8, 2)]


def test_when_the_shared_read_fails_each_request_reads_on_its_own():
    hub = healthy_hub()
    flights = Flights(hub)
    started, release = threading.Event(), threading.Event()
    calls = []

    def failing_then_fine(label):
        calls.append(label)
        if len(calls) == 1:
            started.set()
            assert release.wait(JOIN)
            raise RuntimeError("database went away")
        return (7, len(calls))

    errors = []

    def lead():
        try:
            flights.share("k", 7, failing_then_fine, scope_of)
        except RuntimeError as exc:
            errors.append(exc)

    leader = threading.Thread(target=lead, daemon=True)
    leader.start()
    assert started.wait(JOIN)
    joiner, result = run(lambda: flights.share("k", 7, failing_then_fine, scope_of))
    release.set()
    leader.join(JOIN)
    joiner.join(JOIN)
    assert len(errors) == 1 and result == [(7, 2)]
