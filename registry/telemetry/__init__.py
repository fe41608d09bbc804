"""What an operator sees of a running registry: metrics, logs and traces.

* ``metrics.py``    every Prometheus metric, in one module (multiprocess-safe under gunicorn); served at
                    ``GET /metrics`` (``api/metrics.py``) with ``collectors.py``, the values read at scrape time;
* ``requests.py``   the outermost WSGI layer: ``X-Request-Id``, one histogram observation and one JSON log line
                    per request;
* ``logs.py``       the JSON log format of every logger (gunicorn's too);
* ``traces.py``     OpenTelemetry, only when the standard ``OTEL_*`` variables ask for it;
* ``context.py``    the request id and what the routing layers tell the middleware (no Flask, no metrics:
                    the audit trail imports it).

The parts that own a measured thing update its metric themselves (the cache store, the change hub, the pool
hooks, the long-poll); nothing here reaches into them.
"""
from __future__ import annotations

from flask import Flask


def install(app: Flask) -> None:
    """Wrap the app (after every other WSGI layer, so the replay cache's answers are measured too)."""
    from . import metrics, requests, traces

    settings = app.config["REGISTRY_SETTINGS"]
    if not settings.metrics_enabled:
        metrics.switch_off()
    traces.install(app)
    requests.install_flask_hooks(app)
    app.wsgi_app = requests.RequestTelemetry(app.wsgi_app, observe=settings.metrics_enabled,
                                             log_requests=settings.request_log)
