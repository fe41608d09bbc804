"""/api/v1/models: registered models and their tags."""
from __future__ import annotations

from flask import Blueprint, jsonify, url_for

from ... import names
from ...schemas import native as wire
from ...services import models as svc
from .http import args, body, current_actor, expected_revision, idempotency_key, mark_replayed, with_etag
from ..replay import about, replayable
from ..rate_limits import search

bp = Blueprint("native_models", __name__, url_prefix="/api/v1")


@bp.post("/models")
def create_model():
    data = body(wire.ModelCreate)
    key = idempotency_key(data)
    record = svc.create_model(current_actor(), data["name"], data.get("description"), data.get("tags"),
                              idempotency=key)
    response = mark_replayed(with_etag(jsonify(wire.model_json(record)), record.revision), key)
    response.headers["Location"] = url_for(".get_model", name=record.name)
    return response, 201


@bp.get("/models")
@search
def list_models():
    q = args(wire.ModelListArgs)
    order = q["order_by"]
    query = svc.ModelQuery(
        name_prefix=q.get("name_prefix"),
        name_contains=q.get("name_contains"),
        tags=names.tag_filters(q.get("tag", [])),
        order_by=order.lstrip("-"),
        descending=order.startswith("-"),
    )
    page = svc.search_models(current_actor(), query, q.get("max_results"), q.get("page_token"))
    return jsonify({"models": [wire.model_json(m) for m in page.items], "next_page_token": page.next_page_token})


@bp.get("/models/<name>")
@replayable(lambda req, name: names.model_name(name))
def get_model(name: str):
    record = svc.get_model(current_actor(), name)
    about(record.id)
    return with_etag(jsonify(wire.model_json(record)), record.revision)


@bp.patch("/models/<name>")
def update_model(name: str):
    data = body(wire.ModelUpdate)
    changes = {"description": data["description"]} if "description" in data else {}
    record = svc.update_model(
        current_actor(), name, new_name=data.get("name"), expected_revision=expected_revision(),
        force=data["force"], **changes
    )
    return with_etag(jsonify(wire.model_json(record)), record.revision)


@bp.delete("/models/<name>")
def delete_model(name: str):
    svc.delete_model(current_actor(), name, force=args(wire.ForceArgs)["force"])
    return "", 204


@bp.put("/models/<name>/tags/<path:key>")
def set_model_tag(name: str, key: str):
    data = body(wire.TagValue)
    record = svc.set_model_tag(current_actor(), name, key, data["value"])
    return with_etag(jsonify(wire.model_json(record)), record.revision)


@bp.delete("/models/<name>/tags/<path:key>")
def delete_model_tag(name: str, key: str):
    svc.delete_model_tag(current_actor(), name, key)
    return "", 204
