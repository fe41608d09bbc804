"""The serving hot path: "which version is in <stage> / behind <alias> for model X right now?".

Cheap by construction: one SQL statement (no ORM objects), and in the common case none at all: answers are cached per process and dropped the moment a change to their
model is announced (see registry/changes.py). A cached answer is only stored if it is at least as new as the
newest generation this process has heard of, so a slow reader can never reinstate a stale answer.
"""
from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass
from typing import Any, Callable

from sqlalchemy import text

from .. import names
from ..auth import Actor
from ..changes import Hub, hub_for
from ..errors import NotFound
from ..lifecycle import Permission, parse_stage
from ..db.loading import model_not_found
from ..db.unit_of_work import read_only, session

_COLUMNS = """
    m.id AS model_id, m.name AS model_name, m.generation,
    v.version, v.stage, v.status, v.source, v.run_id, v.run_link, v.created_at, v.updated_at,
    CASE WHEN v.id IS NULL THEN NULL
         ELSE ARRAY(SELECT a.alias FROM model_aliases a WHERE a.version_id = v.id ORDER BY a.alias) END AS aliases
"""

_BY_STAGE = text(f"""
SELECT {_COLUMNS}
FROM registered_models m
LEFT JOIN LATERAL (
    SELECT * FROM model_versions mv WHERE mv.model_id = m.id AND mv.stage = :selector
    ORDER BY mv.version DESC LIMIT 1
) v ON true
WHERE m.name = :name
""")

_BY_ALIAS = text(f"""
SELECT {_COLUMNS}
FROM registered_models m
LEFT JOIN model_aliases al ON al.model_id = m.id AND al.alias = :selector
LEFT JOIN model_versions v ON v.id = al.version_id
WHERE m.name = :name
""")

_LATEST = text(f"""
SELECT {_COLUMNS}
FROM registered_models m
LEFT JOIN LATERAL (
    SELECT * FROM model_versions mv WHERE mv.model_id = m.id ORDER BY mv.version DESC LIMIT 1
) v ON true
WHERE m.name = :name
""")

_HEAD = text("SELECT id, generation FROM registered_models WHERE name = :name")

_LEVEL = text("""
SELECT max(level) FROM permission_grants
WHERE principal IN (:principal, '*') AND (model_id IS NULL OR model_id = :model_id)
""")


@dataclass(frozen=True, slots=True)
class CurrentVersion:
    """The version a stage or alias points at, as the serving endpoints render it (compact: thousands are cached)."""
    version: int
    stage: str
    status: str
    source: str
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
    # A stage/alias answer: a CurrentVersion, or None when nothing is in that stage / behind that alias.
    # A cached read (``cached_read``): whatever the use case returned. A replayed response (api/fast_path.py):
    # its status, headers and body.
    payload: Any

    @property
    def etag(self) -> str:
        # Strong: the generation changes with everything that can change this answer.
        return f'"{self.model_id}.{self.generation}"'


class ServingCache:
    """Per-process answers and permission levels, invalidated by change notifications."""

    # Per worker (REGISTRY_CACHE_ENTRIES): bounds memory. When full, the oldest tenth is evicted (dicts keep
    # insertion order), so a working set larger than the cache degrades gradually instead of thrashing.
    DEFAULT_MAX_ENTRIES = 20_000

    def __init__(self, hub: Hub, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self.hub = hub
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._answers: dict[tuple[str, str, str], Answer] = {}
        # Model id -> the keys of its entries: a list (most models have one or two entries, and a set costs
        # four times the memory of a short list; tens of thousands are kept).
        self._by_model: dict[int, list[tuple]] = {}
        self._levels: dict[tuple[str, int], int] = {}
        self._grants_epoch = 0
        hub.on_change(self._on_change)

    def _on_change(self, message: dict | None) -> None:
        with self._lock:
            if message is None:
                self._answers.clear()
                self._by_model.clear()
            elif "m" in message:
                for key in self._by_model.pop(int(message["m"]), ()):
                    self._answers.pop(key, None)
            if message is None or "grants" in message:
                self._levels.clear()
                self._grants_epoch += 1

    def answer(self, key: tuple[str, str, str]) -> Answer | None:
        if not self.hub.healthy:
            return None
        found = self._answers.get(key)
        if found is None or found.generation < self.hub.generation(found.model_id):
            return None
        return found

    def store(self, key: tuple[str, str, str], answer: Answer) -> None:
        with self._lock:
            if not self.hub.healthy or answer.generation < self.hub.generation(answer.model_id):
                return  # a change we have heard of is newer than what we read
            if len(self._answers) >= self.max_entries:
                for old_key in list(itertools.islice(self._answers, max(1, self.max_entries // 10))):
                    self._forget_key(old_key, self._answers.pop(old_key).model_id)
            if key in self._answers:
                self._forget_key(key, self._answers[key].model_id)
            self._answers[key] = answer
            self._by_model.setdefault(answer.model_id, []).append(key)

    def _forget_key(self, key: tuple, model_id: int) -> None:
        keys = self._by_model.get(model_id)
        if keys is not None:
            try:
                keys.remove(key)
            except ValueError:
                pass
            if not keys:
                del self._by_model[model_id]

    def discard(self, key: tuple) -> None:
        with self._lock:
            found = self._answers.pop(key, None)
            if found is not None:
                self._forget_key(key, found.model_id)

    def level(self, principal: str, model_id: int) -> int | None:
        return self._levels.get((principal, model_id)) if self.hub.healthy else None

    def store_level(self, principal: str, model_id: int, level: int, epoch: int) -> None:
        with self._lock:
            if self.hub.healthy and epoch == self._grants_epoch:
                self._levels[(principal, model_id)] = level

    def level_or_load(self, principal: str, model_id: int, load: Callable[[], int]) -> int:
        """The cached level, or ``load()`` stored unless a grant changed meanwhile (``model_id`` REGISTRY_LEVEL:
        the registry-wide level)."""
        cached = self.level(principal, model_id)
        if cached is not None:
            return cached
        epoch = self._grants_epoch
        level = load()
        self.store_level(principal, model_id, level, epoch)
        return level


_CACHE_KEY = "registry_serving_cache"


def cache_for(app) -> ServingCache:
    """The app's per-process cache (one per app, like its change hub)."""
    cache = app.extensions.get(_CACHE_KEY)
    if cache is None:
        cache = app.extensions.setdefault(
            _CACHE_KEY, ServingCache(hub_for(app), app.config["REGISTRY_SETTINGS"].cache_entries))
    return cache


@read_only
def _read(kind: str, name: str, selector: str) -> Answer | None:
    statement = {"stage": _BY_STAGE, "alias": _BY_ALIAS, "latest": _LATEST}[kind]
    row = session().execute(statement, {"name": name, "selector": selector}).mappings().first()
    if row is None:
        return None
    version = None
    if row["version"] is not None:
        version = CurrentVersion(row["version"], row["stage"], row["status"], row["source"], row["run_id"],
                                 row["run_link"], row["created_at"], row["updated_at"], tuple(row["aliases"] or ()))
    return Answer(row["model_id"], row["model_name"], row["generation"], version)


REGISTRY_LEVEL = 0  # cache key of the registry-wide level (model ids start at 1)


def _level(cache: ServingCache, actor: Actor, model_id: int) -> int:
    return cache.level_or_load(
        actor.name, model_id, lambda: _read_level(actor.name, None if model_id == REGISTRY_LEVEL else model_id))


def _can_read(cache: ServingCache, actor: Actor, model_id: int) -> bool:
    """READ on the model. A registry-wide grant (the common case: ``*`` READ) answers for every model from
    one cached entry, so a cache miss on a new model costs no permission query."""
    if actor.is_admin or _level(cache, actor, REGISTRY_LEVEL) >= Permission.READ:
        return True
    return _level(cache, actor, model_id) >= Permission.READ


def may_read_cached(cache: ServingCache, actor: Actor, model_id: int) -> bool:
    """READ on the model, from cached levels only (no query): True only when the cache proves it.
    False means "unknown or denied": the caller must take the ordinary path, which decides and caches."""
    if actor.is_admin:
        return True
    registry_wide = cache.level(actor.name, REGISTRY_LEVEL)
    if registry_wide is not None and registry_wide >= Permission.READ:
        return True
    on_model = cache.level(actor.name, model_id)
    return on_model is not None and on_model >= Permission.READ


@read_only
def _read_level(principal: str, model_id: int | None) -> int:
    return session().execute(_LEVEL, {"principal": principal, "model_id": model_id}).scalar() or 0


def answer_key(model_name: str, *, stage: str | None = None, alias: str | None = None) -> tuple[str, str, str]:
    """The cache key of a stage or alias answer (validates the name, stage and alias)."""
    name = names.model_name(model_name)
    if stage is not None:
        return "stage", name, parse_stage(stage).value
    if names.is_latest_alias(names.alias_name(alias, for_write=False)):
        return "latest", name, "latest"
    return "alias", name, alias


def read_key(model_name: str, operation: str) -> tuple[str, str, str]:
    """The cache key of a ``cached_read``."""
    return "read", names.model_name(model_name), operation


def resolve(cache: ServingCache, actor: Actor, model_name: str, *, stage: str | None = None,
            alias: str | None = None, fresh: bool = False) -> Answer:
    """The current answer for a stage or an alias (exactly one of them), checking READ permission.

    ``fresh``: read from the database even if an answer is cached (the caller knows of a newer generation)."""
    key = answer_key(model_name, stage=stage, alias=alias)
    kind, name, selector = key
    answer = None if fresh else cache.answer(key)
    if answer is None:
        answer = _read(kind, name, selector)
        if answer is None:
            raise model_not_found(name)
        cache.store(key, answer)
    if not _can_read(cache, actor, answer.model_id):
        raise model_not_found(name)
    return answer


@read_only
def _read_head(name: str):
    return session().execute(_HEAD, {"name": name}).first()


def cached_read(cache: ServingCache, actor: Actor, model_name: str, operation: str,
                load: Callable[[], Any]) -> tuple[Any, Answer | None]:
    """Any read of one model's data, served from the per-process cache when it is current.

    Returns the result and its label (model id and the generation it was read at; the payload is the result),
    or None as the label when the result could not be labelled (the change listener is down).

    ``load()`` is the ordinary use case (it checks permissions itself). On a miss, the model's generation is
    read *before* ``load()`` runs and labels the result: if the model changes in between, the label is older
    than the change, so the cache either refuses the entry or drops it when the change is announced; a stale
    result can never outlive the notification. Results must be immutable (the services return frozen records).
    """
    key = read_key(model_name, operation)
    name = key[1]
    hit = cache.answer(key)
    if hit is not None:
        if not _can_read(cache, actor, hit.model_id):
            raise model_not_found(name)
        return hit.payload, hit
    head = _read_head(name) if cache.hub.healthy else None
    result = load()
    if head is None:
        return result, None
    answer = Answer(head.id, name, head.generation, result)
    cache.store(key, answer)
    # ``load()`` checked READ itself; asking again (cached, usually through the registry-wide level) primes the
    # permission cache, so the next identical request can be answered from memory alone.
    _can_read(cache, actor, head.id)
    return result, answer


def not_found_message(answer: Answer, *, stage: str | None = None, alias: str | None = None) -> NotFound:
    if stage is not None:
        target = parse_stage(stage).value
        return NotFound(f"Registered model {answer.model_name} has no version in stage {target}.",
                        {"model": answer.model_name, "stage": target})
    if names.is_latest_alias(alias):
        return NotFound(f"Latest version not found for model {answer.model_name}.", {"model": answer.model_name})
    return NotFound(f"Registered model alias {alias} not found.", {"model": answer.model_name, "alias": alias})
