"""Aliases: named pointers to versions, with MLflow's rules (``latest`` and ``v<N>`` reserved)."""
from __future__ import annotations

from sqlalchemy import select

from .. import names
from ..audit import Action, record
from ..auth import Actor
from ..orm import ModelAlias, ModelVersion
from ..lifecycle import Permission
from ..db.loading import alias_not_found, find_model, find_version, lock_model, touch
from .access import authorize
from ..db.records import VersionRecord, version_record
from ..db.unit_of_work import now, read_only, session, use_case


@use_case
def set_alias(actor: Actor, model_name: str, alias: str, version: int | str) -> VersionRecord:
    """Point ``alias`` at ``version``, moving it if it already points elsewhere."""
    alias = names.alias_name(alias, for_write=True)
    number = names.version_number(version)
    model = lock_model(names.model_name(model_name))
    # Aliases route serving traffic as Production does, so moving one needs the same permission.
    authorize(actor, model, Permission.MANAGE_PRODUCTION, "Setting an alias")
    mv = find_version(model, number)
    s = session()
    existing = s.get(ModelAlias, (model.id, alias))
    if existing is None or existing.version_id != mv.id:
        when = now()
        previous = existing.version.version if existing else None
        if existing is None:
            s.add(ModelAlias(model_id=model.id, alias=alias, version_id=mv.id))
        else:
            # The version it leaves shows one alias fewer: its representation (and ETag) changes too.
            touch(existing.version, when)
            existing.version_id = mv.id
        touch(mv, when)
        record(s, actor, Action.ALIAS_SET, model_id=model.id, model_name=model.name, version=mv.version,
               run_id=mv.run_id, details={"alias": alias, "previous_version": previous}, now=when)
        s.flush()
        s.expire(mv, ["aliases"])
    return version_record(mv)


@use_case
def delete_alias(actor: Actor, model_name: str, alias: str) -> None:
    """Idempotent, as in MLflow: deleting an absent alias of an existing model succeeds and records nothing."""
    alias = names.alias_name(alias, for_write=False)
    model = lock_model(names.model_name(model_name))
    authorize(actor, model, Permission.MANAGE_PRODUCTION, "Deleting an alias")
    s = session()
    existing = s.get(ModelAlias, (model.id, alias))
    if existing is None:
        return
    mv = existing.version
    when = now()
    touch(mv, when)
    record(s, actor, Action.ALIAS_DELETED, model_id=model.id, model_name=model.name, version=mv.version,
           run_id=mv.run_id, details={"alias": alias}, now=when)
    s.delete(existing)
    s.flush()


@read_only
def get_version_by_alias(actor: Actor, model_name: str, alias: str) -> VersionRecord:
    """Resolve an alias; ``latest`` (reserved, case-insensitive) resolves to the highest version number."""
    alias = names.alias_name(alias, for_write=False)
    model = find_model(names.model_name(model_name))
    authorize(actor, model, Permission.READ, "Reading")
    s = session()
    if names.is_latest_alias(alias):
        mv = s.scalars(
            select(ModelVersion).where(ModelVersion.model_id == model.id)
            .order_by(ModelVersion.version.desc()).limit(1)
        ).first()
        if mv is None:
            raise alias_not_found(model.name, alias)
        return version_record(mv)
    found = s.get(ModelAlias, (model.id, alias))
    if found is None:
        raise alias_not_found(model.name, alias)
    return version_record(found.version)
