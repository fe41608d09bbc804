"""Aliases: named pointers to versions, with MLflow's rules (``latest`` and ``v<N>`` reserved). An alias
with an approval policy (a "protected alias") changes only through an approved alias request
(``alias_requests``), or by an admin's ``force``."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select

from .. import names
from ..audit import Action, record
from ..auth import Actor
from ..errors import ApprovalRequired
from ..lifecycle import (
    ALIAS_PERMISSION,
    AliasAction,
    Permission,
    check_force,
    direct_alias_refusal,
    forced_details,
    refusal_details,
)
from ..orm import ModelAlias, ModelVersion, RegisteredModel
from ..db.loading import alias_not_found, find_version, lock_model, revise
from .access import authorize
from . import serving
from .policies import alias_review
from .transitions import supersede_alias_requests
from ..db.records import VersionRecord, version_record
from ..db.unit_of_work import now, read_only, session, use_case


_LOOK_IT_UP = object()


def apply_alias_change(actor: Actor, model: RegisteredModel, alias: str, target: ModelVersion | None, *, when,
                       session, request_id: int | None = None, details: dict[str, Any] | None = None,
                       existing: ModelAlias | None | object = _LOOK_IT_UP) -> bool:
    """Point ``alias`` at ``target`` (None: delete it), audit it and close the pending requests to change
    the alias that this makes moot. Shared by direct changes, approved alias requests and imports; the caller
    holds the model row lock. ``existing``: the alias's row (None: there is none) if the caller read it under
    that lock already. Returns whether anything changed."""
    if existing is _LOOK_IT_UP:
        existing = session.get(ModelAlias, (model.id, alias))
    extra = details or {}
    if target is None:
        if existing is None:
            return False
        mv = existing.version
        revise(mv)
        record(session, actor, Action.ALIAS_DELETED, model_id=model.id, model_name=model.name, version=mv.version,
               run_id=mv.run_id, request_id=request_id, details={"alias": alias, **extra}, now=when)
        session.delete(existing)
    else:
        if existing is not None and existing.version_id == target.id:
            return False
        previous = existing.version.version if existing else None
        if existing is None:
            session.add(ModelAlias(model_id=model.id, alias=alias, version_id=target.id))
        else:
            # The version it leaves shows one alias fewer: its representation (and ETag) changes too.
            revise(existing.version)
            existing.version_id = target.id
        revise(target)
        record(session, actor, Action.ALIAS_SET, model_id=model.id, model_name=model.name, version=target.version,
               run_id=target.run_id, request_id=request_id,
               details={"alias": alias, "previous_version": previous, **extra}, now=when)
    session.flush()
    supersede_alias_requests(actor, model, alias, when=when, session=session, except_id=request_id,
                             reason=f"alias {alias} changed")
    if target is not None:
        session.expire(target, ["aliases"])
    return True


def _check_policy(actor: Actor, model: RegisteredModel, alias: str, action: AliasAction, force: bool,
                  version: int | None) -> dict[str, Any]:
    """Refuse a direct change of a protected alias unless an admin forces it; the audit details of a
    forced change."""
    review = alias_review(model.id, alias)
    refusal = direct_alias_refusal(review, alias, action)
    if refusal and not force:
        where = {"version": version} if version is not None else {}
        raise ApprovalRequired(refusal, {"model": model.name, "alias": alias, **where, **refusal_details(review)})
    return forced_details(review) if refusal else {}


@use_case
def set_alias(actor: Actor, model_name: str, alias: str, version: int | str, *, force: bool = False) -> VersionRecord:
    """Point ``alias`` at ``version``, moving it if it already points elsewhere. A protected alias needs an
    approved alias request instead; an admin may ``force`` it, which the audit event records."""
    alias = names.alias_name(alias, for_write=True)
    number = names.version_number(version)
    model = lock_model(names.model_name(model_name))
    # Aliases route serving traffic as Production does, so moving one needs the same permission.
    authorize(actor, model, ALIAS_PERMISSION, "Setting an alias")
    mv = find_version(model, number)
    check_force(force, actor.is_admin, "an alias change")
    s = session()
    existing = s.get(ModelAlias, (model.id, alias))
    if existing is not None and existing.version_id == mv.id:
        return version_record(mv)  # already so: nothing changes, so there is nothing to review
    details = _check_policy(actor, model, alias, AliasAction.SET, force, mv.version)
    apply_alias_change(actor, model, alias, mv, when=now(), session=s, details=details)
    return version_record(mv)


@use_case
def delete_alias(actor: Actor, model_name: str, alias: str, *, force: bool = False) -> None:
    """Idempotent, as in MLflow: deleting an absent alias of an existing model succeeds and records nothing.
    A protected alias needs an approved deletion request instead, or an admin's ``force``."""
    alias = names.alias_name(alias, for_write=False)
    model = lock_model(names.model_name(model_name))
    authorize(actor, model, ALIAS_PERMISSION, "Deleting an alias")
    check_force(force, actor.is_admin, "an alias change")
    s = session()
    existing = s.get(ModelAlias, (model.id, alias))
    if existing is None:
        return
    details = _check_policy(actor, model, alias, AliasAction.DELETE, force, None)
    apply_alias_change(actor, model, alias, None, when=now(), session=s, details=details)


@read_only
def get_version_by_alias(actor: Actor, model_name: str, alias: str) -> VersionRecord:
    """Resolve an alias; ``latest`` (reserved, case-insensitive) resolves to the highest version number. The
    serving read with the whole version (one statement)."""
    return serving.alias_record(actor, model_name, alias)


def alias_target(model: RegisteredModel, alias: str) -> ModelVersion:
    """The version ``alias`` (validated) points at, ``latest`` being the highest; NotFound if none. Not a use
    case: the caller's transaction reads it (a read, or a write resolving ``models:/<name>@<alias>``)."""
    s = session()
    if names.is_latest_alias(alias):
        mv = s.scalars(
            select(ModelVersion).where(ModelVersion.model_id == model.id)
            .order_by(ModelVersion.version.desc()).limit(1)
        ).first()
        if mv is None:
            raise alias_not_found(model.name, alias)
        return mv
    found = s.get(ModelAlias, (model.id, alias))
    if found is None:
        raise alias_not_found(model.name, alias)
    return found.version
