"""Unbound extensions, so that mapped classes never import the app."""
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData

# Deterministic constraint names keep autogenerate and hand-written migrations in agreement.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

db = SQLAlchemy(metadata=MetaData(naming_convention=NAMING_CONVENTION))
migrate = Migrate()

CACHES_KEY = "registry_caches"
OUTAGE_KEY = "registry_outage"  # the app's db/availability.Outage


def caches():
    """The current app's per-process caches (``registry.cache.Caches``), or None outside an app context.

    Like ``db.session``, a handle bound to the app at hand, so the layers below the API never import Flask."""
    from flask import current_app, has_app_context

    return current_app.extensions.get(CACHES_KEY) if has_app_context() else None


def settings():
    """The current app's ``config.Settings`` (the defaults outside an app context): like ``caches()``, so the
    use cases read an operator setting without importing Flask."""
    from flask import current_app, has_app_context

    from .config import Settings

    return current_app.config["REGISTRY_SETTINGS"] if has_app_context() else Settings()


def install_caches(app) -> None:
    from .cache import Caches
    from .cache.waiters import waiter_limit

    settings = app.config["REGISTRY_SETTINGS"]
    # LISTEN needs a session of its own: a pooler in transaction mode cannot give one, so the listener may
    # take a direct URL while requests go through the pooler (REGISTRY_LISTEN_DATABASE_URL).
    url = settings.listen_database_url or settings.database_url
    dsn = url.replace("postgresql+psycopg2://", "postgresql://", 1)
    app.extensions[CACHES_KEY] = Caches.create(dsn, max_bytes=settings.cache_bytes,
                                               max_waiters=waiter_limit(settings))
