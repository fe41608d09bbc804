"""Registered models: create, read, search, update, rename, delete, tags."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import exists, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from .. import names, pagination
from ..audit import Action, record
from ..auth import Actor
from ..errors import AlreadyExists, ApprovalRequired, PreconditionFailed
from ..lifecycle import (
    ALL_STAGES,
    Permission,
    check_force,
    deletion_refusal,
    forced_details,
    refusal_details,
    rename_refusal,
)
from ..orm import ModelAlias, ModelVersion, RegisteredModel, RegisteredModelTag
from ..db.loading import find_model, highest_per_stage, lock_model, revise, touch
from . import idempotency as idempotent
from .access import authorize, authorize_registry, grant_creator, readable
from .policies import serving_review
from ..db.records import ModelRecord, VersionRecord, model_record, version_record
from ..db import filters
from ..db.unit_of_work import now, read_only, session, use_case


def _already_exists(name: str) -> AlreadyExists:
    return AlreadyExists(f"Registered Model (name={name}) already exists.", {"model": name})


def _check_revision(model: RegisteredModel, expected: int | None) -> None:
    if expected is not None and model.revision != expected:
        raise PreconditionFailed(
            f"Registered model {model.name} is at revision {model.revision}, not {expected}.",
            {"model": model.name, "revision": model.revision},
        )


@use_case
def create_model(
    actor: Actor, name: str, description: str | None = None, tags: dict[str, str] | None = None,
    *, idempotency: idempotent.Key | None = None,
) -> ModelRecord:
    """``idempotency``: the caller's Idempotency-Key; sent again, it answers the model created the first time."""
    name = names.model_name(name)
    description = names.bounded_text(description, "description", names.MAX_DESCRIPTION) or ""
    tags = names.tags(tags)
    authorize_registry(actor, Permission.EDIT, "Creating a registered model")
    if idempotency is not None:
        earlier = idempotent.claim(actor, idempotency)
        if earlier is not None:
            model = idempotent.earlier_model(earlier)
            authorize(actor, model, Permission.READ, "Reading")
            return model_record(model)
    when = now()
    s = session()
    # ON CONFLICT instead of check-then-insert: two concurrent creates of one name give one winner and a
    # clean AlreadyExists, never an IntegrityError.
    model_id = s.execute(
        insert(RegisteredModel)
        .values(name=name, description=description, created_by=actor.name, created_at=when, updated_at=when)
        .on_conflict_do_nothing(index_elements=["name"])
        .returning(RegisteredModel.id)
    ).scalar_one_or_none()
    if model_id is None:
        raise _already_exists(name)
    grant_creator(actor, model_id, when)
    for key, value in tags.items():
        s.add(RegisteredModelTag(model_id=model_id, key=key, value=value))
    record(s, actor, Action.MODEL_CREATED, model_id=model_id, model_name=name,
           details={"description": description, "tags": tags}, now=when)
    s.flush()
    if idempotency is not None:
        idempotent.settle(actor, idempotency, model_id)
    return model_record(find_model(name))


@read_only
def get_model(actor: Actor, name: str) -> ModelRecord:
    model = find_model(names.model_name(name))
    authorize(actor, model, Permission.READ, "Reading")
    return model_record(model)


@dataclass(frozen=True)
class ModelQuery:
    name_prefix: str | None = None
    name_contains: str | None = None
    tags: tuple[tuple[str, str], ...] = ()
    order_by: str = "name"
    descending: bool = False
    # Dialect searches (MLflow's filter grammar): AND-ed conditions, and an ordering over several keys that,
    # when given, replaces order_by/descending.
    conditions: tuple[filters.Condition, ...] = ()
    sort: tuple[filters.SortKey, ...] = ()


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@read_only
def search_models(actor: Actor, query: ModelQuery, max_results: int | None = None, page_token: str | None = None):
    limit = pagination.page_size(max_results)
    names.filter_text(query.name_prefix, "name_prefix")
    names.filter_text(query.name_contains, "name_contains")
    fp = pagination.fingerprint({"kind": "models", **query.__dict__})
    # First, before any SQL: the conditions' caps refuse a search that would tie up the database.
    clauses = filters.model_clauses(query.conditions + filters.tag_equals(query.tags))
    stmt = (select(RegisteredModel).where(readable(actor, RegisteredModel.id), *clauses)
            .options(selectinload(RegisteredModel.tags)))
    if query.name_prefix:
        stmt = stmt.where(RegisteredModel.name.like(_escape_like(query.name_prefix) + "%", escape="\\"))
    if query.name_contains:
        stmt = stmt.where(RegisteredModel.name.like("%" + _escape_like(query.name_contains) + "%", escape="\\"))
    # The native API orders by one column (then id); the MLflow dialect by several keys.
    sort = query.sort or (filters.SortKey(query.order_by, query.descending),)
    rows, token = filters.sorted_page(stmt, sort, filters.MODEL_SORT, RegisteredModel.id, limit=limit,
                                      page_token=page_token, fingerprint=fp, session=session())
    return pagination.Page([model_record(m) for m in rows], token)


_UNSET = object()


@use_case
def update_model(
    actor: Actor,
    name: str,
    *,
    description: object = _UNSET,
    new_name: str | None = None,
    expected_revision: int | None = None,
    force: bool = False,
) -> ModelRecord:
    """Change the description and/or rename, in one transaction. Rename keeps versions, aliases, history.

    Serving looks a model up by name: renaming one that serves a protected stage or alias would bypass their
    review (and free the name for anyone), so it is refused unless an admin ``force``s it (audited)."""
    model = lock_model(names.model_name(name))
    authorize(actor, model, Permission.MANAGE if new_name is not None else Permission.EDIT,
              "Renaming" if new_name is not None else "Editing the description")
    check_force(force, actor.is_admin, "a rename")
    _check_revision(model, expected_revision)
    when = now()
    s = session()
    if description is not _UNSET:
        text = names.bounded_text(description, "description", names.MAX_DESCRIPTION) or ""
        if text != model.description:
            record(s, actor, Action.MODEL_UPDATED, model_id=model.id, model_name=model.name,
                   details={"description": {"from": model.description, "to": text}}, now=when)
            model.description = text
            touch(model, when)
    if new_name is not None:
        new_name = names.model_name(new_name, "new_name")
        if new_name != model.name:
            review = serving_review(model.id, None)
            refusal = rename_refusal(review, model.name)
            if refusal and not force:
                raise ApprovalRequired(refusal, {"model": model.name, **refusal_details(review)})
            _rename(actor, model, new_name, when, forced_details(review) if refusal else {})
    s.flush()
    return model_record(model)


def _rename(actor: Actor, model: RegisteredModel, new_name: str, when, details: dict) -> None:
    s = session()
    if s.scalar(select(exists().where(RegisteredModel.name == new_name))):
        raise _already_exists(new_name)
    old_name = model.name
    model.name = new_name
    touch(model, when)
    try:
        s.flush()
    except IntegrityError:
        # A concurrent create/rename took the name between our check and our write.
        raise _already_exists(new_name) from None
    # Every version's name changed with it: MLflow counts that as an update of each version.
    s.execute(update(ModelVersion).where(ModelVersion.model_id == model.id)
              .values(updated_at=when, revision=ModelVersion.revision + 1)
              .execution_options(synchronize_session="fetch"))
    record(s, actor, Action.MODEL_RENAMED, model_id=model.id, model_name=new_name,
           details={"from": old_name, "to": new_name, **details}, now=when)


@use_case
def delete_model(actor: Actor, name: str, *, force: bool = False) -> None:
    """Delete a model with its versions, tags and aliases. Its audit events stay, and record each version.

    Refused while it serves a protected stage or alias (deleting it would bypass their review) unless an
    admin ``force``s it, which the audit event records."""
    model = lock_model(names.model_name(name))
    authorize(actor, model, Permission.MANAGE, "Deleting")
    check_force(force, actor.is_admin, "a deletion")
    review = serving_review(model.id, None)
    refusal = deletion_refusal(review, f"registered model {model.name}")
    if refusal and not force:
        raise ApprovalRequired(refusal, {"model": model.name, **refusal_details(review)})
    s = session()
    when = now()
    versions = s.scalars(
        select(ModelVersion).where(ModelVersion.model_id == model.id).order_by(ModelVersion.version)
    ).all()
    for v in versions:
        record(s, actor, Action.VERSION_DELETED, model_id=model.id, model_name=model.name, version=v.version,
               run_id=v.run_id, from_stage=v.stage,
               details={"reason": "model deleted", "aliases": [a.alias for a in v.aliases]}, now=when)
    record(s, actor, Action.MODEL_DELETED, model_id=model.id, model_name=model.name,
           details={"versions": [v.version for v in versions], **(forced_details(review) if refusal else {})},
           now=when)
    s.delete(model)
    s.flush()


@use_case
def set_model_tag(actor: Actor, name: str, key: str, value: str | None) -> ModelRecord:
    """An upsert. Setting a tag to the value it has changes nothing and records nothing (MLflow 3.18's client
    sends a tag set again when its answer was lost), so it answers the same, with no new revision."""
    model = lock_model(names.model_name(name))
    authorize(actor, model, Permission.EDIT, "Setting a tag")
    key, value = names.tag_key(key), names.tag_value(value)
    when = now()
    s = session()
    existing = model.tags.get(key)
    if existing is not None and existing.value == value:
        return model_record(model)
    previous = existing.value if existing else None
    if existing is None:
        model.tags[key] = RegisteredModelTag(model_id=model.id, key=key, value=value)
    else:
        existing.value = value
    revise(model)
    record(s, actor, Action.MODEL_TAG_SET, model_id=model.id, model_name=model.name,
           details={"key": key, "value": value, "previous": previous}, now=when)
    s.flush()
    return model_record(model)


@use_case
def delete_model_tag(actor: Actor, name: str, key: str) -> None:
    """Idempotent, as in MLflow: deleting an absent key on an existing model succeeds and records nothing."""
    model = lock_model(names.model_name(name))
    authorize(actor, model, Permission.EDIT, "Deleting a tag")
    key = names.tag_key(key)
    existing = model.tags.pop(key, None)
    if existing is None:
        return
    when = now()
    revise(model)
    record(session(), actor, Action.MODEL_TAG_DELETED, model_id=model.id, model_name=model.name,
           details={"key": key, "previous": existing.value}, now=when)
    session().flush()


@dataclass(frozen=True)
class ModelSummary:
    """A model with what MLflow shows alongside it: the highest version in each stage, and its aliases."""

    model: ModelRecord
    latest_versions: tuple[VersionRecord, ...]  # stage order: None, Staging, Production, Archived
    aliases: dict[str, int]  # alias -> version number


@read_only
def get_model_summary(actor: Actor, name: str) -> ModelSummary:
    model = find_model(names.model_name(name))
    authorize(actor, model, Permission.READ, "Reading")
    return _summaries([model])[0]


@read_only
def search_model_summaries(actor: Actor, query: ModelQuery, max_results: int | None = None,
                           page_token: str | None = None) -> pagination.Page[ModelSummary]:
    """``search_models`` with each model's summary, read in the same transaction."""
    page = search_models.__wrapped__(actor, query, max_results, page_token)
    ids = [m.id for m in page.items]
    rows = {m.id: m for m in session().scalars(
        select(RegisteredModel).where(RegisteredModel.id.in_(ids)).options(selectinload(RegisteredModel.tags)))}
    return pagination.Page(_summaries([rows[i] for i in ids]), page.next_page_token)


def _summaries(models: list[RegisteredModel]) -> list[ModelSummary]:
    """Two queries for any number of models: the latest version per (model, stage), and all aliases."""
    ids = [m.id for m in models]
    if not ids:
        return []
    s = session()
    latest = highest_per_stage(ids, [stage.value for stage in ALL_STAGES])
    stage_order = {stage.value: i for i, stage in enumerate(ALL_STAGES)}
    by_model: dict[int, list[ModelVersion]] = {}
    for mv in sorted(latest, key=lambda v: stage_order[v.stage]):
        by_model.setdefault(mv.model_id, []).append(mv)
    aliases: dict[int, dict[str, int]] = {}
    for model_id, alias, version in s.execute(
        select(ModelAlias.model_id, ModelAlias.alias, ModelVersion.version)
        .join(ModelVersion, ModelVersion.id == ModelAlias.version_id)
        .where(ModelAlias.model_id.in_(ids))
        .order_by(ModelAlias.alias)
    ):
        aliases.setdefault(model_id, {})[alias] = version
    return [
        ModelSummary(model_record(m), tuple(version_record(v) for v in by_model.get(m.id, [])), aliases.get(m.id, {}))
        for m in models
    ]
