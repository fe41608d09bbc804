"""Writes a client may send twice. MLflow 3.18's client sends tag and alias sets again after a lost answer
(``utils/rest_utils.py``: they are "applied idempotently"), so repeating one with the same value must answer
the same and change nothing: no audit event, no new revision, no generation bump (nothing is announced, so
no cache is dropped and no long-poll woken), in every dialect."""
from __future__ import annotations

import pytest

from tests.services.support import events

ADMIN = {"X-Registry-Actor": "alice"}
BASE = "/api/v1/models/churn"
MLFLOW = "/api/2.0/mlflow"


@pytest.fixture
def seeded(client):
    assert client.post("/api/v1/models", json={"name": "churn"}, headers=ADMIN).status_code == 201
    assert client.post(f"{BASE}/versions", json={"source": "s3://b/1"}, headers=ADMIN).status_code == 201
    return client


def generation(client) -> int:
    response = client.get(f"{BASE}/aliases/latest", headers=ADMIN)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["generation"]


def trail() -> list[str]:
    return [e.action for e in events(model_name="churn")]


NATIVE = {
    "model-tag": ("PUT", f"{BASE}/tags/team", {"value": "growth"}),
    "version-tag": ("PUT", f"{BASE}/versions/1/tags/validated", {"value": "yes"}),
    "alias": ("PUT", f"{BASE}/aliases/champion", {"version": 1}),
}
WIRE = {
    "model-tag": ("POST", f"{MLFLOW}/registered-models/set-tag", {"name": "churn", "key": "team", "value": "growth"}),
    "version-tag": ("POST", f"{MLFLOW}/model-versions/set-tag",
                    {"name": "churn", "version": "1", "key": "validated", "value": "yes"}),
    "alias": ("POST", f"{MLFLOW}/registered-models/alias", {"name": "churn", "alias": "champion", "version": "1"}),
}


@pytest.mark.parametrize("method, path, body", [*NATIVE.values(), *WIRE.values()],
                         ids=[f"native-{k}" for k in NATIVE] + [f"mlflow-{k}" for k in WIRE])
def test_the_same_set_twice_answers_the_same_and_changes_nothing_the_second_time(seeded, method, path, body):
    first = seeded.open(path, method=method, json=body, headers=ADMIN)
    assert first.status_code == 200, first.get_data(as_text=True)
    after_first = (generation(seeded), trail())

    again = seeded.open(path, method=method, json=body, headers=ADMIN)

    assert (again.status_code, again.get_json(), again.headers.get("ETag")) == (
        first.status_code, first.get_json(), first.headers.get("ETag"))
    assert (generation(seeded), trail()) == after_first


@pytest.mark.parametrize("dialect", ["native", "mlflow"])
def test_a_set_with_another_value_is_a_change(seeded, dialect):
    method, path, body = (NATIVE if dialect == "native" else WIRE)["model-tag"]
    seeded.open(path, method=method, json=body, headers=ADMIN)
    before = (generation(seeded), trail())
    changed = {**body, "value": "risk"}
    assert seeded.open(path, method=method, json=changed, headers=ADMIN).status_code == 200
    assert generation(seeded) > before[0]
    assert trail() == [*before[1], "model.tag_set"]
