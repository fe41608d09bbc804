"""Driving an import: model by model through ``services.imports.import_model``, with progress per phase and
a summary at the end.

On a terminal the progress is a ``rich`` bar per phase; otherwise (a log, CI, a pipe) plain lines, one per
phase start and end and one every ``PLAIN_EVERY`` items, so a log shows how far a long run got. Each model
is its own transaction: a run that is killed keeps the models it finished, and running it again skips them
as unchanged and carries on (resumable without a state file). The models come from a reader that may still
be reading the source (``mlflow.read_models``): each is imported as soon as it is complete.
"""
from __future__ import annotations

import sys
import time
from collections import Counter
from concurrent.futures import ALL_COMPLETED, FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from typing import IO, Iterable, Iterator

from flask import current_app
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..auth import Actor
from ..errors import RegistryError
from ..services.import_snapshots import ModelSnapshot
from ..services.imports import FAILED, IMPORTED, SKIPPED, UNCHANGED, UPDATED, ImportOutcome, import_model

PLAIN_EVERY = 1000
AHEAD = 4  # snapshots handed to the writers per writer, ahead of what they finished
ORDER = (IMPORTED, UPDATED, UNCHANGED, SKIPPED, FAILED)


class Reporter:
    """Progress per phase: ``phase(name, total)`` then ``advance(n)``; a rich bar or plain lines."""

    def __init__(self, stream: IO[str] | None = None, terminal: bool | None = None):
        self.stream = stream or sys.stderr
        self.terminal = self.stream.isatty() if terminal is None else terminal
        self._bar: Progress | None = None
        self._task = None
        self._name = ""
        self._done = 0
        self._total: int | None = None

    @contextmanager
    def phase(self, name: str, total: int | None = None) -> Iterator["Reporter"]:
        self._name, self._done, self._total = name, 0, total
        started = time.monotonic()
        if self.terminal:
            self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=Console(file=self.stream), transient=False)
            self._bar.start()
            self._task = self._bar.add_task(name, total=total)
        else:
            self._line(f"{name}: started" + (f" ({total} to do)" if total is not None else ""))
        try:
            yield self
        finally:
            if self._bar is not None:
                self._bar.stop()
                self._bar = None
            else:
                self._line(f"{name}: done, {self._done} in {time.monotonic() - started:.1f} s")

    def total(self, total: int) -> None:
        """The phase's total, once known (the reader counts the models while the import runs)."""
        self._total = total
        if self._bar is not None:
            self._bar.update(self._task, total=total)

    def note(self, text: str) -> None:
        """A line about the phase (what was read, and how long it took), above the bar on a terminal."""
        if self._bar is not None:
            self._bar.console.print(text)
        else:
            self._line(text)

    def advance(self, n: int = 1) -> None:
        before, self._done = self._done, self._done + n
        if self._bar is not None:
            self._bar.advance(self._task, n)
        elif before // PLAIN_EVERY != self._done // PLAIN_EVERY:
            of = f"/{self._total}" if self._total is not None else ""
            self._line(f"{self._name}: {self._done}{of}")

    def _line(self, text: str) -> None:
        print(text, file=self.stream, flush=True)


def import_all(actor: Actor, snapshots: Iterable[ModelSnapshot], *, origin: str, overwrite: bool, dry_run: bool,
               reporter: Reporter, jobs: int = 1, total: int | None = None) -> list[ImportOutcome]:
    """Each model in its own transaction; ``jobs`` of them at once (models are independent: each takes only
    its own row lock), since an import spends most of its time waiting for database round trips. Models are
    taken from ``snapshots`` as they come, a bounded number ahead of the writers. A model that comes again
    (a reader's second, whole, snapshot) waits for the writes before it and is imported once more; its two
    outcomes are reported as one. Outcomes in name order."""
    app = current_app._get_current_object()

    def one(snapshot: ModelSnapshot) -> ImportOutcome:
        with app.app_context():  # a session of its own per thread
            try:
                return import_model(actor, snapshot, origin=origin, overwrite=overwrite, dry_run=dry_run)
            except RegistryError as error:  # e.g. a name this registry refuses; the next model may be fine
                return ImportOutcome(snapshot.name, FAILED, error.message)

    outcomes: dict[str, ImportOutcome] = {}
    ahead = max(1, jobs) * AHEAD
    with reporter.phase("importing models" + (" (dry run)" if dry_run else ""), total):
        with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="import") as pool:
            running: set[Future] = set()

            def collect(done: Iterable[Future]) -> None:
                for future in done:
                    outcome = future.result()
                    earlier = outcomes.get(outcome.name)
                    outcomes[outcome.name] = outcome if earlier is None else _again(earlier, outcome)
                    reporter.advance()

            submitted: set[str] = set()
            for snapshot in snapshots:
                if snapshot.name in submitted or len(running) >= ahead:
                    # Again: after its first import, never beside it. Else wait for a writer to be free.
                    done, running = wait(running, return_when=ALL_COMPLETED if snapshot.name in submitted
                                         else FIRST_COMPLETED)
                    collect(done)
                submitted.add(snapshot.name)
                running.add(pool.submit(one, snapshot))
            collect(wait(running).done)
    return [outcomes[name] for name in sorted(outcomes)]


def _again(first: ImportOutcome, then: ImportOutcome) -> ImportOutcome:
    """A model imported twice in one run (first from an incomplete snapshot) as one outcome."""
    status = first.status if first.status == IMPORTED and then.status in (UPDATED, UNCHANGED) else then.status
    return ImportOutcome(then.name, status, then.reason, first.changes + then.changes, then.model_id or first.model_id)


def summary(outcomes: list[ImportOutcome], out: IO[str] | None = None, *, dry_run: bool = False) -> None:
    """Counts per outcome, then every model with a reason: skipped, failed, or imported another way than asked."""
    console = Console(file=out or sys.stdout, width=120)
    counts = Counter(o.status for o in outcomes)
    title = "import summary" + (" (dry run: nothing was written)" if dry_run else "")
    table = Table(title=title)
    table.add_column("outcome")
    table.add_column("models", justify="right")
    table.add_column("audit events", justify="right")
    for status in ORDER:
        table.add_row(status, str(counts.get(status, 0)),
                      str(sum(o.changes for o in outcomes if o.status == status)))
    console.print(table)
    noted = [o for o in outcomes if o.reason]
    if noted:
        reasons = Table(title="models skipped, failed or imported differently, and why")
        reasons.add_column("model")
        reasons.add_column("outcome")
        reasons.add_column("reason")
        for o in noted:
            reasons.add_row(o.name, o.status, o.reason)
        console.print(reasons)
