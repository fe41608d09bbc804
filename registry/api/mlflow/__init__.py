"""The MLflow Model Registry dialect: ``/api/2.0/mlflow/...`` and ``/ajax-api/2.0/mlflow/...`` (the prefix
MLflow's UI uses). Views live in ``models.py``, ``versions.py`` and ``auth.py`` (MLflow's auth API, partly
under ``/api/3.0/mlflow``: ``bp3``); they attach to ``bp``,
which is registered under each prefix. Views parse (``wire.py``), call one service, render
(``schemas/mlflow``); errors under these prefixes are rendered in MLflow's shape by ``api/errors.py``."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, jsonify

from .wire import MLFLOW_PREFIXES, MLFLOW_V3_PREFIXES

bp = Blueprint("mlflow", __name__)


def ok(payload: dict[str, Any] | None = None):
    """MLflow answers 200 with the response message; an empty message is ``{}``."""
    return jsonify(payload or {})


def register(app: Flask) -> None:
    from . import auth, models, versions, webhooks  # noqa: F401  (their routes attach to ``bp``)

    api, ajax = MLFLOW_PREFIXES
    app.register_blueprint(bp, url_prefix=api + "/mlflow")
    app.register_blueprint(bp, url_prefix=ajax + "/mlflow", name="mlflow_ajax")
    api3, ajax3 = MLFLOW_V3_PREFIXES
    app.register_blueprint(auth.bp3, url_prefix=api3 + "/mlflow")
    app.register_blueprint(auth.bp3, url_prefix=ajax3 + "/mlflow", name="mlflow_v3_ajax")
