"""The per-process serving state of an app: its change hub, answer cache and long-poll slots."""
from __future__ import annotations

import threading
from typing import Any, Callable

from flask import current_app

from ..changes import hub_for
from ..services import serving
from . import fast_path
from .authn import current_actor

STATE_KEY = "registry_serving"


class ServingState:
    def __init__(self, app) -> None:
        self.hub = hub_for(app)
        self.cache = serving.cache_for(app)
        # REGISTRY_MAX_WAITERS=0 turns long-polling off: every ?wait= answers at once ("busy").
        self.waiters = threading.BoundedSemaphore(app.config["REGISTRY_SETTINGS"].max_waiters)


def serving_state() -> ServingState:
    app = current_app._get_current_object()
    state = app.extensions.get(STATE_KEY)
    if state is None:
        state = app.extensions.setdefault(STATE_KEY, ServingState(app))
    state.hub.ensure_listening()
    return state


def cached(model_name: str, operation: str, load: Callable[[], Any]) -> Any:
    """Serve a read of one model through the per-process cache (see services.serving.cached_read); the
    rendered response may then be replayed by the fast path (api/fast_path.py)."""
    result, label = serving.cached_read(serving_state().cache, current_actor(), model_name, operation, load)
    fast_path.mark(label, serving.read_key(model_name, operation))
    return result
