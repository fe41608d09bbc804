"""/api/v1 review workflow: transition requests (stage transitions and alias changes), approvals, the
reviewer's inbox, comments."""
from __future__ import annotations

from flask import Blueprint, jsonify, url_for

from ... import names
from ...schemas import native as wire
from ...services import alias_requests, audit_log, comments, review_queue, reviews
from .http import args, body, current_actor

bp = Blueprint("native_reviews", __name__, url_prefix="/api/v1")


def _request(record, status: int = 200):
    return jsonify(wire.request_json(record)), status


def _requests(page):
    return jsonify({"requests": [wire.request_json(r) for r in page.items], "next_page_token": page.next_page_token})


@bp.post("/models/<name>/versions/<version>/transition-requests")
def create_request(name: str, version: str):
    data = body(wire.RequestCreate)
    return _created(reviews.create_request(current_actor(), name, version, data["stage"],
                                           archive_existing_versions=data["archive_existing_versions"],
                                           comment=data.get("comment")))


def _created(record):
    response, status = _request(record, 201)
    response.headers["Location"] = url_for(".get_request", request_id=record.id)
    return response, status


@bp.post("/models/<name>/versions/<version>/alias-requests")
def create_alias_request(name: str, version: str):
    """Ask for an alias to point at this version; reviewed like a transition request."""
    data = body(wire.AliasRequestCreate)
    return _created(alias_requests.request_alias(current_actor(), name, version, data["alias"],
                                                 comment=data.get("comment")))


@bp.post("/models/<name>/aliases/<alias>/deletion-requests")
def create_alias_deletion_request(name: str, alias: str):
    """Ask for an alias to be deleted; reviewed like a transition request."""
    data = body(wire.Review)
    return _created(alias_requests.request_alias_deletion(current_actor(), name, alias, comment=data.get("comment")))


@bp.get("/models/<name>/versions/<version>/transition-requests")
def list_version_requests(name: str, version: str):
    q = args(wire.RequestListArgs)
    query = reviews.RequestQuery(model_name=name, version=names.version_number(version), status=q.get("status"))
    return _requests(reviews.list_requests(current_actor(), query, q.get("max_results"), q.get("page_token")))


@bp.get("/models/<name>/transition-requests")
def list_model_requests(name: str):
    q = args(wire.RequestListArgs)
    query = reviews.RequestQuery(model_name=name, status=q.get("status"))
    return _requests(reviews.list_requests(current_actor(), query, q.get("max_results"), q.get("page_token")))


@bp.get("/transition-requests/<int:request_id>")
def get_request(request_id: int):
    return _request(reviews.get_request(current_actor(), request_id))


@bp.get("/transition-requests/<int:request_id>/history")
def request_history(request_id: int):
    """Everything that happened to the request, in order: requested, approvals, rejection, transition."""
    actor = current_actor()
    reviews.get_request(actor, request_id)  # 404 unless the request exists and is readable
    page = audit_log.search_events(actor, audit_log.AuditQuery(request_id=request_id), max_results=1000)
    return jsonify({"events": [wire.audit_json(e) for e in page.items]})


@bp.post("/transition-requests/<int:request_id>/approve")
def approve(request_id: int):
    return _request(reviews.approve(current_actor(), request_id, body(wire.Review).get("comment")))


@bp.post("/transition-requests/<int:request_id>/reject")
def reject(request_id: int):
    return _request(reviews.reject(current_actor(), request_id, body(wire.Review).get("comment")))


@bp.post("/transition-requests/<int:request_id>/cancel")
def cancel(request_id: int):
    return _request(reviews.cancel(current_actor(), request_id, body(wire.Review).get("comment")))


@bp.get("/inbox")
def inbox():
    q = args(wire.InboxArgs)
    states = review_queue.inbox(current_actor(), q.get("max_results"))
    return jsonify({"requests": [wire.request_json(state.request) for state in states]})


@bp.post("/models/<name>/versions/<version>/comments")
def create_comment(name: str, version: str):
    data = body(wire.CommentBody)
    return jsonify(wire.comment_json(comments.create_comment(current_actor(), name, version, data["comment"]))), 201


@bp.get("/models/<name>/versions/<version>/comments")
def list_comments(name: str, version: str):
    records = comments.list_comments(current_actor(), name, version)
    return jsonify({"comments": [wire.comment_json(c) for c in records]})


@bp.patch("/comments/<int:comment_id>")
def update_comment(comment_id: int):
    data = body(wire.CommentBody)
    return jsonify(wire.comment_json(comments.update_comment(current_actor(), comment_id, data["comment"])))


@bp.delete("/comments/<int:comment_id>")
def delete_comment(comment_id: int):
    comments.delete_comment(current_actor(), comment_id)
    return "", 204
