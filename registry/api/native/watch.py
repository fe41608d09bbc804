"""``GET /api/v1/watch``: several serving answers as one Server-Sent Events stream (``services/watching.py``).

``?select=<model>:<stage>&select=<model>@<alias>...`` (at most REGISTRY_WATCH_MAX_SELECTORS). The stream
sends, for each selector, its current answer and then every change of it:

* ``event: answer``, ``data:`` the long-poll's 200 body plus ``"selector"``;
* ``event: missing``, ``data:`` ``{"selector", "error"}`` with the long-poll's 404 error (nothing in the stage,
  no such alias, or no such model: a model the caller cannot read is reported exactly like a missing one);
* ``event: reset``: the ``Last-Event-ID`` the client sent is unknown (another selector list, or garbage); every
  answer follows afresh;
* ``event: end``, then the stream closes: the token was revoked or expired (no point reconnecting), or the
  server failed (reconnect);
* ``: heartbeat`` comment lines every REGISTRY_WATCH_HEARTBEAT_SECONDS while nothing else is sent.

Every answer and missing event carries ``id:``, the stream's resumable position; a change of the model that
leaves every answer as it was sends a bare ``id:`` line, so the client's position keeps up. Reconnecting with
``Last-Event-ID`` sends only what moved since. The token is checked again whenever any token changes
(revocation ends the stream within the notification's delay) and at each heartbeat (expiry).

An open stream takes one waiting slot of the long-polls' budget (REGISTRY_MAX_WAITERS) for its whole life;
without a free one it is refused at once with 503 and ``Retry-After``. It holds no database connection while
it waits.
"""
from __future__ import annotations

import json
import logging
import time

from flask import Blueprint, Response, jsonify, request, stream_with_context

from ...auth import token_from_authorization
from ...errors import RegistryError, Unauthenticated
from ...extensions import caches, settings
from ...schemas.native import WatchArgs, current_version_json, error_json
from ...services import serving, watching
from ..authn import authenticate_token
from .http import args, current_actor

log = logging.getLogger("registry.api")

bp = Blueprint("native_watch", __name__, url_prefix="/api/v1")

RETRY_MS = 2000  # the reconnection delay EventSource clients use after the stream drops


def _sse(event: str | None = None, data: dict | None = None, position: str | None = None) -> str:
    lines = []
    if position is not None:
        lines.append(f"id: {position}")
    if event is not None:
        lines.append(f"event: {event}")
    if data is not None:
        lines.append("data: " + json.dumps(data, separators=(",", ":")))
    return "\n".join(lines) + "\n\n"


def _render(change: watching.Change) -> str:
    selector = change.selector
    if change.answer is None and change.missing is None:
        return _sse(position=change.position)
    answer = change.answer
    if answer is not None and answer.version is not None:
        body = current_version_json(answer.model_name, answer.generation, answer.version)
        return _sse("answer", {"selector": selector.text, **body}, change.position)
    error = change.missing if answer is None else serving.not_found(answer, selector.key)
    return _sse("missing", {"selector": selector.text, **error_json(error.code, error.message, error.details)},
                change.position)


def _end(reason: str, error: RegistryError) -> str:
    return _sse("end", {"reason": reason, **error_json(error.code, error.message, error.details)})


@bp.get("/watch")
def watch():
    config = settings()
    selectors = watching.parse_selectors(args(WatchArgs).get("select", []), config.watch_max_selectors)
    if config.auth_enabled:
        token = token_from_authorization(request.headers.get("Authorization"))
        reauthenticate = lambda: authenticate_token(token)  # noqa: E731
    else:
        reauthenticate = None
    stream = watching.Watch(current_actor(), selectors, reauthenticate=reauthenticate)
    current = caches()
    if not current.waiters.try_enter():
        response = jsonify(error_json("UNAVAILABLE", "Every waiting slot of this server is taken; retry later.",
                                      {"retry_after_seconds": RETRY_MS // 1000}))
        response.headers["Retry-After"] = str(RETRY_MS // 1000)
        return response, 503
    try:
        unknown, first = stream.start(request.headers.get("Last-Event-ID"))
    except BaseException:
        current.waiters.leave()
        raise
    heartbeat = config.watch_heartbeat_seconds

    def events():
        yield f"retry: {RETRY_MS}\n\n"
        if unknown:
            yield _sse("reset", {"reason": "The Last-Event-ID is unknown here: every answer follows afresh."})
        for change in first:
            yield _render(change)
        written = time.monotonic()
        while True:
            stream.wait(max(0.0, written + heartbeat - time.monotonic()))
            if current.hub.closing:  # SIGTERM: end now, so the client reconnects to another replica at once
                yield _end("shutdown", RegistryError("The server is shutting down; reconnect with Last-Event-ID."))
                return
            try:
                changes = stream.refresh()
            except Unauthenticated as error:
                yield _end("unauthenticated", error)
                return
            except Exception as error:  # the database is away, say: end cleanly, the client reconnects
                log.warning("watch stream ended: %s", error)
                yield _end("error", RegistryError("The stream failed; reconnect with Last-Event-ID."))
                return
            for change in changes:
                yield _render(change)
                written = time.monotonic()
            if time.monotonic() >= written + heartbeat:
                yield ": heartbeat\n\n"
                written = time.monotonic()

    response = Response(stream_with_context(events()), mimetype="text/event-stream")
    # Closing the response (the client went away, or the stream ended) frees the waiting slot.
    response.call_on_close(current.waiters.leave)
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"  # nginx: pass events through as they come
    return response
