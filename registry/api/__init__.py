"""HTTP adapters. Each parses input, calls one service, renders the result; errors are mapped once.

``native/`` is ``/api/v1``; ``mlflow/`` the MLflow wire dialect; ``databricks/`` its Databricks extensions.
"""
from __future__ import annotations

from flask import Flask


def register(app: Flask) -> None:
    from . import authn, databricks, errors, health, metrics, mlflow, native, rate_limits, replay

    rate_limits.install(app)  # first: a refused request runs nothing else
    authn.install(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(metrics.bp)
    native.register(app)
    mlflow.register(app)
    databricks.register(app)
    errors.register(app)
    replay.install(app)
