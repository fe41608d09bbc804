"""Who may call what, over HTTP with authentication on (issue 3, DESIGN §3).

The expected outcome of every call comes from the tables below, written from the rules (not computed by the
code under test):

* levels form a ladder READ < EDIT < MANAGE_STAGING < MANAGE_PRODUCTION < MANAGE; every user holds the
  registry-wide default ``*`` = READ; admins hold everything;
* a grant on the model counts for that model only; a registry-wide grant counts for every model and for
  registry-wide actions (creating a model needs registry-wide EDIT);
* a model the caller cannot READ answers 404, whatever they asked for;
* users, registry-wide permissions and policies, and tokens for someone else are admin-only;
* a comment is edited by its author only, and deleted by its author or an admin;
* someone else's token is invisible (404) to non-admins.
"""
from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Callable

import pytest
from sqlalchemy import text

from registry.api.replay import REPLAY_KEY
from registry.auth import SYSTEM, Actor
from registry.services import (aliases, comments, identities, models, native_webhooks, permissions, reviews, stages,
                               versions)

MODEL = "churn"

RANK = {"READ": 1, "EDIT": 2, "MANAGE_STAGING": 3, "MANAGE_PRODUCTION": 4, "MANAGE": 5}

# The permission a direct transition (and the review of a request) needs, per (from, to): anything touching
# Production needs MANAGE_PRODUCTION, every other move MANAGE_STAGING.
STAGE_PAIR_NEEDS = {
    ("None", "Staging"): "MANAGE_STAGING",
    ("None", "Archived"): "MANAGE_STAGING",
    ("Staging", "None"): "MANAGE_STAGING",
    ("Staging", "Archived"): "MANAGE_STAGING",
    ("Archived", "None"): "MANAGE_STAGING",
    ("Archived", "Staging"): "MANAGE_STAGING",
    ("None", "Production"): "MANAGE_PRODUCTION",
    ("Staging", "Production"): "MANAGE_PRODUCTION",
    ("Archived", "Production"): "MANAGE_PRODUCTION",
    ("Production", "None"): "MANAGE_PRODUCTION",
    ("Production", "Staging"): "MANAGE_PRODUCTION",
    ("Production", "Archived"): "MANAGE_PRODUCTION",
}
# Reviews are checked on a representative of each pair class and direction.
REVIEW_PAIRS = [("None", "Staging"), ("Staging", "Archived"), ("None", "Production"), ("Production", "Archived")]

# Who is asking: (level, where it is granted). "DEFAULT" holds only the registry-wide ``*`` = READ;
# "NO_ACCESS" holds nothing at all (the ``*`` grant is removed); "ADMIN" is an admin user.
CALLERS = (
    [("DEFAULT", None)]
    + [(level, scope) for level in RANK for scope in ("registry", "model")]
    + [("ADMIN", None), ("NO_ACCESS", None)]
)


@dataclass(frozen=True)
class Route:
    name: str
    method: str
    path: str  # formatted with the ids of the world built for the test
    body: dict | None
    # "model": needs ``level`` on the model; "registry": needs ``level`` registry-wide; "admin": admins only;
    # "author": the comment's author only; "author_or_admin"; "own_token": the token's owner or an admin.
    rule: str
    level: str | None = None
    pair: tuple[str, str] | None = None  # builds version 2 in pair[0] (and a request for it to pair[1])


POLICY = {"required_approvals": 0, "creator_may_not_approve": False}
# A receiver nobody may call (loopback is refused by default): a test call answers at once, with an error.
HOOK_URL = "https://127.0.0.1:9/hook"
GRANTS = {"grants": [{"principal": "*", "level": "READ"}]}

ROUTES = [
    Route("create model", "POST", "/api/v1/models", {"name": "fresh"}, "registry", "EDIT"),
    Route("edit model description", "PATCH", f"/api/v1/models/{MODEL}", {"description": "new"}, "model", "EDIT"),
    Route("rename model", "PATCH", f"/api/v1/models/{MODEL}", {"name": "renamed"}, "model", "MANAGE"),
    Route("delete model", "DELETE", f"/api/v1/models/{MODEL}", None, "model", "MANAGE"),
    Route("set model tag", "PUT", f"/api/v1/models/{MODEL}/tags/team", {"value": "ml"}, "model", "EDIT"),
    Route("delete model tag", "DELETE", f"/api/v1/models/{MODEL}/tags/k", None, "model", "EDIT"),
    Route("create version", "POST", f"/api/v1/models/{MODEL}/versions", {"source": "s3://b/new"}, "model", "EDIT"),
    Route("edit version", "PATCH", f"/api/v1/models/{MODEL}/versions/1", {"description": "d"}, "model", "EDIT"),
    Route("delete version", "DELETE", f"/api/v1/models/{MODEL}/versions/1", None, "model", "MANAGE"),
    Route("set version tag", "PUT", f"/api/v1/models/{MODEL}/versions/1/tags/team", {"value": "ml"},
          "model", "EDIT"),
    Route("delete version tag", "DELETE", f"/api/v1/models/{MODEL}/versions/1/tags/k", None, "model", "EDIT"),
    *[
        Route(f"transition {a} to {b}", "POST", f"/api/v1/models/{MODEL}/versions/2/transition", {"stage": b},
              "model", needs, pair=(a, b))
        for (a, b), needs in STAGE_PAIR_NEEDS.items()
    ],
    Route("set alias", "PUT", f"/api/v1/models/{MODEL}/aliases/challenger", {"version": 1},
          "model", "MANAGE_PRODUCTION"),
    Route("delete alias", "DELETE", f"/api/v1/models/{MODEL}/aliases/champion", None, "model", "MANAGE_PRODUCTION"),
    Route("replace model permissions", "PUT", f"/api/v1/models/{MODEL}/permissions", GRANTS, "model", "MANAGE"),
    Route("merge model permissions", "PATCH", f"/api/v1/models/{MODEL}/permissions", GRANTS, "model", "MANAGE"),
    Route("set model approval policy", "PUT", f"/api/v1/models/{MODEL}/approval-policies/Production", POLICY,
          "model", "MANAGE"),
    Route("set model alias policy", "PUT", f"/api/v1/models/{MODEL}/approval-policies/aliases/champion", POLICY,
          "model", "MANAGE"),
    Route("replace registry permissions", "PUT", "/api/v1/permissions", GRANTS, "admin"),
    Route("merge registry permissions", "PATCH", "/api/v1/permissions", GRANTS, "admin"),
    Route("set registry approval policy", "PUT", "/api/v1/approval-policies/Production", POLICY, "admin"),
    Route("set registry alias policy", "PUT", "/api/v1/approval-policies/aliases/champion", POLICY, "admin"),
    Route("create user", "POST", "/api/v1/users", {"name": "newcomer"}, "admin"),
    Route("create token for another user", "POST", "/api/v1/tokens", {"user": "other"}, "admin"),
    Route("revoke another user's token", "DELETE", "/api/v1/tokens/{other_token}", None, "own_token"),
    Route("create transition request", "POST", f"/api/v1/models/{MODEL}/versions/1/transition-requests",
          {"stage": "Production"}, "model", "READ"),
    Route("create alias request", "POST", f"/api/v1/models/{MODEL}/versions/1/alias-requests",
          {"alias": "challenger"}, "model", "READ"),
    Route("create alias deletion request", "POST", f"/api/v1/models/{MODEL}/aliases/champion/deletion-requests",
          {}, "model", "READ"),
    *[
        Route(f"{verb} request {a} to {b}", "POST", f"/api/v1/transition-requests/{{pair_request}}/{verb}",
              {"comment": "ok"}, "model", STAGE_PAIR_NEEDS[(a, b)], pair=(a, b))
        for verb in ("approve", "reject")
        for a, b in REVIEW_PAIRS
    ],
    Route("cancel someone else's request", "POST", "/api/v1/transition-requests/{request}/cancel", {},
          "model", "MANAGE"),
    Route("comment", "POST", f"/api/v1/models/{MODEL}/versions/1/comments", {"comment": "hi"}, "model", "EDIT"),
    Route("edit someone else's comment", "PATCH", "/api/v1/comments/{comment}", {"comment": "mine now"}, "author"),
    Route("delete someone else's comment", "DELETE", "/api/v1/comments/{comment}", None, "author_or_admin"),
    Route("create webhook", "POST", "/api/v1/webhooks", {"url": HOOK_URL, "model": MODEL, "events": ["alias.set"]},
          "model", "MANAGE"),
    Route("create registry-wide webhook", "POST", "/api/v1/webhooks", {"url": HOOK_URL, "events": ["model.created"]},
          "admin"),
    Route("change webhook", "PATCH", "/api/v1/webhooks/{webhook}", {"status": "DISABLED"}, "model", "MANAGE"),
    Route("delete webhook", "DELETE", "/api/v1/webhooks/{webhook}", None, "model", "MANAGE"),
    Route("rotate webhook secret", "POST", "/api/v1/webhooks/{webhook}/rotate-secret", {}, "model", "MANAGE"),
    Route("test webhook", "POST", "/api/v1/webhooks/{webhook}/test", {}, "model", "MANAGE"),
    Route("redeliver", "POST", "/api/v1/webhooks/{webhook}/redeliver", {"from_event_id": 1}, "model", "MANAGE"),
]

ALLOWED = "2xx"


def expected(route: Route, caller: str, scope: str | None) -> str | int:
    """The outcome the rules in the module docstring give, as ALLOWED or the denial's status."""
    if caller == "NO_ACCESS":
        # Cannot read the model: everything about it is "not found"; registry-wide actions are refused.
        return 404 if route.rule in {"model", "author", "author_or_admin", "own_token"} else 403
    if caller == "ADMIN":
        return 403 if route.rule == "author" else ALLOWED
    if route.rule in {"admin", "author", "author_or_admin"}:
        return 403
    if route.rule == "own_token":
        return 404
    held_on_model = RANK.get(caller, RANK["READ"])  # DEFAULT: the registry-wide READ
    held_registry = held_on_model if scope == "registry" else RANK["READ"]
    held = held_registry if route.rule == "registry" else held_on_model
    return ALLOWED if held >= RANK[route.level] else 403


def test_expectation_table_matches_the_rules_on_a_few_hand_checked_cells():
    """Guards the table itself against a slip: cells worked out by hand from the brief."""
    by_name = {r.name: r for r in ROUTES}
    assert expected(by_name["create model"], "EDIT", "model") == 403  # needs registry-wide EDIT
    assert expected(by_name["create model"], "EDIT", "registry") == ALLOWED
    assert expected(by_name["transition None to Production"], "MANAGE_STAGING", "registry") == 403
    assert expected(by_name["transition Staging to Archived"], "MANAGE_STAGING", "model") == ALLOWED
    assert expected(by_name["create transition request"], "DEFAULT", None) == ALLOWED
    assert expected(by_name["create transition request"], "NO_ACCESS", None) == 404
    assert expected(by_name["edit someone else's comment"], "ADMIN", None) == 403
    assert expected(by_name["delete someone else's comment"], "ADMIN", None) == ALLOWED


def test_matrix_covers_every_write_route_of_the_native_api(secure_app):
    """A new native write route must get a row in ROUTES: compare with the app's URL map (the MLflow and
    Databricks dialects call the same services, whose checks this matrix exercises)."""
    adapter = secure_app.url_map.bind("localhost")
    dummy = {"request": 1, "pair_request": 1, "comment": 1, "other_token": 1, "webhook": 1}
    covered = {(adapter.match(r.path.format(**dummy), method=r.method)[0], r.method) for r in ROUTES}
    writes = {(rule.endpoint, method) for rule in secure_app.url_map.iter_rules() if rule.rule.startswith("/api/v1/")
              for method in rule.methods - {"GET", "HEAD", "OPTIONS"}}
    assert writes - covered == set()


@dataclass
class World:
    ids: dict
    audit_count: Callable[[], int]


def _make_world(secure_app, db_session, make_user, route: Route | None) -> World:
    """A model with version 1 (tag k, alias champion, a comment by ``author``, a pending request by
    ``requester``) and, for stage routes, version 2 in the pair's source stage."""
    make_user("requester")
    make_user("other")
    with secure_app.app_context():
        models.create_model(SYSTEM, MODEL, tags={"k": "v"})
        versions.create_version(SYSTEM, MODEL, "s3://b/1", tags={"k": "v"})
        aliases.set_alias(SYSTEM, MODEL, "champion", 1)
    make_user("author", "EDIT", model=MODEL)
    with secure_app.app_context():
        comment = comments.create_comment(Actor("author"), MODEL, 1, "looks good")
        request = reviews.create_request(Actor("requester"), MODEL, 1, "Staging")
        ids = {"comment": comment.id, "request": request.id,
               "other_token": identities.list_tokens(SYSTEM, "other")[0].id,
               "webhook": native_webhooks.create(SYSTEM, HOOK_URL, ["version.created"], model_name=MODEL).id}
        if route is not None and route.pair is not None:
            source, target = route.pair
            versions.create_version(SYSTEM, MODEL, "s3://b/2")
            if source != "None":
                stages.transition_stage(SYSTEM, MODEL, 2, source)
            ids["pair_request"] = reviews.create_request(Actor("requester"), MODEL, 2, target).id

    def audit_count() -> int:
        return db_session.execute(text("SELECT count(*) FROM audit_events")).scalar_one()

    return World(ids, audit_count)


def _caller(secure_app, make_user, level: str, scope: str | None) -> dict:
    if level == "ADMIN":
        return make_user("caller", admin=True)
    if level == "DEFAULT":
        return make_user("caller")
    if level == "NO_ACCESS":
        headers = make_user("caller")
        with secure_app.app_context():
            permissions.set_registry_permissions(SYSTEM, [])  # drops the registry-wide ``*`` = READ
        return headers
    return make_user("caller", level, model=MODEL if scope == "model" else None)


def _call(client, route: Route, ids: dict, headers: dict):
    return client.open(route.path.format(**ids), method=route.method, json=route.body, headers=headers)


@pytest.mark.parametrize("level,scope", CALLERS, ids=[f"{lv}-{sc}" if sc else lv for lv, sc in CALLERS])
@pytest.mark.parametrize("route", ROUTES, ids=[r.name for r in ROUTES])
def test_write_route_is_allowed_or_denied_by_level(secure_app, secure_client, db_session, make_user,
                                                   route, level, scope):
    world = _make_world(secure_app, db_session, make_user, route)
    headers = _caller(secure_app, make_user, level, scope)
    want = expected(route, level, scope)
    before = world.audit_count()
    response = _call(secure_client, route, world.ids, headers)
    outcome = ALLOWED if 200 <= response.status_code < 300 else response.status_code
    assert outcome == want, response.get_data(as_text=True)
    if want != ALLOWED:
        code = {403: "PERMISSION_DENIED", 404: "NOT_FOUND"}[want]
        assert response.get_json()["error"]["code"] == code
        assert world.audit_count() == before  # a refused write changes nothing, not even the trail
        if want == 404 and "{" in route.path:
            # Addressed by id: the answer must not even name the model the caller cannot read.
            assert MODEL not in response.get_data(as_text=True)


@pytest.mark.parametrize("level", ["MANAGE_PRODUCTION", "MANAGE"])
def test_only_admins_may_force_a_transition(secure_app, secure_client, db_session, make_user, level):
    _make_world(secure_app, db_session, make_user, None)
    headers = make_user("caller", level)
    response = secure_client.post(f"/api/v1/models/{MODEL}/versions/1/transition",
                                  json={"stage": "Production", "force": True}, headers=headers)
    assert response.status_code == 403
    assert response.get_json()["error"]["details"] == {"field": "force"}


def test_direct_transition_needs_a_policy_without_approvals_even_with_the_stage_permission(
        secure_app, secure_client, db_session, make_user):
    _make_world(secure_app, db_session, make_user, None)
    headers = make_user("caller", "MANAGE")
    assert secure_client.put(f"/api/v1/models/{MODEL}/approval-policies/Production",
                             json={"required_approvals": 1}, headers=headers).status_code == 200
    response = secure_client.post(f"/api/v1/models/{MODEL}/versions/1/transition", json={"stage": "Production"},
                                  headers=headers)
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "APPROVAL_REQUIRED"


# --- authentication on every route ------------------------------------------------------------------------

SAMPLE_VALUES = {"name": MODEL, "version": "1", "key": "k", "stage": "Production", "alias": "champion",
                 "request_id": "1", "comment_id": "1", "token_id": "1"}
PUBLIC = {"/healthz", "/readyz"}


def _every_route(app):
    """(method, concrete path) for every API route: all but Flask's static files, the health checks and the
    console (whose pages send a visitor to sign in: tests/web/test_session.py checks each of them)."""
    calls = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.rule in PUBLIC or rule.endpoint.startswith("web."):
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", lambda m: SAMPLE_VALUES.get(m.group(1), "1"), rule.rule)
        calls.extend((method, path) for method in sorted(rule.methods - {"HEAD", "OPTIONS"}))
    return calls


def test_every_route_is_enumerated_for_the_anonymous_check(secure_app):
    paths = {path for _, path in _every_route(secure_app)}
    assert "/api/v1/me" in paths and f"/api/v1/models/{MODEL}/versions/1/transition" in paths
    assert not paths & PUBLIC


@pytest.fixture
def populated(secure_app, db_session, make_user):
    """Things exist under the sample ids, so a 401 cannot be a 404 in disguise."""
    _make_world(secure_app, db_session, make_user, None)


@pytest.mark.parametrize("auth", [None, "Bearer reg_not-a-real-token-0000000000000000000000"],
                         ids=["no-header", "unknown-token"])
def test_every_route_but_health_checks_answers_401_without_a_valid_token(secure_app, secure_client, populated,
                                                                         auth):
    headers = {"Authorization": auth} if auth else {}
    wrong = {}
    for method, path in _every_route(secure_app):
        response = secure_client.open(path, method=method, json={}, headers=headers)
        native = path.startswith("/api/v1/")  # other dialects render the 401 in their own error shape
        if (response.status_code != 401
                or not response.headers.get("WWW-Authenticate", "").startswith("Bearer")
                or (native and response.get_json()["error"]["code"] != "UNAUTHENTICATED")):
            wrong[(method, path)] = response.status_code
    assert wrong == {}


@pytest.mark.parametrize("path", sorted(PUBLIC))
def test_health_checks_answer_without_a_token(secure_client, path):
    assert secure_client.get(path).status_code == 200


def test_revoked_token_is_refused(secure_client, make_user):
    headers = make_user("dora")
    tokens = secure_client.get("/api/v1/tokens", headers=headers).get_json()["tokens"]
    assert secure_client.delete(f"/api/v1/tokens/{tokens[0]['id']}", headers=headers).status_code == 200
    response = secure_client.get("/api/v1/me", headers=headers)
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "UNAUTHENTICATED"


def test_expired_token_is_refused(secure_app, secure_client, db_session):
    with secure_app.app_context():
        record, token = identities.create_token(SYSTEM, "erin", create_user=True, expires_in=timedelta(hours=1))
    headers = {"Authorization": f"Bearer {token}"}
    with secure_app.app_context():
        # Checked through the service, not over HTTP: the server caches a token with its expiry time, and
        # this test moves the expiry into the past by hand (in production only time does that).
        assert identities.authenticate_with_expiry(token)[0].name == "erin"
    db_session.execute(text("UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE id = :id"),
                       {"id": record.id})
    db_session.commit()
    response = secure_client.get("/api/v1/me", headers=headers)
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "UNAUTHENTICATED"


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


MALFORMED = {
    "bearer without token": lambda t: "Bearer",
    "bearer with blanks only": lambda t: "Bearer    ",
    "token without scheme": lambda t: t,
    "unknown scheme": lambda t: f"Token {t}",
    "tampered token": lambda t: f"Bearer {t[:-1]}{'A' if t[-1] != 'A' else 'B'}",
    "token with suffix": lambda t: f"Bearer {t}x",
    "basic not base64": lambda t: "Basic !!!not-base64!!!",
    "basic without colon": lambda t: "Basic " + base64.b64encode(t.encode()).decode(),
    "basic with empty password": lambda t: _basic(t, ""),
    "basic with wrong password": lambda t: _basic("dora", "reg_wrong"),
    "basic not utf8": lambda t: "Basic " + base64.b64encode(b"dora:\xff\xfe").decode(),
}


@pytest.mark.parametrize("make_header", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_authorization_header_is_refused(secure_app, secure_client, db_session, make_header):
    with secure_app.app_context():
        _, token = identities.create_token(SYSTEM, "dora", create_user=True)
    response = secure_client.get("/api/v1/me", headers={"Authorization": make_header(token)})
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "UNAUTHENTICATED"


VALID = {
    "bearer": lambda t: f"Bearer {t}",
    "bearer lower-case scheme": lambda t: f"bearer {t}",
    "basic with token as password": lambda t: _basic("whoever", t),
    "basic with empty user name": lambda t: _basic("", t),
}


@pytest.mark.parametrize("make_header", VALID.values(), ids=VALID.keys())
def test_token_authenticates_in_every_accepted_header_form(secure_app, secure_client, db_session, make_header):
    with secure_app.app_context():
        _, token = identities.create_token(SYSTEM, "dora", create_user=True)
    response = secure_client.get("/api/v1/me", headers={"Authorization": make_header(token)})
    assert response.status_code == 200
    assert response.get_json() == {"name": "dora", "is_admin": False}


# --- nothing leaks from a model the caller cannot read ---------------------------------------------------

SECRET = "secret-model"


@pytest.fixture
def hidden(secure_client, make_user):
    """``secret-model`` readable by ``insider`` only; ``outsider`` manages ``visible-model`` only. Both have a
    version in Production, an alias, a comment and a pending request by the admin."""
    root = make_user("root", admin=True)
    response = secure_client.put("/api/v1/permissions", json={"grants": []}, headers=root)
    assert response.status_code == 200 and response.get_json()["grants"] == []
    ids = {}
    for name in (SECRET, "visible-model"):
        base = f"/api/v1/models/{name}"
        for method, path, body in [
            ("POST", "/api/v1/models", {"name": name}),
            ("POST", f"{base}/versions", {"source": "s3://b/1", "run_id": f"run-{name}"}),
            ("POST", f"{base}/versions", {"source": "s3://b/2"}),
            ("POST", f"{base}/versions/1/transition", {"stage": "Production"}),
            ("PUT", f"{base}/aliases/champion", {"version": 1}),
        ]:
            response = secure_client.open(path, method=method, json=body, headers=root)
            assert response.status_code in (200, 201), response.get_data(as_text=True)
        comment = secure_client.post(f"{base}/versions/1/comments", json={"comment": "note"}, headers=root)
        request = secure_client.post(f"{base}/versions/2/transition-requests", json={"stage": "Staging"},
                                     headers=root)
        ids[name] = {"comment": comment.get_json()["id"], "request": request.get_json()["id"]}
    insider = make_user("insider", "MANAGE", model=SECRET)
    outsider = make_user("outsider", "MANAGE", model="visible-model")
    return {"insider": insider, "outsider": outsider, "root": root, "ids": ids}


SECRET_BASE = f"/api/v1/models/{SECRET}"
SECRET_READS = [
    SECRET_BASE, f"{SECRET_BASE}/versions", f"{SECRET_BASE}/versions/1", f"{SECRET_BASE}/latest-versions",
    f"{SECRET_BASE}/stages/Production", f"{SECRET_BASE}/aliases/champion",
    f"{SECRET_BASE}/versions/1/transition-requests", f"{SECRET_BASE}/transition-requests",
    f"{SECRET_BASE}/versions/1/comments", f"{SECRET_BASE}/approval-policies", f"{SECRET_BASE}/permissions",
    "/api/v1/transition-requests/{request}", "/api/v1/transition-requests/{request}/history",
]


@pytest.mark.parametrize("template", SECRET_READS)
def test_model_the_caller_cannot_read_answers_404_on_every_read(secure_client, hidden, template):
    path = template.format(**hidden["ids"][SECRET])
    assert secure_client.get(path, headers=hidden["insider"]).status_code == 200  # it is there
    response = secure_client.get(path, headers=hidden["outsider"])
    assert response.status_code == 404, response.get_data(as_text=True)
    assert response.get_json()["error"]["code"] == "NOT_FOUND"
    if SECRET not in path:
        assert SECRET not in response.get_data(as_text=True)


def test_unreadable_model_answers_exactly_like_a_missing_one(secure_client, hidden):
    secret = secure_client.get(f"/api/v1/models/{SECRET}", headers=hidden["outsider"])
    missing = secure_client.get("/api/v1/models/absent-model", headers=hidden["outsider"])
    assert secret.status_code == missing.status_code == 404
    assert (secret.get_data(as_text=True).replace(SECRET, "X")
            == missing.get_data(as_text=True).replace("absent-model", "X"))


@pytest.mark.parametrize("kind", ["request", "comment"])
def test_unreadable_request_or_comment_answers_exactly_like_a_missing_one(secure_client, hidden, kind):
    """Addressed by id, the answer must not even say which model the id belongs to."""
    hidden_id = hidden["ids"][SECRET][kind]
    path = {"request": "/api/v1/transition-requests/{}/approve", "comment": "/api/v1/comments/{}"}[kind]
    method = {"request": "POST", "comment": "PATCH"}[kind]
    body = {"comment": "x"}
    secret = secure_client.open(path.format(hidden_id), method=method, json=body, headers=hidden["outsider"])
    missing = secure_client.open(path.format(10**9), method=method, json=body, headers=hidden["outsider"])
    assert secret.status_code == missing.status_code == 404
    assert (secret.get_json()["error"]["code"], secret.get_json()["error"]["message"].replace(str(hidden_id), "N")) == (
        missing.get_json()["error"]["code"], missing.get_json()["error"]["message"].replace(str(10**9), "N"))
    assert SECRET not in secret.get_data(as_text=True)


def test_model_list_hides_unreadable_models(secure_client, hidden):
    names = [m["name"] for m in secure_client.get("/api/v1/models", headers=hidden["outsider"]).get_json()["models"]]
    assert names == ["visible-model"]
    insider = [m["name"] for m in secure_client.get("/api/v1/models", headers=hidden["insider"]).get_json()["models"]]
    assert insider == [SECRET]


@pytest.mark.parametrize("query", [{}, {"model": SECRET}, {"run_id": f"run-{SECRET}"}, {"stage": "Production"}])
def test_version_search_hides_versions_of_unreadable_models(secure_client, hidden, query):
    response = secure_client.get("/api/v1/versions", query_string=query, headers=hidden["outsider"])
    if response.status_code == 200:
        assert SECRET not in response.get_data(as_text=True)
    else:
        assert response.status_code == 404
    found = secure_client.get("/api/v1/versions", query_string=query, headers=hidden["insider"])
    assert SECRET in found.get_data(as_text=True)


@pytest.mark.parametrize("query", [{}, {"model": SECRET}, {"run_id": f"run-{SECRET}"}, {"actor": "root"},
                                   {"request_id": "REQUEST"}])
def test_audit_events_hide_events_of_unreadable_models(secure_client, hidden, query):
    query = {k: (hidden["ids"][SECRET]["request"] if v == "REQUEST" else v) for k, v in query.items()}
    response = secure_client.get("/api/v1/audit-events", query_string=query, headers=hidden["outsider"])
    assert response.status_code == 200
    assert SECRET not in response.get_data(as_text=True)
    assert secure_client.get("/api/v1/audit-events", query_string=query, headers=hidden["insider"]).get_json()[
        "events"]


def test_inbox_hides_requests_on_unreadable_models(secure_client, hidden):
    outsider = secure_client.get("/api/v1/inbox", headers=hidden["outsider"]).get_json()["requests"]
    assert [r["id"] for r in outsider] == [hidden["ids"]["visible-model"]["request"]]
    insider = secure_client.get("/api/v1/inbox", headers=hidden["insider"]).get_json()["requests"]
    assert [r["id"] for r in insider] == [hidden["ids"][SECRET]["request"]]


@pytest.mark.parametrize("search", ["/api/v1/versions?run_id=run-x", "/api/v1/models?name_prefix=seen",
                                    "/api/2.0/mlflow/model-versions/search?filter=run_id%3D%27run-x%27"])
def test_revoking_the_registry_wide_read_hides_search_results_at_once(secure_client, make_user, search):
    # Searches filter by the caller's registry-wide level, which each process caches: a grant change must
    # reach that cache before the next request, never after.
    root = make_user("root", admin=True)
    assert secure_client.post("/api/v1/models", json={"name": "seen"}, headers=root).status_code == 201
    assert secure_client.post("/api/v1/models/seen/versions", json={"source": "s3://bucket/x", "run_id": "run-x"},
                              headers=root).status_code == 201
    reader = make_user("reader")  # holds only the seeded registry-wide `*` READ
    before = secure_client.get(search, headers=reader)
    assert before.status_code == 200 and b"seen" in before.get_data()
    assert secure_client.get(search, headers=reader).get_data() == before.get_data()  # served with a cached level
    assert secure_client.put("/api/v1/permissions", json={"grants": []}, headers=root).status_code == 200
    after = secure_client.get(search, headers=reader)
    assert after.status_code == 200 and b"seen" not in after.get_data()


def test_a_deny_hides_the_model_on_every_read_at_once_even_from_its_manager(secure_app, secure_client, hidden):
    """DENY vetoes the insider's own MANAGE, on every read, including answers this process has cached."""
    from ..support import listening

    listening(secure_app)
    serving = f"{SECRET_BASE}/stages/Production"
    assert secure_client.get(serving, headers=hidden["insider"]).status_code == 200
    replays = secure_app.extensions[REPLAY_KEY].hits
    assert secure_client.get(serving, headers=hidden["insider"]).status_code == 200
    assert secure_app.extensions[REPLAY_KEY].hits == replays + 1  # replayed from what the process remembers
    replays += 1
    response = secure_client.patch(f"{SECRET_BASE}/permissions", headers=hidden["root"],
                                   json={"grants": [{"principal": "insider", "level": "DENY"}]})
    assert {"principal": "insider", "level": "DENY"} in response.get_json()["grants"]
    for template in SECRET_READS:
        path = template.format(**hidden["ids"][SECRET])
        assert secure_client.get(path, headers=hidden["insider"]).status_code == 404, path
    assert secure_app.extensions[REPLAY_KEY].hits == replays
    assert secure_client.get("/api/v1/models", headers=hidden["insider"]).get_json()["models"] == []
    assert secure_client.get(serving, headers=hidden["root"]).status_code == 200  # admins are not bound
