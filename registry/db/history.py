"""A model's serving history read back from its audit trail: the queries behind ``services/history.py``,
served by the partial indexes of migration 0010.

**A point in the chain.** A model's events are ordered by ``seq``, its chain. The state *as of* an instant
``t`` is the chain up to the last event stamped at or before ``t`` (an event stamped exactly ``t`` counts).
Writers stamp events after taking the model's row lock and hold it to commit, so along one chain the stamps
and ``seq`` agree; if clocks ever disagreed (several hosts), (occurred_at, seq) order decides. Version
creations are left out of the time index (a model may have 100,000): the highest version created by ``t``
is found by bisection over version numbers, which are handed out in creation order without gaps.

**Stages.** Every transition and deletion records what each stage serves once it is made (``details.
serving``, by ``stage_answers``), so a stage's answer at a point is read from the last such event before it;
stage None also changes with each creation (the new version is the highest, and in None). Events recorded
before the registry wrote ``serving`` (and trails written around it) are replayed instead (``_replayed``):
the highest versions that had entered the stage are tried from the top, and only if none of them is still
there is the stage's whole membership counted, which costs a pass over everything that ever passed through.
**Aliases**: the last alias.set / alias.deleted by then (deleting a version records its aliases' deletion).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import text

from ..orm.audit import SERVING_CHANGES, VERSION_CHANGES
from .unit_of_work import session

END = 2**31 - 1  # a point after every event (``seq`` is an integer column)
_FOREVER = datetime(9999, 12, 31, tzinfo=timezone.utc)
SERVED_STAGES = ("None", "Staging", "Production", "Archived")
_MOVES = "'version.transitioned', 'version.deleted'"


@dataclass(frozen=True, slots=True)
class Point:
    """A point in a model's chain: the events up to ``seq`` have happened (0: none had)."""

    seq: int
    at: datetime  # no event after the point is stamped earlier than this
    model_name: str | None  # the model's name then; None: it did not exist yet
    highest_version: int  # the highest version number created by then (0: none)
    created_seq: int  # where that version's creation is in the chain (0: none)


@dataclass(frozen=True, slots=True)
class Change:
    """An audit event that changed what a stage or alias served, as far as the history needs it."""

    id: int
    seq: int
    occurred_at: datetime
    actor: str
    version: int | None
    run_id: str | None


@dataclass(frozen=True, slots=True)
class Event:
    """One of a model's serving changes (``changes_after``); ``alias`` and ``serving`` (what Staging and
    Production served after it; None when it did not record that) from its details."""

    id: int
    seq: int
    occurred_at: datetime
    actor: str
    action: str
    version: int | None
    from_stage: str | None
    to_stage: str | None
    alias: str | None
    serving: dict | None
    run_id: str | None
    model_name: str | None


_CHANGE = "id, seq, occurred_at, actor, version, run_id"

# Bisection over version numbers 1..:last for the highest one created by :t (one round trip, about
# log2(:last) index probes), next to the last serving change stamped by :t.
_POINT = text(f"""
WITH RECURSIVE search(lo, hi) AS (
    SELECT 0, CAST(:last AS integer)
    UNION ALL
    SELECT CASE WHEN f.found THEN (s.lo + s.hi + 1) / 2 ELSE s.lo END,
           CASE WHEN f.found THEN s.hi ELSE (s.lo + s.hi + 1) / 2 - 1 END
    FROM search s CROSS JOIN LATERAL (SELECT EXISTS (
        SELECT 1 FROM audit_events e
        WHERE e.model_id = :m AND e.action = 'version.created' AND e.version = (s.lo + s.hi + 1) / 2
          AND e.occurred_at <= :t)) f(found)
    WHERE s.lo < s.hi
)
SELECT top.version AS highest, ch.seq AS changed_seq, ch.model_name AS changed_name,
       cr.seq AS created_seq, cr.model_name AS created_name
FROM (SELECT lo AS version FROM search WHERE lo >= hi) top
LEFT JOIN LATERAL (
    SELECT seq, model_name FROM audit_events
    WHERE model_id = :m AND action IN ({SERVING_CHANGES}) AND occurred_at <= :t
    ORDER BY occurred_at DESC, seq DESC LIMIT 1
) ch ON true
LEFT JOIN LATERAL (
    SELECT seq, model_name FROM audit_events
    WHERE model_id = :m AND action = 'version.created' AND version = top.version
    ORDER BY seq DESC LIMIT 1
) cr ON true
""")

# The last transition or deletion by the point, with what it recorded each stage serves.
_LAST_MOVE = text(f"""
SELECT seq, details -> 'serving' AS serving FROM audit_events
WHERE model_id = :m AND action IN ({_MOVES}) AND occurred_at <= :t AND seq <= :c
ORDER BY occurred_at DESC, seq DESC LIMIT 1
""")

# The event that last put version :v into the stage by :c; for stage None, that may be its creation. A move
# from the stage to itself (which archives the others) is not an entry, unless the trail has nothing else.
_ENTRY = text(f"""
SELECT {_CHANGE} FROM audit_events
WHERE model_id = :m AND version = :v AND action IN ('version.created', 'version.transitioned')
  AND to_stage = :stage AND seq <= :c
ORDER BY from_stage IS DISTINCT FROM :stage DESC, seq DESC LIMIT 1
""")

# The last time a version above :above left the stage, in (:after, :c]: when the stage's answer fell to a
# lower version (or, with :above 0 and :after 0, to nothing).
_LEFT = text(f"""
SELECT {_CHANGE} FROM audit_events
WHERE model_id = :m AND action IN ({_MOVES}) AND from_stage = :stage AND to_stage IS DISTINCT FROM :stage
  AND version > :above AND seq > :after AND seq <= :c
ORDER BY seq DESC LIMIT 1
""")

# Where each of the versions :versions (highest first) stood at :c: their last creation, transition or
# deletion by then. The first that qualifies is the answer (ORDER BY the array's order: 16 rows sorted).
_WALK = text(f"""
SELECT c.version, s.action, s.to_stage
FROM unnest(CAST(:versions AS integer[])) WITH ORDINALITY AS c(version, place)
CROSS JOIN LATERAL (
    SELECT h.action, h.to_stage FROM audit_events h
    WHERE h.model_id = :m AND h.version = c.version AND h.action IN ({VERSION_CHANGES}) AND h.seq <= :c
    ORDER BY h.seq DESC LIMIT 1
) s
ORDER BY c.place
""")
_WALK_STEP = 16

# Replay of a trail without ``serving``: the highest versions that had entered the stage by :c, tried from
# the top (candidates leave the index in order, and the nested loop keeps it: no sort, LIMIT 1 stops early).
_TOP_OF_STAGE = text(f"""
SELECT c.version FROM (
    SELECT DISTINCT e.version FROM audit_events e
    WHERE e.model_id = :m AND e.action = 'version.transitioned' AND e.to_stage = :stage AND e.seq <= :c
    ORDER BY e.version DESC LIMIT :budget
) c CROSS JOIN LATERAL (
    SELECT h.action, h.to_stage FROM audit_events h
    WHERE h.model_id = :m AND h.version = c.version AND h.action IN ({VERSION_CHANGES}) AND h.seq <= :c
    ORDER BY h.seq DESC LIMIT 1
) s
WHERE s.action <> 'version.deleted' AND s.to_stage = :stage ORDER BY c.version DESC LIMIT 1
""")
_BUDGET = 32

# ... and when those all left: the stage's members counted, a version being in it when it entered more
# often than it left (a move from the stage to itself counts once each way), from two index-only scans.
_MEMBERS = text(f"""
WITH moves AS (
    SELECT version, 1 AS d FROM audit_events
    WHERE model_id = :m AND action = 'version.transitioned' AND to_stage = :stage AND seq <= :c
    UNION ALL
    SELECT version, -1 FROM audit_events
    WHERE model_id = :m AND action IN ({_MOVES}) AND from_stage = :stage AND seq <= :c
)
SELECT version FROM moves GROUP BY version HAVING sum(d) > 0 ORDER BY version
""")

_ALIAS = text(f"""
SELECT {_CHANGE}, action FROM audit_events
WHERE model_id = :m AND action IN ('alias.set', 'alias.deleted') AND (details ->> 'alias') = :alias
  AND seq <= :c
ORDER BY seq DESC LIMIT 1
""")

_ALIASES_EVER = text("""
SELECT DISTINCT (details ->> 'alias') AS alias FROM audit_events
WHERE model_id = :m AND action IN ('alias.set', 'alias.deleted')
""")

# What the timeline needs of ``serving``, as plain columns (parsing each event's JSON costs more than the rest).
_CHANGES_AFTER = text(f"""
SELECT id, seq, occurred_at, actor, action, version, from_stage, to_stage, details ->> 'alias' AS alias,
       details ? 'serving' AS recorded, CAST(details -> 'serving' ->> 'Staging' AS integer) AS staging,
       CAST(details -> 'serving' ->> 'Production' AS integer) AS production, run_id, model_name
FROM audit_events
WHERE model_id = :m AND action IN ({SERVING_CHANGES}) AND (occurred_at, seq) > (:after_at, :after_seq)
ORDER BY occurred_at, seq LIMIT :n
""")


def _change(row) -> Change | None:
    return None if row is None else Change(row.id, row.seq, row.occurred_at, row.actor, row.version, row.run_id)


def point_at(model_id: int, last_version: int, when: datetime) -> Point:
    """The point of the chain that the instant ``when`` falls on (see the module doc)."""
    row = session().execute(_POINT, {"m": model_id, "last": last_version, "t": when}).one()
    changed, created = row.changed_seq or 0, row.created_seq or 0
    name = row.changed_name if changed >= created else row.created_name
    return Point(max(changed, created), when, name, row.highest or 0, created)


def point_now(model_id: int, name: str, last_version: int) -> Point:
    """After every event so far."""
    created = session().execute(text(
        "SELECT max(seq) FROM audit_events WHERE model_id = :m AND version = :v AND action = 'version.created'"
    ), {"m": model_id, "v": last_version}).scalar()
    return Point(END, _FOREVER, name, last_version, created or 0)


def point_before(event: Event, name: str, highest_version: int) -> Point:
    """Just before ``event`` (for replaying a trail without ``serving``, which counts by ``seq`` alone)."""
    return Point(event.seq - 1, event.occurred_at, name, highest_version, 0)


def stage_answer(model_id: int, stage: str, point: Point) -> int | None:
    """The version serving ``stage`` at ``point`` (None: nothing)."""
    if point.model_name is None:
        return None
    move = session().execute(_LAST_MOVE, {"m": model_id, "t": point.at, "c": point.seq}).first()
    if stage == "None" and point.highest_version and (move is None or point.created_seq > move.seq):
        return point.highest_version  # created after the last move: the highest version, in None
    if move is None:
        return None  # nothing ever moved
    if move.serving is not None:
        return move.serving.get(stage)
    return _replayed(model_id, stage, point)


def _replayed(model_id: int, stage: str, point: Point) -> int | None:
    if stage == "None":
        return _walk_down(model_id, point, lambda action, to_stage: action != "version.deleted" and to_stage == "None")
    params = {"m": model_id, "stage": stage, "c": point.seq, "budget": _BUDGET}
    found = session().execute(_TOP_OF_STAGE, params).scalar()
    if found is None:
        members = stage_members(model_id, stage, point)
        found = members[-1] if members else None
    return found


def stage_members(model_id: int, stage: str, point: Point) -> list[int]:
    """Every version in ``stage`` at ``point``, ascending, replayed from the trail alone (not for None)."""
    return list(session().execute(_MEMBERS, {"m": model_id, "stage": stage, "c": point.seq}).scalars())


def _walk_down(model_id: int, point: Point, qualifies) -> int | None:
    """The highest version created by ``point`` whose standing then ``qualifies(action, to_stage)``."""
    top = point.highest_version
    while top > 0:
        versions = list(range(top, max(top - _WALK_STEP, 0), -1))
        for row in session().execute(_WALK, {"m": model_id, "versions": versions, "c": point.seq}):
            if qualifies(row.action, row.to_stage):
                return row.version
        top -= _WALK_STEP
    return None


def latest_version(model_id: int, point: Point) -> int | None:
    """The highest version that existed at ``point`` (the reserved alias ``latest``)."""
    return _walk_down(model_id, point, lambda action, _: action != "version.deleted")


def entry(model_id: int, stage: str, version: int, point: Point) -> Change | None:
    """The event that last put ``version`` into ``stage`` by ``point`` (for None: maybe its creation)."""
    return _change(session().execute(_ENTRY, {"m": model_id, "stage": stage, "v": version, "c": point.seq}).first())


def creation(model_id: int, version: int) -> Change | None:
    return entry(model_id, "None", version, Point(END, _FOREVER, None, 0, 0))


def became(model_id: int, stage: str, version: int | None, point: Point) -> Change | None:
    """The change after which ``stage`` served ``version`` (None: nothing) up to ``point``: its entry, or the
    later departure of the last version above it; for nothing, the departure that emptied the stage (None
    if nothing was ever there)."""
    if version is None:
        return _change(session().execute(_LEFT, {"m": model_id, "stage": stage, "above": 0, "after": 0,
                                                 "c": point.seq}).first())
    entered = entry(model_id, stage, version, point)
    after = entered.seq if entered is not None else 0
    fell = _change(session().execute(_LEFT, {"m": model_id, "stage": stage, "above": version, "after": after,
                                             "c": point.seq}).first())
    return fell or entered


def alias_change(model_id: int, alias: str, point: Point) -> tuple[Change, bool] | None:
    """The last change of ``alias`` by ``point``, and whether it set the alias (False: deleted it)."""
    row = session().execute(_ALIAS, {"m": model_id, "alias": alias, "c": point.seq}).first()
    return None if row is None else (_change(row), row.action == "alias.set")


def aliases_ever(model_id: int) -> list[str]:
    return [row.alias for row in session().execute(_ALIASES_EVER, {"m": model_id}) if row.alias]


def changes_after(model_id: int, after: tuple[datetime, int], limit: int) -> list[Event]:
    """Up to ``limit`` serving changes after ``after`` (an instant and a seq, in (occurred_at, seq) order)."""
    rows = session().execute(_CHANGES_AFTER, {"m": model_id, "after_at": after[0], "after_seq": after[1],
                                              "n": limit})
    return [Event(row.id, row.seq, row.occurred_at, row.actor, row.action, row.version, row.from_stage, row.to_stage,
                  row.alias, {"Staging": row.staging, "Production": row.production} if row.recorded else None,
                  row.run_id, row.model_name) for row in rows]


# --- What serves now: recorded on every transition and deletion, and checked against the replay ----------

_STAGE_ANSWERS = text("""
SELECT s.stage, (SELECT max(v.version) FROM model_versions v WHERE v.model_id = :m AND v.stage = s.stage) AS version
FROM unnest(CAST(:stages AS text[])) AS s(stage)
""")
_LIVE_ALIASES = text("""
SELECT a.alias, v.version FROM model_aliases a JOIN model_versions v ON v.id = a.version_id WHERE a.model_id = :m
""")
_LIVE_LATEST = text("SELECT max(version) FROM model_versions WHERE model_id = :m")


def stage_answers(model_id: int) -> dict[str, int | None]:
    """What each stage serves now in this transaction (its highest version; one index probe each): what a
    transition or deletion records once its changes are flushed, under the model's row lock."""
    rows = session().execute(_STAGE_ANSWERS, {"m": model_id, "stages": list(SERVED_STAGES)})
    return {row.stage: row.version for row in rows}


def serving_details(model_id: int) -> dict[str, dict[str, int | None]]:
    """The ``serving`` entry of a transition's or deletion's audit details."""
    return {"serving": stage_answers(model_id)}


def live_aliases(model_id: int) -> dict[str, int]:
    return {row.alias: row.version for row in session().execute(_LIVE_ALIASES, {"m": model_id})}


def live_latest(model_id: int) -> int | None:
    return session().execute(_LIVE_LATEST, {"m": model_id}).scalar()


# --- Facts about versions, deleted ones included ----------------------------------------------------------

_RUN_IDS = text(f"""
SELECT DISTINCT ON (version) version, run_id FROM audit_events
WHERE model_id = :m AND version = ANY(:versions) AND action IN ({VERSION_CHANGES})
ORDER BY version, seq DESC
""")
_EXISTING = text("SELECT version FROM model_versions WHERE model_id = :m AND version = ANY(:versions)")
# A version's source: from its row while it exists, else as its creation recorded it.
_SOURCE = text("""
SELECT (SELECT source FROM model_versions WHERE model_id = :m AND version = :v) AS live,
       (SELECT details ->> 'source' FROM audit_events
        WHERE model_id = :m AND version = :v AND action = 'version.created' ORDER BY seq LIMIT 1) AS recorded
""")


def run_ids(model_id: int, versions: set[int]) -> dict[int, str | None]:
    """Each version's run id, as its events recorded it."""
    if not versions:
        return {}
    rows = session().execute(_RUN_IDS, {"m": model_id, "versions": sorted(versions)})
    return {row.version: row.run_id for row in rows}


def existing_versions(model_id: int, versions: set[int]) -> set[int]:
    """Which of ``versions`` exist today (the others were deleted)."""
    if not versions:
        return set()
    return set(session().execute(_EXISTING, {"m": model_id, "versions": sorted(versions)}).scalars())


def version_source(model_id: int, version: int) -> tuple[str | None, bool]:
    """(the version's source, whether the version exists today)."""
    row = session().execute(_SOURCE, {"m": model_id, "v": version}).one()
    return (row.live if row.live is not None else row.recorded), row.live is not None
