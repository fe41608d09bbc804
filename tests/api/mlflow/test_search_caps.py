"""MLflow dialect over HTTP: a search filter cannot tie up the database (caps of db/filters.py and the
filter text length of api/mlflow/search.py), and is refused before any search SQL runs."""
from __future__ import annotations

import pytest

from tests.api.mlflow.conftest import assert_mlflow_error

SEARCHES = ["/registered-models/search", "/model-versions/search"]


def tag_filter(count: int) -> str:
    return " AND ".join(f"tags.k{i} = 'v'" for i in range(count))


@pytest.fixture
def reader(wire, make_user):
    """A READ user: the least a caller needs to search."""
    return wire.as_user(make_user("reader", "READ"))


@pytest.fixture
def statements():
    """SQL statements run while the test body runs (on any engine)."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    event.listen(Engine, "before_cursor_execute", record)
    yield seen
    event.remove(Engine, "before_cursor_execute", record)


@pytest.mark.parametrize("path", SEARCHES)
def test_ten_tag_conditions_are_served(reader, path):
    wire = reader
    assert wire.ok(wire.get(path, {"filter": tag_filter(10)})) == {}


@pytest.mark.parametrize("path", SEARCHES)
@pytest.mark.parametrize("count", [11, 100], ids=["11-tags", "100-tags"])
def test_too_many_tag_conditions_are_refused_before_any_search_sql(reader, statements, path, count):
    reader.ok(reader.get(path))  # authenticate once, so the token lookup is cached
    statements.clear()
    message = assert_mlflow_error(reader.get(path, {"filter": tag_filter(count)}), 400, "INVALID_PARAMETER_VALUE")
    assert "at most" in message
    assert not [s for s in statements if "_tags" in s or "model_versions" in s], statements


@pytest.mark.parametrize("path", SEARCHES)
def test_thousands_of_conditions_in_a_get_body_are_refused(reader, path):
    # A GET with a JSON body is not bound by the request-line limit of a query string.
    body = {"filter": " AND ".join(f"name != 'm{i}'" for i in range(5000))}
    response = reader.client.get("/api/2.0/mlflow" + path, json=body, headers=reader.headers)
    assert_mlflow_error(response, 400, "INVALID_PARAMETER_VALUE")


@pytest.mark.parametrize("path", SEARCHES)
def test_fifty_one_conditions_are_refused(reader, path):
    text = " AND ".join(f"name != 'm{i}'" for i in range(51))
    assert_mlflow_error(reader.get(path, {"filter": text}), 400, "INVALID_PARAMETER_VALUE")


@pytest.mark.parametrize("path", SEARCHES)
def test_a_filter_longer_than_the_cap_is_refused(reader, path):
    text = "name IN (" + ", ".join(f"'{i:04d}'" for i in range(1200)) + ")"
    assert len(text) > 8192
    response = reader.client.get("/api/2.0/mlflow" + path, json={"filter": text}, headers=reader.headers)
    assert "8192" in assert_mlflow_error(response, 400, "INVALID_PARAMETER_VALUE")
