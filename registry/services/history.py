"""What was served when: the version a stage or alias served at an instant, and each one's timeline,
replayed from the model's audit trail (``db/history.py`` reads it, with the indexes of migration 0010).

* The model is the one that holds the name *now*. Its history follows its id across renames (a model
  deleted earlier under the same name is another model with a chain of its own), and the name it had at
  the instant is part of the answer. Reading it needs READ on the model; a model the actor may not read
  is "not found", as for every read.
* A stage's answer is MLflow's rule, as today: the highest version number in the stage. Versions deleted
  since are still answered ("version 5 was in Production then"), with ``version_exists`` False.
* An event stamped exactly at the instant has happened by then. Instants must be timezone-aware.
* The trail is the only record of the past. Data written around the registry (``tests/perf/seed.py``, an
  import) may hold stages or aliases that no event recorded: then replaying the whole trail disagrees with
  what serving answers now, and the answer says so (``trail_matches_live`` False) rather than pass the
  replay off as the truth.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timezone

from .. import names
from ..auth import Actor
from ..db import history as trail
from ..db.history import Change, Event, Point
from ..db.loading import find_model
from ..db.unit_of_work import now, read_only
from ..errors import InvalidArgument, NotFound
from ..lifecycle import Permission, Stage, parse_stage
from ..orm import RegisteredModel
from .access import authorize

TIMELINE_STAGES = (Stage.PRODUCTION.value, Stage.STAGING.value)
_BATCH = 1000  # serving changes read per round trip while drawing a timeline
_BEGINNING = (datetime(1, 1, 1, tzinfo=timezone.utc), 0)


@dataclass(frozen=True, slots=True)
class HistoricAnswer:
    """What a serving lookup of a stage or alias would have returned at ``as_of``."""

    model_id: int
    model_name: str  # the model's name today
    name_then: str | None  # its name at ``as_of``; None: the model did not exist yet
    as_of: datetime
    stage: str | None  # exactly one of stage and alias
    alias: str | None
    version: int | None  # None: nothing was in the stage / behind the alias then
    run_id: str | None
    source: str | None
    since: datetime | None  # when that version got there: it entered the stage, the alias was set to it
    #                         (for ``latest``: it was created)
    event_id: int | None  # the audit event that put it there
    actor: str | None  # who made that change
    version_exists: bool | None  # whether the version still exists today (None when ``version`` is None)
    trail_matches_live: bool  # replaying the whole trail gives what serving answers now (see module doc)


@dataclass(frozen=True, slots=True)
class Segment:
    """A stretch of time during which a stage or alias served one version (or nothing: ``version`` None)."""

    version: int | None
    start: datetime  # when the serving answer became this one
    end: datetime | None  # when it stopped being it; None: it still is
    actor: str  # who made the change that started it
    event_id: int  # the audit event of that change
    run_id: str | None
    version_exists: bool | None  # None when ``version`` is None


@dataclass(frozen=True, slots=True)
class Track:
    kind: str  # "stage" or "alias"
    name: str  # "Production", "Staging", or the alias
    segments: tuple[Segment, ...]  # in time order, the first one in effect at ``since``
    replayed_version: int | None  # what the whole trail says it serves now
    live_version: int | None  # what serving answers now

    @property
    def trail_matches_live(self) -> bool:
        return self.replayed_version == self.live_version


@dataclass(frozen=True, slots=True)
class Timeline:
    """Production, Staging and every alias the model ever had, over [since, until]."""

    model_id: int
    model_name: str
    since: datetime | None
    until: datetime | None
    generated_at: datetime
    tracks: tuple[Track, ...]

    @property
    def trail_matches_live(self) -> bool:
        return all(track.trail_matches_live for track in self.tracks)


def _instant(value: object, field: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise InvalidArgument(f"{field} must be a timezone-aware date-time.", {"field": field})
    return value


def _readable(actor: Actor, model_name: str) -> RegisteredModel:
    model = find_model(names.model_name(model_name))
    authorize(actor, model, Permission.READ, "Reading")
    return model


def _now_point(model: RegisteredModel) -> Point:
    return trail.point_now(model.id, model.name, model.last_version)


def _holder(model_id: int, stage: str | None, alias: str | None, point: Point) -> Change | None:
    """The change that put the version serving the stage or alias at ``point`` there (None: nothing)."""
    if point.model_name is None:
        return None  # the model did not exist yet
    if stage is not None:
        version = trail.stage_answer(model_id, stage, point)
        if version is None:
            return None
        # A trail written around the registry may hold no entry: the version is still the answer.
        return trail.entry(model_id, stage, version, point) or Change(0, 0, None, None, version, None)
    if names.is_latest_alias(alias):
        version = trail.latest_version(model_id, point)
        return None if version is None else trail.creation(model_id, version)
    found = trail.alias_change(model_id, alias, point)
    return found[0] if found is not None and found[1] else None


def _live(model_id: int, stage: str | None, alias: str | None) -> int | None:
    if stage is not None:
        return trail.stage_answers(model_id).get(stage)
    if names.is_latest_alias(alias):
        return trail.live_latest(model_id)
    return trail.live_aliases(model_id).get(alias)


@read_only
def served_at(actor: Actor, model_name: str, *, stage: str | None = None, alias: str | None = None,
              as_of: datetime) -> HistoricAnswer:
    """The version a serving lookup of ``stage`` or ``alias`` (exactly one) would have returned at ``as_of``,
    which may not be in the future."""
    if (stage is None) == (alias is None):
        raise InvalidArgument("Give exactly one of stage and alias.", {"field": "stage"})
    as_of = _instant(as_of, "as_of")
    if as_of > now():
        raise InvalidArgument("as_of is in the future: the registry answers what was served, not what will be.",
                              {"field": "as_of"})
    stage = parse_stage(stage).value if stage is not None else None
    alias = names.alias_name(alias, for_write=False) if alias is not None else None
    model = _readable(actor, model_name)
    point = trail.point_at(model.id, model.last_version, as_of)
    holder = _holder(model.id, stage, alias, point)
    replayed = _holder(model.id, stage, alias, _now_point(model))
    matches = (replayed.version if replayed else None) == _live(model.id, stage, alias)
    source, exists = trail.version_source(model.id, holder.version) if holder else (None, None)
    return HistoricAnswer(
        model_id=model.id, model_name=model.name, name_then=point.model_name, as_of=as_of, stage=stage, alias=alias,
        version=holder.version if holder else None, run_id=holder.run_id if holder else None, source=source,
        since=holder.occurred_at if holder else None, event_id=(holder.id or None) if holder else None,
        actor=holder.actor if holder else None, version_exists=exists, trail_matches_live=matches,
    )


def nothing_served(answer: HistoricAnswer) -> NotFound:
    """Why ``answer`` has no version, in words (the API's 404; the console may say the same)."""
    when = answer.as_of.astimezone(timezone.utc).isoformat()
    details = {"model": answer.model_name, "as_of": when}
    if answer.name_then is None:
        return NotFound(f"Registered model {answer.model_name} did not exist yet at {when}.", details)
    if answer.stage is not None:
        return NotFound(f"Registered model {answer.model_name} had no version in stage {answer.stage} at {when}.",
                        {**details, "stage": answer.stage})
    if names.is_latest_alias(answer.alias):
        return NotFound(f"Registered model {answer.model_name} had no versions at {when}.", details)
    return NotFound(f"Registered model alias {answer.alias} was not set at {when}.", {**details, "alias": answer.alias})


# --- The timeline ---------------------------------------------------------------------------------------

class _Drawing:
    """One track's segments as they are found, oldest first (run ids and ``version_exists`` are filled in
    at the end). ``members``: a stage's members, kept only while replaying a trail without ``serving``."""

    def __init__(self, kind: str, name: str) -> None:
        self.kind, self.name = kind, name
        self.segments: list[Segment] = []
        self.members: set[int] | None = None
        self.closed = False  # its segment in effect at ``until`` has ended: nothing more to draw

    @property
    def current(self) -> int | None:
        return self.segments[-1].version if self.segments else None

    def start(self, version: int | None, started_by: Change | Event) -> None:
        self.segments.append(Segment(version, started_by.occurred_at, None, started_by.actor, started_by.id,
                                     None, None))

    def change(self, version: int | None, started_by: Change | Event, until: datetime | None) -> None:
        """The answer is ``version`` from ``started_by`` on (if that differs from the current one)."""
        if self.closed or (self.segments and version == self.current) or (not self.segments and version is None):
            return
        if self.segments:
            self.segments[-1] = replace(self.segments[-1], end=started_by.occurred_at)
        if until is not None and started_by.occurred_at > until:
            self.closed = True
        else:
            self.start(version, started_by)


def _first_segments(model_id: int, drawings: list[_Drawing], point: Point) -> None:
    """Each track's segment in effect at ``point`` (none for a track that had never served anything)."""
    if point.model_name is None:
        return
    for drawing in drawings:
        if drawing.kind == "alias":
            found = trail.alias_change(model_id, drawing.name, point)
            if found is not None:
                change, is_set = found
                drawing.start(change.version if is_set else None, change)
            continue
        version = trail.stage_answer(model_id, drawing.name, point)
        started_by = trail.became(model_id, drawing.name, version, point)
        if started_by is not None:
            drawing.start(version, started_by)


def _enters(event: Event, stage: str) -> bool:
    return event.action == "version.transitioned" and event.to_stage == stage and event.from_stage != stage


def _leaves(event: Event, stage: str) -> bool:
    return (event.action in ("version.transitioned", "version.deleted") and event.from_stage == stage
            and event.to_stage != stage)


def _apply_stage(model: RegisteredModel, drawing: _Drawing, group: list[Event], until: datetime | None) -> None:
    """One instant's changes (one transaction's: a promotion and the archiving it did) on a stage."""
    touching = [e for e in group if _enters(e, drawing.name) or _leaves(e, drawing.name)]
    if not touching:
        return
    recorded = touching[-1].serving
    if recorded is not None:
        drawing.members = None
        answer = recorded.get(drawing.name)
    else:
        # A trail without ``serving``: keep the stage's members (counted once) and move them along.
        if drawing.members is None:
            before = trail.point_before(touching[0], model.name, model.last_version)
            drawing.members = set(trail.stage_members(model.id, drawing.name, before))
        for event in touching:
            (drawing.members.add if _enters(event, drawing.name) else drawing.members.discard)(event.version)
        answer = max(drawing.members, default=None)
    # Started by the move that brought the new answer in, else by the last one (a departure).
    started_by = next((e for e in reversed(touching) if e.version == answer and _enters(e, drawing.name)),
                      touching[-1])
    drawing.change(answer, started_by, until)


def _apply_alias(drawing: _Drawing, group: list[Event], until: datetime | None) -> None:
    changes = [e for e in group if e.alias == drawing.name and e.action in ("alias.set", "alias.deleted")]
    if changes:
        last = changes[-1]
        drawing.change(last.version if last.action == "alias.set" else None, last, until)


def _groups(model_id: int, after: tuple[datetime, int]):
    """The serving changes after ``after``, grouped by instant (a transaction stamps all its events alike)."""
    group: list[Event] = []
    while True:
        batch = trail.changes_after(model_id, after, _BATCH)
        for event in batch:
            if group and event.occurred_at != group[0].occurred_at:
                yield group
                group = []
            group.append(event)
        if len(batch) < _BATCH:
            break
        after = (batch[-1].occurred_at, batch[-1].seq)
    if group:
        yield group


@read_only
def timeline(actor: Actor, model_name: str, *, since: datetime | None = None,
             until: datetime | None = None) -> Timeline:
    """For Production, Staging and every alias the model ever had: the segments overlapping [since, until]
    (each bound optional), in time order; the first is the one in effect at ``since``, the last one ends
    when it stopped (after ``until`` too) or is still current. The work grows with the number of serving
    changes after ``since``: pass it for a long history."""
    since = _instant(since, "since") if since is not None else None
    until = _instant(until, "until") if until is not None else None
    if since is not None and until is not None and since > until:
        raise InvalidArgument("since is later than until.", {"field": "since"})
    model = _readable(actor, model_name)
    generated_at = now()
    live = trail.live_aliases(model.id)
    aliases = sorted(set(trail.aliases_ever(model.id)) | set(live))
    drawings = [_Drawing("stage", s) for s in TIMELINE_STAGES] + [_Drawing("alias", a) for a in aliases]
    after = _BEGINNING
    if since is not None:
        point = trail.point_at(model.id, model.last_version, since)
        _first_segments(model.id, drawings, point)
        after = (since, trail.END)  # every change stamped after ``since``
    for group in _groups(model.id, after):
        for drawing in drawings:
            if drawing.kind == "stage":
                _apply_stage(model, drawing, group, until)
            else:
                _apply_alias(drawing, group, until)
        if until is not None and group[0].occurred_at > until and all(d.closed for d in drawings):
            break
    return _finish(model, since, until, generated_at, drawings, live)


def _finish(model: RegisteredModel, since: datetime | None, until: datetime | None, generated_at: datetime,
            drawings: list[_Drawing], live_aliases: dict[str, int]) -> Timeline:
    versions = {s.version for d in drawings for s in d.segments if s.version is not None}
    existing = trail.existing_versions(model.id, versions)
    run_ids = trail.run_ids(model.id, versions)
    live_stages = trail.stage_answers(model.id)
    today = _now_point(model)
    tracks = []
    for d in drawings:
        if d.kind == "stage":
            replayed, live = trail.stage_answer(model.id, d.name, today), live_stages.get(d.name)
        else:
            holder = _holder(model.id, None, d.name, today)
            replayed, live = (holder.version if holder else None), live_aliases.get(d.name)
        segments = tuple(s if s.version is None else replace(s, run_id=run_ids.get(s.version),
                                                              version_exists=s.version in existing)
                         for s in d.segments)
        tracks.append(Track(d.kind, d.name, segments, replayed, live))
    return Timeline(model.id, model.name, since, until, generated_at, tuple(tracks))
