"""The serving hot path: "which version is in <stage> / behind <alias> for model X right now?".

Cheap by construction: one SQL statement, prepared and run in autocommit on a pooled connection
(``db/prepared.py``: no ORM, no session; ``latest_records`` and ``alias_record`` are the same reads with whole
versions, for the MLflow dialect's get-latest-versions and get-by-alias), and in the common case none at all:
answers (``resolve``'s, ``latest_records``' and ``alias_record``'s) live in the per-process cache under its
freshness rule (``registry/cache``), so a slow reader can never reinstate a stale answer. ``warm`` fills them for
every model in one stage, ``warm_aliases`` behind its aliases, a page of models per statement
(``registry/warming.py`` runs them when a worker starts and after each listener reconnect). "Current" is MLflow's
rule: the highest version number in the stage.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from sqlalchemy import text

from .. import names
from ..auth import Actor
from ..db.loading import alias_not_found, model_not_found, stage_empty
from ..db.records import VersionRecord, version_record_from_row
from ..db.prepared import Prepared
from ..db.unit_of_work import read_only, session
from ..errors import NotFound
from ..extensions import caches
from ..cache.hub import Label
from ..lifecycle import parse_stage
from .access import may_read

_COLUMNS = """
    m.id AS model_id, m.name AS model_name, m.generation,
    v.version, v.stage, v.status, v.source, coalesce(v.storage_location, v.source) AS storage_location,
    v.run_id, v.run_link, v.created_at, v.updated_at,
    CASE WHEN v.id IS NULL THEN NULL
         ELSE ARRAY(SELECT a.alias FROM model_aliases a WHERE a.version_id = v.id ORDER BY a.alias) END AS aliases
"""

_FROM_STAGE = """
FROM registered_models m
LEFT JOIN LATERAL (
    SELECT * FROM model_versions mv WHERE mv.model_id = m.id AND mv.stage = :selector
    ORDER BY mv.version DESC LIMIT 1
) v ON true
WHERE m.name = :name
"""

_FROM_ALIAS = """
FROM registered_models m
LEFT JOIN model_aliases al ON al.model_id = m.id AND al.alias = :selector
LEFT JOIN model_versions v ON v.id = al.version_id
WHERE m.name = :name
"""

_FROM_LATEST = """
FROM registered_models m
LEFT JOIN LATERAL (
    SELECT * FROM model_versions mv WHERE mv.model_id = m.id ORDER BY mv.version DESC LIMIT 1
) v ON true
WHERE m.name = :name
"""

# Several stages at once (MLflow's get-latest-versions), in the order asked: one row per stage that has a
# version, or one row with no version (the model exists, the stages are empty).
_FROM_STAGES = """
FROM registered_models m
LEFT JOIN LATERAL (
    SELECT top.*, s.ord FROM unnest(CAST(:stages AS text[])) WITH ORDINALITY AS s(stage, ord)
    CROSS JOIN LATERAL (
        SELECT * FROM model_versions mv WHERE mv.model_id = m.id AND mv.stage = s.stage
        ORDER BY mv.version DESC LIMIT 1
    ) top
) v ON true
WHERE m.name = :name
ORDER BY v.ord
"""

_BY_STAGE = Prepared("serving_by_stage", f"SELECT {_COLUMNS} {_FROM_STAGE}")
_BY_ALIAS = Prepared("serving_by_alias", f"SELECT {_COLUMNS} {_FROM_ALIAS}")
_LATEST = Prepared("serving_latest", f"SELECT {_COLUMNS} {_FROM_LATEST}")

# The same reads with everything a whole version holds (``records.version_record_from_row``), for the MLflow
# dialect, which renders whole versions: still one statement, no ORM objects.
_RECORD_COLUMNS = """
    m.id AS model_id, m.name AS model_name, v.id, v.version, v.source, v.storage_location, v.run_id, v.run_link,
    v.description, v.status, v.stage, v.created_by, v.revision, v.created_at, v.updated_at,
    CASE WHEN v.id IS NULL THEN NULL
         ELSE (SELECT json_object_agg(t.key, t.value) FROM model_version_tags t WHERE t.version_id = v.id) END AS tags,
    CASE WHEN v.id IS NULL THEN NULL
         ELSE ARRAY(SELECT a.alias FROM model_aliases a WHERE a.version_id = v.id ORDER BY a.alias) END AS aliases
"""
_RECORDS_BY_STAGES = Prepared("serving_records_by_stages", f"SELECT {_RECORD_COLUMNS} {_FROM_STAGES}")
_RECORD_BY_ALIAS = Prepared("serving_record_by_alias", f"SELECT {_RECORD_COLUMNS} {_FROM_ALIAS}")
_RECORD_LATEST = Prepared("serving_record_latest", f"SELECT {_RECORD_COLUMNS} {_FROM_LATEST}")


@dataclass(frozen=True, slots=True)
class CurrentVersion:
    """The version a stage or alias points at, as the serving endpoints render it (compact: thousands are cached)."""
    version: int
    stage: str
    status: str
    source: str
    storage_location: str  # where the artifacts are: the source, or what a models:/ source resolved to
    run_id: str | None
    run_link: str | None
    created_at: Any
    updated_at: Any
    aliases: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Answer:
    model_id: int
    model_name: str
    generation: int
    version: CurrentVersion | None  # None: nothing is in that stage / behind that alias

    @property
    def etag(self) -> str:
        # Strong: the generation changes with everything that can change this answer.
        return f'"{self.model_id}.{self.generation}"'

    @property
    def size(self) -> int:
        """Bytes it costs in the cache, about."""
        v = self.version
        if v is None:
            return len(self.model_name)
        return len(self.model_name) + len(v.source) + len(v.run_id or "") + len(v.run_link or "") + 40 * len(v.aliases)


@read_only
def _read(kind: str, name: str, selector: str) -> Answer | None:
    statement = {"stage": _BY_STAGE, "alias": _BY_ALIAS, "latest": _LATEST}[kind]
    row = statement.first(name=name, selector=selector)
    if row is None:
        return None
    return _answer_from_row(row, row.storage_location)


def _answer_from_row(row, storage_location: str | None) -> Answer:
    """A serving row as the answer kept and rendered (``storage_location``: where the artifacts are, which the
    two reads that build answers name differently)."""
    version = None
    if row.version is not None:
        version = CurrentVersion(row.version, row.stage, row.status, row.source, storage_location,
                                 row.run_id, row.run_link, row.created_at, row.updated_at,
                                 tuple(row.aliases or ()))
    return Answer(row.model_id, row.model_name, row.generation, version)


def answer_key(model_name: str, *, stage: str | None = None, alias: str | None = None) -> tuple[str, str, str]:
    """The cache key of a stage or alias answer (validates the name, stage and alias)."""
    name = names.model_name(model_name)
    if stage is not None:
        return "stage", name, parse_stage(stage).value
    if names.is_latest_alias(names.alias_name(alias, for_write=False)):
        return "latest", name, "latest"
    return "alias", name, alias


def resolve(actor: Actor, model_name: str, *, stage: str | None = None, alias: str | None = None,
            fresh: bool = False, model_id: int | None = None) -> Answer:
    """The current answer for a stage or an alias (exactly one of them), checking READ permission.

    Served from the per-process cache when current (``cache/``: labelled before the read, dropped when the
    model's change is announced). ``fresh``: read the database even so (the caller knows of a newer one).
    ``model_id``: the model the caller expects the name to be (a woken long-poll): concurrent misses of the same
    answer then share one database read (``cache/flights.py``)."""
    key = answer_key(model_name, stage=stage, alias=alias)
    kind, name, selector = key
    current = caches()
    entry = None if fresh or current is None else current.store.get(key)
    if entry is not None:
        answer = entry.payload
    elif current is None:
        answer = _read(kind, name, selector)
    else:
        def read_and_keep(label) -> Answer | None:
            answer = _read(kind, name, selector)
            if answer is not None:
                current.store.put(key, answer.model_id, label, answer, answer.size)
            return answer

        if model_id is not None and not fresh:
            answer = current.flights.share(key, model_id, read_and_keep, _model_of)
        else:
            answer = read_and_keep(current.hub.label())
    if answer is None:
        raise model_not_found(name)
    if not may_read(actor, answer.model_id):
        raise model_not_found(name)
    return answer


def latest_records(actor: Actor, model_name: str, stages: list[str]) -> tuple[int, tuple[VersionRecord, ...]]:
    """The whole current version of each of ``stages`` (canonical values) that has one, in that order, and the
    model's id: one statement, kept in the per-process cache like ``resolve``'s answers. READ is checked like
    ``resolve`` (cached levels); unreadable = not found."""
    name = names.model_name(model_name)
    model_id, records = _kept(("records", name, tuple(stages)), name, lambda: _read_records(name, stages),
                              _records_size)
    if not may_read(actor, model_id):
        raise model_not_found(name)
    return model_id, records


def _kept(key: tuple, name: str, read: Callable[[], tuple[int, Any] | None],
          size: Callable[[Any], int]) -> tuple[int, Any]:
    """``read()``'s (model id, value), kept in the per-process cache under ``key`` by its freshness rule (labelled
    before the read); NotFound if the model does not exist (nothing kept)."""
    current = caches()
    entry = None if current is None else current.store.get(key)
    if entry is not None:
        return entry.payload
    label = None if current is None else current.hub.label()
    found = read()
    if found is None:
        raise model_not_found(name)
    if current is not None:
        current.store.put(key, found[0], label, found, size(found[1]))
    return found


@read_only
def _read_records(name: str, stages: list[str]) -> tuple[int, tuple[VersionRecord, ...]] | None:
    rows = _RECORDS_BY_STAGES.rows(name=name, stages=stages)
    if not rows:
        return None
    return rows[0].model_id, tuple(version_record_from_row(row) for row in rows if row.id is not None)


def _records_size(records: tuple[VersionRecord, ...]) -> int:
    return sum(len(r.model_name) + len(r.source) + len(r.description) + len(r.run_id or "") + len(r.run_link or "")
               + sum(len(k) + len(v) for k, v in r.tags.items()) + 40 * len(r.aliases) + 200 for r in records)


# Warming (``warm``, ``warm_aliases``): a page of models at a time, every model's current version in one stage, or
# the versions behind its aliases (all, or those named); a model without any still has a row (no version), so the
# page's models are all seen and the next page starts after the last.
_WARM_PAGE = 500
_WARM_COLUMNS = f"{_RECORD_COLUMNS}, m.generation, coalesce(v.storage_location, v.source) AS serving_location"
_WARM = text(f"""
SELECT {_WARM_COLUMNS}
FROM registered_models m
LEFT JOIN LATERAL (
    SELECT * FROM model_versions mv WHERE mv.model_id = m.id AND mv.stage = :stage
    ORDER BY mv.version DESC LIMIT 1
) v ON true
WHERE m.id > :after
ORDER BY m.id
LIMIT :page
""")
_WARM_ALIASES = text(f"""
WITH page AS (SELECT id FROM registered_models WHERE id > :after ORDER BY id LIMIT :page)
SELECT {_WARM_COLUMNS}, al.alias AS warm_alias
FROM page
JOIN registered_models m ON m.id = page.id
LEFT JOIN model_aliases al ON al.model_id = m.id
    AND (CAST(:names AS text[]) IS NULL OR al.alias = ANY(CAST(:names AS text[])))
LEFT JOIN model_versions v ON v.id = al.version_id
ORDER BY m.id
""")


@dataclass(frozen=True, slots=True)
class WarmPage:
    """What one page of warming kept: the answers (``answer_key``s), and the last model id read (None: that was
    the last page)."""
    keys: tuple[tuple[str, str, str], ...]
    last: int | None


def warm(stage: str, *, after: int = 0, page: int = _WARM_PAGE, label: Label | None = None) -> WarmPage:
    """Keep the current answer in ``stage`` of the next page of models (ids above ``after``), as the native read
    and MLflow's get-latest-versions of that one stage would: the first read of each is then a cache hit.
    Labelled before the read (``label``, else now), so a change heard meanwhile drops it as usual."""
    label = caches().hub.label() if label is None else label
    rows = _read_page(_WARM, {"stage": stage, "after": after, "page": page})
    keys = []
    for row in rows:
        records = () if row.id is None else (version_record_from_row(row),)
        keys.append(_keep_warm(row, ("stage", row.model_name, stage), ("records", row.model_name, (stage,)),
                               records, _records_size(records), label))
    return WarmPage(tuple(keys), rows[-1].model_id if len(rows) == page else None)


def warm_aliases(aliases: tuple[str, ...] | None, *, after: int = 0, page: int = _WARM_PAGE,
                 label: Label | None = None) -> WarmPage:
    """Keep the version behind each alias (``aliases`` only, if given) of the next page of models, as the native
    alias read and MLflow's get-by-alias would. Labelled like ``warm``."""
    label = caches().hub.label() if label is None else label
    rows = _read_page(_WARM_ALIASES, {"names": None if aliases is None else list(aliases), "after": after,
                                      "page": page})
    keys = []
    for row in rows:
        if row.warm_alias is not None:
            record = version_record_from_row(row)
            keys.append(_keep_warm(row, ("alias", row.model_name, row.warm_alias),
                                   ("alias record", row.model_name, row.warm_alias), record,
                                   _records_size((record,)), label))
    models = len({row.model_id for row in rows})
    return WarmPage(tuple(keys), rows[-1].model_id if models == page else None)


def _keep_warm(row, key: tuple[str, str, str], record_key: tuple, record: Any, record_size: int,
               label: Label) -> tuple[str, str, str]:
    """Keep a warm row as the serving answer under ``key`` and as the whole version(s) the MLflow read renders
    under ``record_key`` (``latest_records``' and ``alias_record``'s entries); returns ``key``."""
    store = caches().store
    answer = _answer_from_row(row, row.serving_location)
    store.put(key, row.model_id, label, answer, answer.size)
    store.put(record_key, row.model_id, label, (row.model_id, record), record_size)
    return key


@read_only
def _read_page(statement, parameters: dict) -> list:
    return session().execute(statement, parameters).all()


def alias_record(actor: Actor, model_name: str, alias: str) -> VersionRecord:
    """The whole version behind ``alias`` (``latest``: the highest), one statement, kept in the per-process cache
    like ``latest_records``; NotFound for a missing or unreadable model, or an alias that is not set."""
    kind, name, selector = answer_key(model_name, alias=alias)
    # "latest" is reserved: no alias of that name can be set, so the key cannot mean two things.
    model_id, record = _kept(("alias record", name, selector), name,
                             lambda: _read_alias_record(kind, name, selector),
                             lambda record: _records_size(() if record is None else (record,)))
    if not may_read(actor, model_id):
        raise model_not_found(name)
    if record is None:
        raise alias_not_found(name, alias)
    return record


@read_only
def _read_alias_record(kind: str, name: str, selector: str) -> tuple[int, VersionRecord | None] | None:
    statement = _RECORD_LATEST if kind == "latest" else _RECORD_BY_ALIAS
    row = statement.first(name=name, selector=selector)
    if row is None:
        return None
    return row.model_id, None if row.id is None else version_record_from_row(row)


def _model_of(answer: Answer | None) -> int | None:
    return None if answer is None else answer.model_id


def not_found(answer: Answer, key: tuple[str, str, str]) -> NotFound:
    """Why the answer under ``key`` (``answer_key``) has no version, in the words the use cases use."""
    kind, _, selector = key
    if kind == "stage":
        return stage_empty(answer.model_name, selector)
    return alias_not_found(answer.model_name, selector)
