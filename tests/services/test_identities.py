"""Users and API tokens in the service layer: hashing at rest, authentication, and the start-up bootstrap."""
from __future__ import annotations

import dataclasses
import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import text

from registry import create_app
from registry.auth import SYSTEM, Actor
from registry.errors import InvalidArgument, NotFound, PermissionDenied, Unauthenticated
from registry.extensions import db
from registry.services import identities
from registry.db.records import TokenRecord
from tests.threads import run_at_once

ENV_TOKEN = "reg_environment-provided-admin-token"


def authenticate(token: str) -> Actor:
    """The principal a token belongs to (the service answers its expiry too)."""
    return identities.authenticate_with_expiry(token)[0]


def sql(query: str, **params):
    rows = db.session.execute(text(query), params).all()
    db.session.rollback()  # end the read, as read-only services do
    return rows


def every_stored_text() -> list[str]:
    """Every row of every table of the registry's schema, rendered as JSON text."""
    tables = [t for (t,) in sql("SELECT table_name FROM information_schema.tables "
                                "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'")]
    assert {"api_tokens", "users", "audit_events"} <= set(tables)
    return [row for table in tables for (row,) in sql(f'SELECT row_to_json(t)::text FROM "{table}" t')]


def fragments(token: str, width: int = 12) -> list[str]:
    """The token and every ``width``-character piece of its secret part (the stored prefix is shorter)."""
    secret = token.removeprefix("reg_")
    return [token] + [secret[i:i + width] for i in range(len(secret) - width + 1)]


def issue(user: str, **kwargs) -> tuple[TokenRecord, str]:
    return identities.create_token(SYSTEM, user, create_user=True, **kwargs)


def expire(token_id: int) -> None:
    db.session.execute(text("UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE id = :id"),
                       {"id": token_id})
    db.session.commit()


# --- at rest ----------------------------------------------------------------------------------------------

def test_database_never_holds_a_token_or_a_piece_of_it_in_clear(ctx):
    tokens = [issue("dora")[1], issue("erin", admin=True, description="ci")[1],
              issue("dora", expires_in=timedelta(days=1))[1]]
    identities.ensure_admin_token(ENV_TOKEN)
    record, revoked = issue("frank")
    identities.revoke_token(SYSTEM, record.id)
    stored = every_stored_text()
    assert any("reg_" in row for row in stored)  # the rows are really there, prefixes included
    leaks = {piece for token in [*tokens, revoked, ENV_TOKEN] for piece in fragments(token)
             if any(piece in row for row in stored)}
    assert leaks == set()


def test_audit_details_of_token_events_carry_no_token(ctx):
    record, token = issue("dora")
    identities.revoke_token(SYSTEM, record.id)
    details = [d for (d,) in sql("SELECT details::text FROM audit_events WHERE action LIKE 'token.%'")]
    assert len(details) == 2
    assert not [d for d in details for piece in fragments(token) if piece in d]


def test_stored_hash_is_the_sha256_of_the_token(ctx):
    record, token = issue("dora")
    [(digest, prefix)] = sql("SELECT token_hash, token_prefix FROM api_tokens WHERE id = :id", id=record.id)
    assert digest == hashlib.sha256(token.encode()).hexdigest()
    assert token.startswith(prefix) and len(prefix) < len(token) // 2


def test_env_admin_token_is_stored_as_its_sha256(ctx):
    identities.ensure_admin_token(ENV_TOKEN)
    [(digest,)] = sql("SELECT t.token_hash FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE u.name = 'admin'")
    assert digest == hashlib.sha256(ENV_TOKEN.encode()).hexdigest()


def test_token_records_have_no_secret_field(ctx):
    record, _ = issue("dora")
    assert {f.name for f in dataclasses.fields(record)} == {
        "id", "user", "prefix", "description", "created_at", "expires_at", "revoked_at", "scope"}
    assert identities.list_tokens(SYSTEM, "dora") == [record]


# --- authenticate -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("admin", [False, True])
def test_token_authenticates_as_its_owner(ctx, admin):
    _, token = issue("dora", admin=admin)
    assert authenticate(token) == Actor("dora", is_admin=admin)


def test_token_with_future_expiry_authenticates(ctx):
    _, token = issue("dora", expires_in=timedelta(minutes=5))
    assert authenticate(token).name == "dora"


def test_unknown_token_is_refused(ctx):
    issue("dora")
    with pytest.raises(Unauthenticated):
        authenticate("reg_" + "x" * 43)


def test_revoked_token_is_refused(ctx):
    record, token = issue("dora")
    identities.revoke_token(SYSTEM, record.id)
    with pytest.raises(Unauthenticated):
        authenticate(token)


def test_expired_token_is_refused(ctx):
    record, token = issue("dora", expires_in=timedelta(days=30))
    expire(record.id)
    with pytest.raises(Unauthenticated):
        authenticate(token)


def test_revoking_one_token_leaves_the_users_other_tokens_working(ctx):
    first, token1 = issue("dora")
    _, token2 = issue("dora")
    identities.revoke_token(SYSTEM, first.id)
    assert authenticate(token2).name == "dora"
    with pytest.raises(Unauthenticated):
        authenticate(token1)


def test_authentication_names_the_token_used(ctx):
    record, token = issue("dora")
    actor, _ = identities.authenticate_with_expiry(token)
    assert actor.token_id == record.id
    assert actor == Actor("dora") and hash(actor) == hash(Actor("dora"))  # who, not how: equal without it


# --- tokens minted with a token ----------------------------------------------------------------------------

@pytest.mark.parametrize("end", ["revoked", "expired"])
def test_a_token_revoked_or_expired_meanwhile_mints_nothing(ctx, end):
    """The parent is checked (and locked) in the minting transaction, not only when the request came in."""
    parent, _ = issue("dora", expires_in=timedelta(days=1))
    if end == "revoked":
        identities.revoke_token(SYSTEM, parent.id)
    else:
        expire(parent.id)
    with pytest.raises(Unauthenticated):
        identities.create_token(Actor("dora", token_id=parent.id), "dora")
    assert [t.id for t in identities.list_tokens(SYSTEM, "dora")] == [parent.id]


def test_a_token_records_the_token_it_was_minted_with(ctx):
    parent, _ = issue("dora")
    child, _ = identities.create_token(Actor("dora", token_id=parent.id), "dora")
    assert sql("SELECT parent_id FROM api_tokens WHERE id = :id", id=child.id) == [(parent.id,)]
    [(details,)] = sql("SELECT details FROM audit_events WHERE action = 'token.created' "
                       "AND (details->>'token_id')::bigint = :id", id=child.id)
    assert details["parent_token_id"] == parent.id


# --- who may issue and revoke -----------------------------------------------------------------------------

def test_user_may_issue_a_token_for_themselves(ctx):
    issue("dora")
    record, token = identities.create_token(Actor("dora"), "dora")
    assert record.user == "dora" and authenticate(token).name == "dora"


def test_user_may_not_issue_a_token_for_someone_else(ctx):
    issue("dora")
    issue("erin")
    with pytest.raises(PermissionDenied):
        identities.create_token(Actor("dora"), "erin")


def test_user_may_not_create_users_through_tokens(ctx):
    with pytest.raises(PermissionDenied):
        identities.create_token(Actor("dora"), "newbie", create_user=True)
    assert sql("SELECT count(*) FROM users WHERE name = 'newbie'") == [(0,)]


def test_token_for_an_unknown_user_needs_create_user(ctx):
    with pytest.raises(NotFound):
        identities.create_token(SYSTEM, "ghost")


def test_admin_flag_refuses_an_existing_non_admin(ctx):
    issue("dora")
    with pytest.raises(InvalidArgument):
        issue("dora", admin=True)


@pytest.mark.parametrize("lifetime", [timedelta(0), timedelta(seconds=-1), timedelta(days=3651)])
def test_token_lifetime_must_be_positive_and_at_most_ten_years(ctx, lifetime):
    with pytest.raises(InvalidArgument):
        issue("dora", expires_in=lifetime)


def test_user_may_not_revoke_someone_elses_token(ctx):
    record, token = issue("erin")
    issue("dora")
    with pytest.raises(NotFound):
        identities.revoke_token(Actor("dora"), record.id)
    assert authenticate(token).name == "erin"


# --- REGISTRY_ADMIN_TOKEN ---------------------------------------------------------------------------------

def test_env_admin_token_creates_the_admin_once(ctx):
    assert identities.ensure_admin_token(ENV_TOKEN) is True
    assert identities.ensure_admin_token(ENV_TOKEN) is False
    assert authenticate(ENV_TOKEN) == Actor("admin", is_admin=True)
    assert sql("SELECT count(*) FROM api_tokens") == [(1,)]
    assert sql("SELECT count(*) FROM users") == [(1,)]


def test_env_admin_token_is_added_to_an_existing_admin(ctx):
    identities.ensure_admin_token(ENV_TOKEN)
    other = ENV_TOKEN + "-rotated"
    assert identities.ensure_admin_token(other) is True
    assert authenticate(other) == authenticate(ENV_TOKEN) == Actor("admin", is_admin=True)


def test_env_admin_token_does_not_resurrect_a_revoked_token(ctx):
    identities.ensure_admin_token(ENV_TOKEN)
    [record] = identities.list_tokens(SYSTEM, "admin")
    identities.revoke_token(SYSTEM, record.id)
    assert identities.ensure_admin_token(ENV_TOKEN) is False
    with pytest.raises(Unauthenticated):
        authenticate(ENV_TOKEN)
    assert sql("SELECT count(*) FROM api_tokens") == [(1,)]


def test_env_admin_token_prefix_is_not_taken_from_the_token(ctx):
    """The operator chose this token: its first characters are half of a secret that is not random."""
    identities.ensure_admin_token(ENV_TOKEN)
    [record] = identities.list_tokens(SYSTEM, "admin")
    [(details,)] = sql("SELECT details FROM audit_events WHERE action = 'token.created'")
    assert (record.prefix, details["prefix"]) == ("env", "env")
    assert not [row for row in every_stored_text() if ENV_TOKEN[len("reg_"):10] in row]


def test_env_admin_token_refuses_short_tokens(ctx):
    with pytest.raises(InvalidArgument):
        identities.ensure_admin_token("reg_short")


def test_env_admin_token_refuses_a_non_admin_user_named_admin(ctx):
    issue("admin")
    with pytest.raises(InvalidArgument):
        identities.ensure_admin_token(ENV_TOKEN)
    with pytest.raises(Unauthenticated):
        authenticate(ENV_TOKEN)


# --- bootstrap of a fresh install -------------------------------------------------------------------------

def test_bootstrap_creates_an_admin_once_on_an_empty_registry(ctx):
    token = identities.bootstrap_admin_if_empty()
    assert token is not None
    assert authenticate(token) == Actor("admin", is_admin=True)
    assert identities.bootstrap_admin_if_empty() is None
    assert sql("SELECT count(*) FROM users") == [(1,)]


def test_bootstrap_does_nothing_when_a_user_exists(ctx):
    issue("dora")
    assert identities.bootstrap_admin_if_empty() is None
    assert sql("SELECT name FROM users") == [("dora",)]


def test_bootstrap_token_is_stored_hashed(ctx):
    token = identities.bootstrap_admin_if_empty()
    stored = every_stored_text()
    assert [p for p in fragments(token) if any(p in row for row in stored)] == []


def test_concurrent_admin_token_registrations_add_it_once(fresh_database_url):
    # Every gunicorn worker registers REGISTRY_ADMIN_TOKEN at start-up, all at the same moment.
    app = create_app({"database_url": fresh_database_url, "pool_size": 8})
    token = "reg_" + "concurrent-start-token"
    try:
        added = run_at_once(app, 8, lambda _: identities.ensure_admin_token(token))
        assert [a for a in added if isinstance(a, Exception)] == []
        assert added.count(True) == 1
        with app.app_context():
            assert authenticate(token) == Actor("admin", is_admin=True)
            assert db.session.execute(text("SELECT count(*) FROM api_tokens")).scalar_one() == 1
            assert db.session.execute(text("SELECT count(*) FROM users")).scalar_one() == 1
            db.session.rollback()
    finally:
        with app.app_context():
            db.engine.dispose()


def test_concurrent_bootstraps_create_exactly_one_admin(fresh_database_url):
    app = create_app({"database_url": fresh_database_url, "pool_size": 8})
    try:
        tokens = run_at_once(app, 8, lambda _: identities.bootstrap_admin_if_empty())
        # run_at_once hands back exceptions as results; none of the racing bootstraps may fail.
        assert [t for t in tokens if isinstance(t, Exception)] == []
        issued = [t for t in tokens if t is not None]
        assert len(issued) == 1
        with app.app_context():
            assert authenticate(issued[0]) == Actor("admin", is_admin=True)
            assert db.session.execute(text("SELECT count(*) FROM users")).scalar_one() == 1
            assert db.session.execute(text("SELECT count(*) FROM api_tokens")).scalar_one() == 1
            db.session.rollback()
    finally:
        with app.app_context():
            db.engine.dispose()


def test_a_token_minted_while_its_parent_is_revoked_is_revoked_too(fresh_database_url):
    """Minting and revoking race: either the child commits first and is revoked with its parent, or the
    minting waits for the revocation and is refused. No child of a revoked token survives."""
    app = create_app({"database_url": fresh_database_url, "pool_size": 8})
    try:
        for _ in range(5):
            with app.app_context():
                parent, _ = identities.create_token(SYSTEM, "dora", create_user=True)
            minter = Actor("dora", token_id=parent.id)
            outcomes = run_at_once(app, 6, lambda i: identities.revoke_token(SYSTEM, parent.id) if i == 0
                                   else identities.create_token(minter, "dora"))
            assert [o for o in outcomes if isinstance(o, Exception) and not isinstance(o, Unauthenticated)] == []
            with app.app_context():
                alive = db.session.execute(text("SELECT count(*) FROM api_tokens WHERE parent_id = :id "
                                                "AND revoked_at IS NULL"), {"id": parent.id}).scalar_one()
                db.session.rollback()
            assert alive == 0
    finally:
        with app.app_context():
            db.engine.dispose()
