"""Databricks ``Activity`` objects made from our audit trail: each recorded action of a version's review and
lifecycle maps to its Databricks activity type; events that are not activities map to nothing."""
from __future__ import annotations

from registry.auth import Actor
from registry.schemas.databricks import activity_json
from registry.services import audit_log, comments, models, reviews, stages, versions

OWNER = Actor("owner", is_admin=True)
REQUESTER = Actor("requester", is_admin=True)


def activities(version: int) -> list[tuple]:
    page = audit_log.search_events(OWNER, audit_log.AuditQuery(model_name="churn", version=version))
    out = []
    for event in page.items:
        activity = activity_json(event)
        if activity is not None:
            out.append((activity["activity_type"], activity["user_id"], activity.get("from_stage"),
                        activity.get("to_stage"), activity.get("comment")))
    return out


def make_versions(count: int) -> None:
    models.create_model(OWNER, "churn")
    for i in range(count):
        versions.create_version(OWNER, "churn", f"s3://b/{i}")


def test_review_of_a_request_maps_to_requested_approved_and_applied(ctx):
    make_versions(1)
    request = reviews.create_request(REQUESTER, "churn", 1, "Staging", comment="please")
    reviews.approve(OWNER, request.id, "ok")

    assert activities(1) == [
        ("REQUESTED_TRANSITION", "requester", "None", "Staging", "please"),
        ("APPROVED_REQUEST", "owner", "None", "Staging", "ok"),
        ("APPLIED_TRANSITION", "owner", "None", "Staging", None),
    ]


def test_rejection_and_cancellation_map_to_their_activity_types(ctx):
    make_versions(1)
    rejected = reviews.create_request(REQUESTER, "churn", 1, "Staging")
    reviews.reject(OWNER, rejected.id, "no")
    cancelled = reviews.create_request(REQUESTER, "churn", 1, "Production")
    reviews.cancel(REQUESTER, cancelled.id, "oops")

    assert [a[0] for a in activities(1)] == [
        "REQUESTED_TRANSITION", "REJECTED_REQUEST", "REQUESTED_TRANSITION", "CANCELLED_REQUEST"]


def test_archiving_as_a_side_effect_is_a_system_transition_with_a_system_comment(ctx):
    make_versions(2)
    stages.transition_stage(OWNER, "churn", 1, "Production")
    stages.transition_stage(OWNER, "churn", 2, "Production", archive_existing_versions=True)

    page = audit_log.search_events(OWNER, audit_log.AuditQuery(model_name="churn", version=1))
    last = activity_json(page.items[-1])

    assert (last["activity_type"], last["from_stage"], last["to_stage"]) == (
        "SYSTEM_TRANSITION", "Production", "Archived")
    assert "version 2" in last["system_comment"]


def test_comment_maps_to_new_comment_and_tags_map_to_nothing(ctx):
    make_versions(1)
    comments.create_comment(OWNER, "churn", 1, "nice")
    versions.set_version_tag(OWNER, "churn", 1, "k", "v")

    assert activities(1) == [("NEW_COMMENT", "owner", None, None, "nice")]
