"""Alembic environment, run through Flask-Migrate (`registry db upgrade`).

Migrations take a transaction-scoped advisory lock, so several servers starting at once apply them one at a
time, and a lock_timeout, so a migration waiting behind a long transaction fails fast instead of
blocking every query queued behind its lock.
"""
import logging
from logging.config import fileConfig

from alembic import context
from flask import current_app
from sqlalchemy import text

config = context.config
if config.config_file_name:
    fileConfig(config.config_file_name, disable_existing_loggers=False)
logger = logging.getLogger("alembic.env")

MIGRATION_LOCK_KEY = 0x5265_6769_7374  # arbitrary constant: "Regist"

target_db = current_app.extensions["migrate"].db


def _engine():
    return target_db.engine


config.set_main_option("sqlalchemy.url", _engine().url.render_as_string(hide_password=False).replace("%", "%%"))


def run_migrations_offline():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_db.metadata,
                      literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    def skip_empty_autogenerate(context_, revision, directives):
        if getattr(config.cmd_opts, "autogenerate", False) and directives[0].upgrade_ops.is_empty():
            directives[:] = []
            logger.info("No changes in schema detected.")

    conf_args = dict(current_app.extensions["migrate"].configure_args)
    conf_args.setdefault("process_revision_directives", skip_empty_autogenerate)
    conf_args.setdefault("compare_type", True)
    conf_args.setdefault("compare_server_default", True)

    with _engine().connect() as connection:
        context.configure(connection=connection, target_metadata=target_db.metadata, **conf_args)
        with context.begin_transaction():
            connection.execute(text("SET LOCAL lock_timeout = '10s'"))
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
