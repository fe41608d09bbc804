"""What was served when (``services/history.py``): the serving endpoints' ``?as_of=`` answers, and
``GET /api/v1/models/{name}/timeline``.

An as-of answer is read from the audit trail on every request: no cache, no replay, no ETag (nothing to
revalidate against: it may still gain ``version_exists: false`` or, within moments of ``as_of``, an event
whose transaction was committing), ``Cache-Control: no-cache`` as for current answers.
"""
from __future__ import annotations

from datetime import datetime

from flask import Blueprint, jsonify

from ...schemas import native as wire
from ...schemas.history import historic_json, timeline_json
from ...services import history
from .http import args, current_actor
from ..rate_limits import search

bp = Blueprint("native_history", __name__, url_prefix="/api/v1")


def serve_as_of(key: tuple[str, str, str], as_of: datetime):
    """The answer to a serving request (``serving.answer_key``'s key) as of ``as_of``; 404 when nothing was
    served then."""
    kind, name, selector = key
    if kind == "stage":
        answer = history.served_at(current_actor(), name, stage=selector, as_of=as_of)
    else:
        answer = history.served_at(current_actor(), name, alias=selector, as_of=as_of)
    if answer.version is None:
        raise history.nothing_served(answer)
    response = jsonify(historic_json(answer))
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get("/models/<name>/timeline")
@search
def model_timeline(name: str):
    q = args(wire.TimelineArgs)
    return jsonify(timeline_json(history.timeline(current_actor(), name, since=q.get("since"),
                                                  until=q.get("until"))))
