"""Warming in a real worker (registry/warming.py, started by ``post_worker_init`` in deploy/gunicorn.conf.py):
a worker that starts on a registry that already holds models answers the first read of each one's Production
(and alias) with an answer it rendered ahead, and warms again after its listener reconnects (which empties every
cache).

Whether a read was answered from the cache is read from the server's own metrics: every serving read looks up
its rendered response once (``registry_cache_lookups_total{kind=<the view's endpoint>}``), whichever way it is
answered. No assertion is about time."""
from __future__ import annotations

from contextlib import closing

import psycopg2
import pytest
import requests

from tests.api.support import metric_samples
from tests.server import ADMIN_HEADERS, running_server, server_process, until

AUTH = {"REGISTRY_AUTH": "enabled", "REGISTRY_DB_POOL_SIZE": "4"}
MODELS = [f"warm-{i}" for i in range(3)]
TIMEOUT = 60.0


def call(method: str, url: str, expect: int = 200, **kwargs) -> requests.Response:
    response = requests.request(method, url, headers=ADMIN_HEADERS, timeout=TIMEOUT, **kwargs)
    assert response.status_code == expect, response.text
    return response


def seed(base: str) -> None:
    for name in MODELS:
        call("POST", f"{base}/api/v1/models", 201, json={"name": name})
        for n in (1, 2):
            call("POST", f"{base}/api/v1/models/{name}/versions", 201, json={"source": f"s3://b/{name}/{n}"})
        call("POST", f"{base}/api/v1/models/{name}/versions/2/transition", json={"stage": "Production"})
        call("PUT", f"{base}/api/v1/models/{name}/aliases/champion", json={"version": 2})


def warmings(base: str) -> float:
    return metric_samples(call("GET", f"{base}/metrics").text).get(("registry_cache_warmings_total", ()), 0.0)


STAGE_READ = "native_serving.current_in_stage"
ALIAS_READ = "native_serving.current_by_alias"


def response_lookups(base: str, kind: str) -> dict[str, float]:
    samples = metric_samples(call("GET", f"{base}/metrics").text)
    return {result: samples.get(("registry_cache_lookups_total", (("kind", kind), ("result", result))), 0.0)
            for result in ("hit", "miss")}


def read_every_production(base: str, expected: dict[str, int] | None = None, *, alias: bool = False
                          ) -> dict[str, float]:
    """Read each model's Production (or ``champion``) once (``expected``: model -> version, else 2 for all);
    the response lookups they made (metrics are added up once a second)."""
    expected = expected or {name: 2 for name in MODELS}
    kind = ALIAS_READ if alias else STAGE_READ
    before = response_lookups(base, kind)
    for name, version in expected.items():
        path = "aliases/champion" if alias else "stages/Production"
        assert call("GET", f"{base}/api/v1/models/{name}/{path}").json()["version"] == version
    counted: dict[str, float] = {}

    def all_counted() -> bool:
        counted.update({k: v - before[k] for k, v in response_lookups(base, kind).items()})
        return sum(counted.values()) >= len(expected)

    until(all_counted, "the reads' cache lookups in the metrics")
    return counted


@pytest.fixture
def seeded(fresh_database_url):
    with running_server(fresh_database_url, workers=1, extra_env=AUTH) as base:
        seed(base)
    return fresh_database_url


@pytest.mark.parametrize("warm, misses", [(True, 0), (False, len(MODELS))], ids=["default", "off"])
def test_a_new_worker_answers_its_first_reads_from_the_warmed_cache(seeded, warm, misses):
    env = AUTH if warm else {**AUTH, "REGISTRY_WARM_STAGES": "none", "REGISTRY_WARM_ALIASES": "none"}
    with server_process(seeded, workers=1, extra_env=env) as server:
        if warm:
            until(lambda: warmings(server.url) == 1, "the worker warmed its cache")
        assert read_every_production(server.url)["miss"] == misses
        assert read_every_production(server.url, alias=True)["miss"] == misses
        assert warmings(server.url) == (1 if warm else 0)


def test_a_worker_warms_again_after_its_listener_reconnects(seeded):
    with server_process(seeded, workers=1, extra_env=AUTH) as server:
        until(lambda: warmings(server.url) == 1, "the worker warmed its cache")
        read_every_production(server.url)
        # A promotion: the warm answer of that model is dropped and the next read sees it.
        call("POST", f"{server.url}/api/v1/models/{MODELS[0]}/versions/1/transition",
             json={"stage": "Production", "archive_existing_versions": True})
        assert call("GET", f"{server.url}/api/v1/models/{MODELS[0]}/stages/Production").json()["version"] == 1
        with closing(psycopg2.connect(seeded)) as connection, connection.cursor() as cursor:
            cursor.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                           "WHERE datname = current_database() AND application_name = 'registry-listener'")
            assert cursor.fetchone()[0] == 1
        until(lambda: warmings(server.url) == 2, "the worker warmed its cache again")
        lookups = read_every_production(server.url, {MODELS[0]: 1, MODELS[1]: 2, MODELS[2]: 2})
        assert lookups["miss"] == 0
