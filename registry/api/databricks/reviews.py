"""Databricks transition requests, comments, ``databricks/registered-models/get`` and
``databricks/model-versions/transition-stage`` (the routes attach to the package's ``bp``)."""
from __future__ import annotations

from ...errors import ApprovalRequired, NotFound, PermissionDenied
from ...schemas import databricks as wire
from ...schemas.mlflow import model_version_json
from ...services import comments, models, permissions, reviews, stage_reviews, stages
from ..authn import current_actor
from ..mlflow import ok
from ..mlflow.wire import params
from . import bp


# --- Transition requests ---------------------------------------------------------------------------------

@bp.post("/transition-requests/create")
def create_transition_request():
    p = params()
    actor = current_actor()
    record = reviews.create_request(actor, p.required("name"), p.required("version"), p.required("stage"),
                                    comment=p.string("comment"))
    return ok({"request": wire.transition_request_json(record, actor.name)})


@bp.post("/transition-requests/approve")
def approve_transition_request():
    """Approves the pending request(s) to that stage; ``archive_existing_versions`` is the approver's call."""
    p = params()
    archive = p.boolean("archive_existing_versions") if "archive_existing_versions" in p else None
    review = stage_reviews.approve_for_stage(current_actor(), p.required("name"), p.required("version"),
                                       p.required("stage"), archive_existing_versions=archive,
                                       comment=p.string("comment"))
    return ok({"activity": wire.activity_json(review.event)})


@bp.post("/transition-requests/reject")
def reject_transition_request():
    p = params()
    review = stage_reviews.reject_for_stage(current_actor(), p.required("name"), p.required("version"),
                                      p.required("stage"), comment=p.string("comment"))
    return ok({"activity": wire.activity_json(review.event)})


@bp.delete("/transition-requests/delete")
def delete_transition_request():
    """Cancels ``creator``'s pending request (the SDK sends the parameters as a query string)."""
    p = params()
    review = stage_reviews.cancel_for_stage(current_actor(), p.required("name"), p.required("version"),
                                      p.required("stage"), p.required("creator"), comment=p.string("comment"))
    return ok({"activity": wire.activity_json(review.event)})


@bp.get("/transition-requests/list")
def list_transition_requests():
    """Open requests only, oldest first, as REQUESTED_TRANSITION activities."""
    p = params()
    records = stage_reviews.open_requests(current_actor(), p.required("name"), p.required("version"))
    return ok({"requests": [wire.request_activity_json(r) for r in records]} if records else {})


# --- Comments -------------------------------------------------------------------------------------------

def _comment(record):
    actor = current_actor()
    return ok({"comment": wire.comment_json(record, actor.name, actor.is_admin)})


def _comment_id(p) -> int:
    """Our comment ids are integers; anything else cannot name a comment and is reported as not found."""
    raw = p.required("id")
    if not (raw.isdigit() and len(raw) <= 18):
        raise NotFound(f"Comment {raw} not found.", {"comment_id": raw})
    return int(raw)


@bp.post("/comments/create")
def create_comment():
    p = params()
    return _comment(comments.create_comment(current_actor(), p.required("name"), p.required("version"),
                                            p.required("comment")))


@bp.patch("/comments/update")
def update_comment():
    p = params()
    return _comment(comments.update_comment(current_actor(), _comment_id(p), p.required("comment")))


@bp.delete("/comments/delete")
def delete_comment():
    p = params()
    comments.delete_comment(current_actor(), _comment_id(p))
    return ok()


# --- Databricks variants of get-model and transition-stage ---------------------------------------------

@bp.get("/databricks/registered-models/get")
def get_model_databricks():
    """The model with its ``id`` (what the permissions API takes) and the caller's permission level."""
    p = params()
    actor = current_actor()
    name = p.required("name")
    model = models.get_model(actor, name)
    latest = stages.latest_versions(actor, name).versions
    level = permissions.my_level(actor, name)
    return ok({"registered_model_databricks": wire.model_databricks_json(model, latest, level)})


@bp.post("/databricks/model-versions/transition-stage")
def transition_stage_databricks():
    """A direct transition (with a comment). Where an approval policy or the caller's level does not allow
    it, the answer is 403 PERMISSION_DENIED saying that a transition request is needed."""
    p = params()
    actor = current_actor()
    name, version = p.required("name"), p.required("version")
    try:
        record = stages.transition_stage(actor, name, version, p.required("stage"),
                                         archive_existing_versions=p.boolean("archive_existing_versions"),
                                         comment=p.string("comment"))
    except ApprovalRequired:
        raise  # its message already says to create a transition request
    except PermissionDenied as exc:
        raise PermissionDenied(f"{exc.message} Create a transition request instead "
                               f"(transition-requests/create).", exc.details) from None
    level = permissions.my_level(actor, name)
    open_requests = stage_reviews.open_requests(actor, name, version)
    # Both keys: SDK >= 0.58 reads model_version_databricks, older ones read model_version.
    return ok({"model_version_databricks": wire.version_databricks_json(record, level, open_requests),
               "model_version": model_version_json(record)})
