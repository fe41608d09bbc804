"""What was served when, checked against the registry's rules kept by hand (``Reference``): random histories
of transitions (with and without archiving), deletions and alias moves, asked at every step through both the
as-of answer and the timeline (whole, and in windows), on a trail that records ``serving`` and on one written
before it did (which is replayed from the moves alone)."""
from __future__ import annotations

import random
from datetime import datetime

import pytest

from registry.db import history as trail
from registry.services import transitions, versions as versions_service
from registry.services.aliases import delete_alias, set_alias
from registry.services.history import served_at, timeline
from registry.services.models import create_model
from registry.services.stages import transition_stage
from registry.services.versions import create_version, delete_version

from .support import ROOT, events
from .test_history import at, last, mark, new_model, promote, track, versions_of


class Reference:
    """The registry's serving rules, kept by hand: the stages of each version, and the aliases."""

    def __init__(self) -> None:
        self.stages: dict[int, str] = {}
        self.aliases: dict[str, int] = {}

    def answers(self) -> dict[str, int | None]:
        found = {s: max((v for v, at in self.stages.items() if at == s), default=None)
                 for s in ("None", "Staging", "Production", "Archived")}
        return {**found, **{a: self.aliases.get(a) for a in ("champion", "canary")},
                "latest": max(self.stages, default=None)}


def play(name: str, seed: int) -> tuple[list[datetime], list[dict[str, int | None]]]:
    """A random history on a new model ``name``: returns an instant after each step and the answers then."""
    rng = random.Random(seed)
    ref = Reference()
    create_model(ROOT, name)
    marks, expected = [], []
    for step in range(60):
        choice = rng.random()
        if choice < 0.15 or not ref.stages:
            ref.stages[create_version(ROOT, name, f"s3://{name}/{step}").version] = "None"
        elif choice < 0.7:
            version = rng.choice(sorted(ref.stages))
            stage = rng.choice(["Staging", "Production", "Archived", "None"])
            archive = stage in ("Staging", "Production") and rng.random() < 0.5
            transition_stage(ROOT, name, version, stage, archive_existing_versions=archive)
            for other in [v for v, s in ref.stages.items() if archive and s == stage and v != version]:
                ref.stages[other] = "Archived"
            ref.stages[version] = stage
        elif choice < 0.9:
            alias, version = rng.choice(["champion", "canary"]), rng.choice(sorted(ref.stages))
            set_alias(ROOT, name, alias, version)
            ref.aliases[alias] = version
        elif choice < 0.95:
            alias = rng.choice(["champion", "canary"])
            delete_alias(ROOT, name, alias)
            ref.aliases.pop(alias, None)
        else:
            version = rng.choice(sorted(ref.stages))
            delete_version(ROOT, name, version)
            del ref.stages[version]
            ref.aliases = {a: v for a, v in ref.aliases.items() if v != version}
        marks.append(mark())
        expected.append(ref.answers())
    return marks, expected


def check(name: str, marks: list[datetime], expected: list[dict[str, int | None]]) -> None:
    for when, answers in zip(marks, expected):
        for key, version in answers.items():
            lookup = {"stage": key} if key[0].isupper() else {"alias": key}
            assert at(when, name, **lookup) == version, (name, when, key)
    shown = timeline(ROOT, name)
    assert shown.trail_matches_live
    for name_of_track in ("Production", "Staging", "champion", "canary"):
        drawn = track(shown, name_of_track) if any(t.name == name_of_track for t in shown.tracks) else None
        wanted = [a[name_of_track] for a in expected]
        changes = [v for i, v in enumerate(wanted) if v != (wanted[i - 1] if i else None)]
        assert (versions_of(drawn) if drawn else []) == changes, name_of_track
    # Any window: its segments are the ones of the whole timeline that overlap it.
    for first in range(5, len(marks) - 10, 5):
        since, until = marks[first], marks[first + 7]
        window = timeline(ROOT, name, since=since, until=until)
        for t in window.tracks:
            overlapping = [s for s in track(shown, t.name).segments
                           if s.start <= until and (s.end is None or s.end > since)]
            assert list(t.segments) == overlapping, (t.name, first)


@pytest.mark.parametrize("seed", [3, 11])
def test_random_histories_agree_with_the_rules_whether_or_not_the_trail_recorded_serving(ctx, monkeypatch,
                                                                                         seed):
    recorded = play("recorded", seed)
    # A trail written before transitions recorded ``serving`` is replayed from the moves alone.
    monkeypatch.setattr(transitions, "serving_details", lambda model_id: {})
    monkeypatch.setattr(versions_service, "serving_details", lambda model_id: {})
    legacy = play("legacy", seed)
    assert all("serving" not in e.details for e in events(model_name="legacy"))

    check("recorded", *recorded)
    check("legacy", *legacy)


def test_recorded_serving_is_what_each_stage_served_after_the_change(ctx):
    new_model()
    promote(1, "Staging")
    promote(2, "Staging", archive=False)

    assert last("version.transitioned").details["serving"] == {"None": 3, "Staging": 2, "Production": None,
                                                               "Archived": None}
    delete_version(ROOT, "churn", 2)
    assert last("version.deleted").details["serving"] == trail.stage_answers(
        served_at(ROOT, "churn", stage="Staging", as_of=mark()).model_id) == {
        "None": 3, "Staging": 1, "Production": None, "Archived": None}
