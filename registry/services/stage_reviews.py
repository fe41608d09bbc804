"""Transition requests addressed by (model, version, target stage[, requester]), as Databricks' API does: it
has no request ids, and no alias requests (its requests have a ``to_stage`` and nothing else), so these
match stage transition requests only.

Each use case runs the id-addressed one of ``reviews`` on every matching pending request, inside its own
single transaction (``_body`` skips the inner commit), so one call approves or rejects all or nothing.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from .. import names
from ..audit import Action, write_pending
from ..auth import Actor
from ..errors import NotFound, PermissionDenied
from ..lifecycle import Permission, RequestStatus, Stage, parse_stage
from ..orm import AuditEvent, RegisteredModel, TransitionRequest
from ..db.loading import find_model, find_version, lock_model
from ..db.records import AuditRecord, RequestRecord, audit_record, request_record
from ..db.unit_of_work import read_only, session, use_case
from .access import authorize
from .audit_log import visible_events
from .reviews import approve, cancel, reject


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
                       f"{model.name} to {target.value}.{_your_last_decision(actor, mv.id, target)}",
                       {"model": model.name, "version": number, "stage": target.value})
    return model, target, ids


def _your_last_decision(actor: Actor, version_id: int, target: Stage) -> str:
    """For a client retrying a review whose answer was lost (a worker killed after the commit): the latest
    decided request of this version to this stage, when the caller decided it."""
    latest = session().scalars(
        select(TransitionRequest).where(TransitionRequest.version_id == version_id,
                                        TransitionRequest.to_stage == target.value,
                                        TransitionRequest.status != RequestStatus.PENDING.value)
        .order_by(TransitionRequest.id.desc()).limit(1)).one_or_none()
    if latest is None:
        return ""
    if actor.name != latest.resolved_by and actor.name not in {a.approver for a in latest.approvals}:
        return ""
    return (f" Request {latest.id} was already {latest.status} by you: if you are retrying a request whose "
            f"answer was lost, it took effect.")


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
    """The version's pending stage transition requests, oldest first (alias requests have no shape here)."""
    model = find_model(names.model_name(model_name))
    authorize(actor, model, Permission.READ, "Reading")
    mv = find_version(model, names.version_number(version))
    rows = session().scalars(
        select(TransitionRequest)
        .where(TransitionRequest.version_id == mv.id, TransitionRequest.status == RequestStatus.PENDING.value,
               TransitionRequest.alias.is_(None))
        .order_by(TransitionRequest.id)).all()
    return [request_record(r) for r in rows]
