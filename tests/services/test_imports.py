"""services/imports.py: an import is admin-only, obeys the source rules, records what it bypasses, and a dry
run writes nothing."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from registry.audit import verify_chain
from registry.auth import Actor
from registry.errors import PermissionDenied
from registry.extensions import db
from registry.orm import AuditEvent, RegisteredModel
from registry.services.import_snapshots import ModelSnapshot, VersionSnapshot
from registry.services.imports import FAILED, IMPORTED, UNCHANGED, import_model
from registry.services.models import get_model
from registry.services.policies import set_registry_alias_policy, set_registry_policy
from registry.services.versions import get_version

from .support import count_rows, events, person

ORIGIN = "http://mlflow.example:5000"
T0 = datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc)
T1 = datetime(2024, 2, 3, 4, 5, 6, 789000, tzinfo=timezone.utc)


def snapshot(name="imported", source="s3://b/1", stage="Production", aliases=None) -> ModelSnapshot:
    return ModelSnapshot(
        name=name, created_at=T0, updated_at=T1, description="from MLflow", tags={"team": "risk"},
        versions=(VersionSnapshot(version=3, source=source, created_at=T0, updated_at=T1, stage=stage,
                                  created_by="dana", tags={"k": "v"}),),
        aliases=aliases if aliases is not None else {"champion": 3},
    )


def test_only_an_admin_may_import(ctx, alice):
    with pytest.raises(PermissionDenied):
        import_model(person("erin", "MANAGE"), snapshot(), origin=ORIGIN)
    assert count_rows(RegisteredModel) == 0


def test_the_source_keeps_its_numbers_creators_and_timestamps(ctx, alice):
    outcome = import_model(alice, snapshot(), origin=ORIGIN)
    assert outcome.status == IMPORTED
    version = get_version(alice, "imported", 3)
    assert (version.created_by, version.created_at, version.updated_at, version.stage) == ("dana", T0, T1, "Production")
    model = get_model(alice, "imported")
    assert (model.last_version, model.created_at, model.updated_at) == (3, T0, T1)
    assert import_model(alice, snapshot(), origin=ORIGIN).status == UNCHANGED
    assert verify_chain(db.session())[1] is None


def test_stages_and_aliases_a_policy_protects_are_recorded_as_forced(ctx, alice):
    set_registry_policy(alice, "Production", required_approvals=1)
    set_registry_alias_policy(alice, "champion", required_approvals=1)
    import_model(alice, snapshot(), origin=ORIGIN)
    trail = {e.action: e for e in events(model_name="imported")}
    for action in ("version.transitioned", "alias.set"):
        assert trail[action].details["forced"] is True, action
        assert trail[action].details["imported"]["from"] == ORIGIN
        assert "bypassed_policy" in trail[action].details


def test_an_unprotected_stage_is_not_recorded_as_forced(ctx, alice):
    import_model(alice, snapshot(stage="Staging", aliases={}), origin=ORIGIN)
    transition = next(e for e in events(model_name="imported") if e.action == "version.transitioned")
    assert "forced" not in transition.details


def test_a_source_this_registry_refuses_fails_the_model_and_writes_nothing(ctx, alice):
    outcome = import_model(alice, snapshot(source="/etc/passwd"), origin=ORIGIN)
    assert outcome.status == FAILED and "version 3" in outcome.reason and "Local paths" in outcome.reason
    assert count_rows(RegisteredModel) == 0


def test_a_dry_run_reports_and_writes_nothing(ctx, alice):
    outcome = import_model(alice, snapshot(), origin=ORIGIN, dry_run=True)
    assert outcome.status == IMPORTED and outcome.changes > 0
    assert count_rows(RegisteredModel) == 0 and count_rows(AuditEvent) == 0
