"""Replays cached read answers before Flask's request machinery runs.

Serving systems ask the same few questions (current Production, an alias, one version, one model) thousands
of times a second. Once the data is cached, Flask's routing, request context, hooks and response objects cost
most of an answer's time. So a view that served a cacheable read marks the request with the answer's label
(model id and the generation it was read at; ``mark``), and this WSGI middleware keeps the response Flask
rendered (status, headers, body), keyed by everything in the request the answer depends on: method, path,
query string, Content-Type, If-None-Match and the body of a read-only POST. The next identical request is
answered with those bytes while the model's generation is unchanged.

The entries live in the serving cache (services/serving.py), so they obey its rules: labelled with the
generation read *before* the data, dropped when the model's change is announced, ignored while the change
listener is down. Who asks matters only for *whether* they may see the model, so a replay needs a token
already in the token cache and a READ level already in the permission cache. Anything the middleware cannot
decide from memory (no or unknown token, expired token, unknown level, no READ, long-polls, an uncached
request) goes to Flask, which answers exactly as it always has, and may cache the answer for next time.
"""
from __future__ import annotations

import io
from typing import Any, Callable, Iterable

from flask import Flask, request

from ..auth import token_from_authorization
from ..errors import RegistryError
from ..services import serving
from .authn import TOKENS_KEY
from . import serving_state

MARK = "registry.fast_path.label"
EXTENSION_KEY = "registry_fast_path"
_CACHEABLE_STATUSES = ("200", "304", "404")
# Read-only POST endpoints (MLflow's client sends get-latest-versions as a POST with a JSON body).
_READ_POSTS = frozenset(
    f"{prefix}/2.0/mlflow/registered-models/get-latest-versions" for prefix in ("/api", "/ajax-api")
)
_MAX_POST_BODY = 16 * 1024


def mark(label: serving.Answer | None, source: tuple) -> None:
    """The view answering this request served a cacheable read of the model ``label`` names, from the serving
    cache entry ``source``. Once the rendered response is kept, that entry is dropped: identical requests
    are answered from the response, and one entry per answer keeps the cache's memory in bounds."""
    if label is not None:
        request.environ[MARK] = (label, source)


class FastPath:
    """WSGI middleware in front of ``app.wsgi_app`` (see the module doc)."""

    def __init__(self, app: Flask, wsgi_app: Callable) -> None:
        self.app = app
        self.wsgi_app = wsgi_app
        self.settings = app.config["REGISTRY_SETTINGS"]
        self.hits = 0  # answers replayed by this process (tests and diagnostics; not exact under threads)

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        key = _request_key(environ)
        if key is None:
            return self.wsgi_app(environ, start_response)
        state = self.app.extensions.get(serving_state.STATE_KEY)
        if state is not None:
            replay = self._replay(state, key, environ)
            if replay is not None:
                status, headers, body = replay
                start_response(status, list(headers))
                return [body]
        return self._answer_and_keep(key, environ, start_response)

    def _replay(self, state: Any, key: tuple, environ: dict) -> tuple[str, tuple, bytes] | None:
        state.hub.ensure_listening()  # after a fork, this process must listen before trusting its cache
        entry = state.cache.answer(key)
        if entry is None or not self._may_read(state, environ, entry.model_id):
            return None
        self.hits += 1
        return entry.payload

    def _may_read(self, state: Any, environ: dict, model_id: int) -> bool:
        if not self.settings.auth_enabled:
            return True  # every caller is an admin (local experiments only)
        try:
            token = token_from_authorization(environ.get("HTTP_AUTHORIZATION"))
        except RegistryError:
            return False  # Flask answers 401
        actor = self.app.extensions[TOKENS_KEY].cached(token)
        return actor is not None and serving.may_read_cached(state.cache, actor, model_id)

    def _answer_and_keep(self, key: tuple, environ: dict, start_response: Callable) -> Iterable[bytes]:
        captured: list = []

        def capture(status: str, headers: list, exc_info: Any = None):
            captured[:] = [status, headers]
            return start_response(status, headers, exc_info)

        result = self.wsgi_app(environ, capture)
        marked = environ.get(MARK)
        state = self.app.extensions.get(serving_state.STATE_KEY)
        if marked is None or state is None or not captured or not captured[0].startswith(_CACHEABLE_STATUSES):
            return result
        label, source = marked
        try:
            body = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        status, headers = captured
        state.cache.store(key, serving.Answer(label.model_id, label.model_name, label.generation,
                                              (status, _shared(headers), body)))
        state.cache.discard(source)
        return [body]


_HEADERS: dict[tuple[str, str], tuple[str, str]] = {}
_MAX_SHARED_HEADERS = 4096


def _shared(headers: list[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """The headers, with repeated (name, value) pairs shared between entries: most are the same for every
    answer (Content-Type, Cache-Control, a few Content-Lengths), and tens of thousands of entries are cached."""
    out = []
    for header in headers:
        shared = _HEADERS.get(header)
        if shared is None:
            shared = header = (str(header[0]), str(header[1]))
            if header[0] != "ETag" and len(_HEADERS) < _MAX_SHARED_HEADERS:
                shared = _HEADERS.setdefault(header, header)
        out.append(shared)
    return tuple(out)


def _request_key(environ: dict) -> tuple | None:
    """What a cached read's response may depend on, or None when the request is not a candidate."""
    method = environ.get("REQUEST_METHOD")
    path = environ.get("PATH_INFO", "")
    if method == "GET":
        body = b""
    elif method == "POST" and path in _READ_POSTS:
        try:
            length = int(environ.get("CONTENT_LENGTH") or -1)
        except ValueError:
            return None
        if not 0 <= length <= _MAX_POST_BODY:
            return None
        body = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(body)  # Flask reads the same bytes if this is a miss
    else:
        return None
    # One string for the text parts (a tuple of six strings would cost twice the memory; tens of thousands of
    # keys are kept), and the body; a 2-tuple never equals the services' 3-tuple keys.
    parts = (method, path, environ.get("QUERY_STRING", ""), environ.get("CONTENT_TYPE", ""),
             environ.get("HTTP_IF_NONE_MATCH", ""))
    if any("\x00" in part for part in parts):
        return None  # the separator itself: such a request is never a candidate
    return "\x00".join(parts), body


def install(app: Flask) -> None:
    fast_path = FastPath(app, app.wsgi_app)
    app.extensions[EXTENSION_KEY] = fast_path
    app.wsgi_app = fast_path
