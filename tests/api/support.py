"""Helpers shared by the native API tests: check the one error shape and walk paginated listings."""
from __future__ import annotations

import time

from registry.extensions import CACHES_KEY


def assert_error(response, status: int, code: str | None = None) -> dict:
    """The one native error shape, with the given status (and code)."""
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"code", "message", "details"}
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["details"], dict)
    if code is not None:
        assert error["code"] == code
    return error


def walk(client, path: str, key: str, **params) -> list[list[dict]]:
    """Every page of a paginated listing (items under ``key``), following next_page_token until it is null."""
    pages, token = [], None
    while True:
        query = dict(params, **({"page_token": token} if token else {}))
        response = client.get(path, query_string=query)
        assert response.status_code == 200, response.get_data(as_text=True)
        body = response.get_json()
        pages.append(body[key])
        token = body["next_page_token"]
        if token is None:
            return pages


def listening(app) -> None:
    """Answers are cached only while the change listener is connected: wait until it is (bounded so that a
    listener that never connects fails the test rather than hanging it)."""
    hub = app.extensions[CACHES_KEY].hub
    hub.ensure_listening()
    deadline = time.monotonic() + 30
    while not hub.healthy and time.monotonic() < deadline:
        time.sleep(0.01)
    assert hub.healthy


def metric_samples(text: str) -> dict[tuple[str, tuple], float]:
    """Prometheus text -> {(sample name, sorted label pairs): value}."""
    from prometheus_client.parser import text_string_to_metric_families

    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found
