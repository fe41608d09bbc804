"""At least once, never lost: ``kill -9`` of a ``registry events dispatch`` process in the middle of a delivery."""
from __future__ import annotations

import os
import signal
import subprocess
import threading

from registry.services import models, versions, webhooks
from tests.server import BIN, cli_env

from .receiver import Receiver
from .test_delivery import states, wait_until


def dispatch_process(database_url: str) -> subprocess.Popen:
    env = cli_env(database_url)
    env.update(REGISTRY_WEBHOOK_ALLOW_HTTP="true", REGISTRY_WEBHOOK_ALLOW_NETWORKS="127.0.0.0/8",
               REGISTRY_WEBHOOK_BACKOFF_MS="50")
    return subprocess.Popen([str(BIN / "registry"), "events", "dispatch"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_a_dispatcher_killed_mid_delivery_leaves_the_event_to_the_next_one(live, alice, fresh_database_url):
    hold = threading.Event()
    with Receiver(hold=hold) as receiver:
        models.create_model(alice, "fraud")
        webhooks.create_webhook(alice, ["MODEL_VERSION_CREATED"], model_name="fraud",
                                http=webhooks.HttpTarget(url=receiver.url, secret="s3cr3t"))
        versions.create_version(alice, "fraud", "s3://b/1")
        first = dispatch_process(fresh_database_url)
        try:
            receiver.wait_for(1)  # the delivery is in flight: the receiver holds its answer
            os.kill(first.pid, signal.SIGKILL)
            first.wait(30)
        finally:
            first.kill()
        hold.set()
        assert states() == ["pending"]

        second = dispatch_process(fresh_database_url)
        try:
            received = receiver.wait_for(2)
            wait_until(lambda: states() == ["delivered"])
        finally:
            second.send_signal(signal.SIGTERM)
            assert second.wait(30) == 0, second.stderr.read().decode()
    assert received[0].body == received[1].body  # the same event, delivered again: at least once
