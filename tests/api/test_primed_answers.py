"""Warm answers rendered ahead of their first read (registry/warming.py, ``replay.prime``): after a worker warms,
the first serving read of each warm answer, in each dialect, is a replay.

What must hold: the replayed bytes are exactly what Flask renders for that read; only the reads of warm answers
are primed; who may have a primed answer is decided per caller, as for every replay (a caller without READ gets
Flask's refusal); and a change heard after the page's label means the primed answer is never served.
"""
from __future__ import annotations

import pytest

from registry.api.replay import prime
from registry.extensions import CACHES_KEY
from registry.services import serving
from registry.warming import Warmer

from .test_direct_answers import DIRECT_READS, directs, known
from .test_replay import MODEL, READS, V1, admin, call, hits, ok, snapshot  # noqa: F401  (admin: a fixture)

# Warming's defaults: Production, and every alias (``champion``); the ajax prefix and other stages are not primed.
PRIMED = [read for read in READS if read[0] in {
    "native production", "native alias", "mlflow latest GET", "mlflow latest POST", "mlflow alias"}]
NOT_PRIMED = [read for read in DIRECT_READS if read not in PRIMED]


def warm(app) -> None:
    with app.app_context():
        Warmer(app)._warm_all()


def forget(app) -> None:
    app.extensions[CACHES_KEY].hub.dispatch(None)  # as after a listener reset: nothing cached is current


@pytest.mark.parametrize("read", PRIMED, ids=[r[0] for r in PRIMED])
def test_the_first_read_of_a_warm_answer_is_a_replay_of_flasks_bytes(secure_app, secure_client, admin, make_user,
                                                                     read):
    reader = make_user("reader")
    forget(secure_app)
    warm(secure_app)
    known(secure_client, reader)
    replays, answered_directly = hits(secure_app), directs(secure_app)
    primed = call(secure_client, read, reader)
    assert (hits(secure_app), directs(secure_app)) == (replays + 1, answered_directly)
    assert primed.status_code == 200
    # What Flask renders for it, the cache emptied and the caller unknown to the process.
    forget(secure_app)
    rendered = call(secure_client, read, make_user("stranger"))
    assert hits(secure_app) == replays + 1
    assert snapshot(rendered) == snapshot(primed)


@pytest.mark.parametrize("read", NOT_PRIMED, ids=[r[0] for r in NOT_PRIMED])
def test_reads_of_answers_that_are_not_warm_are_not_primed(secure_app, secure_client, admin, make_user, read):
    reader = make_user("reader")
    forget(secure_app)
    warm(secure_app)
    known(secure_client, reader)
    replays = hits(secure_app)
    call(secure_client, read, reader)
    assert hits(secure_app) == replays


@pytest.mark.parametrize("read", PRIMED, ids=[r[0] for r in PRIMED])
def test_a_caller_without_read_is_refused_a_primed_answer(secure_app, secure_client, admin, make_user, read):
    ok(secure_client.put("/api/v1/permissions", json={"grants": []}, headers=admin))
    outsider = make_user("outsider")
    forget(secure_app)
    warm(secure_app)
    known(secure_client, outsider)
    replays = hits(secure_app)
    hidden = call(secure_client, read, outsider)
    assert hits(secure_app) == replays
    assert hidden.status_code in (400, 404)
    assert b"s3://b/" not in hidden.get_data()


def test_a_promotion_after_warming_is_read_at_once(secure_app, secure_client, admin, make_user):
    reader = make_user("reader")
    forget(secure_app)
    warm(secure_app)
    known(secure_client, reader)
    ok(secure_client.post(f"{V1}/versions/2/transition", json={"stage": "Production",
                                                               "archive_existing_versions": True}, headers=admin))
    ok(secure_client.put(f"{V1}/aliases/champion", json={"version": 2}, headers=admin))
    assert call(secure_client, READS[0], reader).get_json()["version"] == 2
    alias = next(read for read in PRIMED if read[0] == "mlflow alias")
    assert call(secure_client, alias, reader).get_json()["model_version"]["version"] == "2"


def test_an_answer_changed_while_it_was_rendered_is_not_kept(secure_app, secure_client, admin, make_user):
    reader = make_user("reader")
    forget(secure_app)
    known(secure_client, reader)
    caches = secure_app.extensions[CACHES_KEY]
    with secure_app.app_context():
        label = caches.hub.label()
        model_id = serving._read("stage", MODEL, "Production").model_id
        caches.hub.dispatch({"m": model_id, "g": 10**6})  # the model changed after the label was taken
        assert prime(secure_app, [("stage", MODEL, "Production"), ("alias", MODEL, "champion")], label) == 4
    replays = hits(secure_app)
    for read in PRIMED:
        call(secure_client, read, reader)
    assert hits(secure_app) == replays + 1  # only the repeated MLflow get-latest-versions (GET, then POST)


def test_a_model_whose_name_is_not_ascii_is_primed_too(secure_app, secure_client, admin, make_user):
    name = "modèle de fraude"
    ok(secure_client.post("/api/v1/models", json={"name": name}, headers=admin), 201)
    ok(secure_client.post(f"/api/v1/models/{name}/versions", json={"source": "s3://b/x"}, headers=admin), 201)
    ok(secure_client.post(f"/api/v1/models/{name}/versions/1/transition", json={"stage": "Production"},
                          headers=admin))
    reader = make_user("reader")
    forget(secure_app)
    warm(secure_app)
    known(secure_client, reader)
    replays = hits(secure_app)
    assert ok(secure_client.get(f"/api/v1/models/{name}/stages/Production", headers=reader)).get_json()["model"] == name
    assert hits(secure_app) == replays + 1
