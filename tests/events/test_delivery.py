"""Delivery to a real receiver on loopback: signatures, retries with their log, order, sharing the work."""
from __future__ import annotations

import hashlib
import hmac
import threading
import time

from prometheus_client import REGISTRY
from sqlalchemy import text

from registry.extensions import db
from registry.services import models, stages, versions, webhooks

from .receiver import Receiver


def hook(actor, url, events, *, model="fraud", secret="s3cr3t", **target):
    return webhooks.create_webhook(actor, events, model_name=model,
                                   http=webhooks.HttpTarget(url=url, secret=secret, **target))


def attempts(delivery_state: str | None = None):
    sql = ("SELECT d.id, d.state, t.status_code, t.error FROM webhook_attempts t "
           "JOIN webhook_deliveries d ON d.id = t.delivery_id ORDER BY t.id")
    found = [tuple(r) for r in db.session.execute(text(sql))]
    db.session.rollback()
    return found


def wait_until(condition, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition never became true"
        time.sleep(0.05)


def states():
    found = [r[0] for r in db.session.execute(text("SELECT state FROM webhook_deliveries ORDER BY id"))]
    db.session.rollback()
    return found


def test_a_transition_is_delivered_with_the_documented_payload_and_signature(live, alice, dispatchers):
    with Receiver() as receiver:
        models.create_model(alice, "fraud")
        created = hook(alice, receiver.url, ["MODEL_VERSION_TRANSITIONED_STAGE"], authorization="Bearer abc")
        versions.create_version(alice, "fraud", "s3://b/1")
        dispatchers(1)
        stages.transition_stage(alice, "fraud", 1, "Production")

        [request] = receiver.wait_for(1)
    expected = hmac.new(b"s3cr3t", request.body, hashlib.sha256).hexdigest()
    assert request.headers["X-Databricks-Signature"] == expected
    assert request.headers["Authorization"] == "Bearer abc"
    body = request.json
    assert {k: v for k, v in body.items() if k not in ("event_timestamp", "text")} == {
        "event": "MODEL_VERSION_TRANSITIONED_STAGE", "webhook_id": str(created.id), "model_name": "fraud",
        "version": "1", "to_stage": "Production", "from_stage": "None"}
    assert isinstance(body["event_timestamp"], int) and "fraud" in body["text"]
    wait_until(lambda: states() == ["delivered"])


def attempts_counted(outcome: str) -> float:
    return REGISTRY.get_sample_value("registry_webhook_attempts_total", {"outcome": outcome}) or 0.0


def test_a_receiver_down_for_a_while_gets_the_event_and_every_attempt_is_logged(live, alice, dispatchers):
    down = [(503, {"Retry-After": "0"}), (503, {}), (502, {})]
    counted = {outcome: attempts_counted(outcome) for outcome in ("retrying", "delivered")}
    with Receiver(answers=down) as receiver:
        models.create_model(alice, "fraud")
        hook(alice, receiver.url, ["MODEL_VERSION_CREATED"])
        dispatchers(1)
        versions.create_version(alice, "fraud", "s3://b/1")
        received = receiver.wait_for(4)
        wait_until(lambda: states() == ["delivered"])

    assert len({r.body for r in received}) == 1  # the same delivery, again and again
    assert [(state, code) for _, state, code, _ in attempts()] == [
        ("delivered", 503), ("delivered", 503), ("delivered", 502), ("delivered", 200)]
    # The metrics count each attempt by its outcome (registry_webhook_attempts_total).
    assert attempts_counted("retrying") - counted["retrying"] == 3
    assert attempts_counted("delivered") - counted["delivered"] == 1


def test_retries_stop_at_the_maximum_age_and_the_delivery_is_failed(live, alice, dispatchers):
    with Receiver(answers=[(500, {})] * 50) as receiver:
        models.create_model(alice, "fraud")
        hook(alice, receiver.url, ["MODEL_VERSION_CREATED"])
        dispatchers(1, webhook_max_age_seconds=1)
        versions.create_version(alice, "fraud", "s3://b/1")
        wait_until(lambda: states() == ["failed"])
    logged = attempts()
    assert len(logged) >= 1 and all(code == 500 for _, _, code, _ in logged)


def test_events_of_one_model_arrive_in_order_even_with_several_dispatchers(live, alice, dispatchers):
    with Receiver() as receiver:
        models.create_model(alice, "fraud")
        hook(alice, receiver.url, ["MODEL_VERSION_CREATED", "MODEL_VERSION_TAG_SET"])
        dispatchers(2)
        for n in range(1, 11):
            versions.create_version(alice, "fraud", f"s3://b/{n}")
            versions.set_version_tag(alice, "fraud", n, "k", str(n))
        received = receiver.wait_for(20)
        wait_until(lambda: states() == ["delivered"] * 20)

    sent = [(r.json["event"], r.json["version"]) for r in received]
    assert sent == [(event, str(n)) for n in range(1, 11)
                    for event in ("MODEL_VERSION_CREATED", "MODEL_VERSION_TAG_SET")]


def test_two_dispatchers_deliver_each_event_once(live, alice, dispatchers):
    with Receiver() as receiver:
        for name in ("a", "b", "c", "d"):
            models.create_model(alice, name)
            hook(alice, receiver.url, ["MODEL_VERSION_CREATED"], model=name)
        dispatchers(2)
        for n in range(10):
            for name in ("a", "b", "c", "d"):
                versions.create_version(alice, name, f"s3://b/{n}")
        wait_until(lambda: states() == ["delivered"] * 40)
        time.sleep(0.5)  # room for a duplicate to show up (none may)
        received = list(receiver.received)

    keys = [(r.json["model_name"], r.json["version"]) for r in received]
    assert len(keys) == 40 and len(set(keys)) == 40


def test_a_changed_url_is_used_for_the_next_attempt(live, alice, dispatchers):
    with Receiver(answers=[(503, {"Retry-After": "1"})]) as first, Receiver() as second:
        models.create_model(alice, "fraud")
        created = hook(alice, first.url, ["MODEL_VERSION_CREATED"])
        dispatchers(1)
        versions.create_version(alice, "fraud", "s3://b/1")
        first.wait_for(1)
        webhooks.update_webhook(alice, created.id, http=webhooks.HttpTarget(url=second.url, secret="n3w"))
        [request] = second.wait_for(1)
    assert request.headers["X-Databricks-Signature"] == hmac.new(b"n3w", request.body, hashlib.sha256).hexdigest()


def test_a_receiver_the_policy_refuses_fails_at_once_with_the_reason_logged(live, alice, dispatchers):
    with Receiver() as receiver:
        models.create_model(alice, "fraud")
        hook(alice, receiver.url, ["MODEL_VERSION_CREATED"])
        dispatchers(1, webhook_allow_networks=())  # loopback no longer allowed
        versions.create_version(alice, "fraud", "s3://b/1")
        wait_until(lambda: states() == ["failed"])
    [(_, _, code, error)] = attempts()
    assert code is None and "127.0.0.1" in error and receiver.received == []


def test_a_redirect_is_a_failed_attempt_and_is_not_followed(live, alice, dispatchers):
    with Receiver() as target, Receiver(answers=[(307, {})]) as receiver:
        receiver.answers[0] = (307, {"Location": target.url})
        models.create_model(alice, "fraud")
        hook(alice, receiver.url, ["MODEL_VERSION_CREATED"])
        dispatchers(1)
        versions.create_version(alice, "fraud", "s3://b/1")
        receiver.wait_for(2)
        wait_until(lambda: states() == ["delivered"])
    assert [(code, error) for _, _, code, error in attempts()] == [
        (307, "redirects are not followed"), (200, None)]
    assert target.received == []


def test_a_job_webhook_triggers_a_run_through_the_workspace(live, alice, dispatchers):
    with Receiver() as workspace:
        models.create_model(alice, "fraud")
        webhooks.create_webhook(alice, ["MODEL_VERSION_CREATED"], model_name="fraud", job=webhooks.JobTarget(
            job_id="42", access_token="job-t0ken", workspace_url=workspace.url.removesuffix("/hook")))
        dispatchers(1)
        versions.create_version(alice, "fraud", "s3://b/1")
        [run] = workspace.wait_for(1)
    assert run.path == "/api/2.1/jobs/run-now" and run.headers["Authorization"] == "Bearer job-t0ken"
    assert run.json["job_id"] == 42
    message = run.json["notebook_params"]["event_message"]
    assert '"event":"MODEL_VERSION_CREATED"' in message and run.json["python_params"] == [message]
