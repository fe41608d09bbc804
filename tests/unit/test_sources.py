"""MLflow's model version source rules (registry/sources.py), as a registry-only MLflow 3.17/3.18 applies them."""
from __future__ import annotations

import pytest

from registry.errors import InvalidArgument
from registry.sources import VersionReference, check_lineage, check_source


def check(source, run_id=None, model_id=None, tags=None, allow_local=False):
    return check_source(source, run_id=run_id, model_id=model_id, tags=tags or {}, allow_local=allow_local)


def refused(source, **kwargs) -> str:
    with pytest.raises(InvalidArgument) as info:
        check(source, **kwargs)
    assert info.value.details == {"field": "source"}
    return info.value.message


@pytest.mark.parametrize("source, run_id", [
    ("s3://bucket/models/churn/1", None),
    ("gs://bucket/m", "run-1"),
    ("dbfs:/databricks/models/m", None),
    ("https://example.com/models/m.tar.gz", None),  # MLflow refuses hosts it would connect to; we never connect
    ("s3://bucket/a+b/c%20d", None),
    ("runs:/run-1/model", "run-1"),
    ("runs:/run-1", "run-1"),
    ("mlflow-artifacts:/0/run-1/artifacts/model", "run-1"),
    ("http://tracking:5000/api/2.0/mlflow-artifacts/artifacts/0/run-1/artifacts/model", "run-1"),
], ids=lambda v: str(v))
def test_accepted(source, run_id):
    assert check(source, run_id=run_id) is None


@pytest.mark.parametrize("source", [
    "/srv/models/churn", "file:///srv/models/churn", "file:/srv/models/churn", "file://localhost/srv/m",
    "models/churn", "./churn", "churn",
])
def test_local_sources_are_refused_by_default(source):
    assert "Local paths are not accepted" in refused(source)


@pytest.mark.parametrize("source", ["/srv/models/churn", "file:///srv/models/churn", "file://localhost/srv/m"])
def test_absolute_local_sources_are_accepted_when_the_operator_allows_them(source):
    assert check(source, allow_local=True) is None


@pytest.mark.parametrize("source", ["models/churn", "./churn", "/srv/../etc/passwd", "/srv/./m", "file:///srv/../m"])
def test_relative_local_sources_are_refused_even_when_local_ones_are_allowed(source):
    assert "relative path" in refused(source, allow_local=True)


def test_a_file_uri_naming_another_host_is_refused():
    refused("file://fileserver/share/model", allow_local=True)


@pytest.mark.parametrize("source", [
    "s3://bucket/models/../secrets",
    "s3://bucket/models/%2E%2E/secrets",
    "s3://bucket/models/%252E%252E/secrets",  # decoded until stable, as MLflow does
    "s3://bucket/models/./m",
    "s3://bucket/m%00",
    "s3://bucket",  # no path at all: MLflow's resolve() check refuses it too
    "mlflow-artifacts://host/../../etc",
    "http://host/api/2.0/mlflow-artifacts/artifacts/../../x",
    "runs:/run-1/../run-2/model",
])
def test_relative_path_references_are_refused(source):
    refused(source, run_id="run-1")


@pytest.mark.parametrize("source, run_id, model_id", [
    ("runs:/run-b/model", "run-a", None),
    ("runs:/run-b/model", None, None),
    ("runs:/run-b/model", "", None),
    ("runs://host/run-b/model", "run-b", None),
    ("runs:/", "run-b", None),
    ("runs:/run-b/model", "run-b", "m-1"),  # a logged model's version cannot point at a run's artifacts
])
def test_a_runs_source_must_be_the_run_sent(source, run_id, model_id):
    refused(source, run_id=run_id, model_id=model_id)


@pytest.mark.parametrize("source", ["mlflow-artifacts:/0/run-1/artifacts/model",
                                    "https://tracking/api/2.0/mlflow-artifacts/artifacts/0/run-1/m"])
def test_an_mlflow_artifacts_source_needs_a_run_or_logged_model(source):
    assert "run_id request parameter" in refused(source)
    assert check(source, model_id="m-1") is None


def test_a_logged_model_source_needs_its_model_id():
    assert check("models:/m-0123abcd", model_id="m-0123abcd", run_id="run-1") is None
    assert "model_id request parameter" in refused("models:/m-0123abcd", run_id="run-1")
    refused("models:/m-0123abcd", model_id="m-other")


@pytest.mark.parametrize("source, reference", [
    ("models:/churn/3", VersionReference("churn", version=3)),
    ("models:/churn/Production", VersionReference("churn", stage="Production")),
    ("models:/churn/latest", VersionReference("churn")),
    ("models:/churn/LATEST", VersionReference("churn")),
    ("models:/churn@champion", VersionReference("churn", alias="champion")),
    ("models:/my model/1", VersionReference("my model", version=1)),
])
def test_a_registered_version_source_is_returned_for_the_use_case_to_resolve(source, reference):
    assert check(source) == reference


@pytest.mark.parametrize("source", ["models://other-registry/churn/1", "models:/churn/1/extra", "models:/",
                                    "models:/churn/ ", "models:/churn@", "models:churn/1"])
def test_malformed_models_sources_are_refused(source):
    refused(source)


@pytest.mark.parametrize("run_id, model_id, referenced, ok", [
    (None, None, "run-1", True),   # not sent: inherited
    ("run-1", None, "run-1", True),
    ("", None, None, True),        # sent empty, as MLflow's copy_model_version does for a version without a run
    ("run-2", None, "run-1", False),
    ("", None, "run-1", False),
    (None, "m-1", "run-1", False),
])
def test_a_run_sent_with_a_version_source_must_be_that_versions(run_id, model_id, referenced, ok):
    call = lambda: check_lineage("models:/churn/1", run_id=run_id, model_id=model_id, referenced_run_id=referenced)
    if ok:
        call()
    else:
        with pytest.raises(InvalidArgument):
            call()


@pytest.mark.parametrize("tags", [{"mlflow.prompt.is_prompt": "true"}, {"mlflow.prompt.is_prompt": "TRUE"}])
def test_prompt_versions_take_a_placeholder_source_only(tags):
    assert check("dummy-source", tags=tags) is None
    assert check("prompt-template", tags=tags) is None
    with pytest.raises(InvalidArgument, match="Invalid prompt source"):
        check("s3://bucket/prompt", tags=tags)
    assert "Local paths" in refused("dummy-source", tags={"mlflow.prompt.is_prompt": "false"})


def test_every_source_in_the_readme_and_the_contract_is_valid_by_default():
    """The examples must work on a registry with default settings (REGISTRY_ALLOW_LOCAL_SOURCES unset)."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    text = (root / "README.md").read_text() + (root / "openapi.yaml").read_text()
    found = re.findall(r"""["']?source["']?\s*[:=]\s*["']?([^"',\s}]+)""", text)
    examples = [s for s in found if "://" in s or s.startswith(("/", "runs:", "models:", "file:"))]
    assert len(examples) >= 3, found
    for source in examples:
        run_id = source.split("/")[1] if source.startswith("runs:/") else None
        if source.startswith("models:/"):
            continue  # names another version: checked when registered (tests/services/test_version_sources.py)
        assert check(source, run_id=run_id) is None, source
