"""Misses answered directly (registry/api/replay.py ``direct``, registry/cache/responses.py): a serving read that
is not cached yet, from a caller this process remembers, is rendered without Flask by the function its view
answers through.

What must hold: the bytes are exactly Flask's (a caller the process does not know yet is answered by Flask, so
the two are compared side by side); the answer is kept for replay like Flask's; whatever the view would refuse
(no READ, no such model, a bad stage) is left to Flask, which refuses it in the dialect's words.
"""
from __future__ import annotations

import pytest

from .test_replay import MODEL, READS, V1, admin, call, hits, ok, snapshot  # noqa: F401  (admin: a fixture)

# The reads with a ``direct``: the serving reads of both dialects.
DIRECT_READS = [read for read in READS if read[0] in {
    "native production", "native empty stage", "native alias", "native latest alias", "mlflow latest GET",
    "mlflow latest POST", "mlflow latest POST, all stages", "ajax latest POST", "mlflow alias"}]
NOT_DIRECT = [read for read in READS if read not in DIRECT_READS]


def directs(app) -> int:
    return app.extensions["registry_replay"].direct


def known(client, headers) -> dict:
    """The caller, remembered by the process (any authenticated request does it)."""
    ok(client.get("/api/v1/models", headers=headers))
    return headers


@pytest.mark.parametrize("read", DIRECT_READS, ids=[r[0] for r in DIRECT_READS])
def test_a_miss_answered_directly_is_byte_for_byte_what_flask_answers(secure_app, secure_client, admin,
                                                                      make_user, read):
    reader = known(secure_client, make_user("reader"))
    before = directs(secure_app)
    direct = call(secure_client, read, reader)
    assert directs(secure_app) == before + 1
    assert direct.status_code in (200, 404)
    # A caller the process has never seen is authenticated by Flask, and Flask renders the answer.
    stranger = make_user("stranger")
    rendered = call(secure_client, read, stranger)
    assert directs(secure_app) == before + 1
    assert snapshot(rendered) == snapshot(direct)
    # The direct answer was kept: the next identical read is a replay.
    replays = hits(secure_app)
    assert snapshot(call(secure_client, read, reader)) == snapshot(direct)
    assert hits(secure_app) == replays + 1


@pytest.mark.parametrize("read", DIRECT_READS[:4], ids=[r[0] for r in DIRECT_READS[:4]])
def test_a_conditional_miss_answered_directly_is_flasks_304(secure_app, secure_client, admin, make_user, read):
    reader = known(secure_client, make_user("reader"))
    etag = call(secure_client, read, make_user("first")).headers["ETag"]
    before = directs(secure_app)
    direct = call(secure_client, read, reader, {"If-None-Match": etag})
    assert directs(secure_app) == before + 1
    assert direct.status_code == 304
    rendered = call(secure_client, read, make_user("stranger"), {"If-None-Match": etag})
    assert snapshot(direct) == snapshot(rendered)


@pytest.mark.parametrize("read", NOT_DIRECT, ids=[r[0] for r in NOT_DIRECT])
def test_other_reads_are_rendered_by_flask(secure_app, secure_client, admin, make_user, read):
    reader = known(secure_client, make_user("reader"))
    before = directs(secure_app)
    ok(call(secure_client, read, reader))
    assert directs(secure_app) == before


@pytest.mark.parametrize("read", DIRECT_READS, ids=[r[0] for r in DIRECT_READS])
def test_a_caller_without_read_is_refused_by_flask(secure_app, secure_client, admin, make_user, read):
    ok(secure_client.put("/api/v1/permissions", json={"grants": []}, headers=admin))
    outsider = known(secure_client, make_user("outsider"))
    before = directs(secure_app)
    hidden = call(secure_client, read, outsider)
    assert directs(secure_app) == before
    assert hidden.status_code in (400, 404)
    assert b"s3://b/" not in hidden.get_data()
    # The same answer as for a model that does not exist: nothing tells the two apart.
    missing = (read[0], read[1], read[2].replace(MODEL, "nothing-here"),
               {k: ("nothing-here" if v == MODEL else v) for k, v in (read[3] or {}).items()} or None,
               {k: ("nothing-here" if v == MODEL else v) for k, v in (read[4] or {}).items()} or None)
    absent = call(secure_client, missing, outsider)
    assert absent.status_code == hidden.status_code
    assert absent.get_data().replace(b"nothing-here", MODEL.encode()) == hidden.get_data()


@pytest.mark.parametrize("path, code", [
    (f"{V1}/stages/Nowhere", b'"INVALID_ARGUMENT"'),
    ("/api/v1/models/nothing-here/stages/Production", b'"NOT_FOUND"'),
    ("/api/2.0/mlflow/registered-models/get-latest-versions?name=nothing-here", b'"RESOURCE_DOES_NOT_EXIST"'),
    (f"/api/2.0/mlflow/registered-models/alias?name={MODEL}&alias=nobody", b'"INVALID_PARAMETER_VALUE"'),
])
def test_what_the_view_refuses_is_refused_in_the_dialects_words(secure_app, secure_client, admin, make_user,
                                                                path, code):
    reader = known(secure_client, make_user("reader"))
    before = directs(secure_app)
    response = secure_client.get(path, headers=reader)
    assert response.status_code in (400, 404)
    assert code in response.get_data()
    assert directs(secure_app) == before


def test_a_revoked_token_is_refused_not_answered_directly(secure_app, secure_client, admin, make_user):
    reader = known(secure_client, make_user("reader"))
    token_id = secure_client.get("/api/v1/tokens", headers=reader).get_json()["tokens"][0]["id"]
    ok(secure_client.delete(f"/api/v1/tokens/{token_id}", headers=reader))
    before = directs(secure_app)
    assert call(secure_client, READS[0], reader).status_code == 401
    assert directs(secure_app) == before
