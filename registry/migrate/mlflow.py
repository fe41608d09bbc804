"""Reading a running MLflow registry through its REST API (``/api/2.0/mlflow``), as model snapshots, handed to
the writer model by model while the reading goes on.

Two paginated scans, whatever the number of models, run at once: every registered model (with tags and
aliases) in a thread of its own, and every model version (with tags) asked for in order of model name and
version number, so that a model's versions arrive together: once the next model's begin, the model is
complete and is handed over (``read_models`` yields it) while the scans carry on, and a stock MLflow server
(one core) reads while this process writes. A source that does not keep that order (a server that ignores
``order_by``) is noticed when a model's versions resume after another's: from there on everything is read
first, and each model handed over before it was complete is handed over again, whole (the import brings it up
to date).

Versions a source deleted are not listed by MLflow, so an imported model keeps the gaps in its numbers. MLflow
3 keeps prompts as registered models tagged ``mlflow.prompt.is_prompt`` and leaves them out of a plain search:
a second scan of each kind asks for them, and they are imported as what they are stored as, registered models
with their tags (this registry serves them to MLflow's prompt client as prompts again).
"""
from __future__ import annotations

import fnmatch
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Iterator

import requests

from .run import Reporter
from ..services.import_snapshots import ModelSnapshot, RequestSnapshot, VersionSnapshot, from_millis

# Page sizes: a stock MLflow server answers a page of registered models with a query per model (their latest
# versions), and its uvicorn supervisor kills a worker that stays busy for seconds (measured: a page of 1,000
# models on a loaded 2-core machine). Smaller pages cost a few more round trips and keep each answer short.
MODELS_PAGE = 200
VERSIONS_PAGE = 2000
VERSION_ORDER = ["name ASC", "version_number ASC"]
TIMEOUT = 120
ATTEMPTS = 4  # a dropped connection or a 5xx is retried, with a growing pause: reads are idempotent
PROMPTS = "tags.`mlflow.prompt.is_prompt` = 'true'"
# A plain search (MLflow 3 leaves prompts out of it), then the prompts.
SCANS = ({}, {"filter": PROMPTS})
REQUEST_READERS = 4  # Databricks lists open requests per version: that many asked at once


class SourceError(Exception):
    """The source answered with an error, or not at all."""


@dataclass
class MlflowSource:
    url: str
    token: str | None = None

    _local: threading.local = field(default_factory=threading.local, init=False, repr=False)

    def __post_init__(self) -> None:
        self.url = self.url.rstrip("/")

    @property
    def http(self) -> requests.Session:
        """A session (its kept-alive connections) per thread: the scans read at once."""
        http = getattr(self._local, "http", None)
        if http is None:
            http = self._local.http = requests.Session()
            if self.token:
                http.headers["Authorization"] = f"Bearer {self.token}"
        return http

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


class _ModelScan:
    """The scans of registered models, in a thread of their own: every wanted model by name, as pages arrive."""

    def __init__(self, source: MlflowSource, patterns: tuple[str, ...], reporter: Reporter):
        self.source, self.patterns, self.reporter = source, patterns, reporter
        self.found: dict[str, dict] = {}  # the wanted ones
        self.listed: set[str] = set()
        self.done = False
        self.error: BaseException | None = None
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="import-read-models", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        started = time.monotonic()
        try:
            for scan in SCANS:
                for page in self.source.pages("registered-models/search", "registered_models", MODELS_PAGE, **scan):
                    with self._changed:
                        self.found.update((raw["name"], raw) for raw in page if wanted(raw["name"], self.patterns))
                        self.listed.update(raw["name"] for raw in page)
                        self._changed.notify_all()
        except BaseException as error:  # handed to the reader, which raises it
            self.error = error
        finally:
            with self._changed:
                self.done = True
                self._changed.notify_all()
        if self.error is None:
            self.reporter.total(len(self.found))
            self.reporter.note(f"read {len(self.found)} models from {self.source.url} in "
                               f"{time.monotonic() - started:.1f} s")

    def get(self, name: str) -> dict | None:
        """The model's record once the scan has listed it; None if it is not wanted (or the scan ended without it)."""
        with self._changed:
            self._changed.wait_for(lambda: name in self.listed or self.done)
        self._raise()
        return self.found.get(name)

    def all(self) -> dict[str, dict]:
        self._thread.join()
        self._raise()
        return self.found

    def _raise(self) -> None:
        if self.error is not None:
            raise self.error


def _complete_models(source: MlflowSource, versions: dict[str, list[VersionSnapshot]],
                     reporter: Reporter) -> Iterator[str]:
    """Scan every version into ``versions`` (by model name); while the source keeps the order asked for, yield
    each model's name as soon as its versions are all in (the next model's have begun, or the scan ended)."""
    started = time.monotonic()
    seen: set[tuple[str, str]] = set()
    ordered, current = True, None
    for scan in SCANS:
        for page in source.pages("model-versions/search", "model_versions", VERSIONS_PAGE, order_by=VERSION_ORDER,
                                 **scan):
            for raw in page:
                key = (raw["name"], raw["version"])
                if key in seen:  # listed twice: by both scans (MLflow 2), or a page boundary moved meanwhile
                    continue
                seen.add(key)
                if raw["name"] != current:
                    if raw["name"] in versions:  # this model's versions resumed: the order was not kept
                        ordered = False
                    if ordered and current is not None:
                        yield current
                    current = raw["name"]
                versions[current].append(version_snapshot(raw))
        if ordered and current is not None:
            yield current
        current = None
    reporter.note(f"read {len(seen)} versions from {source.url} in {time.monotonic() - started:.1f} s"
                  + ("" if ordered else " (not in the order asked for: imported once all were read)"))


def read_models(source: MlflowSource, patterns: tuple[str, ...], reporter: Reporter) -> Iterator[ModelSnapshot]:
    """Every wanted model of the source with its versions, each as soon as it is complete (see the module doc).
    A name may come twice, only from a source that did not keep the order: the second snapshot is the whole."""
    models = _ModelScan(source, patterns, reporter)
    databricks = source.is_databricks()
    versions: dict[str, list[VersionSnapshot]] = defaultdict(list)
    handed: dict[str, int] = {}  # name -> how many versions it had when handed over
    with ThreadPoolExecutor(REQUEST_READERS, thread_name_prefix="import-read-requests") as readers:
        def snapshot(name: str, raw: dict) -> ModelSnapshot:
            handed[name] = len(versions[name])
            found = sorted(versions[name], key=lambda v: v.version)
            requests_ = _open_requests(source, readers, name, found) if databricks else ()
            return model_snapshot(raw, found, requests_)

        for name in _complete_models(source, versions, reporter):
            raw = models.get(name)
            if raw is not None:
                yield snapshot(name, raw)
        # Models without versions; and, from a source that did not keep the order, the models that were not
        # complete when handed over, and the rest.
        for name, raw in sorted(models.all().items()):
            if handed.get(name) != len(versions.get(name, ())):
                yield snapshot(name, raw)


def _open_requests(source: MlflowSource, readers: ThreadPoolExecutor, name: str,
                   versions: list[VersionSnapshot]) -> tuple[RequestSnapshot, ...]:
    """Databricks lists open requests per version (the only review history its public API shows)."""
    def listed(v: VersionSnapshot) -> list[RequestSnapshot]:
        return [request_snapshot(v.version, raw) for raw in source.get(
            "transition-requests/list", name=name, version=str(v.version)).get("requests", [])]

    return tuple(r for found in readers.map(listed, versions) for r in found)
