"""/api/v1 model versions: versions, tags, stages and aliases."""
from __future__ import annotations

from flask import Blueprint, jsonify, url_for

from ... import names
from ...schemas import native as wire
from ...services import aliases, stages
from ...services.models import get_model
from ...services import versions as svc
from .http import args, body, current_actor, expected_revision, idempotency_key, mark_replayed, with_etag
from ..replay import about, replayable
from ..rate_limits import search

bp = Blueprint("native_versions", __name__, url_prefix="/api/v1")


def _version(record, status: int = 200):
    return with_etag(jsonify(wire.version_json(record)), record.revision), status


def _page(page):
    return jsonify({"versions": [wire.version_json(v) for v in page.items], "next_page_token": page.next_page_token})


@bp.post("/models/<name>/versions")
def create_version(name: str):
    data = body(wire.VersionCreate)
    key = idempotency_key(data)
    record = svc.create_version(
        current_actor(), name, data["source"], run_id=data.get("run_id"), run_link=data.get("run_link"),
        description=data.get("description"), tags=data.get("tags"), model_id=data.get("model_id"),
        idempotency=key,
    )
    response, status = _version(record, 201)
    mark_replayed(response, key)
    response.headers["Location"] = url_for(".get_version", name=record.model_name, version=record.version)
    return response, status


@bp.get("/models/<name>/versions")
@search
def list_versions(name: str):
    q = args(wire.VersionListArgs)
    query = svc.VersionQuery(model_name=name, run_id=q.get("run_id"), stage=q.get("stage"),
                             tags=names.tag_filters(q.get("tag", [])))
    get_model(current_actor(), name)  # a missing model is a 404, not an empty list
    return _page(svc.search_versions(current_actor(), query, q.get("max_results"), q.get("page_token")))


@bp.get("/versions")
@search
def search_versions():
    q = args(wire.GlobalVersionListArgs)
    query = svc.VersionQuery(model_name=q.get("model"), run_id=q.get("run_id"), stage=q.get("stage"),
                             tags=names.tag_filters(q.get("tag", [])))
    return _page(svc.search_versions(current_actor(), query, q.get("max_results"), q.get("page_token")))


@bp.get("/models/<name>/versions/<version>")
@replayable(lambda req, name, version: (names.model_name(name), names.version_number(version)))
def get_version(read: tuple[str, int]):
    record = svc.get_version(current_actor(), *read)
    about(record.model_id)
    return _version(record)


@bp.patch("/models/<name>/versions/<version>")
def update_version(name: str, version: str):
    data = body(wire.VersionUpdate)
    return _version(svc.update_version(current_actor(), name, version, description=data["description"],
                                       expected_revision=expected_revision()))


@bp.delete("/models/<name>/versions/<version>")
def delete_version(name: str, version: str):
    svc.delete_version(current_actor(), name, version, force=args(wire.ForceArgs)["force"])
    return "", 204


@bp.put("/models/<name>/versions/<version>/tags/<path:key>")
def set_version_tag(name: str, version: str, key: str):
    data = body(wire.TagValue)
    return _version(svc.set_version_tag(current_actor(), name, version, key, data["value"]))


@bp.delete("/models/<name>/versions/<version>/tags/<path:key>")
def delete_version_tag(name: str, version: str, key: str):
    svc.delete_version_tag(current_actor(), name, version, key)
    return "", 204


@bp.post("/models/<name>/versions/<version>/transition")
def transition(name: str, version: str):
    data = body(wire.Transition)
    return _version(stages.transition_stage(current_actor(), name, version, data["stage"],
                                            archive_existing_versions=data["archive_existing_versions"],
                                            comment=data.get("comment"), force=data["force"]))


@bp.get("/models/<name>/latest-versions")
def latest_versions(name: str):
    q = args(wire.LatestVersionsArgs)
    latest = stages.latest_versions(current_actor(), name, q.get("stage"))
    return jsonify({"versions": [wire.version_json(v) for v in latest.versions]})


@bp.put("/models/<name>/aliases/<alias>")
def set_alias(name: str, alias: str):
    data = body(wire.AliasSet)
    return _version(aliases.set_alias(current_actor(), name, alias, data["version"], force=data["force"]))


@bp.delete("/models/<name>/aliases/<alias>")
def delete_alias(name: str, alias: str):
    aliases.delete_alias(current_actor(), name, alias, force=args(wire.ForceArgs)["force"])
    return "", 204
