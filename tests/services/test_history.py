"""What was served when (services/history.py): the as-of answer and the stage/alias timeline, replayed from the
audit trail. Instants are taken between the steps (``mark``), so each falls between two changes; the trail's
own timestamps give the edge cases (an event exactly at ``as_of``)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import text

from registry.auth import Actor
from registry.errors import InvalidArgument, NotFound
from registry.extensions import db
from registry.services import history
from registry.services.aliases import delete_alias, set_alias
from registry.services.history import served_at, timeline
from registry.services.models import create_model, update_model
from registry.services.permissions import set_registry_permissions
from registry.services.stages import transition_stage
from registry.services.versions import create_version, delete_version

from .support import ROOT, events, person


def mark() -> datetime:
    return datetime.now(timezone.utc)


def at(when: datetime, model: str = "churn", **lookup) -> int | None:
    return served_at(ROOT, model, as_of=when, **lookup).version


def new_model(name: str = "churn", count: int = 3) -> None:
    create_model(ROOT, name)
    for n in range(1, count + 1):
        create_version(ROOT, name, f"s3://{name}/{n}", run_id=f"run-{n}")


def promote(version: int, stage: str = "Production", model: str = "churn", archive: bool = True) -> None:
    transition_stage(ROOT, model, version, stage, archive_existing_versions=archive)


def last(action: str, model: str = "churn"):
    return [e for e in events(model_name=model) if e.action == action][-1]


def track(result: history.Timeline, name: str) -> history.Track:
    return next(t for t in result.tracks if t.name == name)


def versions_of(t: history.Track) -> list[int | None]:
    return [s.version for s in t.segments]


# --- the as-of answer -------------------------------------------------------------------------------------

def test_promotions_archiving_the_previous_version_and_a_rollback(ctx):
    before_model = mark()
    new_model()
    created = mark()
    promote(1)
    first = mark()
    promote(2)
    second = mark()
    promote(3)
    third = mark()
    promote(2)  # roll back: 2 comes back from Archived, archiving 3
    rolled_back = mark()

    assert [at(t, stage="Production") for t in (created, first, second, third, rolled_back)] == [None, 1, 2, 3, 2]
    answer = served_at(ROOT, "churn", stage="production", as_of=rolled_back)
    rollback = last("version.transitioned")
    assert (answer.stage, answer.version, answer.run_id, answer.source) == ("Production", 2, "run-2", "s3://churn/2")
    assert (answer.event_id, answer.since, answer.actor) == (rollback.id, rollback.occurred_at, "root")
    assert answer.version_exists and answer.trail_matches_live and answer.name_then == "churn"
    assert at(rolled_back, stage="Archived") == 3
    nothing = served_at(ROOT, "churn", stage="Production", as_of=before_model)
    assert (nothing.name_then, nothing.version, nothing.since, nothing.event_id) == (None, None, None, None)


def test_the_highest_version_in_the_stage_serves_and_a_lower_one_takes_over_when_it_leaves(ctx):
    new_model()
    promote(1, archive=False)
    promote(2, archive=False)
    both = mark()
    promote(2, "Archived", archive=False)
    after = mark()

    assert at(both, stage="Production") == 2
    fallen_back = served_at(ROOT, "churn", stage="Production", as_of=after)
    assert fallen_back.version == 1
    # ``since`` is when version 1 got there (it entered first); the timeline shows when it took over.
    assert fallen_back.since == [e for e in events(model_name="churn") if e.version == 1 and e.to_stage == "Production"][0].occurred_at
    segments = track(timeline(ROOT, "churn"), "Production").segments
    assert [(s.version, s.event_id) for s in segments] == [(1, segments[0].event_id), (2, segments[1].event_id),
                                                            (1, last("version.transitioned").id)]


def test_promoting_a_version_to_the_stage_it_is_in_does_not_move_its_since(ctx):
    new_model()
    promote(1, archive=False)
    promote(2, archive=False)
    entered = last("version.transitioned")
    promote(2)  # Production -> Production, archiving version 1

    answer = served_at(ROOT, "churn", stage="Production", as_of=mark())
    assert (answer.version, answer.event_id, answer.since) == (2, entered.id, entered.occurred_at)
    assert at(mark(), stage="Archived") == 1


def test_a_version_deleted_after_it_served_production_is_still_answered(ctx):
    new_model()
    promote(2)
    serving = mark()
    delete_version(ROOT, "churn", 2)
    gone = mark()

    then = served_at(ROOT, "churn", stage="Production", as_of=serving)
    assert (then.version, then.run_id, then.source, then.version_exists) == (2, "run-2", "s3://churn/2", False)
    assert at(gone, stage="Production") is None
    assert at(serving, alias="latest") == 3


def test_an_alias_that_moved_twice_and_was_deleted(ctx):
    new_model()
    set_alias(ROOT, "churn", "champion", 1)
    first = mark()
    set_alias(ROOT, "churn", "champion", 2)
    second = mark()
    set_alias(ROOT, "churn", "champion", 3)
    third = mark()
    delete_alias(ROOT, "churn", "champion")
    deleted = mark()

    assert [at(t, alias="champion") for t in (first, second, third, deleted)] == [1, 2, 3, None]
    moved = served_at(ROOT, "churn", alias="champion", as_of=third)
    assert (moved.alias, moved.stage, moved.event_id) == ("champion", None, last("alias.set").id)
    champion = track(timeline(ROOT, "churn"), "champion")
    assert versions_of(champion) == [1, 2, 3, None]
    assert [s.end for s in champion.segments] == [s.start for s in champion.segments[1:]] + [None]
    assert champion.segments[-1].event_id == last("alias.deleted").id


def test_an_alias_goes_with_the_version_it_pointed_at(ctx):
    new_model()
    set_alias(ROOT, "churn", "canary", 3)
    pointing = mark()
    delete_version(ROOT, "churn", 3)

    assert at(pointing, alias="canary") == 3
    assert at(mark(), alias="canary") is None
    assert at(mark(), alias="latest") == 2


def test_a_renamed_model_answers_under_its_new_name_for_the_time_before_the_rename(ctx):
    new_model()
    promote(1)
    before_rename = mark()
    update_model(ROOT, "churn", new_name="attrition")
    after_rename = mark()

    then = served_at(ROOT, "attrition", stage="Production", as_of=before_rename)
    assert (then.model_name, then.name_then, then.version) == ("attrition", "churn", 1)
    assert served_at(ROOT, "attrition", stage="Production", as_of=after_rename).name_then == "attrition"
    with pytest.raises(NotFound):
        served_at(ROOT, "churn", stage="Production", as_of=before_rename)
    # A new model under the old name is another model: it did not exist back then.
    create_model(ROOT, "churn")
    assert served_at(ROOT, "churn", stage="Production", as_of=before_rename).name_then is None


def test_an_event_stamped_exactly_at_as_of_has_happened(ctx):
    new_model()
    promote(1)
    promote(2)
    moment = last("version.transitioned").occurred_at

    assert at(moment, stage="Production") == 2
    assert at(moment - timedelta(microseconds=1), stage="Production") == 1


def test_latest_and_stage_none_as_of(ctx):
    new_model(count=2)
    two = mark()
    promote(2, "Staging")
    staged = mark()
    create_version(ROOT, "churn", "s3://churn/3")
    three = mark()

    assert [at(t, stage="None") for t in (two, staged, three)] == [2, 1, 3]
    assert [at(t, alias="latest") for t in (two, staged, three)] == [2, 2, 3]
    assert at(staged, alias="LATEST") == 2


def test_a_model_the_actor_may_not_read_is_not_found_like_a_missing_one(ctx):
    new_model()
    person("eve")
    set_registry_permissions(ROOT, [])  # nobody but admins reads now

    for call in (lambda name: served_at(Actor("eve"), name, stage="Production", as_of=mark()),
                 lambda name: timeline(Actor("eve"), name)):
        with pytest.raises(NotFound) as hidden:
            call("churn")
        with pytest.raises(NotFound) as missing:
            served_at(ROOT, "nobody-has-this", stage="Production", as_of=mark())
        assert hidden.value.message == missing.value.message.replace("nobody-has-this", "churn")


@pytest.mark.parametrize("lookup", [
    {"as_of": datetime(2026, 1, 1)},  # naive
    {"as_of": datetime.now(timezone.utc) + timedelta(days=1)},  # the future (computed at collection: a day ahead)
    {"as_of": datetime.now(timezone.utc), "alias": "champion"},  # both a stage and an alias
    {"as_of": datetime.now(timezone.utc), "stage": None},  # neither
    {"as_of": datetime.now(timezone.utc), "stage": "Canary"},
])
def test_refused_questions(ctx, lookup):
    new_model()
    with pytest.raises(InvalidArgument):
        served_at(ROOT, "churn", **{"stage": "Production", **lookup})


def test_stages_set_outside_the_registry_are_flagged_not_passed_off_as_history(ctx):
    new_model()
    promote(1)
    # What tests/perf/seed.py or an import does: a stage no event recorded.
    db.session.execute(text("UPDATE model_versions SET stage = 'Production' WHERE version = 3"))
    db.session.commit()

    answer = served_at(ROOT, "churn", stage="Production", as_of=mark())
    assert (answer.version, answer.trail_matches_live) == (1, False)
    shown = timeline(ROOT, "churn")
    production = track(shown, "Production")
    assert (production.replayed_version, production.live_version, production.trail_matches_live) == (1, 3, False)
    assert not shown.trail_matches_live
    assert track(shown, "Staging").trail_matches_live


# --- the timeline -----------------------------------------------------------------------------------------

def test_timeline_draws_every_stage_and_alias_with_who_started_each_segment(ctx):
    new_model()
    promote(1, "Staging")
    promote(1)
    set_alias(ROOT, "churn", "champion", 1)
    promote(2, "Staging")
    promote(2)
    set_alias(ROOT, "churn", "champion", 2)
    delete_alias(ROOT, "churn", "champion")
    set_alias(ROOT, "churn", "shadow", 3)

    shown = timeline(ROOT, "churn")
    assert [t.name for t in shown.tracks] == ["Production", "Staging", "champion", "shadow"]
    assert versions_of(track(shown, "Production")) == [1, 2]
    assert versions_of(track(shown, "Staging")) == [1, None, 2, None]
    assert versions_of(track(shown, "champion")) == [1, 2, None]
    assert versions_of(track(shown, "shadow")) == [3]
    moves = {e.id: e for e in events(model_name="churn")}
    for t in shown.tracks:
        for segment in t.segments:
            assert (segment.start, segment.actor) == (moves[segment.event_id].occurred_at, "root")
            if segment.version is not None:
                assert segment.run_id == f"run-{segment.version}" and segment.version_exists
    assert shown.trail_matches_live and track(shown, "Production").live_version == 2


def test_timeline_window_starts_with_the_segment_in_effect_and_ends_with_the_true_end(ctx):
    new_model()
    promote(1, archive=False)
    promote(2, archive=False)
    promote(2, "Archived", archive=False)  # 1 takes over again: that departure starts its segment
    since = mark()
    promote(3)
    until = mark()
    promote(1)
    promote(2)

    production = track(timeline(ROOT, "churn", since=since, until=until), "Production")
    departure = [e for e in events(model_name="churn") if e.version == 2 and e.to_stage == "Archived"][0]
    assert versions_of(production) == [1, 3]
    assert (production.segments[0].start, production.segments[0].event_id) == (departure.occurred_at, departure.id)
    assert production.segments[0].start < since
    # Version 3's segment ended after ``until``, when version 1 came back: its true end is shown.
    comeback = [e for e in events(model_name="churn") if e.version == 1 and e.to_stage == "Production"][-1]
    assert production.segments[-1].end == comeback.occurred_at > until


def test_timeline_of_an_emptied_stage_starts_with_the_emptying(ctx):
    new_model()
    promote(1, "Staging")
    promote(1)  # Staging is empty from here
    since = mark()

    staging = track(timeline(ROOT, "churn", since=since), "Staging")
    assert versions_of(staging) == [None]
    assert staging.segments[0].event_id == last("version.transitioned").id


def test_timeline_refuses_a_window_that_ends_before_it_starts(ctx):
    new_model()
    with pytest.raises(InvalidArgument):
        timeline(ROOT, "churn", since=mark(), until=mark() - timedelta(seconds=1))
