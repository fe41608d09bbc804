"""``registry watch`` against a real gunicorn server (issue 12): each mode (print, --write, --exec), resuming after
the server went away, and ending when the token is revoked.

A stream reads its first answers after it has taken the hub's clock, so a change made once the first answers
arrived is never missed: unlike the long-poll tests, no head start is needed. Waits are bounded only so that
a broken wake-up fails instead of hanging.
"""
from __future__ import annotations

import json
import queue
import subprocess
import threading

import pytest
import requests

from tests.server import ADMIN_HEADERS, ADMIN_TOKEN, BIN, ServerProcess, cli_env, free_port, running_server, \
    server_command, server_env, until

ENV = {"REGISTRY_AUTH": "enabled", "REGISTRY_DB_POOL_SIZE": "4", "REGISTRY_WATCH_HEARTBEAT_SECONDS": "1"}
MODEL = "fraud"
TIMEOUT = 90.0


def call(base: str, method: str, path: str, expect: int = 200, **kwargs) -> requests.Response:
    response = requests.request(method, f"{base}/api/v1/models/{MODEL}{path}", headers=ADMIN_HEADERS,
                                timeout=TIMEOUT, **kwargs)
    assert response.status_code == expect, response.text
    return response


def seed(base: str) -> None:
    requests.post(f"{base}/api/v1/models", json={"name": MODEL}, headers=ADMIN_HEADERS, timeout=TIMEOUT)
    for _ in range(3):
        call(base, "POST", "/versions", 201, json={"source": "s3://f/n"})
    call(base, "POST", "/versions/1/transition", json={"stage": "Production"})
    call(base, "PUT", "/aliases/champion", json={"version": 1})


def promote(base: str, version: int) -> None:
    call(base, "POST", f"/versions/{version}/transition",
         json={"stage": "Production", "archive_existing_versions": True})


class Watcher:
    """``registry watch`` as a process; its stdout lines are read into a queue by a thread."""

    def __init__(self, database_url: str, base: str, *args: str, token: str = ADMIN_TOKEN):
        argv = [str(BIN / "registry"), "watch", "--url", base, "--token", token, "--idle-timeout", "10", *args]
        self.process = subprocess.Popen(argv, env=cli_env(database_url), stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue = queue.Queue()
        self.stderr: list[str] = []
        threading.Thread(target=self._read, args=(self.process.stdout, self.lines.put), daemon=True).start()
        threading.Thread(target=self._read, args=(self.process.stderr, self.stderr.append), daemon=True).start()

    @staticmethod
    def _read(stream, put) -> None:
        for line in stream:
            put(line.rstrip("\n"))

    def line(self) -> dict:
        try:
            return json.loads(self.lines.get(timeout=TIMEOUT))
        except queue.Empty:
            raise AssertionError(f"no line from registry watch; stderr: {self.stderr}") from None

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.terminate()
        return self.process.wait(TIMEOUT)


@pytest.fixture
def server(fresh_database_url):
    with running_server(fresh_database_url, workers=1, extra_env=ENV) as base:
        seed(base)
        yield base


@pytest.fixture
def watchers():
    started: list[Watcher] = []
    yield started
    for watcher in started:
        watcher.stop()


def test_prints_one_json_line_per_change(server, fresh_database_url, watchers):
    watcher = Watcher(fresh_database_url, server, f"{MODEL}:Production", f"{MODEL}@champion")
    watchers.append(watcher)
    first = {line["selector"]: line for line in (watcher.line(), watcher.line())}
    assert first[f"{MODEL}:Production"]["version"] == first[f"{MODEL}@champion"]["version"] == 1
    assert first[f"{MODEL}:Production"]["event"] == "answer"
    call(server, "PUT", "/aliases/champion", json={"version": 2})
    got = {line["selector"]: line for line in (watcher.line(), watcher.line())}
    assert got[f"{MODEL}@champion"]["version"] == 2
    assert got[f"{MODEL}:Production"]["aliases"] == []  # champion left the Production version
    call(server, "PUT", "/tags/team", json={"value": "risk"})  # moves the model, not the answers
    promote(server, 3)
    line = watcher.line()
    assert (line["selector"], line["version"]) == (f"{MODEL}:Production", 3)
    assert watcher.lines.empty()
    assert watcher.stop() == 0


def test_write_keeps_a_file_up_to_date_atomically(server, fresh_database_url, watchers, tmp_path):
    target = tmp_path / "serving.json"
    watchers.append(Watcher(fresh_database_url, server, "--write", str(target), f"{MODEL}:Production",
                            f"{MODEL}:Staging"))
    seen: list[dict] = []

    def holds(version) -> bool:
        if not target.exists():
            return False
        document = json.loads(target.read_text())  # never half a file: every read parses
        seen.append(document)
        answer = document.get(f"{MODEL}:Production")
        return answer is not None and answer["version"] == version and f"{MODEL}:Staging" in document

    until(lambda: holds(1), "the file holds version 1")
    assert json.loads(target.read_text())[f"{MODEL}:Staging"] is None  # nothing in Staging: null
    promote(server, 2)
    until(lambda: holds(2), "the file holds version 2")
    assert [p.name for p in tmp_path.iterdir()] == ["serving.json"]  # no temporary file left behind


def test_exec_runs_the_command_with_the_answer_in_its_environment(server, fresh_database_url, watchers, tmp_path):
    log = tmp_path / "reloads.log"
    command = f'echo "$REGISTRY_WATCH_EVENT $REGISTRY_WATCH_SELECTOR $REGISTRY_VERSION $REGISTRY_SOURCE" >> {log}'
    watchers.append(Watcher(fresh_database_url, server, "--exec", command, f"{MODEL}:Production"))
    until(lambda: log.exists() and log.read_text().count("\n") == 1, "the first run")
    promote(server, 2)
    until(lambda: log.read_text().count("\n") == 2, "a run for the promotion")
    assert log.read_text().splitlines() == [f"answer {MODEL}:Production 1 s3://f/n",
                                            f"answer {MODEL}:Production 2 s3://f/n"]
    call(server, "POST", "/versions/2/transition", json={"stage": "Archived"})
    until(lambda: log.read_text().count("\n") == 3, "a run for the empty stage")
    assert log.read_text().splitlines()[-1] == f"missing {MODEL}:Production  "


def test_resumes_after_the_server_went_away(fresh_database_url, watchers):
    """The server stops; a promotion lands through another server meanwhile; the watcher reconnects to the
    restarted one with Last-Event-ID and gets the promotion, and nothing else again."""
    port = free_port()
    argv, env = server_command("gunicorn", port, 1), server_env(fresh_database_url, ENV)
    first = ServerProcess(argv, env, port)
    try:
        first.wait_until()
        seed(first.url)
        watcher = Watcher(fresh_database_url, first.url, f"{MODEL}:Production", f"{MODEL}@champion")
        watchers.append(watcher)
        assert {watcher.line()["version"], watcher.line()["version"]} == {1}
    finally:
        first.close()
    with running_server(fresh_database_url, workers=1, extra_env=ENV) as other:
        promote(other, 2)
    second = ServerProcess(argv, env, port)
    try:
        second.wait_until()
        got = {line["selector"]: line for line in (watcher.line(), watcher.line())}
        assert got[f"{MODEL}:Production"]["version"] == 2
        assert (got[f"{MODEL}@champion"]["version"], got[f"{MODEL}@champion"]["stage"]) == (1, "Archived")
        promote(second.url, 3)  # the next line is this one: champion (unchanged) is not printed again
        line = watcher.line()
        assert (line["selector"], line["version"]) == (f"{MODEL}:Production", 3)
        assert not any("afresh" in line for line in watcher.stderr), watcher.stderr  # resumed, not reset
    finally:
        watcher.stop()
        second.close()


def test_exits_3_when_its_token_is_revoked(server, fresh_database_url, watchers):
    created = requests.post(f"{server}/api/v1/tokens", json={"description": "sidecar"}, headers=ADMIN_HEADERS,
                            timeout=TIMEOUT)
    assert created.status_code == 201, created.text
    token = created.json()
    watcher = Watcher(fresh_database_url, server, f"{MODEL}:Production", token=token["token"])
    watchers.append(watcher)
    assert watcher.line()["version"] == 1
    revoked = requests.delete(f"{server}/api/v1/tokens/{token['id']}", headers=ADMIN_HEADERS, timeout=TIMEOUT)
    assert revoked.status_code in (200, 204), revoked.text
    assert watcher.process.wait(TIMEOUT) == 3
    assert any("revoked" in line for line in watcher.stderr), watcher.stderr


def test_refused_selectors_exit_2(server, fresh_database_url):
    watcher = Watcher(fresh_database_url, server, f"{MODEL}")
    assert watcher.process.wait(TIMEOUT) == 2
