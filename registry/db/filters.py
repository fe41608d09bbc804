"""A small condition model for searches, and the SQL it becomes.

Dialect adapters (the MLflow filter grammar, for one) parse their own syntax into ``Condition`` and
``SortKey`` values; this module turns them into WHERE / ORDER BY clauses and keyset pagination. It knows
nothing about any wire syntax, and it re-checks every condition, so a bad one is a 400 and never reaches SQL.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

from sqlalchemy import ColumnElement, and_, exists, func, not_, or_

from .. import names, pagination
from ..errors import InvalidArgument
from ..orm import ModelVersion, ModelVersionTag, RegisteredModel, RegisteredModelTag

STRING_OPS = frozenset({"=", "!=", "LIKE", "ILIKE"})
LIST_OPS = frozenset({"IN", "NOT IN"})
NUMBER_OPS = frozenset({"=", "!=", "<", "<=", ">", ">="})
# "LACKS": the row has no tag ``key`` whose value is exactly ``value`` (rows without the tag qualify too).
LACKS = "LACKS"

# What one search may ask of the database, refused (400) before any SQL is built. MLflow's grammar never
# needs more: its searches name a model or a run, a version range and a few tags. Measured on 2,000 models
# with 20 tags each, 10 tag conditions answer as fast as one, 50 take 2 s and 100 take 12 s: each is an
# EXISTS over a tag table, joined by the planner, whose cost grows faster than linearly, and thousands of
# conditions exhaust PostgreSQL's stack ("stack depth limit exceeded") after holding a connection and a core.
MAX_CONDITIONS = 50
# Tag comparisons a caller wrote (=, !=, LIKE, ILIKE). A dialect's own LACKS condition (MLflow's "hide
# prompts") is not the caller's to spend, so it counts toward MAX_CONDITIONS only.
MAX_TAG_CONDITIONS = 10
# Values in one IN / NOT IN list: PostgreSQL answers an index lookup of this many at once cheaply, and it is
# more than MLflow's own server can receive (a run-id list in a query string stops at about 90 ids, at the
# 4 KB request-line limit of gunicorn).
MAX_LIST_VALUES = 1000

# Which operators each field accepts, per entity.
MODEL_FIELDS: dict[str, frozenset[str]] = {"name": STRING_OPS | LIST_OPS, "tag": STRING_OPS | {LACKS}}
VERSION_FIELDS: dict[str, frozenset[str]] = {
    "name": STRING_OPS | LIST_OPS,
    "run_id": STRING_OPS | LIST_OPS,
    "source": STRING_OPS,
    "version": NUMBER_OPS,
    "tag": STRING_OPS | {LACKS},
}


@dataclass(frozen=True)
class Condition:
    """``field op value``; ``key`` names the tag when ``field == "tag"``. Conditions of a query are AND-ed."""

    field: str
    op: str
    value: str | int | tuple[str, ...]
    key: str | None = None

    @classmethod
    def lacks_tag(cls, key: str, value: str) -> "Condition":
        return cls("tag", LACKS, value, key)


def tag_equals(pairs: tuple[tuple[str, str], ...]) -> tuple[Condition, ...]:
    """``key=value`` tag filters (the native API's repeated ``?tag=``) as conditions, under the same caps."""
    return tuple(Condition("tag", "=", value, key) for key, value in pairs)


@dataclass(frozen=True)
class SortKey:
    field: str  # "name", "version", "created_at" or "updated_at"
    descending: bool = False


def _bad(message: str) -> InvalidArgument:
    return InvalidArgument(message, {"field": "filter"})


def _check(condition: Condition, allowed: dict[str, frozenset[str]]) -> None:
    ops = allowed.get(condition.field)
    if ops is None:
        raise _bad(f"Cannot filter on {condition.field!r}.")
    if condition.op not in ops:
        raise _bad(f"Invalid comparator {condition.op!r} for {condition.field!r}.")
    value = condition.value
    if condition.op in LIST_OPS:
        if not isinstance(value, tuple) or not value or not all(isinstance(v, str) for v in value):
            raise _bad(f"{condition.op} needs a non-empty list of strings.")
        if len(value) > MAX_LIST_VALUES:
            raise _bad(f"An {condition.op} list holds {len(value)} values; at most {MAX_LIST_VALUES} are allowed.")
        for item in value:
            names.filter_text(item, "filter")
    elif condition.field == "version":
        if isinstance(value, bool) or not isinstance(value, int) or not -(2**31) <= value < 2**31:
            raise _bad(f"Invalid value for version_number: {value!r}.")
    else:
        if not isinstance(value, str):
            raise _bad(f"Expected a string value for {condition.field!r}, got {value!r}.")
        names.filter_text(value, "filter")
    if condition.field == "tag":
        if not isinstance(condition.key, str) or not condition.key:
            raise _bad("A tag condition needs a tag key.")
        names.filter_text(condition.key, "filter")


def _check_all(conditions: tuple[Condition, ...], allowed: dict[str, frozenset[str]]) -> None:
    """Every condition, and the caps on the whole search (counted first: cheap, and refuses a flood fast)."""
    if len(conditions) > MAX_CONDITIONS:
        raise _bad(f"The search has {len(conditions)} conditions; at most {MAX_CONDITIONS} are allowed.")
    tag_conditions = sum(1 for c in conditions if c.field == "tag" and c.op != LACKS)
    if tag_conditions > MAX_TAG_CONDITIONS:
        raise _bad(f"The search compares {tag_conditions} tags; at most {MAX_TAG_CONDITIONS} tag conditions "
                   f"are allowed.")
    for condition in conditions:
        _check(condition, allowed)


def _compare(column, op: str, value) -> ColumnElement[bool]:
    # LIKE / ILIKE take the value as the pattern: '%' and '_' are wildcards, as in MLflow.
    if op == "=":
        return column == value
    if op == "!=":
        return column != value
    if op == "LIKE":
        return column.like(value)
    if op == "ILIKE":
        return column.ilike(value)
    if op == "IN":
        return column.in_(value)
    if op == "NOT IN":
        return column.not_in(value)
    if op == "<":
        return column < value
    if op == "<=":
        return column <= value
    if op == ">":
        return column > value
    if op == ">=":
        return column >= value
    raise _bad(f"Invalid comparator {op!r}.")


def _tag_clause(tag_table, owner_column, owner_id, condition: Condition) -> ColumnElement[bool]:
    if condition.op == LACKS:
        return not_(exists().where(owner_column == owner_id, tag_table.key == condition.key,
                                   tag_table.value == condition.value))
    return exists().where(owner_column == owner_id, tag_table.key == condition.key,
                          _compare(tag_table.value, condition.op, condition.value))


def model_clauses(conditions: tuple[Condition, ...]) -> list[ColumnElement[bool]]:
    _check_all(conditions, MODEL_FIELDS)
    clauses = []
    for c in conditions:
        if c.field == "tag":
            clauses.append(_tag_clause(RegisteredModelTag, RegisteredModelTag.model_id, RegisteredModel.id, c))
        else:
            clauses.append(_compare(RegisteredModel.name, c.op, c.value))
    return clauses


def _matches_no_empty_string(condition: Condition) -> bool:
    """``run_id = 'x'`` / ``run_id IN ('x', 'y')`` with no '' among the values: a NULL run_id never qualifies."""
    if condition.op == "=":
        return condition.value != ""
    return condition.op == "IN" and "" not in condition.value


def version_clauses(conditions: tuple[Condition, ...]) -> list[ColumnElement[bool]]:
    """For a statement over ModelVersion joined to its RegisteredModel."""
    columns = {
        "name": RegisteredModel.name,
        # A version registered without a run has run_id NULL; MLflow stores '' and `run_id = ''` finds it.
        "run_id": func.coalesce(ModelVersion.run_id, ""),
        "source": ModelVersion.source,
        "version": ModelVersion.version,
    }
    _check_all(conditions, VERSION_FIELDS)
    clauses = []
    for c in conditions:
        if c.field == "tag":
            clauses.append(_tag_clause(ModelVersionTag, ModelVersionTag.version_id, ModelVersion.id, c))
        elif c.field == "run_id" and _matches_no_empty_string(c):
            # Same rows as through coalesce (NULL can only match ''), but the partial run_id index applies.
            clauses.append(_compare(ModelVersion.run_id, c.op, c.value))
        else:
            clauses.append(_compare(columns[c.field], c.op, c.value))
    return clauses


# --- Ordering and keyset pagination over several sort keys ---------------------------------------------

@dataclass(frozen=True)
class SortColumn:
    column: Any
    value_of: Callable[[Any], Any]  # the row's value for this key
    kind: type  # str, int or datetime: how the value travels in a page token


MODEL_SORT: dict[str, SortColumn] = {
    "name": SortColumn(RegisteredModel.name, lambda m: m.name, str),
    "created_at": SortColumn(RegisteredModel.created_at, lambda m: m.created_at, datetime),
    "updated_at": SortColumn(RegisteredModel.updated_at, lambda m: m.updated_at, datetime),
}
# Over rows of the versions search's Core SELECT (``model_name`` is the joined model's name), not ORM objects.
VERSION_SORT: dict[str, SortColumn] = {
    "name": SortColumn(RegisteredModel.name, lambda v: v.model_name, str),
    "version": SortColumn(ModelVersion.version, lambda v: v.version, int),
    "created_at": SortColumn(ModelVersion.created_at, lambda v: v.created_at, datetime),
    "updated_at": SortColumn(ModelVersion.updated_at, lambda v: v.updated_at, datetime),
}


def _resolve(sort: tuple[SortKey, ...], columns: dict[str, SortColumn]) -> list[tuple[SortColumn, bool]]:
    seen: set[str] = set()
    resolved = []
    for key in sort:
        if key.field not in columns:
            raise InvalidArgument(f"Cannot order by {key.field!r}.", {"field": "order_by"})
        if key.field in seen:
            raise InvalidArgument(f"order_by names {key.field!r} more than once.", {"field": "order_by"})
        seen.add(key.field)
        resolved.append((columns[key.field], key.descending))
    return resolved


def _encode_part(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _decode_part(raw: Any, kind: type) -> Any:
    if kind is datetime and isinstance(raw, str):
        return datetime.fromisoformat(raw)
    if kind is str and isinstance(raw, str):
        return raw
    if kind is int and type(raw) is int:
        return raw
    raise ValueError(raw)


def sorted_page(stmt, sort: tuple[SortKey, ...], columns: dict[str, SortColumn], id_column, *,
                limit: int, page_token: str | None, fingerprint: str, session,
                core_rows: bool = False) -> tuple[list, str | None]:
    """Order ``stmt`` by ``sort`` (then by id, so the order is total) and fetch one page after the token.

    ``stmt`` selects ORM entities (returned as such), or with ``core_rows`` plain columns (returned as
    rows); ``columns``' ``value_of`` must read whichever the page holds.

    Keyset pagination: the token carries the last row's sort values, so rows inserted or deleted between
    pages never shift the next page (MLflow's offset tokens can skip or repeat rows then).
    """
    keys = _resolve(sort, columns)
    # The id breaks ties in the direction of the last key, so a descending single-key ordering is exactly
    # the ascending one reversed, ties included.
    keys.append((SortColumn(id_column, lambda row: row.id, int), bool(keys) and keys[-1][1]))
    after = pagination.decode(page_token, fingerprint)
    if after is not None:
        try:
            if len(after) != len(keys):
                raise ValueError(after)
            bounds = [_decode_part(raw, key.kind) for raw, (key, _) in zip(after, keys)]
        except (TypeError, ValueError):
            raise InvalidArgument("Invalid page_token.", {"field": "page_token"}) from None
        # (k1 beyond b1) OR (k1 = b1 AND k2 beyond b2) OR ...: "after the last row" under mixed directions.
        alternatives = []
        for i, ((key, descending), bound) in enumerate(zip(keys, bounds)):
            beyond = key.column < bound if descending else key.column > bound
            equal_before = [k.column == b for (k, _), b in zip(keys[:i], bounds[:i])]
            alternatives.append(and_(*equal_before, beyond))
        stmt = stmt.where(or_(*alternatives))
    stmt = stmt.order_by(*[key.column.desc() if descending else key.column.asc() for key, descending in keys])
    result = session.execute(stmt.limit(limit + 1))
    rows = list(result.all() if core_rows else result.scalars().unique().all())
    token = None
    if len(rows) > limit:
        last = rows[limit - 1]
        token = pagination.encode([_encode_part(key.value_of(last)) for key, _ in keys], fingerprint)
    return rows[:limit], token
