"""`registry audit verify` proves the trail intact, and names the first event that was altered or removed."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg2
import pytest

from registry import create_app
from registry.auth import Actor
from registry.extensions import db
from registry.services import models, stages, versions
from tests.server import cli_env

REGISTRY = Path(sys.executable).parent / "registry"


@pytest.fixture
def populated_url(fresh_database_url):
    app = create_app({"database_url": fresh_database_url})
    with app.app_context():
        actor = Actor("alice", is_admin=True)
        models.create_model(actor, "audited")
        for i in range(3):
            versions.create_version(actor, "audited", f"s3://b/{i}", run_id=f"run{i}")
        stages.transition_stage(actor, "audited", 2, "Production")
        db.engine.dispose()
    return fresh_database_url


def verify(url: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(REGISTRY), "audit", "verify"], env=cli_env(url), capture_output=True, text=True,
                          timeout=120)


def tamper(url: str, statement: str) -> None:
    """Bypass the append-only trigger as a superuser would, to simulate tampering."""
    connection = psycopg2.connect(url.replace("postgresql+psycopg2://", "postgresql://"))
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute("SET LOCAL session_replication_role = replica")
            cursor.execute(statement)
    finally:
        connection.close()


def event_id(url: str, seq: int) -> int:
    connection = psycopg2.connect(url.replace("postgresql+psycopg2://", "postgresql://"))
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT id FROM audit_events WHERE seq = %s", (seq,))
            return cursor.fetchone()[0]
    finally:
        connection.close()


def test_verify_succeeds_on_an_untouched_trail(populated_url):
    result = verify(populated_url)
    assert result.returncode == 0, result.stderr
    assert "5 events verified" in result.stdout


def test_verify_names_the_altered_event(populated_url):
    target = event_id(populated_url, 3)
    tamper(populated_url, f"UPDATE audit_events SET actor = 'mallory' WHERE id = {target}")
    result = verify(populated_url)
    assert result.returncode == 1
    assert f"id={target}" in result.stderr
    assert "does not match its hash" in result.stderr


def test_verify_names_the_event_after_a_removed_one(populated_url):
    removed, following = event_id(populated_url, 2), event_id(populated_url, 3)
    tamper(populated_url, f"DELETE FROM audit_events WHERE id = {removed}")
    result = verify(populated_url)
    assert result.returncode == 1
    assert f"id={following}" in result.stderr
    assert "removed" in result.stderr


def test_verify_detects_a_rewritten_hash_chain_link(populated_url):
    target = event_id(populated_url, 4)
    tamper(populated_url, f"UPDATE audit_events SET prev_hash = repeat('0', 64) WHERE id = {target}")
    result = verify(populated_url)
    assert result.returncode == 1
    assert f"id={target}" in result.stderr
