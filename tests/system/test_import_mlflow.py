"""`registry import mlflow` against a real stock `mlflow server` seeded with the real MLflow client: what
arrives answers exactly as the source does through the MLflow API, a second run is a no-op, a killed run
resumes to the same end, conflicts are skipped (or replaced with --overwrite), and the chains verify."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import psycopg2
import pytest
import requests

from registry import create_app
from registry.auth import Actor
from registry.extensions import db
from registry.services import audit_log, models, versions
from tests import pg
from tests.mlflow_server import stock_mlflow_server
from tests.server import cli_env

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::FutureWarning")]

REGISTRY = Path(sys.executable).parent / "registry"
UNICODE = "détecteur-de-fraude_模型"
MODEL = "fraud detector"


def seed(url: str) -> dict:
    """Numbers with gaps, all four stages, aliases, tags, descriptions, deleted versions, a prompt, unicode."""
    import mlflow
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=url, registry_uri=url)
    run = client.create_run(client.create_experiment("training")).info.run_id
    client.create_registered_model(MODEL, tags={"team": "risk", "tier": "1"}, description="Flags fraud.")
    for i in range(1, 8):
        client.create_model_version(MODEL, f"s3://models/fraud/{i}", run_id=run, tags={"build": str(i)},
                                    description=f"build {i}" if i % 2 else None)
    client.delete_model_version(MODEL, "2")
    client.delete_model_version(MODEL, "5")
    client.transition_model_version_stage(MODEL, "1", "Archived")
    client.transition_model_version_stage(MODEL, "3", "Staging")
    client.transition_model_version_stage(MODEL, "4", "Production")
    client.transition_model_version_stage(MODEL, "6", "Production")
    client.set_registered_model_alias(MODEL, "champion", "6")
    client.set_registered_model_alias(MODEL, "challenger", "7")
    client.create_registered_model(UNICODE, description="Ünïcödé ✓")
    client.create_model_version(UNICODE, "s3://models/unicode/1")
    client.set_model_version_tag(UNICODE, "1", "note", "é")
    client.create_registered_model("empty-model")
    with globally_pointed_at(url):  # prompts are registered through mlflow's global URIs only
        mlflow.genai.register_prompt(name="greeting", template="Hello {{name}}!")
    return {MODEL: [1, 3, 4, 6, 7], UNICODE: [1], "empty-model": [], "greeting": [1]}


@contextmanager
def globally_pointed_at(url: str):
    """mlflow's process-wide tracking and registry URIs (and the environment variables its setters also write)
    at ``url`` for a moment, then as they were: left pointing at this module's stock server after it stops,
    they sent later modules' clients in this process to a closed port."""
    import mlflow
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    names = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
    saved = (tracking_utils._tracking_uri, registry_utils._registry_uri, [os.environ.get(n) for n in names])
    mlflow.set_tracking_uri(url)
    mlflow.set_registry_uri(url)
    try:
        yield
    finally:
        tracking_utils._tracking_uri, registry_utils._registry_uri = saved[0], saved[1]
        for name, value in zip(names, saved[2]):
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture(scope="module")
def source(admin_url):
    with stock_mlflow_server(admin_url) as url:
        yield url, seed(url)


def run_import(database_url: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([str(REGISTRY), "import", "mlflow", *args], env=cli_env(database_url),
                            capture_output=True, text=True, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(f"import failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def _normal(value):
    """MLflow's answers with empty fields dropped (MLflow's server and our dialect differ only in whether
    they send them) and lists of tags and aliases in a fixed order."""
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in sorted(value.items()) if v not in ("", None, [], {})}
    if isinstance(value, list):
        items = [_normal(v) for v in value]
        return sorted(items, key=lambda v: json.dumps(v, sort_keys=True))
    return value


def answers(get, expected: dict) -> dict:
    """What the MLflow API says about every seeded model and version."""
    found = {}
    for name, numbers in expected.items():
        found[name] = _normal(get("registered-models/get", {"name": name})["registered_model"])
        for number in numbers:
            found[f"{name}/{number}"] = _normal(
                get("model-versions/get", {"name": name, "version": str(number)})["model_version"])
    return found


def source_get(url):
    def get(path, params):
        response = requests.get(f"{url}/api/2.0/mlflow/{path}", params=params, timeout=30)
        assert response.status_code == 200, response.text
        return response.json()
    return get


class Registry:
    """Our registry on ``database_url``, read through its MLflow dialect and its services."""

    def __init__(self, database_url: str):
        self.app = create_app({"database_url": database_url, "auth_enabled": False})
        self.app.config["TESTING"] = True
        self.http = self.app.test_client()

    def get(self, path, params):
        response = self.http.get(f"/api/2.0/mlflow/{path}", query_string=params,
                                 headers={"X-Registry-Actor": "auditor"})
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()

    def verify(self):
        with self.app.app_context():
            return audit_log.verify()

    def events(self) -> int:
        with self.app.app_context():
            return db.session.execute(db.text("SELECT count(*) FROM audit_events")).scalar()

    def call(self, fn, *args, **kwargs):
        with self.app.app_context():
            return fn(*args, **kwargs)

    def close(self):
        with self.app.app_context():
            db.engine.dispose()


@pytest.fixture
def target(fresh_database_url):
    registry = Registry(fresh_database_url)
    yield fresh_database_url, registry
    registry.close()


def test_import_copies_models_versions_stages_aliases_and_tags_as_mlflow_answers_them(source, target):
    url, expected = source
    database_url, registry = target
    result = run_import(database_url, "--from", url)
    assert "imported" in result.stdout
    assert answers(registry.get, expected) == answers(source_get(url), expected)
    checked, problem = registry.verify()
    assert problem is None and checked > 0
    # The gaps are kept, and the counter continues after the highest number.
    created = registry.call(versions.create_version, Actor("alice", is_admin=True), MODEL, "s3://models/fraud/8")
    assert created.version == 8


def test_each_imported_object_is_audited_as_imported_with_its_source_and_original_timestamps(source, target):
    url, _ = source
    database_url, registry = target
    run_import(database_url, "--from", url)
    events = registry.get("registered-models/get", {"name": MODEL})  # the model exists
    assert events
    with registry.app.app_context():
        rows = db.session.execute(db.text(
            "SELECT action, version, details FROM audit_events WHERE model_name = :name ORDER BY seq"),
            {"name": MODEL}).all()
    source_versions = {int(v["version"]): v for v in requests.get(
        f"{url}/api/2.0/mlflow/model-versions/search", params={"filter": f"name='{MODEL}'"}).json()["model_versions"]}
    created = {r.version: r.details for r in rows if r.action == "version.created"}
    assert sorted(created) == [1, 3, 4, 6, 7]
    for number, details in created.items():
        assert details["imported"]["from"] == url
        assert details["imported"]["created_at"] == int(source_versions[number]["creation_timestamp"])
    transitions = {(r.version, r.details["imported"]["from"]) for r in rows if r.action == "version.transitioned"}
    assert transitions == {(1, url), (3, url), (4, url), (6, url)}
    assert {r.details["alias"] for r in rows if r.action == "alias.set"} == {"champion", "challenger"}
    assert rows[0].action == "model.created" and rows[0].details["imported"]["from"] == url


def test_a_second_run_changes_nothing(source, target):
    url, _ = source
    database_url, registry = target
    run_import(database_url, "--from", url)
    before = registry.events()
    second = run_import(database_url, "--from", url)
    assert registry.events() == before
    assert "unchanged" in second.stdout and " 4 " in second.stdout  # the four models, all unchanged


def test_a_dry_run_writes_nothing(source, target):
    url, _ = source
    database_url, registry = target
    result = run_import(database_url, "--from", url, "--dry-run")
    assert "dry run" in result.stdout
    assert registry.events() == 0


def test_models_glob_selects_models(source, target):
    url, _ = source
    database_url, registry = target
    run_import(database_url, "--from", url, "--models", "fraud*", "--models", "empty-*")
    with registry.app.app_context():
        names = db.session.execute(db.text("SELECT name FROM registered_models ORDER BY name")).scalars().all()
    assert names == ["empty-model", MODEL]


def test_a_conflicting_model_is_skipped_with_its_reason_unless_overwrite(source, target):
    url, expected = source
    database_url, registry = target
    alice = Actor("alice", is_admin=True)
    registry.call(models.create_model, alice, MODEL)
    registry.call(versions.create_version, alice, MODEL, "s3://elsewhere/1")
    result = run_import(database_url, "--from", url)
    assert "skipped" in result.stdout and MODEL in result.stdout and "another source" in result.stdout
    assert registry.get("model-versions/get", {"name": MODEL, "version": "1"})["model_version"]["source"] == \
        "s3://elsewhere/1"
    run_import(database_url, "--from", url, "--overwrite")
    assert answers(registry.get, expected) == answers(source_get(url), expected)
    assert registry.verify()[1] is None


def test_changes_at_the_source_are_brought_over_on_the_next_run(admin_url, target):
    from mlflow import MlflowClient

    database_url, registry = target
    with stock_mlflow_server(admin_url) as url:
        client = MlflowClient(tracking_uri=url, registry_uri=url)
        client.create_registered_model("churn")
        for i in range(1, 4):
            client.create_model_version("churn", f"s3://churn/{i}")
        client.set_registered_model_alias("churn", "live", "2")
        run_import(database_url, "--from", url)
        before = registry.events()
        client.create_model_version("churn", "s3://churn/4")
        client.delete_model_version("churn", "1")
        client.transition_model_version_stage("churn", "3", "Production")
        client.set_registered_model_alias("churn", "live", "3")
        client.update_registered_model("churn", description="now described")
        run_import(database_url, "--from", url)
        expected = {"churn": [2, 3, 4]}
        assert answers(registry.get, expected) == answers(source_get(url), expected)
        with registry.app.app_context():
            actions = db.session.execute(db.text(
                "SELECT action FROM audit_events WHERE id > 0 ORDER BY id OFFSET :n"), {"n": before}).scalars().all()
        assert sorted(actions) == sorted(["version.deleted", "version.created", "version.transitioned",
                                          "alias.set", "model.updated"])
        assert registry.verify()[1] is None


def _count_models(database_url: str) -> int:
    connection = psycopg2.connect(database_url)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM registered_models")
            return cursor.fetchone()[0]
    finally:
        connection.close()


def test_a_killed_run_resumes_to_the_same_end_as_an_uninterrupted_one(admin_url, target, fresh_database_url):
    from tests import pg

    killed_url, killed = target
    many = 300
    with stock_mlflow_server(admin_url) as url:
        for i in range(many):
            name = f"bulk-{i:04d}"
            requests.post(f"{url}/api/2.0/mlflow/registered-models/create", json={"name": name}).raise_for_status()
            for v in range(3):
                requests.post(f"{url}/api/2.0/mlflow/model-versions/create",
                              json={"name": name, "source": f"s3://bulk/{i}/{v}"}).raise_for_status()
        process = subprocess.Popen([str(REGISTRY), "import", "mlflow", "--from", url], env=cli_env(killed_url),
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 300
            while _count_models(killed_url) < 20 and process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
            os.kill(process.pid, signal.SIGKILL)
        finally:
            process.wait()
        halfway = _count_models(killed_url)
        assert 0 < halfway < many, "the run was not interrupted halfway"
        run_import(killed_url, "--from", url)
        name = pg.create_database(admin_url, template=None)
        try:
            whole_url = pg.with_database(admin_url, name)
            subprocess.run([str(REGISTRY), "db", "upgrade"], env=cli_env(whole_url), check=True,
                           capture_output=True, timeout=300)
            run_import(whole_url, "--from", url)
            whole = Registry(whole_url)
            expected = {f"bulk-{i:04d}": [1, 2, 3] for i in range(0, many, 7)}
            assert answers(killed.get, expected) == answers(whole.get, expected) == answers(source_get(url), expected)
            assert _count_models(killed_url) == _count_models(whole_url) == many
            assert killed.verify()[1] is None
            whole.close()
        finally:
            pg.drop_database(admin_url, name)


# --- From a Databricks workspace: our own server's Databricks dialect stands in for one (no real workspace
# is reachable from the test machine); the import calls exactly the endpoints a workspace offers.

def test_from_a_databricks_workspace_open_transition_requests_come_along(admin_url, template_database, target):
    from tests.server import ADMIN_HEADERS, ADMIN_TOKEN, running_server

    database_url, registry = target
    name = pg.create_database(admin_url, template=template_database)
    try:
        with running_server(pg.with_database(admin_url, name), workers=1,
                            extra_env={"REGISTRY_AUTH": "enabled"}) as url:
            def post(path, body):
                response = requests.post(f"{url}/api/2.0/mlflow/{path}", json=body, headers=ADMIN_HEADERS, timeout=30)
                assert response.status_code == 200, response.text
                return response.json()

            post("registered-models/create", {"name": "scored"})
            for i in (1, 2):
                post("model-versions/create", {"name": "scored", "source": f"s3://scored/{i}"})
            post("transition-requests/create", {"name": "scored", "version": "2", "stage": "Production",
                                                "comment": "ready — metrics attached"})
            listed = requests.get(f"{url}/api/2.0/mlflow/transition-requests/list", headers=ADMIN_HEADERS,
                                  params={"name": "scored", "version": "2"}, timeout=30).json()["requests"]
            run_import(database_url, "--from", url, "--token", ADMIN_TOKEN)
            second = run_import(database_url, "--from", url, "--token", ADMIN_TOKEN)
        assert "unchanged" in second.stdout
        imported = registry.get("transition-requests/list", {"name": "scored", "version": "2"})["requests"]
        assert [(r["user_id"], r["to_stage"], r["comment"], r["creation_timestamp"]) for r in imported] == \
            [(r["user_id"], r["to_stage"], r["comment"], r["creation_timestamp"]) for r in listed]
        with registry.app.app_context():
            created = db.session.execute(db.text(
                "SELECT actor, details FROM audit_events WHERE action = 'request.created'")).all()
        assert len(created) == 1 and created[0].details["imported"]["created_by"] == "admin"
        assert registry.verify()[1] is None
    finally:
        pg.drop_database(admin_url, name)
