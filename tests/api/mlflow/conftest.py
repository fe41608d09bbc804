"""Helpers for the MLflow dialect tests: a wire client over ``secure_client`` (auth on), and the error shape."""
from __future__ import annotations

import pytest

API = "/api/2.0/mlflow"
AJAX = "/ajax-api/2.0/mlflow"


class Wire:
    """Sends requests to the MLflow dialect as one user (``headers``), the way MLflow clients do."""

    def __init__(self, client, headers: dict[str, str], prefix: str = API):
        self.client = client
        self.headers = headers
        self.prefix = prefix

    def as_user(self, headers: dict[str, str]) -> "Wire":
        return Wire(self.client, headers, self.prefix)

    def get(self, path: str, query=None, **kwargs):
        return self.client.get(self.prefix + path, query_string=query, headers=self.headers, **kwargs)

    def post(self, path: str, body=None, **kwargs):
        return self.client.post(self.prefix + path, json=body if body is not None else {}, headers=self.headers,
                                **kwargs)

    def patch(self, path: str, body=None, **kwargs):
        return self.client.patch(self.prefix + path, json=body if body is not None else {}, headers=self.headers,
                                 **kwargs)

    def delete(self, path: str, body=None, query=None, **kwargs):
        if body is not None:
            kwargs["json"] = body
        return self.client.delete(self.prefix + path, query_string=query, headers=self.headers, **kwargs)

    # Shortcuts that must succeed.
    def ok(self, response) -> dict:
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()

    def create_model(self, name: str, **fields) -> dict:
        return self.ok(self.post("/registered-models/create", {"name": name, **fields}))["registered_model"]

    def create_version(self, name: str, source: str = "s3://bucket/model", **fields) -> dict:
        body = {"name": name, "source": source, **fields}
        return self.ok(self.post("/model-versions/create", body))["model_version"]

    def transition(self, name: str, version: str, stage: str, archive: bool = False) -> dict:
        body = {"name": name, "version": version, "stage": stage, "archive_existing_versions": archive}
        return self.ok(self.post("/model-versions/transition-stage", body))["model_version"]


def assert_mlflow_error(response, status: int, code: str) -> str:
    """MLflow's error body ``{"error_code", "message"}`` with this status and code; returns the message."""
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"error_code", "message"}, body
    assert body["error_code"] == code, body
    assert isinstance(body["message"], str) and body["message"]
    return body["message"]


@pytest.fixture
def admin_headers(make_user):
    return make_user("mlflow-admin", admin=True)


@pytest.fixture
def wire(secure_client, admin_headers) -> Wire:
    """An admin speaking the MLflow dialect."""
    return Wire(secure_client, admin_headers)
