"""The serving hot path of the native API: current version by stage or alias, with ETag, 304 and long-poll.

``GET /api/v1/models/{name}/stages/{stage}`` and ``GET /api/v1/models/{name}/aliases/{alias}``:
* ``ETag`` is strong and changes with the model's generation; ``If-None-Match`` with it gives 304, no body;
* ``?wait=<seconds>`` (at most 60) with ``If-None-Match``: if the answer still matches, hold the request until
  it changes (woken by PostgreSQL NOTIFY) or the time is up (then 304); if it already differs, answer now;
* a model with nothing in that stage answers 404, with an ETag too, so a client can wait for a first version;
* ``?as_of=<instant>`` answers what was served then instead (``history.py``): never from the caches nor
  replayed (``ServingRead.replayable``), no ETag and no long-poll (``wait`` with it is a 400).
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime

from flask import Blueprint, Response, current_app, jsonify, make_response, request

from ...errors import InvalidArgument
from ...extensions import caches
from ...schemas.native import ServingArgs, current_version_json, error_json
from ...services import serving
from ...telemetry import metrics
from ...cache.hub import Label
from ..replay import AnswerKey, WarmRead, about, answered, replayable
from ..woken_replay import WOKEN_REPLAY_KEY
from .history import serve_as_of
from .http import args, current_actor

bp = Blueprint("native_serving", __name__, url_prefix="/api/v1")

_SERVING_ETAG = re.compile(r'^(?:W/)?"(\d{1,19})\.(\d{1,19})"$')

@dataclass(frozen=True)
class ServingRead:
    """A serving request, parsed: the answer's cache key (validated, stage canonical), the client's ETags,
    the long-poll wait, and the instant of a question about the past. ``as_of`` is part of the replay key
    too (every field is), but such a request is never replayed at all."""

    key: tuple[str, str, str]
    etags: frozenset[str]
    wait: float | None
    as_of: datetime | None = None

    @property
    def replayable(self) -> bool:
        # A long-poll's answer depends on how the wait went. A past answer is read from the trail each time:
        # the current answer's caches know nothing of it, and "as of a moment ago" may still gain an event
        # stamped before that moment whose transaction was committing as we read.
        return not self.wait and self.as_of is None

    def resolve(self, actor, *, fresh: bool = False, model_id: int | None = None) -> serving.Answer:
        kind, name, selector = self.key
        if kind == "stage":
            return serving.resolve(actor, name, stage=selector, fresh=fresh, model_id=model_id)
        return serving.resolve(actor, name, alias=selector, fresh=fresh, model_id=model_id)


def _parse(req, name: str, stage: str | None = None, alias: str | None = None) -> ServingRead:
    header = req.headers.get("If-None-Match", "")
    etags = frozenset(tag.strip() for tag in header.split(",") if tag.strip())
    # No query string, no arguments: skipping the schema saves most of this parse on the hottest path.
    query = args(ServingArgs, req) if req.query_string else {}
    wait, as_of = query.get("wait"), query.get("as_of")
    if wait is not None and as_of is not None:
        raise InvalidArgument("wait cannot be combined with as_of: long-polls wait for the current answer to "
                              "change, and as_of asks about the past.", {"field": "wait"})
    return ServingRead(serving.answer_key(name, stage=stage, alias=alias), etags, wait, as_of)


def _matches(answer: serving.Answer, etags: frozenset[str]) -> bool:
    # "*" matches any current representation; an empty stage or an unset alias has none (RFC 9110 13.1.2).
    return ("*" in etags and answer.version is not None) or answer.etag in etags or f"W/{answer.etag}" in etags


def _behind(answer: serving.Answer, etags: frozenset[str]) -> bool:
    """The client holds a newer generation of this model than our answer: another process served it after a
    change whose notification has not reached this one yet. Read the database rather than send it back in time."""
    for tag in etags:
        match = _SERVING_ETAG.match(tag)
        if match and int(match.group(1)) == answer.model_id and int(match.group(2)) > answer.generation:
            return True
    return False


def _wait(read: ServingRead, actor, answer: serving.Answer, label) -> tuple[serving.Answer, str, Label, object]:
    """Hold the request until the answer stops matching the client's ETags, or the wait is over. Returns the
    answer, how the wait went, the label taken before the answer was read, and the request's place among the
    parked long-polls (``woken_replay.py``; None if it was not parked)."""
    current = caches()
    if not current.waiters.try_enter():
        metrics.LONGPOLL_BUSY.inc()
        # The worker's waiter budget is spent: answer now, the client polls again.
        return answer, "busy", label, None
    metrics.LONGPOLL_WAITERS.inc()
    parked = _woken().park(request.environ, read.key, actor, read.etags)
    try:
        deadline = time.monotonic() + read.wait
        while _matches(answer, read.etags):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not current.hub.wait(answer.model_id, answer.generation, remaining, label):
                break
            label = current.hub.label()
            # Every waiter on the model wakes at once: they share one read of the new answer.
            answer = read.resolve(actor, model_id=answer.model_id)
    finally:
        _woken().unpark(parked)
        metrics.LONGPOLL_WAITERS.dec()
        current.waiters.leave()
    return answer, "yes", label, parked


def _woken():
    return current_app.extensions[WOKEN_REPLAY_KEY]


def _serve(read: ServingRead):
    if not read.wait:
        return answered(_current(read, current_actor()))
    actor = current_actor()
    label = caches().hub.label()  # before reading: a listener reset after it means "read again"
    answer = _resolve(read, actor)
    waited = "no"
    if _matches(answer, read.etags):
        answer, waited, label, parked = _wait(read, actor, answer, label)
        if _woken().answered_early(parked) and _matches(answer, read.etags):
            # Answered with a newer answer just as its wait ran out: finish with that one, as the client saw.
            label = caches().hub.label()
            answer = read.resolve(actor, model_id=answer.model_id)
        if not _matches(answer, read.etags):
            # Woken by a change: the same bytes as every other woken request with this answer, sent at once.
            _woken().answer(parked, answer.etag, answer.model_id, label,
                            lambda etags: not _matches(answer, etags))
    response = _response(read, answer)
    response.headers["X-Registry-Waited"] = waited
    about(answer.model_id)
    return response


def _resolve(read: ServingRead, actor) -> serving.Answer:
    answer = read.resolve(actor)
    if _behind(answer, read.etags):
        answer = read.resolve(actor, fresh=True)
    return answer


def _current(read: ServingRead, actor) -> tuple[Response, int]:
    """The answer of a read that does not wait, and its model: the view's answer, and the replay layer's when it
    answers a miss directly (``replay.replayable``)."""
    answer = _resolve(read, actor)
    return _response(read, answer), answer.model_id


def _direct(read: ServingRead, actor) -> tuple[Response, int] | None:
    return _current(read, actor) if read.replayable else None


def _response(read: ServingRead, answer: serving.Answer) -> Response:
    if _matches(answer, read.etags):
        response = make_response("", 304)
    elif answer.version is None:
        error = serving.not_found(answer, read.key)
        response = make_response(jsonify(error_json(error.code, error.message, error.details)), 404)
    else:
        response = make_response(jsonify(current_version_json(answer.model_name, answer.generation, answer.version)), 200)
    response.headers["ETag"] = answer.etag
    # Any cache may keep it but must revalidate every time: the answer can change at any moment.
    response.headers["Cache-Control"] = "no-cache"
    return response


def _warm_read(kind: str, segment: str):
    """The plain read (no ETag, no wait) of a warm answer of this kind (``replay.prime``)."""
    def read(key: AnswerKey) -> WarmRead | None:
        if key[0] != kind:
            return None
        return "GET", f"{bp.url_prefix}/models/{key[1]}/{segment}/{key[2]}", None, None  # names hold no "/"

    return read


@bp.get("/models/<name>/stages/<stage>")
@replayable(lambda req, name, stage: _parse(req, name, stage=stage), direct=_direct, warm=_warm_read("stage", "stages"))
def current_in_stage(read: ServingRead):
    return _serve(read) if read.as_of is None else serve_as_of(read.key, read.as_of)


@bp.get("/models/<name>/aliases/<alias>")
@replayable(lambda req, name, alias: _parse(req, name, alias=alias), direct=_direct,
            warm=_warm_read("alias", "aliases"))
def current_by_alias(read: ServingRead):
    return _serve(read) if read.as_of is None else serve_as_of(read.key, read.as_of)
