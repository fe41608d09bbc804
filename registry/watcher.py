"""The client side of ``GET /api/v1/watch``, for ``registry watch``: the sidecar that turns a promotion into a
model reload on a serving host.

It follows the stream (``api/native/watch.py``), reconnecting with exponential backoff (and ``Retry-After``)
and resuming with ``Last-Event-ID``, so nothing is missed across a dropped connection, a restarted replica or
a load balancer that picks another one. Delivery is at least once on the wire; here an answer equal to the
last one acted on for its selector (``generation`` aside) is skipped, so each change is acted on once.

What happens with a change is an ``Action``: print one JSON line (``Printer``), keep a JSON file of every
selector's current answer up to date atomically (``FileWriter``: write a temporary file, fsync, rename), or
run a command with the answer in its environment (``Runner``), one at a time.
"""
from __future__ import annotations

import json
import logging
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Protocol

import requests

log = logging.getLogger("registry.watch")

BACKOFF_START = 0.5
BACKOFF_MAX = 30.0


class Stop(Exception):
    """Following cannot go on (a refused token or selector): ``code`` is the exit status."""

    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.code = code


@dataclass
class Event:
    event: str
    data: str
    id: str | None  # the last event id seen so far (ids persist across events, as in EventSource)


def parse(lines: Iterable[str]) -> Iterator[Event | str]:
    """Server-Sent Events (the WHATWG rules that matter here): yields events, and each ``id`` as a plain str
    when it arrives without data (the server's "your position moved")."""
    event, data, last_id, id_seen = "", [], None, False
    for line in lines:
        if line == "":
            if data:
                yield Event(event or "message", "\n".join(data), last_id)
            elif id_seen:
                yield last_id
            event, data, id_seen = "", [], False
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
        elif name == "id" and "\0" not in value:
            last_id, id_seen = value, True


class Action(Protocol):
    def __call__(self, kind: str, answer: dict) -> None: ...


class Printer:
    """One JSON line per change on stdout: the event's data with ``"event"`` (``answer`` or ``missing``)."""

    def __call__(self, kind: str, answer: dict) -> None:
        sys.stdout.write(json.dumps({"event": kind, **answer}, separators=(",", ":")) + "\n")
        sys.stdout.flush()


@dataclass
class FileWriter:
    """``path`` holds a JSON object: selector -> its current answer (``null`` while missing), replaced atomically,
    so a reader never sees half a file."""

    path: str
    answers: dict = field(default_factory=dict)

    def __call__(self, kind: str, answer: dict) -> None:
        self.answers[answer["selector"]] = answer if kind == "answer" else None
        directory = os.path.dirname(os.path.abspath(self.path))
        handle, temporary = tempfile.mkstemp(dir=directory, prefix=".registry-watch-")
        try:
            with os.fdopen(handle, "w") as out:
                json.dump(self.answers, out, indent=2, sort_keys=True)
                out.write("\n")
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            os.unlink(temporary)
            raise


@dataclass
class Runner:
    """Runs ``command`` (with ``sh -c``) for each change, waiting for it; the answer is in its environment:
    REGISTRY_WATCH_EVENT, REGISTRY_WATCH_SELECTOR, REGISTRY_WATCH_JSON (the whole answer) and, for answers,
    REGISTRY_MODEL, REGISTRY_VERSION, REGISTRY_STAGE, REGISTRY_SOURCE, REGISTRY_STORAGE_LOCATION, REGISTRY_RUN_ID."""

    command: str

    def __call__(self, kind: str, answer: dict) -> None:
        env = dict(os.environ)
        env.update(REGISTRY_WATCH_EVENT=kind, REGISTRY_WATCH_SELECTOR=answer["selector"],
                   REGISTRY_WATCH_JSON=json.dumps(answer, separators=(",", ":")))
        if kind == "answer":
            for name in ("model", "version", "stage", "source", "storage_location", "run_id"):
                env[f"REGISTRY_{name.upper()}"] = "" if answer.get(name) is None else str(answer[name])
        code = subprocess.run(["/bin/sh", "-c", self.command], env=env).returncode
        if code != 0:
            log.warning("registry watch: %r exited with %s for %s", self.command, code, answer["selector"])


def _same(a: dict | None, b: dict) -> bool:
    if a is None:
        return False
    return {k: v for k, v in a.items() if k != "generation"} == {k: v for k, v in b.items() if k != "generation"}


@dataclass
class Follower:
    base_url: str
    selectors: list[str]
    token: str | None
    actions: list[Action]
    idle_timeout: float = 60.0  # no byte for this long (heartbeats included): the connection is dead
    last_event_id: str | None = None
    _acted: dict = field(default_factory=dict)

    def run(self, *, max_connections: int | None = None) -> None:
        """Follow until stopped (``max_connections``: give up after that many, for tests and scripts)."""
        backoff, connections = BACKOFF_START, 0
        while max_connections is None or connections < max_connections:
            connections += 1
            try:
                delivered = self._connect()
                wait = None
            except Stop:
                raise
            except RetryAfter as busy:
                delivered, wait = False, busy.seconds
            except (requests.RequestException, OSError, ValueError) as error:
                log.warning("registry watch: %s", error)
                delivered, wait = False, None
            if delivered:
                backoff = BACKOFF_START
            pause = wait if wait is not None else backoff * (0.5 + random.random())
            log.info("registry watch: reconnecting in %.1fs", pause)
            time.sleep(pause)
            backoff = min(backoff * 2, BACKOFF_MAX)

    def _connect(self) -> bool:
        """One connection, read until it ends; True if it delivered anything."""
        headers = {"Accept": "text/event-stream"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if self.last_event_id:
            headers["Last-Event-ID"] = self.last_event_id
        url = self.base_url.rstrip("/") + "/api/v1/watch"
        with requests.get(url, params=[("select", s) for s in self.selectors], headers=headers, stream=True,
                          timeout=(10, self.idle_timeout)) as response:
            if response.status_code in (401, 403):
                raise Stop(f"the server refused the token: {_message(response)}", 3)
            if response.status_code == 400:
                raise Stop(f"the server refused the request: {_message(response)}", 2)
            if response.status_code == 503:
                raise RetryAfter(float(response.headers.get("Retry-After") or BACKOFF_START))
            response.raise_for_status()
            delivered = False
            for item in parse(response.iter_lines(decode_unicode=True)):
                delivered = True
                if isinstance(item, str):
                    self.last_event_id = item
                    continue
                if item.id is not None:
                    self.last_event_id = item.id
                self._handle(item)
            return delivered

    def _handle(self, event: Event) -> None:
        data = json.loads(event.data)
        if event.event == "end":
            if data.get("reason") == "unauthenticated":
                raise Stop(f"the stream ended: {data['error']['message']}", 3)
            return  # the server failed: reconnect
        if event.event == "reset":
            log.info("registry watch: %s", data.get("reason"))
            return
        if event.event not in ("answer", "missing"):
            return
        selector = data["selector"]
        if _same(self._acted.get(selector), data):
            return
        self._acted[selector] = data
        for action in self.actions:
            action(event.event, data)


class RetryAfter(Exception):
    def __init__(self, seconds: float):
        super().__init__(f"server busy; retrying in {seconds}s")
        self.seconds = seconds


def _message(response: requests.Response) -> str:
    try:
        return response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code}"
