"""The shared ``main`` of the benchmark scripts: signals unwind through the scripts' cleanup."""
from __future__ import annotations

import signal
import sys
from typing import Callable

from _server import PerfError


def _interrupt(signum, _frame):
    raise KeyboardInterrupt(signal.Signals(signum).name)


def run_main(parse_args: Callable, run: Callable, argv: list[str] | None, cleanup_note: str) -> int:
    args = parse_args(argv)
    # SIGTERM (and SIGINT even when inherited as ignored) must unwind through the finally blocks, which stop
    # the servers and drop the databases.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _interrupt)
    try:
        return run(args)
    except PerfError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"interrupted: {cleanup_note}", file=sys.stderr)
        return 130
