"""The per-object writes of one model's import: what the source says about the model, its versions, their
stages, the aliases and the open transition requests, each recorded as the action it is, with the source's
``imported`` details. The order of the writes and the decision to make them are ``imports.py``'s.

The writes are gathered, not sent one by one: new versions stay in the session until ``imports.py`` flushes
them (with their stages already placed, so each is one row of one INSERT), and the tags of what this import
created go in one statement per table after that (``new_tags``).
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select

from ..audit import Action, record
from ..auth import Actor
from ..db.unit_of_work import now, session
from ..lifecycle import AliasAction, RequestStatus, Stage, direct_alias_refusal, direct_transition_refusal, forced_details
from ..orm import ModelAlias, ModelVersion, ModelVersionTag, RegisteredModel, RegisteredModelTag, TransitionRequest
from .aliases import apply_alias_change
from .import_snapshots import ModelSnapshot, RequestSnapshot, VersionSnapshot, millis
from .policies import PolicyBook
from .transitions import place_stages


class ModelImportWriter:
    """The writes of one model's import, object by object (the model, its tags, versions, stages, aliases and
    open requests), each recorded; ``changes`` counts the events."""

    def __init__(self, actor: Actor, origin: str, model: RegisteredModel):
        self.actor, self.origin, self.model = actor, origin, model
        self.session = session()
        self.when = now()
        self.changes = 0
        self.book: PolicyBook | None = None
        # Tags of the rows this import creates: leaf rows with no rule of their own, inserted in one statement
        # per table once their parents are (``new_tags``), not one ORM object each.
        self._model_tags: list[dict[str, Any]] = []
        self._version_tags: list[tuple[ModelVersion, dict[str, str]]] = []

    def imported(self, obj: ModelSnapshot | VersionSnapshot) -> dict[str, Any]:
        details: dict[str, Any] = {"from": self.origin, "created_at": millis(obj.created_at),
                                   "updated_at": millis(obj.updated_at)}
        if obj.created_by:
            details["created_by"] = obj.created_by
        return {"imported": details}

    def record(self, action: Action, **fields: Any) -> None:
        self.changes += 1
        record(self.session, self.actor, action, model_id=self.model.id, model_name=self.model.name,
               now=self.when, **fields)

    def policies(self) -> PolicyBook:
        if self.book is None:
            with self.session.no_autoflush:  # new versions are written once, with their stages (``stages``)
                self.book = PolicyBook([self.model.id])
        return self.book

    # --- the model itself

    def model_fields(self, snapshot: ModelSnapshot, created: bool) -> None:
        m = self.model
        if created:
            self._model_tags = [{"model_id": m.id, "key": k, "value": v} for k, v in snapshot.tags.items()]
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

    def source_times(self, snapshot: ModelSnapshot, local: dict[int, ModelVersion]) -> None:
        """The source's timestamps, not the moment of the import (which the audit events record), and the
        counter after the highest number the source has."""
        m = self.model
        m.last_version = max([m.last_version, *(v.version for v in snapshot.versions)])
        m.created_at, m.updated_at = snapshot.created_at, snapshot.updated_at
        for v in snapshot.versions:
            local[v.version].created_at, local[v.version].updated_at = v.created_at, v.updated_at

    def new_tags(self) -> None:
        """Insert the tags of the model and the versions created above; after the flush that inserted them."""
        rows = [{"version_id": mv.id, "key": k, "value": v} for mv, tags in self._version_tags for k, v in tags.items()]
        for table, values in ((RegisteredModelTag.__table__, self._model_tags), (ModelVersionTag.__table__, rows)):
            if values:
                self.session.execute(insert(table), values)
        self._model_tags, self._version_tags = [], []

    # --- versions

    def new_versions(self, wanted: list[VersionSnapshot]) -> dict[int, ModelVersion]:
        """The versions the model does not have yet, in stage None (``stages`` then moves them): added to the
        session, written by the next flush, so that a new version is inserted once with its final stage instead
        of inserted and updated; their tags follow (``new_tags``)."""
        rows = {}
        for v in wanted:
            mv = ModelVersion(model=self.model, version=v.version, source=v.source, run_id=v.run_id,
                              run_link=v.run_link, description=v.description, status=v.status,
                              stage=Stage.NONE.value, created_by=v.created_by, created_at=v.created_at,
                              updated_at=v.updated_at, revision=1)
            self.session.add(mv)
            self._version_tags.append((mv, v.tags))
            self.record(Action.VERSION_CREATED, version=v.version, run_id=v.run_id, to_stage=Stage.NONE.value,
                        details={"source": v.source, "run_link": v.run_link, "tags": v.tags, **self.imported(v)})
            rows[v.version] = mv
        return rows

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

    def stages(self, local: dict[int, ModelVersion], wanted: dict[int, VersionSnapshot]) -> None:
        """Every version in its source stage, in version order, by the one mechanism of several moves
        (``place_stages``); ``local``: all of the model's versions."""
        moves = []
        for number, v in sorted(wanted.items()):
            mv = local[number]
            current, target = Stage(mv.stage), Stage(v.stage)
            if current is target:
                continue
            review = self.policies().transition_review(self.model.id, current, target, False)
            details = self.imported(v)
            if direct_transition_refusal(review, current, target):
                details.update(forced_details(review))
            moves.append((mv, target, details))
        if moves:
            place_stages(self.actor, self.model, moves, versions=list(local.values()), when=self.when,
                         session=self.session)
            self.changes += len(moves)

    def alias(self, alias: str, target: ModelVersion | None, existing: ModelAlias | None) -> None:
        review = self.policies().alias_review(self.model.id, alias)
        details = {"imported": {"from": self.origin}}
        if direct_alias_refusal(review, alias, AliasAction.SET if target is not None else AliasAction.DELETE):
            details.update(forced_details(review))
        if apply_alias_change(self.actor, self.model, alias, target, when=self.when, session=self.session,
                              details=details, existing=existing):
            self.changes += 1

    def open_requests(self, wanted: tuple[RequestSnapshot, ...], local: dict[int, ModelVersion]) -> None:
        """The source's open requests that are not here yet, as pending requests by their requesters. (One
        closed at the source since an earlier run stays pending here: the source no longer says how it ended.)"""
        if not wanted:
            return
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
                                 "imported": {"from": self.origin, "created_at": millis(r.created_at),
                                              "created_by": r.requested_by}})
