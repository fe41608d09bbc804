"""Settings: database URL normalisation and fail-fast parsing of the environment."""
from __future__ import annotations

from pathlib import Path

import pytest

from registry.config import ConfigError, Settings, normalise_database_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://u:p@h:5432/db", "postgresql+psycopg2://u:p@h:5432/db"),
        ("postgres://u:p@h:5432/db", "postgresql+psycopg2://u:p@h:5432/db"),
        ("postgresql+psycopg2://u:p@h:5432/db", "postgresql+psycopg2://u:p@h:5432/db"),
        ("POSTGRESQL://u@h/db", "postgresql+psycopg2://u@h/db"),
        ("postgresql://u@h/db?sslmode=require", "postgresql+psycopg2://u@h/db?sslmode=require"),
        ("postgresql://u@h/?dbname=db", "postgresql+psycopg2://u@h/?dbname=db"),
    ],
    ids=["postgresql", "postgres", "psycopg2", "upper-scheme", "query", "dbname-param"],
)
def test_normalise_database_url_selects_psycopg2(url, expected):
    assert normalise_database_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///x",
        "mysql://u@h/db",
        "postgresql+asyncpg://u@h/db",
        "postgresql://u@h:5432",
        "postgresql://u@h:5432/",
        "garbage",
        "",
        "://u@h/db",
    ],
    ids=["sqlite", "mysql", "asyncpg", "no-database", "no-database-slash", "garbage", "empty", "no-scheme"],
)
def test_normalise_database_url_rejects_non_postgres_or_incomplete_urls(url):
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        normalise_database_url(url)


def test_from_env_with_empty_env_uses_defaults():
    settings = Settings.from_env({"REGISTRY_DATA_DIR": "/tmp/registry-data"})
    assert settings.database_url is None
    assert settings.data_dir == Path("/tmp/registry-data")
    assert settings.max_body_bytes == 1024 * 1024
    assert settings.pool_size == 20
    assert settings.statement_timeout_ms == 30_000
    assert settings.log_level == "INFO"


def test_from_env_reads_and_normalises_every_variable():
    settings = Settings.from_env(
        {
            "DATABASE_URL": "postgres://u@h/db",
            "REGISTRY_DATA_DIR": "/srv/registry",
            "REGISTRY_MAX_BODY_BYTES": "2048",
            "REGISTRY_DB_POOL_SIZE": "10",
            "REGISTRY_STATEMENT_TIMEOUT_MS": "500",
            "REGISTRY_LOG_LEVEL": "debug",
        }
    )
    assert settings == Settings(
        database_url="postgresql+psycopg2://u@h/db",
        data_dir=Path("/srv/registry"),
        max_body_bytes=2048,
        pool_size=10,
        statement_timeout_ms=500,
        log_level="DEBUG",
    )


@pytest.mark.parametrize(
    "name", ["REGISTRY_MAX_BODY_BYTES", "REGISTRY_DB_POOL_SIZE", "REGISTRY_STATEMENT_TIMEOUT_MS"]
)
def test_empty_integer_variable_falls_back_to_default(name):
    assert Settings.from_env({name: ""}) == Settings.from_env({})


@pytest.mark.parametrize(
    "name", ["REGISTRY_MAX_BODY_BYTES", "REGISTRY_DB_POOL_SIZE", "REGISTRY_STATEMENT_TIMEOUT_MS"]
)
@pytest.mark.parametrize("raw", ["abc", "1.5", "10k", "0x10"])
def test_non_integer_variable_is_a_config_error_naming_it(name, raw):
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: raw})


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("REGISTRY_MAX_BODY_BYTES", "1023"),
        ("REGISTRY_MAX_BODY_BYTES", str(64 * 1024 * 1024 + 1)),
        ("REGISTRY_DB_POOL_SIZE", "0"),
        ("REGISTRY_DB_POOL_SIZE", "201"),
        ("REGISTRY_DB_POOL_SIZE", "-5"),
        ("REGISTRY_STATEMENT_TIMEOUT_MS", "99"),
        ("REGISTRY_STATEMENT_TIMEOUT_MS", "3600001"),
    ],
)
def test_out_of_range_integer_variable_is_a_config_error_naming_it(name, raw):
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: raw})


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("REGISTRY_MAX_BODY_BYTES", "1024"),
        ("REGISTRY_MAX_BODY_BYTES", str(64 * 1024 * 1024)),
        ("REGISTRY_DB_POOL_SIZE", "1"),
        ("REGISTRY_DB_POOL_SIZE", "100"),
        ("REGISTRY_STATEMENT_TIMEOUT_MS", "100"),
        ("REGISTRY_STATEMENT_TIMEOUT_MS", "3600000"),
    ],
)
def test_integer_variable_at_its_bounds_is_accepted(name, raw):
    Settings.from_env({name: raw})


@pytest.mark.parametrize("level", ["VERBOSE", "trace", "CRITICAL", "1"])
def test_unknown_log_level_is_a_config_error_naming_it(level):
    with pytest.raises(ConfigError, match="REGISTRY_LOG_LEVEL"):
        Settings.from_env({"REGISTRY_LOG_LEVEL": level})


def test_bad_database_url_in_env_is_a_config_error_naming_it():
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        Settings.from_env({"DATABASE_URL": "sqlite:///x"})


def test_with_overrides_rejects_unknown_keys():
    with pytest.raises(ConfigError, match="databse_url"):
        Settings().with_overrides({"databse_url": "postgresql://u@h/db"})


def test_with_overrides_replaces_known_fields_and_normalises_the_url():
    base = Settings(pool_size=5)
    updated = base.with_overrides({"pool_size": 9, "database_url": "postgres://u@h/db"})
    assert updated.pool_size == 9
    assert updated.database_url == "postgresql+psycopg2://u@h/db"
    assert base.pool_size == 5


@pytest.mark.parametrize("overrides", [None, {}])
def test_with_no_overrides_returns_the_same_settings(overrides):
    base = Settings()
    assert base.with_overrides(overrides) is base


def test_the_cache_is_sized_in_megabytes():
    assert Settings.from_env({"REGISTRY_CACHE_MB": "8"}).cache_bytes == 8 * 1024 * 1024


def test_the_old_entry_count_setting_fails_fast_naming_its_replacement():
    with pytest.raises(ConfigError, match="REGISTRY_CACHE_MB"):
        Settings.from_env({"REGISTRY_CACHE_ENTRIES": "20000"})


def test_server_settings_have_one_default_each():
    settings = Settings.from_env({})
    assert (settings.bind, settings.workers, settings.worker_class, settings.worker_connections) == (
        "127.0.0.1:8080", 2, "gevent", 10_000)
    assert (settings.threads, settings.max_waiters) == (32, None)  # None: the worker's budget decides
    assert Settings.from_env({"REGISTRY_HOST": "0.0.0.0", "REGISTRY_PORT": "9000"}).bind == "0.0.0.0:9000"
    assert Settings.from_env({"REGISTRY_BIND": "[::]:8080"}).port == 8080


@pytest.mark.parametrize("env", [{"REGISTRY_BIND": "nonsense"}, {"REGISTRY_PRELOAD": "yes"},
                                 {"REGISTRY_WORKERS": "0"}, {"REGISTRY_WORKER_CLASS": "sync"},
                                 {"REGISTRY_WORKER_CONNECTIONS": "8"}, {"REGISTRY_MAX_WAITERS": "-1"}])
def test_nonsense_server_settings_fail_fast(env):
    with pytest.raises(ConfigError, match=next(iter(env))):
        Settings.from_env(env)


def test_the_worker_class_is_chosen_by_name_and_the_previous_one_stays_selectable():
    assert Settings.from_env({"REGISTRY_WORKER_CLASS": "gthread"}).worker_class == "gthread"
    assert Settings.from_env({"REGISTRY_WORKER_CLASS": "GEVENT"}).worker_class == "gevent"


def test_preloading_is_refused_with_the_gevent_worker_and_allowed_with_gthread():
    with pytest.raises(ConfigError, match="REGISTRY_PRELOAD=1 needs REGISTRY_WORKER_CLASS=gthread"):
        Settings.from_env({"REGISTRY_PRELOAD": "1", "REGISTRY_WORKER_CLASS": "gevent"})
    assert Settings.from_env({"REGISTRY_PRELOAD": "1", "REGISTRY_WORKER_CLASS": "gthread"}).preload is True


def test_an_explicit_waiter_limit_is_kept_and_zero_turns_long_polls_off():
    assert Settings.from_env({"REGISTRY_MAX_WAITERS": "500"}).max_waiters == 500
    assert Settings.from_env({"REGISTRY_MAX_WAITERS": "0"}).max_waiters == 0


def test_local_sources_are_refused_unless_the_operator_allows_them():
    assert Settings.from_env({}).allow_local_sources is False
    assert Settings.from_env({"REGISTRY_ALLOW_LOCAL_SOURCES": "0"}).allow_local_sources is False
    assert Settings.from_env({"REGISTRY_ALLOW_LOCAL_SOURCES": "1"}).allow_local_sources is True


@pytest.mark.parametrize("raw", ["yes", "true", "on", "2", " 1"])
def test_nonsense_local_sources_setting_fails_fast(raw):
    with pytest.raises(ConfigError, match="REGISTRY_ALLOW_LOCAL_SOURCES must be 0 or 1"):
        Settings.from_env({"REGISTRY_ALLOW_LOCAL_SOURCES": raw})


def test_a_transaction_pooler_needs_a_direct_listen_url():
    with pytest.raises(ConfigError, match="REGISTRY_LISTEN_DATABASE_URL"):
        Settings.from_env({"DATABASE_URL": "postgresql://u@pooler:6432/db", "REGISTRY_DB_TRANSACTION_POOLER": "1"})
    settings = Settings.from_env({"DATABASE_URL": "postgresql://u@pooler:6432/db",
                                  "REGISTRY_LISTEN_DATABASE_URL": "postgres://u@primary:5432/db",
                                  "REGISTRY_DB_TRANSACTION_POOLER": "1"})
    assert settings.transaction_pooler
    assert settings.listen_database_url == "postgresql+psycopg2://u@primary:5432/db"


def test_no_startup_options_are_sent_through_a_transaction_pooler():
    from registry import _connect_args

    assert "statement_timeout" in _connect_args(Settings())["options"]
    assert "options" not in _connect_args(Settings(transaction_pooler=True))


@pytest.mark.parametrize("name, value", [("REGISTRY_WATCH_HEARTBEAT_SECONDS", "0"),
                                         ("REGISTRY_WATCH_MAX_SELECTORS", "1001"),
                                         ("REGISTRY_WATCH_HEARTBEAT_SECONDS", "x")])
def test_watch_settings_out_of_range_are_config_errors_naming_them(name, value):
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})


@pytest.mark.parametrize("raw, expected", [
    (None, ("Production",)), ("", ("Production",)), ("none", ()), ("NONE", ()),
    ("production", ("Production",)), ("Production, staging,Production", ("Production", "Staging")),
])
def test_warm_stages(raw, expected):
    env = {} if raw is None else {"REGISTRY_WARM_STAGES": raw}
    assert Settings.from_env(env).warm_stages == expected


@pytest.mark.parametrize("raw", ["Prod", "Production,", "Production;Staging"])
def test_unknown_warm_stage_is_a_config_error_naming_it(raw):
    with pytest.raises(ConfigError, match="REGISTRY_WARM_STAGES"):
        Settings.from_env({"REGISTRY_WARM_STAGES": raw})


@pytest.mark.parametrize("raw, expected", [
    (None, ("*",)),
    ("*", ("*",)),
    ("none", ()),
    ("NONE", ()),
    ("champion", ("champion",)),
    ("champion, shadow,champion", ("champion", "shadow")),
])
def test_warm_aliases(raw, expected):
    env = {} if raw is None else {"REGISTRY_WARM_ALIASES": raw}
    assert Settings.from_env(env).warm_aliases == expected


@pytest.mark.parametrize("raw", ["champion,", "a b", "champion;shadow", "*,champion"])
def test_a_bad_warm_alias_is_a_config_error_naming_the_setting(raw):
    with pytest.raises(ConfigError, match="REGISTRY_WARM_ALIASES"):
        Settings.from_env({"REGISTRY_WARM_ALIASES": raw})
