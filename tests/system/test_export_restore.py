"""`registry export`, `registry audit verify --export` (offline) and `registry import registry`: a backup
restored into an empty registry answers as the original did and exports to the same rows; its chains verify
there and in the file; a tampered file is refused."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from registry import create_app
from registry.auth import Actor
from registry.extensions import db
from registry.services import (
    aliases,
    comments,
    identities,
    models,
    permissions,
    policies,
    reviews,
    stages,
    versions,
)
from tests import pg
from tests.server import cli_env

pytestmark = pytest.mark.slow

REGISTRY = Path(sys.executable).parent / "registry"
ALICE = Actor("alice", is_admin=True)
BOB = Actor("bob", is_admin=True)


def populate(url: str) -> None:
    """Everything a backup holds: models, versions, tags, stages, aliases, policies, permissions, requests
    with approvals, comments, users, a deleted version and a deleted model (whose trail outlives it)."""
    app = create_app({"database_url": url})
    with app.app_context():
        identities.create_token(ALICE, "carol", create_user=True)
        policies.set_registry_policy(ALICE, "Production", required_approvals=1)
        permissions.set_registry_permissions(ALICE, [("*", "READ")], merge=True)
        models.create_model(ALICE, "churn", description="Predicts churn", tags={"team": "growth"})
        for i in range(1, 5):
            versions.create_version(ALICE, "churn", f"s3://b/churn/{i}", run_id=f"run{i}", tags={"i": str(i)})
        versions.delete_version(ALICE, "churn", 2)
        stages.transition_stage(ALICE, "churn", 1, "Staging")
        request = reviews.create_request(ALICE, "churn", 3, "Production", comment="ship it")
        reviews.approve(BOB, request.id, comment="lgtm")
        reviews.create_request(ALICE, "churn", 4, "Staging")
        aliases.set_alias(ALICE, "churn", "candidate", 4)
        comments.create_comment(BOB, "churn", 3, "looks good — ✓")
        policies.set_model_policy(ALICE, "churn", "Staging", required_approvals=2)
        permissions.set_model_permissions(ALICE, "churn", [("carol", "EDIT")], merge=True)
        models.create_model(ALICE, "ünïcode 模型")
        versions.create_version(ALICE, "ünïcode 模型", "s3://b/u/1")
        models.create_model(ALICE, "gone")
        versions.create_version(ALICE, "gone", "s3://b/gone/1")
        models.delete_model(ALICE, "gone")
        db.engine.dispose()


def cli(url: str | None, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
    env = cli_env(url or "")
    if url is None:
        env.pop("DATABASE_URL")
    result = subprocess.run([str(REGISTRY), *args], env=env, capture_output=True, text=True, timeout=300)
    if ok and result.returncode != 0:
        raise AssertionError(f"registry {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def words(table: str) -> str:
    """A summary table's text with its borders and line wrapping taken out."""
    return " ".join(re.split(r"[\s│┃]+", table))


def count(summary: str, outcome: str) -> int:
    """How many models the summary table counts under ``outcome``."""
    return int(re.search(rf"{outcome}\s*│\s*(\d+)", summary).group(1))


def rows(path: Path) -> list[dict]:
    """The export's rows, without the header and footer (which carry the moment of the export)."""
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[0]["kind"] == "header" and lines[-1]["kind"] == "footer"
    return lines[1:-1]


@pytest.fixture
def second_database_url(admin_url, template_database):
    name = pg.create_database(admin_url, template=template_database)
    yield pg.with_database(admin_url, name)
    pg.drop_database(admin_url, name)


@pytest.fixture
def exported(fresh_database_url, tmp_path):
    populate(fresh_database_url)
    path = tmp_path / "backup.jsonl"
    result = cli(fresh_database_url, "export", "--out", str(path))
    assert "sha256" in result.stdout
    return fresh_database_url, path


def answers(url: str) -> dict:
    """What the native API says about every model, its versions, requests and comments, and the policies."""
    app = create_app({"database_url": url, "auth_enabled": False})
    client = app.test_client()
    headers = {"X-Registry-Actor": "alice"}

    def get(path):
        response = client.get(path, headers=headers)
        assert response.status_code == 200, (path, response.get_data(as_text=True))
        return response.get_json()

    found = {"models": get("/api/v1/models")}
    for model in found["models"]["models"]:
        name = model["name"]
        found[name] = get(f"/api/v1/models/{name}")
        found[f"{name}/versions"] = get(f"/api/v1/models/{name}/versions")
        found[f"{name}/requests"] = get(f"/api/v1/models/{name}/transition-requests")
        for version in found[f"{name}/versions"]["versions"]:
            found[f"{name}/{version['version']}/comments"] = get(
                f"/api/v1/models/{name}/versions/{version['version']}/comments")
    found["audit"] = get("/api/v1/audit-events?max_results=1000")
    with app.app_context():
        db.engine.dispose()
    return found


def test_an_export_verifies_offline_without_a_database(exported):
    _, path = exported
    result = cli(None, "audit", "verify", "--export", str(path))
    assert "export intact" in result.stdout
    kinds = {row["kind"] for row in rows(path)}
    assert kinds == {"user", "model", "version", "alias", "policy", "permission", "request", "comment",
                     "audit_event"}
    request = next(row for row in rows(path) if row["kind"] == "request" and row["status"] == "approved")
    assert [a["approver"] for a in request["approvals"]] == ["bob"]
    assert all("hash" in row and "prev_hash" in row for row in rows(path) if row["kind"] == "audit_event")


def _rewrite(path: Path, change) -> Path:
    lines = path.read_text().splitlines()
    change(lines)
    tampered = path.with_name("tampered.jsonl")
    tampered.write_text("\n".join(lines) + "\n")
    return tampered


def test_a_tampered_event_fails_offline_verification_naming_its_line(exported):
    _, path = exported

    def change(lines):
        for i, line in enumerate(lines):
            row = json.loads(line)
            if row["kind"] == "audit_event" and row["action"] == "request.approved":
                row["actor"] = "mallory"
                lines[i] = json.dumps(row, ensure_ascii=False)
                return

    result = cli(None, "audit", "verify", "--export", str(_rewrite(path, change)), ok=False)
    assert result.returncode == 1
    assert "audit chain broken at line" in result.stderr and "content does not match its hash" in result.stderr


def test_a_removed_last_event_or_an_altered_row_fails_offline_verification(exported):
    _, path = exported

    def drop_last_event(lines):
        last = max(i for i, line in enumerate(lines) if json.loads(line)["kind"] == "audit_event"
                   and json.loads(line)["chain_id"] != 0 and json.loads(line)["model_name"] == "churn")
        del lines[last]

    result = cli(None, "audit", "verify", "--export", str(_rewrite(path, drop_last_event)), ok=False)
    assert result.returncode == 1 and "events were removed from its end" in result.stderr

    def alter_version(lines):
        for i, line in enumerate(lines):
            row = json.loads(line)
            if row["kind"] == "version":
                row["source"] = "s3://evil/model"
                lines[i] = json.dumps(row, ensure_ascii=False)
                return

    result = cli(None, "audit", "verify", "--export", str(_rewrite(path, alter_version)), ok=False)
    assert result.returncode == 1 and "does not match its footer" in result.stderr


def test_export_restore_into_an_empty_registry_round_trips(exported, second_database_url, tmp_path):
    original_url, path = exported
    restored = cli(second_database_url, "import", "registry", "--from", str(path))
    assert count(restored.stdout, "skipped") == count(restored.stdout, "failed") == 0
    assert count(restored.stdout, "imported") == 4  # the registry-wide rows, two models, one deleted model's trail
    again = tmp_path / "again.jsonl"
    cli(second_database_url, "export", "--out", str(again))
    assert rows(again) == rows(path)
    assert answers(second_database_url) == answers(original_url)
    # --no-record: recording the outcome (audit.verified) would change the registry-wide chain restored below.
    assert "audit trail intact" in cli(second_database_url, "audit", "verify", "--no-record").stdout
    # A second restore finds everything there already.
    second = cli(second_database_url, "import", "registry", "--from", str(path))
    assert count(second.stdout, "unchanged") == 4 and count(second.stdout, "imported") == 0
    # Ids hand out past the restored ones, and the chains go on from the restored heads.
    app = create_app({"database_url": second_database_url})
    with app.app_context():
        created = versions.create_version(ALICE, "churn", "s3://b/churn/5")
        assert created.version == 5
        models.create_model(ALICE, "after-restore")
        db.engine.dispose()
    # --no-record: recording the outcome (audit.verified) would change the registry-wide chain restored below.
    assert "audit trail intact" in cli(second_database_url, "audit", "verify", "--no-record").stdout
    # Once it changed here, a restore leaves it alone and says why.
    third = cli(second_database_url, "import", "registry", "--from", str(path))
    assert count(third.stdout, "skipped") == 1 and "another history" in words(third.stdout), third.stdout


def test_a_tampered_export_is_not_restored(exported, second_database_url):
    _, path = exported

    def change(lines):
        row = json.loads(lines[3])
        row["description"] = "changed"
        lines[3] = json.dumps(row, ensure_ascii=False)

    result = cli(second_database_url, "import", "registry", "--from", str(_rewrite(path, change)), ok=False)
    assert result.returncode == 2 and "does not verify" in result.stderr


def test_a_partial_export_holds_only_the_chosen_models(fresh_database_url, tmp_path):
    populate(fresh_database_url)
    path = tmp_path / "churn.jsonl"
    cli(fresh_database_url, "export", "--models", "ch*", "--out", str(path))
    found = rows(path)
    assert {row["name"] for row in found if row["kind"] == "model"} == {"churn"}
    assert not [row for row in found if row["kind"] == "user"]
    assert {row["chain_id"] for row in found if row["kind"] == "audit_event"} == \
        {row["id"] for row in found if row["kind"] == "model"}
    assert "export intact" in cli(None, "audit", "verify", "--export", str(path)).stdout


def test_restore_into_a_registry_whose_ids_are_taken_imports_as_new_models(exported, second_database_url):
    _, path = exported
    app = create_app({"database_url": second_database_url})
    with app.app_context():
        models.create_model(ALICE, "already-here")  # takes model id 1
        versions.create_version(ALICE, "already-here", "s3://here/1")
        db.engine.dispose()
    result = cli(second_database_url, "import", "registry", "--from", str(path))
    assert "ids are taken here" in words(result.stdout)
    # --no-record: recording the outcome (audit.verified) would change the registry-wide chain restored below.
    assert "audit trail intact" in cli(second_database_url, "audit", "verify", "--no-record").stdout
    app = create_app({"database_url": second_database_url, "auth_enabled": False})
    response = app.test_client().get("/api/v1/models/churn/versions", headers={"X-Registry-Actor": "alice"})
    assert sorted(v["version"] for v in response.get_json()["versions"]) == [1, 3, 4]
