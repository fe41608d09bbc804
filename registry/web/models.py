"""Models: the searchable list, and a model's page (what it serves now, its versions, policies, permissions,
and what it served at any earlier time)."""
from __future__ import annotations

from flask import g, render_template, request

from ..errors import InvalidArgument, PermissionDenied
from ..lifecycle import Permission
from ..services import models, permissions, policies, versions
from ..services.models import ModelQuery
from ..services.versions import VersionQuery
from . import bp, history_view
from .session import signed_in

PAGE = 50
STAGE_FILTERS = ("None", "Staging", "Production", "Archived")


def _tag_filter(raw: str) -> tuple[tuple[str, str], ...]:
    if not raw:
        return ()
    key, sep, value = raw.partition("=")
    if not sep or not key.strip():
        raise InvalidArgument("Write a tag filter as key=value.", {"field": "tag"})
    return ((key.strip(), value.strip()),)


@bp.get("/models")
@signed_in
def model_list():
    q = request.args.get("q", "").strip()
    match = request.args.get("match", "prefix")
    tag = request.args.get("tag", "").strip()
    if match not in ("prefix", "contains"):
        raise InvalidArgument("match is prefix or contains.", {"field": "match"})
    query = ModelQuery(name_prefix=(q or None) if match == "prefix" else None,
                       name_contains=(q or None) if match == "contains" else None, tags=_tag_filter(tag))
    page = models.search_model_summaries(g.actor, query, PAGE, request.args.get("page_token") or None)
    return render_template("models.html", page=page, q=q, match=match, tag=tag)


@bp.get("/models/<name>")
@signed_in
def model_page(name: str):
    summary = models.get_model_summary(g.actor, name)
    level = permissions.my_level(g.actor, name)
    stage = request.args.get("stage") or None
    if stage is not None and stage not in STAGE_FILTERS:
        raise InvalidArgument(f"Unknown stage {stage!r}.", {"field": "stage"})
    listed = versions.search_versions(g.actor, VersionQuery(model_name=name, stage=stage), PAGE,
                                      request.args.get("page_token") or None)
    grants = None
    if level >= Permission.MANAGE:
        try:
            grants = permissions.get_model_permissions(g.actor, name)
        except PermissionDenied:
            grants = None
    return render_template(
        "model.html", summary=summary, model=summary.model, level=level, Permission=Permission,
        stage_filter=stage, stage_filters=STAGE_FILTERS, versions=listed,
        policies=policies.get_model_policies(g.actor, name), grants=grants,
        # The ladder first (READ is the form's default), the veto last: nobody should DENY by not looking.
        grantable=[p.name for p in sorted(Permission, key=lambda p: (p is Permission.DENY, p))],
        latest={v.stage: v for v in summary.latest_versions},
        history=history_view.for_model(g.actor, name, request.args.get("as_of"),
                                       everything=request.args.get("history") == "all"),
    )
