"""The Databricks Workspace Model Registry extensions of the MLflow dialect, as ``databricks-sdk`` calls them:
transition requests, comments, ``databricks/registered-models/get`` and ``databricks/model-versions/
transition-stage`` (``reviews.py``); registry webhooks (``webhooks.py``); the registered-model permissions
API (``permissions.py``).

Databricks addresses requests by (model, version, target stage[, creator]) rather than by id; the services
``reviews.*_for_stage`` do the matching. Views parse (``mlflow.wire.params``), call a service, render
(``schemas/databricks``); errors under ``/api/2.0`` and ``/ajax-api/2.0`` are rendered in MLflow's shape,
``{"error_code", "message"}``, by ``api/errors.py``.

``/.well-known/databricks-config`` (the SDK's unauthenticated host-metadata probe) has no route on purpose:
an unknown path answers 404 JSON at once, before authentication, and the SDK then carries on with the
host and token it was given.
"""
from __future__ import annotations

from flask import Blueprint, Flask

from ..mlflow.wire import MLFLOW_PREFIXES

bp = Blueprint("databricks", __name__)


def register(app: Flask) -> None:
    from . import permissions, reviews, webhooks  # noqa: F401  (their routes attach to blueprints)

    api, ajax = MLFLOW_PREFIXES
    app.register_blueprint(bp, url_prefix=api + "/mlflow")
    app.register_blueprint(bp, url_prefix=ajax + "/mlflow", name="databricks_ajax")
    app.register_blueprint(permissions.bp, url_prefix=api + "/permissions")
