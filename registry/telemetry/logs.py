"""Logs: one JSON object per line, for the registry's own records and gunicorn's alike.

Every record has ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message``, ``pid`` and, inside a request,
``request_id``; the request log line (``telemetry/requests.py``) adds ``actor``, ``dialect``, ``route``,
``method``, ``status`` and ``duration_ms``. Formatting is python-json-logger's.

**What never reaches a log:** tokens, secrets, SQL parameters and bodies. The request line names the route
template, not the path or query; the engine hides bound parameters from errors (``hide_parameters``); nothing
logs a header or a body. ``tests/system/test_log_secrets.py`` runs a full scenario against a real server and
searches its whole output for every token and secret it used.

``LOGGING`` is the ``logging.config.dictConfig`` of a server process: ``deploy/gunicorn.conf.py`` hands it to
gunicorn (``logconfig_dict``), which applies it in the master before forking the workers.
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone

from pythonjsonlogger.json import JsonFormatter

from .context import request_id


class RegistryJsonFormatter(JsonFormatter):
    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger"})
        super().__init__("%(levelname)s %(name)s %(message)s", *args, **kwargs)

    def add_fields(self, log_record: dict, record, message_dict: dict) -> None:
        log_record["time"] = datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds")
        super().add_fields(log_record, record, message_dict)
        log_record["pid"] = record.process  # which gunicorn worker (or the master)
        rid = request_id.get()
        if rid is not None and "request_id" not in log_record:
            log_record["request_id"] = rid


def skip_unused_record_fields() -> None:
    """Server processes: skip what every log record would otherwise look up and no line shows (the logging
    HOWTO's "Optimization": the caller's file and line, thread and multiprocessing names). A per-request line
    costs measurably less (tests/perf/run_observability.py)."""
    logging._srcfile = None
    logging.logThreads = False
    logging.logMultiprocessing = False


def logging_config(level: str = "INFO", access_log: str | None = None) -> dict:
    """The dictConfig of a server process: every logger, gunicorn's included, to stderr as JSON lines.
    ``access_log`` (REGISTRY_ACCESS_LOG: ``-`` for stdout, or a file) adds gunicorn's own access lines there;
    without it the registry's request line (logger ``registry.request``) is the access log."""
    config: dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": RegistryJsonFormatter}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {
            "gunicorn.error": {"level": level, "handlers": [], "propagate": True},
            "gunicorn.access": {"level": "INFO", "handlers": [], "propagate": False},
        },
    }
    if access_log:
        config["handlers"]["access"] = (
            {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"} if access_log == "-"
            else {"class": "logging.FileHandler", "formatter": "json", "filename": access_log})
        config["loggers"]["gunicorn.access"]["handlers"] = ["access"]
    return config
