"""Watching several serving answers at once: the use case behind ``GET /api/v1/watch`` (one stream per replica).

A **selector** names one serving answer: ``<model>:<stage>`` (the current version in a stage) or
``<model>@<alias>``. Model names cannot contain ':' and aliases cannot contain '@', so both split
unambiguously. Each answer is read by ``serving.resolve``: the long-poll's read, cache and permission check,
so a stream shows exactly what ``GET .../stages/{stage}`` would, and a model the actor cannot read is
"missing" like one that does not exist.

A **position** says which answer the client holds for every selector: the model's id and ``generation``
(the counter the hub announces and every serving ETag carries) when it was read, ``-`` for "missing", or
nothing yet. Generations are the database's, not a process's, so a position can be resumed on any process of
any replica, however old it is: a selector whose model is still at that generation cannot have changed (the
ETag rule); any other is sent again as it is now (intermediate answers are not replayed: a serving host needs
only the current one). A position for another list of selectors, or one that does not parse, is unknown: the
stream says so and sends every answer afresh. Delivery is at least once: after a reconnect an answer may
come again unchanged.

**Waiting** costs no database connection: the stream sleeps on the hub (``cache/hub.py``) until one of its
models, the grants or the tokens are announced, like a long-poll. Models that do not exist (yet) have no
id to wait on: those selectors are read again after any announcement, at most once a second.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Callable

from ..auth import Actor
from ..cache.hub import GRANTS, TOKENS, Label
from ..db.unit_of_work import read_only
from ..errors import InvalidArgument, NotFound
from ..extensions import caches
from . import serving

POSITION_VERSION = "w1"
MISSING = "-"
# How often selectors naming no (readable) model are read again while other models change.
MISSING_RECHECK_SECONDS = 1.0
# While the change listener is down nothing is announced: read every answer again this often.
UNHEALTHY_POLL_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class Selector:
    text: str  # canonical: name:Stage or name@alias
    key: tuple[str, str, str]  # serving.answer_key

    def resolve(self, actor: Actor, *, fresh: bool = False) -> serving.Answer:
        kind, name, selector = self.key
        if kind == "stage":
            return serving.resolve(actor, name, stage=selector, fresh=fresh)
        return serving.resolve(actor, name, alias=selector, fresh=fresh)


def parse_selector(raw: str) -> Selector:
    """``name:Stage`` or ``name@alias``; invalid names, stages and aliases are refused as the serving routes do."""
    if ":" in raw:
        name, _, stage = raw.partition(":")
        key = serving.answer_key(name, stage=stage)
        return Selector(f"{key[1]}:{key[2]}", key)
    if "@" in raw:
        name, _, alias = raw.rpartition("@")
        key = serving.answer_key(name, alias=alias)
        return Selector(f"{key[1]}@{alias}", key)
    raise InvalidArgument(f"Invalid selector {raw!r}: use <model>:<stage> or <model>@<alias>.", {"field": "select"})


def parse_selectors(raws: list[str], limit: int) -> list[Selector]:
    """The stream's selectors, in order, without repeats (at least one, at most ``limit``)."""
    if not raws:
        raise InvalidArgument("Name at least one selector: select=<model>:<stage> or select=<model>@<alias>.",
                              {"field": "select"})
    if len(raws) > limit:
        raise InvalidArgument(f"{len(raws)} selectors given; a stream watches at most {limit}.",
                              {"field": "select", "limit": limit})
    selectors: dict[tuple, Selector] = {}
    for raw in raws:
        parsed = parse_selector(raw)
        selectors.setdefault(parsed.key, parsed)
    return list(selectors.values())


@dataclass(frozen=True, slots=True)
class Change:
    """What to tell the client about one selector: its answer (``answer.version`` None: nothing in the stage
    or behind the alias), or ``missing`` (no such model, or one the actor cannot read); ``position`` is the
    stream's position once the client has it. ``answer`` and ``missing`` both None: only the position moved
    (the model changed, this answer did not)."""

    selector: Selector
    answer: serving.Answer | None
    missing: NotFound | None
    position: str


def _digest(selectors: list[Selector]) -> str:
    return hashlib.sha256("\n".join(s.text for s in selectors).encode()).hexdigest()[:12]


def _entry(answer: serving.Answer | None) -> str:
    return MISSING if answer is None else f"{answer.model_id}.{answer.generation}"


def _content(answer: serving.Answer | None) -> tuple:
    """What the client sees of an answer, without the generation (which moves with any change to the model)."""
    if answer is None:
        return ("missing",)
    return (answer.model_id, answer.model_name, answer.version)


@dataclass
class Watch:
    actor: Actor
    selectors: list[Selector]
    # Checks the caller's token again (raising Unauthenticated once it is revoked or expired); None: no tokens.
    reauthenticate: Callable[[], Actor] | None = None
    _entries: list[str] = field(init=False)
    _answers: list = field(init=False)
    _label: Label | None = field(init=False, default=None)
    _missing_label: Label | None = field(init=False, default=None)
    _missing_checked_at: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        self._entries = [""] * len(self.selectors)
        self._answers = [None] * len(self.selectors)

    # --- positions -----------------------------------------------------------------------------------------

    @property
    def position(self) -> str:
        return f"{POSITION_VERSION}:{_digest(self.selectors)}:{','.join(self._entries)}"

    def _held(self, position: str | None) -> list[str] | None:
        """The entries a client's position names for these selectors, or None if it is unknown."""
        if not position:
            return None
        parts = position.split(":")
        if len(parts) != 3 or parts[0] != POSITION_VERSION or parts[1] != _digest(self.selectors):
            return None
        entries = parts[2].split(",")
        if len(entries) != len(self.selectors):
            return None
        for entry in entries:
            model_id, dot, generation = entry.partition(".")
            if entry not in ("", MISSING) and not (dot and model_id.isdigit() and generation.isdigit()):
                return None
        return entries

    # --- reading -------------------------------------------------------------------------------------------

    def _read(self, index: int, *, fresh: bool = False) -> tuple[serving.Answer | None, NotFound | None]:
        try:
            return self.selectors[index].resolve(self.actor, fresh=fresh), None
        except NotFound as missing:
            return None, missing

    def _record(self, index: int, answer: serving.Answer | None, missing: NotFound | None,
                *, always: bool) -> Change | None:
        """Take a fresh reading of one selector; the change to send, if the client's answer differs."""
        changed = always or _content(answer) != _content(self._answers[index])
        moved = _entry(answer) != self._entries[index]
        self._answers[index] = answer
        self._entries[index] = _entry(answer)
        if changed:
            return Change(self.selectors[index], answer, missing, self.position)
        if moved:
            return Change(self.selectors[index], None, None, self.position)
        return None

    @read_only
    def start(self, position: str | None) -> tuple[bool, list[Change]]:
        """The first answers: every one (fresh stream), or only those that moved since the client's
        ``position``. Returns (whether a given position was unknown, the changes to send)."""
        self._label = self._missing_label = caches().hub.label()
        self._missing_checked_at = time.monotonic()
        held = self._held(position)
        changes = []
        for index in range(len(self.selectors)):
            answer, missing = self._read(index)
            entry = None if held is None else held[index]
            if entry and entry != MISSING and answer is not None:
                model_id, _, generation = entry.partition(".")
                if int(model_id) == answer.model_id and int(generation) > answer.generation:
                    # The client read a newer generation on another process: this one has not heard yet.
                    answer, missing = self._read(index, fresh=True)
            if entry is not None and entry == _entry(answer):
                self._answers[index], self._entries[index] = answer, entry
                continue
            changes.append(self._record(index, answer, missing, always=True))
        return position is not None and held is None, changes

    def _waiting_on(self) -> set:
        return {a.model_id for a in self._answers if a is not None} | {GRANTS, TOKENS}

    def _missing(self) -> list[int]:
        return [i for i, answer in enumerate(self._answers) if answer is None]

    def wait(self, timeout: float) -> None:
        """Sleep until something this stream shows may have changed, or ``timeout`` passes."""
        hub = caches().hub
        if not hub.healthy:
            time.sleep(min(timeout, UNHEALTHY_POLL_SECONDS))
            return
        any_after = None
        if self._missing():
            due = self._missing_checked_at + MISSING_RECHECK_SECONDS - time.monotonic()
            if due > 0:
                timeout = min(timeout, due)
            else:
                any_after = self._missing_label.sequence
        hub.wait_any(self._waiting_on(), self._label, timeout, any_after=any_after)

    @read_only
    def refresh(self) -> list[Change]:
        """Read again what may have changed since the last reading; the changes to send."""
        hub = caches().hub
        self._label, changed = hub.changes_since(self._waiting_on(), self._label)
        if self.reauthenticate is not None:  # after the label: a revocation announced later wakes the next wait
            self.actor = self.reauthenticate()
        everything = changed is None or GRANTS in changed
        indices = set(range(len(self.selectors))) if everything else {
            i for i, a in enumerate(self._answers) if a is not None and a.model_id in changed}
        missing = self._missing()
        if missing and time.monotonic() - self._missing_checked_at >= MISSING_RECHECK_SECONDS:
            if everything or self._label.epoch != self._missing_label.epoch \
                    or self._label.sequence > self._missing_label.sequence:
                indices.update(missing)
            self._missing_label, self._missing_checked_at = self._label, time.monotonic()
        elif everything:
            self._missing_label = self._label
        changes = []
        for index in sorted(indices):
            answer, missing_error = self._read(index)
            change = self._record(index, answer, missing_error, always=False)
            if change is not None:
                changes.append(change)
        return changes
