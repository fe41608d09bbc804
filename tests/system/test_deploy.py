"""The deployment files agree with the code: probes hit real routes, commands name real files, modules and
CLI commands, and the database URL comes from a secret. (No container engine runs here, so nothing is built.)"""
from __future__ import annotations

import ast
import importlib.util
import json
import re
import shlex
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from registry import create_app
from registry.cli import main

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
IMAGE_ROOT = "/app"  # the Dockerfile's WORKDIR, where the repository's files are copied
PLACEHOLDER_URL = "postgresql://registry@127.0.0.1:1/registry"  # never connected to


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", (DEPLOY / "Dockerfile").read_text())
    return [tuple(line.strip().split(None, 1)) for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def dockerfile(instruction: str) -> list[str]:
    return [args for name, args in dockerfile_instructions() if name == instruction]


def kubernetes() -> dict[str, dict]:
    docs = [d for f in sorted((DEPLOY / "kubernetes").glob("*.yaml")) for d in yaml.safe_load_all(f.read_text()) if d]
    return {doc["kind"]: doc for doc in docs}


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())


def pod_containers(kind: str) -> list[dict]:
    return kubernetes()[kind]["spec"]["template"]["spec"]["containers"]


@pytest.fixture(scope="module")
def routes_answering_get():
    app = create_app({"database_url": PLACEHOLDER_URL})
    return {rule.rule for rule in app.url_map.iter_rules() if "GET" in rule.methods}


@pytest.mark.parametrize("probe, path", [("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")])
def test_kubernetes_probes_use_health_routes_on_the_served_port(routes_answering_get, probe, path):
    (container,) = pod_containers("Deployment")
    port_names = {p["name"] for p in container["ports"]}

    assert container[probe]["httpGet"]["path"] == path
    assert path in routes_answering_get
    assert container[probe]["httpGet"]["port"] in port_names


def test_container_port_is_the_port_gunicorn_binds():
    (container,) = pod_containers("Deployment")
    (env,) = dockerfile("ENV")

    bind_port = int(re.search(r"REGISTRY_BIND=[\d.]+:(\d+)", env).group(1))
    assert [p["containerPort"] for p in container["ports"]] == [bind_port]
    assert kubernetes()["Service"]["spec"]["ports"][0]["targetPort"] == container["ports"][0]["name"]


@pytest.mark.parametrize("source", ["Dockerfile HEALTHCHECK", "compose healthcheck"])
def test_health_check_urls_are_routes(routes_answering_get, source):
    text = dockerfile("HEALTHCHECK")[0] if source.startswith("Dockerfile") else \
        " ".join(compose()["services"]["registry"]["healthcheck"]["test"])
    paths = re.findall(r"http://127\.0\.0\.1:8080(/[\w/]*)", text)

    assert paths and set(paths) <= routes_answering_get


def module_assigns(module: str, name: str) -> bool:
    # Parsed, not imported: registry.wsgi builds the app and touches the database at import.
    tree = ast.parse(Path(importlib.util.find_spec(module).origin).read_text())
    return any(isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets)
               for node in tree.body)


def test_container_command_names_real_entrypoint_config_and_wsgi_app():
    (entrypoint,) = [json.loads(args)[0] for args in dockerfile("ENTRYPOINT")]
    command = json.loads(dockerfile("CMD")[0])
    config = command[command.index("--config") + 1]
    module, _, attribute = command[-1].partition(":")

    assert (ROOT / Path(entrypoint).relative_to(IMAGE_ROOT)).is_file()
    assert command[0] == "gunicorn"
    assert (ROOT / Path(config).relative_to(IMAGE_ROOT)).is_file()
    assert module_assigns(module, attribute)


@pytest.mark.parametrize("source", ["kubernetes Job", "compose migrate"])
def test_release_step_is_a_registry_cli_command(monkeypatch, source):
    (job,) = pod_containers("Job")
    argv = job["args"] if source == "kubernetes Job" else compose()["services"]["migrate"]["command"]
    monkeypatch.setenv("DATABASE_URL", PLACEHOLDER_URL)
    monkeypatch.delenv("FLASK_RUN_FROM_CLI", raising=False)  # restored afterwards: the Flask CLI sets it

    assert argv == ["registry", "db", "upgrade"]
    # --help resolves the whole command path through the real CLI without touching the database.
    result = CliRunner().invoke(main, [*argv[1:], "--help"])
    assert result.exit_code == 0, result.output


def test_migration_job_runs_the_image_the_deployment_serves():
    (job,) = pod_containers("Job")
    (web,) = pod_containers("Deployment")

    assert job["image"] == web["image"]


def test_compose_serves_only_after_migrations_succeeded():
    services = compose()["services"]

    assert services["registry"]["depends_on"] == {"migrate": {"condition": "service_completed_successfully"}}
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert services["migrate"]["image"] == services["registry"]["image"]


def test_dockerfile_copies_paths_that_exist():
    sources = [src for args in dockerfile("COPY") for src in shlex.split(args)[:-1] if not src.startswith("--")]

    assert sources
    assert [s for s in sources if not (ROOT / s).exists()] == []


def test_dockerfile_runs_as_a_non_root_user_on_python_311_slim():
    (user,) = dockerfile("USER")

    assert dockerfile("FROM") == ["python:3.11-slim"]
    assert user.split(":")[0] not in {"0", "root"}
    assert kubernetes()["Deployment"]["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True


@pytest.mark.parametrize("kind", ["Deployment", "Job"])
def test_kubernetes_database_url_comes_from_a_secret(kind):
    for container in pod_containers(kind):
        (database_url,) = [e for e in container["env"] if e["name"] == "DATABASE_URL"]

        assert "value" not in database_url
        assert database_url["valueFrom"]["secretKeyRef"]["key"]
