"""Native API: repeated ``?tag=k=v`` filters are capped like every dialect's conditions (db/filters.py)."""
from __future__ import annotations

import pytest

from tests.api.support import assert_error

M = "/api/v1/models/m"


@pytest.fixture
def seeded(client):
    assert client.post("/api/v1/models", json={"name": "m"}).status_code == 201
    assert client.post(f"{M}/versions", json={"source": "s3://b/1"}).status_code == 201
    return client


TAG_FILTERED = ["/api/v1/models", f"{M}/versions", "/api/v1/versions"]


@pytest.mark.parametrize("path", TAG_FILTERED)
def test_ten_tag_filters_are_served(seeded, path):
    query = "&".join(f"tag=k{i}=v" for i in range(10))
    assert seeded.get(f"{path}?{query}").status_code == 200


@pytest.mark.parametrize("path", TAG_FILTERED)
@pytest.mark.parametrize("count", [11, 200])
def test_too_many_tag_filters_are_400(seeded, path, count):
    # Each tag filter is a subquery over the tag table; the same cap as the MLflow dialect's filter.
    query = "&".join(f"tag=k{i}=v" for i in range(count))
    error = assert_error(seeded.get(f"{path}?{query}"), 400, "INVALID_ARGUMENT")
    assert "at most" in error["message"]
