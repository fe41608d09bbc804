"""Each worker fills its caches with every model's serving answers, rendered, at start and after every listener
reset.

A worker caches for itself, so after a deploy (or a database restart, which resets the listener and so empties
every cache) the first read of each model in each worker is a miss: a fleet polling thousands of models then
meets a database read per model per worker at the very moment everything restarts. Instead, a worker reads the
current version in each of ``REGISTRY_WARM_STAGES`` (default ``Production``) and behind each of
``REGISTRY_WARM_ALIASES`` (default every alias) of every model, a page of models per statement
(``services/serving.py``: ``warm``, ``warm_aliases``), and then renders the reads that ask for them in each
dialect (native stage and alias reads, MLflow's get-latest-versions and get-by-alias: the views' ``warm``, in
``api/replay.py``'s ``prime``) into the response cache: the first read of each is then a replay, as cheap as
the thousandth.

Everything is kept under the one freshness rule: labelled before each page is read, dropped by any change heard
after. A model read before its page arrives is simply a miss, answered as always. Pages are small and a turn is
given between them and during the rendering, so requests are served meanwhile; it stops once the cache holds
more than half of ``REGISTRY_CACHE_MB``, leaving the rest for what is asked.
"""
from __future__ import annotations

import gc
import logging
import threading
import time
from typing import Callable

from flask import Flask

from .config import EVERY_ALIAS
from .extensions import CACHES_KEY
from .telemetry import metrics

log = logging.getLogger("registry.warming")

_SHARE_OF_CACHE = 0.5
_RENDERED_PER_TURN = 50  # answers rendered between two turns given to requests (~10 ms of CPU)


class Warmer(threading.Thread):
    def __init__(self, app: Flask) -> None:
        super().__init__(name="registry-warmer", daemon=True)
        self.app = app
        settings = app.config["REGISTRY_SETTINGS"]
        self.stages, self.aliases = settings.warm_stages, settings.warm_aliases
        self.caches = app.extensions[CACHES_KEY]
        self.warmed = 0  # warmings finished, or stopped at the cache's share (tests and diagnostics)

    def run(self) -> None:
        epoch = None
        while not self.caches.hub.closing:
            label = self.caches.hub.label()
            if not self.caches.hub.healthy or label.epoch == epoch:
                time.sleep(0.5)  # waits for the listener (to) reset, cheaply: a worker checks twice a second
                continue
            epoch = label.epoch
            try:
                self._warm_all()
            except Exception as error:  # the database went away meanwhile: the next reset brings another try
                log.warning("warming the serving cache stopped: %s", error.__class__.__name__)

    def _warm_all(self) -> None:
        from .services import serving

        started, store = time.monotonic(), self.caches.store
        only = None if self.aliases == EVERY_ALIAS else self.aliases
        passes = [lambda after, label, stage=stage: serving.warm(stage, after=after, label=label)
                  for stage in self.stages]
        if self.aliases:
            passes.append(lambda after, label: serving.warm_aliases(only, after=after, label=label))
        outcome = "done"
        with self.app.app_context():
            for read_page in passes:
                outcome = self._pages(read_page)
                if outcome != "done":
                    break
        if outcome == "down":
            return  # the listener reset: the next epoch warms again
        # Out of the collector's sight, as wsgi.py does with the modules before the fork: warm answers are some
        # 350,000 objects for 10,000 models, and a full collection walking them stalled the worker (and so every
        # request it held) for ~100 ms. They hold no reference cycles: dropped entries are freed by refcounting.
        gc.freeze()
        self.warmed += 1
        metrics.CACHE_WARMINGS.inc()
        log.info("serving cache warmed: %d entries in %.1f s%s", len(store), time.monotonic() - started,
                 " (stopped at half of the cache)" if outcome == "full" else "")

    def _pages(self, read_page: Callable) -> str:
        """Read every page and render what it kept: "done"; or stop when the cache's share is spent ("full") or
        the listener is down ("down")."""
        from .api.replay import prime

        store, hub = self.caches.store, self.caches.hub
        after: int | None = 0
        while after is not None:
            if not hub.healthy:
                return "down"
            if store.bytes > store.max_bytes * _SHARE_OF_CACHE:
                return "full"
            label = hub.label()
            page = read_page(after, label)
            for start in range(0, len(page.keys), _RENDERED_PER_TURN):
                time.sleep(0)  # a turn for the requests (under gevent, this thread is a greenlet)
                prime(self.app, page.keys[start:start + _RENDERED_PER_TURN], label)
            after = page.last
            time.sleep(0)
        return "done"


def start(app: Flask) -> Warmer | None:
    settings = app.config["REGISTRY_SETTINGS"]
    if not settings.warm_stages and not settings.warm_aliases:
        return None
    warmer = Warmer(app)
    warmer.start()
    return warmer
