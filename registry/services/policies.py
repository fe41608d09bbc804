"""Approval policies per model and target stage, with a registry-wide default."""
from __future__ import annotations

from sqlalchemy import select

from .. import names
from ..audit import Action, record, record_registry
from ..auth import Actor
from ..lifecycle import ALL_STAGES, ApprovalPolicy, Permission, check_policy_values, parse_stage
from ..orm import ApprovalPolicy as PolicyRow
from ..db.loading import find_model, lock_model
from .access import authorize, require_admin
from ..db.records import PolicyRecord
from ..db.unit_of_work import now, read_only, session, use_case


def effective_policy(model_id: int, stage) -> ApprovalPolicy:
    """The model's own policy for the stage, else the registry-wide one, else "no approvals needed"."""
    stage = parse_stage(stage)
    rows = session().scalars(
        select(PolicyRow).where(PolicyRow.stage == stage.value,
                                (PolicyRow.model_id == model_id) | PolicyRow.model_id.is_(None))
    ).all()
    own = next((r for r in rows if r.model_id is not None), None)
    chosen = own or next(iter(rows), None)
    if chosen is None:
        return ApprovalPolicy(stage)
    return ApprovalPolicy(stage, chosen.required_approvals, chosen.creator_may_not_approve,
                          "model" if own else "registry")


def _record(policy: ApprovalPolicy) -> PolicyRecord:
    return PolicyRecord(policy.stage.value, policy.required_approvals, policy.creator_may_not_approve, policy.scope)


@read_only
def get_model_policies(actor: Actor, model_name: str) -> list[PolicyRecord]:
    model = find_model(names.model_name(model_name))
    authorize(actor, model, Permission.READ, "Reading approval policies")
    return [_record(effective_policy(model.id, stage)) for stage in ALL_STAGES]


def _upsert(model_id: int | None, stage, required: int, creator_may_not_approve: bool, actor: Actor, when) -> dict:
    s = session()
    scope = PolicyRow.model_id.is_(None) if model_id is None else PolicyRow.model_id == model_id
    row = s.scalars(select(PolicyRow).where(scope, PolicyRow.stage == stage.value)).one_or_none()
    before = None if row is None else {"required_approvals": row.required_approvals,
                                       "creator_may_not_approve": row.creator_may_not_approve}
    if row is None:
        row = PolicyRow(model_id=model_id, stage=stage.value)
        s.add(row)
    row.required_approvals = required
    row.creator_may_not_approve = creator_may_not_approve
    row.updated_by = actor.name
    row.updated_at = when
    s.flush()
    return {"stage": stage.value, "before": before,
            "after": {"required_approvals": required, "creator_may_not_approve": creator_may_not_approve}}


@use_case
def set_model_policy(actor: Actor, model_name: str, stage: str, *, required_approvals: int,
                     creator_may_not_approve: bool = False) -> PolicyRecord:
    target = parse_stage(stage)
    check_policy_values(required_approvals, creator_may_not_approve)
    model = lock_model(names.model_name(model_name))
    authorize(actor, model, Permission.MANAGE, "Changing approval policies")
    when = now()
    change = _upsert(model.id, target, required_approvals, creator_may_not_approve, actor, when)
    record(session(), actor, Action.POLICY_CHANGED, model_id=model.id, model_name=model.name, to_stage=target.value,
           details=change, now=when)
    return _record(effective_policy(model.id, target))


@read_only
def get_registry_policies(actor: Actor) -> list[PolicyRecord]:
    rows = {r.stage: r for r in session().scalars(select(PolicyRow).where(PolicyRow.model_id.is_(None)))}
    result = []
    for stage in ALL_STAGES:
        row = rows.get(stage.value)
        result.append(PolicyRecord(stage.value, row.required_approvals, row.creator_may_not_approve, "registry")
                      if row else PolicyRecord(stage.value, 0, False, "default"))
    return result


@use_case
def set_registry_policy(actor: Actor, stage: str, *, required_approvals: int,
                        creator_may_not_approve: bool = False) -> PolicyRecord:
    require_admin(actor, "Changing registry-wide approval policies")
    target = parse_stage(stage)
    check_policy_values(required_approvals, creator_may_not_approve)
    when = now()
    change = _upsert(None, target, required_approvals, creator_may_not_approve, actor, when)
    record_registry(session(), actor, Action.POLICY_CHANGED, details=change, now=when)
    return PolicyRecord(target.value, required_approvals, creator_may_not_approve, "registry")
