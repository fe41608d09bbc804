"""HTTP adapters. Each parses input, calls one service, renders the result; errors are mapped once."""
from __future__ import annotations

from flask import Flask


def register(app: Flask) -> None:
    from . import errors, health, native_audit, native_models, native_versions

    app.register_blueprint(health.bp)
    app.register_blueprint(native_models.bp)
    app.register_blueprint(native_versions.bp)
    app.register_blueprint(native_audit.bp)
    errors.register(app)
