"""Turning one wrk run plus its CPU figures into a result row, and printing aligned tables."""
from __future__ import annotations

import subprocess

from _server import REPO


def summarise(wrk: dict, cpu: dict) -> dict:
    """Requests, errors (non-2xx + socket errors), req/s, latency (ms) and CPU as cores busy on average."""
    statuses = {int(k): v for k, v in wrk["statuses"].items()}
    non_2xx = sum(v for k, v in statuses.items() if not 200 <= k < 300)
    e = wrk["errors"]
    socket_errors = e["connect"] + e["read"] + e["write"] + e["timeout"]
    seconds = wrk["duration_us"] / 1e6
    wall = cpu["wall_s"] or seconds

    def cores(value):
        return None if value is None else round(value / wall, 2)

    return {
        "duration_s": round(seconds, 3),
        "requests": wrk["requests"], "errors": non_2xx + socket_errors, "non_2xx": non_2xx,
        "socket_errors": {k: e[k] for k in ("connect", "read", "write", "timeout")}, "statuses": statuses,
        "first_error": wrk.get("first_error"),
        "req_per_s": round(wrk["requests"] / seconds, 1) if seconds else 0.0,
        "latency_ms": {k: round(v / 1000, 3) for k, v in wrk["latency_us"].items()},
        "cpu": {**cpu, "client_cpu_s": wrk["client_cpu_s"],
                "server_cores": cores(cpu["server_cpu_s"]), "postgres_cores": cores(cpu["postgres_cpu_s"]),
                "client_cores": cores(wrk["client_cpu_s"]), "machine_busy_cores": cores(cpu["machine_busy_cpu_s"])},
        "wrk_command": wrk["command"],
    }


def fmt(value, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def table(header: list[str], rows: list[list[str]], left: int = 1) -> str:
    """Columns padded to their widest cell; the first ``left`` columns are left-aligned, the rest right."""
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(header)]

    def line(cells):
        return "  ".join(c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(row) for row in rows)])


CPU_LEGEND = ("cpu columns are cores busy on average during the measurement (cpu seconds / wall seconds): server ="
              " the server's whole process tree; pg = PostgreSQL backends of its database (lower bound);"
              " wrk = load generator; machine = all processes on the host.")


def git_describe() -> dict:
    def git(*cmd: str) -> str:
        try:
            return subprocess.run(["git", *cmd], cwd=REPO, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""
    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}


def wrk_threads(connections: int) -> int:
    return 1 if connections == 1 else 2  # one wrk thread per core on a 2-core box; more only adds contention
