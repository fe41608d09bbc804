"""The serving hot path (issue 5): ETag / 304 semantics, permissions, and long-polls in one process.

* ETag, 304, Cache-Control and permission tests use the per-test isolated ``client`` / ``secure_client``.
* Long-poll tests need a second thread that waits while the main thread changes something. The isolated
  fixtures funnel every session through one shared connection, which two threads must not use at once, so
  these tests run a Flask test client of their own app on a fresh database (``live``): real commits, real
  NOTIFY, one pooled connection per thread.
No assertion is about time: waits are bounded only so that a broken wake-up fails instead of hanging.
"""
from __future__ import annotations

import re
import threading
import time
from contextlib import closing, contextmanager
from dataclasses import dataclass, field

import psycopg2
import pytest
from sqlalchemy.engine import make_url

from registry import create_app
from registry.extensions import CACHES_KEY
from registry.extensions import db
from tests.api.support import sent_statements

ADMIN = {"X-Registry-Actor": "alice"}
MODEL = "churn"
BASE = f"/api/v1/models/{MODEL}"
PRODUCTION = f"{BASE}/stages/Production"
STAGING = f"{BASE}/stages/Staging"
CHAMPION = f"{BASE}/aliases/champion"
LATEST = f"{BASE}/aliases/latest"
STRONG_ETAG = re.compile(r'^"(\d+)\.(\d+)"$')
# Server-side long-poll length: long enough that no healthy wake-up comes near it, short enough that a broken
# one fails the test in reasonable time. ``JOIN`` bounds the test's wait for the waiting thread.
WAIT = "30"
JOIN = 90.0


def ok(response, status: int = 200):
    assert response.status_code == status, response.get_data(as_text=True)
    return response


def seed(client, headers=ADMIN) -> None:
    """``churn`` with versions 1..3; version 1 in Production and behind ``champion``; Staging empty."""
    ok(client.post("/api/v1/models", json={"name": MODEL}, headers=headers), 201)
    for n in (1, 2, 3):
        ok(client.post(f"{BASE}/versions", json={"source": f"s3://b/{n}", "run_id": f"run-{n}"}, headers=headers),
           201)
    ok(client.post(f"{BASE}/versions/1/transition", json={"stage": "Production"}, headers=headers))
    ok(client.put(f"{BASE}/aliases/champion", json={"version": 1}, headers=headers))


def etag_of(client, url: str, headers=ADMIN) -> str:
    response = client.get(url, headers=headers)
    assert response.status_code in (200, 404), response.get_data(as_text=True)
    return response.headers["ETag"]


def conditional(client, url: str, etag: str, headers=ADMIN, **query):
    return client.get(url, headers={"If-None-Match": etag, **headers}, query_string=query)


def assert_not_modified(response, etag: str) -> None:
    assert response.status_code == 304, response.get_data(as_text=True)
    assert response.get_data() == b""
    assert response.headers["ETag"] == etag
    assert response.headers["Cache-Control"] == "no-cache"


def forget_cached_answers(app) -> None:
    """What another worker sees: an answer read afresh from the database, not this process's cached one."""
    app.extensions[CACHES_KEY].hub.dispatch(None)


# --- ETag, 304 and Cache-Control ---------------------------------------------------------------------------


@pytest.fixture
def seeded(client):
    seed(client)
    return client


@pytest.mark.parametrize("url, version", [(PRODUCTION, 1), (CHAMPION, 1), (LATEST, 3)])
def test_answer_carries_a_strong_etag_of_the_model_generation(seeded, url, version):
    response = ok(seeded.get(url, headers=ADMIN))
    body = response.get_json()
    match = STRONG_ETAG.match(response.headers["ETag"])
    assert match, response.headers["ETag"]
    assert int(match.group(2)) == body["generation"]
    assert body["version"] == version and body["model"] == MODEL
    assert body["source"] == f"s3://b/{version}" and body["run_id"] == f"run-{version}"
    assert response.headers["Cache-Control"] == "no-cache"
    assert "X-Registry-Waited" not in response.headers


def test_answer_lists_the_aliases_of_the_version(seeded):
    ok(seeded.put(f"{BASE}/aliases/blue", json={"version": 1}, headers=ADMIN))
    assert ok(seeded.get(PRODUCTION, headers=ADMIN)).get_json()["aliases"] == ["blue", "champion"]


@pytest.mark.parametrize("url", [STAGING, f"{BASE}/aliases/nobody"])
def test_nothing_in_the_stage_or_behind_the_alias_answers_404_with_the_model_etag(seeded, url):
    response = seeded.get(url, headers=ADMIN)
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "NOT_FOUND"
    assert STRONG_ETAG.match(response.headers["ETag"])
    assert response.headers["ETag"] == etag_of(seeded, PRODUCTION)
    assert response.headers["Cache-Control"] == "no-cache"


@pytest.mark.parametrize("url", ["/api/v1/models/absent/stages/Production", "/api/v1/models/absent/aliases/x"])
def test_missing_model_answers_404_without_an_etag(seeded, url):
    response = seeded.get(url, headers=ADMIN)
    assert response.status_code == 404
    assert "ETag" not in response.headers


@pytest.mark.parametrize("url", [PRODUCTION, CHAMPION, LATEST, STAGING])
def test_current_etag_in_if_none_match_answers_304_without_a_body(seeded, url):
    etag = etag_of(seeded, url)
    assert_not_modified(conditional(seeded, url, etag), etag)


@pytest.mark.parametrize("header", [
    pytest.param(lambda etag: "*", id="star"),
    pytest.param(lambda etag: f'"0.0", {etag}', id="in-a-list"),
    pytest.param(lambda etag: f"W/{etag}", id="weak-form"),
])
def test_if_none_match_forms_that_match_the_current_answer_give_304(seeded, header):
    etag = etag_of(seeded, PRODUCTION)
    assert_not_modified(conditional(seeded, PRODUCTION, header(etag)), etag)


def test_if_none_match_star_on_an_empty_stage_answers_404(seeded):
    # "*" matches any *current representation*; an empty stage has none (RFC 9110, 13.1.2).
    response = conditional(seeded, STAGING, "*")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "NOT_FOUND"


@pytest.mark.parametrize("stale", ['"0.0"', '"nonsense"', "garbage"])
def test_etag_that_does_not_match_answers_200(seeded, stale):
    response = ok(conditional(seeded, PRODUCTION, stale))
    assert response.get_json()["version"] == 1
    assert response.headers["ETag"] != stale


def test_etag_from_before_a_change_answers_200_with_the_new_answer(seeded):
    before = etag_of(seeded, PRODUCTION)
    ok(seeded.post(f"{BASE}/versions/2/transition", json={"stage": "Production"}, headers=ADMIN))
    response = ok(conditional(seeded, PRODUCTION, before))
    assert response.get_json()["version"] == 2
    assert response.headers["ETag"] != before


def _call(client, method: str, path: str, body: dict | None = None) -> None:
    """A write that must succeed; ``path`` is relative to the model unless it starts with /api/."""
    url = path if path.startswith("/api/") else f"{BASE}{path}"
    response = client.open(url, method=method, json=body, headers=ADMIN)
    assert response.status_code in (200, 201, 204), response.get_data(as_text=True)


# Every audited change to the model moves its generation (announced by db/unit_of_work.py at commit), hence
# every serving ETag of the model, whether or not that particular answer moved.
CHANGES = {
    "promote": ("POST", "/versions/2/transition", {"stage": "Production"}),
    "archive-the-production-version": ("POST", "/versions/1/transition", {"stage": "Archived"}),
    "promote-archiving-the-others": ("POST", "/versions/3/transition",
                                     {"stage": "Production", "archive_existing_versions": True}),
    "alias-move": ("PUT", "/aliases/champion", {"version": 2}),
    "alias-set": ("PUT", "/aliases/blue", {"version": 1}),
    "alias-delete": ("DELETE", "/aliases/champion", None),
    "version-delete": ("DELETE", "/versions/1", None),
    "new-version": ("POST", "/versions", {"source": "s3://b/4"}),
    "version-tag-set": ("PUT", "/versions/1/tags/checked", {"value": "yes"}),
    "version-description": ("PATCH", "/versions/1", {"description": "better"}),
    "model-tag-set": ("PUT", "/tags/team", {"value": "risk"}),
    "model-description": ("PATCH", "", {"description": "churn model"}),
    "comment": ("POST", "/versions/1/comments", {"comment": "looks good"}),
    "transition-request": ("POST", "/versions/2/transition-requests", {"stage": "Staging"}),
}
# Writes that change nothing of the model (no audit event), or change something else: its ETag stays.
UNRELATED = {
    "same-alias-again": ("PUT", "/aliases/champion", {"version": 1}),
    "absent-alias-delete": ("DELETE", "/aliases/nobody", None),
    "same-description-again": ("PATCH", "/versions/1", {"description": ""}),
    "absent-version-tag-delete": ("DELETE", "/versions/1/tags/nothing", None),
    "another-model-created": ("POST", "/api/v1/models", {"name": "other"}),
    "registry-wide-grants": ("PUT", "/api/v1/permissions", {"grants": [{"principal": "*", "level": "READ"}]}),
}


@pytest.mark.parametrize("change", CHANGES.values(), ids=CHANGES.keys())
@pytest.mark.parametrize("url", [PRODUCTION, CHAMPION, LATEST, STAGING])
def test_etag_changes_after_any_audited_change_to_the_model(seeded, change, url):
    before = etag_of(seeded, url)
    _call(seeded, *change)
    response = conditional(seeded, url, before)
    assert response.status_code in (200, 404), response.get_data(as_text=True)
    assert response.headers["ETag"] != before


@pytest.mark.parametrize("change", UNRELATED.values(), ids=UNRELATED.keys())
def test_etag_stays_after_a_write_that_changes_nothing_of_the_model(app, seeded, change):
    before = etag_of(seeded, PRODUCTION)
    _call(seeded, *change)
    forget_cached_answers(app)
    assert_not_modified(conditional(seeded, PRODUCTION, before), before)


@pytest.mark.parametrize("change", [*CHANGES.values(), *UNRELATED.values()], ids=[*CHANGES, *UNRELATED])
@pytest.mark.parametrize("url", [PRODUCTION, CHAMPION])
def test_an_unchanged_etag_always_comes_with_the_same_body(app, seeded, change, url):
    # A strong ETag promises byte-identical bodies: a client holding the old body keeps it on 304.
    before = ok(seeded.get(url, headers=ADMIN))
    _call(seeded, *change)
    forget_cached_answers(app)
    after = seeded.get(url, headers=ADMIN)
    if after.headers["ETag"] == before.headers["ETag"]:
        assert after.status_code == 200 and after.get_data() == before.get_data()


def test_etag_stays_after_a_promotion_in_another_model(app, seeded):
    _call(seeded, "POST", "/api/v1/models", {"name": "other"})
    _call(seeded, "POST", "/api/v1/models/other/versions", {"source": "s3://o/1"})
    before = etag_of(seeded, PRODUCTION)
    _call(seeded, "POST", "/api/v1/models/other/versions/1/transition", {"stage": "Production"})
    forget_cached_answers(app)
    assert_not_modified(conditional(seeded, PRODUCTION, before), before)


def test_etag_changes_after_a_version_tag_is_deleted(seeded):
    _call(seeded, "PUT", "/versions/1/tags/checked", {"value": "yes"})
    before = etag_of(seeded, PRODUCTION)
    _call(seeded, "DELETE", "/versions/1/tags/checked")
    response = ok(conditional(seeded, PRODUCTION, before))
    assert response.headers["ETag"] != before


def test_rename_moves_the_answer_to_the_new_name_with_a_new_etag(seeded):
    before = etag_of(seeded, PRODUCTION)
    ok(seeded.patch(BASE, json={"name": "attrition"}, headers=ADMIN))
    renamed = ok(conditional(seeded, "/api/v1/models/attrition/stages/Production", before))
    assert renamed.get_json()["model"] == "attrition" and renamed.get_json()["version"] == 1
    assert renamed.headers["ETag"] != before
    old = conditional(seeded, PRODUCTION, before)
    assert old.status_code == 404 and "ETag" not in old.headers


def test_deleted_model_answers_404_without_an_etag(seeded):
    before = etag_of(seeded, PRODUCTION)
    ok(seeded.delete(BASE, headers=ADMIN), 204)
    response = conditional(seeded, PRODUCTION, before)
    assert response.status_code == 404 and "ETag" not in response.headers


def test_a_new_model_under_a_deleted_ones_name_has_another_etag(seeded):
    before = etag_of(seeded, STAGING)
    ok(seeded.delete(BASE, headers=ADMIN), 204)
    ok(seeded.post("/api/v1/models", json={"name": MODEL}, headers=ADMIN), 201)
    response = conditional(seeded, STAGING, before)
    assert response.status_code == 404
    assert response.headers["ETag"] != before


@pytest.mark.parametrize("wait", ["-1", "61", "x", "nan", "inf", ""])
def test_wait_outside_0_to_60_seconds_is_refused(seeded, wait):
    response = seeded.get(PRODUCTION, query_string={"wait": wait}, headers=ADMIN)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.get_json()["error"]["code"] == "INVALID_ARGUMENT"


def test_wait_given_twice_is_refused(seeded):
    response = seeded.get(f"{PRODUCTION}?wait=1&wait=2", headers=ADMIN)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "INVALID_ARGUMENT"


def test_wait_without_if_none_match_answers_at_once(seeded):
    response = ok(seeded.get(PRODUCTION, query_string={"wait": WAIT}, headers=ADMIN))
    assert response.get_json()["version"] == 1
    assert response.headers["X-Registry-Waited"] == "no"


# --- authentication and permissions ------------------------------------------------------------------------


@pytest.fixture
def guarded(secure_client, make_user):
    """``churn`` seeded by an admin; nobody else may read anything unless granted (``*`` READ removed)."""
    root = make_user("root", admin=True)
    seed(secure_client, root)
    ok(secure_client.put("/api/v1/permissions", json={"grants": []}, headers=root))
    return {"root": root, "outsider": make_user("outsider"), "reader": make_user("reader", "READ", model=MODEL)}


@pytest.mark.parametrize("url", [PRODUCTION, CHAMPION])
def test_serving_without_a_token_answers_401(secure_client, guarded, url):
    response = secure_client.get(url, query_string={"wait": "1"}, headers={"If-None-Match": "*"})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "ETag" not in response.headers


@pytest.mark.parametrize("url", [PRODUCTION, CHAMPION, STAGING])
def test_reader_gets_the_answer(secure_client, guarded, url):
    response = secure_client.get(url, headers=guarded["reader"])
    assert response.status_code == secure_client.get(url, headers=guarded["root"]).status_code
    assert response.headers["ETag"] == etag_of(secure_client, url, guarded["root"])


@pytest.mark.parametrize("url", [PRODUCTION, CHAMPION, STAGING])
@pytest.mark.parametrize("conditional_wait", [False, True], ids=["plain", "if-none-match-wait"])
def test_user_without_read_gets_the_404_of_a_missing_model(secure_client, guarded, url, conditional_wait):
    headers = dict(guarded["outsider"])
    query = {}
    if conditional_wait:
        headers["If-None-Match"] = etag_of(secure_client, url, guarded["root"])
        query["wait"] = WAIT  # must not wait either: waiting would reveal that the model exists
    hidden = secure_client.get(url, headers=headers, query_string=query)
    missing = secure_client.get(url.replace(MODEL, "absent"), headers=guarded["outsider"])
    assert hidden.status_code == missing.status_code == 404
    assert "ETag" not in hidden.headers
    assert hidden.get_data(as_text=True).replace(MODEL, "X") == missing.get_data(as_text=True).replace("absent", "X")


def test_granting_read_lets_the_user_read_at_once(secure_client, guarded):
    assert secure_client.get(PRODUCTION, headers=guarded["outsider"]).status_code == 404
    ok(secure_client.patch(f"{BASE}/permissions", json={"grants": [{"principal": "outsider", "level": "READ"}]},
                           headers=guarded["root"]))
    assert ok(secure_client.get(PRODUCTION, headers=guarded["outsider"])).get_json()["version"] == 1


def test_revoking_read_hides_the_answer_at_once(secure_client, guarded):
    ok(secure_client.get(PRODUCTION, headers=guarded["reader"]))
    ok(secure_client.put(f"{BASE}/permissions", json={"grants": []}, headers=guarded["root"]))
    assert secure_client.get(PRODUCTION, headers=guarded["reader"]).status_code == 404


def test_registry_wide_read_for_everyone_lets_any_user_read(secure_client, guarded, make_user):
    ok(secure_client.put("/api/v1/permissions", json={"grants": [{"principal": "*", "level": "READ"}]},
                         headers=guarded["root"]))
    assert ok(secure_client.get(PRODUCTION, headers=guarded["outsider"])).get_json()["version"] == 1


# --- long-polls: one waiting thread, changes from the main thread ------------------------------------------


@dataclass
class Live:
    """A registry app on its own database, with real commits; ``client()`` is a fresh test client."""

    app: object
    url: str
    threads: list[threading.Thread] = field(default_factory=list)

    def client(self):
        return self.app.test_client()

    def waiting(self) -> int:
        """Long-polls waiting now (the worker's waiter budget counts them)."""
        return self.app.extensions[CACHES_KEY].waiters.waiting

    def wait_until_waiting(self, count: int = 1) -> None:
        deadline = time.monotonic() + JOIN
        while self.waiting() < count:
            assert time.monotonic() < deadline, f"{count} long-poll(s) never started waiting"
            time.sleep(0.01)

    def long_poll(self, url: str, etag: str, wait: str = WAIT) -> "Poll":
        poll = Poll(self.client(), url, etag, wait)
        self.threads.append(poll.thread)
        poll.thread.start()
        return poll


class Poll:
    """A long-poll in its own thread; ``answer()`` joins it."""

    def __init__(self, client, url: str, etag: str, wait: str) -> None:
        self.response = None
        self.error: BaseException | None = None

        def run() -> None:
            try:
                self.response = conditional(client, url, etag, wait=wait)
            except BaseException as exc:  # surfaced by answer()
                self.error = exc

        self.thread = threading.Thread(target=run, daemon=True)

    def answer(self):
        self.thread.join(JOIN)
        assert not self.thread.is_alive(), "the long-poll never returned"
        if self.error is not None:
            raise self.error
        return self.response


def make_live(database_url: str, **settings) -> Live:
    # A small pool: the test PostgreSQL is shared, and waiters hold no connection while they wait.
    app = create_app({"database_url": database_url, "auth_enabled": False, "pool_size": 4, **settings})
    app.config["TESTING"] = True
    return Live(app, database_url)


@pytest.fixture
def live(fresh_database_url, request):
    # ``@pytest.mark.live_settings(...)``: settings of this test's app (e.g. more waiting places than gthread's).
    marker = request.node.get_closest_marker("live_settings")
    state = make_live(fresh_database_url, **(marker.kwargs if marker else {}))
    seed(state.client())
    yield state
    for thread in state.threads:
        thread.join(JOIN)
    with state.app.app_context():
        db.engine.dispose()


def promote(client, version: int, stage: str = "Production", archive: bool = False) -> None:
    ok(client.post(f"{BASE}/versions/{version}/transition",
                   json={"stage": stage, "archive_existing_versions": archive}, headers=ADMIN))


def assert_woken_with(response, version: int, before: str) -> None:
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["version"] == version
    assert response.headers["X-Registry-Waited"] == "yes"
    assert response.headers["ETag"] != before


def test_long_poll_wakes_on_promotion_with_the_new_version(live):
    client = live.client()
    before = etag_of(client, PRODUCTION)
    poll = live.long_poll(PRODUCTION, before)
    live.wait_until_waiting()
    promote(client, 2)
    assert_woken_with(poll.answer(), 2, before)


def test_long_poll_wakes_on_alias_move(live):
    client = live.client()
    before = etag_of(client, CHAMPION)
    poll = live.long_poll(CHAMPION, before)
    live.wait_until_waiting()
    ok(client.put(CHAMPION, json={"version": 3}, headers=ADMIN))
    assert_woken_with(poll.answer(), 3, before)


def test_long_poll_on_latest_wakes_on_a_new_version(live):
    client = live.client()
    before = etag_of(client, LATEST)
    poll = live.long_poll(LATEST, before)
    live.wait_until_waiting()
    ok(client.post(f"{BASE}/versions", json={"source": "s3://b/4"}, headers=ADMIN), 201)
    assert_woken_with(poll.answer(), 4, before)


def test_long_poll_wakes_on_deletion_of_the_version_with_the_next_one_in_the_stage(live):
    client = live.client()
    promote(client, 2)  # versions 1 and 2 in Production; 2 is current
    before = etag_of(client, PRODUCTION)
    poll = live.long_poll(PRODUCTION, before)
    live.wait_until_waiting()
    ok(client.delete(f"{BASE}/versions/2", headers=ADMIN), 204)
    assert_woken_with(poll.answer(), 1, before)


@pytest.mark.parametrize("url", [PRODUCTION, CHAMPION])
def test_long_poll_wakes_on_deletion_of_the_only_version_with_404(live, url):
    client = live.client()
    before = etag_of(client, url)
    poll = live.long_poll(url, before)
    live.wait_until_waiting()
    ok(client.delete(f"{BASE}/versions/1", headers=ADMIN), 204)
    response = poll.answer()
    assert response.status_code == 404, response.get_data(as_text=True)
    assert response.get_json()["error"]["code"] == "NOT_FOUND"
    assert response.headers["X-Registry-Waited"] == "yes"
    assert STRONG_ETAG.match(response.headers["ETag"]) and response.headers["ETag"] != before


def test_long_poll_on_an_empty_stage_wakes_when_a_version_enters_it(live):
    client = live.client()
    before = etag_of(client, STAGING)
    poll = live.long_poll(STAGING, before)
    live.wait_until_waiting()
    promote(client, 3, "Staging")
    assert_woken_with(poll.answer(), 3, before)


def test_long_poll_is_not_woken_by_a_change_to_another_model(live):
    client = live.client()
    ok(client.post("/api/v1/models", json={"name": "other"}, headers=ADMIN), 201)
    ok(client.post("/api/v1/models/other/versions", json={"source": "s3://o/1"}, headers=ADMIN), 201)
    before = etag_of(client, PRODUCTION)
    poll = live.long_poll(PRODUCTION, before, wait="2")
    live.wait_until_waiting()
    ok(client.post("/api/v1/models/other/versions/1/transition", json={"stage": "Production"}, headers=ADMIN))
    response = poll.answer()
    assert_not_modified(response, before)
    assert response.headers["X-Registry-Waited"] == "yes"


def test_long_poll_answers_404_when_the_model_is_deleted_while_waiting(live):
    client = live.client()
    poll = live.long_poll(PRODUCTION, etag_of(client, PRODUCTION))
    live.wait_until_waiting()
    ok(client.delete(BASE, headers=ADMIN), 204)
    response = poll.answer()
    assert response.status_code == 404 and "ETag" not in response.headers
    assert response.get_json()["error"]["code"] == "NOT_FOUND"


def test_long_poll_answers_at_once_when_the_etag_is_already_stale(live):
    client = live.client()
    before = etag_of(client, PRODUCTION)
    promote(client, 2)
    response = ok(conditional(client, PRODUCTION, before, wait=WAIT))
    assert response.get_json()["version"] == 2
    assert response.headers["X-Registry-Waited"] == "no"
    assert live.waiting() == 0


def test_long_poll_times_out_with_304_when_nothing_changes(live):
    client = live.client()
    before = etag_of(client, PRODUCTION)
    response = conditional(client, PRODUCTION, before, wait="0.3")
    assert_not_modified(response, before)
    assert response.headers["X-Registry-Waited"] == "yes"


def test_woken_waiter_never_sees_the_answer_it_was_waiting_on(live):
    client = live.client()
    for _ in range(10):
        version = ok(client.post(f"{BASE}/versions", json={"source": "s3://b/n"}, headers=ADMIN), 201)
        number = version.get_json()["version"]
        before = etag_of(client, PRODUCTION)
        poll = live.long_poll(PRODUCTION, before)
        live.wait_until_waiting()
        promote(client, number, archive=True)
        assert_woken_with(poll.answer(), number, before)


def test_several_waiters_all_wake_with_the_new_answer(live):
    client = live.client()
    before = {url: etag_of(client, url) for url in (PRODUCTION, CHAMPION, LATEST)}
    polls = [live.long_poll(url, etag) for url, etag in before.items() for _ in range(3)]
    live.wait_until_waiting(len(polls))
    promote(client, 2)
    answers = [poll.answer() for poll in polls]
    for response in answers:
        assert response.headers["X-Registry-Waited"] == "yes"
    # Every waiter sees the model's new generation; those whose answer moved see the new version.
    assert {response.headers["ETag"] for response in answers} == {etag_of(client, PRODUCTION)}
    assert [r.get_json()["version"] for r in answers] == [2, 2, 2, 1, 1, 1, 3, 3, 3]


@contextmanager
def serving_reads(app):
    """The serving statements (``services/serving.py``) the app sends PostgreSQL, by kind, while the block runs."""
    counts = {"stage": 0, "alias": 0}
    with sent_statements(app) as sent:
        yield counts
    for text, _autocommit in sent:
        if text.startswith("EXECUTE serving_by_"):
            counts["alias" if text.startswith("EXECUTE serving_by_alias") else "stage"] += 1


@pytest.mark.live_settings(max_waiters=64)
def test_waiters_woken_by_one_change_share_one_read_of_each_answer(live):
    """Issue 12: when a promotion wakes every waiter of a model, PostgreSQL is read once per answer and
    process, not once per waiter (the change itself dropped the cached answers they all need)."""
    client = live.client()
    before = {url: etag_of(client, url) for url in (PRODUCTION, CHAMPION)}
    polls = [live.long_poll(url, etag) for url, etag in before.items() for _ in range(15)]
    live.wait_until_waiting(len(polls))
    with serving_reads(live.app) as reads:
        promote(client, 2)
        answers = [poll.answer() for poll in polls]
    assert all(response.headers["X-Registry-Waited"] == "yes" for response in answers)
    assert [r.get_json()["version"] for r in answers] == [2] * 15 + [1] * 15
    assert reads == {"stage": 1, "alias": 1}


def test_second_long_poll_beyond_the_waiting_slots_answers_at_once_as_busy(fresh_database_url):
    live = make_live(fresh_database_url, max_waiters=1)
    client = live.client()
    seed(client)
    try:
        before = etag_of(client, PRODUCTION)
        first = live.long_poll(PRODUCTION, before)
        live.wait_until_waiting()
        second = conditional(client, PRODUCTION, before, wait=WAIT)
        assert_not_modified(second, before)
        assert second.headers["X-Registry-Waited"] == "busy"
        assert first.thread.is_alive()  # still waiting: the busy answer did not take its slot
        promote(client, 2)
        assert_woken_with(first.answer(), 2, before)
    finally:
        for thread in live.threads:
            thread.join(JOIN)
        with live.app.app_context():
            db.engine.dispose()


# --- long-polls woken by another process's commit (NOTIFY through this process's listener) -----------------


@pytest.fixture
def other_process(live):
    """A second app on the same database: its commits reach ``live`` only through PostgreSQL NOTIFY."""
    other = make_live(live.url)
    ok(other.client().get("/api/v1/models", headers=ADMIN))  # opens its pooled connection now
    yield other
    with other.app.app_context():
        db.engine.dispose()


def listener_is(live: Live, healthy: bool) -> None:
    hub = live.app.extensions[CACHES_KEY].hub
    deadline = time.monotonic() + JOIN
    while hub.healthy is not healthy:
        assert time.monotonic() < deadline, f"the change listener never became healthy={healthy}"
        time.sleep(0.01)


def test_long_poll_is_woken_by_a_commit_in_another_process(live, other_process):
    client = live.client()
    before = etag_of(client, PRODUCTION)
    listener_is(live, True)
    poll = live.long_poll(PRODUCTION, before)
    live.wait_until_waiting()
    promote(other_process.client(), 2)
    assert_woken_with(poll.answer(), 2, before)


def test_cached_answer_is_dropped_when_another_process_commits_a_change(live, other_process):
    client = live.client()
    etag_of(client, PRODUCTION)  # starts this process's listener
    listener_is(live, True)
    before = etag_of(client, PRODUCTION)  # read while listening: cached
    poll = live.long_poll(PRODUCTION, before)
    live.wait_until_waiting()
    promote(other_process.client(), 2)
    poll.answer()  # the notification has arrived
    assert ok(conditional(client, PRODUCTION, before)).get_json()["version"] == 2


def _admin(database_url: str):
    connection = psycopg2.connect(make_url(database_url).set(database="postgres").render_as_string(False))
    connection.autocommit = True
    return closing(connection)


def test_waiter_is_woken_by_a_change_made_while_its_listener_was_reconnecting(live, other_process):
    """Notifications sent while the listener is away are lost; its reconnection must make waiters read again."""
    client = live.client()
    before = etag_of(client, PRODUCTION)
    listener_is(live, True)
    poll = live.long_poll(PRODUCTION, before)
    live.wait_until_waiting()
    database = make_url(live.url).database
    with _admin(live.url) as admin, admin.cursor() as cursor:
        # Keep the listener from reconnecting (pooled connections stay) until the change is committed.
        cursor.execute(f'ALTER DATABASE "{database}" WITH ALLOW_CONNECTIONS false')
        try:
            cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                           "WHERE datname = %s AND application_name = 'registry-listener'", (database,))
            listener_is(live, False)
            promote(other_process.client(), 2)
        finally:
            cursor.execute(f'ALTER DATABASE "{database}" WITH ALLOW_CONNECTIONS true')
    listener_is(live, True)
    assert_woken_with(poll.answer(), 2, before)


def test_client_holding_a_newer_etag_than_the_cached_answer_is_not_sent_back_in_time(live, other_process,
                                                                                     monkeypatch):
    """A client served by another process after a change must not get this process's older cached answer
    while the change's notification is still on its way here."""
    client = live.client()
    etag_of(client, PRODUCTION)  # starts this process's listener
    listener_is(live, True)
    before = etag_of(client, PRODUCTION)  # read while listening: cached
    held: list = []
    monkeypatch.setattr(live.app.extensions[CACHES_KEY].hub, "dispatch", held.append)  # notifications stay "in flight"
    promote(other_process.client(), 2)
    newer = etag_of(other_process.client(), PRODUCTION)
    assert etag_of(client, PRODUCTION) == before  # this process has not heard of the change yet
    assert_not_modified(conditional(client, PRODUCTION, newer), newer)
    waited = conditional(client, PRODUCTION, newer, wait="0.3")
    assert_not_modified(waited, newer)
    assert waited.headers["X-Registry-Waited"] == "yes"
