"""Request parsing shared by the native views: JSON bodies, query strings, actor, If-Match."""
from __future__ import annotations

import re
from typing import Any

from flask import Response, request
from marshmallow import Schema, ValidationError

from ..auth import Actor
from ..errors import InvalidArgument

ACTOR_HEADER = "X-Registry-Actor"
_ETAG = re.compile(r'^"(\d{1,10})"$')


def current_actor() -> Actor:
    return Actor.named(request.headers.get(ACTOR_HEADER))


def body(schema: Schema) -> dict[str, Any]:
    """Load a JSON object body with a strict schema (unknown fields and wrong types are 400s)."""
    if not request.is_json:
        raise InvalidArgument("Send a JSON body with Content-Type: application/json.", {"field": "body"})
    data = request.get_json(silent=True)
    if data is None:
        raise InvalidArgument("The request body is not valid JSON.", {"field": "body"})
    if not isinstance(data, dict):
        raise InvalidArgument("The JSON body must be an object.", {"field": "body"})
    return schema.load(data)


def args(schema: Schema) -> dict[str, Any]:
    """Load query parameters: list fields may repeat; any other field given twice is refused."""
    raw: dict[str, Any] = {}
    for key, values in request.args.lists():
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
