"""Run service calls from many threads at once, each thread in its own app context (own session, own connection).

Shared by the concurrency tests that need real commits racing on a fresh database.
"""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor


def run_at_once(app, count: int, work):
    """Run ``work(i)`` in ``count`` threads, each in its own app context (so its own session and connection),
    released together by a barrier; return results or exceptions, in order."""
    barrier = threading.Barrier(count)

    def call(i):
        with app.app_context():
            barrier.wait()
            try:
                return work(i)
            except Exception as exc:  # collected and asserted on by the caller
                return exc

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(call, range(count)))


def in_app(app, fn):
    """``fn()`` inside an app context of ``app``, for setup and checks between the racing calls."""
    with app.app_context():
        return fn()
