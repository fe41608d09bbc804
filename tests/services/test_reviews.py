"""Transition requests and their review: request, list, cancel, approve, reject, supersession, inbox.

Reviewers are ordinary (non-admin) users holding the levels each test grants them, so the permission rules
run for real; ``ROOT`` (an admin) only sets things up.
"""
from __future__ import annotations

import pytest

from registry.auth import Actor
from registry.errors import AlreadyExists, Conflict, InvalidArgument, InvalidTransition, NotFound, PermissionDenied
from registry.services.models import create_model
from registry.services.permissions import set_registry_permissions
from registry.services.policies import set_model_policy
from registry.services.reviews import (
    RequestQuery,
    approve,
    cancel,
    create_request,
    get_request,
    list_requests,
    reject,
)
from registry.services.review_queue import inbox
from registry.services.stages import transition_stage
from registry.services.versions import create_version, delete_version, get_version

from .support import ROOT, events, events_after, last_event_id, person, summary, walk


def stage_of(version: int) -> str:
    return get_version(ROOT, "churn", version).stage


def history(request_id: int) -> list[tuple]:
    return [(e.actor, e.action, e.version, e.from_stage, e.to_stage) for e in events(request_id=request_id)]


@pytest.fixture
def model(ctx):
    create_model(ROOT, "churn")
    for i in range(3):
        create_version(ROOT, "churn", f"s3://bucket/{i + 1}", run_id=f"run-{i + 1}")
    return "churn"


@pytest.fixture
def reader(model):
    return person("reader")


@pytest.fixture
def reviewers(model):
    """Three users who may approve any transition of the model."""
    return [person(f"rev{i}", "MANAGE_PRODUCTION") for i in range(3)]


def require(count: int, stage: str = "Production", **options) -> None:
    set_model_policy(ROOT, "churn", stage, required_approvals=count, **options)


# --- creating requests ---------------------------------------------------------------------------------

def test_reader_can_request_a_transition(reader):
    request = create_request(reader, "churn", 1, "production", comment="ready for prime time")

    assert (request.model_name, request.version, request.from_stage, request.to_stage) == (
        "churn", 1, "None", "Production")
    assert (request.requested_by, request.status, request.comment, request.approvals) == (
        "reader", "pending", "ready for prime time", ())
    assert stage_of(1) == "None"


def test_creating_a_request_records_from_to_comment_and_run_id(reader):
    marker = last_event_id()

    request = create_request(reader, "churn", 2, "Staging", archive_existing_versions=True, comment="try it")

    new = events_after(marker)
    assert [summary(e) for e in new] == [("reader", "request.created", "churn", 2, "run-2", "None", "Staging")]
    assert new[0].request_id == request.id
    assert new[0].details == {"comment": "try it", "archive_existing_versions": True}


@pytest.mark.parametrize("stage", ["None", "Staging"])
def test_request_for_the_stage_the_version_is_already_in_is_refused(reader, stage):
    if stage != "None":
        transition_stage(ROOT, "churn", 1, stage)

    with pytest.raises(InvalidTransition):
        create_request(reader, "churn", 1, stage)


@pytest.mark.parametrize("target", ["None", "Archived"])
def test_request_to_archive_existing_into_none_or_archived_is_refused(reader, target):
    transition_stage(ROOT, "churn", 1, "Staging")  # so the target differs from the current stage

    with pytest.raises(InvalidTransition) as raised:
        create_request(reader, "churn", 1, target, archive_existing_versions=True)
    assert "archive_existing_versions" in raised.value.message


def test_duplicate_pending_request_by_the_same_requester_is_refused(reader):
    first = create_request(reader, "churn", 1, "Production")

    with pytest.raises(AlreadyExists) as raised:
        create_request(reader, "churn", 1, "production")
    assert raised.value.details == {"request_id": first.id}


def test_same_request_by_another_requester_is_allowed(reader):
    create_request(reader, "churn", 1, "Production")

    other = create_request(person("other"), "churn", 1, "Production")

    assert other.status == "pending"


def test_same_requester_may_ask_again_once_the_earlier_request_is_closed(reader):
    first = create_request(reader, "churn", 1, "Production")
    cancel(reader, first.id)

    again = create_request(reader, "churn", 1, "Production")

    assert again.id != first.id and again.status == "pending"


def test_request_on_a_model_the_requester_cannot_read_is_not_found(model):
    set_registry_permissions(ROOT, [])  # drop the seeded "everyone reads" grant
    outsider = person("outsider")

    with pytest.raises(NotFound):
        create_request(outsider, "churn", 1, "Staging")


# --- listing and reading ---------------------------------------------------------------------------------

def test_list_per_version_shows_only_that_versions_requests_newest_first(reader):
    a = create_request(reader, "churn", 1, "Staging")
    b = create_request(reader, "churn", 1, "Production")
    create_request(reader, "churn", 2, "Production")

    found = list_requests(reader, RequestQuery(model_name="churn", version=1)).items

    assert [r.id for r in found] == [b.id, a.id]


def test_list_per_model_shows_every_version(reader):
    made = [create_request(reader, "churn", v, "Production").id for v in (1, 2, 3)]

    found = list_requests(reader, RequestQuery(model_name="churn")).items

    assert [r.id for r in found] == made[::-1]


@pytest.mark.parametrize("status, expected", [("pending", ["kept"]), ("cancelled", ["dropped"])])
def test_list_filters_by_status(reader, status, expected):
    ids = {"kept": create_request(reader, "churn", 1, "Staging").id,
           "dropped": create_request(reader, "churn", 2, "Staging").id}
    cancel(reader, ids["dropped"])

    found = list_requests(reader, RequestQuery(model_name="churn", status=status)).items

    assert [r.id for r in found] == [ids[k] for k in expected]


def test_list_refuses_an_unknown_status(reader):
    with pytest.raises(InvalidArgument):
        list_requests(reader, RequestQuery(model_name="churn", status="open"))


def test_list_pages_through_every_request_once(model):
    made = [create_request(person(f"asker{i}"), "churn", 1 + i % 3, "Production").id for i in range(7)]

    found = walk(lambda size, token: list_requests(ROOT, RequestQuery(model_name="churn"), size, token), 3)

    assert [r.id for r in found] == sorted(made, reverse=True)


def test_list_of_an_unknown_version_is_not_found(reader):
    with pytest.raises(NotFound):
        list_requests(reader, RequestQuery(model_name="churn", version=99))


def test_get_returns_the_request(reader):
    made = create_request(reader, "churn", 1, "Production", comment="please")

    assert get_request(reader, made.id) == made


def test_get_of_an_unknown_request_is_not_found(model):
    with pytest.raises(NotFound):
        get_request(ROOT, 987654321)


# --- cancelling ---------------------------------------------------------------------------------------

def test_requester_cancels_own_request_and_it_is_audited(reader):
    request = create_request(reader, "churn", 1, "Production")
    marker = last_event_id()

    cancelled = cancel(reader, request.id, "changed my mind")

    assert (cancelled.status, cancelled.resolved_by, cancelled.resolution_comment) == (
        "cancelled", "reader", "changed my mind")
    assert [summary(e) for e in events_after(marker)] == [
        ("reader", "request.cancelled", "churn", 1, "run-1", "None", "Production")]


@pytest.mark.parametrize("level", [None, "EDIT", "MANAGE_PRODUCTION"])
def test_cancelling_someone_elses_request_without_manage_is_refused(reader, level):
    request = create_request(reader, "churn", 1, "Production")

    with pytest.raises(PermissionDenied):
        cancel(person("meddler", level), request.id)
    assert get_request(ROOT, request.id).status == "pending"


def test_manager_may_cancel_someone_elses_request(reader):
    request = create_request(reader, "churn", 1, "Production")

    cancelled = cancel(person("owner", "MANAGE", model="churn"), request.id)

    assert (cancelled.status, cancelled.resolved_by) == ("cancelled", "owner")


@pytest.mark.parametrize("closing", ["cancel", "reject", "approve"])
def test_cancelling_a_closed_request_is_a_conflict(reader, reviewers, closing):
    request = create_request(reader, "churn", 1, "Staging")
    {"cancel": lambda: cancel(reader, request.id), "reject": lambda: reject(reviewers[0], request.id),
     "approve": lambda: approve(reviewers[0], request.id)}[closing]()

    with pytest.raises(Conflict):
        cancel(reader, request.id)


@pytest.mark.parametrize("review", [approve, reject])
def test_reviewing_a_closed_request_is_a_conflict(reader, reviewers, review):
    request = create_request(reader, "churn", 1, "Staging")
    cancel(reader, request.id)

    with pytest.raises(Conflict):
        review(reviewers[0], request.id)


# --- approving --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("required", [0, 1, 2])
def test_requester_may_never_approve_own_request(model, required):
    require(required)
    lead = person("lead", "MANAGE_PRODUCTION")
    request = create_request(lead, "churn", 1, "Production")

    with pytest.raises(PermissionDenied):
        approve(lead, request.id)
    assert get_request(ROOT, request.id).status == "pending" and stage_of(1) == "None"


def test_admin_may_not_approve_own_request_either(model):
    request = create_request(ROOT, "churn", 1, "Production")

    with pytest.raises(PermissionDenied):
        approve(ROOT, request.id)
    assert get_request(ROOT, request.id).approvals == ()


@pytest.mark.parametrize("level, target, allowed", [
    ("READ", "Staging", False),
    ("EDIT", "Staging", False),
    ("MANAGE_STAGING", "Staging", True),
    ("MANAGE_STAGING", "Archived", True),
    ("MANAGE_STAGING", "Production", False),
    ("MANAGE_PRODUCTION", "Production", True),
])
def test_approval_needs_the_permission_for_the_transition(reader, level, target, allowed):
    request = create_request(reader, "churn", 1, target)
    reviewer = person("reviewer", level)

    if allowed:
        assert approve(reviewer, request.id).status == "approved"
        assert stage_of(1) == target
    else:
        with pytest.raises(PermissionDenied):
            approve(reviewer, request.id)
        assert stage_of(1) == "None"


def test_leaving_production_needs_production_permission_to_approve(reader):
    transition_stage(ROOT, "churn", 1, "Production")
    request = create_request(reader, "churn", 1, "Archived")

    with pytest.raises(PermissionDenied):
        approve(person("stager", "MANAGE_STAGING"), request.id)


def test_one_approval_applies_a_request_when_the_policy_requires_none(reader, reviewers):
    request = create_request(reader, "churn", 1, "Production")

    approved = approve(reviewers[0], request.id, "lgtm")

    assert (approved.status, approved.resolved_by, approved.resolution_comment) == ("approved", "rev0", "lgtm")
    assert [a.approver for a in approved.approvals] == ["rev0"]
    assert stage_of(1) == "Production"


def test_one_of_two_required_approvals_leaves_the_request_pending(reader, reviewers):
    require(2)
    request = create_request(reader, "churn", 1, "Production")

    after_one = approve(reviewers[0], request.id, "looks fine")

    assert after_one.status == "pending"
    assert [(a.approver, a.comment) for a in after_one.approvals] == [("rev0", "looks fine")]
    assert stage_of(1) == "None"


def test_second_distinct_approval_applies_the_transition(reader, reviewers):
    require(2)
    request = create_request(reader, "churn", 1, "Production")
    approve(reviewers[0], request.id)

    done = approve(reviewers[1], request.id)

    assert done.status == "approved" and done.resolved_by == "rev1"
    assert [a.approver for a in done.approvals] == ["rev0", "rev1"]
    assert stage_of(1) == "Production"


def test_request_history_reads_back_in_order(reader, reviewers):
    require(2)
    request = create_request(reader, "churn", 1, "Production")
    approve(reviewers[0], request.id)
    approve(reviewers[1], request.id)

    assert history(request.id) == [
        ("reader", "request.created", 1, "None", "Production"),
        ("rev0", "request.approved", 1, "None", "Production"),
        ("rev1", "request.approved", 1, "None", "Production"),
        ("rev1", "version.transitioned", 1, "None", "Production"),
    ]
    applied = events(request_id=request.id)[-1]
    assert applied.run_id == "run-1"
    assert applied.details["approved_by"] == ["rev0", "rev1"]
    assert applied.details["requested_by"] == "reader"


def test_the_same_reviewer_cannot_approve_twice(reader, reviewers):
    require(2)
    request = create_request(reader, "churn", 1, "Production")
    approve(reviewers[0], request.id)

    with pytest.raises(PermissionDenied):
        approve(reviewers[0], request.id)
    assert len(get_request(ROOT, request.id).approvals) == 1 and stage_of(1) == "None"


@pytest.fixture
def carols_version(model):
    """Version 4, created by carol, who may also approve promotions."""
    carol = person("carol", "MANAGE_PRODUCTION")
    create_version(carol, "churn", "s3://bucket/4", run_id="run-4")
    return carol


def test_creator_may_not_approve_when_the_policy_says_so(reader, carols_version):
    require(1, creator_may_not_approve=True)
    request = create_request(reader, "churn", 4, "Production")

    with pytest.raises(PermissionDenied) as raised:
        approve(carols_version, request.id)
    assert "creator" in raised.value.message
    assert stage_of(4) == "None"


def test_creator_rule_does_not_block_other_reviewers(reader, carols_version, reviewers):
    require(1, creator_may_not_approve=True)
    request = create_request(reader, "churn", 4, "Production")

    assert approve(reviewers[0], request.id).status == "approved"


def test_creator_may_approve_when_the_policy_allows_it(reader, carols_version):
    request = create_request(reader, "churn", 4, "Production")

    assert approve(carols_version, request.id).status == "approved"


def test_approved_request_with_archive_existing_archives_the_others(reader, reviewers):
    transition_stage(ROOT, "churn", 1, "Production")
    transition_stage(ROOT, "churn", 2, "Production")
    request = create_request(reader, "churn", 3, "Production", archive_existing_versions=True)

    approve(reviewers[0], request.id)

    assert [stage_of(v) for v in (1, 2, 3)] == ["Archived", "Archived", "Production"]
    assert [(e.version, e.to_stage) for e in events(request_id=request.id, action="version.transitioned")] == [
        (1, "Archived"), (2, "Archived"), (3, "Production")]


def test_reject_closes_the_request_without_moving_the_version(reader, reviewers):
    request = create_request(reader, "churn", 1, "Production")
    marker = last_event_id()

    rejected = reject(reviewers[0], request.id, "not yet")

    assert (rejected.status, rejected.resolved_by, rejected.resolution_comment) == ("rejected", "rev0", "not yet")
    assert stage_of(1) == "None"
    assert [summary(e) for e in events_after(marker)] == [
        ("rev0", "request.rejected", "churn", 1, "run-1", "None", "Production")]


def test_requester_cannot_reject_own_request(model):
    lead = person("lead", "MANAGE_PRODUCTION")
    request = create_request(lead, "churn", 1, "Production")

    with pytest.raises(PermissionDenied):
        reject(lead, request.id)
    assert get_request(ROOT, request.id).status == "pending"


def test_reject_needs_the_permission_for_the_transition(reader):
    request = create_request(reader, "churn", 1, "Production")

    with pytest.raises(PermissionDenied):
        reject(person("stager", "MANAGE_STAGING"), request.id)


# --- supersession ---------------------------------------------------------------------------------------

def assert_superseded(request_id: int) -> None:
    assert get_request(ROOT, request_id).status == "superseded"
    assert [e.action for e in events(request_id=request_id)][-1] == "request.superseded"


def test_direct_transition_supersedes_the_versions_pending_requests(reader):
    request = create_request(reader, "churn", 1, "Production")

    transition_stage(ROOT, "churn", 1, "Staging")

    assert_superseded(request.id)


def test_approval_of_another_request_supersedes_the_versions_other_requests(reader, reviewers):
    to_staging = create_request(reader, "churn", 1, "Staging")
    to_production = create_request(reader, "churn", 1, "Production")

    approve(reviewers[0], to_staging.id)

    assert_superseded(to_production.id)


def test_archiving_by_another_versions_promotion_supersedes_requests(reader):
    transition_stage(ROOT, "churn", 1, "Production")
    step_down = create_request(reader, "churn", 1, "Staging")

    transition_stage(ROOT, "churn", 2, "Production", archive_existing_versions=True)

    assert_superseded(step_down.id)


def test_archiving_by_another_approved_request_supersedes_requests(reader, reviewers):
    transition_stage(ROOT, "churn", 1, "Production")
    step_down = create_request(reader, "churn", 1, "Staging")
    promotion = create_request(reader, "churn", 2, "Production", archive_existing_versions=True)

    approve(reviewers[0], promotion.id)

    assert_superseded(step_down.id)


def test_deleting_the_version_supersedes_its_requests(reader):
    request = create_request(reader, "churn", 1, "Production")

    delete_version(ROOT, "churn", 1)

    assert_superseded(request.id)


def test_requests_of_versions_that_did_not_move_stay_pending(reader):
    other_version = create_request(reader, "churn", 2, "Production")

    transition_stage(ROOT, "churn", 1, "Production", archive_existing_versions=True)

    assert get_request(ROOT, other_version.id).status == "pending"


def test_a_no_op_transition_leaves_requests_pending(reader):
    transition_stage(ROOT, "churn", 1, "Staging")
    request = create_request(reader, "churn", 1, "Production")

    transition_stage(ROOT, "churn", 1, "Staging")  # already there: nothing moves

    assert get_request(ROOT, request.id).status == "pending"


# --- inbox --------------------------------------------------------------------------------------------

def inbox_ids(actor: Actor) -> list[int]:
    return [state.request.id for state in inbox(actor)]


def test_inbox_lists_pending_requests_the_reviewer_may_approve_oldest_first(reader, reviewers):
    first = create_request(reader, "churn", 1, "Production")
    second = create_request(reader, "churn", 2, "Staging")

    assert inbox_ids(reviewers[0]) == [first.id, second.id]


def test_inbox_leaves_out_stages_beyond_the_reviewers_level(reader):
    staging = create_request(reader, "churn", 1, "Staging")
    create_request(reader, "churn", 2, "Production")

    assert inbox_ids(person("stager", "MANAGE_STAGING")) == [staging.id]


def test_inbox_leaves_out_the_reviewers_own_requests(reviewers):
    create_request(reviewers[0], "churn", 1, "Production")
    theirs = create_request(reviewers[1], "churn", 2, "Production")

    assert inbox_ids(reviewers[0]) == [theirs.id]


def test_inbox_leaves_out_versions_the_reviewer_created_when_the_policy_forbids(reader, carols_version):
    require(1, creator_may_not_approve=True)
    create_request(reader, "churn", 4, "Production")
    others = create_request(reader, "churn", 1, "Production")

    assert inbox_ids(carols_version) == [others.id]


def test_inbox_leaves_out_closed_requests(reader, reviewers):
    create_request(reader, "churn", 1, "Production")
    cancel(reader, create_request(reader, "churn", 2, "Production").id)

    assert len(inbox_ids(reviewers[0])) == 1


def test_inbox_leaves_out_requests_the_reviewer_already_approved(reader, reviewers):
    require(2)
    request = create_request(reader, "churn", 1, "Production")
    approve(reviewers[0], request.id)

    assert inbox_ids(reviewers[0]) == [] and inbox_ids(reviewers[1]) == [request.id]


def test_inbox_is_empty_for_readers(reader):
    create_request(person("asker"), "churn", 1, "Staging")

    assert inbox_ids(reader) == []


def test_inbox_follows_per_model_grants(model):
    create_model(ROOT, "fraud")
    create_version(ROOT, "fraud", "s3://bucket/f1")
    asker = person("asker")
    churn = create_request(asker, "churn", 1, "Production")
    create_request(asker, "fraud", 1, "Production")

    assert inbox_ids(person("owner", "MANAGE", model="churn")) == [churn.id]
