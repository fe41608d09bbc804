"""Version search loads a page with one SELECT of plain rows; its records equal those ``get_version`` builds."""
from __future__ import annotations

from contextlib import contextmanager

import pytest
from sqlalchemy import event

from registry.extensions import db
from registry.services.aliases import set_alias
from registry.db.filters import Condition, SortKey
from registry.services.models import create_model
from registry.services.versions import VersionQuery, create_version, get_version, search_versions

from .support import walk

# Tag keys whose codepoint order differs from a linguistic collation's ("B" < "_z" < "a" < "b.c").
TAGS = {"b.c": "1", "a": "2", "B": "3", "_z": "", "data set": "x"}

SEARCHES = [
    VersionQuery(),
    VersionQuery(run_id="run-1"),
    VersionQuery(model_name="churn"),
    # The MLflow dialect: conditions, with and without an explicit ordering (the keyset path).
    VersionQuery(conditions=(Condition("run_id", "=", "run-1"),)),
    VersionQuery(conditions=(Condition("name", "IN", ("churn", "fraud")),),
                 sort=(SortKey("name"), SortKey("version", descending=True))),
    VersionQuery(sort=(SortKey("updated_at", descending=True),)),
]


@pytest.fixture
def versions(ctx, alice):
    create_model(alice, "churn")
    create_model(alice, "fraud")
    create_version(alice, "churn", "s3://bucket/c1", run_id="run-1", run_link="http://runs/1", description="first",
                   tags=TAGS)
    create_version(alice, "churn", "s3://bucket/c2", run_id="run-1")
    create_version(alice, "fraud", "s3://bucket/f1", tags={"only": "one"})
    set_alias(alice, "churn", "champion", 1)
    set_alias(alice, "churn", "Backup", 1)
    set_alias(alice, "churn", "a-b", 1)
    set_alias(alice, "fraud", "prod", 1)


@contextmanager
def statements():
    seen: list[str] = []

    def capture(_conn, _cursor, statement, _parameters, _context, _executemany):
        seen.append(statement)

    engine = db.engine
    event.listen(engine, "before_cursor_execute", capture)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", capture)


@pytest.mark.parametrize("query", SEARCHES)
def test_searched_versions_equal_get_version(versions, alice, query):
    found = walk(lambda size, token: search_versions(alice, query, size, token), page_size=2)

    assert found
    for record in found:
        assert record == get_version(alice, record.model_name, record.version)


def test_tags_and_aliases_of_a_searched_version(versions, alice):
    (record,) = search_versions(alice, VersionQuery(model_name="churn", run_id="run-1",
                                                    conditions=(Condition("version", "=", 1),))).items

    assert list(record.tags.items()) == sorted(TAGS.items())
    assert set(record.aliases) == {"champion", "Backup", "a-b"}
    assert record.aliases == get_version(alice, "churn", 1).aliases
    assert (record.run_link, record.description) == ("http://runs/1", "first")
    second = search_versions(alice, VersionQuery(model_name="churn", run_id="run-1"), 1).items[0]
    assert (second.version, second.tags, second.aliases) == (2, {}, ())


@pytest.mark.parametrize("query", SEARCHES)
def test_a_page_is_one_select(versions, alice, query):
    first = search_versions(alice, query, 1)
    assert first.next_page_token is not None
    with statements() as seen:
        page = search_versions(alice, query, 1, first.next_page_token)
    assert len(page.items) == 1
    # The test session wraps each transaction in a SAVEPOINT; only the SELECTs are the page's load.
    assert len([s for s in seen if s.lstrip().upper().startswith("SELECT")]) == 1


@pytest.mark.parametrize(("condition", "expected"), [
    (Condition("run_id", "=", "run-1"), [("churn", 2), ("churn", 1)]),
    (Condition("run_id", "IN", ("run-1", "nope")), [("churn", 2), ("churn", 1)]),
    # A version without a run has run_id '' to MLflow's filter grammar.
    (Condition("run_id", "=", ""), [("fraud", 1)]),
    (Condition("run_id", "IN", ("", "run-1")), [("fraud", 1), ("churn", 2), ("churn", 1)]),
    (Condition("run_id", "!=", "run-1"), [("fraud", 1)]),
])
def test_run_id_conditions(versions, alice, condition, expected):
    items = search_versions(alice, VersionQuery(conditions=(condition,))).items
    assert [(v.model_name, v.version) for v in items] == expected
