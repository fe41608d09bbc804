"""``GET /api/v1/watch`` (issue 12): several serving answers as one Server-Sent Events stream.

Streams block between events, so each runs in a reader thread of its own (``Stream``) that parses events into
a queue, while the test changes things through another client of the same app (``live``: a fresh database,
real commits, real NOTIFY). No assertion is about time: ``JOIN`` only bounds a broken wake-up.
"""
from __future__ import annotations

import json
import queue
import threading
from dataclasses import dataclass

import pytest

from registry.auth import SYSTEM
from registry.extensions import db
from registry.services import identities, permissions
from tests.api.support import listening
from tests.api.native.test_serving import ADMIN, BASE, JOIN, MODEL, make_live, ok, seed

WATCH = "/api/v1/watch"
PRODUCTION = f"{MODEL}:Production"
CHAMPION = f"{MODEL}@champion"


@dataclass
class Event:
    event: str | None
    data: dict | None
    id: str | None
    comment: str | None = None


def parse(lines):
    """A minimal SSE parser (the spec's field rules; written here, not shared with the client under test)."""
    event = data = ident = comment = None
    for line in lines:
        if line == "":
            if event or data is not None or ident is not None or comment is not None:
                yield Event(event, None if data is None else json.loads(data), ident, comment)
            event = data = ident = comment = None
        elif line.startswith(":"):
            comment = line[1:].strip()
        else:
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "event":
                event = value
            elif name == "data":
                data = value if data is None else data + "\n" + value
            elif name == "id":
                ident = value


class Stream:
    """One open stream, requested and read by a thread of its own (a streamed Flask response runs in the
    thread that made the request) into a queue of events."""

    def __init__(self, client, selectors, headers=ADMIN, last_event_id=None):
        headers = dict(headers)
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        self.events: queue.Queue = queue.Queue()
        self.ended = threading.Event()
        self.started = threading.Event()
        self.response = None
        self.closed = False
        self.error: BaseException | None = None

        def run():
            try:
                self.response = client.get(WATCH, query_string=[("select", s) for s in selectors],
                                           headers=headers, buffered=False)
            except BaseException as exc:  # surfaced by the test
                self.error = exc
            self.started.set()
            if self.response is not None and self.response.status_code == 200:
                self._read()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        assert self.started.wait(JOIN), "the stream never answered"
        if self.error is not None:
            raise self.error

    def _read(self):
        def lines():
            pending = ""
            for chunk in self.response.response:
                if self.closed:
                    return  # the client hangs up (the server notices when its next write, a heartbeat, fails)
                pending += chunk.decode() if isinstance(chunk, bytes) else chunk
                *complete, pending = pending.split("\n")
                yield from complete
        try:
            for event in parse(lines()):
                self.events.put(event)
        finally:
            self.response.close()
            self.ended.set()
            self.events.put(None)

    def next(self, *, skip_heartbeats=True, skip_positions=True) -> Event | None:
        while True:
            event = self.events.get(timeout=JOIN)
            if event is None:
                return None
            if skip_heartbeats and event.comment == "heartbeat":
                continue
            if skip_positions and event.event is None and event.data is None and event.comment is None:
                continue
            return event

    def initial(self, count: int) -> list[Event]:
        return [self.next() for _ in range(count)]

    def close(self):
        """Hang up and wait until the server has let go of the stream. Closing from this thread would run the
        generator's clean-up in the wrong one: the reader notices at the next chunk (a heartbeat at worst)."""
        self.closed = True
        assert self.ended.wait(JOIN), "the stream never ended"


@pytest.fixture
def live(fresh_database_url):
    state = make_live(fresh_database_url, watch_heartbeat_seconds=1)
    seed(state.client())
    streams = []
    state.open = lambda *a, **k: streams.append(Stream(state.client(), *a, **k)) or streams[-1]
    yield state
    for stream in streams:
        stream.close()
    with state.app.app_context():
        db.engine.dispose()


def write(client, method, path, body=None, headers=ADMIN):
    url = path if path.startswith("/api/") else f"{BASE}{path}"
    response = client.open(url, method=method, json=body, headers=headers)
    assert response.status_code in (200, 201, 204), response.get_data(as_text=True)


def next_of_each(stream, count: int) -> dict[str, Event]:
    """The next ``count`` events, by selector (one change can move several answers, sent in selector order)."""
    events = [stream.next() for _ in range(count)]
    got = {e.data["selector"]: e for e in events}
    assert len(got) == count, events
    got["_last"] = events[-1]
    return got


def test_stream_sends_each_current_answer_then_the_promotion(live):
    stream = live.open([PRODUCTION, CHAMPION, f"{MODEL}:Staging"])
    assert stream.response.status_code == 200
    assert stream.response.mimetype == "text/event-stream"
    first = stream.initial(3)
    assert [(e.event, e.data["selector"]) for e in first] == [
        ("answer", PRODUCTION), ("answer", CHAMPION), ("missing", f"{MODEL}:Staging")]
    assert first[0].data["version"] == 1 and first[1].data["version"] == 1
    assert first[2].data["error"]["code"] == "NOT_FOUND"
    # The same JSON as the long-poll's body, plus the selector.
    body = ok(live.client().get(f"{BASE}/stages/Production", headers=ADMIN)).get_json()
    assert {k: v for k, v in first[0].data.items() if k != "selector"} == body
    write(live.client(), "POST", "/versions/2/transition", {"stage": "Production"})
    event = stream.next()
    assert (event.event, event.data["selector"], event.data["version"]) == ("answer", PRODUCTION, 2)
    assert event.id and event.id != first[-1].id


def test_alias_move_wakes_only_the_alias(live):
    stream = live.open([PRODUCTION, CHAMPION])
    stream.initial(2)
    write(live.client(), "PUT", "/aliases/champion", {"version": 3})
    got = next_of_each(stream, 2)
    assert (got[CHAMPION].event, got[CHAMPION].data["version"]) == ("answer", 3)
    # Production still serves version 1, but its aliases changed (champion left it): it is sent too.
    assert (got[PRODUCTION].data["version"], got[PRODUCTION].data["aliases"]) == (1, [])


def test_a_move_of_another_alias_sends_nothing_for_the_watched_one(live):
    stream = live.open([CHAMPION])
    stream.next()
    write(live.client(), "PUT", "/aliases/blue", {"version": 3})
    assert stream.next(skip_positions=False).data is None  # the position moves, the answer does not


def test_a_change_that_leaves_the_answer_as_it_was_moves_only_the_position(live):
    stream = live.open([PRODUCTION])
    first = stream.next()
    write(live.client(), "PUT", "/tags/team", {"value": "risk"})
    moved = stream.next(skip_positions=False)
    assert (moved.event, moved.data) == (None, None)
    assert moved.id != first.id
    # Resuming from there sends nothing: the client holds the current answer.
    write(live.client(), "POST", "/versions/2/transition", {"stage": "Production"})
    resumed = live.open([PRODUCTION], last_event_id=moved.id)
    assert resumed.next().data["version"] == 2


def test_version_deletion_sends_what_serves_next(live):
    write(live.client(), "POST", "/versions/2/transition", {"stage": "Production"})
    stream = live.open([PRODUCTION, CHAMPION])
    assert [e.data.get("version") for e in stream.initial(2)] == [2, 1]
    write(live.client(), "DELETE", "/versions/2")
    event = stream.next()
    assert (event.data["selector"], event.data["version"]) == (PRODUCTION, 1)
    write(live.client(), "DELETE", "/versions/1")
    got = {e.data["selector"]: e for e in (stream.next(), stream.next())}
    assert got[PRODUCTION].event == got[CHAMPION].event == "missing"


def test_model_deletion_and_creation_under_the_name(live):
    stream = live.open([PRODUCTION, "later:Production"])
    first = stream.initial(2)
    assert first[1].event == "missing"
    write(live.client(), "DELETE", "")
    event = stream.next()
    assert (event.event, event.data["selector"]) == ("missing", PRODUCTION)
    write(live.client(), "POST", "/api/v1/models", {"name": "later"})
    write(live.client(), "POST", "/api/v1/models/later/versions", {"source": "s3://l/1"})
    write(live.client(), "POST", "/api/v1/models/later/versions/1/transition", {"stage": "Production"})
    while (event := stream.next()).event != "answer":
        assert event.data["selector"] == "later:Production"
    assert (event.data["selector"], event.data["version"]) == ("later:Production", 1)


def test_resume_with_last_event_id_sends_only_what_moved(live):
    stream = live.open([PRODUCTION, CHAMPION])
    last = stream.initial(2)[-1].id
    stream.close()
    write(live.client(), "PUT", "/aliases/champion", {"version": 1})  # the same: nothing moves
    write(live.client(), "POST", "/versions/3/transition", {"stage": "Staging"})  # Production unchanged
    write(live.client(), "POST", "/versions/2/transition", {"stage": "Production"})
    resumed = live.open([PRODUCTION, CHAMPION], last_event_id=last)
    # Both answers moved generation; Production changed version; champion's body is resent (at least once).
    got = next_of_each(resumed, 2)
    assert got[PRODUCTION].data["version"] == 2 and got[CHAMPION].data["version"] == 1
    newest = got["_last"].id
    resumed.close()
    # With the newest position nothing at all is sent before the next change.
    again = live.open([PRODUCTION, CHAMPION], last_event_id=newest)
    write(live.client(), "POST", "/versions/3/transition", {"stage": "Production"})
    event = again.next()
    assert (event.data["selector"], event.data["version"]) == (PRODUCTION, 3)


def test_resume_part_way_through_the_first_answers_sends_the_rest(live):
    stream = live.open([PRODUCTION, CHAMPION, f"{MODEL}:Staging"])
    first = stream.next()
    resumed = live.open([PRODUCTION, CHAMPION, f"{MODEL}:Staging"], last_event_id=first.id)
    assert [e.data["selector"] for e in resumed.initial(2)] == [CHAMPION, f"{MODEL}:Staging"]


@pytest.mark.parametrize("position", ["garbage", "w1:000000000000:1.1,1.1", "w1:x:y"])
def test_unknown_position_says_reset_and_sends_everything(live, position):
    stream = live.open([PRODUCTION, CHAMPION], last_event_id=position)
    reset = stream.next()
    assert reset.event == "reset"
    assert [e.data["selector"] for e in stream.initial(2)] == [PRODUCTION, CHAMPION]


def test_position_for_another_selector_list_is_unknown(live):
    stream = live.open([PRODUCTION])
    position = stream.next().id
    other = live.open([CHAMPION], last_event_id=position)
    assert other.next().event == "reset"


def test_heartbeats_while_nothing_changes(live):
    stream = live.open([PRODUCTION])
    stream.next()
    beat = stream.next(skip_heartbeats=False)
    assert beat.comment == "heartbeat" and beat.event is None


def test_an_idle_stream_holds_no_database_connection(live):
    listening(live.app)  # else the listener's connecting would wake the stream to read everything again
    stream = live.open([PRODUCTION, CHAMPION])
    stream.initial(2)
    stream.next(skip_heartbeats=False)  # after a heartbeat the stream is back to waiting on the hub
    with live.app.app_context():
        assert db.engine.pool.checkedout() == 0
    write(live.client(), "POST", "/versions/2/transition", {"stage": "Production"})
    assert stream.next().data["version"] == 2


@pytest.mark.parametrize("query, field", [
    ([], "select"),
    ([("select", "churn")], "select"),
    ([("select", "churn:Nowhere")], "stage"),
    ([("select", "churn@bad alias")], "alias"),
    ([("select", ":Production")], "name"),
    ([("select", "churn:Production"), ("heartbeat", "1")], None),
])
def test_bad_selectors_are_refused_with_400(live, query, field):
    response = live.client().get(WATCH, query_string=query, headers=ADMIN)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.get_json()["error"]["code"] == "INVALID_ARGUMENT"


def test_selectors_per_stream_are_bounded(fresh_database_url):
    state = make_live(fresh_database_url, watch_max_selectors=2)
    response = state.client().get(WATCH, query_string=[("select", f"m{i}:Production") for i in range(3)],
                                  headers=ADMIN)
    assert response.status_code == 400
    assert response.get_json()["error"]["details"]["limit"] == 2
    with state.app.app_context():
        db.engine.dispose()


def test_a_stream_takes_a_waiting_slot_and_is_refused_without_one(fresh_database_url):
    state = make_live(fresh_database_url, max_waiters=1, watch_heartbeat_seconds=1)
    seed(state.client())
    first = Stream(state.client(), [PRODUCTION])
    first.next()
    refused = state.client().get(WATCH, query_string={"select": PRODUCTION}, headers=ADMIN)
    assert refused.status_code == 503 and refused.headers["Retry-After"]
    assert refused.get_json()["error"]["code"] == "UNAVAILABLE"
    first.close()
    second = Stream(state.client(), [PRODUCTION])
    assert second.next().data["version"] == 1
    second.close()
    with state.app.app_context():
        db.engine.dispose()


# --- tokens and permissions --------------------------------------------------------------------------------


@pytest.fixture
def guarded(fresh_database_url):
    """Auth on; ``churn`` seeded; ``reader`` may READ churn, ``outsider`` nothing (no ``*`` READ)."""
    state = make_live(fresh_database_url, auth_enabled=True, watch_heartbeat_seconds=1)
    tokens = {}
    with state.app.app_context():
        for name, admin in (("root", True), ("reader", False), ("outsider", False)):
            record, token = identities.create_token(SYSTEM, name, create_user=True, admin=admin)
            tokens[name] = ({"Authorization": f"Bearer {token}"}, record.id)
    root = tokens["root"][0]
    seed(state.client(), root)
    ok(state.client().put("/api/v1/permissions", json={"grants": []}, headers=root))
    with state.app.app_context():
        permissions.set_model_permissions(SYSTEM, MODEL, [("reader", "READ")], merge=True)
    streams = []
    state.open = lambda *a, **k: streams.append(Stream(state.client(), *a, **k)) or streams[-1]
    state.tokens = tokens
    yield state
    for stream in streams:
        stream.close()
    with state.app.app_context():
        db.engine.dispose()


def test_a_model_the_caller_cannot_read_looks_missing(guarded):
    headers = guarded.tokens["outsider"][0]
    stream = guarded.open([PRODUCTION, "absent:Production"], headers=headers)
    hidden, missing = stream.initial(2)
    assert hidden.event == missing.event == "missing"
    assert json.dumps(hidden.data).replace(MODEL, "X") == json.dumps(missing.data).replace("absent", "X")
    # A promotion of the hidden model is not even announced as a position move.
    write(guarded.client(), "POST", "/versions/2/transition", {"stage": "Production"},
          headers=guarded.tokens["root"][0])
    assert stream.next(skip_positions=False, skip_heartbeats=False).comment == "heartbeat"


def test_a_reader_is_told_when_read_is_granted_and_revoked(guarded):
    root = guarded.tokens["root"][0]
    stream = guarded.open([PRODUCTION], headers=guarded.tokens["outsider"][0])
    assert stream.next().event == "missing"
    ok(guarded.client().patch(f"{BASE}/permissions", json={"grants": [{"principal": "outsider", "level": "READ"}]},
                              headers=root))
    assert stream.next().data["version"] == 1
    ok(guarded.client().put(f"{BASE}/permissions", json={"grants": []}, headers=root))
    assert stream.next().event == "missing"


def test_revoking_the_token_ends_the_stream(guarded):
    headers, token_id = guarded.tokens["reader"]
    stream = guarded.open([PRODUCTION], headers=headers)
    assert stream.next().data["version"] == 1
    with guarded.app.app_context():
        identities.revoke_token(SYSTEM, token_id)
    end = stream.next()
    assert end.event == "end" and end.data["reason"] == "unauthenticated"
    assert end.data["error"]["code"] == "UNAUTHENTICATED"
    assert stream.next() is None  # and the stream is closed
    assert stream.ended.wait(JOIN)


def test_watch_without_a_token_is_401(guarded):
    response = guarded.client().get(WATCH, query_string={"select": PRODUCTION})
    assert response.status_code == 401


def test_a_revocation_reaches_streams_of_other_processes(guarded):
    """Another app on the same database stands in for another process: the revocation arrives by NOTIFY."""
    headers, token_id = guarded.tokens["reader"]
    other = make_live(guarded.url, auth_enabled=True, watch_heartbeat_seconds=1)
    stream = Stream(other.client(), [PRODUCTION], headers=headers)
    try:
        assert stream.next().data["version"] == 1
        with guarded.app.app_context():
            identities.revoke_token(SYSTEM, token_id)
        end = stream.next()
        assert end.event == "end" and end.data["reason"] == "unauthenticated"
    finally:
        stream.close()
        with other.app.app_context():
            db.engine.dispose()
