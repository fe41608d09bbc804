"""HTTP adapters. Each parses input, calls one service, renders the result; errors are mapped once."""
from __future__ import annotations

from flask import Flask


def register(app: Flask) -> None:
    from . import (
        authn,
        databricks,
        errors,
        fast_path,
        health,
        mlflow,
        native_access,
        native_audit,
        native_models,
        native_reviews,
        native_serving,
        native_versions,
    )

    authn.install(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(native_models.bp)
    app.register_blueprint(native_versions.bp)
    app.register_blueprint(native_serving.bp)
    app.register_blueprint(native_audit.bp)
    app.register_blueprint(native_reviews.bp)
    app.register_blueprint(native_access.bp)
    mlflow.register(app)
    databricks.register(app)
    errors.register(app)
    fast_path.install(app)
