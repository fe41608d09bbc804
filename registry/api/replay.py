"""Which reads the response cache (``cache/responses.py``) may replay, under which key, and to whom.

A replayable view is declared with ``@replayable(parse)``: ``parse(request, **url_args)`` turns the request
into the view's arguments (a hashable value), and the view receives exactly that value. Before Flask runs,
``request_key`` routes the raw request with the app's own URL map and calls the same ``parse`` on it, so the
cache key is ``(endpoint, arguments)``: whatever the view depends on is in the key by construction, and
parameters the view ignores are not. A view marks the response with the model it is about (``about``); the
replay happens only for callers whose token and READ level on that model this process remembers.

**Answered directly.** A view declared with ``direct`` (the serving reads) answers through a function of the
parsed arguments and the caller; on a miss, for a caller this process remembers, the replay layer calls that
function itself, in an app context but without a request (routing, request context, hooks), and keeps what it
renders like Flask's answer. A remembered caller is one Flask authenticated before (revocation drops it); READ is
checked by the function, as in the view. Anything it raises (no READ, no such model, the database unreachable)
sends the request to Flask, which meets the same and answers in the dialect's words.

**Primed.** A view with ``direct`` may also say, with ``warm``, which of its requests reads a serving answer that
warming keeps (``registry/warming.py``); ``prime`` renders those requests through ``direct`` for the system actor
right after each warmed page, keyed by the same ``request_key`` a real request gets and labelled like the page, so
the first read of each after a deploy is a replay. Who may have it is decided at replay, per caller, as always.

**Stale while unavailable** (``cache/responses.py``): a replayable read that failed because the database is
unreachable is answered with the last known answer (``Store.last_known``) when all of these hold:

* the change listener is down and the answer was current when it went down (``Store._on_change``);
* the database has answered nothing this process sent it since then (``Outage.last_ok``: a connection handed
  back after the loss with nothing sent since proves nothing): had it answered, another host might have
  changed the answer meanwhile, and the entries prove nothing any more;
* it is at most ``REGISTRY_STALE_MAX_SECONDS`` old (0 turns this off);
* the caller's token and READ level were remembered at that moment too.

Nothing can change what the database holds while nobody reaches it, so such an answer is what every reader
would have got; it is marked stale because this process cannot prove nobody else reached it (a partition).
"""
from __future__ import annotations

import functools
import io
import json
import time
from urllib.parse import urlencode
from typing import Any, Callable, Hashable, Iterable

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException
from werkzeug.routing import RequestRedirect
from werkzeug.wrappers import Request

from ..auth import SYSTEM
from ..cache.responses import SCOPE, ResponseReplay
from ..cache.store import LastKnown
from ..extensions import CACHES_KEY, OUTAGE_KEY
from ..services.access import may_read, may_read_remembered
from ..telemetry import context as telemetry
from .authn import current_actor, remembered_actor
from .woken_replay import WOKEN_REPLAY_KEY, WokenReplay

REPLAY_KEY = "registry_replay"
_DIRECT = "registry.replay.direct"  # the environ's: the routed view's ``direct``, if it has one
Direct = tuple[Response, int]  # a response and the model it is about
AnswerKey = tuple[str, str, str]  # a serving answer's key: ("stage" | "alias", model name, stage or alias)
# A request that reads a warm answer: method, path, query arguments, JSON body.
WarmRead = tuple[str, str, dict | None, dict | None]
_MAX_BODY = 16 * 1024  # a read's JSON body (MLflow sends get-latest-versions as a POST); larger: not replayed


def replayable(parse: Callable[..., Any], *, direct: Callable[[Any, Any], Direct | None] | None = None,
               warm: Callable[[AnswerKey], WarmRead | None] | None = None):
    """Declare a read view replayable; ``parse(request, **url_args)`` gives the arguments it is called with.
    Arguments with a false ``replayable`` attribute (a long-poll, say) are served but never replayed.

    ``direct(arguments, actor)`` answers a replayable read without the web framework: a response and the model
    it is about, or None to leave the request to the view. The replay layer calls it on a miss when it knows the
    caller from memory (see the module's docstring); the view must answer through the same function, so both
    give the same bytes.

    ``warm(answer_key)`` (with ``direct``): the request of this view that reads a serving answer warming keeps
    (``services/serving.py``'s ``answer_key``), or None; ``prime`` renders it ahead of the first read."""

    def decorate(view: Callable[[Any], Any]):
        @functools.wraps(view)
        def run(**url_args):
            return view(parse(request, **url_args))

        run.replay_parse = parse
        run.replay_direct = direct
        run.replay_warm = warm
        return run

    return decorate


def answered(direct: Direct) -> Response:
    """A view's side of ``direct``: the response, marked as being about its model (``about``)."""
    response, model_id = direct
    about(model_id)
    return response


def about(model_id: int) -> None:
    """The response being rendered answers a read of this model: it may be kept for replay. The view has
    checked READ; asking again through the remembered levels (usually the registry-wide one) primes them, so
    the next identical request can be answered from memory alone."""
    may_read(current_actor(), model_id)
    request.environ[SCOPE] = model_id


_MAX_ROUTES = 20_000  # remembered routings per process (a path is at most a few hundred bytes)


Routed = tuple[str, dict, Callable, str, Callable | None]  # endpoint, URL arguments, parse, rule, direct


def _router(app: Flask) -> Callable[..., Routed | None]:
    """(method, raw path) -> (endpoint, URL arguments, parse, rule) of a replayable view, else None. Routing
    depends on the method and path alone (no host or subdomain rules here), so its answers are remembered."""
    adapter = app.url_map.bind("replay")
    known: dict[tuple[str, str], Routed | None] = {}

    def route(method: str, raw_path: str, remember: bool = True) -> Routed | None:
        found = known.get((method, raw_path), False)
        if found is not False:
            return found
        path = raw_path.encode("latin-1").decode("utf-8", "replace")
        try:
            rule, url_args = adapter.match(path, method, return_rule=True)
        except (HTTPException, RequestRedirect):
            found = None
        else:
            view = app.view_functions.get(rule.endpoint)
            parse = getattr(view, "replay_parse", None)
            found = None if parse is None else (rule.endpoint, url_args, parse, rule.rule, view.replay_direct)
        if remember:  # not warming's tens of thousands of paths: they would push out what is asked
            if len(known) >= _MAX_ROUTES:
                known.clear()
            known[(method, raw_path)] = found
        return found

    return route


def _request_key(app: Flask) -> Callable[..., Hashable | None]:
    route = _router(app)

    def key(environ: dict, remember: bool = True) -> Hashable | None:
        method = environ.get("REQUEST_METHOD")
        if method not in ("GET", "POST"):
            return None
        routed = route(method, environ.get("PATH_INFO", ""), remember)
        if routed is None:
            return None
        endpoint, url_args, parse, rule, direct = routed
        # For the request's metric and log line, should this be answered from the cache (telemetry/requests.py).
        environ[telemetry.ROUTE] = rule
        environ[telemetry.ENDPOINT] = endpoint
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return None
        if not 0 <= length <= _MAX_BODY:
            return None
        req = Request(environ)
        if length:
            body = req.get_data(cache=True)
            environ["wsgi.input"] = io.BytesIO(body)  # Flask reads the same bytes if this is a miss
        try:
            arguments = parse(req, **url_args)
            hash(arguments)
        except Exception:  # a request its view refuses (a 4xx, which Flask renders) is never replayed
            return None
        if getattr(arguments, "replayable", True) is False:
            return None
        if direct is not None:
            environ[_DIRECT] = direct
        return endpoint, arguments

    return key


def _may_replay(app: Flask) -> Callable[[dict, int], bool]:
    auth_enabled = app.config["REGISTRY_SETTINGS"].auth_enabled
    store = app.extensions[CACHES_KEY].store

    def may(environ: dict, model_id: int, known=store) -> bool:
        """``known``: where the remembered tokens and levels are looked up (the store, or its last known)."""
        if not auth_enabled:
            return True  # every caller is an admin (local experiments only)
        actor = remembered_actor(known, environ.get("HTTP_AUTHORIZATION"))  # None: Flask decides (or 401s)
        if actor is None or not may_read_remembered(known, actor, model_id):
            return False
        environ[telemetry.ACTOR] = actor.name
        return True

    return may


def _last_known(app: Flask, may_replay: Callable[..., bool]) -> Callable[[dict, Hashable], tuple | None]:
    store = app.extensions[CACHES_KEY].store
    outage = app.extensions[OUTAGE_KEY]
    max_age = app.config["REGISTRY_SETTINGS"].stale_max_seconds
    known = LastKnown(store)

    def last_known(environ: dict, key: Hashable) -> tuple | None:
        since = store.last_known_since
        if not max_age or since is None or outage.last_ok >= since:
            return None
        age = time.monotonic() - since
        entry = store.last_known(key)
        if age > max_age or entry is None or not may_replay(environ, entry.scope, known):
            return None
        return entry, age

    return last_known


def _answer_directly(app: Flask) -> Callable[[dict, Hashable], tuple | None]:
    store = app.extensions[CACHES_KEY].store
    auth_enabled = app.config["REGISTRY_SETTINGS"].auth_enabled

    def answer(environ: dict, key: Hashable) -> tuple | None:
        """(status, headers, body, model) of a read its view's ``direct`` answered, else None (Flask answers)."""
        direct = environ.get(_DIRECT)
        if direct is None or not auth_enabled:  # without authentication Flask marks every answer (authn.py)
            return None
        actor = remembered_actor(store, environ.get("HTTP_AUTHORIZATION"))
        if actor is None:
            return None  # Flask authenticates the caller, and remembers them for the next request
        with app.app_context():
            rendered = _render(direct, key[1], actor, environ)
        if rendered is not None:
            environ[telemetry.ACTOR] = actor.name
        return rendered

    return answer


def _render(direct: Callable[[Any, Any], Direct | None], arguments: Any, actor,
            environ: dict) -> tuple[str, list, bytes, int] | None:
    """(status, headers, body, model) of ``direct``'s answer, in an app context; None if it gave none or raised."""
    try:
        found = direct(arguments, actor)
    except Exception:
        # A model that does not exist, a database that cannot be reached: the view meets the same and the app
        # renders it, in the dialect's words (with the last known answer if there is one).
        return None
    if found is None:
        return None
    response, model_id = found
    started: list = []
    body = b"".join(response(environ, lambda status, headers, exc_info=None: started.extend((status, headers))))
    status, headers = started
    return status, headers, body, model_id


def _environ(method: str, path: str, query: dict | None, body: dict | None) -> dict:
    """A WSGI environ of the request, as a server would give it (a tenth of werkzeug's EnvironBuilder's cost:
    warming renders tens of thousands)."""
    content = b"" if body is None else json.dumps(body).encode()
    return {
        "REQUEST_METHOD": method, "SCRIPT_NAME": "", "PATH_INFO": path.encode().decode("latin-1"),  # WSGI's form
        "QUERY_STRING": "" if query is None else urlencode(query),
        "CONTENT_TYPE": "application/json" if content else "", "CONTENT_LENGTH": str(len(content)),
        "SERVER_NAME": "registry", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_HOST": "registry",
        "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(content), "wsgi.errors": io.StringIO(),
        "wsgi.multithread": False, "wsgi.multiprocess": False, "wsgi.run_once": False, "wsgi.version": (1, 0),
    }


def prime(app: Flask, keys: Iterable[AnswerKey], label: Any) -> int:
    """Render every request that reads one of these warm answers (the views' ``warm``) and keep it for replay,
    as if it had just been asked: the first read of each after a deploy is then a replay. Rendered by the view's
    ``direct`` for the system actor (the answer is the same for every reader); who may have it is decided at
    replay, as for every kept answer. ``label``: taken before the answers were read. In an app context.
    Returns how many were rendered."""
    replay = app.extensions[REPLAY_KEY]
    warms = {view.replay_warm for view in app.view_functions.values() if getattr(view, "replay_warm", None)}
    count = 0
    for key in keys:
        for warm in warms:
            read = warm(key)
            if read is None:
                continue
            environ = _environ(*read)
            replay_key = replay.request_key(environ, remember=False)
            direct = environ.get(_DIRECT)
            if replay_key is None or direct is None:
                continue
            rendered = _render(direct, replay_key[1], SYSTEM, environ)
            if rendered is not None:
                status, headers, content, model_id = rendered
                replay.keep(replay_key, model_id, label, status, headers, content)
                count += 1
    return count


def install(app: Flask) -> None:
    may_replay = _may_replay(app)
    replay = ResponseReplay(app.wsgi_app, app.extensions[CACHES_KEY], _request_key(app), may_replay,
                            _last_known(app, may_replay), _answer_directly(app))
    app.wsgi_app = app.extensions[REPLAY_KEY] = replay  # other layers wrap it later (telemetry)
    # Woken long-polls answered from one rendering (woken_replay.py), through the same cache.
    app.extensions[WOKEN_REPLAY_KEY] = WokenReplay(app.extensions[CACHES_KEY].store)
