"""Run wrk with one of the Lua scripts here and return its JSON summary (see common.lua)."""
from __future__ import annotations

import json
import resource
import shutil
import subprocess
from pathlib import Path

from _server import PerfError

HERE = Path(__file__).resolve().parent
INSTALL_HINT = "wrk is not installed: install it with `apt-get install -y wrk` (Debian/Ubuntu) and run again"


def wrk_binary() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise PerfError(INSTALL_HINT)
    return path


def wrk_version(binary: str) -> str:
    # `wrk --version` prints its banner and exits 1; only the first line matters.
    done = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10)
    return (done.stdout or done.stderr).splitlines()[0].strip() if (done.stdout or done.stderr) else "unknown"


def run_wrk(binary: str, script: str, url: str, connections: int, threads: int, duration_s: float,
            timeout_s: float, script_args: list[str]) -> dict:
    """One wrk run with keep-alive connections; adds the client's own CPU seconds as client_cpu_s."""
    command = [binary, "-t", str(threads), "-c", str(connections), "-d", f"{duration_s:g}s",
               "--timeout", f"{timeout_s:g}s", "-s", str(HERE / script), url, "--", *script_args]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        done = subprocess.run(command, capture_output=True, text=True, encoding="utf-8", errors="replace",
                              timeout=duration_s + timeout_s + 60)
    except subprocess.TimeoutExpired as exc:
        raise PerfError(f"wrk did not finish in time: {' '.join(command)}") from exc
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    lines = [line for line in done.stdout.splitlines() if line.startswith("WRK_JSON ")]
    if done.returncode != 0 or not lines:
        raise PerfError(f"wrk failed (exit {done.returncode}): {' '.join(command)}\n"
                        f"stdout:\n{done.stdout[-2000:]}\nstderr:\n{done.stderr[-2000:]}")
    result = json.loads(lines[-1][len("WRK_JSON "):])
    result["client_cpu_s"] = round((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), 3)
    result["command"] = command
    return result
