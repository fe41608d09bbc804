"""Each worker fills its serving cache with every model's current answer in the warm stages, at start and after
every listener reset.

A worker caches for itself, so after a deploy (or a database restart, which resets the listener and so empties
every cache) the first read of each model in each worker is a miss: a fleet polling thousands of models then
meets a database read per model per worker at the very moment everything restarts. Instead, a worker reads the
current version in each of ``REGISTRY_WARM_STAGES`` (default ``Production``) of every model, a page of models
per statement (``services/serving.py``: ``warm``), into the one cache under its one freshness rule: labelled
before each page is read, dropped by any change heard after. A model read before its page arrives is simply a
miss, answered as always. Pages are small and a turn is given between them, so requests are served meanwhile;
it stops once the warm answers would take more than half of the cache (``REGISTRY_CACHE_MB``), leaving the rest
for what is asked.
"""
from __future__ import annotations

import logging
import threading
import time

from flask import Flask

from .extensions import CACHES_KEY
from .telemetry import metrics

log = logging.getLogger("registry.warming")

_SHARE_OF_CACHE = 0.5


class Warmer(threading.Thread):
    def __init__(self, app: Flask) -> None:
        super().__init__(name="registry-warmer", daemon=True)
        self.app = app
        self.stages = app.config["REGISTRY_SETTINGS"].warm_stages
        self.caches = app.extensions[CACHES_KEY]
        self.warmed = 0  # times every page was read (tests and diagnostics)

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
        with self.app.app_context():
            for stage in self.stages:
                after: int | None = 0
                while after is not None:
                    if store.bytes > store.max_bytes * _SHARE_OF_CACHE or not self.caches.hub.healthy:
                        return
                    after = serving.warm(stage, after=after)
                    time.sleep(0)  # a turn for the requests (under gevent, this thread is a greenlet)
        self.warmed += 1
        metrics.CACHE_WARMINGS.inc()
        log.info("serving cache warmed: %d entries in %.1f s", len(store), time.monotonic() - started)


def start(app: Flask) -> Warmer | None:
    if not app.config["REGISTRY_SETTINGS"].warm_stages:
        return None
    warmer = Warmer(app)
    warmer.start()
    return warmer
