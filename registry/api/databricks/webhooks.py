"""Databricks registry webhooks: ``/api/2.0/mlflow/registry-webhooks/{create,update,delete,list,test}``.

Deliveries come from the outbox (``registry/events/``); ``test`` sends a made-up event to the receiver at once
and answers its ``status_code`` and ``body``. Secrets (``http_url_spec.secret``/``authorization``,
``job_spec.access_token``) are write-only.
"""
from __future__ import annotations

from typing import Any

from ...errors import InvalidArgument
from ...schemas import databricks as wire
from ...services import webhooks
from ..authn import current_actor
from ..mlflow import ok
from . import bp
from ..mlflow.wire import params

DEFAULT_PAGE = 100


def _object(p, field: str) -> dict[str, Any] | None:
    value = p.raw(field)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidArgument(f"Parameter '{field}' must be an object.", {"field": field})
    return value


def _http(p) -> webhooks.HttpTarget | None:
    spec = _object(p, "http_url_spec")
    if spec is None:
        return None
    return webhooks.HttpTarget(url=spec.get("url"), secret=spec.get("secret"),
                               authorization=spec.get("authorization"),
                               enable_ssl_verification=spec.get("enable_ssl_verification", True))


def _job(p) -> webhooks.JobTarget | None:
    spec = _object(p, "job_spec")
    if spec is None:
        return None
    return webhooks.JobTarget(job_id=spec.get("job_id"), access_token=spec.get("access_token"),
                              workspace_url=spec.get("workspace_url"))


def _webhook(record):
    return ok({"webhook": wire.webhook_json(record)})


@bp.post("/registry-webhooks/create")
def create_webhook():
    p = params()
    return _webhook(webhooks.create_webhook(
        current_actor(), p.strings("events"), model_name=p.string("model_name") or None,
        description=p.string("description"), status=p.string("status"), http=_http(p), job=_job(p),
    ))


@bp.patch("/registry-webhooks/update")
def update_webhook():
    p = params()
    return _webhook(webhooks.update_webhook(
        current_actor(), p.required("id"), events=p.strings("events") or None,
        description=p.string("description"), status=p.string("status"), http=_http(p), job=_job(p),
    ))


@bp.delete("/registry-webhooks/delete")
def delete_webhook():
    p = params()
    webhooks.delete_webhook(current_actor(), p.required("id"))
    return ok()


@bp.get("/registry-webhooks/list")
def list_webhooks():
    p = params()
    page = webhooks.list_webhooks(
        current_actor(), model_name=p.string("model_name") or None, events=p.strings("events") or None,
        max_results=p.integer("max_results") or DEFAULT_PAGE, page_token=p.string("page_token") or None,
    )
    body: dict[str, Any] = {}
    if page.items:
        body["webhooks"] = [wire.webhook_json(w) for w in page.items]
    if page.next_page_token:
        body["next_page_token"] = page.next_page_token
    return ok(body)


@bp.post("/registry-webhooks/test")
def test_webhook():
    p = params()
    result = webhooks.test_webhook(current_actor(), p.required("id"), p.string("event"))
    # Top-level status_code/body as the API reference documents; also under "webhook", where databricks-sdk
    # up to 0.57 read them.
    answer = {"status_code": result.status_code, "body": result.body}
    return ok({**answer, "webhook": answer})
