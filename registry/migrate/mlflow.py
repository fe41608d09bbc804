"""Reading a running MLflow registry through its REST API (``/api/2.0/mlflow``), as model snapshots.

Two paginated scans, whatever the number of models: every registered model (with tags and aliases), then
every model version (with tags), grouped by model. Versions a source deleted are not listed by MLflow, so
an imported model keeps the gaps in its numbers. MLflow 3 keeps prompts as registered models tagged
``mlflow.prompt.is_prompt`` and leaves them out of a plain search: a second scan of each kind asks for them,
and they are imported as what they are stored as, registered models with their tags (this registry serves
them to MLflow's prompt client as prompts again).
"""
from __future__ import annotations

import fnmatch
import time
from dataclasses import dataclass
from typing import Iterator

import requests

from .run import Reporter
from ..services.import_snapshots import ModelSnapshot, RequestSnapshot, VersionSnapshot, from_millis

# Page sizes: a stock MLflow server answers a page of registered models with a query per model (their latest
# versions), and its uvicorn supervisor kills a worker that stays busy for seconds (measured: a page of 1,000
# models on a loaded 2-core machine). Smaller pages cost a few more round trips and keep each answer short.
MODELS_PAGE = 200
VERSIONS_PAGE = 2000
TIMEOUT = 120
ATTEMPTS = 4  # a dropped connection or a 5xx is retried, with a growing pause: reads are idempotent
PROMPTS = "tags.`mlflow.prompt.is_prompt` = 'true'"
# A plain search (MLflow 3 leaves prompts out of it), then the prompts.
SCANS = ({}, {"filter": PROMPTS})


class SourceError(Exception):
    """The source answered with an error, or not at all."""


@dataclass
class MlflowSource:
    url: str
    token: str | None = None

    def __post_init__(self) -> None:
        self.url = self.url.rstrip("/")
        self.http = requests.Session()
        if self.token:
            self.http.headers["Authorization"] = f"Bearer {self.token}"

    def get(self, path: str, **params) -> dict:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                response = self.http.get(f"{self.url}/api/2.0/mlflow/{path}", params=params, timeout=TIMEOUT)
            except requests.RequestException as error:
                if attempt == ATTEMPTS:
                    raise SourceError(f"{self.url} did not answer: {error}") from None
            else:
                if response.status_code < 500 or attempt == ATTEMPTS:
                    break
            time.sleep(0.5 * 2 ** attempt)
        if response.status_code != 200:
            raise SourceError(f"{self.url} answered {path} with HTTP {response.status_code}: {response.text[:500]}")
        return response.json()

    def is_databricks(self) -> bool:
        """Whether the source speaks Databricks' registry extensions: a stock MLflow has no transition
        requests at all (its answer is no MLflow error, or ENDPOINT_NOT_FOUND)."""
        try:
            response = self.http.get(f"{self.url}/api/2.0/mlflow/transition-requests/list",
                                     params={"name": "registry-import-probe", "version": "1"}, timeout=TIMEOUT)
            code = response.json().get("error_code") if response.status_code != 200 else None
        except (requests.RequestException, ValueError, AttributeError):
            return False
        return response.status_code == 200 or code not in (None, "ENDPOINT_NOT_FOUND")

    def pages(self, path: str, key: str, page_size: int, **params) -> Iterator[list[dict]]:
        token = None
        while True:
            body = self.get(path, max_results=page_size, **params, **({"page_token": token} if token else {}))
            yield body.get(key, [])
            token = body.get("next_page_token")
            if not token:
                return


def _tags(items: list[dict] | None) -> dict[str, str]:
    return {t["key"]: t.get("value", "") for t in items or []}


def wanted(name: str, patterns: tuple[str, ...]) -> bool:
    """``--models`` globs (fnmatch, case-sensitive); none given: every model."""
    return not patterns or any(fnmatch.fnmatchcase(name, p) for p in patterns)


def version_snapshot(raw: dict) -> VersionSnapshot:
    return VersionSnapshot(
        version=int(raw["version"]), source=raw.get("source", ""),
        created_at=from_millis(raw.get("creation_timestamp")),
        updated_at=from_millis(raw.get("last_updated_timestamp") or raw.get("creation_timestamp")),
        run_id=raw.get("run_id") or None, run_link=raw.get("run_link") or None,
        description=raw.get("description", ""), status=raw.get("status", "READY"),
        stage=raw.get("current_stage", "None"), created_by=raw.get("user_id", ""), tags=_tags(raw.get("tags")),
        logged_model_id=raw.get("model_id") or None,
    )


def request_snapshot(version: int, raw: dict) -> RequestSnapshot:
    return RequestSnapshot(version=version, to_stage=raw.get("to_stage", ""), requested_by=raw.get("user_id", ""),
                           created_at=from_millis(raw.get("creation_timestamp")), comment=raw.get("comment", ""))


def model_snapshot(raw: dict, versions: list[VersionSnapshot],
                   requests_: tuple[RequestSnapshot, ...] = ()) -> ModelSnapshot:
    return ModelSnapshot(
        name=raw["name"], created_at=from_millis(raw.get("creation_timestamp")),
        updated_at=from_millis(raw.get("last_updated_timestamp") or raw.get("creation_timestamp")),
        description=raw.get("description", ""), tags=_tags(raw.get("tags")), versions=tuple(versions),
        aliases={a["alias"]: int(a["version"]) for a in raw.get("aliases") or []},
        created_by=raw.get("user_id") or None, requests=requests_,
    )


def read_models(source: MlflowSource, patterns: tuple[str, ...], reporter: Reporter) -> list[ModelSnapshot]:
    """Every wanted model of the source with its versions, in name order."""
    models: dict[str, dict] = {}
    with reporter.phase(f"reading models from {source.url}"):
        for scan in SCANS:
            for page in source.pages("registered-models/search", "registered_models", MODELS_PAGE, **scan):
                for raw in page:
                    if wanted(raw["name"], patterns):
                        models[raw["name"]] = raw
                reporter.advance(len(page))
    versions: dict[str, list[VersionSnapshot]] = {name: [] for name in models}
    with reporter.phase(f"reading versions from {source.url}"):
        seen: set[tuple[str, str]] = set()
        for scan in SCANS:
            for page in source.pages("model-versions/search", "model_versions", VERSIONS_PAGE, **scan):
                for raw in page:
                    if raw["name"] in versions and (raw["name"], raw["version"]) not in seen:
                        seen.add((raw["name"], raw["version"]))
                        versions[raw["name"]].append(version_snapshot(raw))
                reporter.advance(len(page))
    requests_: dict[str, list[RequestSnapshot]] = {name: [] for name in models}
    if source.is_databricks():
        # Databricks lists open requests per version (the only review history its public API shows).
        with reporter.phase(f"reading open transition requests from {source.url}",
                            sum(len(v) for v in versions.values())):
            for name in sorted(models):
                for v in versions[name]:
                    for raw in source.get("transition-requests/list", name=name, version=str(v.version)).get(
                            "requests", []):
                        requests_[name].append(request_snapshot(v.version, raw))
                    reporter.advance()
    return [model_snapshot(models[name], versions[name], tuple(requests_[name])) for name in sorted(models)]
