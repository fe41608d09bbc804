"""The fields every dialect's webhook shares, checked as a client sends them: the receiver URL, the
description, and the Databricks HTTP/job targets (whose secrets are sealed as they are stored). Pure
validation; the use cases are in ``webhooks.py``, ``mlflow_webhooks.py`` and ``native_webhooks.py``.
"""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from .. import names
from ..errors import InvalidArgument
from ..events.sealing import seal
from ..extensions import settings
from ..orm import RegistryWebhook

MAX_URL = 4096
MAX_SECRET = 4096


@dataclass(frozen=True)
class HttpTarget:
    url: str
    secret: str | None = None
    authorization: str | None = None
    enable_ssl_verification: bool = True


@dataclass(frozen=True)
class JobTarget:
    job_id: str
    access_token: str
    workspace_url: str | None = None


def checked_url(raw: object, field: str) -> str:
    text = names.bounded_text(raw, field, MAX_URL, required=True)
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidArgument(f"{field} must be an absolute http(s) URL.", {"field": field})
    # As Databricks, https only; but a self-hosted registry often notifies services on its own private
    # network, so the operator may allow http (the dispatcher checks again: the setting may change).
    if parts.scheme == "http" and not settings().webhook_allow_http:
        raise InvalidArgument(f"{field} must be an https URL (the operator may allow http with "
                              "REGISTRY_WEBHOOK_ALLOW_HTTP=true).", {"field": field})
    # A URL is shown to whoever manages the webhook and recorded in the audit trail; credentials belong in the
    # write-only http_url_spec.authorization (e.g. "Basic <base64>"), which neither ever shows.
    if "@" in parts.netloc:
        raise InvalidArgument(f"{field} must not carry credentials (user:password@); send them in "
                              "http_url_spec.authorization instead.", {"field": field})
    return text


def without_credentials(url: str | None) -> str | None:
    """The URL without its user:password@ part (URLs stored before those were refused may have one)."""
    parts = urlsplit(url) if url is not None else None
    if parts is None or "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def checked_description(raw: object) -> str:
    return names.bounded_text(raw, "description", names.MAX_DESCRIPTION) or ""


def _optional(raw: object, field: str, maximum: int = MAX_SECRET) -> str | None:
    return names.bounded_text(raw, field, maximum) or None


def _check_http(target: HttpTarget) -> HttpTarget:
    if not isinstance(target.enable_ssl_verification, bool):
        raise InvalidArgument("enable_ssl_verification must be a boolean.",
                              {"field": "http_url_spec.enable_ssl_verification"})
    return HttpTarget(checked_url(target.url, "http_url_spec.url"), _optional(target.secret, "http_url_spec.secret"),
                      _optional(target.authorization, "http_url_spec.authorization"),
                      target.enable_ssl_verification)


def _check_job(target: JobTarget) -> JobTarget:
    job_id = names.bounded_text(target.job_id, "job_spec.job_id", 256, required=True)
    token = names.bounded_text(target.access_token, "job_spec.access_token", MAX_SECRET, required=True)
    workspace = checked_url(target.workspace_url, "job_spec.workspace_url") if target.workspace_url else None
    return JobTarget(job_id, token, workspace)


def set_target(row: RegistryWebhook, http: HttpTarget | None, job: JobTarget | None) -> None:
    """Point ``row`` at the given target (if any), replacing the other kind; secrets are sealed."""
    if http is not None and job is not None:
        raise InvalidArgument("Give either http_url_spec or job_spec, not both.", {"field": "http_url_spec"})
    if http is not None:
        http = _check_http(http)
        row.http_url, row.http_secret, row.http_authorization = http.url, seal(http.secret), seal(http.authorization)
        row.enable_ssl_verification = http.enable_ssl_verification
        row.job_id = row.job_access_token = row.job_workspace_url = None
    elif job is not None:
        job = _check_job(job)
        row.job_id, row.job_access_token, row.job_workspace_url = job.job_id, seal(job.access_token), job.workspace_url
        row.http_url = row.http_secret = row.http_authorization = None
        row.enable_ssl_verification = True
