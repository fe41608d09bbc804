"""Policy covers every path to what is served (DESIGN §4; issue "Trust the served answer", finding 4).

With Production needing two approvals, nobody may change what a serving lookup for Production, or for a
protected alias, returns without that review: not by archiving or demoting the Production version, not by
moving or deleting a protected alias, not by deleting the version or the model, not by renaming the model.
Leaving Production is an ordinary transition request, reviewed under the same N-of-M and no-self-approval
rules. Admins may ``force``, which the audit trail records as forced.
"""
from __future__ import annotations

import pytest

from registry.errors import ApprovalRequired, NotFound, PermissionDenied
from registry.services.aliases import delete_alias, get_version_by_alias, set_alias
from registry.services.models import create_model, delete_model, get_model, update_model
from registry.services.policies import set_model_alias_policy, set_model_policy, set_registry_policy
from registry.services.review_queue import inbox
from registry.services.reviews import approve, create_request, reject
from registry.services import serving
from registry.services.stages import transition_stage
from registry.services.versions import create_version, delete_version, get_version

from .support import ROOT, events_after, last_event_id, person, summary


@pytest.fixture
def model(ctx):
    """churn: version 1 (by ``maker``) serves Production and alias champion, both needing 2 approvals;
    versions 2 and 3 are in None; alias scratch (unprotected) points at version 3."""
    create_model(ROOT, "churn")
    maker = person("maker", "EDIT")
    create_version(maker, "churn", "s3://bucket/1", run_id="run-1")
    create_version(ROOT, "churn", "s3://bucket/2", run_id="run-2")
    create_version(ROOT, "churn", "s3://bucket/3", run_id="run-3")
    transition_stage(ROOT, "churn", 1, "Production")
    set_alias(ROOT, "churn", "champion", 1)
    set_alias(ROOT, "churn", "scratch", 3)
    set_model_policy(ROOT, "churn", "Production", required_approvals=2, creator_may_not_approve=True)
    set_model_alias_policy(ROOT, "churn", "champion", required_approvals=2)
    return "churn"


@pytest.fixture
def deployer(model):
    return person("deployer", "MANAGE_PRODUCTION")


@pytest.fixture
def owner(model):
    return person("owner", "MANAGE")


@pytest.fixture
def reviewers(model):
    return [person(f"rev{i}", "MANAGE_PRODUCTION") for i in range(3)]


def serving_production() -> int | None:
    """What the serving path answers for Production (None: nothing in it)."""
    current = serving.resolve(ROOT, "churn", stage="Production").version
    return None if current is None else current.version


def champion() -> int:
    return get_version_by_alias(ROOT, "churn", "champion").version


# --- (a) leaving Production -----------------------------------------------------------------------------

@pytest.mark.parametrize("target", ["Archived", "Staging", "None"])
def test_moving_the_production_version_out_directly_is_refused(deployer, target):
    with pytest.raises(ApprovalRequired) as raised:
        transition_stage(deployer, "churn", 1, target)

    assert f"from Production to {target}" in raised.value.message
    assert "this model's approval policy for Production requires 2 approval(s)" in raised.value.message
    assert raised.value.details["from_stage"] == "Production"
    assert get_version(ROOT, "churn", 1).stage == "Production"


def test_serving_does_not_fall_back_to_an_older_unreviewed_version(deployer):
    transition_stage(ROOT, "churn", 2, "Production", force=True)  # an older, unreviewed one lies below
    set_alias(ROOT, "churn", "champion", 1, force=True)
    transition_stage(ROOT, "churn", 3, "Production", force=True)  # the reviewed current one

    with pytest.raises(ApprovalRequired):
        transition_stage(deployer, "churn", 3, "Archived")

    assert serving_production() == 3


def test_an_admin_is_refused_too_without_force(model):
    with pytest.raises(ApprovalRequired):
        transition_stage(ROOT, "churn", 1, "Archived")


def test_an_admin_may_force_a_version_out_of_production_and_it_is_audited_as_forced(model):
    marker = last_event_id()

    transition_stage(ROOT, "churn", 1, "Archived", force=True)

    new = events_after(marker)
    assert [summary(e) for e in new] == [("root", "version.transitioned", "churn", 1, "run-1", "Production",
                                          "Archived")]
    assert new[0].details["forced"] is True
    assert "approval policy for Production requires 2" in new[0].details["bypassed_policy"]


def test_a_staging_promotion_with_archive_existing_versions_cannot_touch_production(deployer):
    transition_stage(deployer, "churn", 2, "Staging")

    transition_stage(deployer, "churn", 3, "Staging", archive_existing_versions=True)

    assert [get_version(ROOT, "churn", v).stage for v in (1, 2, 3)] == ["Production", "Archived", "Staging"]


def test_leaving_an_unprotected_stage_needs_no_review(deployer):
    transition_stage(deployer, "churn", 2, "Staging")

    assert transition_stage(deployer, "churn", 2, "Archived").stage == "Archived"


def test_a_registry_wide_production_policy_guards_the_exit_too(model, deployer):
    # churn has a Production policy of its own, which overrides the registry's: use a model without one.
    create_model(ROOT, "fraud")
    create_version(ROOT, "fraud", "s3://bucket/f1")
    transition_stage(ROOT, "fraud", 1, "Production")
    set_registry_policy(ROOT, "Production", required_approvals=1)

    with pytest.raises(ApprovalRequired) as raised:
        transition_stage(deployer, "fraud", 1, "Archived")
    assert "the registry-wide approval policy for Production" in raised.value.message


# --- leave-Production requests: N-of-M, no self-approval, creator rule --------------------------------

def test_leaving_production_through_a_request_needs_the_production_policys_approvals(model, reviewers):
    reader = person("reader")
    request = create_request(reader, "churn", 1, "Archived", comment="retire it")

    first = approve(reviewers[0], request.id)
    assert (first.status, len(first.approvals)) == ("pending", 1)
    assert get_version(ROOT, "churn", 1).stage == "Production"

    second = approve(reviewers[1], request.id)
    assert second.status == "approved"
    assert get_version(ROOT, "churn", 1).stage == "Archived"


def test_a_leave_production_request_cannot_be_approved_by_its_requester(model, reviewers):
    request = create_request(reviewers[0], "churn", 1, "Archived")

    with pytest.raises(PermissionDenied) as raised:
        approve(reviewers[0], request.id)
    assert "your own" in raised.value.message


def test_the_production_creator_rule_applies_to_leaving_production(model, reviewers):
    maker = person("maker2", "MANAGE_PRODUCTION")
    create_version(maker, "churn", "s3://bucket/4")
    transition_stage(ROOT, "churn", 4, "Production", force=True)
    request = create_request(person("reader"), "churn", 4, "Staging")

    with pytest.raises(PermissionDenied) as raised:
        approve(maker, request.id)
    assert "creator" in raised.value.message


def test_leaving_production_needs_the_production_permission_to_review(model):
    stager = person("stager", "MANAGE_STAGING")
    request = create_request(person("reader"), "churn", 1, "Archived")

    with pytest.raises(PermissionDenied):
        approve(stager, request.id)
    with pytest.raises(PermissionDenied):
        reject(stager, request.id)


def test_the_inbox_counts_the_leaving_policy(model, reviewers):
    request = create_request(person("reader"), "churn", 1, "Archived")
    maker = person("maker3", "MANAGE_PRODUCTION")

    assert [s.request.id for s in inbox(reviewers[0])] == [request.id]
    approve(reviewers[0], request.id)
    assert inbox(reviewers[0]) == []  # already approved
    assert [s.request.id for s in inbox(reviewers[1])] == [request.id]  # one more is needed
    assert [s.request.id for s in inbox(maker)] == [request.id]


def test_a_promotion_between_protected_stages_needs_the_stricter_count(model, reviewers):
    set_model_policy(ROOT, "churn", "Staging", required_approvals=1)
    transition_stage(ROOT, "churn", 2, "Staging", force=True)
    request = create_request(person("reader"), "churn", 2, "Production")

    assert approve(reviewers[0], request.id).status == "pending"
    assert approve(reviewers[1], request.id).status == "approved"


# --- (b) protected aliases: direct changes ------------------------------------------------------------

def test_pointing_a_protected_alias_elsewhere_is_refused(deployer):
    with pytest.raises(ApprovalRequired) as raised:
        set_alias(deployer, "churn", "champion", 2)

    assert "alias champion" in raised.value.message and "requires 2 approval(s)" in raised.value.message
    assert raised.value.details["alias"] == "champion"
    assert champion() == 1


def test_deleting_a_protected_alias_is_refused(deployer):
    with pytest.raises(ApprovalRequired):
        delete_alias(deployer, "churn", "champion")

    assert champion() == 1


def test_creating_a_protected_alias_that_is_not_set_yet_is_refused_too(deployer):
    set_model_alias_policy(ROOT, "churn", "canary", required_approvals=1)

    with pytest.raises(ApprovalRequired):
        set_alias(deployer, "churn", "canary", 2)
    with pytest.raises(NotFound):
        get_version_by_alias(ROOT, "churn", "canary")


def test_re_pointing_a_protected_alias_at_its_own_version_changes_nothing_and_is_allowed(deployer):
    marker = last_event_id()

    assert set_alias(deployer, "churn", "champion", 1).version == 1
    assert events_after(marker) == []


def test_unprotected_aliases_move_as_before(deployer):
    assert set_alias(deployer, "churn", "scratch", 2).version == 2
    delete_alias(deployer, "churn", "scratch")


@pytest.mark.parametrize("change", ["set", "delete"])
def test_an_admin_needs_force_for_a_protected_alias_and_it_is_audited(model, change):
    with pytest.raises(ApprovalRequired):
        set_alias(ROOT, "churn", "champion", 2) if change == "set" else delete_alias(ROOT, "churn", "champion")
    marker = last_event_id()

    if change == "set":
        set_alias(ROOT, "churn", "champion", 2, force=True)
        assert champion() == 2
    else:
        delete_alias(ROOT, "churn", "champion", force=True)
        with pytest.raises(NotFound):
            champion()

    new = events_after(marker)
    assert [e.action for e in new] == [f"alias.{change}" if change == "set" else "alias.deleted"]
    assert new[0].details["forced"] is True and "alias champion" in new[0].details["bypassed_policy"]


@pytest.mark.parametrize("change", ["set", "delete"])
def test_only_admins_may_force_an_alias_change(deployer, change):
    with pytest.raises(PermissionDenied) as raised:
        if change == "set":
            set_alias(deployer, "churn", "champion", 2, force=True)
        else:
            delete_alias(deployer, "churn", "champion", force=True)
    assert raised.value.details == {"field": "force"}
    assert champion() == 1


# --- deleting what serving returns --------------------------------------------------------------------

def test_deleting_the_production_version_is_refused(owner):
    with pytest.raises(ApprovalRequired) as raised:
        delete_version(owner, "churn", 1)

    assert "Production" in raised.value.message and "reviewed request" in raised.value.message
    assert serving_production() == 1


def test_deleting_a_version_behind_a_protected_alias_is_refused(owner):
    set_alias(ROOT, "churn", "champion", 2, force=True)  # version 2 is in None, but champion serves it

    with pytest.raises(ApprovalRequired) as raised:
        delete_version(owner, "churn", 2)

    assert "alias champion" in raised.value.message
    assert champion() == 2


def test_deleting_a_version_that_serves_nothing_protected_is_allowed(owner):
    delete_version(owner, "churn", 3)  # in None, behind the unprotected alias scratch only

    with pytest.raises(NotFound):
        get_version(ROOT, "churn", 3)


def test_an_admin_may_force_a_deletion_and_it_is_audited_as_forced(model):
    with pytest.raises(ApprovalRequired):
        delete_version(ROOT, "churn", 1)
    marker = last_event_id()

    delete_version(ROOT, "churn", 1, force=True)

    deleted = [e for e in events_after(marker) if e.action == "version.deleted"]
    assert deleted[0].details["forced"] is True
    assert "Production" in deleted[0].details["bypassed_policy"]
    assert "alias champion" in deleted[0].details["bypassed_policy"]


def test_only_admins_may_force_a_deletion(owner):
    with pytest.raises(PermissionDenied) as raised:
        delete_version(owner, "churn", 1, force=True)
    assert raised.value.details == {"field": "force"}


def test_deleting_a_model_that_serves_a_protected_stage_is_refused(owner):
    with pytest.raises(ApprovalRequired):
        delete_model(owner, "churn")

    assert get_model(ROOT, "churn").name == "churn"


def test_deleting_a_model_once_nothing_protected_is_served_is_allowed(model, owner, reviewers):
    request = create_request(person("reader"), "churn", 1, "Archived")
    approve(reviewers[0], request.id)
    approve(reviewers[1], request.id)
    set_alias(ROOT, "churn", "champion", 1, force=True)
    delete_alias(ROOT, "churn", "champion", force=True)

    delete_model(owner, "churn")

    with pytest.raises(NotFound):
        get_model(ROOT, "churn")


def test_an_admin_may_force_a_model_deletion_and_it_is_audited(model):
    marker = last_event_id()

    delete_model(ROOT, "churn", force=True)

    deleted = [e for e in events_after(marker) if e.action == "model.deleted"]
    assert deleted[0].details["forced"] is True


# --- renaming: the name is what serving looks up ------------------------------------------------------

def test_renaming_a_model_that_serves_a_protected_stage_is_refused(owner):
    with pytest.raises(ApprovalRequired) as raised:
        update_model(owner, "churn", new_name="churn-old")

    assert "Renaming" in raised.value.message
    assert get_model(ROOT, "churn").name == "churn"


def test_an_admin_may_force_a_rename_and_it_is_audited(model):
    marker = last_event_id()

    update_model(ROOT, "churn", new_name="churn-old", force=True)

    renamed = [e for e in events_after(marker) if e.action == "model.renamed"]
    assert renamed[0].details["forced"] is True


def test_editing_the_description_is_no_side_door(owner):
    assert update_model(owner, "churn", description="still serving").description == "still serving"
