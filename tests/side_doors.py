"""The world and the rules shared by the policy side-door matrices of the three dialects (native:
tests/api/native/test_policy_side_doors.py, MLflow: tests/api/mlflow/test_policy_side_doors.py, Databricks:
tests/api/databricks/test_policy_side_doors.py).

The rule (DESIGN §4, issue "Trust the served answer", finding 4): any change that alters what a serving
lookup for a policy-protected stage or alias returns needs the same review as a promotion. Expected outcomes
come from the rules, not from the code under test:

* a model the caller cannot READ answers "not found";
* below the level the action needs (the ladder READ < EDIT < MANAGE_STAGING < MANAGE_PRODUCTION < MANAGE;
  admins above all): refused, PERMISSION_DENIED;
* a guarded action (one that changes what Production, champion or canary serve) by someone holding the
  level: refused, APPROVAL_REQUIRED in the native dialect and PERMISSION_DENIED in MLflow's, admins included;
  an admin's ``force`` applies it (native only), anyone else's ``force`` is refused;
* everything else behaves as before.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from sqlalchemy import text

from registry.auth import SYSTEM, Actor
from registry.errors import NotFound

MODEL = "churn"
RANK = {"READ": 1, "EDIT": 2, "MANAGE_STAGING": 3, "MANAGE_PRODUCTION": 4, "MANAGE": 5, "ADMIN": 6}
# "READ" holds only the registry-wide ``*`` = READ every user has; "NO_ACCESS" not even that.
CALLERS = ["NO_ACCESS", "READ", "EDIT", "MANAGE_STAGING", "MANAGE_PRODUCTION", "MANAGE", "ADMIN"]
ALLOWED = "2xx"


@dataclass(frozen=True)
class SideDoor:
    name: str
    method: str
    path: str  # formatted with World.ids
    body: dict | None
    level: str  # what the action needs; "ADMIN": admins only
    guarded: bool = False  # changes what a protected stage or alias serves
    force: bool = False  # sent with the admin override
    scope: str = "model"  # "model": 404 for callers who cannot read it; "registry": 403


def expected(door: SideDoor, caller: str, *, policy_code: str = "APPROVAL_REQUIRED",
             forceable: bool = True) -> tuple[str | int, str | None]:
    """(ALLOWED, None) or (status, error code), from the rules in the module docstring."""
    if caller == "NO_ACCESS":
        return (404, "NOT_FOUND") if door.scope == "model" else (403, "PERMISSION_DENIED")
    if RANK[caller] < RANK[door.level]:
        return 403, "PERMISSION_DENIED"
    if door.force and caller != "ADMIN":
        return 403, "PERMISSION_DENIED"
    if door.guarded and not (door.force and forceable and caller == "ADMIN"):
        return 403, policy_code
    return ALLOWED, None


@dataclass
class World:
    ids: dict
    audit_count: Callable[[], int]
    serving: Callable[[], tuple]


def build_world(secure_app, db_session, make_user) -> World:
    """churn: version 1 in Production behind champion; version 2 in None behind scratch (unprotected);
    version 3 in None behind canary. Production and champion need 2 approvals, canary 1. ``requester`` has
    a pending request to take version 1 out of Production and one to point champion at version 2."""
    from registry.services import alias_requests, aliases, models, policies, reviews, stages, versions

    make_user("requester")
    with secure_app.app_context():
        models.create_model(SYSTEM, MODEL)
        for i in (1, 2, 3):
            versions.create_version(SYSTEM, MODEL, f"s3://b/{i}")
        stages.transition_stage(SYSTEM, MODEL, 1, "Production")
        for alias, version in (("champion", 1), ("scratch", 2), ("canary", 3)):
            aliases.set_alias(SYSTEM, MODEL, alias, version)
        policies.set_model_policy(SYSTEM, MODEL, "Production", required_approvals=2)
        policies.set_model_alias_policy(SYSTEM, MODEL, "champion", required_approvals=2)
        policies.set_model_alias_policy(SYSTEM, MODEL, "canary", required_approvals=1)
        requester = Actor("requester")
        ids = {"leave_request": reviews.create_request(requester, MODEL, 1, "Archived").id,
               "alias_request": alias_requests.request_alias(requester, MODEL, 2, "champion").id}

    def audit_count() -> int:
        return db_session.execute(text("SELECT count(*) FROM audit_events")).scalar_one()

    def serving() -> tuple:
        """What a serving lookup answers for Production and each alias, and whether the model exists."""
        answers = []
        with secure_app.app_context():
            try:
                from registry.services.serving import resolve

                current = resolve(SYSTEM, MODEL, stage="Production").version
                if current is None:
                    raise NotFound("nothing in Production")
                answers.append(current.version)
                for alias in ("champion", "canary"):
                    try:
                        answers.append(aliases.get_version_by_alias(SYSTEM, MODEL, alias).version)
                    except NotFound:
                        answers.append(None)
            except NotFound:
                return ("no model",)
        return tuple(answers)

    return World(ids, audit_count, serving)


def caller_headers(secure_app, make_user, level: str) -> dict:
    from registry.services import permissions

    if level == "ADMIN":
        return make_user("caller", admin=True)
    if level == "READ":
        return make_user("caller")
    if level == "NO_ACCESS":
        headers = make_user("caller")
        with secure_app.app_context():
            permissions.set_registry_permissions(SYSTEM, [])  # drops the registry-wide ``*`` = READ
        return headers
    return make_user("caller", level)


def forced_events(db_session, since: int) -> list[dict]:
    rows = db_session.execute(text("SELECT action, details FROM audit_events WHERE id > :since ORDER BY id"),
                              {"since": since}).all()
    return [{"action": action, **details} for action, details in rows if details.get("forced")]


def last_event(db_session) -> int:
    return db_session.execute(text("SELECT coalesce(max(id), 0) FROM audit_events")).scalar_one()
