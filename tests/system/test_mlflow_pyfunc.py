"""``mlflow.pyfunc.load_model("models:/...")`` resolves through our registry and loads a real pyfunc model.

Each version's source is a local directory written by ``mlflow.pyfunc.save_model``; the model multiplies
its input by a factor, so a prediction shows which version was loaded.
"""
from __future__ import annotations

import uuid
import warnings

import mlflow.pyfunc
import pandas as pd
import pytest
from mlflow import MlflowClient

from tests.server import ADMIN_TOKEN

pytestmark = pytest.mark.slow


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
