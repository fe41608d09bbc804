"""The MLflow dialect's serving reads (issue 12): ``get-latest-versions`` and ``registered-models/alias`` are
what ``models:/name/Production`` and ``models:/name@alias`` URIs resolve through. After a change (the cached
response dropped), each answer is one SQL statement, the native serving read's, instead of ORM loads."""
from __future__ import annotations

import pytest

from tests.api.mlflow.test_search_caps import statements  # noqa: F401  (fixture)

MODEL = "fraud"


@pytest.fixture
def served(wire, make_user):
    """``fraud`` v1 Production (champion, tagged), v2 Staging, v3 none; read as a READ user."""
    wire.create_model(MODEL)
    for n in (1, 2, 3):
        wire.create_version(MODEL, f"s3://f/{n}", run_id=f"run-{n}", description=f"v{n}",
                            tags=[{"key": "team", "value": "risk"}] if n == 1 else [])
    wire.transition(MODEL, "1", "Production")
    wire.transition(MODEL, "2", "Staging")
    wire.ok(wire.post("/registered-models/alias", {"name": MODEL, "alias": "champion", "version": "1"}))
    return wire.as_user(make_user("reader", "READ"))


READS = {
    "get-latest-versions": ("POST", "/registered-models/get-latest-versions",
                            {"name": MODEL, "stages": ["Production", "Staging"]}),
    "get-latest-versions-all-stages": ("POST", "/registered-models/get-latest-versions", {"name": MODEL}),
    "alias": ("GET", "/registered-models/alias", {"name": MODEL, "alias": "champion"}),
    "latest-alias": ("GET", "/registered-models/alias", {"name": MODEL, "alias": "latest"}),
}


def read(reader, method, path, body):
    return reader.ok(reader.post(path, body) if method == "POST" else reader.get(path, body))


@pytest.mark.parametrize("method, path, body", READS.values(), ids=READS.keys())
def test_a_serving_read_after_a_change_is_one_statement(served, wire, statements, method, path, body):
    read(served, method, path, body)  # the token and the reader's levels are remembered now
    wire.ok(wire.post("/registered-models/set-tag", {"name": MODEL, "key": "k", "value": "v"}))  # drops the answers
    statements.clear()
    read(served, method, path, body)
    # The test's isolation wraps each transaction in a savepoint (conftest ``db_session``): not the read's.
    sql = [s for s in statements if not s.startswith(("SAVEPOINT", "ROLLBACK TO SAVEPOINT", "RELEASE SAVEPOINT"))]
    assert len(sql) == 1, sql


@pytest.mark.parametrize("method, path, body", READS.values(), ids=READS.keys())
def test_the_one_statement_answers_what_the_full_version_read_answers(served, wire, method, path, body):
    answer = read(served, method, path, body)
    versions = answer.get("model_versions") or [answer["model_version"]]
    for version in versions:
        full = wire.ok(wire.get("/model-versions/get", {"name": MODEL, "version": version["version"]}))
        assert version == full["model_version"]
    if path.endswith("get-latest-versions"):
        stages = [v["current_stage"] for v in versions]
        assert stages == (["Production", "Staging"] if "stages" in body else ["None", "Staging", "Production"])


@pytest.mark.parametrize("method, path, body", READS.values(), ids=READS.keys())
def test_a_model_the_caller_cannot_read_answers_like_a_missing_one(served, wire, make_user, method, path, body):
    outsider = wire.as_user(make_user("outsider"))
    ok = wire.client.put("/api/v1/permissions", json={"grants": []}, headers=wire.headers)  # no default READ
    assert ok.status_code == 200, ok.get_data(as_text=True)
    hidden = outsider.post(path, body) if method == "POST" else outsider.get(path, body)
    absent = {**body, "name": "absent"}
    missing = outsider.post(path, absent) if method == "POST" else outsider.get(path, absent)
    assert hidden.status_code == missing.status_code == 404
    assert hidden.get_json()["error_code"] == missing.get_json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert hidden.get_json()["message"].replace(MODEL, "X") == missing.get_json()["message"].replace("absent", "X")
