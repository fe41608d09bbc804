"""Set up a real server (the ``registry_url`` fixture in tests/conftest.py) through its native API, as the
bootstrap admin: users, tokens, grants, policies. Shared by the MLflow-client and databricks-sdk tests."""
from __future__ import annotations

import uuid
import warnings
from contextlib import contextmanager

import requests

from tests.server import ADMIN_HEADERS


def native(url: str, method: str, path: str, json=None, expect: int = 200) -> dict:
    """Call the native API as the bootstrap admin (test setup: users, tokens, grants, policies)."""
    response = requests.request(method, url + "/api/v1" + path, json=json, headers=ADMIN_HEADERS, timeout=30)
    assert response.status_code == expect, response.text
    return response.json()


def user_token(url: str, user: str, level: str | None = None) -> str:
    """A new user with a fresh token, holding ``level`` registry-wide."""
    native(url, "POST", "/users", {"name": user}, expect=201)
    token = native(url, "POST", "/tokens", {"user": user}, expect=201)["token"]
    if level is not None:
        native(url, "PATCH", "/permissions", {"grants": [{"principal": user, "level": level}]})
    return token


@contextmanager
def stages_api():
    """Stage methods are deprecated in MLflow (FutureWarning); they still work and are what we test."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        yield


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"
