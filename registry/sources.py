"""Which model version sources are accepted: MLflow's rules (``mlflow/server/handlers.py``,
``_create_model_version`` and the validators it calls, the same in 3.17 and 3.18), as a registry-only MLflow
server applies them. They came from security fixes: a source is where clients will load a model from, and the
run it names is the version's lineage, which the audit trail is indexed by.

* Path traversal: a source whose path, percent-decoded until stable, has ``..`` or ``.`` segments, a NUL, or is
  not absolute, is refused (``s3://b/models/../secrets``, ``s3://b/%2E%2E/x``, ``models/churn``).
* Local paths (``/srv/model``, ``file:///srv/model``, a relative path): MLflow accepts one only inside the
  artifact directory of the run (or logged model) sent with it, which its own tracking store must hold; a
  registry holds no runs, so they are refused, unless the operator allows local sources
  (``REGISTRY_ALLOW_LOCAL_SOURCES=1``, for single-host or shared-filesystem setups): then an absolute path is.
* ``runs:/<run>/...`` needs the ``run_id`` sent to be that run: a version that claims run A but points at
  run B's artifacts would be a lineage lie.
* ``models:/<model_id>`` (an MLflow 3 logged model) needs the ``model_id`` sent to be that one.
* ``mlflow-artifacts:`` sources (and ``http(s)://.../api/2.0/mlflow-artifacts/artifacts/...``) need a
  ``run_id`` or ``model_id``; MLflow also checks that the source lies under that run's artifact root, which
  needs the tracking server's data this registry does not have.
* ``models:/<name>/<version|stage|latest>`` and ``models:/<name>@<alias>`` name another registered version:
  the use case resolves it (``services/lineage.py``) and the run sent, if any, must be that version's.
* A prompt version (tag ``mlflow.prompt.is_prompt`` = true) has a placeholder source and nothing else.

Unlike MLflow, ``http(s)``, ``ftp``, ``hdfs`` and other host-addressed sources are accepted: MLflow refuses
them because its server would connect to the host they name; this registry never reads a source.
"""
from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass

from .errors import InvalidArgument

PROMPT_TAG = "mlflow.prompt.is_prompt"
PROMPT_SOURCES = frozenset({"dummy-source", "prompt-template"})  # MLflow's placeholders (prompt/constants.py)
_ARTIFACTS_ROUTE = ("api", "2.0", "mlflow-artifacts", "artifacts")


@dataclass(frozen=True, slots=True)
class VersionReference:
    """``models:/<name>/<suffix>`` or ``models:/<name>@<alias>``: another registered version, resolved by the
    use case. Exactly one of ``version``, ``stage`` and ``alias`` is set, or none: the latest version."""

    name: str
    version: int | None = None
    stage: str | None = None
    alias: str | None = None


def _invalid(source: str, why: str) -> InvalidArgument:
    return InvalidArgument(f"Invalid model version source: '{source}'. {why}", {"field": "source"})


def _unquoted(text: str) -> str:
    while (decoded := urllib.parse.unquote_plus(text)) != text:
        text = decoded
    return text


def _check_path(source: str) -> None:
    """MLflow's ``_validate_non_local_source_contains_relative_paths``, without touching the filesystem: the
    decoded path must already be absolute and normalised (MLflow compares it with ``Path.resolve()``, which
    would also follow the server's symlinks)."""
    decoded = _unquoted(source)
    path = re.sub(r"/+", "/", urllib.parse.urlparse(decoded).path.rstrip("/"))
    segments = path.split("/")
    if ("\x00" in path or ".." in decoded.split("/") or not path.startswith("/")
            or any(s in (".", "..") for s in segments[1:])):
        raise _invalid(source, "An absolute path must be provided without relative path references present.")


def _is_local(source: str) -> bool:
    """MLflow's ``is_local_uri`` for artifact URIs: no scheme, or ``file:`` on this host."""
    parsed = urllib.parse.urlparse(source)
    if parsed.scheme == "":
        return True
    if parsed.scheme == "file":
        host = parsed.hostname
        if host and not (host == "." or host.startswith("localhost") or host.startswith("127.0.0.1")):
            raise _invalid(source, "A file URI may not name another host.")
        return True
    return False


def _is_mlflow_artifacts(source: str) -> bool:
    parsed = urllib.parse.urlsplit(source)
    if parsed.scheme.lower() == "mlflow-artifacts":
        return True
    parts = tuple(_unquoted(p) for p in parsed.path.split("/") if p)
    n = len(_ARTIFACTS_ROUTE)
    return parsed.scheme.lower() in ("http", "https") and any(
        parts[i:i + n] == _ARTIFACTS_ROUTE for i in range(len(parts) - n + 1))


def _models_reference(source: str) -> VersionReference | str:
    """MLflow's ``_parse_model_uri``: a registered version, or a logged model's id."""
    parsed = urllib.parse.urlparse(source, allow_fragments=False)
    if parsed.netloc:
        raise _invalid(source, "Registered model sources must use the active model registry.")
    path = parsed.path
    parts = path.lstrip("/").split("/")
    if not path.startswith("/") or len(path) <= 1 or len(parts) > 2 or not parts[0].strip():
        raise _invalid(source, "Models URIs look like 'models:/name/version', 'models:/name/stage', "
                               "'models:/name/latest', 'models:/name@alias' or 'models:/<model_id>'.")
    if len(parts) == 2:
        name, suffix = parts
        if not suffix.strip():
            raise _invalid(source, "The models URI has an empty version.")
        if suffix.isascii() and suffix.isdigit():
            return VersionReference(name, version=int(suffix))
        if suffix.lower() == "latest":
            return VersionReference(name)
        return VersionReference(name, stage=suffix)
    if "@" in path:
        name, _, alias = parts[0].rpartition("@")
        if not alias.strip():
            raise _invalid(source, "The models URI has an empty alias.")
        return VersionReference(name, alias=alias)
    return parts[0]  # models:/<model_id>


def _runs_id(source: str) -> str:
    parsed = urllib.parse.urlparse(source)
    run = parsed.path[1:].split("/")[0] if parsed.path.startswith("/") else ""
    if parsed.netloc or not run:
        raise _invalid(source, "Runs URIs look like 'runs:/<run_id>/path/to/model'.")
    return run


def _needs(source: str, what: str) -> InvalidArgument:
    return _invalid(source, f"The {what} request parameter must identify the resource that contains the source.")


def check_source(source: str, *, run_id: str | None, model_id: str | None, tags: dict[str, str],
                 allow_local: bool) -> VersionReference | None:
    """Refuse a source MLflow would refuse (``InvalidArgument``); return the version it names when it names
    one (``models:/<name>/...``), for the caller to resolve. ``run_id`` / ``model_id``: as sent (None: not)."""
    if tags.get(PROMPT_TAG, "false").lower() == "true":
        if source not in PROMPT_SOURCES:
            raise InvalidArgument(f"Invalid prompt source: '{source}'. Prompt sources must use an MLflow "
                                  f"placeholder.", {"field": "source"})
        return None
    if _is_local(source):
        if not allow_local:
            raise _invalid(source, "Local paths are not accepted: this registry cannot check that they lie in "
                                   "the run's artifacts (an operator may allow them: REGISTRY_ALLOW_LOCAL_SOURCES).")
        _check_path(source)
        return None
    _check_path(source)
    scheme = urllib.parse.urlparse(source).scheme
    if scheme == "runs":
        if model_id or _runs_id(source) != run_id:
            raise _needs(source, "model_id" if model_id else "run_id")
        return None
    if scheme == "models":
        reference = _models_reference(source)
        if isinstance(reference, str):  # a logged model: the model_id sent must be it
            if reference != model_id:
                raise _needs(source, "model_id")
            return None
        return reference
    if _is_mlflow_artifacts(source) and not (run_id or model_id):
        raise _needs(source, "run_id")
    return None


def check_lineage(source: str, *, run_id: str | None, model_id: str | None, referenced_run_id: str | None) -> None:
    """A source naming another version inherits its run; a run sent with it must be that run. No version here
    records a logged model, so a ``model_id`` sent with it cannot match (MLflow compares it the same way)."""
    if (run_id is not None and run_id != (referenced_run_id or "")) or model_id:
        raise _invalid(source, "The run_id and model_id request parameters must match the referenced model "
                               "version.")
