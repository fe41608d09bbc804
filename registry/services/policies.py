"""Approval policies per model, with a registry-wide default: one per stage (governing every change of what
the stage holds) and one per protected alias (governing setting, moving and deleting it). Also the reviews
that changes need (``transition_review``, ``alias_review``, ``serving_review``): the rules combining them
are in ``lifecycle``."""
from __future__ import annotations

from sqlalchemy import select

from .. import names
from ..audit import Action, record, record_registry
from ..auth import Actor
from ..lifecycle import (
    ALL_STAGES,
    ApprovalPolicy,
    Permission,
    RequiredReview,
    Stage,
    check_policy_values,
    combine,
    parse_stage,
    stages_changed,
)
from ..orm import ApprovalPolicy as PolicyRow, ModelAlias, ModelVersion
from ..db.loading import find_model, lock_model
from .access import authorize, require_admin
from ..db.records import PolicyRecord
from ..db.unit_of_work import now, read_only, session, use_case


def _scope(model_id: int | None):
    return PolicyRow.model_id.is_(None) if model_id is None else PolicyRow.model_id == model_id


class PolicyBook:
    """The policy rows that apply to some models (theirs and the registry-wide ones), read in one query, and
    the policies and reviews they give. Every policy answer comes from here: one model's, or a page of
    requests' worth at once (the inbox)."""

    def __init__(self, model_ids):
        ids = list(set(model_ids))
        self._rows: dict[tuple[int | None, str | None, str | None], PolicyRow] = {
            (row.model_id, row.stage, row.alias): row
            for row in session().scalars(select(PolicyRow).where(
                PolicyRow.model_id.in_(ids) | PolicyRow.model_id.is_(None)))}

    def _chosen(self, model_id: int, stage: str | None, alias: str | None) -> tuple[PolicyRow | None, str]:
        """The model's own row if any, else the registry-wide one, else none ("default")."""
        own = self._rows.get((model_id, stage, alias))
        if own is not None:
            return own, "model"
        shared = self._rows.get((None, stage, alias))
        return shared, "registry" if shared is not None else "default"

    def stage(self, model_id: int, stage) -> ApprovalPolicy:
        """The model's own policy for the stage, else the registry-wide one, else "no approvals needed"."""
        stage = parse_stage(stage)
        chosen, scope = self._chosen(model_id, stage.value, None)
        if chosen is None:
            return ApprovalPolicy(stage)
        return ApprovalPolicy(stage, chosen.required_approvals, chosen.creator_may_not_approve, scope)

    def alias(self, model_id: int, alias: str) -> ApprovalPolicy:
        """The model's own policy for the alias, else the registry-wide one, else "unprotected"."""
        chosen, scope = self._chosen(model_id, None, alias)
        if chosen is None:
            return ApprovalPolicy(None, alias=alias)
        return ApprovalPolicy(None, chosen.required_approvals, chosen.creator_may_not_approve, scope, alias=alias)

    def transition_review(self, model_id: int, current: Stage, target: Stage,
                          archive_existing_versions: bool) -> RequiredReview:
        """What moving a version from ``current`` to ``target`` needs: every stage it changes has a say."""
        return combine(self.stage(model_id, s) for s in stages_changed(current, target, archive_existing_versions))

    def alias_review(self, model_id: int, alias: str) -> RequiredReview:
        return combine([self.alias(model_id, alias)])


def effective_policy(model_id: int, stage) -> ApprovalPolicy:
    return PolicyBook([model_id]).stage(model_id, stage)


def alias_policy(model_id: int, alias: str) -> ApprovalPolicy:
    return PolicyBook([model_id]).alias(model_id, alias)


def transition_review(model_id: int, current: Stage, target: Stage, archive_existing_versions: bool) -> RequiredReview:
    return PolicyBook([model_id]).transition_review(model_id, current, target, archive_existing_versions)


def alias_review(model_id: int, alias: str) -> RequiredReview:
    return PolicyBook([model_id]).alias_review(model_id, alias)


def serving_review(model_id: int, versions: list[ModelVersion] | None) -> RequiredReview:
    """What taking ``versions`` (None: all the model's) out of serving altogether needs (deleting them, or
    renaming their model): the policy of every stage they are in and of every alias pointing at them."""
    s = session()
    if versions is None:
        held = s.scalars(select(ModelVersion.stage).where(ModelVersion.model_id == model_id).distinct()).all()
        alias_scope = ModelAlias.model_id == model_id
    else:
        held = [v.stage for v in versions]
        alias_scope = ModelAlias.version_id.in_([v.id for v in versions])
    stages = [stage for stage in ALL_STAGES if stage.value in set(held)]
    aliases = s.scalars(select(ModelAlias.alias).where(alias_scope).order_by(ModelAlias.alias)).all()
    book = PolicyBook([model_id])
    return combine([*(book.stage(model_id, st) for st in stages), *(book.alias(model_id, a) for a in aliases)])


def _record(policy: ApprovalPolicy) -> PolicyRecord:
    return PolicyRecord(policy.stage.value if policy.stage is not None else None, policy.required_approvals,
                        policy.creator_may_not_approve, policy.scope, policy.alias)


def _policy_aliases(model_id: int | None) -> list[str]:
    """Aliases with a policy row that applies here: the model's own and the registry-wide ones."""
    scope = _scope(None) if model_id is None else (_scope(model_id) | _scope(None))
    return list(session().scalars(
        select(PolicyRow.alias).where(scope, PolicyRow.alias.is_not(None)).distinct().order_by(PolicyRow.alias)))


@read_only
def get_model_policies(actor: Actor, model_name: str) -> list[PolicyRecord]:
    """Every stage's effective policy, in stage order, then every alias policy that applies, by alias."""
    model = find_model(names.model_name(model_name))
    authorize(actor, model, Permission.READ, "Reading approval policies")
    book = PolicyBook([model.id])
    return ([_record(book.stage(model.id, stage)) for stage in ALL_STAGES]
            + [_record(book.alias(model.id, alias)) for alias in _policy_aliases(model.id)])


@read_only
def get_model_alias_policy(actor: Actor, model_name: str, alias: str) -> PolicyRecord:
    alias = names.alias_name(alias, for_write=True)
    model = find_model(names.model_name(model_name))
    authorize(actor, model, Permission.READ, "Reading approval policies")
    return _record(alias_policy(model.id, alias))


def _upsert(model_id: int | None, actor: Actor, when, required: int, creator_may_not_approve: bool, *,
            stage: Stage | None = None, alias: str | None = None) -> dict:
    s = session()
    target = PolicyRow.stage == stage.value if stage is not None else PolicyRow.alias == alias
    row = s.scalars(select(PolicyRow).where(_scope(model_id), target)).one_or_none()
    before = None if row is None else {"required_approvals": row.required_approvals,
                                       "creator_may_not_approve": row.creator_may_not_approve}
    if row is None:
        row = PolicyRow(model_id=model_id, stage=stage.value if stage is not None else None, alias=alias)
        s.add(row)
    row.required_approvals = required
    row.creator_may_not_approve = creator_may_not_approve
    row.updated_by = actor.name
    row.updated_at = when
    s.flush()
    subject = {"stage": stage.value} if stage is not None else {"alias": alias}
    return {**subject, "before": before,
            "after": {"required_approvals": required, "creator_may_not_approve": creator_may_not_approve}}


def _set_model(actor: Actor, model_name: str, required: int, creator_may_not_approve: bool, *,
               stage: Stage | None = None, alias: str | None = None) -> ApprovalPolicy:
    check_policy_values(required, creator_may_not_approve)
    model = lock_model(names.model_name(model_name))
    authorize(actor, model, Permission.MANAGE, "Changing approval policies")
    when = now()
    change = _upsert(model.id, actor, when, required, creator_may_not_approve, stage=stage, alias=alias)
    record(session(), actor, Action.POLICY_CHANGED, model_id=model.id, model_name=model.name,
           to_stage=stage.value if stage is not None else None, details=change, now=when)
    return effective_policy(model.id, stage) if stage is not None else alias_policy(model.id, alias)


@use_case
def set_model_policy(actor: Actor, model_name: str, stage: str, *, required_approvals: int,
                     creator_may_not_approve: bool = False) -> PolicyRecord:
    return _record(_set_model(actor, model_name, required_approvals, creator_may_not_approve,
                              stage=parse_stage(stage)))


@use_case
def set_model_alias_policy(actor: Actor, model_name: str, alias: str, *, required_approvals: int,
                           creator_may_not_approve: bool = False) -> PolicyRecord:
    """Protect (or, with 0 approvals, unprotect) an alias of one model. ``latest`` and ``v<N>`` are not
    aliases anyone sets, so they cannot be protected."""
    alias = names.alias_name(alias, for_write=True)
    return _record(_set_model(actor, model_name, required_approvals, creator_may_not_approve, alias=alias))


def _registry_rows() -> tuple[dict[str, PolicyRow], dict[str, PolicyRow]]:
    rows = session().scalars(select(PolicyRow).where(_scope(None))).all()
    return ({r.stage: r for r in rows if r.stage is not None}, {r.alias: r for r in rows if r.alias is not None})


def _registry_record(row: PolicyRow | None, *, stage: str | None = None, alias: str | None = None) -> PolicyRecord:
    if row is None:
        return PolicyRecord(stage, 0, False, "default", alias)
    return PolicyRecord(stage, row.required_approvals, row.creator_may_not_approve, "registry", alias)


@read_only
def get_registry_policies(actor: Actor) -> list[PolicyRecord]:
    """Every stage's registry-wide policy, in stage order, then the registry-wide alias policies, by alias."""
    stages, aliases = _registry_rows()
    return ([_registry_record(stages.get(s.value), stage=s.value) for s in ALL_STAGES]
            + [_registry_record(aliases[a], alias=a) for a in sorted(aliases)])


@read_only
def get_registry_alias_policy(actor: Actor, alias: str) -> PolicyRecord:
    alias = names.alias_name(alias, for_write=True)
    return _registry_record(_registry_rows()[1].get(alias), alias=alias)


def _set_registry(actor: Actor, required: int, creator_may_not_approve: bool, *, stage: Stage | None = None,
                  alias: str | None = None) -> PolicyRecord:
    require_admin(actor, "Changing registry-wide approval policies")
    check_policy_values(required, creator_may_not_approve)
    when = now()
    change = _upsert(None, actor, when, required, creator_may_not_approve, stage=stage, alias=alias)
    record_registry(session(), actor, Action.POLICY_CHANGED, details=change, now=when)
    return PolicyRecord(stage.value if stage is not None else None, required, creator_may_not_approve, "registry",
                        alias)


@use_case
def set_registry_policy(actor: Actor, stage: str, *, required_approvals: int,
                        creator_may_not_approve: bool = False) -> PolicyRecord:
    require_admin(actor, "Changing registry-wide approval policies")
    return _set_registry(actor, required_approvals, creator_may_not_approve, stage=parse_stage(stage))


@use_case
def set_registry_alias_policy(actor: Actor, alias: str, *, required_approvals: int,
                              creator_may_not_approve: bool = False) -> PolicyRecord:
    require_admin(actor, "Changing registry-wide approval policies")
    return _set_registry(actor, required_approvals, creator_may_not_approve,
                         alias=names.alias_name(alias, for_write=True))
