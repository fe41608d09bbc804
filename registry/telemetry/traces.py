"""OpenTelemetry traces of Flask requests, SQLAlchemy statements and outgoing HTTP (``requests``), off unless
the standard variables ask for them.

On when ``OTEL_TRACES_EXPORTER`` names an exporter (``otlp``, ``console``; ``none`` is off) or an OTLP endpoint
is set (``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``), and ``OTEL_SDK_DISABLED`` is
not ``true``. The exporters read their own ``OTEL_EXPORTER_OTLP_*`` settings, the resource reads
``OTEL_SERVICE_NAME`` / ``OTEL_RESOURCE_ATTRIBUTES`` (service name ``registry`` by default), and the sampler
``OTEL_TRACES_SAMPLER``. When off, nothing of OpenTelemetry is imported: the packages are the optional extra
``otel`` (``pip install 'registry[otel]'``), and a server without them runs as before.

Statements are traced without their parameters (the SQLAlchemy instrumentation records the SQL text only).
"""
from __future__ import annotations

import os
from typing import Mapping

from flask import Flask

from ..config import ConfigError

_ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


def exporter_names(env: Mapping[str, str]) -> list[str]:
    """The exporters the environment asks for; empty means tracing is off."""
    if (env.get("OTEL_SDK_DISABLED") or "").strip().lower() == "true":
        return []
    names = [n.strip().lower() for n in (env.get("OTEL_TRACES_EXPORTER") or "").split(",") if n.strip()]
    if not names:
        return ["otlp"] if any(env.get(v) for v in _ENDPOINT_VARIABLES) else []
    return [] if names == ["none"] else names


def _exporter(name: str):
    if name == "otlp":
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError:
            raise ConfigError("OTEL_TRACES_EXPORTER=otlp needs the OTLP exporter: pip install 'registry[otel]'") from None
        return OTLPSpanExporter()
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    raise ConfigError(f"OTEL_TRACES_EXPORTER: unsupported exporter {name!r} (use otlp, console or none)")


def install(app: Flask, env: Mapping[str, str] | None = None, exporter=None) -> bool:
    """Instrument the app when the environment asks for it (or an ``exporter`` is given, in tests); True if
    it did. Spans of this app go to its own tracer provider; the first one also becomes the global one."""
    env = os.environ if env is None else env
    names = exporter_names(env)
    if exporter is None and not names:
        return False
    try:
        from opentelemetry import trace
        from opentelemetry.instrumentation.flask import FlaskInstrumentor
        from opentelemetry.instrumentation.requests import RequestsInstrumentor
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    except ImportError:
        raise ConfigError("OpenTelemetry tracing is configured (OTEL_*) but its packages are not installed: "
                          "pip install 'registry[otel]'") from None
    from ..extensions import db

    provider = TracerProvider(resource=Resource.create({"service.name": env.get("OTEL_SERVICE_NAME") or "registry"}))
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    for name in names:
        # The console exporter is for looking at spans now (debugging): written as they end, not batched.
        processor = SimpleSpanProcessor if name == "console" else BatchSpanProcessor
        provider.add_span_processor(processor(_exporter(name)))
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        trace.set_tracer_provider(provider)
    FlaskInstrumentor().instrument_app(app, tracer_provider=provider)
    with app.app_context():
        # Its declared range stops below SQLAlchemy 2.1, which we run; it only listens to the engine's
        # cursor-execute events, which 2.1 keeps (tests/api/test_traces.py proves the spans arrive).
        SQLAlchemyInstrumentor().instrument(engine=db.engine, tracer_provider=provider, skip_dep_check=True)
    instrumentor = RequestsInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument(tracer_provider=provider)
    app.extensions["registry_tracer_provider"] = provider
    return True


def uninstall(app: Flask) -> None:
    """Undo ``install`` (tests that instrument an app and then go on with others in the same process)."""
    provider = app.extensions.pop("registry_tracer_provider", None)
    if provider is None:
        return
    from opentelemetry.instrumentation.flask import FlaskInstrumentor
    from opentelemetry.instrumentation.requests import RequestsInstrumentor
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    FlaskInstrumentor.uninstrument_app(app)
    SQLAlchemyInstrumentor().uninstrument()
    RequestsInstrumentor().uninstrument()
    provider.shutdown()
