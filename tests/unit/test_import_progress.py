"""migrate/run.py: progress per phase (plain lines off a terminal, a rich bar on one) and the summary table."""
from __future__ import annotations

import io
import re

from registry.migrate import run
from registry.services.imports import FAILED, IMPORTED, SKIPPED, UNCHANGED, ImportOutcome


def test_off_a_terminal_progress_is_plain_lines_at_start_every_thousand_and_at_the_end():
    out = io.StringIO()
    reporter = run.Reporter(out, terminal=False)
    with reporter.phase("importing models", 2500):
        for _ in range(2500):
            reporter.advance()
    lines = out.getvalue().splitlines()
    assert lines[:3] == ["importing models: started (2500 to do)", "importing models: 1000/2500",
                         "importing models: 2000/2500"]
    assert re.fullmatch(r"importing models: done, 2500 in \d+\.\d s", lines[3])


def test_on_a_terminal_progress_is_a_bar_with_counts():
    out = io.StringIO()
    reporter = run.Reporter(out, terminal=True)
    with reporter.phase("reading versions", 4):
        reporter.advance(4)
    text = out.getvalue()
    assert "reading versions" in text and "4/4" in text and "started" not in text


def test_the_summary_counts_each_outcome_and_gives_the_reasons():
    out = io.StringIO()
    run.summary([ImportOutcome("a", IMPORTED, changes=5), ImportOutcome("b", UNCHANGED),
                 ImportOutcome("c", SKIPPED, "other versions here"), ImportOutcome("d", FAILED, "bad source")], out)
    text = out.getvalue()
    for status, models, events in (("imported", 1, 5), ("unchanged", 1, 0), ("skipped", 1, 0), ("failed", 1, 0)):
        assert any(status in line and f" {models} " in line and f" {events} " in line for line in text.splitlines())
    assert "other versions here" in text and "bad source" in text
