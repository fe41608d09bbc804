"""Approval policies: defaults, model vs registry-wide scope, refusing direct transitions, admin force."""
from __future__ import annotations

import pytest

from registry.auth import Actor
from registry.errors import ApprovalRequired, InvalidArgument, PermissionDenied
from registry.services.models import create_model
from registry.services.policies import get_model_policies, get_registry_policies, set_model_policy, set_registry_policy
from registry.services.stages import transition_stage
from registry.services.versions import create_version, get_version

from .support import ROOT, events_after, last_event_id, person, summary


@pytest.fixture
def model(ctx):
    create_model(ROOT, "churn")
    create_version(ROOT, "churn", "s3://bucket/1", run_id="run-1")
    return "churn"


@pytest.fixture
def deployer(model):
    return person("deployer", "MANAGE_PRODUCTION")


def policies(actor: Actor = ROOT) -> dict[str, tuple]:
    return {p.stage: (p.required_approvals, p.creator_may_not_approve, p.scope)
            for p in get_model_policies(actor, "churn")}


def test_default_policy_requires_no_approvals_for_any_stage(model):
    assert policies() == {stage: (0, False, "default") for stage in ("None", "Staging", "Production", "Archived")}


@pytest.mark.parametrize("level, stage", [("MANAGE_STAGING", "Staging"), ("MANAGE_PRODUCTION", "Production")])
def test_default_policy_lets_stage_permission_holders_transition_directly(model, level, stage):
    moved = transition_stage(person("holder", level), "churn", 1, stage)

    assert moved.stage == stage


def test_model_policy_is_reported_with_its_scope(model):
    record = set_model_policy(ROOT, "churn", "production", required_approvals=2, creator_may_not_approve=True)

    assert (record.stage, record.required_approvals, record.creator_may_not_approve, record.scope) == (
        "Production", 2, True, "model")
    assert policies()["Production"] == (2, True, "model")


def test_setting_a_policy_is_audited_with_before_and_after(model):
    set_model_policy(ROOT, "churn", "Production", required_approvals=1)
    marker = last_event_id()

    set_model_policy(ROOT, "churn", "Production", required_approvals=3)

    new = events_after(marker)
    assert [summary(e) for e in new] == [("root", "policy.changed", "churn", None, None, None, "Production")]
    assert new[0].details == {
        "stage": "Production",
        "before": {"required_approvals": 1, "creator_may_not_approve": False},
        "after": {"required_approvals": 3, "creator_may_not_approve": False},
    }


def test_required_approvals_refuse_a_direct_transition(model, deployer):
    set_model_policy(ROOT, "churn", "Production", required_approvals=1)

    with pytest.raises(ApprovalRequired) as raised:
        transition_stage(deployer, "churn", 1, "Production")

    assert raised.value.code == "APPROVAL_REQUIRED"
    assert get_version(ROOT, "churn", 1).stage == "None"


def test_approval_required_error_names_the_policy_and_the_stage(model, deployer):
    set_model_policy(ROOT, "churn", "Production", required_approvals=2)

    with pytest.raises(ApprovalRequired) as raised:
        transition_stage(deployer, "churn", 1, "Production")

    assert "this model's approval policy for Production requires 2 approval(s)" in raised.value.message
    assert raised.value.details == {
        "model": "churn", "stage": "Production", "from_stage": "None", "required_approvals": 2, "policy": "model",
        "policies": [{"stage": "Production", "required_approvals": 2, "creator_may_not_approve": False,
                      "scope": "model"}]}


def test_a_policy_on_one_stage_does_not_block_another(model, deployer):
    set_model_policy(ROOT, "churn", "Production", required_approvals=2)

    assert transition_stage(deployer, "churn", 1, "Staging").stage == "Staging"


def test_registry_wide_policy_applies_to_models_without_their_own(model, deployer):
    set_registry_policy(ROOT, "Production", required_approvals=1)

    with pytest.raises(ApprovalRequired) as raised:
        transition_stage(deployer, "churn", 1, "Production")
    assert "the registry-wide approval policy for Production" in raised.value.message
    assert policies()["Production"] == (1, False, "registry")


def test_model_policy_overrides_a_stricter_registry_wide_one(model, deployer):
    set_registry_policy(ROOT, "Production", required_approvals=2)
    set_model_policy(ROOT, "churn", "Production", required_approvals=0)

    assert transition_stage(deployer, "churn", 1, "Production").stage == "Production"


def test_model_policy_overrides_a_laxer_registry_wide_one(model, deployer):
    set_registry_policy(ROOT, "Production", required_approvals=0)
    set_model_policy(ROOT, "churn", "Production", required_approvals=1)

    with pytest.raises(ApprovalRequired):
        transition_stage(deployer, "churn", 1, "Production")


def test_registry_policies_list_every_stage(ctx):
    set_registry_policy(ROOT, "Staging", required_approvals=1, creator_may_not_approve=True)

    found = {p.stage: (p.required_approvals, p.creator_may_not_approve, p.scope) for p in get_registry_policies(ROOT)}

    assert found == {"None": (0, False, "default"), "Staging": (1, True, "registry"),
                     "Production": (0, False, "default"), "Archived": (0, False, "default")}


def test_admin_without_force_is_refused_too(model):
    set_model_policy(ROOT, "churn", "Production", required_approvals=1)

    with pytest.raises(ApprovalRequired):
        transition_stage(ROOT, "churn", 1, "Production")


def test_admin_force_applies_the_transition_past_the_policy(model):
    set_model_policy(ROOT, "churn", "Production", required_approvals=1)

    assert transition_stage(ROOT, "churn", 1, "Production", force=True).stage == "Production"
    assert get_version(ROOT, "churn", 1).stage == "Production"


def test_forced_transition_is_audited_as_forced(model):
    set_model_policy(ROOT, "churn", "Production", required_approvals=1)
    marker = last_event_id()

    transition_stage(ROOT, "churn", 1, "Production", force=True)

    new = events_after(marker)
    assert [summary(e) for e in new] == [("root", "version.transitioned", "churn", 1, "run-1", "None", "Production")]
    assert new[0].details["forced"] is True
    assert "requires 1 approval(s)" in new[0].details["bypassed_policy"]


def test_force_with_no_policy_in_the_way_is_not_recorded_as_forced(model):
    marker = last_event_id()

    transition_stage(ROOT, "churn", 1, "Production", force=True)

    assert "forced" not in events_after(marker)[0].details


@pytest.mark.parametrize("required", [0, 1])
def test_non_admin_force_is_refused(model, deployer, required):
    set_model_policy(ROOT, "churn", "Production", required_approvals=required)

    with pytest.raises(PermissionDenied) as raised:
        transition_stage(deployer, "churn", 1, "Production", force=True)
    assert type(raised.value) is PermissionDenied
    assert get_version(ROOT, "churn", 1).stage == "None"


@pytest.mark.parametrize("required", [-1, 11, True, False, "2", 1.5, None])
def test_model_policy_refuses_invalid_required_approvals(model, required):
    with pytest.raises(InvalidArgument):
        set_model_policy(ROOT, "churn", "Production", required_approvals=required)


@pytest.mark.parametrize("required", [-1, 11, True, "2", 1.5])
def test_registry_policy_refuses_invalid_required_approvals(ctx, required):
    with pytest.raises(InvalidArgument):
        set_registry_policy(ROOT, "Production", required_approvals=required)


@pytest.mark.parametrize("flag", ["yes", 1, None])
def test_policy_refuses_a_non_boolean_creator_flag(model, flag):
    with pytest.raises(InvalidArgument):
        set_model_policy(ROOT, "churn", "Production", required_approvals=1, creator_may_not_approve=flag)


@pytest.mark.parametrize("required", [0, 10])
def test_policy_accepts_the_bounds(model, required):
    assert set_model_policy(ROOT, "churn", "Production", required_approvals=required).required_approvals == required


def test_policy_refuses_an_unknown_stage(model):
    with pytest.raises(InvalidArgument):
        set_model_policy(ROOT, "churn", "Canary", required_approvals=1)


@pytest.mark.parametrize("level", ["READ", "EDIT", "MANAGE_PRODUCTION"])
def test_model_policy_needs_manage(model, level):
    with pytest.raises(PermissionDenied):
        set_model_policy(person("someone", level, model="churn"), "churn", "Production", required_approvals=1)


def test_model_manager_may_set_the_model_policy(model):
    owner = person("owner", "MANAGE", model="churn")

    assert set_model_policy(owner, "churn", "Production", required_approvals=1).scope == "model"


def test_registry_policy_needs_an_admin(ctx):
    with pytest.raises(PermissionDenied):
        set_registry_policy(person("boss", "MANAGE"), "Production", required_approvals=1)
