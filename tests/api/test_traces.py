"""OpenTelemetry (registry/telemetry/traces.py): spans for Flask requests, SQL statements and outgoing HTTP
when enabled; off, and not even imported, unless the standard OTEL_* variables ask for it."""
from __future__ import annotations

import subprocess
import sys

import pytest

from registry import create_app
from registry.config import ConfigError
from registry.extensions import db
from registry.telemetry import traces
from tests.server import ROOT, cli_env


@pytest.mark.parametrize("env, expected", [
    ({}, []),
    ({"OTEL_SERVICE_NAME": "registry"}, []),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, ["otlp"]),
    ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, ["otlp"]),
    ({"OTEL_TRACES_EXPORTER": "console"}, ["console"]),
    ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, []),
    ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"}, []),
])
def test_tracing_is_on_only_when_the_standard_variables_ask(env, expected):
    assert traces.exporter_names(env) == expected


def test_an_unknown_exporter_fails_at_start(session_database_url):
    app = create_app({"database_url": session_database_url})
    try:
        with pytest.raises(ConfigError, match="zipkin"):
            traces.install(app, {"OTEL_TRACES_EXPORTER": "zipkin"})
    finally:
        traces.uninstall(app)
        with app.app_context():
            db.engine.dispose()


def test_spans_cover_the_request_its_sql_and_outgoing_http(session_database_url):
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    app = create_app({"database_url": session_database_url, "auth_enabled": False})
    try:
        assert traces.install(app, {}, exporter=exporter)
        client = app.test_client()
        assert client.get("/api/v1/models/traced-none").status_code == 404
        import requests

        with pytest.raises(requests.RequestException):  # an outgoing call (a webhook delivery, say)
            requests.get("http://127.0.0.1:9/unreachable", timeout=0.5)
        spans = exporter.get_finished_spans()
        names = [s.name for s in spans]
        server = [s for s in spans if s.name == "GET /api/v1/models/<name>"]
        assert server, names
        sql = [s for s in spans if s.attributes.get("db.system") == "postgresql"]
        assert sql, [(s.name, dict(s.attributes)) for s in spans]
        assert all(s.context.trace_id == server[0].context.trace_id for s in sql)
        # Statement text only, never the values bound to it.
        assert all("traced-none" not in str(dict(s.attributes)) for s in sql)
        assert any(s.name == "GET" and s.attributes.get("http.url", s.attributes.get("url.full", "")).endswith(
            "/unreachable") for s in spans), names
    finally:
        traces.uninstall(app)
        with app.app_context():
            db.engine.dispose()


def test_without_otel_variables_nothing_of_opentelemetry_is_imported(session_database_url):
    script = (
        "import sys\n"
        "from registry import create_app\n"
        "app = create_app()\n"
        "client = app.test_client()\n"
        "assert client.get('/healthz').status_code == 200\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('opentelemetry'))\n"
        "assert not loaded, loaded\n"
        "assert 'registry_tracer_provider' not in app.extensions\n"
        "print('untraced')\n"
    )
    env = {k: v for k, v in cli_env(session_database_url).items() if not k.startswith("OTEL_")}
    env["REGISTRY_AUTH"] = "disabled"
    result = subprocess.run([sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0 and "untraced" in result.stdout, result.stderr
