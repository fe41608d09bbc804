"""Reading request parameters the way MLflow's server (and Databricks') accept them.

* GET: the query string, lists as repeated keys (``order_by=a&order_by=b``); a GET without a query string
  may carry a JSON body instead (MLflow falls back to it, Databricks' curl examples use it).
* POST: a JSON body, with ``Content-Type: application/json`` (MLflow refuses anything else).
* PATCH: a JSON body, whatever the content type (as MLflow).
* DELETE: a JSON body (the MLflow client) or the query string (databricks-sdk sends no body); both may be
  given as long as they agree.

Field names are proto names (``new_name``); proto3 JSON names (``newName``) are accepted too, as MLflow
does, and a request spelling one field both ways is refused. Type rules follow MLflow: strings must be
JSON strings (``"version": 4`` is a 400), integers may be numbers or numeric strings, booleans are JSON
booleans (``true``/``false`` in a query string).
"""
from __future__ import annotations

import json
import re
from typing import Any

import flask
from werkzeug.wrappers import Request

from ...errors import InvalidArgument

_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])")

# Everything under these answers errors in MLflow's shape (the Databricks routes live here too; MLflow 3's
# per-user permission API lives under the 3.0 ones).
MLFLOW_PREFIXES = ("/api/2.0", "/ajax-api/2.0")
MLFLOW_V3_PREFIXES = ("/api/3.0", "/ajax-api/3.0")


def is_mlflow_path(path: str) -> bool:
    return any(path == prefix or path.startswith(prefix + "/") for prefix in MLFLOW_PREFIXES + MLFLOW_V3_PREFIXES)


def _snake(key: str) -> str:
    return _CAMEL.sub(lambda m: "_" + m.group(1).lower(), key)


def _bad(message: str, field: str | None = None) -> InvalidArgument:
    return InvalidArgument(message, {"field": field} if field else {})


# How much of a wrong value an error message echoes: enough to recognise it, never the whole 1 MiB body.
_ECHO_CHARS = 200


def _echo(value: Any) -> str:
    try:
        text = json.dumps(value)
    except (RecursionError, ValueError):
        # Nested past the recursion limit (the parser, higher on the stack, still managed it).
        return f"<{type(value).__name__} nested too deeply to show>"
    return text if len(text) <= _ECHO_CHARS else text[:_ECHO_CHARS] + "..."


def _type_error(field: str, value: Any) -> InvalidArgument:
    return _bad(
        f"Invalid value {_echo(value)} for parameter '{field}' supplied. "
        f"Hint: Value was of type '{type(value).__name__}'.", field,
    )


class Params:
    """Request parameters with MLflow's typing rules. ``from_query``: values came from a query string (all
    strings; a repeated key is a list)."""

    def __init__(self, values: dict[str, list[Any]], *, from_query: bool):
        self._values = values
        self.from_query = from_query

    def __contains__(self, field: str) -> bool:
        return field in self._values

    def _one(self, field: str) -> Any:
        values = self._values.get(field)
        if not values:
            return None
        # A scalar given twice in a query string: the first wins, as in MLflow (Flask's args.get).
        return values[0]

    def raw(self, field: str) -> Any:
        return self._one(field)

    def string(self, field: str, *, required: bool = False) -> str | None:
        value = self._one(field)
        if value is not None and not isinstance(value, str):
            raise _type_error(field, value)
        if required and (value is None or value == ""):
            raise _bad(f"Missing value for required parameter '{field}'.", field)
        return value

    def required(self, field: str) -> str:
        return self.string(field, required=True)  # type: ignore[return-value]

    def strings(self, field: str) -> list[str]:
        """A repeated string field: repeated query keys, or a JSON array of strings."""
        values = self._values.get(field)
        if not values:
            return []
        if self.from_query:
            return list(values)
        value = values[0]
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise _type_error(field, value)
        return value

    def boolean(self, field: str, default: bool = False) -> bool:
        value = self._one(field)
        if value is None:
            return default
        if self.from_query and isinstance(value, str):
            if value.lower() not in ("true", "false"):
                raise _bad(f"Invalid boolean value: {value}, must be 'true' or 'false'.", field)
            return value.lower() == "true"
        if not isinstance(value, bool):
            raise _type_error(field, value)
        return value

    def integer(self, field: str) -> int | None:
        value = self._one(field)
        if value is None or value == "":
            return None
        if isinstance(value, bool):
            raise _type_error(field, value)
        if isinstance(value, int):
            return value
        if isinstance(value, str) and re.fullmatch(r"[+-]?\d{1,18}", value.strip()):
            return int(value)
        raise _type_error(field, value)

    def tags(self, field: str = "tags") -> dict[str, str]:
        """``[{"key": k, "value": v}, ...]``; a later duplicate key wins, as in MLflow."""
        value = self._one(field) if not self.from_query else None
        if value is None:
            return {}
        if not isinstance(value, list):
            raise _type_error(field, value)
        tags: dict[str, str] = {}
        for item in value:
            if not isinstance(item, dict):
                raise _type_error(field, item)
            key, tag_value = item.get("key"), item.get("value", "")
            if not isinstance(key, str) or key == "":
                raise _bad(f"Missing value for required parameter '{field}.key'.", field)
            if tag_value is None:
                tag_value = ""
            if not isinstance(tag_value, str):
                raise _type_error(f"{field}.value", tag_value)
            tags[key] = tag_value
        return tags


def _json_body(request: Request, *, require_content_type: bool) -> dict[str, Any] | None:
    """The JSON object body, None when there is no body at all."""
    if require_content_type:
        if request.content_type is None:
            raise _bad("Bad Request. Content-Type header is missing.")
        if request.content_type.split(";")[0].strip().lower() != "application/json":
            raise _bad("Bad Request. Content-Type must be one of ['application/json'].")
    raw = request.get_data(cache=True)
    if not raw.strip():
        return None
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise _bad("The request body is not valid JSON.") from None
    if isinstance(data, str):
        # Old clients double-encode their JSON body; MLflow's server decodes it a second time.
        try:
            data = json.loads(data)
        except (ValueError, RecursionError):
            raise _bad("The request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise _bad("The JSON body must be an object.")
    try:
        # PostgreSQL text cannot hold lone surrogates ("\ud800"): refuse them here, not in the driver.
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise _bad("The JSON body contains an unpaired surrogate escape.") from None
    except RecursionError:
        raise _bad("The JSON body is nested too deeply.") from None
    return data


def _normalise(values: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """Map proto3 JSON names (``newName``) onto proto names; a field spelled both ways is ambiguous."""
    out: dict[str, list[Any]] = {}
    for key, value in values.items():
        name = _snake(key)
        if name in out:
            raise _bad(f"Request specifies both '{name}' and its JSON name; provide only one of them.", name)
        out[name] = value
    return out


def _from_query(request: Request) -> dict[str, list[Any]]:
    return {key: values for key, values in request.args.lists()}


def params(request: Request | None = None) -> Params:
    """A request's parameters (the current one's by default), read as MLflow / Databricks clients send them.
    The response cache reads a request with this very function before Flask runs (``api/replay.py``)."""
    if request is None:
        request = flask.request._get_current_object()
    method = request.method
    if method == "GET":
        if request.args:
            return Params(_normalise(_from_query(request)), from_query=True)
        body = _json_body(request, require_content_type=False)
        return Params(_normalise({k: [v] for k, v in (body or {}).items()}), from_query=False)
    if method == "DELETE":
        body = _json_body(request, require_content_type=False)
        query = _normalise(_from_query(request))
        if body is None:
            return Params(query, from_query=True)
        merged = _normalise({k: [v] for k, v in body.items()})
        for key, values in query.items():
            if key in merged and [str(merged[key][0])] != values[:1]:
                raise _bad(f"Parameter '{key}' is given in both the query string and the body, "
                           f"with different values.", key)
            merged.setdefault(key, values)
        # Mixed sources: values from the body keep their JSON types, query values are strings.
        return Params(merged, from_query=False)
    body = _json_body(request, require_content_type=method in ("POST", "PUT"))
    return Params(_normalise({k: [v] for k, v in (body or {}).items()}), from_query=False)


def page_size(value: int | None, default: int, maximum: int) -> int:
    if value is None:
        return default
    if value > maximum:
        raise InvalidArgument(
            f"Invalid value for request parameter max_results. It must be at most {maximum}, "
            f"but got value {value}", {"field": "max_results"},
        )
    return value
