"""The waiter budget (registry/cache/waiters.py) and the open-files limit (registry/workers.py)."""
from __future__ import annotations

import resource
import subprocess
import sys
import textwrap

import pytest

from registry.cache import waiters
from registry.cache.waiters import WaiterBudget, fd_reserve, socket_budget, waiter_limit
from registry.config import Settings


def test_gevent_workers_let_long_polls_take_all_but_a_tenth_of_their_connections(monkeypatch):
    monkeypatch.setattr(waiters, "open_files_limit", lambda: None)
    assert waiter_limit(Settings(worker_class="gevent", worker_connections=10_000)) == 9_000
    # Small budgets keep at least 64 connections for ordinary requests.
    assert waiter_limit(Settings(worker_class="gevent", worker_connections=100)) == 36


def test_the_socket_budget_is_capped_by_the_open_files_limit(monkeypatch):
    monkeypatch.setattr(waiters, "open_files_limit", lambda: 2_000)
    settings = Settings(worker_class="gevent", worker_connections=10_000, pool_size=10)
    assert socket_budget(10_000, 10) == 2_000 - fd_reserve(10)
    sockets = 2_000 - fd_reserve(10)
    assert waiter_limit(settings) == sockets - max(64, sockets // 10)


def test_gthread_workers_keep_eight_threads_for_other_requests():
    assert waiter_limit(Settings(worker_class="gthread", threads=32)) == 24
    assert waiter_limit(Settings(worker_class="gthread", threads=4)) == 1


def test_an_explicit_limit_wins_whatever_the_worker():
    assert waiter_limit(Settings(max_waiters=7)) == 7
    assert waiter_limit(Settings(worker_class="gthread", max_waiters=0)) == 0


def test_the_budget_refuses_entry_beyond_its_limit_and_frees_a_place_on_leave():
    budget = WaiterBudget(2)
    assert budget.try_enter() and budget.try_enter()
    assert not budget.try_enter()
    assert budget.waiting == 2
    budget.leave()
    assert budget.try_enter()
    assert WaiterBudget(0).try_enter() is False


def _limits_after(soft: int, hard: int, needed: int) -> str:
    """Run raise_open_files_limit in a child (limits are per process) started with the given limits."""
    code = textwrap.dedent(f"""
        import resource
        from registry.workers import raise_open_files_limit
        resource.setrlimit(resource.RLIMIT_NOFILE, ({soft}, {hard}))
        print(raise_open_files_limit({needed}), *resource.getrlimit(resource.RLIMIT_NOFILE))
    """)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()


def test_the_open_files_limit_is_raised_to_what_the_connections_need_within_the_hard_limit():
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 4096:
        pytest.skip(f"this machine's hard open-files limit ({hard}) is below what the test needs")
    assert _limits_after(256, 4096, 3000) == ["3000", "3000", "4096"]
    assert _limits_after(256, 2048, 3000) == ["2048", "2048", "2048"]  # capped by the hard limit
    assert _limits_after(3500, 4096, 3000) == ["3500", "3500", "4096"]  # never lowered
