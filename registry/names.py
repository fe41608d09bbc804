"""Pure validation of the identifiers and free-text fields users send (MLflow's rules where it has them)."""
from __future__ import annotations

import re

from .errors import InvalidArgument

MAX_MODEL_NAME = 256
MAX_ALIAS = 255
MAX_TAG_KEY = 250
# MLflow allows 100,000 characters in tag values, and its prompt registry stores templates in a tag.
MAX_TAG_VALUE = 100_000
MAX_DESCRIPTION = 65535
MAX_SOURCE = 4096
MAX_RUN_ID = 256
MAX_RUN_LINK = 4096

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# \Z, not $: "$" also matches before a trailing newline, which would let "name\n" through.
_ALIAS = re.compile(r"^[\w\-]+\Z")
_VERSION_ALIAS = re.compile(r"^v\d+$", re.IGNORECASE)
_TAG_KEY = re.compile(r"^[\w.\-/ :]+\Z")


def model_name(name: object, field: str = "name") -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidArgument(f"Missing value for required parameter '{field}'.", {"field": field})
    if len(name) > MAX_MODEL_NAME:
        raise InvalidArgument(
            f"Model name is {len(name)} characters long; at most {MAX_MODEL_NAME} are allowed.", {"field": field}
        )
    if "/" in name or ":" in name or _CONTROL.search(name):
        raise InvalidArgument(
            f"Invalid model name {name!r}. Names cannot contain '/', ':' or control characters.", {"field": field}
        )
    if name != name.strip():
        raise InvalidArgument(f"Invalid model name {name!r}: leading or trailing whitespace.", {"field": field})
    if name in (".", ".."):
        # Dot segments: HTTP clients and proxies remove them from URL paths (RFC 3986 §5.2.4), so a model
        # with such a name could be created but never addressed by /api/v1/models/{name} again.
        raise InvalidArgument(f"Invalid model name {name!r}: '.' and '..' cannot be used in URL paths.",
                              {"field": field})
    return name


def alias_name(alias: object, *, for_write: bool) -> str:
    """Aliases follow MLflow: alphanumerics, '_' and '-'; ``latest`` and ``v<N>`` are reserved for writes."""
    if not isinstance(alias, str) or not alias:
        raise InvalidArgument("Missing value for required parameter 'alias'.", {"field": "alias"})
    if len(alias) > MAX_ALIAS:
        raise InvalidArgument(f"Alias is longer than {MAX_ALIAS} characters.", {"field": "alias"})
    if not _ALIAS.match(alias):
        raise InvalidArgument(
            f"Invalid alias name: {alias!r}. Names may only contain alphanumerics, underscores (_), and dashes (-).",
            {"field": "alias"},
        )
    if for_write and alias.lower() == "latest":
        raise InvalidArgument("'latest' alias name (case insensitive) is reserved.", {"field": "alias"})
    if for_write and _VERSION_ALIAS.match(alias):
        raise InvalidArgument(f"Version alias name {alias!r} is reserved.", {"field": "alias"})
    return alias


def is_latest_alias(alias: str) -> bool:
    return alias.lower() == "latest"


def tag_key(key: object) -> str:
    if not isinstance(key, str) or not key:
        raise InvalidArgument("Missing value for required parameter 'key'.", {"field": "key"})
    if len(key) > MAX_TAG_KEY:
        raise InvalidArgument(f"Tag key is longer than {MAX_TAG_KEY} characters.", {"field": "key"})
    if not _TAG_KEY.match(key) or ".." in key:
        raise InvalidArgument(
            f"Invalid tag key {key!r}: use letters, digits and '_', '-', '.', ' ', ':', '/'.", {"field": "key"}
        )
    return key


def tag_value(value: object) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidArgument("Tag value must be a string.", {"field": "value"})
    if len(value) > MAX_TAG_VALUE:
        raise InvalidArgument(f"Tag value is longer than {MAX_TAG_VALUE} characters.", {"field": "value"})
    if "\x00" in value:
        raise InvalidArgument("Tag value contains a NUL character.", {"field": "value"})
    return value


def tags(mapping: dict[str, object] | None) -> dict[str, str]:
    return {tag_key(k): tag_value(v) for k, v in (mapping or {}).items()}


def bounded_text(value: object, field: str, maximum: int, *, required: bool = False) -> str | None:
    if value is None or value == "":
        if required:
            raise InvalidArgument(f"Missing value for required parameter '{field}'.", {"field": field})
        return None if value is None else ""
    if not isinstance(value, str):
        raise InvalidArgument(f"'{field}' must be a string.", {"field": field})
    if len(value) > maximum:
        raise InvalidArgument(f"'{field}' is longer than {maximum} characters.", {"field": field})
    if "\x00" in value:
        raise InvalidArgument(f"'{field}' contains a NUL character.", {"field": field})
    return value


# An integer as MLflow's int() reads one (sign, surrounding spaces), in ASCII digits only: str.isdigit() and
# int() also take characters such as '²' or '٣'. At most 18 digits: any such number fits PostgreSQL's bigint.
_INTEGER = re.compile(r"\s*[+-]?[0-9]{1,18}\s*\Z")


def version_number(raw: object, field: str = "version") -> int:
    """A version number, sent as a string by MLflow. Any integer is a version number: one that no version
    can have (0, negative, past the column's range) is simply not found, as in MLflow (404, not 400)."""
    if isinstance(raw, int) and not isinstance(raw, bool) and abs(raw) < 10**18:
        return raw
    if isinstance(raw, str) and _INTEGER.match(raw):
        return int(raw)
    raise InvalidArgument(f"Parameter '{field}' must be an integer, got {raw!r}.", {"field": field})


def filter_text(value: str | None, field: str) -> str | None:
    """Free text used only to filter. PostgreSQL text cannot hold NUL: refuse it instead of failing in the driver."""
    if value is not None and "\x00" in value:
        raise InvalidArgument(f"'{field}' contains a NUL character.", {"field": field})
    return value


def tag_filters(raw: "list[str] | tuple[str, ...]") -> tuple[tuple[str, str], ...]:
    """Parse ``key=value`` tag filters (the value may be empty), as sent in ``?tag=`` query parameters."""
    pairs = []
    for item in raw:
        key, sep, value = item.partition("=")
        if not sep:
            raise InvalidArgument(f"Tag filter {item!r} must look like key=value.", {"field": "tag"})
        pairs.append((tag_key(key), filter_text(value, "tag")))
    return tuple(pairs)
