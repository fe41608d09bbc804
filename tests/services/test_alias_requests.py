"""Protected aliases (per model, with a registry-wide default) and alias requests: the reviewed way to set,
move or delete a protected alias, through the same request / approval / inbox / history mechanism as
stage transitions (same N-of-M, no self-approval, creator rule, supersession, audit)."""
from __future__ import annotations

import pytest

from registry.auth import Actor
from registry.errors import AlreadyExists, ApprovalRequired, InvalidArgument, InvalidTransition, NotFound, PermissionDenied
from registry.services.alias_requests import request_alias, request_alias_deletion
from registry.services.aliases import get_version_by_alias, set_alias
from registry.services.models import create_model
from registry.services.policies import (
    get_model_alias_policy,
    get_model_policies,
    get_registry_alias_policy,
    get_registry_policies,
    set_model_alias_policy,
    set_registry_alias_policy,
)
from registry.services.review_queue import inbox
from registry.services.reviews import RequestQuery, approve, cancel, get_request, list_requests, reject
from registry.services.stages import transition_stage
from registry.services.versions import create_version, delete_version

from .support import ROOT, events, events_after, last_event_id, person


MAKER = Actor("maker")


@pytest.fixture
def model(ctx):
    """churn: versions 1 (by ``maker``), 2 and 3; champion -> 1, protected by 2 approvals, creator barred."""
    create_model(ROOT, "churn")
    maker = person("maker", "MANAGE_PRODUCTION")
    create_version(maker, "churn", "s3://bucket/1", run_id="run-1")
    create_version(ROOT, "churn", "s3://bucket/2", run_id="run-2")
    create_version(ROOT, "churn", "s3://bucket/3", run_id="run-3")
    set_alias(ROOT, "churn", "champion", 1)
    set_model_alias_policy(ROOT, "churn", "champion", required_approvals=2, creator_may_not_approve=True)
    return "churn"


@pytest.fixture
def reader(model):
    return person("reader")


@pytest.fixture
def reviewers(model):
    return [person(f"rev{i}", "MANAGE_PRODUCTION") for i in range(3)]


def champion() -> int | None:
    try:
        return get_version_by_alias(ROOT, "churn", "champion").version
    except NotFound:
        return None


# --- alias policies -------------------------------------------------------------------------------------

def test_model_alias_policy_is_reported_with_its_scope(model):
    policy = get_model_alias_policy(ROOT, "churn", "champion")

    assert (policy.alias, policy.stage, policy.required_approvals, policy.creator_may_not_approve,
            policy.scope) == ("champion", None, 2, True, "model")


def test_an_alias_without_a_policy_is_unprotected_by_default(model):
    policy = get_model_alias_policy(ROOT, "churn", "challenger")

    assert (policy.alias, policy.required_approvals, policy.scope) == ("challenger", 0, "default")


def test_registry_wide_alias_policy_applies_unless_the_model_has_its_own(model):
    set_registry_alias_policy(ROOT, "prod", required_approvals=1)

    assert get_registry_alias_policy(ROOT, "prod").required_approvals == 1
    assert (get_model_alias_policy(ROOT, "churn", "prod").required_approvals,
            get_model_alias_policy(ROOT, "churn", "prod").scope) == (1, "registry")
    set_model_alias_policy(ROOT, "churn", "prod", required_approvals=0)
    assert get_model_alias_policy(ROOT, "churn", "prod").scope == "model"
    set_alias(person("deployer", "MANAGE_PRODUCTION"), "churn", "prod", 2)  # the model's own 0 wins


def test_policy_listings_include_alias_policies_after_the_stages(model):
    set_registry_alias_policy(ROOT, "prod", required_approvals=1)

    listed = [(p.stage, p.alias, p.required_approvals, p.scope) for p in get_model_policies(ROOT, "churn")]

    assert listed[:4] == [(s, None, 0, "default") for s in ("None", "Staging", "Production", "Archived")]
    assert listed[4:] == [(None, "champion", 2, "model"), (None, "prod", 1, "registry")]
    registry = [(p.stage, p.alias) for p in get_registry_policies(ROOT)]
    assert registry[4:] == [(None, "prod")]


def test_setting_an_alias_policy_is_audited(model):
    marker = last_event_id()

    set_model_alias_policy(ROOT, "churn", "champion", required_approvals=3)

    new = events_after(marker)
    assert [(e.action, e.model_name, e.to_stage) for e in new] == [("policy.changed", "churn", None)]
    assert new[0].details == {"alias": "champion",
                              "before": {"required_approvals": 2, "creator_may_not_approve": True},
                              "after": {"required_approvals": 3, "creator_may_not_approve": False}}


@pytest.mark.parametrize("alias", ["latest", "Latest", "v3", "bad.alias", ""])
def test_reserved_or_invalid_alias_names_cannot_be_protected(model, alias):
    with pytest.raises(InvalidArgument):
        set_model_alias_policy(ROOT, "churn", alias, required_approvals=1)


@pytest.mark.parametrize("level", ["READ", "EDIT", "MANAGE_PRODUCTION"])
def test_model_alias_policy_needs_manage(model, level):
    with pytest.raises(PermissionDenied):
        set_model_alias_policy(person("someone", level), "churn", "champion", required_approvals=0)


def test_registry_alias_policy_needs_an_admin(model):
    with pytest.raises(PermissionDenied):
        set_registry_alias_policy(person("boss", "MANAGE"), "prod", required_approvals=1)


# --- alias requests -------------------------------------------------------------------------------------

def test_a_reader_may_request_moving_a_protected_alias(reader):
    request = request_alias(reader, "churn", 2, "champion", comment="2 beats 1 offline")

    assert (request.version, request.alias, request.alias_action, request.from_stage, request.to_stage,
            request.status, request.requested_by) == (2, "champion", "set", None, None, "pending", "reader")
    assert champion() == 1


def test_an_alias_request_applies_after_the_policys_distinct_approvals(reader, reviewers):
    request = request_alias(reader, "churn", 2, "champion")

    assert approve(reviewers[0], request.id).status == "pending"
    assert champion() == 1
    assert approve(reviewers[1], request.id).status == "approved"
    assert champion() == 2


def test_an_applied_alias_request_is_in_its_history(reader, reviewers):
    request = request_alias(reader, "churn", 2, "champion")
    approve(reviewers[0], request.id)
    approve(reviewers[1], request.id)

    history = [(e.actor, e.action, e.version, e.details.get("alias")) for e in events(request_id=request.id)]

    assert history == [("reader", "request.created", 2, "champion"), ("rev0", "request.approved", 2, "champion"),
                       ("rev1", "request.approved", 2, "champion"), ("rev1", "alias.set", 2, "champion")]
    applied = events(request_id=request.id)[-1].details
    assert applied["previous_version"] == 1 and applied["approved_by"] == ["rev0", "rev1"]


def test_the_requester_may_not_approve_their_own_alias_request(reviewers):
    request = request_alias(reviewers[0], "churn", 2, "champion")

    with pytest.raises(PermissionDenied):
        approve(reviewers[0], request.id)


def test_the_same_reviewer_cannot_count_twice(reader, reviewers):
    request = request_alias(reader, "churn", 2, "champion")
    approve(reviewers[0], request.id)

    with pytest.raises(PermissionDenied):
        approve(reviewers[0], request.id)


def test_the_creator_of_the_target_version_may_not_approve_when_the_alias_policy_says_so(reader, reviewers):
    request = request_alias(reader, "churn", 2, "champion")
    create_version(MAKER, "churn", "s3://bucket/4")
    own = request_alias(reader, "churn", 4, "champion")

    with pytest.raises(PermissionDenied) as raised:
        approve(MAKER, own.id)
    assert "creator" in raised.value.message
    assert approve(MAKER, request.id).status == "pending"  # someone else's version: allowed


def test_the_creator_rule_of_an_unprotected_alias_does_not_apply(reader):
    request = request_alias(reader, "churn", 1, "challenger")

    assert approve(MAKER, request.id).status == "approved"  # no policy: one approval, creator allowed


def test_reviewing_an_alias_request_needs_the_alias_permission(reader):
    request = request_alias(reader, "churn", 2, "champion")
    stager = person("stager", "MANAGE_STAGING")

    with pytest.raises(PermissionDenied):
        approve(stager, request.id)
    with pytest.raises(PermissionDenied):
        reject(stager, request.id)


def test_a_rejected_alias_request_changes_nothing(reader, reviewers):
    request = request_alias(reader, "churn", 2, "champion")

    assert reject(reviewers[0], request.id, "not yet").status == "rejected"
    assert champion() == 1


def test_the_requester_may_cancel_an_alias_request(reader):
    request = request_alias(reader, "churn", 2, "champion")

    assert cancel(reader, request.id).status == "cancelled"


def test_a_deletion_request_removes_the_alias_once_approved(reader, reviewers):
    request = request_alias_deletion(reader, "churn", "champion", comment="retire")

    assert (request.version, request.alias, request.alias_action) == (1, "champion", "delete")
    approve(reviewers[0], request.id)
    assert approve(reviewers[1], request.id).status == "approved"
    assert champion() is None


def test_requesting_what_is_already_so_is_refused(reader):
    with pytest.raises(InvalidTransition):
        request_alias(reader, "churn", 1, "champion")
    with pytest.raises(NotFound):
        request_alias_deletion(reader, "churn", "challenger")


def test_a_duplicate_pending_alias_request_is_refused(reader):
    request_alias(reader, "churn", 2, "champion")

    with pytest.raises(AlreadyExists):
        request_alias(reader, "churn", 2, "champion")


@pytest.mark.parametrize("alias", ["latest", "v2", "bad.alias"])
def test_reserved_or_invalid_aliases_cannot_be_requested(reader, alias):
    with pytest.raises(InvalidArgument):
        request_alias(reader, "churn", 2, alias)


def test_any_other_change_of_the_alias_supersedes_its_pending_requests(reader, reviewers):
    moving = request_alias(reader, "churn", 2, "champion")
    deleting = request_alias_deletion(person("other"), "churn", "champion")
    elsewhere = request_alias(reader, "churn", 3, "challenger")

    set_alias(ROOT, "churn", "champion", 3, force=True)

    assert get_request(ROOT, moving.id).status == "superseded"
    assert get_request(ROOT, deleting.id).status == "superseded"
    assert get_request(ROOT, elsewhere.id).status == "pending"


def test_approving_one_alias_request_supersedes_the_others_on_that_alias(reader, reviewers):
    first = request_alias(reader, "churn", 2, "champion")
    second = request_alias(reader, "churn", 3, "champion")
    approve(reviewers[0], first.id)
    approve(reviewers[1], first.id)

    assert get_request(ROOT, second.id).status == "superseded"


def test_stage_moves_do_not_supersede_alias_requests(reader):
    request = request_alias(reader, "churn", 2, "champion")

    transition_stage(ROOT, "churn", 2, "Staging")

    assert get_request(ROOT, request.id).status == "pending"


def test_deleting_the_target_version_supersedes_the_alias_request(reader):
    request = request_alias(reader, "churn", 3, "champion")

    delete_version(ROOT, "churn", 3)

    assert get_request(ROOT, request.id).status == "superseded"


def test_alias_requests_are_listed_and_in_the_inbox_of_those_who_may_approve(reader, reviewers):
    request = request_alias(reader, "churn", 2, "champion")

    assert [r.id for r in list_requests(ROOT, RequestQuery(model_name="churn")).items] == [request.id]
    assert [s.request.id for s in inbox(reviewers[0])] == [request.id]
    assert inbox(person("stager", "MANAGE_STAGING")) == []
    assert [s.request.id for s in inbox(MAKER)] == [request.id]  # maker created version 1, not the target 2
    create_version(MAKER, "churn", "s3://bucket/4")
    request_alias(reader, "churn", 4, "champion")
    assert [s.request.id for s in inbox(MAKER)] == [request.id]  # but may not approve a move onto their own version


def test_direct_changes_stay_refused_while_a_request_is_pending(reader):
    request_alias(reader, "churn", 2, "champion")

    with pytest.raises(ApprovalRequired):
        set_alias(person("deployer", "MANAGE_PRODUCTION"), "churn", "champion", 2)
