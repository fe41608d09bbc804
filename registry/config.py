"""Settings, read once from the environment at start-up.

Nonsense fails fast with a message that names the variable, so a misconfigured deployment never
half-starts. ``create_app(overrides)`` lets tests replace any field.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Mapping
from urllib.parse import urlsplit


class ConfigError(ValueError):
    """Raised at start-up for a setting that cannot work."""


_ACCEPTED_SCHEMES = {"postgresql", "postgres", "postgresql+psycopg2"}


def normalise_database_url(url: str) -> str:
    """Map the URL users write to the psycopg2 driver we ship.

    SQLAlchemy 2.x maps a bare ``postgresql://`` to psycopg 3, which is not installed, and Heroku-style
    ``postgres://`` is not understood at all.
    """
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in _ACCEPTED_SCHEMES:
        raise ConfigError(
            f"DATABASE_URL must be a PostgreSQL URL such as postgresql://user:pass@host:5432/db, got scheme {scheme!r}"
        )
    if not urlsplit(url).path.strip("/") and "dbname=" not in url:
        raise ConfigError("DATABASE_URL must name a database, e.g. postgresql://user@host:5432/registry")
    return f"postgresql+psycopg2://{rest}"


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "registry"


def _int(env: Mapping[str, str], name: str, default: int, minimum: int, maximum: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if not minimum <= value <= maximum:
        raise ConfigError(f"{name} must be between {minimum} and {maximum}, got {value}")
    return value


@dataclass(frozen=True)
class Settings:
    database_url: str | None = None
    data_dir: Path = field(default_factory=default_data_dir)
    max_body_bytes: int = 1024 * 1024
    pool_size: int = 10
    # A pooled connection idle for longer than this is checked before use (registry/pooling.py).
    db_ping_after_seconds: int = 5
    statement_timeout_ms: int = 30_000
    log_level: str = "INFO"
    auth_enabled: bool = True
    # Long-polls waiting at once per process; the rest of the threads stay free for other requests.
    max_waiters: int = 24
    # Cached answers per process (serving answers, single-model reads, replayable responses): bounds memory.
    cache_entries: int = 20_000
    admin_token: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env
        url = env.get("DATABASE_URL") or None
        log_level = (env.get("REGISTRY_LOG_LEVEL") or "INFO").upper()
        if log_level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ConfigError(f"REGISTRY_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got {log_level!r}")
        auth = (env.get("REGISTRY_AUTH") or "enabled").lower()
        if auth not in {"enabled", "disabled"}:
            raise ConfigError(f"REGISTRY_AUTH must be 'enabled' or 'disabled', got {auth!r}")
        admin_token = env.get("REGISTRY_ADMIN_TOKEN") or None
        if admin_token is not None and len(admin_token) < 20:
            raise ConfigError("REGISTRY_ADMIN_TOKEN must be at least 20 characters long")
        return cls(
            auth_enabled=auth == "enabled",
            max_waiters=_int(env, "REGISTRY_MAX_WAITERS",
                             max(1, _int(env, "REGISTRY_THREADS", 32, 1, 1024) - 8), 0, 4096),
            cache_entries=_int(env, "REGISTRY_CACHE_ENTRIES", 20_000, 100, 10_000_000),
            admin_token=admin_token,
            database_url=normalise_database_url(url) if url else None,
            data_dir=Path(env["REGISTRY_DATA_DIR"]) if env.get("REGISTRY_DATA_DIR") else default_data_dir(),
            max_body_bytes=_int(env, "REGISTRY_MAX_BODY_BYTES", 1024 * 1024, 1024, 64 * 1024 * 1024),
            pool_size=_int(env, "REGISTRY_DB_POOL_SIZE", 10, 1, 100),
            db_ping_after_seconds=_int(env, "REGISTRY_DB_PING_AFTER_SECONDS", 5, 0, 86_400),
            statement_timeout_ms=_int(env, "REGISTRY_STATEMENT_TIMEOUT_MS", 30_000, 100, 3_600_000),
            log_level=log_level,
        )

    def with_overrides(self, overrides: Mapping[str, object] | None) -> "Settings":
        if not overrides:
            return self
        known = {f.name for f in fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise ConfigError(f"unknown settings: {sorted(unknown)}")
        values = dict(overrides)
        if isinstance(values.get("database_url"), str):
            values["database_url"] = normalise_database_url(values["database_url"])
        return replace(self, **values)
