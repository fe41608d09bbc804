"""What was served when, over HTTP: ``?as_of=`` on the serving endpoints and ``GET /models/{name}/timeline``.

The history itself is tested on the services (tests/services/test_history*.py); here: the wire forms of an
instant, the refusals (400) and the 404s in the native error shape, rendering, and that an as-of request never
meets the current answer's caches: neither replayed from the response cache nor stored in it.
"""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

import pytest

from ..support import listening

ADMIN = {"X-Registry-Actor": "alice"}
MODEL = "churn"
BASE = f"/api/v1/models/{MODEL}"
PRODUCTION = f"{BASE}/stages/Production"
CHAMPION = f"{BASE}/aliases/champion"
TIMELINE = f"{BASE}/timeline"


def ok(response, status: int = 200):
    assert response.status_code == status, response.get_data(as_text=True)
    return response


def iso(when: datetime) -> str:
    return when.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def mark() -> datetime:
    return datetime.now(timezone.utc)


def error(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    return body["error"]


class History:
    """``churn`` v1..v3: v1 promoted, then v2 (archiving v1), ``champion`` on v1 then moved to v2. ``marks``:
    before the model, before any promotion, with v1 serving, with v2 serving."""

    def __init__(self, client, headers=ADMIN) -> None:
        self.client, self.headers = client, headers
        before = mark()
        self.post("/api/v1/models", {"name": MODEL}, 201)
        for n in (1, 2, 3):
            self.post(f"{BASE}/versions", {"source": f"s3://b/{n}", "run_id": f"run-{n}"}, 201)
        created = mark()
        self.post(f"{BASE}/versions/1/transition", {"stage": "Production", "archive_existing_versions": True})
        ok(client.put(CHAMPION, json={"version": 1}, headers=headers))
        first = mark()
        self.post(f"{BASE}/versions/2/transition", {"stage": "Production", "archive_existing_versions": True})
        ok(client.put(CHAMPION, json={"version": 2}, headers=headers))
        second = mark()
        self.marks = {"before": before, "created": created, "first": first, "second": second}

    def post(self, url: str, body: dict, status: int = 200) -> None:
        ok(self.client.post(url, json=body, headers=self.headers), status)

    def at(self, url: str, when: datetime | str, headers=None, **query):
        value = when if isinstance(when, str) else iso(when)
        return self.client.get(url, query_string={"as_of": value, **query}, headers=headers or self.headers)


@pytest.fixture
def history(client):
    return History(client)


def test_as_of_answers_what_the_stage_served_then(history):
    body = ok(history.at(PRODUCTION, history.marks["first"])).get_json()
    assert body["version"] == 1 and body["run_id"] == "run-1" and body["source"] == "s3://b/1"
    assert (body["model"], body["model_then"], body["stage"], body["alias"]) == (MODEL, MODEL, "Production", None)
    assert body["version_exists"] is True and body["trail_matches_live"] is True
    assert body["as_of_iso"] == history.marks["first"].isoformat()
    promotion = history.client.get("/api/v1/audit-events", headers=ADMIN,
                                   query_string={"model": MODEL, "action": "version.transitioned", "version": 1})
    event = promotion.get_json()["events"][0]
    assert (body["event_id"], body["since"], body["since_iso"], body["actor"]) == (
        event["id"], event["time"], event["time_iso"], "alice")
    assert ok(history.at(PRODUCTION, history.marks["second"])).get_json()["version"] == 2


def test_as_of_answers_what_the_alias_pointed_at_then(history):
    assert ok(history.at(CHAMPION, history.marks["first"])).get_json()["version"] == 1
    assert ok(history.at(CHAMPION, history.marks["second"])).get_json()["version"] == 2
    latest = ok(history.at(f"{BASE}/aliases/latest", history.marks["created"])).get_json()
    assert (latest["alias"], latest["version"]) == ("latest", 3)


def test_as_of_in_epoch_milliseconds_covers_that_whole_millisecond(history):
    events = history.client.get("/api/v1/audit-events", headers=ADMIN,
                                query_string={"model": MODEL, "action": "version.transitioned"}).get_json()["events"]
    second_promotion = max(e["time"] for e in events)
    # The API shows event times floored to the millisecond: asking as of that time includes the event.
    assert ok(history.at(PRODUCTION, str(second_promotion))).get_json()["version"] == 2
    assert ok(history.at(PRODUCTION, str(second_promotion - 1))).get_json()["version"] == 1


@pytest.mark.parametrize("spelling", [
    lambda t: t.isoformat(),  # +00:00
    lambda t: t.astimezone(timezone(timedelta(hours=-5))).isoformat(),
    lambda t: t.isoformat().replace("+00:00", "z").replace("T", "t"),
    lambda t: t.strftime("%Y-%m-%dT%H:%M:%S.%f") + "999Z",  # nanoseconds are cut to microseconds
])
def test_rfc_3339_spellings_of_the_same_instant_give_the_same_answer(history, spelling):
    assert ok(history.at(PRODUCTION, spelling(history.marks["first"]))).get_json()["version"] == 1


@pytest.mark.parametrize("url, when, words", [
    (PRODUCTION, "created", "had no version in stage Production at"),
    (f"{BASE}/stages/staging", "second", "had no version in stage Staging at"),
    (CHAMPION, "created", "alias champion was not set at"),
    (PRODUCTION, "before", "did not exist yet at"),
])
def test_nothing_served_then_is_a_404_that_says_so(history, url, when, words):
    response = history.at(url, history.marks[when])
    found = error(response, 404)
    assert found["code"] == "NOT_FOUND" and words in found["message"]
    assert found["details"]["model"] == MODEL
    assert "ETag" not in response.headers


@pytest.mark.parametrize("query, field", [
    ({"as_of": "yesterday"}, "as_of"),
    ({"as_of": "2026-11-03T14:00:00"}, "as_of"),  # no offset
    ({"as_of": "2026-11-03"}, "as_of"),
    ({"as_of": "2026-13-03T14:00:00Z"}, "as_of"),
    ({"as_of": "99999999999999999999"}, "as_of"),
    ({"as_of": ""}, "as_of"),
    ({"as_of": "2026-11-03T14:00:00Z", "wait": "5"}, "wait"),
    ({"as_of": "2026-11-03T14:00:00Z", "since": "0"}, "since"),  # not a serving parameter
])
def test_bad_as_of_is_a_400_in_the_native_shape(history, query, field):
    found = error(history.client.get(PRODUCTION, query_string=query, headers=ADMIN), 400)
    assert found["code"] == "INVALID_ARGUMENT" and field in found["message"] + str(found["details"])


@pytest.mark.parametrize("future", [
    lambda: iso(mark() + timedelta(minutes=5)),
    lambda: str(int((mark() + timedelta(minutes=5)).timestamp() * 1000)),
])
def test_as_of_in_the_future_is_a_400(history, future):
    found = error(history.at(PRODUCTION, future()), 400)
    assert "future" in found["message"]


def test_as_of_now_in_epoch_milliseconds_is_not_the_future(history):
    assert ok(history.at(PRODUCTION, str(int(time.time() * 1000)))).get_json()["version"] == 2


def test_as_of_on_a_missing_model_is_a_404(history):
    found = error(history.at("/api/v1/models/absent/stages/Production", history.marks["first"]), 404)
    assert "absent" in found["message"]


def test_as_of_follows_the_model_across_a_rename(history):
    ok(history.client.patch(BASE, json={"name": "attrition"}, headers=ADMIN))
    body = ok(history.at("/api/v1/models/attrition/stages/Production", history.marks["first"])).get_json()
    assert (body["model"], body["model_then"], body["version"]) == ("attrition", MODEL, 1)
    error(history.at(PRODUCTION, history.marks["first"]), 404)


def test_a_deleted_version_is_answered_and_marked_so(history):
    ok(history.client.post(f"{BASE}/versions/3/transition", json={"stage": "Production"}, headers=ADMIN))
    serving_three = mark()
    ok(history.client.delete(f"{BASE}/versions/3", headers=ADMIN), 204)
    body = ok(history.at(PRODUCTION, serving_three)).get_json()
    assert (body["version"], body["version_exists"], body["source"]) == (3, False, "s3://b/3")


# --- the timeline -----------------------------------------------------------------------------------------

def test_timeline_renders_every_track_and_segment(history):
    body = ok(history.client.get(TIMELINE, headers=ADMIN)).get_json()
    assert body["model"] == MODEL and body["trail_matches_live"] is True
    assert body["since"] is None and body["until"] is None and isinstance(body["generated_at"], int)
    tracks = {t["name"]: t for t in body["tracks"]}
    assert [t["name"] for t in body["tracks"]] == ["Production", "Staging", "champion"]
    assert [s["version"] for s in tracks["Production"]["segments"]] == [1, 2]
    assert [s["version"] for s in tracks["champion"]["segments"]] == [1, 2]
    first, second = tracks["Production"]["segments"]
    assert first["end"] == second["start"] and first["end_iso"] == second["start_iso"] and second["end"] is None
    assert set(first) == {"version", "start", "start_iso", "end", "end_iso", "actor", "event_id", "run_id",
                          "version_exists"}
    assert (first["actor"], first["run_id"], first["version_exists"]) == ("alice", "run-1", True)
    assert tracks["Staging"]["segments"] == [] and tracks["Staging"]["live_version"] is None
    assert (tracks["Production"]["replayed_version"], tracks["Production"]["live_version"]) == (2, 2)
    # A segment's start, passed back as as_of, answers that segment's version.
    assert ok(history.at(PRODUCTION, second["start_iso"])).get_json()["version"] == 2


def test_timeline_window(history):
    since, until = history.marks["first"], history.marks["first"] + timedelta(microseconds=1)
    body = ok(history.client.get(TIMELINE, query_string={"since": iso(since), "until": iso(until)},
                                 headers=ADMIN)).get_json()
    production = next(t for t in body["tracks"] if t["name"] == "Production")
    # The segment in effect at ``since``, with its true start and end.
    assert [s["version"] for s in production["segments"]] == [1]
    assert production["segments"][0]["start_iso"] < since.isoformat() < production["segments"][0]["end_iso"]
    assert body["since_iso"] == since.isoformat()


@pytest.mark.parametrize("query", [{"since": "last week"}, {"until": "2026-01-01T00:00:00"}, {"as_of": "0"},
                                   {"since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"}])
def test_timeline_refuses_bad_parameters_with_a_400(history, query):
    assert error(history.client.get(TIMELINE, query_string=query, headers=ADMIN), 400)["code"] == "INVALID_ARGUMENT"


def test_timeline_of_a_missing_model_is_a_404(history):
    assert error(history.client.get("/api/v1/models/absent/timeline", headers=ADMIN), 404)["code"] == "NOT_FOUND"


# --- who may ask, and the caches ----------------------------------------------------------------------------

def hits(app) -> int:
    return app.extensions["registry_replay"].hits



@pytest.fixture
def secured(secure_app, secure_client, make_user):
    root = make_user("root", admin=True)
    seeded = History(secure_client, root)
    listening(secure_app)
    return seeded, make_user("reader")


def test_a_model_the_caller_may_not_read_is_a_404_like_a_missing_one(secured, make_user):
    seeded, _ = secured
    ok(seeded.client.put("/api/v1/permissions", json={"grants": []}, headers=seeded.headers))
    outsider = make_user("outsider")
    when = seeded.marks["first"]
    for url in (PRODUCTION, TIMELINE):
        hidden = seeded.client.get(url, query_string={"as_of": iso(when)} if "stages" in url else None,
                                   headers=outsider)
        missing = seeded.client.get(url.replace(MODEL, "absent"), headers=outsider,
                                    query_string={"as_of": iso(when)} if "stages" in url else None)
        assert error(hidden, 404)["message"] == error(missing, 404)["message"].replace("absent", MODEL)


def test_as_of_requests_never_meet_the_current_answers_response_cache(secure_app, secured):
    seeded, reader = secured
    client, then = seeded.client, iso(seeded.marks["first"])
    current = ok(client.get(PRODUCTION, headers=reader))
    ok(client.get(PRODUCTION, headers=reader))
    assert hits(secure_app) > 0  # the current answer is replayed from now on

    before = hits(secure_app)
    for _ in range(2):
        past = ok(client.get(PRODUCTION, query_string={"as_of": then}, headers=reader))
        assert past.get_json()["version"] == 1 and "ETag" not in past.headers
    assert hits(secure_app) == before  # neither answered from the cache nor kept in it

    again = ok(client.get(PRODUCTION, headers=reader))
    assert hits(secure_app) == before + 1 and again.get_data() == current.get_data()
    assert again.get_json()["version"] == 2 and again.headers["ETag"] == current.headers["ETag"]


def test_an_as_of_answer_is_not_kept_for_current_requests(secure_app, secured):
    seeded, reader = secured
    url = f"/api/v1/models/{quote(MODEL)}/aliases/champion"
    ok(seeded.client.get(url, query_string={"as_of": iso(seeded.marks["first"])}, headers=reader))
    before = hits(secure_app)
    current = ok(seeded.client.get(url, headers=reader))
    assert hits(secure_app) == before and current.get_json()["version"] == 2 and "ETag" in current.headers
