"""Alias requests: the reviewed way to set, move or delete a (protected) alias. An alias request is a
transition request whose target is an alias rather than a stage, so it is approved, rejected, cancelled,
listed, shown in the inbox and superseded by the one mechanism of ``reviews`` (same N-of-M, no
self-approval, creator rule under the alias's policy; reviewers need the alias permission, MANAGE_PRODUCTION).

Its version is the one the alias is to point at (set) or points at now (delete). Any other change of the
alias supersedes it: reviewers approve a move from where the alias pointed when the request was filed.
"""
from __future__ import annotations

from sqlalchemy import select

from .. import names
from ..audit import Action, record
from ..auth import Actor
from ..errors import AlreadyExists, NotFound
from ..lifecycle import AliasAction, Permission, RequestStatus, check_alias_request
from ..orm import ModelAlias, ModelVersion, RegisteredModel, TransitionRequest
from ..db.loading import find_version, lock_model
from ..db.records import RequestRecord, request_record
from ..db.unit_of_work import now, session, use_case
from .access import authorize


def _file(actor: Actor, model: RegisteredModel, mv: ModelVersion, alias: str, action: AliasAction,
          comment: str) -> RequestRecord:
    s = session()
    duplicate = s.scalar(select(TransitionRequest.id).where(
        TransitionRequest.model_id == model.id, TransitionRequest.alias == alias,
        TransitionRequest.alias_action == action.value, TransitionRequest.version_id == mv.id,
        TransitionRequest.requested_by == actor.name, TransitionRequest.status == RequestStatus.PENDING.value))
    if duplicate is not None:
        raise AlreadyExists(f"You already have a pending request ({duplicate}) to {action.value} alias {alias} "
                            f"on this version.", {"request_id": duplicate})
    when = now()
    request = TransitionRequest(model_id=model.id, version_id=mv.id, version=mv.version, from_stage=None,
                                to_stage=None, alias=alias, alias_action=action.value, comment=comment,
                                requested_by=actor.name, status=RequestStatus.PENDING.value, created_at=when,
                                updated_at=when)
    s.add(request)
    s.flush()
    record(s, actor, Action.REQUEST_CREATED, model_id=model.id, model_name=model.name, version=mv.version,
           run_id=mv.run_id, request_id=request.id,
           details={"comment": comment, "alias": alias, "alias_action": action.value}, now=when)
    s.flush()
    return request_record(request)


def _current_target(model: RegisteredModel, alias: str) -> ModelVersion | None:
    found = session().get(ModelAlias, (model.id, alias))
    return found.version if found is not None else None


@use_case
def request_alias(actor: Actor, model_name: str, version: int | str, alias: str, *,
                  comment: str | None = None) -> RequestRecord:
    """Ask for ``alias`` to be set to (or moved to) ``version``. READ suffices: reviewers decide."""
    alias = names.alias_name(alias, for_write=True)
    number = names.version_number(version)
    comment = names.bounded_text(comment, "comment", names.MAX_DESCRIPTION) or ""
    model = lock_model(names.model_name(model_name))
    authorize(actor, model, Permission.READ, "Requesting an alias change")
    mv = find_version(model, number)
    current = _current_target(model, alias)
    check_alias_request(AliasAction.SET, alias, current_version=current.version if current else None,
                        requested_version=mv.version)
    return _file(actor, model, mv, alias, AliasAction.SET, comment)


@use_case
def request_alias_deletion(actor: Actor, model_name: str, alias: str, *, comment: str | None = None) -> RequestRecord:
    """Ask for ``alias`` to be deleted. READ suffices: reviewers decide."""
    alias = names.alias_name(alias, for_write=True)
    comment = names.bounded_text(comment, "comment", names.MAX_DESCRIPTION) or ""
    model = lock_model(names.model_name(model_name))
    authorize(actor, model, Permission.READ, "Requesting an alias change")
    current = _current_target(model, alias)
    try:
        check_alias_request(AliasAction.DELETE, alias, current_version=None if current is None else current.version,
                            requested_version=None)
    except NotFound as error:
        raise NotFound(error.message, {"model": model.name, **error.details}) from None
    return _file(actor, model, current, alias, AliasAction.DELETE, comment)
