"""Fixtures for tests that run real processes: a real gunicorn server for the unmodified MLflow client and
databricks-sdk (``registry_url``, shared by a module's tests), and those clients pointed at it."""
from __future__ import annotations

import pytest

from tests import pg


@pytest.fixture(scope="module")
def registry_url(admin_url, template_database):
    """A gunicorn server with authentication on, over its own database, shared by a module's tests (the real
    MLflow client and databricks-sdk talk to it; tests/clients.py sets it up through the native API)."""
    from tests.server import running_server

    name = pg.create_database(admin_url, template=template_database)
    try:
        # Webhook tests deliver to a receiver on loopback (tests/events/receiver.py): let it in.
        env = {"REGISTRY_AUTH": "enabled", "REGISTRY_WEBHOOK_ALLOW_HTTP": "true",
               "REGISTRY_WEBHOOK_ALLOW_NETWORKS": "127.0.0.0/8"}
        with running_server(pg.with_database(admin_url, name), extra_env=env) as url:
            yield url
    finally:
        pg.drop_database(admin_url, name)


# --- The unmodified MLflow client, on the real server of ``registry_url`` (above) ----------

@pytest.fixture
def mlflow_env(monkeypatch, registry_url):
    """Point the unmodified MLflow client at the server, as a user would: URIs and a token in the environment.

    ``use(token)`` sets MLFLOW_TRACKING_TOKEN. The client would retry 5xx answers for minutes; with retries
    off, a server error fails the test at once instead of hanging it (we never answer 5xx on purpose).
    """
    monkeypatch.setenv("MLFLOW_TRACKING_URI", registry_url)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", registry_url)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)

    def use(token: str) -> None:
        monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", token)

    return use


@pytest.fixture
def client(mlflow_env):
    """An unmodified ``MlflowClient`` authenticated as the bootstrap admin."""
    from mlflow import MlflowClient

    from tests.server import ADMIN_TOKEN

    mlflow_env(ADMIN_TOKEN)
    return MlflowClient()


# --- The real databricks-sdk, on the real server of ``registry_url`` (above) -------------

@pytest.fixture
def sdk(monkeypatch, registry_url):
    """``sdk(token)`` -> a WorkspaceClient on our server, as a user would build it; no DATABRICKS_* variable
    of the machine running the tests can leak in (the SDK reads ~/.databrickscfg only for a named profile)."""
    import os

    from databricks.sdk import WorkspaceClient
    from databricks.sdk.core import Config

    for key in list(os.environ):
        if key.startswith("DATABRICKS_"):
            monkeypatch.delenv(key)

    def make(token: str) -> WorkspaceClient:
        # A short retry budget: a broken server fails the test quickly instead of being retried for 300 s.
        config = Config(host=registry_url, token=token, auth_type="pat", retry_timeout_seconds=20)
        return WorkspaceClient(config=config)

    return make


# --- A real Chromium (tests/system/browser.py), for the console's browser tests -------------------------

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item, so a fixture can tell that its test failed."""
    outcome = yield
    setattr(item, f"report_{call.when}", outcome.get_result())


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    from tests.system.browser import chromium_or_skip

    executable = chromium_or_skip()
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable)
        yield chromium
        chromium.close()


@pytest.fixture
def new_page(browser, request):
    """``new_page(viewport=None)``: a page in its own context (its own cookies: one person each). When the test
    fails, every page it opened is saved as a screenshot (the path is printed)."""
    from tests.system.browser import failure_screenshot

    contexts = []

    def make(viewport: dict | None = None):
        context = browser.new_context(viewport=viewport or {"width": 1280, "height": 900})
        contexts.append(context)
        return context.new_page()

    yield make
    report = getattr(request.node, "report_call", None)
    for i, context in enumerate(contexts):
        if report is not None and report.failed:
            for page in context.pages:
                print(f"screenshot: {failure_screenshot(page, f'{request.node.name}-{i}')}")
        context.close()
