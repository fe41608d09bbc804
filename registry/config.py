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


REQUEST_LOG_MODES = ("uncached", "all", "off")
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


# Rate limits (registry/api/rate_limits.py): "N/second", "N/minute", ... joined with ";", or "off". Per process.
RATE_LIMITS = {
    "rate_limit_token_writes": ("REGISTRY_RATE_LIMIT_TOKEN_WRITES", "20/second;600/minute"),
    "rate_limit_token_searches": ("REGISTRY_RATE_LIMIT_TOKEN_SEARCHES", "20/second;600/minute"),
    "rate_limit_address_writes": ("REGISTRY_RATE_LIMIT_ADDRESS_WRITES", "50/second;1500/minute"),
    "rate_limit_address_searches": ("REGISTRY_RATE_LIMIT_ADDRESS_SEARCHES", "50/second;1500/minute"),
    # Failed password sign-ins (HTTP Basic user:password; each check is a slow hash): per address, per user name.
    "rate_limit_address_sign_ins": ("REGISTRY_RATE_LIMIT_ADDRESS_SIGN_INS", "10/minute;100/hour"),
    "rate_limit_user_sign_ins": ("REGISTRY_RATE_LIMIT_USER_SIGN_INS", "10/minute;100/hour"),
}


def _rate_limit(env: Mapping[str, str], name: str, default: str) -> str:
    raw = (env.get(name) or default).strip()
    if raw.lower() == "off":
        return ""
    from limits import parse_many

    try:
        items = parse_many(raw)
    except ValueError:
        items = []
    if not items or any(item.amount < 1 for item in items):
        raise ConfigError(f"{name} must be like '20/second;600/minute' (or 'off'), got {raw!r}")
    return raw


def _flag(env: Mapping[str, str], name: str, default: bool = False) -> bool:
    raw = env.get(name) or ("1" if default else "0")
    if raw not in ("0", "1"):
        raise ConfigError(f"{name} must be 0 or 1, got {raw!r}")
    return raw == "1"


def _warm_list(raw: str | None, setting: str, default: tuple[str, ...], parse_one, what: str) -> tuple[str, ...]:
    """A warm setting: unset gives ``default``, "none" nothing, else the comma-separated values, each parsed."""
    if raw is None or not raw.strip():
        return default
    if raw.strip().lower() == "none":
        return ()
    try:
        return tuple(dict.fromkeys(parse_one(part.strip()) for part in raw.split(",")))
    except Exception:
        raise ConfigError(f"{setting} must be {what} separated by commas, or none; got {raw!r}") from None


def _warm_stages(raw: str | None) -> tuple[str, ...]:
    from .lifecycle import parse_stage

    return _warm_list(raw, "REGISTRY_WARM_STAGES", ("Production",), lambda part: parse_stage(part).value,
                      "stage names")


EVERY_ALIAS = ("*",)  # REGISTRY_WARM_ALIASES' default: aliases exist to be served


def _warm_aliases(raw: str | None) -> tuple[str, ...]:
    from .names import alias_name

    if raw is not None and raw.strip() == "*":
        return EVERY_ALIAS
    return _warm_list(raw, "REGISTRY_WARM_ALIASES", EVERY_ALIAS, lambda part: alias_name(part, for_write=False),
                      "* or alias names")


def _boolean(env: Mapping[str, str], name: str) -> bool:
    raw = (env.get(name) or "false").lower()
    if raw not in ("true", "false", "1", "0"):
        raise ConfigError(f"{name} must be true or false, got {raw!r}")
    return raw in ("true", "1")


def _networks(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    import ipaddress

    networks = []
    for item in (env.get(name) or "").split(","):
        if item.strip():
            try:
                networks.append(str(ipaddress.ip_network(item.strip(), strict=False)))
            except ValueError:
                raise ConfigError(f"{name} must be comma-separated CIDRs such as 10.0.0.0/8, got {item!r}") from None
    return tuple(networks)


WORKER_CLASSES = ("gevent", "gthread")


@dataclass(frozen=True)
class Settings:
    database_url: str | None = None
    # REGISTRY_LISTEN_DATABASE_URL: where the change listener LISTENs, when requests go through a pooler in
    # transaction mode (PgBouncer), which cannot keep a LISTEN: a direct, session-level URL. Default: DATABASE_URL.
    listen_database_url: str | None = None
    # REGISTRY_DB_TRANSACTION_POOLER=1: DATABASE_URL is a pooler in transaction mode (PgBouncer). Such a pooler
    # refuses the ``options`` startup parameter (statement_timeout, jit), so none is sent: set them on the
    # database role instead (README). LISTEN cannot work through it, so REGISTRY_LISTEN_DATABASE_URL is required.
    transaction_pooler: bool = False
    data_dir: Path = field(default_factory=default_data_dir)
    max_body_bytes: int = 1024 * 1024
    # The most connections a worker's pool holds: opened as needed, then kept (registry/__init__.py).
    pool_size: int = 20
    # A pooled connection idle for longer than this is checked before use (registry/pooling.py).
    db_ping_after_seconds: int = 5
    statement_timeout_ms: int = 30_000
    # How long a write waits for a lock another transaction holds (a migration, a stuck session) before it is
    # answered 503 with Retry-After; writers of one model also queue in the process no longer than this.
    lock_timeout_ms: int = 3_000
    # While the database is unreachable, a serving answer held when contact was lost is still given, marked
    # stale, for at most this long (0: never; api/replay.py says when exactly).
    stale_max_seconds: int = 300
    # Rate limits per token and per client address, on writes and on searches ("" = off; RATE_LIMITS above).
    rate_limit_token_writes: str = RATE_LIMITS["rate_limit_token_writes"][1]
    rate_limit_token_searches: str = RATE_LIMITS["rate_limit_token_searches"][1]
    rate_limit_address_writes: str = RATE_LIMITS["rate_limit_address_writes"][1]
    rate_limit_address_searches: str = RATE_LIMITS["rate_limit_address_searches"][1]
    # Failed password checks per client address and per user name (api/rate_limits.py: ``checked_sign_in``).
    rate_limit_address_sign_ins: str = RATE_LIMITS["rate_limit_address_sign_ins"][1]
    rate_limit_user_sign_ins: str = RATE_LIMITS["rate_limit_user_sign_ins"][1]
    log_level: str = "INFO"
    auth_enabled: bool = True
    # REGISTRY_ALLOW_LOCAL_SOURCES: accept absolute local paths and file:// URIs as version sources (single-host
    # or shared-filesystem setups). Off, as in a registry-only MLflow: registry/sources.py says why.
    allow_local_sources: bool = False
    # Long-polls and watch streams waiting at once per worker (REGISTRY_MAX_WAITERS); None: the worker's socket
    # budget decides (registry/cache/waiters.py), 0 turns long-polling off.
    max_waiters: int | None = None
    # Bytes of cached answers per process (serving answers, rendered responses, tokens, levels).
    cache_bytes: int = 128 * 1024 * 1024
    # REGISTRY_WARM_STAGES: each worker caches every model's current version in these stages at start and after a
    # listener reset (registry/warming.py); "none" turns it off.
    warm_stages: tuple[str, ...] = ("Production",)
    # REGISTRY_WARM_ALIASES: the same for the versions behind these aliases ("*", the default: every alias).
    warm_aliases: tuple[str, ...] = EVERY_ALIAS
    # GET /api/v1/watch: a comment line this often on an idle stream, so proxies keep it open and a gone
    # client is noticed; and how many selectors one stream may watch.
    watch_heartbeat_seconds: int = 15
    watch_max_selectors: int = 100
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
    # a thread) or "gthread" (a thread per request, kept for comparison and for REGISTRY_PRELOAD). See
    # deploy/gunicorn.conf.py and registry/workers.py.
    worker_class: str = "gevent"
    threads: int = 32  # gthread only
    # Connections one gevent worker holds at once (its socket budget): idle keep-alive, waiting and busy alike.
    worker_connections: int = 10_000
    max_requests: int = 0  # recycle a worker after this many requests (0: never)
    preload: bool = False
    access_log: str | None = None
    # REGISTRY_METRICS=0: this process updates no metric (GET /metrics still answers). REGISTRY_REQUEST_LOG:
    # which requests get a log line (telemetry/requests.py): ``uncached`` (default) every request but the reads
    # answered from the replay cache (counted by the metrics), ``all``, or ``off``. Costs: tests/perf/run_observability.py.
    metrics_enabled: bool = True
    request_log: str = "uncached"
    # Events and webhooks (registry/events/). REGISTRY_EVENTS_DISPATCHER: "embedded" runs a dispatcher in every
    # server worker; "off" leaves delivery to `registry events dispatch` processes.
    events_dispatcher: str = "embedded"
    events_concurrency: int = 4  # deliveries in flight per dispatcher
    webhook_allow_http: bool = False
    webhook_allow_networks: tuple[str, ...] = ()  # CIDRs a receiver may be in although private/loopback
    webhook_timeout_seconds: int = 10  # connect and read, each
    webhook_backoff_ms: int = 1000  # first retry after about this long, doubling (with jitter)
    webhook_max_age_seconds: int = 24 * 3600  # retries stop this long after the event: the delivery fails

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
        listen_url = env.get("REGISTRY_LISTEN_DATABASE_URL") or None
        transaction_pooler = _flag(env, "REGISTRY_DB_TRANSACTION_POOLER")
        if transaction_pooler and not listen_url:
            # Through the pooler, LISTEN would land on a server connection shared with others and hear nothing:
            # every cache would trust answers no notification can ever invalidate.
            raise ConfigError("REGISTRY_DB_TRANSACTION_POOLER=1 needs REGISTRY_LISTEN_DATABASE_URL: a direct "
                              "(session) connection to PostgreSQL for the change listener")
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
        request_log = (env.get("REGISTRY_REQUEST_LOG") or "uncached").lower()
        if request_log not in REQUEST_LOG_MODES:
            raise ConfigError(f"REGISTRY_REQUEST_LOG must be one of {', '.join(REQUEST_LOG_MODES)}, got {request_log!r}")
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
        dispatcher = (env.get("REGISTRY_EVENTS_DISPATCHER") or "embedded").lower()
        if dispatcher not in {"embedded", "off"}:
            raise ConfigError(f"REGISTRY_EVENTS_DISPATCHER must be 'embedded' or 'off', got {dispatcher!r}")
        return cls(
            warm_stages=_warm_stages(env.get("REGISTRY_WARM_STAGES")),
            warm_aliases=_warm_aliases(env.get("REGISTRY_WARM_ALIASES")),
            events_dispatcher=dispatcher,
            events_concurrency=_int(env, "REGISTRY_EVENTS_CONCURRENCY", 4, 1, 256),
            webhook_allow_http=_boolean(env, "REGISTRY_WEBHOOK_ALLOW_HTTP"),
            webhook_allow_networks=_networks(env, "REGISTRY_WEBHOOK_ALLOW_NETWORKS"),
            webhook_timeout_seconds=_int(env, "REGISTRY_WEBHOOK_TIMEOUT_SECONDS", 10, 1, 300),
            webhook_backoff_ms=_int(env, "REGISTRY_WEBHOOK_BACKOFF_MS", 1000, 10, 3_600_000),
            webhook_max_age_seconds=_int(env, "REGISTRY_WEBHOOK_MAX_AGE_SECONDS", 24 * 3600, 0, 30 * 24 * 3600),
            bind=bind,
            workers=_int(env, "REGISTRY_WORKERS", 2, 1, 64),
            worker_class=worker_class,
            threads=threads,
            worker_connections=_int(env, "REGISTRY_WORKER_CONNECTIONS", 10_000, 16, 1_000_000),
            max_requests=_int(env, "REGISTRY_MAX_REQUESTS", 0, 0, 10_000_000),
            preload=preload,
            access_log=env.get("REGISTRY_ACCESS_LOG") or None,
            metrics_enabled=_flag(env, "REGISTRY_METRICS", default=True),
            request_log=request_log,
            auth_enabled=auth == "enabled",
            allow_local_sources=_flag(env, "REGISTRY_ALLOW_LOCAL_SOURCES"),
            max_waiters=_int(env, "REGISTRY_MAX_WAITERS", 0, 0, 1_000_000) if max_waiters else None,
            cache_bytes=_int(env, "REGISTRY_CACHE_MB", 128, 1, 65_536) * 1024 * 1024,
            admin_token=admin_token,
            secret_keys=secret_keys,
            console_session_hours=_int(env, "REGISTRY_CONSOLE_SESSION_HOURS", 12, 1, 24 * 30),
            database_url=normalise_database_url(url) if url else None,
            listen_database_url=normalise_database_url(listen_url) if listen_url else None,
            transaction_pooler=transaction_pooler,
            watch_heartbeat_seconds=_int(env, "REGISTRY_WATCH_HEARTBEAT_SECONDS", 15, 1, 300),
            watch_max_selectors=_int(env, "REGISTRY_WATCH_MAX_SELECTORS", 100, 1, 1000),
            data_dir=Path(env["REGISTRY_DATA_DIR"]) if env.get("REGISTRY_DATA_DIR") else default_data_dir(),
            max_body_bytes=_int(env, "REGISTRY_MAX_BODY_BYTES", 1024 * 1024, 1024, 64 * 1024 * 1024),
            pool_size=_int(env, "REGISTRY_DB_POOL_SIZE", 20, 1, 200),
            db_ping_after_seconds=_int(env, "REGISTRY_DB_PING_AFTER_SECONDS", 5, 0, 86_400),
            statement_timeout_ms=_int(env, "REGISTRY_STATEMENT_TIMEOUT_MS", 30_000, 100, 3_600_000),
            lock_timeout_ms=_int(env, "REGISTRY_LOCK_TIMEOUT_MS", 3_000, 100, 3_600_000),
            stale_max_seconds=_int(env, "REGISTRY_STALE_MAX_SECONDS", 300, 0, 86_400),
            **{field_name: _rate_limit(env, name, default) for field_name, (name, default) in RATE_LIMITS.items()},
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
        for url_field in ("database_url", "listen_database_url"):
            if isinstance(values.get(url_field), str):
                values[url_field] = normalise_database_url(values[url_field])
        return replace(self, **values)
