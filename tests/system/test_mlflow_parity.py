"""What a stock MLflow 3.17/3.18 server does and we must do too, seen through the unmodified MLflow client
(issue 13): timestamps that move as MLflow moves them, copies that outlive their source, MLflow's source
rules, its answers to version 0 and to a padded stage, and writes the 3.18 client may send twice.

Runs in both client environments (``make test`` and ``make test-clients-mlflow318``)."""
from __future__ import annotations

import time

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from tests.clients import native, stages_api, unique

pytestmark = pytest.mark.slow


@pytest.fixture
def model(client) -> str:
    name = unique("parity")
    client.create_registered_model(name)
    client.create_model_version(name, "s3://bucket/parity/1", run_id="run-1")
    return name


def error_of(call) -> MlflowException:
    with pytest.raises(MlflowException) as caught:
        call()
    return caught.value


def later() -> None:
    """Timestamps are milliseconds: make sure the next change happens in a later one."""
    time.sleep(0.01)


# --- 1. what moves last_updated_timestamp -----------------------------------------------------------------

def test_a_transition_moves_the_models_last_updated_timestamp(client, model):
    before = client.get_registered_model(model).last_updated_timestamp
    later()
    with stages_api():
        moved = client.transition_model_version_stage(model, "1", "Staging")
    after = client.get_registered_model(model).last_updated_timestamp
    assert after > before
    assert after == moved.last_updated_timestamp


def test_a_version_deletion_moves_the_models_last_updated_timestamp(client, model):
    before = client.get_registered_model(model).last_updated_timestamp
    later()
    client.delete_model_version(model, "1")
    assert client.get_registered_model(model).last_updated_timestamp > before


def test_a_job_polling_by_last_updated_sees_a_promotion_first(client, model):
    other = unique("parity-other")
    client.create_registered_model(other)
    later()
    with stages_api():
        client.transition_model_version_stage(model, "1", "Production")
    found = client.search_registered_models("name LIKE 'parity-%'", order_by=["last_updated_timestamp DESC"],
                                            max_results=1)
    assert [m.name for m in found] == [model]


def test_a_rename_moves_every_versions_last_updated_timestamp(client, model):
    before = client.get_model_version(model, "1").last_updated_timestamp
    later()
    renamed = unique("parity-renamed")
    client.rename_registered_model(model, renamed)
    assert client.get_model_version(renamed, "1").last_updated_timestamp > before


def test_tags_and_aliases_move_no_timestamp_as_in_mlflow(client, model):
    model_before = client.get_registered_model(model).last_updated_timestamp
    version_before = client.get_model_version(model, "1").last_updated_timestamp
    later()
    client.set_registered_model_tag(model, "team", "growth")
    client.set_model_version_tag(model, "1", "validated", "yes")
    client.set_registered_model_alias(model, "champion", "1")
    assert client.get_registered_model(model).last_updated_timestamp == model_before
    assert client.get_model_version(model, "1").last_updated_timestamp == version_before


# --- 2. a copy keeps its source's storage location ----------------------------------------------------------

def test_a_copy_downloads_from_the_sources_storage_after_the_source_model_is_deleted(client, model):
    destination = unique("parity-copy")
    copy = client.copy_model_version(f"models:/{model}/1", destination)
    assert copy.source == f"models:/{model}/1"  # the source names the version it was copied from, as MLflow's
    assert copy.run_id == "run-1"
    client.delete_registered_model(model)
    assert client.get_model_version_download_uri(destination, copy.version) == "s3://bucket/parity/1"


def test_a_copy_by_alias_records_the_resolved_version(client, model):
    client.create_model_version(model, "s3://bucket/parity/2", run_id="run-2")
    client.set_registered_model_alias(model, "champion", "2")
    copy = client.copy_model_version(f"models:/{model}@champion", unique("parity-copy"))
    assert copy.source == f"models:/{model}/2"
    assert client.get_model_version_download_uri(copy.name, copy.version) == "s3://bucket/parity/2"


# --- 3. MLflow's source rules -------------------------------------------------------------------------------

@pytest.mark.parametrize("source, run_id", [
    ("/srv/models/churn", None),
    ("file:///srv/models/churn", None),
    ("models/churn", None),
    ("s3://bucket/models/../secrets", None),
    ("s3://bucket/models/%2E%2E/secrets", None),
    ("runs:/run-b/model", "run-a"),
    ("runs:/run-b/model", None),
], ids=["local-path", "file-uri", "relative", "dot-dot", "encoded-dot-dot", "other-run", "run-missing"])
def test_sources_a_registry_only_mlflow_refuses(client, model, source, run_id):
    error = error_of(lambda: client.create_model_version(model, source, run_id=run_id))
    assert error.error_code == "INVALID_PARAMETER_VALUE"
    assert "source" in error.message
    assert client.get_registered_model(model).latest_versions[0].version == "1"  # nothing was created


def test_a_runs_source_of_the_run_sent_is_accepted(client, model):
    version = client.create_model_version(model, "runs:/run-7/model", run_id="run-7")
    assert client.get_model_version_download_uri(model, version.version) == "runs:/run-7/model"


# --- 4. version 0 and a padded stage ------------------------------------------------------------------------

@pytest.mark.parametrize("version", ["0", "-1"])
def test_version_zero_or_negative_does_not_exist(client, model, version):
    assert error_of(lambda: client.get_model_version(model, version)).error_code == "RESOURCE_DOES_NOT_EXIST"


def test_a_stage_with_surrounding_spaces_is_refused(client, model):
    with stages_api():
        error = error_of(lambda: client.transition_model_version_stage(model, "1", " staging "))
    assert error.error_code == "INVALID_PARAMETER_VALUE"
    assert "Invalid Model Version stage:  staging ." in error.message
    assert client.get_model_version(model, "1").current_stage == "None"


# --- 6. writes the 3.18 client treats as safe to send again ---------------------------------------------------

def _generation(registry_url: str, model: str) -> int:
    return native(registry_url, "GET", f"/models/{model}/aliases/latest")["generation"]


def _events(registry_url: str, model: str) -> list[str]:
    return [e["action"] for e in native(registry_url, "GET", f"/audit-events?model={model}")["events"]]


def test_repeated_tag_and_alias_sets_change_nothing_the_second_time(client, model, registry_url):
    client.set_registered_model_tag(model, "team", "growth")
    client.set_model_version_tag(model, "1", "validated", "yes")
    client.set_registered_model_alias(model, "champion", "1")
    generation, trail = _generation(registry_url, model), _events(registry_url, model)

    client.set_registered_model_tag(model, "team", "growth")
    client.set_model_version_tag(model, "1", "validated", "yes")
    client.set_registered_model_alias(model, "champion", "1")

    assert _generation(registry_url, model) == generation  # nothing announced: no cache dropped, no waiter woken
    assert _events(registry_url, model) == trail
    assert client.get_registered_model(model).tags == {"team": "growth"}
    assert client.get_model_version(model, "1").tags == {"validated": "yes"}


def test_a_lost_answer_to_a_tag_or_alias_set_is_retried_and_recorded_once(client, model, registry_url,
                                                                         monkeypatch):
    """The answer is lost after the write committed (the connection drops); the client sends the request
    again, as both 3.17 and 3.18 do for these writes, and the registry records one change."""
    from tests.system.lossy_proxy import lossy_proxy

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")
    with lossy_proxy(registry_url, drop_first=("/registered-models/set-tag", "/model-versions/set-tag",
                                               "/registered-models/alias")) as proxy:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", proxy.url)
        monkeypatch.setenv("MLFLOW_REGISTRY_URI", proxy.url)
        retried = MlflowClient()
        retried.set_registered_model_tag(model, "team", "growth")
        retried.set_model_version_tag(model, "1", "validated", "yes")
        retried.set_registered_model_alias(model, "champion", "1")
        assert proxy.dropped == 3 and proxy.forwarded >= 6
    trail = _events(registry_url, model)
    assert [trail.count(a) for a in ("model.tag_set", "version.tag_set", "alias.set")] == [1, 1, 1]


@pytest.mark.skipif(mlflow.__version__ < "3.18", reason="before 3.18 the client resends every write after a "
                                                         "lost answer, creates included")
def test_a_lost_answer_to_a_create_is_not_resent_and_the_version_exists_once(client, model, registry_url,
                                                                           monkeypatch):
    """3.18 resends a create only after 408/429 or a connection that failed before sending (so we never
    answer those after committing one: tests/api/test_retry_statuses.py); a lost answer surfaces instead."""
    from tests.system.lossy_proxy import lossy_proxy

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")
    with lossy_proxy(registry_url, drop_first=("/model-versions/create",)) as proxy:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", proxy.url)
        monkeypatch.setenv("MLFLOW_REGISTRY_URI", proxy.url)
        with pytest.raises(Exception):
            MlflowClient().create_model_version(model, "s3://bucket/parity/2")
    versions = client.search_model_versions(f"name = '{model}'")
    assert sorted(v.version for v in versions) == ["1", "2"]


def test_the_client_under_test_is_a_supported_version():
    assert mlflow.__version__ in {"3.17.2", "3.18.0"}
