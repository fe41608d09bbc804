"""Importing a registered model from another registry (MLflow, Databricks, a registry export): one model,
one transaction, through the same rules and the same audit trail as every other write.

**What an import may do.** It is an admin-only operation (``require_admin``): it writes what the source
says, which no ordinary user could (original version numbers, creators and timestamps). What it sets is
recorded with the usual actions (``model.created``, ``version.created``, ``version.transitioned``,
``alias.set``, ...), so the serving history, the timeline and ``audit verify`` treat imported objects like any
others; each event's details carry ``imported``: the source (``from``) and the object's original timestamps
and creator. Stages and aliases are placed with the mechanisms every path uses (``place_stages``, the
several-moves form of ``apply_transition``; ``apply_alias_change``); where a policy here would have required
a review, the event records the change as forced by an admin (``forced_details``), exactly as an admin's
``force`` would. Sources pass the same checks as ``create_version`` (``sources.check_source``: local paths
only if the operator allows them).

**Cost.** An import of 10,000 models is mostly round trips, so a model's are few and do not grow with its
versions: a new model is 11 statements and the commit (tests/services/test_imports.py counts them). Its
versions are inserted once, in their final stages and with the source's timestamps (one multi-row INSERT, then
their tags in one), not inserted and then updated per transition; the events are still one per object, hashed
into the chain one by one, and written at commit in one statement (``db/unit_of_work.py``). A model that is
here as the source has it costs a lock, its versions (with tags and aliases) and its tags, and writes nothing.

**Idempotent.** The model is compared with the source first; nothing differs, nothing is written or
recorded ("unchanged"). A model first imported from the same source is brought up to date (new versions,
changed fields, versions deleted at the source). A model of that name that came from elsewhere, or whose
versions are other versions (a number with another source or run), is a conflict: skipped, unless
``overwrite``, which deletes it here (audited, forced) and imports the source's.

**Numbers.** Versions keep their numbers, gaps included; ``last_version`` becomes the highest imported
number, so the next version created here follows it (a number deleted at the source above the highest
surviving one cannot be seen through MLflow's API, and may be handed out again here).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from sqlalchemy import select
from sqlalchemy.orm import lazyload
from sqlalchemy.dialects.postgresql import insert

from .. import audit
from ..auth import Actor
from ..errors import NotFound, RegistryError
from ..orm import AuditEvent, ModelVersion, RegisteredModel
from ..db.loading import lock_model
from ..db.unit_of_work import session, use_case
from .access import require_admin
from .import_snapshots import ModelSnapshot, checked_snapshot
from .import_writes import ModelImportWriter
from .models import delete_model
from .versions import delete_version

IMPORTED, UPDATED, UNCHANGED, SKIPPED, FAILED = "imported", "updated", "unchanged", "skipped", "failed"


@dataclass(frozen=True, slots=True)
class ImportOutcome:
    name: str
    status: str  # one of IMPORTED, UPDATED, UNCHANGED, SKIPPED, FAILED
    reason: str = ""
    changes: int = 0  # audit events the import recorded (or, in a dry run, would have)
    model_id: int | None = None


def origin_of(model_id: int) -> str | None:
    """Where a model was imported from: the ``imported.from`` of the first event of its chain (None: made here)."""
    return session().scalar(
        select(AuditEvent.details["imported"]["from"].astext)
        .where(AuditEvent.chain_id == model_id, AuditEvent.seq == 1))


def _conflict(snapshot: ModelSnapshot, local: dict[int, ModelVersion], same_origin: Callable[[], bool]) -> str | None:
    """Why the model here is not the source's model (None: it is, in an older or the same state)."""
    wanted = {v.version: v for v in snapshot.versions}
    for number in sorted(wanted.keys() & local.keys()):
        mine, theirs = local[number], wanted[number]
        if (mine.source, mine.run_id) != (theirs.source, theirs.run_id):
            return f"version {number} here has another source or run"
    if wanted.keys() != local.keys() and not same_origin():
        extra, missing = sorted(local.keys() - wanted.keys()), sorted(wanted.keys() - local.keys())
        return (f"a registered model {snapshot.name} with other versions exists here (only here: {extra or 'none'}; "
                f"only at the source: {missing or 'none'})")
    return None


@use_case
def import_model(actor: Actor, snapshot: ModelSnapshot, *, origin: str, overwrite: bool = False,
                 dry_run: bool = False) -> ImportOutcome:
    """Bring one model here as ``snapshot`` describes it (see the module doc); ``origin`` names the source
    (its URL) in the audit details. ``dry_run``: do everything, report it, and roll it back."""
    require_admin(actor, "Importing a registered model")
    try:
        snapshot = checked_snapshot(snapshot)
    except RegistryError as error:
        return ImportOutcome(snapshot.name, FAILED, error.message)
    s = session()
    try:
        model = lock_model(snapshot.name)
    except NotFound:
        model = None
    status = UPDATED
    wanted = {v.version: v for v in snapshot.versions}
    if model is not None:
        local = _versions_of(model)
        conflict = _conflict(snapshot, local, lambda: origin_of(model.id) == origin)
        if conflict is not None:
            if not overwrite:
                return ImportOutcome(snapshot.name, SKIPPED, conflict, model_id=model.id)
            delete_model.__wrapped__(actor, snapshot.name, force=True)
            s.flush()
            model = None
    if model is None:
        status, local = IMPORTED, {}
        model = _create_model(actor, snapshot)
        if model is None:  # created by someone else since we looked
            return ImportOutcome(snapshot.name, SKIPPED, "a model of that name was created here meanwhile")
    # The aliases as they are here, read with the versions (a new model has none).
    have = {a.alias: a for mv in local.values() for a in mv.aliases}
    work = ModelImportWriter(actor, origin, model)
    work.model_fields(snapshot, created=status == IMPORTED)
    # Versions deleted at the source (only a model of the same origin gets here with some): as a delete here.
    for number in sorted(local.keys() - wanted.keys()):
        for alias in [a for a, row in have.items() if row.version_id == local[number].id]:
            del have[alias]  # the deletion drops (and audits) its aliases
        delete_version.__wrapped__(actor, model.name, number, force=True)
        work.changes += 1
        del local[number]
    for number, v in sorted(wanted.items()):
        if number in local:
            work.version_fields(local[number], v)
    local.update(work.new_versions([v for n, v in sorted(wanted.items()) if n not in local]))
    work.stages(local, wanted)
    if work.changes:
        # New versions are written here, once, with their stages and the source's timestamps; then their tags.
        work.source_times(snapshot, local)
        s.flush()
        work.new_tags()
    by_id = {mv.id: mv.version for mv in local.values()}
    for alias in sorted(have.keys() - snapshot.aliases.keys()):
        work.alias(alias, None, have[alias])
    for alias, number in sorted(snapshot.aliases.items()):
        row = have.get(alias)
        if row is None or by_id.get(row.version_id) != number:
            work.alias(alias, local[number], row)
    work.open_requests(snapshot.requests, local)
    if work.changes == 0:
        return ImportOutcome(snapshot.name, UNCHANGED, model_id=model.id)
    work.source_times(snapshot, local)  # again, should a later step have moved one (an unchanged value writes nothing)
    s.flush()
    outcome = ImportOutcome(snapshot.name, status, changes=work.changes, model_id=model.id)
    if dry_run:
        s.rollback()
    return outcome


def _versions_of(model: RegisteredModel) -> dict[int, ModelVersion]:
    """All of the model's versions with their tags and aliases (their model is the locked row already)."""
    rows = session().scalars(select(ModelVersion).where(ModelVersion.model_id == model.id)
                             .options(lazyload(ModelVersion.model)))
    return {mv.version: mv for mv in rows}


def _create_model(actor: Actor, snapshot: ModelSnapshot) -> RegisteredModel | None:
    """The model's row, inserted (and so locked until commit), or None if a model of that name exists."""
    s = session()
    model = s.scalars(
        insert(RegisteredModel)
        .values(name=snapshot.name, description=snapshot.description,
                created_by=snapshot.created_by or actor.name, created_at=snapshot.created_at,
                updated_at=snapshot.updated_at)
        .on_conflict_do_nothing(index_elements=["name"])
        .returning(RegisteredModel)
    ).one_or_none()
    if model is not None:
        audit.known_head(s, model.id, 0, None)  # a new chain
    return model
