"""CPU seconds spent by the server, its PostgreSQL backends and the whole machine during one measurement.

Server: the `registry serve` process tree (CLI, gunicorn master, workers). Each process counts its own
user+sys plus the children it has reaped, so a worker recycled by gunicorn mid-run is still counted (via
the master) and nothing is counted twice.
PostgreSQL: backends of the benchmark database only (other databases on the same server are not ours).
They are polled, and the last value seen for a backend that exits is kept; a backend that lives less
than one poll interval is missed, so this figure is a lower bound.
"""
from __future__ import annotations

import re
import threading
import time

import psutil

# Backend titles look like "postgres: [cluster: ]user database host(port) activity".
_BACKEND_TITLE = re.compile(r"^postgres: (?:\S+: )?(\S+) (\S+) (\S+)")


def _own_and_reaped(process: psutil.Process) -> float:
    t = process.cpu_times()
    return t.user + t.system + t.children_user + t.children_system


def tree_cpu(root_pid: int) -> float:
    try:
        root = psutil.Process(root_pid)
        processes = [root] + root.children(recursive=True)
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for process in processes:
        try:
            total += _own_and_reaped(process)
        except psutil.NoSuchProcess:
            pass  # exited between listing and reading: its parent's reaped-children time covers it
    return total


def find_postmaster(backend_pid: int) -> psutil.Process | None:
    try:
        return psutil.Process(backend_pid).parent()
    except psutil.Error:
        return None  # PostgreSQL runs elsewhere (container, other host): no backend figures


def machine_busy_seconds() -> float:
    t = psutil.cpu_times()
    idle = t.idle + getattr(t, "iowait", 0.0)
    return sum(t) - idle - getattr(t, "guest", 0.0) - getattr(t, "guest_nice", 0.0)


class CpuMeter:
    """start() before a measurement, stop() after it; stop() returns the figures for that interval."""

    def __init__(self, server_pid: int, postmaster: psutil.Process | None, database: str, interval: float = 0.5):
        self.server_pid, self.postmaster, self.database, self.interval = server_pid, postmaster, database, interval
        self._backend_start: dict[tuple[int, float], float] = {}
        self._backend_last: dict[tuple[int, float], float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _poll_backends(self, first: bool) -> None:
        if self.postmaster is None:
            return
        try:
            children = self.postmaster.children()
        except psutil.Error:
            return
        for child in children:
            try:
                match = _BACKEND_TITLE.match(" ".join(child.cmdline()).strip())
                if not match or match.group(2) != self.database:
                    continue
                key = (child.pid, child.create_time())
                t = child.cpu_times()
                value = t.user + t.system
            except psutil.Error:
                continue
            if first:
                self._backend_start[key] = value
            self._backend_last[key] = value

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._poll_backends(first=False)

    def start(self) -> None:
        self._backend_start.clear()
        self._backend_last.clear()
        self._poll_backends(first=True)
        self._server_start = tree_cpu(self.server_pid)
        self._machine_start = machine_busy_seconds()
        self._wall_start = time.monotonic()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="cpu-meter", daemon=True)
        self._thread.start()

    def stop(self) -> dict:
        self._stop.set()
        self._thread.join()
        self._poll_backends(first=False)
        wall = time.monotonic() - self._wall_start
        server = tree_cpu(self.server_pid) - self._server_start
        machine = machine_busy_seconds() - self._machine_start
        postgres = sum(last - self._backend_start.get(key, 0.0) for key, last in self._backend_last.items())
        return {
            "wall_s": round(wall, 3),
            "server_cpu_s": round(server, 3),
            "postgres_cpu_s": round(postgres, 3) if self.postmaster is not None else None,
            "postgres_backends_seen": len(self._backend_last) if self.postmaster is not None else None,
            "machine_busy_cpu_s": round(machine, 3),
            "machine_cores": psutil.cpu_count(),
        }


def tree_memory(root_pid: int) -> list[dict]:
    """RSS, PSS and USS (bytes) of every process of a server's tree, root first.

    RSS counts pages shared between a preloading master and its forked workers once per process, so the RSS
    sum overstates what the service costs; PSS splits shared pages between their users (sums to the real
    footprint) and USS is what each process alone holds.
    """
    try:
        root = psutil.Process(root_pid)
        processes = [root] + root.children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    found = []
    for process in processes:
        try:
            info = process.memory_full_info()
            found.append({"pid": process.pid, "ppid": process.ppid(), "cmdline": " ".join(process.cmdline())[:160],
                          "rss": info.rss, "pss": getattr(info, "pss", None), "uss": getattr(info, "uss", None)})
        except psutil.Error:
            pass
    return found


def postmaster_for(db_url: str) -> psutil.Process | None:
    """The local postmaster serving ``db_url`` (the parent of our own backend), or None if not local."""
    from contextlib import closing

    import psycopg2

    with closing(psycopg2.connect(db_url, connect_timeout=10)) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return find_postmaster(cursor.fetchone()[0])
