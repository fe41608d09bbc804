"""/api/v1/audit-events: the audit trail, filtered and paginated."""
from __future__ import annotations

from flask import Blueprint, jsonify

from ...schemas import native as wire
from ...services import audit_log
from .http import args, current_actor
from ..rate_limits import search

bp = Blueprint("native_audit", __name__, url_prefix="/api/v1")


@bp.get("/audit-events")
@search
def list_events():
    q = args(wire.AuditListArgs)
    query = audit_log.AuditQuery(
        model_name=q.get("model"), version=q.get("version"), run_id=q.get("run_id"), actor=q.get("actor"),
        action=q.get("action"), since=q.get("since"), until=q.get("until"), request_id=q.get("request_id"),
    )
    page = audit_log.search_events(current_actor(), query, q.get("max_results"), q.get("page_token"))
    return jsonify({"events": [wire.audit_json(e) for e in page.items], "next_page_token": page.next_page_token})
