"""Transition requests and their review: request, approve, reject, cancel, list, inbox (DESIGN §2).

Every write locks the model row first, like every other model write, so concurrent approvals, rejections
and cancellations of one request are applied one at a time and the request ends in exactly one state.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from .. import names, pagination
from ..audit import Action, record, write_pending
from ..auth import Actor
from ..errors import AlreadyExists, Conflict, InvalidArgument, NotFound, PermissionDenied
from ..lifecycle import (
    TRANSITIONS,
    Permission,
    RequestStatus,
    Stage,
    approval_refusal,
    approvals_needed,
    check_request,
    check_transition,
    parse_stage,
)
from ..orm import AuditEvent, ModelVersion, RegisteredModel, TransitionApproval, TransitionRequest
from ..db.loading import find_model, find_version, lock_model
from .access import authorize, level, lock_parent, readable
from .audit_log import visible_events
from .policies import effective_policy
from ..db.records import AuditRecord, RequestRecord, audit_record, request_record
from .transitions import apply_transition
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


def _require_pending(request: TransitionRequest) -> None:
    if request.status != RequestStatus.PENDING.value:
        raise Conflict(f"Transition request {request.id} is {request.status}, not pending.",
                       {"request_id": request.id, "status": request.status})


def _close(request: TransitionRequest, status: RequestStatus, actor: Actor, comment: str, when) -> None:
    request.status = status.value
    request.resolved_by = actor.name
    request.resolution_comment = comment
    request.updated_at = when


def _authorize_review(actor: Actor, model: RegisteredModel, request: TransitionRequest, doing: str) -> None:
    needed = TRANSITIONS[(Stage(request.from_stage), Stage(request.to_stage))]
    authorize(actor, model, needed, doing)


@use_case
def approve(actor: Actor, request_id: int, comment: str | None = None, *,
            archive_existing_versions: bool | None = None) -> RequestRecord:
    """Approve; when the policy's number of distinct approvals is reached, apply the transition now.

    ``archive_existing_versions`` (Databricks' approve takes it) replaces the request's own flag; None keeps it.
    """
    comment = names.bounded_text(comment, "comment", names.MAX_DESCRIPTION) or ""
    model, request = _lock_request(request_id)
    _authorize_read(actor, model, request_id)
    _require_pending(request)
    _authorize_review(actor, model, request, f"Approving a transition to {request.to_stage}")
    s = session()
    version = s.get(ModelVersion, request.version_id)
    policy = effective_policy(model.id, request.to_stage)
    refusal = approval_refusal(policy, reviewer=actor.name, requester=request.requested_by,
                               version_creator=version.created_by,
                               already_approved=any(a.approver == actor.name for a in request.approvals))
    if refusal:
        raise PermissionDenied(refusal, {"request_id": request.id})
    if archive_existing_versions is not None:
        check_transition(Stage(version.stage), Stage(request.to_stage), archive_existing_versions)
        request.archive_existing_versions = archive_existing_versions
    when = now()
    s.add(TransitionApproval(request_id=request.id, approver=actor.name, comment=comment, created_at=when))
    request.updated_at = when
    s.flush()
    s.expire(request, ["approvals"])
    count, needed = len(request.approvals), approvals_needed(policy)
    record(s, actor, Action.REQUEST_APPROVED, model_id=model.id, model_name=model.name, version=request.version,
           run_id=version.run_id, from_stage=request.from_stage, to_stage=request.to_stage, request_id=request.id,
           details={"comment": comment, "approvals": count, "required": needed}, now=when)
    if count >= needed:
        _close(request, RequestStatus.APPROVED, actor, comment, when)
        s.flush()
        apply_transition(actor, model, version, Stage(request.to_stage),
                         archive_existing_versions=request.archive_existing_versions, when=when, session=s,
                         request_id=request.id,
                         details={"approved_by": [a.approver for a in request.approvals],
                                  "requested_by": request.requested_by})
    s.flush()
    return request_record(request)


@use_case
def reject(actor: Actor, request_id: int, comment: str | None = None) -> RequestRecord:
    comment = names.bounded_text(comment, "comment", names.MAX_DESCRIPTION) or ""
    model, request = _lock_request(request_id)
    _authorize_read(actor, model, request_id)
    _require_pending(request)
    _authorize_review(actor, model, request, f"Rejecting a transition to {request.to_stage}")
    if actor.name == request.requested_by:
        raise PermissionDenied("You cannot review your own transition request; cancel it instead.",
                               {"request_id": request.id})
    when = now()
    _close(request, RequestStatus.REJECTED, actor, comment, when)
    version = session().get(ModelVersion, request.version_id)
    record(session(), actor, Action.REQUEST_REJECTED, model_id=model.id, model_name=model.name,
           version=request.version, run_id=version.run_id, from_stage=request.from_stage,
           to_stage=request.to_stage, request_id=request.id, details={"comment": comment}, now=when)
    session().flush()
    return request_record(request)


@use_case
def cancel(actor: Actor, request_id: int, comment: str | None = None) -> RequestRecord:
    """The requester may cancel their own request; so may whoever MANAGEs the model."""
    comment = names.bounded_text(comment, "comment", names.MAX_DESCRIPTION) or ""
    model, request = _lock_request(request_id)
    _authorize_read(actor, model, request_id)
    _require_pending(request)
    if actor.name != request.requested_by:
        authorize(actor, model, Permission.MANAGE, "Cancelling someone else's transition request")
    when = now()
    _close(request, RequestStatus.CANCELLED, actor, comment, when)
    version = session().get(ModelVersion, request.version_id)
    record(session(), actor, Action.REQUEST_CANCELLED, model_id=model.id, model_name=model.name,
           version=request.version, run_id=version.run_id if version else None, from_stage=request.from_stage,
           to_stage=request.to_stage, request_id=request.id, details={"comment": comment}, now=when)
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


@read_only
def inbox(actor: Actor, max_results: int | None = None) -> list[RequestRecord]:
    """Everything pending that ``actor`` may approve right now, oldest first."""
    limit = pagination.page_size(max_results)
    s = session()
    rows = s.scalars(
        select(TransitionRequest)
        .where(TransitionRequest.status == RequestStatus.PENDING.value,
               TransitionRequest.requested_by != actor.name,
               readable(actor, TransitionRequest.model_id))
        .order_by(TransitionRequest.id)
    ).all()
    result: list[RequestRecord] = []
    levels: dict[int, int] = {}
    for request in rows:
        held = levels.setdefault(request.model_id, level(actor, request.model_id))
        if held < TRANSITIONS[(Stage(request.from_stage), Stage(request.to_stage))]:
            continue
        version = s.get(ModelVersion, request.version_id)
        refusal = approval_refusal(
            effective_policy(request.model_id, request.to_stage), reviewer=actor.name,
            requester=request.requested_by, version_creator=version.created_by,
            already_approved=any(a.approver == actor.name for a in request.approvals))
        if refusal is None:
            result.append(request_record(request))
            if len(result) == limit:
                break
    return result


# --- Requests addressed by (model, version, target stage[, requester]), as Databricks' API does: it has no
# request ids. Each use case runs the id-addressed one above on every matching pending request, inside its
# own single transaction (``_body`` skips the inner commit), so one call approves or rejects all or nothing.

def _body(use_case_fn):
    """The undecorated body of a use case, to run inside the caller's transaction."""
    return use_case_fn.__wrapped__


@dataclass(frozen=True)
class StageReview:
    """The requests a stage-addressed review changed, and the audit event of the first one (the activity
    Databricks answers with)."""

    requests: tuple[RequestRecord, ...]
    event: AuditRecord


def _pending_ids(actor: Actor, model_name: str, version: int | str, stage: str,
                 requested_by: str | None = None) -> tuple[RegisteredModel, Stage, list[int]]:
    target = parse_stage(stage)
    number = names.version_number(version)
    model = lock_model(names.model_name(model_name))
    authorize(actor, model, Permission.READ, "Reading")
    mv = find_version(model, number)
    stmt = select(TransitionRequest.id).where(
        TransitionRequest.version_id == mv.id, TransitionRequest.to_stage == target.value,
        TransitionRequest.status == RequestStatus.PENDING.value)
    if requested_by is not None:
        stmt = stmt.where(TransitionRequest.requested_by == requested_by)
    ids = list(session().scalars(stmt.order_by(TransitionRequest.id)))
    if not ids:
        by = f" by {requested_by}" if requested_by is not None else ""
        raise NotFound(f"No pending request{by} to transition version {number} of registered model "
                       f"{model.name} to {target.value}.",
                       {"model": model.name, "version": number, "stage": target.value})
    return model, target, ids


def _event(actor: Actor, request_id: int, action: Action) -> AuditRecord:
    write_pending(session())  # events are buffered until commit; this one is read back now
    row = session().scalars(
        select(AuditEvent).where(AuditEvent.request_id == request_id, AuditEvent.action == action.value,
                                 AuditEvent.actor == actor.name, visible_events(actor))
        .order_by(AuditEvent.id.desc()).limit(1)).one()
    return audit_record(row)


def _review_each(actor: Actor, ids: list[int], review, action: Action) -> StageReview:
    """Run ``review`` on each request still pending (an earlier approval may have applied the transition and
    superseded the rest). A request the actor may not review (their own, or a policy says no) is skipped;
    if every one is, the first refusal is raised."""
    done: list[RequestRecord] = []
    refusal: PermissionDenied | None = None
    for request_id in ids:
        status = session().scalar(select(TransitionRequest.status).where(TransitionRequest.id == request_id)
                                  .execution_options(populate_existing=True))
        if status != RequestStatus.PENDING.value:
            continue
        try:
            done.append(review(request_id))
        except PermissionDenied as exc:
            # Every refusal is raised before the review writes anything, so carrying on is safe; a missing
            # stage permission refuses all alike and ends up raised below.
            refusal = refusal or exc
    if not done:
        assert refusal is not None
        raise refusal
    return StageReview(tuple(done), _event(actor, done[0].id, action))


@use_case
def approve_for_stage(actor: Actor, model_name: str, version: int | str, stage: str, *,
                      archive_existing_versions: bool | None = None, comment: str | None = None) -> StageReview:
    """Approve the pending requests to move the version to ``stage`` (oldest first); none → NotFound."""
    _, _, ids = _pending_ids(actor, model_name, version, stage)
    return _review_each(actor, ids, lambda rid: _body(approve)(
        actor, rid, comment, archive_existing_versions=archive_existing_versions), Action.REQUEST_APPROVED)


@use_case
def reject_for_stage(actor: Actor, model_name: str, version: int | str, stage: str, *,
                     comment: str | None = None) -> StageReview:
    """Reject the pending requests (of others) to move the version to ``stage``; none → NotFound."""
    _, _, ids = _pending_ids(actor, model_name, version, stage)
    return _review_each(actor, ids, lambda rid: _body(reject)(actor, rid, comment), Action.REQUEST_REJECTED)


@use_case
def cancel_for_stage(actor: Actor, model_name: str, version: int | str, stage: str, requested_by: str, *,
                     comment: str | None = None) -> StageReview:
    """Cancel ``requested_by``'s pending request to move the version to ``stage`` (there is at most one)."""
    requested_by = names.bounded_text(requested_by, "creator", 128, required=True)
    _, _, ids = _pending_ids(actor, model_name, version, stage, requested_by)
    record = _body(cancel)(actor, ids[0], comment)
    return StageReview((record,), _event(actor, record.id, Action.REQUEST_CANCELLED))


@read_only
def open_requests(actor: Actor, model_name: str, version: int | str) -> list[RequestRecord]:
    """The version's pending requests, oldest first."""
    model = find_model(names.model_name(model_name))
    authorize(actor, model, Permission.READ, "Reading")
    mv = find_version(model, names.version_number(version))
    rows = session().scalars(
        select(TransitionRequest)
        .where(TransitionRequest.version_id == mv.id, TransitionRequest.status == RequestStatus.PENDING.value)
        .order_by(TransitionRequest.id)).all()
    return [request_record(r) for r in rows]
