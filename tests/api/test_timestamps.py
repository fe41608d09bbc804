"""The native and MLflow dialects render the same instant as the same epoch millisecond."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

UTC = timezone.utc
ACTOR = {"X-Registry-Actor": "alice"}


@pytest.mark.parametrize("when, expected", [
    # float seconds * 1000 lands just below the integer here: the native API answered 1 ms early.
    (datetime(2004, 2, 8, 7, 49, 54, 837000, tzinfo=UTC), 1076226594837),
    (datetime(2025, 3, 4, 5, 6, 7, 123999, tzinfo=UTC), 1741064767123),
], ids=["float-rounds-down", "sub-millisecond"])
def test_native_and_mlflow_render_the_same_milliseconds(client, monkeypatch, when, expected):
    from registry.services import models, versions

    monkeypatch.setattr(models, "now", lambda: when)
    monkeypatch.setattr(versions, "now", lambda: when)
    assert client.post("/api/v1/models", json={"name": "m"}, headers=ACTOR).status_code == 201
    assert client.post("/api/v1/models/m/versions", json={"source": "s3://b/s"}, headers=ACTOR).status_code == 201

    native_model = client.get("/api/v1/models/m", headers=ACTOR).get_json()
    native_version = client.get("/api/v1/models/m/versions/1", headers=ACTOR).get_json()
    mlflow_model = client.get("/api/2.0/mlflow/registered-models/get", query_string={"name": "m"},
                              headers=ACTOR).get_json()["registered_model"]
    mlflow_version = client.get("/api/2.0/mlflow/model-versions/get", query_string={"name": "m", "version": "1"},
                                headers=ACTOR).get_json()["model_version"]

    assert (native_version["created_at"], native_version["updated_at"]) == (expected, expected)
    assert (mlflow_version["creation_timestamp"], mlflow_version["last_updated_timestamp"]) == (expected, expected)
    # Creating a version touches the model at the same instant.
    assert (native_model["created_at"], native_model["updated_at"]) == (expected, expected)
    assert (mlflow_model["creation_timestamp"], mlflow_model["last_updated_timestamp"]) == (expected, expected)
