"""DENY: an explicit veto (services/access.py). A DENY grant that reaches a user (to them or to ``*``, on the
model or registry-wide) leaves them nothing on the model, whatever else they hold, on every read path:
direct reads, searches, serving (cached or not), the audit trail, the review inbox. Admins are not bound."""
from __future__ import annotations

import pytest

from registry.auth import Actor
from registry.errors import NotFound, PermissionDenied
from registry.extensions import CACHES_KEY
from registry.lifecycle import Permission
from registry.services import audit_log, models, permissions, review_queue, reviews, serving, stages, versions
from registry.services.access import levels
from registry.services.audit_log import AuditQuery
from registry.services.models import ModelQuery

from .support import ROOT, person


@pytest.fixture
def churn(ctx):
    models.create_model(ROOT, "churn")
    versions.create_version(ROOT, "churn", "s3://b/1")
    stages.transition_stage(ROOT, "churn", 1, "Production")
    models.create_model(ROOT, "fraud")
    return "churn"


def names_seen(actor: Actor) -> list[str]:
    return [m.name for m in models.search_models(actor, ModelQuery()).items]


def test_a_deny_beats_the_users_own_manage_and_the_default_read(churn):
    ana = person("ana", "MANAGE", model=churn)
    assert models.get_model(ana, churn).name == churn
    permissions.set_model_permissions(ROOT, churn, [("ana", "DENY")], merge=True)
    with pytest.raises(NotFound):
        models.get_model(ana, churn)
    with pytest.raises(NotFound):
        versions.get_version(ana, churn, 1)
    with pytest.raises(NotFound):
        serving.resolve(ana, churn, stage="Production")
    assert names_seen(ana) == ["fraud"]  # the registry-wide `*` READ still opens the others
    churn_id, fraud_id = models.get_model(ROOT, churn).id, models.get_model(ROOT, "fraud").id
    assert levels(ana, [churn_id, fraud_id]) == {churn_id: Permission.DENY, fraud_id: Permission.READ}


def test_a_deny_to_everyone_beats_a_users_explicit_grant_but_not_an_admin(churn):
    ana = person("ana", "MANAGE", model=churn)
    permissions.set_model_permissions(ROOT, churn, [("*", "DENY")], merge=True)
    with pytest.raises(NotFound):
        models.get_model(ana, churn)
    with pytest.raises(NotFound):
        permissions.set_model_permissions(ana, churn, [("ana", "MANAGE")])  # cannot lift it herself
    assert models.get_model(ROOT, churn).name == churn
    assert names_seen(ROOT) == ["churn", "fraud"]


def test_a_registry_wide_deny_bars_every_model_even_one_the_user_manages(churn):
    ana = person("ana", "MANAGE", model=churn)
    permissions.set_registry_permissions(ROOT, [("ana", "DENY")], merge=True)
    assert names_seen(ana) == []
    for name in ("churn", "fraud"):
        with pytest.raises(NotFound):
            models.get_model(ana, name)
    with pytest.raises(PermissionDenied):
        models.create_model(ana, "mine")


def test_lifting_the_deny_restores_what_the_other_grants_give(churn):
    ana = person("ana", "EDIT", model=churn)
    permissions.set_model_permissions(ROOT, churn, [("ana", "DENY")], merge=True)
    assert names_seen(ana) == ["fraud"]
    permissions.set_model_permissions(ROOT, churn, [("ana", "EDIT")], merge=True)
    assert names_seen(ana) == ["churn", "fraud"]
    assert versions.create_version(ana, churn, "s3://b/2").version == 2


def test_a_deny_takes_effect_at_once_on_cached_serving_answers(app, churn):
    app.extensions[CACHES_KEY].hub.set_healthy(True)  # as if listening: answers and levels are cached
    ana = person("ana")
    assert serving.resolve(ana, churn, stage="Production").version.version == 1
    assert serving.resolve(ana, churn, stage="Production").version.version == 1  # from the cache now
    permissions.set_model_permissions(ROOT, churn, [("ana", "DENY")], merge=True)
    with pytest.raises(NotFound):
        serving.resolve(ana, churn, stage="Production")
    permissions.set_model_permissions(ROOT, churn, [], merge=False)
    assert serving.resolve(ana, churn, stage="Production").version.version == 1


def test_the_audit_trail_hides_a_denied_models_events(churn):
    ana = person("ana")
    assert {e.model_name for e in audit_log.search_events(ana, AuditQuery()).items} >= {"churn", "fraud"}
    permissions.set_model_permissions(ROOT, churn, [("ana", "DENY")], merge=True)
    seen = {e.model_name for e in audit_log.search_events(ana, AuditQuery()).items}
    assert "churn" not in seen and "fraud" in seen


def test_a_denied_reviewer_sees_no_requests_on_the_model(churn):
    versions.create_version(ROOT, churn, "s3://b/2")
    rita = person("rita", "MANAGE_PRODUCTION")
    reviews.create_request(ROOT, churn, 2, "Production")
    assert [s.request.model_name for s in review_queue.inbox(rita)] == [churn]
    permissions.set_model_permissions(ROOT, churn, [("rita", "DENY")], merge=True)
    assert review_queue.inbox(rita) == []
    with pytest.raises(NotFound):
        stages.transition_stage(rita, churn, 2, "Staging")


def test_deny_is_listed_and_audited_like_any_grant(churn):
    person("ana")
    permissions.set_model_permissions(ROOT, churn, [("ana", "deny")], merge=True)
    assert ("ana", "DENY") in [(g.principal, g.level) for g in permissions.get_model_permissions(ROOT, churn)]
    event = audit_log.search_events(ROOT, AuditQuery(model_name=churn, action="permissions.changed")).items[-1]
    assert event.details["after"]["ana"] == "DENY"
