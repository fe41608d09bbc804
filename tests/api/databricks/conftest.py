"""Helpers for the Databricks extension tests: a wire client over ``secure_client`` (auth on) speaking as
databricks-sdk does, a small team of users around one model, and the real SDK on the real server of
``registry_url`` (tests/conftest.py)."""
from __future__ import annotations

import pytest

API = "/api/2.0/mlflow"
PERMISSIONS = "/api/2.0/permissions/registered-models"


class Wire:
    """Requests as databricks-sdk sends them: JSON bodies on POST/PATCH/PUT, query strings on GET/DELETE."""

    def __init__(self, client, headers: dict[str, str]):
        self.client = client
        self.headers = headers

    def get(self, path: str, query=None):
        return self.client.get(path, query_string=query, headers=self.headers)

    def post(self, path: str, body: dict):
        return self.client.post(path, json=body, headers=self.headers)

    def patch(self, path: str, body: dict):
        return self.client.patch(path, json=body, headers=self.headers)

    def put(self, path: str, body: dict):
        return self.client.put(path, json=body, headers=self.headers)

    def delete(self, path: str, query=None):
        return self.client.delete(path, query_string=query, headers=self.headers)


def ok(response) -> dict:
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def assert_error(response, status: int, code: str) -> str:
    """The MLflow/Databricks error body ``{"error_code", "message"}``; returns the message."""
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"error_code", "message"}, body
    assert body["error_code"] == code, body
    return body["message"]


class Team:
    """Users around model ``fraud`` (versions 1 and 2, created by ``owner``): ``as_(name)`` speaks as one."""

    MODEL = "fraud"

    def __init__(self, client, make_user):
        self.client = client
        self.headers = {
            "admin": make_user("db-admin", admin=True),
            "owner": make_user("owner", "EDIT"),
            "reader": make_user("reader"),
            "writer": make_user("writer", "EDIT"),
            "stager": make_user("stager", "MANAGE_STAGING"),
            "prod": make_user("prod", "MANAGE_PRODUCTION"),
            "prod2": make_user("prod2", "MANAGE_PRODUCTION"),
        }
        owner = self.as_("owner")
        ok(owner.post(API + "/registered-models/create", {"name": self.MODEL}))
        for i in (1, 2):
            ok(owner.post(API + "/model-versions/create", {"name": self.MODEL, "source": f"s3://b/{i}"}))

    def as_(self, who: str) -> Wire:
        return Wire(self.client, self.headers[who])

    def stage_of(self, version: str) -> str:
        response = self.as_("admin").get(API + "/model-versions/get", {"name": self.MODEL, "version": version})
        return ok(response)["model_version"]["current_stage"]

    def request(self, who: str, version: str = "1", stage: str = "Production", comment: str | None = None):
        body = {"name": self.MODEL, "version": version, "stage": stage}
        if comment is not None:
            body["comment"] = comment
        return self.as_(who).post(API + "/transition-requests/create", body)

    def review(self, who: str, verb: str, version: str = "1", stage: str = "Production", **fields):
        body = {"name": self.MODEL, "version": version, "stage": stage, **fields}
        if verb == "approve":
            body.setdefault("archive_existing_versions", False)
        return self.as_(who).post(API + f"/transition-requests/{verb}", body)

    def cancel(self, who: str, creator: str, version: str = "1", stage: str = "Production", **fields):
        query = {"name": self.MODEL, "version": version, "stage": stage, "creator": creator, **fields}
        return self.as_(who).delete(API + "/transition-requests/delete", query)

    def open_requests(self, version: str = "1") -> list[dict]:
        body = ok(self.as_("reader").get(API + "/transition-requests/list", {"name": self.MODEL, "version": version}))
        return body.get("requests", [])

    def model_id(self) -> str:
        response = self.as_("admin").get(API + "/databricks/registered-models/get", {"name": self.MODEL})
        return ok(response)["registered_model_databricks"]["id"]

    def require_approvals(self, count: int, stage: str = "Production", **fields) -> None:
        response = self.client.put(f"/api/v1/models/{self.MODEL}/approval-policies/{stage}",
                                   json={"required_approvals": count, **fields}, headers=self.headers["admin"])
        assert response.status_code == 200, response.get_data(as_text=True)


@pytest.fixture
def team(secure_client, make_user) -> Team:
    return Team(secure_client, make_user)
