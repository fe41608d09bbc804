"""services/imports.py: an import is admin-only, obeys the source rules, records what it bypasses, and a dry
run writes nothing."""
from __future__ import annotations

import io
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timezone

import pytest
from sqlalchemy import event, select

from registry.audit import verify_chain
from registry.auth import Actor
from registry.errors import PermissionDenied
from registry.extensions import db
from registry.migrate import run
from registry.db.history import stage_answers
from registry.orm import AuditEvent, RegisteredModel, TransitionRequest
from registry.services.import_snapshots import ModelSnapshot, RequestSnapshot, VersionSnapshot
from registry.services.imports import FAILED, IMPORTED, UNCHANGED, UPDATED, import_model
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


# --- Cost: an import of 10,000 models is mostly round trips to the database, so each model's are counted.

def perf_like(name="counted") -> ModelSnapshot:
    """Ten versions as tests/perf/seed.py makes them: 1-7 Archived, 8 Staging, 9 Production, 10 None, tags, an alias."""
    stages = {8: "Staging", 9: "Production", 10: "None"}
    return ModelSnapshot(
        name=name, created_at=T0, updated_at=T1, description="d", tags={"team": "risk"},
        versions=tuple(VersionSnapshot(version=n, source=f"s3://b/{n}", created_at=T0, updated_at=T1,
                                       stage=stages.get(n, "Archived"), created_by="dana",
                                       tags={"seeded": "true", "quality": "0.9"}, run_id=f"{n:032x}")
                       for n in range(1, 11)),
        aliases={"champion": 9},
    )


@contextmanager
def statements():
    seen: list[str] = []

    def capture(_conn, _cursor, statement, _parameters, _context, _executemany):
        if not statement.lstrip().upper().startswith(("SAVEPOINT", "RELEASE SAVEPOINT")):  # the test's wrapping
            seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", capture)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", capture)


def test_a_new_model_is_written_in_a_dozen_statements_not_one_per_object(ctx, alice):
    with statements() as seen:
        assert import_model(alice, perf_like(), origin=ORIGIN).status == IMPORTED
    # Find (lock) or insert the model; policies; its tags, the versions (inserted once, in their stages), their tags,
    # the model row; the alias, its version's revision, the alias requests it closes; the events at commit.
    assert len(seen) <= 11, "\n".join(seen)
    assert verify_chain(db.session())[1] is None


def test_an_unchanged_model_is_compared_in_a_few_statements(ctx, alice):
    import_model(alice, perf_like(), origin=ORIGIN)
    with statements() as seen:
        assert import_model(alice, perf_like(), origin=ORIGIN).status == UNCHANGED
    # Lock the model; its versions with their tags and aliases; its tags.
    assert len(seen) <= 5, "\n".join(seen)


def test_each_placed_stage_records_what_every_stage_serves_once_it_is_made(ctx, alice):
    outcome = import_model(alice, perf_like(), origin=ORIGIN)
    moves = [e for e in events(model_name="counted") if e.action == "version.transitioned"]
    assert [(e.version, e.from_stage, e.to_stage) for e in moves] == \
        [(n, "None", "Archived") for n in range(1, 8)] + [(8, "None", "Staging"), (9, "None", "Production")]
    assert moves[0].details["serving"] == {"None": 10, "Staging": None, "Production": None, "Archived": 1}
    assert moves[7].details["serving"] == {"None": 10, "Staging": 8, "Production": None, "Archived": 7}
    # The last move's record is what the database answers once it is all written.
    assert moves[-1].details["serving"] == stage_answers(outcome.model_id) == \
        {"None": 10, "Staging": 8, "Production": 9, "Archived": 7}


def test_a_version_moved_at_the_source_closes_its_imported_request_from_the_stage_it_left(ctx, alice):
    request = RequestSnapshot(version=3, to_stage="Production", requested_by="rita", created_at=T1)
    import_model(alice, replace(snapshot(stage="None"), requests=(request,)), origin=ORIGIN)
    assert import_model(alice, snapshot(stage="Staging"), origin=ORIGIN).status == UPDATED
    trail = [e.action for e in events(model_name="imported")]
    assert trail[-2:] == ["version.transitioned", "request.superseded"]
    assert count_rows(TransitionRequest) == 1
    assert db.session.scalar(select(TransitionRequest.status)) == "superseded"
    assert verify_chain(db.session())[1] is None


def test_a_model_handed_over_again_whole_is_brought_up_to_date_and_reported_once(ctx, alice):
    """What the import driver does with a reader's second snapshot of a model (a source that ignored the
    order asked for): it waits for the first import, imports again, and reports the two as one."""
    whole = perf_like()
    part = replace(whole, versions=whole.versions[:3], aliases={})
    reporter = run.Reporter(io.StringIO(), terminal=False)
    outcomes = run.import_all(alice, [part, snapshot(), whole], origin=ORIGIN, overwrite=False, dry_run=False,
                              reporter=reporter, jobs=1)
    assert [(o.name, o.status) for o in outcomes] == [("counted", IMPORTED), ("imported", IMPORTED)]
    assert outcomes[0].changes == len(events(model_name="counted"))
    assert get_model(alice, "counted").last_version == 10
    assert verify_chain(db.session())[1] is None
