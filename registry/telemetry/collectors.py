"""Metrics read from the database when scraped: pending review requests, the webhook delivery backlog and the
last audit verification.

Each asks one bounded, indexed query of ``services/operations.py`` under a short statement timeout, so a
scrape stays cheap whatever the registry holds; if the database cannot answer, the collector reports
``registry_collector_up{collector=...} 0`` and the scrape still returns everything else.

Another part of the registry adds its own scrape-time values with ``@scrape_collector`` (a function yielding
prometheus-client metric families).
"""
from __future__ import annotations

import logging
from typing import Callable, Iterable

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError

log = logging.getLogger("registry.telemetry")

_COLLECTORS: list[tuple[str, Callable[[], Iterable]]] = []


def scrape_collector(name: str):
    def register(fn: Callable[[], Iterable]):
        _COLLECTORS.append((name, fn))
        return fn

    return register


class DatabaseCollectors(Collector):
    """Runs every registered scrape-time collector (inside the /metrics request's app context)."""

    def collect(self):
        up = GaugeMetricFamily("registry_collector_up",
                               "1 when a scrape-time collector could read what it reports.", labels=["collector"])
        for name, fn in _COLLECTORS:
            try:
                families = list(fn())
            except SQLAlchemyError as exc:
                log.warning("metrics collector %s failed: %s", name, type(exc).__name__)
                up.add_metric([name], 0)
                continue
            up.add_metric([name], 1)
            yield from families
        yield up


@scrape_collector("pending_requests")
def pending_requests():
    from ..services import operations

    summary = operations.pending_requests()
    total = GaugeMetricFamily("registry_pending_requests", "Pending review requests, by kind (stage, alias).",
                              labels=["kind"])
    for kind, count in sorted(summary.totals.items()):
        total.add_metric([kind], count)
    by_model = GaugeMetricFamily(
        "registry_pending_requests_by_model",
        f"Pending review requests per model and kind (the {operations.PENDING_MODELS_REPORTED} models with the "
        "oldest pending requests).", labels=["model", "kind"])
    oldest = GaugeMetricFamily(
        "registry_pending_request_oldest_age_seconds",
        "Age of the oldest pending review request, per model and kind (same models as "
        "registry_pending_requests_by_model).", labels=["model", "kind"])
    for row in summary.models:
        by_model.add_metric([row.model, row.kind], row.count)
        oldest.add_metric([row.model, row.kind], row.oldest_age_seconds)
    yield from (total, by_model, oldest)


@scrape_collector("webhook_deliveries")
def webhook_deliveries():
    from ..services import operations

    backlog = operations.delivery_backlog()
    pending = GaugeMetricFamily("registry_webhook_deliveries_pending",
                                "Webhook deliveries waiting to be made (first attempts and retries).")
    pending.add_metric([], backlog.pending)
    oldest = GaugeMetricFamily("registry_webhook_delivery_oldest_pending_age_seconds",
                               "Age of the oldest webhook delivery not yet made (0: none waits): the outbox's lag.")
    oldest.add_metric([], backlog.oldest_age_seconds)
    yield from (pending, oldest)


@scrape_collector("audit_verification")
def audit_verification():
    from ..services import operations

    last = operations.last_audit_verification()
    ran = GaugeMetricFamily("registry_audit_verify_last_run_timestamp_seconds",
                            "When `registry audit verify` last ran (Unix time; absent if it never did).")
    ok = GaugeMetricFamily("registry_audit_verify_last_ok",
                           "1 if the last `registry audit verify` found every chain intact, 0 if it found a break.")
    checked = GaugeMetricFamily("registry_audit_verify_last_events_checked",
                                "Events the last `registry audit verify` checked before it finished or broke.")
    if last is not None:
        ran.add_metric([], last.ran_at.timestamp())
        ok.add_metric([], 1 if last.ok else 0)
        checked.add_metric([], last.events_checked)
    yield from (ran, ok, checked)
