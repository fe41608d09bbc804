"""The export file: ``registry-export`` format, version 1 (README, "Backups and moving out").

JSON Lines, UTF-8, one object per line, each with a ``kind``:

* line 1, ``header``: ``format`` ("registry-export"), ``format_version`` (1), ``exported_at``, ``scope``
  ("registry", or "models" with the ``models`` globs given: then nothing registry-wide is in it);
* the rows, kind by kind (``services/backups.py``'s KINDS, in that order): ``user``, ``model`` (with
  ``tags``), ``version`` (with ``tags``), ``alias``, ``policy``, ``permission``, ``request`` (with
  ``approvals``), ``comment``, ``audit_event``; each carries its table's columns, timestamps as ISO 8601;
* last line, ``footer``: ``lines`` (the number of lines before it), ``counts`` per kind, and ``sha256``, the
  SHA-256 of every byte before the footer line.

**Verifying offline** (``verify_file``): the audit events' hash chains are recomputed with the registry's own
``audit.check_chains`` (the same code ``registry audit verify`` runs on the database), each model's recorded
chain head is compared with the end of its chain, and the footer's digest with the file. The chains prove no
event was altered, removed or inserted; the digest, that no other line was. Neither proves *who* wrote the
file: keep the digest ``registry export`` prints somewhere the file's holder cannot rewrite, or sign the file.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterator

from .. import audit
from ..auth import Actor
from ..services.backups import KINDS, export_rows, parse_row

FORMAT = "registry-export"
FORMAT_VERSION = 1


class ExportFileError(Exception):
    """Not an export file this registry can read."""


def _line(obj: dict[str, Any]) -> bytes:
    return (json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":")) + "\n").encode()


def target_path(out: str, now: datetime) -> Path:
    """``--out``: a directory (existing, or named with a trailing slash) gets a timestamped file; else a file."""
    path = Path(out)
    if out.endswith(os.sep) or path.is_dir():
        path.mkdir(parents=True, exist_ok=True)
        return path / f"registry-export-{now:%Y%m%dT%H%M%SZ}.jsonl"
    return path


@dataclass
class Written:
    path: Path
    lines: int
    sha256: str
    counts: dict[str, int]


def write_export(actor: Actor, patterns: tuple[str, ...], out: str) -> Written:
    """Write the export; it appears under its name only once complete (a temporary file is renamed)."""
    now = datetime.now(timezone.utc)
    path = target_path(out, now)
    temporary = path.with_name(path.name + ".partial")
    digest = hashlib.sha256()
    lines = 0
    with open(temporary, "wb") as f:
        def emit(obj: dict[str, Any]) -> None:
            nonlocal lines
            data = _line(obj)
            f.write(data)
            digest.update(data)
            lines += 1

        emit({"kind": "header", "format": FORMAT, "format_version": FORMAT_VERSION, "exported_at": now.isoformat(),
              "scope": "models" if patterns else "registry", "models": list(patterns)})
        counts = export_rows(actor, patterns, lambda kind, row: emit({"kind": kind, **row}))
        f.write(_line({"kind": "footer", "lines": lines, "counts": counts, "sha256": digest.hexdigest()}))
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)
    return Written(path, lines + 1, digest.hexdigest(), counts)


def read_lines(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for every line; the header is checked first."""
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                obj = json.loads(raw)
            except ValueError:
                raise ExportFileError(f"line {number} is not JSON") from None
            if number == 1:
                if obj.get("kind") != "header" or obj.get("format") != FORMAT:
                    raise ExportFileError(f"{path} is not a {FORMAT} file (its first line is no {FORMAT} header)")
                if obj.get("format_version") != FORMAT_VERSION:
                    raise ExportFileError(f"{path} is format version {obj.get('format_version')}; this registry "
                                          f"reads version {FORMAT_VERSION}")
            yield number, obj


@dataclass
class Verification:
    events: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def event_row(obj: dict[str, Any]) -> dict[str, Any]:
    return parse_row("audit_event", obj)


def verify_file(path: str | Path) -> Verification:
    """Check an export without a database (see the module doc)."""
    result = Verification()
    digest = hashlib.sha256()
    events: list[SimpleNamespace] = []
    heads: list[tuple[int, int, str | None]] = []
    footer: dict[str, Any] | None = None
    lines = 0
    with open(path, "rb") as f:
        raw_lines = iter(f)
        for number, raw in enumerate(raw_lines, start=1):
            obj = json.loads(raw)
            if number == 1 and (obj.get("kind") != "header" or obj.get("format") != FORMAT):
                raise ExportFileError(f"{path} is not a {FORMAT} file")
            if obj.get("kind") == "footer":
                footer = obj
                if next(raw_lines, None) is not None:
                    result.problems.append(f"lines follow the footer (line {number})")
                break
            digest.update(raw)
            lines += 1
            kind = obj.get("kind")
            if kind == "audit_event":
                events.append(SimpleNamespace(line=number, **event_row(obj)))
            elif kind == "model":
                heads.append((obj["id"], obj["audit_seq"], obj["audit_hash"]))
            elif kind not in KINDS and kind != "header":
                result.problems.append(f"line {number}: unknown kind {kind!r}")
    if footer is None:
        result.problems.append("no footer: the file is truncated")
    else:
        if footer.get("lines") != lines:
            result.problems.append(f"the footer counts {footer.get('lines')} lines, the file has {lines}: lines "
                                   "were added or removed")
        if footer.get("sha256") != digest.hexdigest():
            result.problems.append("the file's SHA-256 does not match its footer: a line was altered")
    events.sort(key=lambda e: (e.chain_id, e.seq))
    ends: dict[int, tuple[int, str]] = {}
    checked, problem = audit.check_chains(events, ends)
    result.events = checked
    if problem is None:
        problem = audit.compare_heads(heads, ends)
    if problem is not None:
        line = next((e.line for e in events if e.id == problem.event_id), None)
        where = f"line {line}, " if line else ""
        result.problems.insert(0, f"audit chain broken at {where}event id={problem.event_id} (chain "
                                  f"{problem.chain_id}, seq {problem.seq}): {problem.reason}")
    return result
