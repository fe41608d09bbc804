"""GET /metrics: every worker's metrics in Prometheus' text format (``telemetry/metrics.py``), plus the values
read from the database at scrape time (``telemetry/collectors.py``).

Protected: an admin's token, or a token an admin issued with scope ``metrics`` (which may do nothing else).
A metrics token never passes the general authentication (``services/identities.py``), so this view checks
the token itself instead of ``api/authn.py``. With ``REGISTRY_AUTH=disabled`` it is open, like everything.
"""
from __future__ import annotations

from flask import Blueprint, Response, current_app, g, request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ..auth import Actor, token_from_authorization
from ..services import identities
from ..telemetry.collectors import DatabaseCollectors
from ..telemetry.metrics import flush, scrape_registry

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def metrics():
    if current_app.config["REGISTRY_SETTINGS"].auth_enabled:
        g.actor = identities.authenticate_scraper(token_from_authorization(request.headers.get("Authorization")))
    else:
        g.actor = Actor.named(request.headers.get("X-Registry-Actor"), is_admin=True)
    flush()  # this process's last second of requests; the other workers' are at most a second old
    body = generate_latest(scrape_registry([DatabaseCollectors()]))
    return Response(body, content_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})
