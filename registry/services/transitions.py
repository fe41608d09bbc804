"""Applying a stage change, shared by direct transitions and approved requests, and closing the pending
requests a change made moot (not use cases themselves: callers run them inside their own transaction,
holding the model row lock)."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select

from ..audit import Action, record
from ..auth import Actor
from ..lifecycle import RequestStatus, Stage, StageBoard, is_superseded, stage_to_archive
from ..orm import ModelVersion, RegisteredModel, TransitionRequest
from ..db.history import serving_details
from ..db.loading import touch


def apply_transition(
    actor: Actor,
    model: RegisteredModel,
    version: ModelVersion,
    target: Stage,
    *,
    archive_existing_versions: bool,
    when,
    session,
    request_id: int | None = None,
    details: dict[str, Any] | None = None,
) -> list[int]:
    """Move ``version`` to ``target``, archive the target stage's other versions if asked, audit each change
    and supersede the pending requests those changes made moot. Returns the archived version numbers."""
    current = Stage(version.stage)
    archived: list[ModelVersion] = []
    archive_stage = stage_to_archive(target, archive_existing_versions)
    if archive_stage is not None:
        archived = list(session.scalars(
            select(ModelVersion)
            .where(ModelVersion.model_id == model.id, ModelVersion.stage == archive_stage.value,
                   ModelVersion.id != version.id)
            .order_by(ModelVersion.version)
        ))
    if current == target and not archived:
        return []
    left = [(other, other.stage) for other in archived]
    for other in archived:
        other.stage = Stage.ARCHIVED.value
        touch(other, when)
    version.stage = target.value
    touch(version, when)
    touch(model, when)  # MLflow counts a transition as an update of the model: pollers by timestamp see it
    session.flush()
    # Each event records what every stage serves once the change is made (db/history.py reads the past from
    # it: "what was in Staging at t" then costs an index probe, not a count of everything that passed).
    serving = serving_details(model.id)
    for other, stage in left:
        record(session, actor, Action.VERSION_TRANSITIONED, model_id=model.id, model_name=model.name,
               version=other.version, run_id=other.run_id, from_stage=stage,
               to_stage=Stage.ARCHIVED.value, request_id=request_id,
               details={"reason": "archive_existing_versions", "promoted_version": version.version, **serving},
               now=when)
    record(session, actor, Action.VERSION_TRANSITIONED, model_id=model.id, model_name=model.name,
           version=version.version, run_id=version.run_id, from_stage=current.value, to_stage=target.value,
           request_id=request_id,
           details={"archive_existing_versions": archive_existing_versions,
                    "archived_versions": [v.version for v in archived], **(details or {}), **serving},
           now=when)
    supersede_moot_requests(actor, model, [version, *archived], when=when, session=session,
                            reason=f"version moved to {target.value}")
    return [v.version for v in archived]


def place_stages(actor: Actor, model: RegisteredModel, moves: list[tuple[ModelVersion, Stage, dict[str, Any]]], *,
                 versions: list[ModelVersion], when, session) -> None:
    """Move several versions at once, each to its stage, none archiving others (an import placing versions as
    its source has them): the rows, events and closed requests that ``apply_transition`` gives one move at a
    time, without its flush and query per move. ``versions`` are all of the model's versions as they stand
    before the moves (read under the row lock, or created in this transaction and not flushed yet: such a
    version has no requests to close); what each stage serves after each move is worked out from them
    (``StageBoard``) rather than queried. Moves are applied in the order given."""
    board = StageBoard((v.version, Stage(v.stage)) for v in versions)
    moved: dict[Stage, list[ModelVersion]] = {}
    for version, target, details in moves:
        current = Stage(version.stage)
        if current == target:
            continue
        board.move(version.version, current, target)
        version.stage = target.value
        touch(version, when)
        touch(model, when)
        record(session, actor, Action.VERSION_TRANSITIONED, model_id=model.id, model_name=model.name,
               version=version.version, run_id=version.run_id, from_stage=current.value, to_stage=target.value,
               details={"archive_existing_versions": False, "archived_versions": [], **details,
                        "serving": board.answers()},
               now=when)
        if version.id is not None:
            moved.setdefault(target, []).append(version)
    for target, left in moved.items():
        supersede_moot_requests(actor, model, left, when=when, session=session,
                                reason=f"version moved to {target.value}")


def supersede_moot_requests(actor: Actor, model: RegisteredModel, versions: list[ModelVersion], *, when, session,
                            reason: str, version_deleted: bool = False) -> None:
    """Pending requests whose version left the stage they were requested from (or was deleted) are closed."""
    by_id = {v.id: v for v in versions}
    pending = session.scalars(
        select(TransitionRequest)
        .where(TransitionRequest.version_id.in_(by_id), TransitionRequest.status == RequestStatus.PENDING.value)
        .order_by(TransitionRequest.id)
    ).all()
    for request in pending:
        version = by_id[request.version_id]
        if not version_deleted and (request.alias is not None  # a stage move leaves alias requests be
                                    or not is_superseded(Stage(request.from_stage), Stage(version.stage))):
            continue
        _supersede(actor, model, request, version.run_id, reason, when, session)
    session.flush()


def supersede_alias_requests(actor: Actor, model: RegisteredModel, alias: str, *, when, session, reason: str,
                             except_id: int | None = None) -> None:
    """Any change of an alias, by whatever path, closes the pending requests to change it (but the one being
    applied): reviewers approved a move from where the alias pointed when the request was filed."""
    pending = session.scalars(
        select(TransitionRequest)
        .where(TransitionRequest.model_id == model.id, TransitionRequest.alias == alias,
               TransitionRequest.status == RequestStatus.PENDING.value, TransitionRequest.id != (except_id or 0))
        .order_by(TransitionRequest.id)
    ).all()
    for request in pending:
        version = session.get(ModelVersion, request.version_id) if request.version_id is not None else None
        _supersede(actor, model, request, version.run_id if version else None, reason, when, session)
    session.flush()


def _supersede(actor: Actor, model: RegisteredModel, request: TransitionRequest, run_id: str | None, reason: str,
               when, session) -> None:
    request.status = RequestStatus.SUPERSEDED.value
    request.resolved_by = actor.name
    request.resolution_comment = reason
    request.updated_at = when
    record(session, actor, Action.REQUEST_SUPERSEDED, model_id=model.id, model_name=model.name,
           version=request.version, run_id=run_id, from_stage=request.from_stage, to_stage=request.to_stage,
           request_id=request.id, details={"reason": reason, **request_subject(request)}, now=when)


def request_subject(request: TransitionRequest) -> dict[str, Any]:
    """What an alias request is about, for its audit events (a stage request's is in from/to_stage)."""
    return {} if request.alias is None else {"alias": request.alias, "alias_action": request.alias_action}
