"""Error mapping, in one place: domain errors and HTTP errors become the native error shape, or MLflow's
(``{"error_code", "message"}``) under the MLflow/Databricks prefixes ``/api/2.0`` and ``/ajax-api/2.0``."""
from __future__ import annotations

import logging

from flask import Flask, current_app, jsonify, request
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

from .. import errors
from ..cache.responses import UNAVAILABLE
from ..db import availability
from ..extensions import OUTAGE_KEY
from ..schemas import mlflow as mlflow_schema
from ..schemas.native import error_json
from .mlflow.wire import is_mlflow_path

log = logging.getLogger("registry.api")

NATIVE_STATUS: dict[type[errors.RegistryError], int] = {
    errors.InvalidArgument: 400,
    errors.Unauthenticated: 401,
    errors.PermissionDenied: 403,
    errors.NotFound: 404,
    errors.AlreadyExists: 409,
    errors.Conflict: 409,
    errors.PreconditionFailed: 412,
    errors.InvalidTransition: 422,
    errors.Unavailable: 503,
}

_HTTP_CODES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    503: "UNAVAILABLE",
}


def status_for(error: errors.RegistryError) -> int:
    for cls in type(error).__mro__:
        if cls in NATIVE_STATUS:
            return NATIVE_STATUS[cls]
    return 500


def _registry_error(error: errors.RegistryError):
    if is_mlflow_path(request.path):
        code, status = mlflow_schema.error_code_for(error)
        response = mlflow_schema.mlflow_error(code, error.message, status)
    else:
        response, status = jsonify(error_json(error.code, error.message, error.details)), status_for(error)
    if isinstance(error, errors.Unauthenticated):
        response.headers["WWW-Authenticate"] = 'Bearer realm="registry"'
    return response, status


def _validation_error(error: ValidationError):
    if is_mlflow_path(request.path):
        return mlflow_schema.mlflow_error("INVALID_PARAMETER_VALUE", f"Invalid request: {error.messages}", 400)
    messages = error.messages if isinstance(error.messages, dict) else {"_schema": error.messages}
    return jsonify(error_json("INVALID_ARGUMENT", "The request is not valid.", {"fields": messages})), 400


def http_error(error: HTTPException):
    status = error.code or 500
    message = error.description or error.name
    if is_mlflow_path(request.path):
        response = mlflow_schema.mlflow_error(mlflow_schema.error_code_for_status(status), message, status)
    else:
        code = _HTTP_CODES.get(status, "INVALID_ARGUMENT" if status < 500 else "INTERNAL")
        response = jsonify(error_json(code, message))
    if status == 405 and getattr(error, "valid_methods", None):
        response.headers["Allow"] = ", ".join(error.valid_methods)
    return response, status


_MESSAGES = {
    "unavailable": "The database is unavailable; nothing was done. Try again in {s} s.",
    "locked": "Another transaction holds a lock this request needs (a long write or a migration); nothing was "
              "written. Try again in {s} s.",
    "busy": "The database did not answer in time (statement timeout); try again, or narrow the search.",
}


def unavailable_response(kind: str, message: str | None = None, retry_after: int | None = None):
    """A 503 with Retry-After in the dialect's error shape (MLflow and Databricks: TEMPORARILY_UNAVAILABLE)."""
    retry_after = availability.RETRY_AFTER[kind] if retry_after is None else retry_after
    message = message or _MESSAGES[kind].format(s=retry_after)
    if is_mlflow_path(request.path):
        response = mlflow_schema.mlflow_error("TEMPORARILY_UNAVAILABLE", message, 503)
    else:
        response = jsonify(error_json("UNAVAILABLE", message))
        response.status_code = 503
    response.headers["Retry-After"] = str(retry_after)
    return response


def _database_failure(error: Exception, kind: str):
    """The database's state, not a bug (``db/availability.py``): logged once per outage, or as one line."""
    if kind == "unavailable":
        current_app.extensions[OUTAGE_KEY].failed(error)
        # The response replay (cache/responses.py) may answer with the last answer known before the outage.
        request.environ[UNAVAILABLE] = True
    elif kind == "busy":
        # The SQL would be long and the parameters are hidden (hide_parameters); the route says what timed out.
        log.warning("statement timeout: %s %s was cancelled (%s)", request.method, request.path,
                    str(getattr(error, "orig", None) or error).strip().splitlines()[0])
    else:
        log.info("lock wait gave up: %s %s", request.method, request.path)
    if isinstance(error, errors.Unavailable):
        return unavailable_response(kind, error.message, error.retry_after)
    return unavailable_response(kind)


def _unexpected(error: Exception):
    kind = availability.classify(error)
    if kind is not None:
        return _database_failure(error, kind)
    log.exception("unhandled error")
    if is_mlflow_path(request.path):
        return mlflow_schema.mlflow_error("INTERNAL_ERROR", "Internal server error.", 500)
    return jsonify(error_json("INTERNAL", "Internal server error.")), 500


def register(app: Flask) -> None:
    app.register_error_handler(errors.Unavailable, _unexpected)  # a 503 with Retry-After, like the database's
    app.register_error_handler(errors.RegistryError, _registry_error)
    app.register_error_handler(ValidationError, _validation_error)
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(Exception, _unexpected)
