"""Model versions: create (atomic numbering), read, search, update, delete, tags."""
from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cache

from sqlalchemy import func, select, text

from .. import audit, names, pagination, sources
from ..audit import Action, record
from ..auth import Actor
from ..errors import ApprovalRequired, PreconditionFailed, RegistryError
from ..lifecycle import Permission, check_force, deletion_refusal, forced_details, parse_stage, refusal_details
from ..orm import ModelAlias, ModelVersion, ModelVersionTag, RegisteredModel
from ..db.history import serving_details
from ..db.loading import find_version, find_version_by_name, lock_model, model_not_found, revise, touch
from .access import authorize, readable
from .policies import serving_review
from .transitions import supersede_alias_requests, supersede_moot_requests
from ..db.records import VersionRecord, version_record, version_record_from_row
from ..db import filters
from ..db.queueing import Batcher
from ..db.unit_of_work import now, read_only, session, use_case
from ..extensions import settings
from . import idempotency as idempotent
from . import lineage


# The hottest write. A batch of new versions of one model in one statement: take the model row lock and the
# next numbers (the UPDATE), insert the versions and their tags, and return the audit chain head read under
# that lock. Numbers come from ``last_version`` under the row lock: concurrent creators are serialised,
# numbers have no duplicates, no gaps from races and need no retry loop, and a deleted number is never
# handed out again.
_ALLOCATE_AND_INSERT = text("""
WITH allocated AS (
    UPDATE registered_models
    SET last_version = last_version + :n, revision = revision + :n, updated_at = :when
    WHERE name = :name
    RETURNING id, last_version - :n AS before, audit_seq, audit_hash
), created AS (
    INSERT INTO model_versions (model_id, version, source, storage_location, run_id, run_link, description,
                                status, stage, created_by, revision, created_at, updated_at)
    SELECT a.id, a.before + v.ord, v.source, v.storage_location, v.run_id, v.run_link, v.description, 'READY',
           'None', v.actor, 1, :when, :when
    FROM allocated a,
         unnest(CAST(:sources AS text[]), CAST(:storage_locations AS text[]), CAST(:run_ids AS text[]),
                CAST(:run_links AS text[]), CAST(:descriptions AS text[]), CAST(:actors AS text[]))
         WITH ORDINALITY AS v(source, storage_location, run_id, run_link, description, actor, ord)
    RETURNING id, version
), tagged AS (
    INSERT INTO model_version_tags (version_id, key, value)
    SELECT c.id, t.key, t.value
    FROM unnest(CAST(:tag_items AS integer[]), CAST(:tag_keys AS text[]), CAST(:tag_values AS text[]))
         AS t(item, key, value)
    JOIN allocated a ON true
    JOIN created c ON c.version = a.before + t.item
)
SELECT c.id AS version_id, c.version, a.id AS model_id, a.audit_seq, a.audit_hash
FROM created c, allocated a ORDER BY c.version
""")


@dataclass(frozen=True, slots=True)
class _NewVersion:
    actor: Actor
    source: str
    run_id: str | None
    run_link: str | None
    description: str
    tags: dict[str, str]
    storage_location: str | None = None
    # A source naming another version, resolved in the write's transaction (services/lineage.py), with the
    # run and logged model as sent (None: not sent).
    reference: sources.VersionReference | None = None
    run_id_sent: str | None = None
    model_id: str | None = None


def create_version(
    actor: Actor,
    model_name: str,
    source: str,
    *,
    run_id: str | None = None,
    run_link: str | None = None,
    description: str | None = None,
    tags: dict[str, str] | None = None,
    model_id: str | None = None,
    idempotency: idempotent.Key | None = None,
) -> VersionRecord:
    """Register a new version numbered last_version + 1.

    The source must pass MLflow's rules (``registry/sources.py``); one naming another registered version is
    recorded as MLflow records it (``services/lineage.py``). ``run_id``: None when not sent; ``model_id``: an
    MLflow logged model's id, checked against a ``models:/<model_id>`` source, not stored.

    Creates of one model that arrive while another is being written are written together in the next
    transaction (``queueing.Batcher``): the same numbers, versions and audit events as one by one, for one
    row lock and one commit. Each create is still all or nothing: a refused one takes no number."""
    source = names.bounded_text(source, "source", names.MAX_SOURCE, required=True)
    run_id = names.bounded_text(run_id, "run_id", names.MAX_RUN_ID)
    model_id = names.bounded_text(model_id, "model_id", names.MAX_RUN_ID) or None
    tags = names.tags(tags)
    reference = sources.check_source(source, run_id=run_id, model_id=model_id, tags=tags,
                                     allow_local=settings().allow_local_sources)
    item = _NewVersion(
        actor=actor,
        source=source,
        run_id=run_id or None,
        run_link=names.bounded_text(run_link, "run_link", names.MAX_RUN_LINK) or None,
        description=names.bounded_text(description, "description", names.MAX_DESCRIPTION) or "",
        tags=tags,
        reference=reference,
        run_id_sent=run_id,
        model_id=model_id,
    )
    if idempotency is not None:
        return _create_version_once(names.model_name(model_name), item, idempotency)
    return _CREATES.submit(names.model_name(model_name), item, scope=session().get_bind())


@use_case
def _create_version_once(model_name: str, item: _NewVersion, key: idempotent.Key) -> VersionRecord:
    """A create sent with an Idempotency-Key: the key is claimed in the create's own transaction, so it is
    written alone, outside the batches (``services/idempotency.py``)."""
    earlier = idempotent.claim(item.actor, key)
    if earlier is not None:
        mv = idempotent.earlier_version(earlier)
        authorize(item.actor, mv.model, Permission.READ, "Reading")
        return version_record(mv)
    outcome = _create_versions.__wrapped__(model_name, [item])[0]
    if isinstance(outcome, Exception):
        raise outcome  # the claim is rolled back with it: the key stays free
    idempotent.settle(item.actor, key, outcome.model_id, outcome.version)
    return outcome


def _resolved(item: _NewVersion) -> _NewVersion:
    if item.reference is None:
        return item
    found = lineage.resolve(item.actor, item.source, item.reference, run_id=item.run_id_sent,
                            model_id=item.model_id)
    return replace(item, source=found.source, storage_location=found.storage_location, run_id=found.run_id,
                   reference=None)


@use_case
def _create_versions(model_name: str, items: list[_NewVersion]) -> list[VersionRecord | Exception]:
    s = session()
    outcomes: list[VersionRecord | Exception | None] = [None] * len(items)
    if not all(item.actor.is_admin for item in items):
        # Permissions are checked under the row lock, before numbers are taken: a refused create takes none.
        model = lock_model(model_name)
        for i, item in enumerate(items):
            try:
                authorize(item.actor, model, Permission.EDIT, "Creating a version")
            except RegistryError as error:
                outcomes[i] = error
    items = list(items)
    for i, item in enumerate(items):
        if outcomes[i] is None:
            try:
                items[i] = _resolved(item)
            except RegistryError as error:
                outcomes[i] = error
    accepted = [i for i, outcome in enumerate(outcomes) if outcome is None]
    if not accepted:
        return outcomes
    batch = [items[i] for i in accepted]
    when = now()
    tag_items = [n for n, item in enumerate(batch, start=1) for _ in item.tags]
    rows = s.execute(_ALLOCATE_AND_INSERT, {
        "name": model_name, "when": when, "n": len(batch),
        "sources": [item.source for item in batch],
        "storage_locations": [item.storage_location for item in batch], "run_ids": [item.run_id for item in batch],
        "run_links": [item.run_link for item in batch], "descriptions": [item.description for item in batch],
        "actors": [item.actor.name for item in batch],
        "tag_items": tag_items, "tag_keys": [k for item in batch for k in item.tags],
        "tag_values": [v for item in batch for v in item.tags.values()],
    }).all()
    if not rows:
        raise model_not_found(model_name)
    audit.known_head(s, rows[0].model_id, rows[0].audit_seq, rows[0].audit_hash)
    for i, item, row in zip(accepted, batch, rows, strict=True):
        record(s, item.actor, Action.VERSION_CREATED, model_id=row.model_id, model_name=model_name,
               version=row.version, run_id=item.run_id, to_stage="None",
               details={"source": item.source, "run_link": item.run_link, "tags": item.tags,
                        **({"storage_location": item.storage_location} if item.storage_location else {})},
               now=when)
        outcomes[i] = VersionRecord(
            id=row.version_id, model_id=row.model_id, model_name=model_name, version=row.version, source=item.source,
            storage_location=item.storage_location, run_id=item.run_id, run_link=item.run_link, description=item.description, status="READY",
            stage="None", created_by=item.actor.name, tags=dict(sorted(item.tags.items())), aliases=(),
            revision=1, created_at=when, updated_at=when,
        )
    return outcomes


_CREATES = Batcher(_create_versions)


@read_only
def get_version(actor: Actor, model_name: str, version: int | str) -> VersionRecord:
    mv = find_version_by_name(names.model_name(model_name), names.version_number(version))
    authorize(actor, mv.model, Permission.READ, "Reading")
    return version_record(mv)


@dataclass(frozen=True)
class VersionQuery:
    model_name: str | None = None
    run_id: str | None = None
    stage: str | None = None
    tags: tuple[tuple[str, str], ...] = ()
    # Dialect searches (MLflow's filter grammar): AND-ed conditions, and an ordering over several keys that,
    # when given, replaces the default newest-first order.
    conditions: tuple[filters.Condition, ...] = ()
    sort: tuple[filters.SortKey, ...] = ()


@cache
def _version_rows():
    """SELECT of everything a VersionRecord holds, one row per version (``records.version_record_from_row``):
    the model's name by join, tags and aliases by correlated subqueries, so a page is one round trip.
    Built once: a Select is immutable (``.where`` returns a new one), and building it is a measurable share
    of a search request."""
    tags = (
        select(func.json_object_agg(ModelVersionTag.key, ModelVersionTag.value))
        .where(ModelVersionTag.version_id == ModelVersion.id)
        .scalar_subquery()
    )
    aliases = func.array(
        select(ModelAlias.alias).where(ModelAlias.version_id == ModelVersion.id).order_by(ModelAlias.alias)
        .scalar_subquery()
    )
    return select(
        ModelVersion.id, ModelVersion.model_id, RegisteredModel.name.label("model_name"), ModelVersion.version, ModelVersion.source,
        ModelVersion.storage_location, ModelVersion.run_id, ModelVersion.run_link, ModelVersion.description, ModelVersion.status,
        ModelVersion.stage, ModelVersion.created_by, tags.label("tags"), aliases.label("aliases"),
        ModelVersion.revision, ModelVersion.created_at, ModelVersion.updated_at,
    ).join_from(ModelVersion, RegisteredModel, ModelVersion.model_id == RegisteredModel.id)


@read_only
def search_versions(actor: Actor, query: VersionQuery, max_results: int | None = None, page_token: str | None = None,
                    *, max_page_size: int = pagination.MAX_PAGE_SIZE):
    """Newest first. Version ids grow with version numbers within a model (both are assigned under the
    model lock), so ordering by id is "highest version first" per model and creation order across models.

    ``max_page_size``: MLflow clients ask for up to 200,000 versions a page (10,000 by default)."""
    limit = pagination.page_size(max_results, maximum=max_page_size)
    names.filter_text(query.run_id, "run_id")
    stage = parse_stage(query.stage).value if query.stage else None
    # One model's versions page by version number (its unique index, read backwards); across models by id.
    per_model = query.model_name is not None and not query.sort
    fp = pagination.fingerprint({"kind": "versions", **query.__dict__, "stage": stage,
                                 "key": "version" if per_model else "id"})
    # First, before any SQL: the conditions' caps refuse a search that would tie up the database.
    clauses = filters.version_clauses(query.conditions + filters.tag_equals(query.tags))
    stmt = _version_rows().where(readable(actor, ModelVersion.model_id), *clauses)
    if query.model_name is not None:
        # By id (an InitPlan), not by the joined name: the planner then reads one model's rows by index.
        stmt = stmt.where(ModelVersion.model_id == select(RegisteredModel.id).where(
            RegisteredModel.name == names.model_name(query.model_name)).scalar_subquery())
    if query.run_id is not None:
        stmt = stmt.where(ModelVersion.run_id == query.run_id)
    if stage is not None:
        stmt = stmt.where(ModelVersion.stage == stage)
    if query.sort:
        rows, token = filters.sorted_page(stmt, query.sort, filters.VERSION_SORT, ModelVersion.id, limit=limit,
                                          page_token=page_token, fingerprint=fp, session=session(),
                                          core_rows=True)
        return pagination.Page([version_record_from_row(v) for v in rows], token)
    key = ModelVersion.version if per_model else ModelVersion.id
    after = pagination.decode_id(page_token, fp)
    if after is not None:
        stmt = stmt.where(key < after)
    rows = session().execute(stmt.order_by(key.desc()).limit(limit + 1)).all()
    items = [version_record_from_row(v) for v in rows[:limit]]
    token = pagination.encode([getattr(rows[limit - 1], key.key)], fp) if len(rows) > limit else None
    return pagination.Page(items, token)


@use_case
def update_version(
    actor: Actor, model_name: str, version: int | str, *, description: str | None,
    expected_revision: int | None = None,
) -> VersionRecord:
    model = lock_model(names.model_name(model_name))
    authorize(actor, model, Permission.EDIT, "Editing a version")
    mv = find_version(model, names.version_number(version))
    if expected_revision is not None and mv.revision != expected_revision:
        raise PreconditionFailed(
            f"Model version {model.name}/{mv.version} is at revision {mv.revision}, not {expected_revision}.",
            {"model": model.name, "version": mv.version, "revision": mv.revision},
        )
    text = names.bounded_text(description, "description", names.MAX_DESCRIPTION) or ""
    if text != mv.description:
        when = now()
        record(session(), actor, Action.VERSION_UPDATED, model_id=model.id, model_name=model.name,
               version=mv.version, run_id=mv.run_id,
               details={"description": {"from": mv.description, "to": text}}, now=when)
        mv.description = text
        touch(mv, when)
        session().flush()
    return version_record(mv)


@use_case
def delete_version(actor: Actor, model_name: str, version: int | str, *, force: bool = False) -> None:
    """Delete a version and the aliases that point at it (each alias removal is audited); its pending
    requests, and those to change the aliases it loses, are superseded.

    A version in a protected stage or behind a protected alias is what serving returns: deleting it would
    bypass their review, so it is refused (move it out through reviewed requests first) unless an admin
    ``force``s it, which the audit event records."""
    model = lock_model(names.model_name(model_name))
    authorize(actor, model, Permission.MANAGE, "Deleting a version")
    mv = find_version(model, names.version_number(version))
    check_force(force, actor.is_admin, "a deletion")
    review = serving_review(model.id, [mv])
    refusal = deletion_refusal(review, f"version {mv.version} of registered model {model.name}")
    if refusal and not force:
        raise ApprovalRequired(refusal, {"model": model.name, "version": mv.version, **refusal_details(review)})
    s = session()
    when = now()
    supersede_moot_requests(actor, model, [mv], when=when, session=s, reason="version deleted",
                            version_deleted=True)
    for alias in s.scalars(select(ModelAlias).where(ModelAlias.version_id == mv.id)).all():
        record(s, actor, Action.ALIAS_DELETED, model_id=model.id, model_name=model.name, version=mv.version,
               run_id=mv.run_id, details={"alias": alias.alias, "reason": "version deleted"}, now=when)
        s.delete(alias)
        supersede_alias_requests(actor, model, alias.alias, when=when, session=s,
                                 reason=f"alias {alias.alias} removed with version {mv.version}")
    number, run_id, stage, source = mv.version, mv.run_id, mv.stage, mv.source
    touch(model, when)  # MLflow counts a deleted version as an update of its model
    s.delete(mv)
    s.flush()
    # What every stage serves without it, for the serving history (as transitions record it).
    details = {"source": source, **(forced_details(review) if refusal else {}), **serving_details(model.id)}
    record(s, actor, Action.VERSION_DELETED, model_id=model.id, model_name=model.name, version=number,
           run_id=run_id, from_stage=stage, details=details, now=when)


@use_case
def set_version_tag(actor: Actor, model_name: str, version: int | str, key: str, value: str | None) -> VersionRecord:
    """An upsert; setting a tag to the value it has changes and records nothing (see ``set_model_tag``)."""
    model = lock_model(names.model_name(model_name))
    authorize(actor, model, Permission.EDIT, "Setting a tag")
    mv = find_version(model, names.version_number(version))
    key, value = names.tag_key(key), names.tag_value(value)
    existing = mv.tags.get(key)
    if existing is not None and existing.value == value:
        return version_record(mv)
    previous = existing.value if existing else None
    if existing is None:
        mv.tags[key] = ModelVersionTag(version_id=mv.id, key=key, value=value)
    else:
        existing.value = value
    when = now()
    revise(mv)
    record(session(), actor, Action.VERSION_TAG_SET, model_id=model.id, model_name=model.name,
           version=mv.version, run_id=mv.run_id, details={"key": key, "value": value, "previous": previous},
           now=when)
    session().flush()
    return version_record(mv)


@use_case
def delete_version_tag(actor: Actor, model_name: str, version: int | str, key: str) -> None:
    """Idempotent, as in MLflow: an absent key on an existing version succeeds and records nothing."""
    model = lock_model(names.model_name(model_name))
    authorize(actor, model, Permission.EDIT, "Deleting a tag")
    mv = find_version(model, names.version_number(version))
    key = names.tag_key(key)
    existing = mv.tags.pop(key, None)
    if existing is None:
        return
    when = now()
    revise(mv)
    record(session(), actor, Action.VERSION_TAG_DELETED, model_id=model.id, model_name=model.name,
           version=mv.version, run_id=mv.run_id, details={"key": key, "previous": existing.value}, now=when)
    session().flush()
