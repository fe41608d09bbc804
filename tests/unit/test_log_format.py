"""The JSON log format (registry/telemetry/logs.py): one object per line, with the request id inside a request."""
from __future__ import annotations

import io
import json
import logging

from registry.telemetry import context
from registry.telemetry.logs import logging_config


def _capture(config: dict) -> tuple[logging.Logger, io.StringIO]:
    """A logger whose handler uses the formatter the server's logging configuration names."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(config["formatters"]["json"]["()"]())
    logger = logging.getLogger("registry.test.logformat")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger, stream


def test_each_record_is_one_json_object_with_time_level_and_request_id():
    logger, stream = _capture(logging_config())
    token = context.request_id.set("rid-1")
    try:
        logger.info("request", extra={"route": "/api/v1/models/<name>", "status": 200, "duration_ms": 1.5})
    finally:
        context.request_id.reset(token)
    logger.warning("outside\nany request")
    first, second = stream.getvalue().splitlines()
    one, two = json.loads(first), json.loads(second)
    assert one["level"] == "INFO" and one["logger"] == "registry.test.logformat" and one["message"] == "request"
    assert one["request_id"] == "rid-1" and one["route"] == "/api/v1/models/<name>" and one["status"] == 200
    assert one["time"].endswith("+00:00") and isinstance(one["pid"], int)
    assert two["message"] == "outside\nany request" and "request_id" not in two


def test_an_exception_stays_on_its_line():
    logger, stream = _capture(logging_config())
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("failed")
    (line,) = stream.getvalue().splitlines()
    record = json.loads(line)
    assert record["message"] == "failed" and "ValueError: boom" in record["exc_info"]


def test_gunicorn_loggers_share_the_format_and_its_access_lines_go_where_asked():
    config = logging_config("WARNING", access_log="-")
    assert config["loggers"]["gunicorn.error"] == {"level": "WARNING", "handlers": [], "propagate": True}
    assert config["loggers"]["gunicorn.access"]["handlers"] == ["access"]
    assert config["handlers"]["access"]["formatter"] == "json"
    assert logging_config()["loggers"]["gunicorn.access"]["handlers"] == []
