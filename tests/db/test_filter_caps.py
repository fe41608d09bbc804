"""The caps on what one search may ask of the database: checked on the condition model, before SQL exists."""
from __future__ import annotations

import pytest

from registry.db import filters
from registry.db.filters import Condition
from registry.errors import InvalidArgument

CLAUSES = {"models": filters.model_clauses, "versions": filters.version_clauses}
HIDE_PROMPTS = Condition.lacks_tag("mlflow.prompt.is_prompt", "true")


def names(n: int) -> tuple[Condition, ...]:
    return tuple(Condition("name", "!=", f"m{i}") for i in range(n))


def tags(n: int) -> tuple[Condition, ...]:
    return tuple(Condition("tag", "=", "v", key=f"k{i}") for i in range(n))


def refused(build, conditions) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as info:
        build(conditions)
    assert info.value.details == {"field": "filter"}
    return info.value


@pytest.mark.parametrize("build", CLAUSES.values(), ids=CLAUSES)
def test_conditions_up_to_the_caps_are_accepted(build):
    conditions = names(filters.MAX_CONDITIONS - filters.MAX_TAG_CONDITIONS - 1) + tags(filters.MAX_TAG_CONDITIONS)
    assert len(build(conditions + (HIDE_PROMPTS,))) == filters.MAX_CONDITIONS


@pytest.mark.parametrize("build", CLAUSES.values(), ids=CLAUSES)
@pytest.mark.parametrize("count", [filters.MAX_CONDITIONS + 1, 5000])
def test_too_many_conditions_are_refused(build, count):
    assert str(filters.MAX_CONDITIONS) in refused(build, names(count)).message


@pytest.mark.parametrize("build", CLAUSES.values(), ids=CLAUSES)
@pytest.mark.parametrize("count", [filters.MAX_TAG_CONDITIONS + 1, 100])
def test_too_many_tag_conditions_are_refused(build, count):
    assert str(filters.MAX_TAG_CONDITIONS) in refused(build, tags(count)).message


@pytest.mark.parametrize("build", CLAUSES.values(), ids=CLAUSES)
def test_the_prompt_condition_a_dialect_adds_does_not_use_up_the_callers_tag_conditions(build):
    build(tags(filters.MAX_TAG_CONDITIONS) + (HIDE_PROMPTS,))


@pytest.mark.parametrize("build", CLAUSES.values(), ids=CLAUSES)
@pytest.mark.parametrize("op", ["IN", "NOT IN"])
def test_in_lists_are_bounded(build, op):
    values = tuple(f"m{i}" for i in range(filters.MAX_LIST_VALUES))
    build((Condition("name", op, values),))
    message = refused(build, (Condition("name", op, values + ("one-more",)),)).message
    assert str(filters.MAX_LIST_VALUES) in message
