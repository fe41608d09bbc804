"""Request parsing shared by the native views: JSON bodies, query strings, actor, If-Match."""
from __future__ import annotations

import functools
import hashlib
import json
import re
from typing import Any

from flask import Response, request
from werkzeug.wrappers import Request
from marshmallow import Schema, ValidationError

from ...errors import InvalidArgument
from ...services.idempotency import Key
from ..authn import current_actor  # noqa: F401  (re-exported for the views)

_ETAG = re.compile(r'^"(\d{1,10})"$')
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


def idempotency_key(data: dict[str, Any]) -> Key | None:
    """The request's ``Idempotency-Key`` (1-255 visible ASCII characters), with a fingerprint of what it asks:
    method, path and the parsed body, so the same key sent with another request is told apart."""
    raw = request.headers.get("Idempotency-Key")
    if raw is None:
        return None
    if not _IDEMPOTENCY_KEY.match(raw):
        raise InvalidArgument("Idempotency-Key must be 1 to 255 visible ASCII characters.",
                              {"field": "Idempotency-Key"})
    asked = json.dumps([request.method, request.path, data], sort_keys=True, default=str)
    return Key(raw, hashlib.sha256(asked.encode("utf-8")).hexdigest())


def mark_replayed(response: Response, key: Key | None) -> Response:
    if key is not None and key.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


@functools.cache
def _schema(schema_class: type[Schema]) -> Schema:
    # One instance per schema class: building one copies every field, and loading keeps no state in it.
    return schema_class()


def body(schema_class: type[Schema]) -> dict[str, Any]:
    """Load a JSON object body with a strict schema (unknown fields and wrong types are 400s)."""
    schema = _schema(schema_class)
    if not request.is_json:
        raise InvalidArgument("Send a JSON body with Content-Type: application/json.", {"field": "body"})
    try:
        data = request.get_json(silent=True)
    except RecursionError:
        # silent=True covers ValueError only; nesting past the recursion limit ("[[[[...") raises this.
        data = None
    if data is None:
        raise InvalidArgument("The request body is not valid JSON.", {"field": "body"})
    if not isinstance(data, dict):
        raise InvalidArgument("The JSON body must be an object.", {"field": "body"})
    try:
        # JSON may spell a lone surrogate ("\ud800"); it is not UTF-8, so the driver could not store it.
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidArgument("The JSON body contains an unpaired surrogate escape.", {"field": "body"}) from None
    except RecursionError:
        # Parsed, but nested too deeply to write back from this deeper stack.
        raise InvalidArgument("The JSON body is nested too deeply.", {"field": "body"}) from None
    return schema.load(data)


def args(schema_class: type[Schema], req: Request | None = None) -> dict[str, Any]:
    """Load query parameters (of ``req``, by default the current request): list fields may repeat; any other
    field given twice is refused."""
    schema = _schema(schema_class)
    raw: dict[str, Any] = {}
    for key, values in (req if req is not None else request).args.lists():
        field = schema.fields.get(key)
        if field is not None and field.__class__.__name__ == "List":
            raw[key] = values
        elif len(values) > 1:
            raise ValidationError({key: ["Given more than once."]})
        else:
            raw[key] = values[0]
    return schema.load(raw)


def expected_revision() -> int | None:
    """``If-Match: "<revision>"``; ``*`` or no header means "any revision"."""
    header = request.headers.get("If-Match")
    if header is None or header.strip() == "*":
        return None
    match = _ETAG.match(header.strip())
    if not match:
        raise InvalidArgument('If-Match must be a revision ETag such as "3".', {"field": "If-Match"})
    return int(match.group(1))


def with_etag(response: Response, revision: int) -> Response:
    response.headers["ETag"] = f'"{revision}"'
    return response
