"""The audit trail, with the API's filters; admins may verify a model's hash chain from here."""
from __future__ import annotations

from datetime import datetime

from flask import g, render_template, request

from ..audit import ACTIONS
from ..errors import InvalidArgument
from ..services import audit_log
from ..services.audit_log import AuditQuery
from . import bp
from .forms import instant
from .session import signed_in

PAGE = 50
FILTERS = ("model", "version", "run_id", "actor", "action", "since", "until")


def _time(field: str) -> datetime | None:
    raw = request.args.get(field, "").strip()
    return instant(raw, field) if raw else None


def _query() -> AuditQuery:
    a = request.args
    version = a.get("version", "").strip()
    if version and not version.isdigit():
        raise InvalidArgument("version must be a number.", {"field": "version"})
    return AuditQuery(model_name=a.get("model", "").strip() or None, version=int(version) if version else None,
                      run_id=a.get("run_id", "").strip() or None, actor=a.get("actor", "").strip() or None,
                      action=a.get("action", "").strip() or None, since=_time("since"), until=_time("until"))


@bp.get("/audit")
@signed_in
def audit_page():
    page = audit_log.search_events(g.actor, _query(), PAGE, request.args.get("page_token") or None)
    values = {f: request.args.get(f, "") for f in FILTERS}
    return render_template("audit.html", page=page, values=values, actions=sorted(ACTIONS), verified=None)


@bp.post("/audit/verify")
@signed_in
def verify_chain():
    name = request.form.get("model", "").strip()
    checked, problem = audit_log.verify_model(g.actor, name)
    page = audit_log.search_events(g.actor, AuditQuery(model_name=name), PAGE)
    values = {f: "" for f in FILTERS} | {"model": name}
    return render_template("audit.html", page=page, values=values, actions=sorted(ACTIONS),
                           verified={"model": name, "checked": checked, "problem": problem})
