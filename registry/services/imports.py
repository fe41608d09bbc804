"""Importing a registered model from another registry (MLflow, Databricks, a registry export): one model,
one transaction, through the same rules and the same audit trail as every other write.

**What an import may do.** It is an admin-only operation (``require_admin``): it writes what the source
says, which no ordinary user could (original version numbers, creators and timestamps). What it sets is
recorded with the usual actions (``model.created``, ``version.created``, ``version.transitioned``,
``alias.set``, ...), so the serving history, the timeline and ``audit verify`` treat imported objects like any
others; each event's details carry ``imported``: the source (``from``) and the object's original timestamps
and creator. Stages and aliases are placed with the one mechanism every path uses (``apply_transition``,
``apply_alias_change``); where a policy here would have required a review, the event records the change as
forced by an admin (``forced_details``), exactly as an admin's ``force`` would. Sources pass the same checks
as ``create_version`` (``sources.check_source``: local paths only if the operator allows them).

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

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from .. import names, sources
from ..audit import Action, record
from ..auth import Actor, validate_user_name
from ..errors import InvalidArgument, RegistryError
from ..extensions import settings
from ..lifecycle import AliasAction, RequestStatus, Stage, direct_alias_refusal, direct_transition_refusal, forced_details, parse_stage
from ..orm import (AuditEvent, ModelAlias, ModelVersion, ModelVersionTag, RegisteredModel, RegisteredModelTag,
                   TransitionRequest)
from ..db.loading import lock_model_by_id
from ..db.unit_of_work import now, session, use_case
from .access import require_admin
from .aliases import apply_alias_change
from .models import delete_model
from .policies import PolicyBook
from .transitions import apply_transition
from .versions import delete_version

STATUSES = frozenset({"READY", "PENDING_REGISTRATION", "FAILED_REGISTRATION"})


@dataclass(frozen=True, slots=True)
class VersionSnapshot:
    """A model version as the source has it."""

    version: int
    source: str
    created_at: datetime
    updated_at: datetime
    run_id: str | None = None
    run_link: str | None = None
    description: str = ""
    status: str = "READY"
    stage: str = "None"
    created_by: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    # An MLflow 3 logged model's id: checked against a ``models:/<id>`` source, as create_version does.
    logged_model_id: str | None = None


@dataclass(frozen=True, slots=True)
class RequestSnapshot:
    """An open transition request as a Databricks workspace lists it."""

    version: int
    to_stage: str
    requested_by: str
    created_at: datetime
    comment: str = ""


@dataclass(frozen=True, slots=True)
class ModelSnapshot:
    """A registered model as the source has it, with all its (surviving) versions and its aliases."""

    name: str
    created_at: datetime
    updated_at: datetime
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    versions: tuple[VersionSnapshot, ...] = ()
    aliases: dict[str, int] = field(default_factory=dict)
    created_by: str | None = None
    requests: tuple[RequestSnapshot, ...] = ()  # open ones (Databricks); MLflow OSS has none


IMPORTED, UPDATED, UNCHANGED, SKIPPED, FAILED = "imported", "updated", "unchanged", "skipped", "failed"


@dataclass(frozen=True, slots=True)
class ImportOutcome:
    name: str
    status: str  # one of IMPORTED, UPDATED, UNCHANGED, SKIPPED, FAILED
    reason: str = ""
    changes: int = 0  # audit events the import recorded (or, in a dry run, would have)
    model_id: int | None = None


def _millis(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def _checked(snapshot: ModelSnapshot) -> ModelSnapshot:
    """The snapshot as this registry would accept it from a client; InvalidArgument names what is wrong."""
    name = names.model_name(snapshot.name)
    allow_local = settings().allow_local_sources
    versions = []
    seen: set[int] = set()
    for v in sorted(snapshot.versions, key=lambda v: v.version):
        where = f"version {v.version}: "
        try:
            number = names.version_number(v.version)
            if number < 1 or number in seen:
                raise InvalidArgument(f"version number {v.version} is not a new positive number")
            seen.add(number)
            tags = names.tags(v.tags)
            source = names.bounded_text(v.source, "source", names.MAX_SOURCE, required=True)
            run_id = names.bounded_text(v.run_id, "run_id", names.MAX_RUN_ID) or None
            sources.check_source(source, run_id=run_id, model_id=v.logged_model_id, tags=tags,
                                 allow_local=allow_local)
            if v.status not in STATUSES:
                raise InvalidArgument(f"unknown status {v.status!r}")
            versions.append(VersionSnapshot(
                version=number, source=source, created_at=v.created_at, updated_at=v.updated_at, run_id=run_id,
                run_link=names.bounded_text(v.run_link, "run_link", names.MAX_RUN_LINK) or None,
                description=names.bounded_text(v.description, "description", names.MAX_DESCRIPTION) or "",
                status=v.status, stage=parse_stage(v.stage).value, created_by=v.created_by or "", tags=tags,
            ))
        except RegistryError as error:
            raise InvalidArgument(where + error.message) from None
    numbers = {v.version for v in versions}
    aliases = {}
    for alias, number in sorted(snapshot.aliases.items()):
        alias = names.alias_name(alias, for_write=True)
        if number not in numbers:
            raise InvalidArgument(f"alias {alias} points at version {number}, which the source does not have")
        aliases[alias] = number
    requests = []
    for r in snapshot.requests:
        if r.version not in numbers:
            raise InvalidArgument(f"a transition request names version {r.version}, which the source does not have")
        requests.append(RequestSnapshot(
            version=r.version, to_stage=parse_stage(r.to_stage).value,
            requested_by=validate_user_name(r.requested_by, "requested_by"), created_at=r.created_at,
            comment=names.bounded_text(r.comment, "comment", names.MAX_DESCRIPTION) or ""))
    return ModelSnapshot(
        name=name, created_at=snapshot.created_at, updated_at=snapshot.updated_at,
        description=names.bounded_text(snapshot.description, "description", names.MAX_DESCRIPTION) or "",
        tags=names.tags(snapshot.tags), versions=tuple(versions), aliases=aliases, created_by=snapshot.created_by,
        requests=tuple(requests),
    )


def origin_of(model_id: int) -> str | None:
    """Where a model was imported from: the ``imported.from`` of the first event of its chain (None: made here)."""
    return session().scalar(
        select(AuditEvent.details["imported"]["from"].astext)
        .where(AuditEvent.chain_id == model_id, AuditEvent.seq == 1))


def _conflict(snapshot: ModelSnapshot, local: dict[int, ModelVersion], same_origin: bool) -> str | None:
    """Why the model here is not the source's model (None: it is, in an older or the same state)."""
    wanted = {v.version: v for v in snapshot.versions}
    for number in sorted(wanted.keys() & local.keys()):
        mine, theirs = local[number], wanted[number]
        if (mine.source, mine.run_id) != (theirs.source, theirs.run_id):
            return f"version {number} here has another source or run"
    if not same_origin and wanted.keys() != local.keys():
        extra, missing = sorted(local.keys() - wanted.keys()), sorted(wanted.keys() - local.keys())
        return (f"a registered model {snapshot.name} with other versions exists here (only here: {extra or 'none'}; "
                f"only at the source: {missing or 'none'})")
    return None


class _Import:
    """The writes of one model's import, each recorded; ``changes`` counts the events."""

    def __init__(self, actor: Actor, origin: str, model: RegisteredModel):
        self.actor, self.origin, self.model = actor, origin, model
        self.session = session()
        self.when = now()
        self.changes = 0
        self.book: PolicyBook | None = None

    def imported(self, obj: ModelSnapshot | VersionSnapshot) -> dict[str, Any]:
        details: dict[str, Any] = {"from": self.origin, "created_at": _millis(obj.created_at),
                                   "updated_at": _millis(obj.updated_at)}
        if obj.created_by:
            details["created_by"] = obj.created_by
        return {"imported": details}

    def record(self, action: Action, **fields: Any) -> None:
        self.changes += 1
        record(self.session, self.actor, action, model_id=self.model.id, model_name=self.model.name,
               now=self.when, **fields)

    def policies(self) -> PolicyBook:
        if self.book is None:
            self.book = PolicyBook([self.model.id])
        return self.book

    # --- the model itself

    def model_fields(self, snapshot: ModelSnapshot, created: bool) -> None:
        m = self.model
        if created:
            for key, value in snapshot.tags.items():
                self.session.add(RegisteredModelTag(model_id=m.id, key=key, value=value))
            self.record(Action.MODEL_CREATED, details={"description": snapshot.description, "tags": snapshot.tags,
                                                       **self.imported(snapshot)})
            return
        if m.description != snapshot.description:
            self.record(Action.MODEL_UPDATED, details={"description": {"from": m.description,
                                                                       "to": snapshot.description},
                                                       **self.imported(snapshot)})
            m.description = snapshot.description
        self._tags(m.tags, snapshot.tags, lambda k, v: RegisteredModelTag(model_id=m.id, key=k, value=v),
                   Action.MODEL_TAG_SET, Action.MODEL_TAG_DELETED, self.imported(snapshot), {})

    def _tags(self, have: dict, want: dict[str, str], make, set_action: Action, deleted_action: Action,
              imported: dict, about: dict) -> None:
        for key in sorted(have.keys() - want.keys()):
            previous = have.pop(key).value
            self.record(deleted_action, **about, details={"key": key, "previous": previous, **imported})
        for key, value in sorted(want.items()):
            existing = have.get(key)
            if existing is not None and existing.value == value:
                continue
            previous = existing.value if existing is not None else None
            if existing is None:
                have[key] = make(key, value)
            else:
                existing.value = value
            self.record(set_action, **about, details={"key": key, "value": value, "previous": previous, **imported})

    # --- versions

    def new_versions(self, wanted: list[VersionSnapshot]) -> dict[int, ModelVersion]:
        if not wanted:
            return {}
        rows = [ModelVersion(model_id=self.model.id, version=v.version, source=v.source, run_id=v.run_id,
                             run_link=v.run_link, description=v.description, status=v.status, stage="None",
                             created_by=v.created_by, created_at=v.created_at, updated_at=v.updated_at)
                for v in wanted]
        self.session.add_all(rows)
        self.session.flush()
        self.session.add_all([ModelVersionTag(version_id=row.id, key=k, value=val)
                              for row, v in zip(rows, wanted) for k, val in v.tags.items()])
        for row, v in zip(rows, wanted):
            self.record(Action.VERSION_CREATED, version=v.version, run_id=v.run_id, to_stage="None",
                        details={"source": v.source, "run_link": v.run_link, "tags": v.tags, **self.imported(v)})
        return {row.version: row for row in rows}

    def version_fields(self, mv: ModelVersion, v: VersionSnapshot) -> None:
        about = {"version": mv.version, "run_id": mv.run_id}
        imported = self.imported(v)
        if mv.description != v.description:
            self.record(Action.VERSION_UPDATED, **about,
                        details={"description": {"from": mv.description, "to": v.description}, **imported})
            mv.description = v.description
        if mv.status != v.status:
            self.record(Action.VERSION_UPDATED, **about, details={"status": {"from": mv.status, "to": v.status},
                                                                  **imported})
            mv.status = v.status
        if mv.run_link != v.run_link:
            self.record(Action.VERSION_UPDATED, **about,
                        details={"run_link": {"from": mv.run_link, "to": v.run_link}, **imported})
            mv.run_link = v.run_link
        self._tags(mv.tags, v.tags, lambda k, val: ModelVersionTag(version_id=mv.id, key=k, value=val),
                   Action.VERSION_TAG_SET, Action.VERSION_TAG_DELETED, imported, about)

    def stage(self, mv: ModelVersion, v: VersionSnapshot) -> None:
        current, target = Stage(mv.stage), Stage(v.stage)
        if current is target:
            return
        review = self.policies().transition_review(self.model.id, current, target, False)
        details = self.imported(v)
        if direct_transition_refusal(review, current, target):
            details.update(forced_details(review))
        apply_transition(self.actor, self.model, mv, target, archive_existing_versions=False, when=self.when,
                         session=self.session, details=details)
        self.changes += 1

    def alias(self, alias: str, target: ModelVersion | None, snapshot: ModelSnapshot) -> None:
        review = self.policies().alias_review(self.model.id, alias)
        details = {"imported": {"from": self.origin}}
        if direct_alias_refusal(review, alias, AliasAction.SET if target is not None else AliasAction.DELETE):
            details.update(forced_details(review))
        if apply_alias_change(self.actor, self.model, alias, target, when=self.when, session=self.session,
                              details=details):
            self.changes += 1

    def open_requests(self, wanted: tuple[RequestSnapshot, ...], local: dict[int, ModelVersion]) -> None:
        """The source's open requests that are not here yet, as pending requests by their requesters. (One
        closed at the source since an earlier run stays pending here: the source no longer says how it ended.)"""
        have = set(self.session.execute(
            select(TransitionRequest.version, TransitionRequest.to_stage, TransitionRequest.requested_by,
                   TransitionRequest.created_at)
            .where(TransitionRequest.model_id == self.model.id, TransitionRequest.alias.is_(None))).all())
        for r in wanted:
            if (r.version, r.to_stage, r.requested_by, r.created_at) in have:
                continue
            mv = local[r.version]
            request = TransitionRequest(
                model_id=self.model.id, version_id=mv.id, version=mv.version, from_stage=mv.stage,
                to_stage=r.to_stage, comment=r.comment, requested_by=r.requested_by,
                status=RequestStatus.PENDING.value, created_at=r.created_at, updated_at=r.created_at)
            self.session.add(request)
            self.session.flush()
            self.record(Action.REQUEST_CREATED, version=mv.version, run_id=mv.run_id, from_stage=mv.stage,
                        to_stage=r.to_stage, request_id=request.id,
                        details={"comment": r.comment, "archive_existing_versions": False,
                                 "imported": {"from": self.origin, "created_at": _millis(r.created_at),
                                              "created_by": r.requested_by}})


@use_case
def import_model(actor: Actor, snapshot: ModelSnapshot, *, origin: str, overwrite: bool = False,
                 dry_run: bool = False) -> ImportOutcome:
    """Bring one model here as ``snapshot`` describes it (see the module doc); ``origin`` names the source
    (its URL) in the audit details. ``dry_run``: do everything, report it, and roll it back."""
    require_admin(actor, "Importing a registered model")
    try:
        snapshot = _checked(snapshot)
    except RegistryError as error:
        return ImportOutcome(snapshot.name, FAILED, error.message)
    s = session()
    model_id = s.scalar(select(RegisteredModel.id).where(RegisteredModel.name == snapshot.name))
    model = lock_model_by_id(model_id) if model_id is not None else None
    status = UPDATED
    if model is not None:
        local = {mv.version: mv for mv in s.scalars(select(ModelVersion).where(ModelVersion.model_id == model.id))}
        conflict = _conflict(snapshot, local, origin_of(model.id) == origin)
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
    work = _Import(actor, origin, model)
    work.model_fields(snapshot, created=status == IMPORTED)
    wanted = {v.version: v for v in snapshot.versions}
    # Versions deleted at the source (only a model of the same origin gets here with some): as a delete here.
    for number in sorted(local.keys() - wanted.keys()):
        delete_version.__wrapped__(actor, model.name, number, force=True)
        work.changes += 1
        del local[number]
    local.update(work.new_versions([v for n, v in sorted(wanted.items()) if n not in local]))
    for number, v in sorted(wanted.items()):
        work.version_fields(local[number], v)
    for number, v in sorted(wanted.items()):
        work.stage(local[number], v)
    have = dict(s.execute(select(ModelAlias.alias, ModelVersion.version)
                          .join(ModelVersion, ModelVersion.id == ModelAlias.version_id)
                          .where(ModelAlias.model_id == model.id)).all())
    for alias in sorted(have.keys() - snapshot.aliases.keys()):
        work.alias(alias, None, snapshot)
    for alias, number in sorted(snapshot.aliases.items()):
        if have.get(alias) != number:
            work.alias(alias, local[number], snapshot)
    work.open_requests(snapshot.requests, local)
    if work.changes == 0:
        return ImportOutcome(snapshot.name, UNCHANGED, model_id=model.id)
    # The source's timestamps, not the moment of the import (which the audit events record).
    model.last_version = max([model.last_version, *wanted])
    model.created_at, model.updated_at = snapshot.created_at, snapshot.updated_at
    for number, v in wanted.items():
        local[number].created_at, local[number].updated_at = v.created_at, v.updated_at
    s.flush()
    outcome = ImportOutcome(snapshot.name, status, changes=work.changes, model_id=model.id)
    if dry_run:
        s.rollback()
    return outcome


def _create_model(actor: Actor, snapshot: ModelSnapshot) -> RegisteredModel | None:
    s = session()
    model_id = s.execute(
        insert(RegisteredModel)
        .values(name=snapshot.name, description=snapshot.description,
                created_by=snapshot.created_by or actor.name, created_at=snapshot.created_at,
                updated_at=snapshot.updated_at)
        .on_conflict_do_nothing(index_elements=["name"])
        .returning(RegisteredModel.id)
    ).scalar_one_or_none()
    return lock_model_by_id(model_id) if model_id is not None else None


def from_millis(value: object) -> datetime:
    """An epoch-milliseconds timestamp (as MLflow sends it, a string or a number) as an aware datetime."""
    return datetime.fromtimestamp(int(value or 0) / 1000, tz=timezone.utc)
