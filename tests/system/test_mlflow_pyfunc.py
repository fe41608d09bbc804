"""``mlflow.pyfunc.load_model("models:/...")`` resolves through our registry and loads a real pyfunc model.

Each version's source is a local directory written by ``mlflow.pyfunc.save_model``; the model multiplies
its input by a factor, so a prediction shows which version was loaded. Local sources are what a single-host
setup registers, so this module's server allows them (``REGISTRY_ALLOW_LOCAL_SOURCES=1``); by default they are
refused, as a registry-only MLflow refuses them (test_mlflow_parity.py).
"""
from __future__ import annotations

import uuid
import warnings

import mlflow.pyfunc
import pandas as pd
import pytest
from mlflow import MlflowClient

from tests import pg
from tests.server import ADMIN_TOKEN

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def registry_url(admin_url, template_database):
    """tests/system/conftest.py's server, allowing local sources."""
    from tests.server import running_server

    name = pg.create_database(admin_url, template=template_database)
    try:
        with running_server(pg.with_database(admin_url, name),
                            extra_env={"REGISTRY_AUTH": "enabled", "REGISTRY_ALLOW_LOCAL_SOURCES": "1"}) as url:
            yield url
    finally:
        pg.drop_database(admin_url, name)


class Multiply(mlflow.pyfunc.PythonModel):
    def __init__(self, factor: int):
        self.factor = factor

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.Series:
        return model_input["x"] * self.factor


@pytest.fixture(scope="module")
def saved_models(tmp_path_factory) -> dict[int, str]:
    """Two saved models: factor 1 and factor 10, as local directories."""
    paths = {}
    for factor in (1, 10):
        path = tmp_path_factory.mktemp("models") / f"times-{factor}"
        # pip_requirements given: skips requirement inference, which is slow and irrelevant here.
        mlflow.pyfunc.save_model(str(path), python_model=Multiply(factor), pip_requirements=["mlflow"])
        paths[factor] = str(path)
    return paths


@pytest.fixture
def registered(mlflow_env, saved_models) -> str:
    """Version 1 (x1) is aliased ``champion``; version 2 (x10) is in Production."""
    mlflow_env(ADMIN_TOKEN)
    client = MlflowClient()
    name = f"pyfunc-{uuid.uuid4().hex[:8]}"
    client.create_registered_model(name)
    client.create_model_version(name, saved_models[1])
    client.create_model_version(name, saved_models[10])
    client.set_registered_model_alias(name, "champion", "1")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        client.transition_model_version_stage(name, "2", "Production")
    return name


@pytest.mark.parametrize("uri, factor", [
    ("models:/{name}/Production", 10),
    ("models:/{name}@champion", 1),
    ("models:/{name}/1", 1),
    ("models:/{name}/2", 10),
    ("models:/{name}/latest", 10),
], ids=["stage", "alias", "version-1", "version-2", "latest"])
def test_pyfunc_loads_the_registered_version_and_predicts(registered, uri, factor):
    model = mlflow.pyfunc.load_model(uri.format(name=registered))
    predictions = model.predict(pd.DataFrame({"x": [1, 2, 3]}))
    assert list(predictions) == [1 * factor, 2 * factor, 3 * factor]


def test_a_copy_still_loads_after_its_source_model_is_deleted(registered):
    """As in MLflow: the copy records where the source's artifacts are when it is made, not a pointer to the
    source model, so deleting the source model does not break it."""
    client = MlflowClient()
    copy = client.copy_model_version(f"models:/{registered}@champion", f"{registered}-copy")
    client.delete_registered_model(registered)
    model = mlflow.pyfunc.load_model(f"models:/{copy.name}/{copy.version}")
    assert list(model.predict(pd.DataFrame({"x": [1, 2]}))) == [1, 2]
