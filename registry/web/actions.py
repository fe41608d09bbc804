"""The console's forms: each POST calls one use case, then redirects to the page that shows its result
(post/redirect/get). A refusal is the use case's own error, shown with the API's status code."""
from __future__ import annotations

from flask import flash, g, redirect, request, url_for

from ..services import alias_requests, aliases, comments, permissions, reviews, stages
from . import bp
from .forms import checked, text
from .session import safe_next, signed_in


def _to_version(name: str, number: int, anchor: str | None = None):
    return redirect(url_for("web.version_page", name=name, number=number, _anchor=anchor))


@bp.post("/models/<name>/versions/<int:number>/requests")
@signed_in
def request_transition(name: str, number: int):
    record = reviews.create_request(g.actor, name, number, text("stage"),
                                    archive_existing_versions=checked("archive_existing_versions"),
                                    comment=text("comment"))
    flash(f"Requested {record.from_stage} → {record.to_stage} (request {record.id}).")
    return _to_version(name, number, f"request-{record.id}")


@bp.post("/models/<name>/versions/<int:number>/transition")
@signed_in
def transition(name: str, number: int):
    record = stages.transition_stage(g.actor, name, number, text("stage"),
                                     archive_existing_versions=checked("archive_existing_versions"),
                                     comment=text("comment"))
    flash(f"Version {record.version} is now in {record.stage}.")
    return _to_version(name, number)


@bp.post("/requests/<int:request_id>/<any(approve, reject, cancel):decision>")
@signed_in
def review(request_id: int, decision: str):
    act = {"approve": reviews.approve, "reject": reviews.reject, "cancel": reviews.cancel}[decision]
    record = act(g.actor, request_id, text("comment"))
    done = {"approve": "Approved", "reject": "Rejected", "cancel": "Cancelled"}[decision]
    flash(f"{done} request {record.id}; it is now {record.status}.")
    return _to_version(record.model_name, record.version, f"request-{record.id}")


@bp.post("/models/<name>/versions/<int:number>/alias")
@signed_in
def alias(name: str, number: int):
    wanted = text("alias")
    if text("mode") == "request":
        record = alias_requests.request_alias(g.actor, name, number, wanted, comment=text("comment"))
        flash(f"Requested alias {record.alias} → v{record.version} (request {record.id}).")
        return _to_version(name, number, f"request-{record.id}")
    aliases.set_alias(g.actor, name, wanted, number)
    flash(f"Alias {wanted} now points at version {number}.")
    return _to_version(name, number)


@bp.post("/models/<name>/aliases/<alias_name>/delete")
@signed_in
def delete_alias(name: str, alias_name: str):
    if text("mode") == "request":
        record = alias_requests.request_alias_deletion(g.actor, name, alias_name, comment=text("comment"))
        flash(f"Requested removal of alias {alias_name} (request {record.id}).")
        return _to_version(record.model_name, record.version, f"request-{record.id}")
    aliases.delete_alias(g.actor, name, alias_name)
    flash(f"Alias {alias_name} removed.")
    return redirect(url_for("web.model_page", name=name))


@bp.post("/models/<name>/versions/<int:number>/comments")
@signed_in
def add_comment(name: str, number: int):
    record = comments.create_comment(g.actor, name, number, text("comment"))
    return _to_version(name, number, f"comment-{record.id}")


@bp.post("/comments/<int:comment_id>/edit")
@signed_in
def edit_comment(comment_id: int):
    record = comments.update_comment(g.actor, comment_id, text("comment"))
    return _to_version(record.model_name, record.version, f"comment-{record.id}")


@bp.post("/comments/<int:comment_id>/delete")
@signed_in
def delete_comment(comment_id: int):
    comments.delete_comment(g.actor, comment_id)
    flash("Comment deleted.")
    return redirect(safe_next(request.form.get("back")))


@bp.post("/models/<name>/permissions")
@signed_in
def grant_permission(name: str):
    principal, level = text("principal"), text("level")
    permissions.set_model_permissions(g.actor, name, [(principal, level)], merge=True)
    flash(f"{principal} now holds {level} on {name}.")
    return _to_permissions(name)


@bp.post("/models/<name>/permissions/revoke")
@signed_in
def revoke_permission(name: str):
    principal = text("principal")
    permissions.revoke_model_permission(g.actor, name, principal)
    flash(f"Revoked {principal}'s grant on {name}.")
    return _to_permissions(name)


def _to_permissions(name: str):
    return redirect(url_for("web.model_page", name=name, _anchor="permissions-heading"))
