"""Settings, read once from the environment at start-up.

Nonsense fails fast with a message that names the variable, so a misconfigured deployment never
half-starts. ``create_app(overrides)`` lets tests replace any field.
"""
from __future__ import annotations

import os
import re
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


def _flag(env: Mapping[str, str], name: str) -> bool:
    raw = env.get(name) or "0"
    if raw not in ("0", "1"):
        raise ConfigError(f"{name} must be 0 or 1, got {raw!r}")
    return raw == "1"


WORKER_CLASSES = ("gevent", "gthread")


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
    # REGISTRY_ALLOW_LOCAL_SOURCES: accept absolute local paths and file:// URIs as version sources (single-host
    # or shared-filesystem setups). Off, as in a registry-only MLflow: registry/sources.py says why.
    allow_local_sources: bool = False
    # Long-polls waiting at once per worker (REGISTRY_MAX_WAITERS); None: the worker's socket budget decides
    # (registry/cache/waiters.py), 0 turns long-polling off.
    max_waiters: int | None = None
    # Bytes of cached answers per process (serving answers, rendered responses, tokens, levels).
    cache_bytes: int = 64 * 1024 * 1024
    admin_token: str | None = None
    # REGISTRY_SECRET_KEY: keys for what the server signs (the console's cookies); the first signs, all verify,
    # so a key can be rotated. Empty: a key the installation makes for itself and keeps in the database.
    secret_keys: tuple[str, ...] = ()
    # How long a console sign-in lasts (never longer than the token it was made with).
    console_session_hours: int = 12
    # The server (``registry serve``, ``deploy/gunicorn.conf.py``).
    bind: str = "127.0.0.1:8080"
    workers: int = 2
    # REGISTRY_WORKER_CLASS: "gevent" (every connection a greenlet: idle and waiting clients cost kilobytes, not
    # a thread) or "gthread" (a thread per request, the previous default, kept for comparison). See
    # deploy/gunicorn.conf.py and registry/workers.py.
    worker_class: str = "gevent"
    threads: int = 32  # gthread only
    # Connections one gevent worker holds at once (its socket budget): idle keep-alive, waiting and busy alike.
    worker_connections: int = 10_000
    max_requests: int = 0  # recycle a worker after this many requests (0: never)
    preload: bool = False
    access_log: str | None = None

    @property
    def host(self) -> str:
        return self.bind.rpartition(":")[0]

    @property
    def port(self) -> int:
        return int(self.bind.rpartition(":")[2])

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
        if env.get("REGISTRY_CACHE_ENTRIES"):
            raise ConfigError("REGISTRY_CACHE_ENTRIES is gone: the cache is bounded in bytes, set REGISTRY_CACHE_MB")
        admin_token = env.get("REGISTRY_ADMIN_TOKEN") or None
        if admin_token is not None and len(admin_token) < 20:
            raise ConfigError("REGISTRY_ADMIN_TOKEN must be at least 20 characters long")
        secret_keys = tuple(k.strip() for k in (env.get("REGISTRY_SECRET_KEY") or "").split(",") if k.strip())
        if any(len(k) < 32 for k in secret_keys):
            raise ConfigError("REGISTRY_SECRET_KEY: each comma-separated key must be at least 32 characters long")
        threads = _int(env, "REGISTRY_THREADS", 32, 1, 1024)
        worker_class = (env.get("REGISTRY_WORKER_CLASS") or "gevent").lower()
        if worker_class not in WORKER_CLASSES:
            raise ConfigError(f"REGISTRY_WORKER_CLASS must be one of {', '.join(WORKER_CLASSES)}, got {worker_class!r}")
        preload = _flag(env, "REGISTRY_PRELOAD")
        if preload and worker_class == "gevent":
            raise ConfigError("REGISTRY_PRELOAD=1 needs REGISTRY_WORKER_CLASS=gthread: a gevent worker must make "
                              "threads and sockets cooperative before the app is imported, which preloading defeats")
        max_waiters = env.get("REGISTRY_MAX_WAITERS")
        host = env.get("REGISTRY_HOST") or "127.0.0.1"
        bind = env.get("REGISTRY_BIND") or f"{host}:{_int(env, 'REGISTRY_PORT', 8080, 1, 65535)}"
        if not re.fullmatch(r"[^\s]+:\d{1,5}", bind):
            raise ConfigError(f"REGISTRY_BIND must look like HOST:PORT, got {bind!r}")
        return cls(
            bind=bind,
            workers=_int(env, "REGISTRY_WORKERS", 2, 1, 64),
            worker_class=worker_class,
            threads=threads,
            worker_connections=_int(env, "REGISTRY_WORKER_CONNECTIONS", 10_000, 16, 1_000_000),
            max_requests=_int(env, "REGISTRY_MAX_REQUESTS", 0, 0, 10_000_000),
            preload=preload,
            access_log=env.get("REGISTRY_ACCESS_LOG") or None,
            auth_enabled=auth == "enabled",
            allow_local_sources=_flag(env, "REGISTRY_ALLOW_LOCAL_SOURCES"),
            max_waiters=_int(env, "REGISTRY_MAX_WAITERS", 0, 0, 1_000_000) if max_waiters else None,
            cache_bytes=_int(env, "REGISTRY_CACHE_MB", 64, 1, 65_536) * 1024 * 1024,
            admin_token=admin_token,
            secret_keys=secret_keys,
            console_session_hours=_int(env, "REGISTRY_CONSOLE_SESSION_HOURS", 12, 1, 24 * 30),
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
