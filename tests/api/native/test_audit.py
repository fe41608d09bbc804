"""HTTP behaviour of /api/v1/audit-events: what changes record, filters, time ranges, pagination."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from tests.api.support import assert_error


def as_actor(name: str) -> dict:
    return {"X-Registry-Actor": name}


def events(client, **params) -> list[dict]:
    response = client.get("/api/v1/audit-events", query_string=params)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["events"]


def actions(client, **params) -> list[tuple]:
    return [(e["action"], e["model"], e["version"]) for e in events(client, **params)]


@pytest.fixture
def history(client):
    """alice creates churn (v1 run r1, v2 run r2) and promotes v1; bob creates fraud (v1 run r1)."""
    alice, bob = as_actor("alice"), as_actor("bob")
    client.post("/api/v1/models", json={"name": "churn"}, headers=alice)
    client.post("/api/v1/models/churn/versions", json={"source": "s3://b/s", "run_id": "r1"}, headers=alice)
    client.post("/api/v1/models/churn/versions", json={"source": "s3://b/s", "run_id": "r2"}, headers=alice)
    client.post("/api/v1/models/churn/versions/1/transition", json={"stage": "Production"}, headers=alice)
    client.post("/api/v1/models", json={"name": "fraud"}, headers=bob)
    client.post("/api/v1/models/fraud/versions", json={"source": "s3://b/s", "run_id": "r1"}, headers=bob)
    return events(client, max_results=1000)


def test_every_change_records_one_event_in_order(client, history):
    assert [(e["action"], e["model"], e["version"], e["actor"]) for e in history] == [
        ("model.created", "churn", None, "alice"),
        ("version.created", "churn", 1, "alice"),
        ("version.created", "churn", 2, "alice"),
        ("version.transitioned", "churn", 1, "alice"),
        ("model.created", "fraud", None, "bob"),
        ("version.created", "fraud", 1, "bob"),
    ]


def test_event_renders_all_fields(client, history):
    event = history[3]
    assert set(event) == {"id", "time", "time_iso", "actor", "action", "model", "version", "run_id", "from_stage",
                          "to_stage", "request_id", "details", "correlation_id", "seq", "prev_hash", "hash"}
    assert (event["from_stage"], event["to_stage"], event["run_id"]) == ("None", "Production", "r1")
    assert isinstance(event["time"], int) and isinstance(event["details"], dict)
    assert event["prev_hash"] == history[2]["hash"]  # chained per model


def test_requests_without_actor_header_are_recorded_as_anonymous(client):
    client.post("/api/v1/models", json={"name": "anon"})
    assert [e["actor"] for e in events(client, model="anon")] == ["anonymous"]


def test_actor_header_is_recorded_on_every_kind_of_write(client):
    carol = as_actor("carol")
    client.post("/api/v1/models", json={"name": "m"}, headers=carol)
    client.put("/api/v1/models/m/tags/k", json={"value": "v"}, headers=carol)
    client.post("/api/v1/models/m/versions", json={"source": "s3://b/s"}, headers=carol)
    client.put("/api/v1/models/m/aliases/champion", json={"version": 1}, headers=carol)
    client.patch("/api/v1/models/m/versions/1", json={"description": "d"}, headers=carol)
    client.delete("/api/v1/models/m/versions/1", headers=carol)
    client.delete("/api/v1/models/m", headers=carol)
    recorded = events(client, model="m")
    assert {e["actor"] for e in recorded} == {"carol"}
    assert [e["action"] for e in recorded] == [
        "model.created", "model.tag_set", "version.created", "alias.set", "version.updated",
        "alias.deleted", "version.deleted", "model.deleted",
    ]


def test_failed_write_records_nothing(client, history):
    client.post("/api/v1/models", json={"name": "churn"}, headers=as_actor("mallory"))
    assert events(client, actor="mallory") == []


def test_filter_by_model(client, history):
    assert [e["model"] for e in events(client, model="fraud")] == ["fraud", "fraud"]


def test_filter_by_model_and_version(client, history):
    assert actions(client, model="churn", version=1) == [
        ("version.created", "churn", 1), ("version.transitioned", "churn", 1)]


def test_filter_by_run_id_spans_models(client, history):
    assert actions(client, run_id="r1") == [
        ("version.created", "churn", 1), ("version.transitioned", "churn", 1), ("version.created", "fraud", 1)]


def test_filter_by_actor(client, history):
    assert actions(client, actor="bob") == [("model.created", "fraud", None), ("version.created", "fraud", 1)]


def test_filter_by_action(client, history):
    assert actions(client, action="model.created") == [("model.created", "churn", None),
                                                       ("model.created", "fraud", None)]


def test_filters_combine(client, history):
    assert actions(client, actor="alice", run_id="r2", action="version.created") == [("version.created", "churn", 2)]


def test_model_filter_follows_a_rename(client, history):
    client.patch("/api/v1/models/churn", json={"name": "retention"})
    got = events(client, model="retention")
    assert [e["model"] for e in got][:4] == ["churn"] * 4
    assert got[-1]["action"] == "model.renamed" and got[-1]["model"] == "retention"


def test_events_outlive_their_model(client, history):
    client.delete("/api/v1/models/fraud")
    assert [e["action"] for e in events(client, model="fraud")] == [
        "model.created", "version.created", "version.deleted", "model.deleted"]


def instant(event: dict) -> datetime:
    return datetime.fromisoformat(event["time_iso"])


def ids(items: list[dict]) -> list[int]:
    return [e["id"] for e in items]


def test_since_in_milliseconds_is_inclusive(client, history):
    pivot = history[3]
    since = datetime.fromtimestamp(pivot["time"] / 1000, tz=timezone.utc)
    got = events(client, since=pivot["time"])
    assert pivot["id"] in ids(got)
    assert ids(got) == [e["id"] for e in history if instant(e) >= since]


def test_until_in_milliseconds_is_exclusive(client, history):
    pivot = history[3]
    until = datetime.fromtimestamp(pivot["time"] / 1000, tz=timezone.utc)
    got = events(client, until=pivot["time"])
    assert ids(got) == [e["id"] for e in history if instant(e) < until]
    assert pivot["id"] not in ids(got)


def test_since_and_until_in_iso_form_select_a_window(client, history):
    first, last = history[1], history[4]
    got = events(client, since=first["time_iso"], until=last["time_iso"])
    assert ids(got) == [e["id"] for e in history if instant(first) <= instant(e) < instant(last)]
    assert first["id"] in ids(got) and last["id"] not in ids(got)


@pytest.mark.parametrize("spell", [
    lambda moment: moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    lambda moment: moment.replace(tzinfo=None).isoformat(),  # naive means UTC
    lambda moment: moment.astimezone(timezone.utc).isoformat(),
])
def test_iso_since_accepts_z_naive_and_offset_forms(client, history, spell):
    pivot = history[2]
    got = events(client, since=spell(instant(pivot).astimezone(timezone.utc)))
    assert pivot["id"] in ids(got)
    assert ids(got) == [e["id"] for e in history if instant(e) >= instant(pivot)]


def test_since_after_until_is_400(client, history):
    error = assert_error(client.get("/api/v1/audit-events?since=2000&until=1000"), 400, "INVALID_ARGUMENT")
    assert error["details"] == {"field": "since"}


def test_version_filter_without_model_is_400(client):
    assert_error(client.get("/api/v1/audit-events?version=1"), 400, "INVALID_ARGUMENT")


def test_unknown_action_is_400(client):
    assert_error(client.get("/api/v1/audit-events?action=model.exploded"), 400, "INVALID_ARGUMENT")


def test_walking_all_pages_returns_every_event_once_in_order(client, history):
    for i in range(7):
        client.put("/api/v1/models/churn/tags/k", json={"value": str(i)})
    everything = events(client, max_results=1000)
    pages, token = [], None
    while True:
        response = client.get("/api/v1/audit-events", query_string={"max_results": 4, **(
            {"page_token": token} if token else {})})
        assert response.status_code == 200
        pages.append(response.get_json()["events"])
        token = response.get_json()["next_page_token"]
        if token is None:
            break
    assert all(len(p) == 4 for p in pages[:-1])
    assert [e["id"] for p in pages for e in p] == ids(everything)
    assert len(everything) == len(history) + 7


def test_walking_a_filtered_listing_keeps_the_filter(client, history):
    for i in range(5):
        client.put("/api/v1/models/fraud/tags/k", json={"value": str(i)}, headers=as_actor("bob"))
    pages, token = [], None
    while True:
        query = {"max_results": 2, "actor": "bob", **({"page_token": token} if token else {})}
        body = client.get("/api/v1/audit-events", query_string=query).get_json()
        pages.append(body["events"])
        token = body["next_page_token"]
        if token is None:
            break
    seen = [e for p in pages for e in p]
    assert {e["actor"] for e in seen} == {"bob"}
    assert len(seen) == len({e["id"] for e in seen}) == 2 + 5
