"""A small registry to look at through the console: ``churn`` (v1 in Production, v2 waiting, Production needs 2
approvals), ``secret`` (no grant to anyone but its owner), and the people who use them."""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from registry.auth import SYSTEM
from registry.services import models, permissions, policies, stages, versions


@dataclass
class World:
    owner: dict       # MANAGE on churn and secret
    reviewer: dict    # MANAGE_PRODUCTION on churn
    reviewer2: dict   # MANAGE_PRODUCTION on churn
    reader: dict      # READ on churn only
    admin: dict


@pytest.fixture
def world(secure_app, make_user) -> World:
    with secure_app.app_context():
        permissions.set_registry_permissions(SYSTEM, [])  # no registry-wide READ: grants decide
        models.create_model(SYSTEM, "churn", "Predicts churn", {"team": "growth"})
        versions.create_version(SYSTEM, "churn", "s3://bucket/churn/1", run_id="run-one", tags={"auc": "0.81"})
        versions.create_version(SYSTEM, "churn", "s3://bucket/churn/2", run_id="run-two",
                                run_link="https://tracking.example/runs/run-two", tags={"auc": "0.86"})
        stages.transition_stage(SYSTEM, "churn", 1, "Production")
        policies.set_model_policy(SYSTEM, "churn", "Production", required_approvals=2)
        models.create_model(SYSTEM, "secret")
        versions.create_version(SYSTEM, "secret", "s3://bucket/secret/1")
    world = World(owner=make_user("olga", "MANAGE", model="churn"), reviewer=make_user("rev", "MANAGE_PRODUCTION", model="churn"),
                  reviewer2=make_user("rev2", "MANAGE_PRODUCTION", model="churn"),
                  reader=make_user("reed", "READ", model="churn"), admin=make_user("root", admin=True))
    with secure_app.app_context():
        permissions.set_model_permissions(SYSTEM, "secret", [("olga", "MANAGE")], merge=True)
    return world


@pytest.fixture
def browser_for(secure_app, db_session):
    """``browser_for(headers)``: a test client with its own cookies, signed in as that user."""
    from .console import signed_in

    def make(headers):
        return signed_in(secure_app.test_client(), headers)

    return make
