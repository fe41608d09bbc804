"""The native API applies MLflow's source rules too, in its own error shape, and shows where a version's
artifacts are (``storage_location``), in a version and in a serving answer."""
from __future__ import annotations

import pytest

from tests.api.support import assert_error

ADMIN = {"X-Registry-Actor": "alice"}


@pytest.fixture
def models(client):
    for name in ("src", "dst"):
        assert client.post("/api/v1/models", json={"name": name}, headers=ADMIN).status_code == 201
    response = client.post("/api/v1/models/src/versions", json={"source": "s3://b/src/1", "run_id": "r1"},
                           headers=ADMIN)
    assert response.status_code == 201, response.get_data(as_text=True)
    return client


@pytest.mark.parametrize("body", [
    {"source": "/srv/models/churn"}, {"source": "file:///srv/m"}, {"source": "model"},
    {"source": "s3://b/%2e%2e/x"}, {"source": "runs:/r2/model", "run_id": "r1"},
    {"source": "models:/m-0123", "model_id": "m-9999"},
])
def test_a_source_mlflow_refuses_is_a_400_in_the_native_shape(models, body):
    error = assert_error(models.post("/api/v1/models/dst/versions", json=body, headers=ADMIN), 400,
                         "INVALID_ARGUMENT")
    assert error["details"] == {"field": "source"} and "source" in error["message"]


def test_a_logged_model_source_with_its_model_id_is_accepted(models):
    response = models.post("/api/v1/models/dst/versions", json={"source": "models:/m-0123", "model_id": "m-0123"},
                           headers=ADMIN)
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.get_json()["storage_location"] == "models:/m-0123"


def test_a_copy_shows_its_storage_location_in_the_version_and_the_serving_answer(models):
    created = models.post("/api/v1/models/dst/versions", json={"source": "models:/src/1"}, headers=ADMIN)
    assert created.status_code == 201, created.get_data(as_text=True)
    assert (created.get_json()["source"], created.get_json()["storage_location"]) == ("models:/src/1", "s3://b/src/1")
    assert models.delete("/api/v1/models/src", headers=ADMIN).status_code == 204
    served = models.get("/api/v1/models/dst/aliases/latest", headers=ADMIN).get_json()
    assert (served["source"], served["storage_location"], served["run_id"]) == ("models:/src/1", "s3://b/src/1", "r1")
