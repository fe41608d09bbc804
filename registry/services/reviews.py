"""Transition requests and their review: request, approve, reject, cancel, list (DESIGN §2). What each reader
sees of the requests (the inbox, their own, a version's) is ``review_queue``.

A request is reviewed under the combined policy of the change it asks for (``lifecycle``): for a stage
transition, every stage it changes (so leaving Production is reviewed like entering it); for an alias
request (``alias_requests``), the alias's policy. Databricks' stage-addressed reviews are in
``stage_reviews``.

Every write locks the model row first, like every other model write, so concurrent approvals, rejections
and cancellations of one request are applied one at a time and the request ends in exactly one state.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from .. import names, pagination
from ..audit import Action, record
from ..auth import Actor
from ..errors import AlreadyExists, Conflict, InvalidArgument, NotFound, PermissionDenied
from ..lifecycle import (
    ALIAS_PERMISSION,
    TRANSITIONS,
    AliasAction,
    Permission,
    RequestStatus,
    RequiredReview,
    Stage,
    approval_refusal,
    approvals_needed,
    check_request,
    check_transition,
    parse_stage,
)
from ..orm import ModelVersion, RegisteredModel, TransitionApproval, TransitionRequest
from ..db.loading import find_model, find_version, lock_model
from .access import authorize, lock_parent, readable
from .aliases import apply_alias_change
from .policies import PolicyBook
from ..db.records import RequestRecord, request_record
from .transitions import apply_transition, request_subject
from ..db.unit_of_work import now, read_only, session, use_case


def _request_not_found(request_id: int) -> NotFound:
    return NotFound(f"Transition request {request_id} not found.", {"request_id": request_id})


@use_case
def create_request(actor: Actor, model_name: str, version: int | str, stage: str, *,
                   archive_existing_versions: bool = False, comment: str | None = None) -> RequestRecord:
    """Ask for a version to be moved to ``stage``. READ suffices: reviewers decide."""
    target = parse_stage(stage)
    number = names.version_number(version)
    comment = names.bounded_text(comment, "comment", names.MAX_DESCRIPTION) or ""
    model = lock_model(names.model_name(model_name))
    authorize(actor, model, Permission.READ, "Requesting a transition")
    mv = find_version(model, number)
    current = Stage(mv.stage)
    check_request(current, target, archive_existing_versions)
    s = session()
    duplicate = s.scalar(select(TransitionRequest.id).where(
        TransitionRequest.version_id == mv.id, TransitionRequest.to_stage == target.value,
        TransitionRequest.requested_by == actor.name, TransitionRequest.status == RequestStatus.PENDING.value))
    if duplicate is not None:
        raise AlreadyExists(f"You already have a pending request ({duplicate}) to move this version to "
                            f"{target.value}.", {"request_id": duplicate})
    when = now()
    request = TransitionRequest(model_id=model.id, version_id=mv.id, version=mv.version, from_stage=current.value,
                                to_stage=target.value, archive_existing_versions=archive_existing_versions,
                                comment=comment, requested_by=actor.name, status=RequestStatus.PENDING.value,
                                created_at=when, updated_at=when)
    s.add(request)
    s.flush()
    record(s, actor, Action.REQUEST_CREATED, model_id=model.id, model_name=model.name, version=mv.version,
           run_id=mv.run_id, from_stage=current.value, to_stage=target.value, request_id=request.id,
           details={"comment": comment, "archive_existing_versions": archive_existing_versions}, now=when)
    s.flush()
    return request_record(request)


def _lock_request(request_id: int) -> tuple[RegisteredModel, TransitionRequest]:
    """Lock the request's model row (the one lock every model write takes first), then load the request."""
    model = lock_parent(select(TransitionRequest.model_id).where(TransitionRequest.id == request_id),
                        _request_not_found(request_id))
    request = session().scalars(select(TransitionRequest).where(TransitionRequest.id == request_id)
                                .execution_options(populate_existing=True)).one_or_none()
    if request is None:  # deleted while we waited for the lock
        raise _request_not_found(request_id)
    return model, request


def _authorize_read(actor: Actor, model: RegisteredModel, request_id: int) -> None:
    authorize(actor, model, Permission.READ, "Reading", missing=_request_not_found(request_id))


def _require_pending(request: TransitionRequest, actor: Actor) -> None:
    """A decided request refuses another decision, saying who decided it, and whether that was the caller: a
    client retrying a review whose answer was lost (a worker killed after the commit) learns it took effect."""
    if request.status == RequestStatus.PENDING.value:
        return
    approvers = sorted(a.approver for a in request.approvals)
    by_you = actor.name == request.resolved_by or actor.name in approvers
    who = "you" if by_you else (request.resolved_by or "the system")
    message = f"Transition request {request.id} is already {request.status} (by {who}); nothing was changed."
    if by_you:
        message += " If you are retrying a request whose answer was lost, your earlier one took effect."
    raise Conflict(message, {"request_id": request.id, "status": request.status,
                             "resolved_by": request.resolved_by, "approved_by": approvers, "by_you": by_you})


def _close(request: TransitionRequest, status: RequestStatus, actor: Actor, comment: str, when) -> None:
    request.status = status.value
    request.resolved_by = actor.name
    request.resolution_comment = comment
    request.updated_at = when


def review_level(request: TransitionRequest) -> Permission:
    """The level a reviewer needs to approve or reject this request."""
    if request.alias is not None:
        return ALIAS_PERMISSION
    return TRANSITIONS[(Stage(request.from_stage), Stage(request.to_stage))]


def _what(request: TransitionRequest) -> str:
    if request.alias is not None:
        return f"an alias request for {request.alias}"
    return f"a transition to {request.to_stage}"


def _authorize_review(actor: Actor, model: RegisteredModel, request: TransitionRequest, doing: str) -> None:
    authorize(actor, model, review_level(request), f"{doing} {_what(request)}")


def required_review(model_id: int, request: TransitionRequest, archive_existing_versions: bool,
                    book: PolicyBook | None = None) -> RequiredReview:
    """The review the requested change needs, under the policies in force now (``book``: already read)."""
    book = book or PolicyBook([model_id])
    if request.alias is not None:
        return book.alias_review(model_id, request.alias)
    return book.transition_review(model_id, Stage(request.from_stage), Stage(request.to_stage),
                                  archive_existing_versions)


def _apply(actor: Actor, model: RegisteredModel, request: TransitionRequest, version: ModelVersion, when) -> None:
    details = {"approved_by": [a.approver for a in request.approvals], "requested_by": request.requested_by}
    if request.alias is None:
        apply_transition(actor, model, version, Stage(request.to_stage),
                         archive_existing_versions=request.archive_existing_versions, when=when, session=session(),
                         request_id=request.id, details=details)
    else:
        target = version if request.alias_action == AliasAction.SET.value else None
        apply_alias_change(actor, model, request.alias, target, when=when, session=session(),
                           request_id=request.id, details=details)


@use_case
def approve(actor: Actor, request_id: int, comment: str | None = None, *,
            archive_existing_versions: bool | None = None) -> RequestRecord:
    """Approve; when the policy's number of distinct approvals is reached, apply the change now.

    ``archive_existing_versions`` (Databricks' approve takes it) replaces the request's own flag; None keeps it.
    Every refusal is raised before anything is written (``stage_reviews`` relies on it)."""
    comment = names.bounded_text(comment, "comment", names.MAX_DESCRIPTION) or ""
    model, request = _lock_request(request_id)
    _authorize_read(actor, model, request_id)
    _require_pending(request, actor)
    _authorize_review(actor, model, request, "Approving")
    s = session()
    version = s.get(ModelVersion, request.version_id)
    archive = request.archive_existing_versions if archive_existing_versions is None else archive_existing_versions
    if archive_existing_versions is not None and request.alias is None:
        check_transition(Stage(version.stage), Stage(request.to_stage), archive)
    review = required_review(model.id, request, archive)
    refusal = approval_refusal(review, reviewer=actor.name, requester=request.requested_by,
                               version_creator=version.created_by,
                               already_approved=any(a.approver == actor.name for a in request.approvals))
    if refusal:
        raise PermissionDenied(refusal, {"request_id": request.id})
    if request.alias is None:
        request.archive_existing_versions = archive
    when = now()
    s.add(TransitionApproval(request_id=request.id, approver=actor.name, comment=comment, created_at=when))
    request.updated_at = when
    s.flush()
    s.expire(request, ["approvals"])
    count, needed = len(request.approvals), approvals_needed(review)
    record(s, actor, Action.REQUEST_APPROVED, model_id=model.id, model_name=model.name, version=request.version,
           run_id=version.run_id, from_stage=request.from_stage, to_stage=request.to_stage, request_id=request.id,
           details={"comment": comment, "approvals": count, "required": needed, **request_subject(request)},
           now=when)
    if count >= needed:
        _close(request, RequestStatus.APPROVED, actor, comment, when)
        s.flush()
        _apply(actor, model, request, version, when)
    s.flush()
    return request_record(request)


@use_case
def reject(actor: Actor, request_id: int, comment: str | None = None) -> RequestRecord:
    comment = names.bounded_text(comment, "comment", names.MAX_DESCRIPTION) or ""
    model, request = _lock_request(request_id)
    _authorize_read(actor, model, request_id)
    _require_pending(request, actor)
    _authorize_review(actor, model, request, "Rejecting")
    if actor.name == request.requested_by:
        raise PermissionDenied("You cannot review your own transition request; cancel it instead.",
                               {"request_id": request.id})
    when = now()
    _close(request, RequestStatus.REJECTED, actor, comment, when)
    version = session().get(ModelVersion, request.version_id)
    record(session(), actor, Action.REQUEST_REJECTED, model_id=model.id, model_name=model.name,
           version=request.version, run_id=version.run_id, from_stage=request.from_stage,
           to_stage=request.to_stage, request_id=request.id,
           details={"comment": comment, **request_subject(request)}, now=when)
    session().flush()
    return request_record(request)


@use_case
def cancel(actor: Actor, request_id: int, comment: str | None = None) -> RequestRecord:
    """The requester may cancel their own request; so may whoever MANAGEs the model."""
    comment = names.bounded_text(comment, "comment", names.MAX_DESCRIPTION) or ""
    model, request = _lock_request(request_id)
    _authorize_read(actor, model, request_id)
    _require_pending(request, actor)
    if actor.name != request.requested_by:
        authorize(actor, model, Permission.MANAGE, "Cancelling someone else's transition request")
    when = now()
    _close(request, RequestStatus.CANCELLED, actor, comment, when)
    version = session().get(ModelVersion, request.version_id)
    record(session(), actor, Action.REQUEST_CANCELLED, model_id=model.id, model_name=model.name,
           version=request.version, run_id=version.run_id if version else None, from_stage=request.from_stage,
           to_stage=request.to_stage, request_id=request.id,
           details={"comment": comment, **request_subject(request)}, now=when)
    session().flush()
    return request_record(request)


@read_only
def get_request(actor: Actor, request_id: int) -> RequestRecord:
    request = session().get(TransitionRequest, request_id)
    if request is None:
        raise _request_not_found(request_id)
    _authorize_read(actor, request.model, request_id)
    return request_record(request)


@dataclass(frozen=True)
class RequestQuery:
    model_name: str | None = None
    version: int | None = None
    status: str | None = None


_STATUSES = {s.value for s in RequestStatus}


@read_only
def list_requests(actor: Actor, query: RequestQuery, max_results: int | None = None,
                  page_token: str | None = None) -> pagination.Page[RequestRecord]:
    """Requests of a model (optionally one version), newest first; filter by status."""
    limit = pagination.page_size(max_results)
    if query.status is not None and query.status not in _STATUSES:
        raise InvalidArgument(f"Unknown status {query.status!r}; one of {sorted(_STATUSES)}.", {"field": "status"})
    fp = pagination.fingerprint({"kind": "requests", **query.__dict__})
    stmt = select(TransitionRequest).where(readable(actor, TransitionRequest.model_id))
    if query.model_name is not None:
        model = find_model(names.model_name(query.model_name))
        authorize(actor, model, Permission.READ, "Reading")
        stmt = stmt.where(TransitionRequest.model_id == model.id)
        if query.version is not None:
            find_version(model, query.version)
            stmt = stmt.where(TransitionRequest.version == query.version)
    if query.status is not None:
        stmt = stmt.where(TransitionRequest.status == query.status)
    after = pagination.decode_id(page_token, fp)
    if after is not None:
        stmt = stmt.where(TransitionRequest.id < after)
    rows = session().scalars(stmt.order_by(TransitionRequest.id.desc()).limit(limit + 1)).all()
    token = pagination.next_id_token(rows, limit, fp)
    return pagination.Page([request_record(r) for r in rows[:limit]], token)
