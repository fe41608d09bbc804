"""The migrations build the schema from nothing, tear it down again, and agree with the ORM."""
from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect

from registry import create_app
from registry.extensions import db
from tests import pg

TABLES = {
    "registered_models",
    "registered_model_tags",
    "model_versions",
    "model_version_tags",
    "model_aliases",
    "audit_events",
}


@pytest.fixture
def empty_app(admin_url):
    name = pg.create_database(admin_url, prefix="registry_migrations")
    app = create_app({"database_url": pg.with_database(admin_url, name)})
    with app.app_context():
        yield app
        db.engine.dispose()
    pg.drop_database(admin_url, name)


def _tables() -> set[str]:
    return set(inspect(db.engine).get_table_names()) - {"alembic_version"}


def _current_heads() -> set[str]:
    with db.engine.connect() as connection:
        return set(MigrationContext.configure(connection).get_current_heads())


def test_upgrade_from_empty_database_creates_every_table(empty_app):
    upgrade()
    assert TABLES <= _tables()
    assert _current_heads(), "alembic_version must record the head revision"


def test_downgrade_to_base_removes_every_table(empty_app):
    upgrade()
    downgrade(revision="base")
    assert _tables() == set()
    assert _current_heads() == set()


def test_upgrade_after_downgrade_rebuilds_the_schema(empty_app):
    upgrade()
    downgrade(revision="base")
    upgrade()
    assert TABLES <= _tables()


def test_orm_matches_the_migrations(empty_app):
    upgrade()
    with db.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "compare_server_default": True}
        )
        differences = compare_metadata(context, db.metadata)
    assert differences == []


def test_audit_trigger_is_created_by_the_migration(empty_app):
    upgrade()
    with db.engine.connect() as connection:
        triggers = {
            row[0]
            for row in connection.exec_driver_sql(
                "SELECT tgname FROM pg_trigger WHERE tgrelid = 'audit_events'::regclass AND NOT tgisinternal"
            )
        }
    # The outbox's choke point is a trigger too: every audited change gets its event and deliveries.
    assert triggers == {"audit_events_no_update_delete", "audit_events_no_truncate", "audit_events_outbox"}


def test_upgrade_replaces_the_prefix_of_env_admin_tokens(empty_app):
    """REGISTRY_ADMIN_TOKEN's stored prefix was its first characters, a piece of an operator-chosen secret."""
    upgrade(revision="0005")
    with db.engine.begin() as connection:
        connection.exec_driver_sql("INSERT INTO users (name, is_admin, created_at) VALUES ('admin', true, now())")
        connection.exec_driver_sql(
            "INSERT INTO api_tokens (user_id, token_hash, token_prefix, description, created_at) "
            "SELECT id, repeat(h, 64), p, d, now() FROM users, (VALUES ('a', 'reg_s3cret', 'REGISTRY_ADMIN_TOKEN'), "
            "('b', 'reg_Abc123', 'laptop')) AS t(h, p, d)")
    upgrade()
    with db.engine.connect() as connection:
        rows = connection.exec_driver_sql("SELECT description, token_prefix FROM api_tokens ORDER BY id").all()
    assert [tuple(r) for r in rows] == [("REGISTRY_ADMIN_TOKEN", "env"), ("laptop", "reg_Abc123")]


def test_upgrade_names_each_existing_models_creator_from_its_audit_chain(empty_app):
    upgrade(revision="0009")
    with db.engine.begin() as connection:
        connection.exec_driver_sql("INSERT INTO registered_models (id, name, created_at, updated_at) "
                                   "VALUES (1, 'm', now(), now()), (2, 'n', now(), now())")
        connection.exec_driver_sql(
            "INSERT INTO audit_events (chain_id, seq, occurred_at, actor, action, model_id, model_name, hash) "
            "VALUES (1, 1, now(), 'carol', 'model.created', 1, 'm', 'h1'), "
            "(1, 2, now(), 'dave', 'model.tag_set', 1, 'm', 'h2')")
    upgrade()
    with db.engine.connect() as connection:
        rows = connection.exec_driver_sql("SELECT name, created_by FROM registered_models ORDER BY id").all()
    assert [tuple(r) for r in rows] == [("m", "carol"), ("n", None)]


def _violates(connection, statement: str) -> bool:
    from sqlalchemy.exc import IntegrityError

    nested = connection.begin_nested()
    try:
        connection.exec_driver_sql(statement)
    except IntegrityError:
        nested.rollback()
        return True
    nested.rollback()
    return False


def test_policies_and_requests_have_exactly_one_target(empty_app):
    """A policy governs a stage or an alias; a request targets a stage transition or an alias change."""
    upgrade()
    policy = "INSERT INTO approval_policies (model_id, stage, alias, required_approvals, updated_by, updated_at) " \
             "VALUES (NULL, {}, {}, 1, 'x', now())"
    request = "INSERT INTO transition_requests (model_id, version, from_stage, to_stage, alias, alias_action, " \
              "requested_by, created_at, updated_at) VALUES (1, 1, {}, {}, {}, {}, 'x', now(), now())"
    with db.engine.connect() as connection, connection.begin():
        connection.exec_driver_sql("INSERT INTO registered_models (id, name, created_at, updated_at) "
                                   "VALUES (1, 'm', now(), now())")
        assert not _violates(connection, policy.format("'Production'", "NULL"))
        assert not _violates(connection, policy.format("NULL", "'champion'"))
        assert _violates(connection, policy.format("'Production'", "'champion'"))
        assert _violates(connection, policy.format("NULL", "NULL"))
        assert not _violates(connection, request.format("'None'", "'Production'", "NULL", "NULL"))
        assert not _violates(connection, request.format("NULL", "NULL", "'champion'", "'set'"))
        assert not _violates(connection, request.format("NULL", "NULL", "'champion'", "'delete'"))
        assert _violates(connection, request.format("NULL", "NULL", "'champion'", "'move'"))
        assert _violates(connection, request.format("NULL", "NULL", "'champion'", "NULL"))
        assert _violates(connection, request.format("'None'", "'Production'", "'champion'", "'set'"))
        assert _violates(connection, request.format("'None'", "NULL", "NULL", "NULL"))
        assert _violates(connection, request.format("NULL", "NULL", "NULL", "NULL"))
