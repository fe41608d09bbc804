"""The serving hot path of the native API: current version by stage or alias, with ETag, 304 and long-poll.

``GET /api/v1/models/{name}/stages/{stage}`` and ``GET /api/v1/models/{name}/aliases/{alias}``:
* ``ETag`` is strong and changes with the model's generation; ``If-None-Match`` with it gives 304, no body;
* ``?wait=<seconds>`` (at most 60) with ``If-None-Match``: if the answer still matches, hold the request until
  it changes (woken by PostgreSQL NOTIFY) or the time is up (then 304); if it already differs, answer now;
* a model with nothing in that stage answers 404, with an ETag too, so a client can wait for a first version.
"""
from __future__ import annotations

import re
import time

from flask import Blueprint, jsonify, make_response, request
from marshmallow import fields, validate

from ...schemas.native import StrictSchema, current_version_json, error_json
from ...services import serving
from .. import fast_path
from .http import args, current_actor
from ..serving_state import serving_state as _state

bp = Blueprint("native_serving", __name__, url_prefix="/api/v1")

MAX_WAIT_SECONDS = 60
_SERVING_ETAG = re.compile(r'^(?:W/)?"(\d{1,19})\.(\d{1,19})"$')


class ServingArgs(StrictSchema):
    wait = fields.Float(validate=validate.Range(min=0, max=MAX_WAIT_SECONDS))


def _client_etags() -> set[str]:
    header = request.headers.get("If-None-Match", "")
    return {tag.strip() for tag in header.split(",") if tag.strip()}


def _matches(answer: serving.Answer, etags: set[str]) -> bool:
    # "*" matches any current representation; an empty stage or an unset alias has none (RFC 9110 13.1.2).
    return ("*" in etags and answer.payload is not None) or answer.etag in etags or f"W/{answer.etag}" in etags


def _behind(answer: serving.Answer, etags: set[str]) -> bool:
    """The client holds a newer generation of this model than our answer: another process served it after a
    change whose notification has not reached this one yet. Read the database rather than send it back in time."""
    for tag in etags:
        match = _SERVING_ETAG.match(tag)
        if match and int(match.group(1)) == answer.model_id and int(match.group(2)) > answer.generation:
            return True
    return False


def _serve(name: str, *, stage: str | None = None, alias: str | None = None):
    wait = args(ServingArgs).get("wait")
    state = _state()
    actor = current_actor()
    resets = state.hub.resets  # before reading: a listener (re)connect after it means "read again"
    answer = serving.resolve(state.cache, actor, name, stage=stage, alias=alias)
    etags = _client_etags()
    if _behind(answer, etags):
        answer = serving.resolve(state.cache, actor, name, stage=stage, alias=alias, fresh=True)
    waited = "no"
    if wait and _matches(answer, etags):
        if state.waiters.acquire(blocking=False):
            waited = "yes"
            try:
                deadline = time.monotonic() + wait
                while _matches(answer, etags):
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or not state.hub.wait(answer.model_id, answer.generation, remaining, resets):
                        break
                    resets = state.hub.resets
                    answer = serving.resolve(state.cache, actor, name, stage=stage, alias=alias)
            finally:
                state.waiters.release()
        else:
            waited = "busy"  # every waiting slot is taken: answer now rather than starve other requests
    if _matches(answer, etags):
        response = make_response("", 304)
    elif answer.payload is None:
        error = serving.not_found_message(answer, stage=stage, alias=alias)
        response = make_response(jsonify(error_json(error.code, error.message, error.details)), 404)
    else:
        response = make_response(jsonify(current_version_json(answer.model_name, answer.generation, answer.payload)), 200)
    response.headers["ETag"] = answer.etag
    # Any cache may keep it but must revalidate every time: the answer can change at any moment.
    response.headers["Cache-Control"] = "no-cache"
    if wait:
        response.headers["X-Registry-Waited"] = waited
    else:
        # A long-poll's answer depends on how the wait went: never replayed.
        fast_path.mark(answer, serving.answer_key(name, stage=stage, alias=alias))
    return response


@bp.get("/models/<name>/stages/<stage>")
def current_in_stage(name: str, stage: str):
    return _serve(name, stage=stage)


@bp.get("/models/<name>/aliases/<alias>")
def current_by_alias(name: str, alias: str):
    return _serve(name, alias=alias)
