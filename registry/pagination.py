"""Opaque cursor tokens for keyset pagination.

A token is base64url(JSON) of the sort key of the last row served plus a fingerprint of the query it
belongs to, so a token replayed against a different query or ordering is refused instead of skipping rows.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Generic, Sequence, TypeVar

from .errors import InvalidArgument

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


@dataclass(frozen=True)
class Page(Generic[T]):
    items: Sequence[T]
    next_page_token: str | None


def page_size(raw: int | None, default: int = DEFAULT_PAGE_SIZE, maximum: int = MAX_PAGE_SIZE) -> int:
    if raw is None:
        return default
    if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= maximum:
        raise InvalidArgument(
            f"max_results must be an integer between 1 and {maximum}, got {raw!r}.", {"field": "max_results"}
        )
    return raw


def fingerprint(query: dict[str, Any]) -> str:
    raw = json.dumps(query, sort_keys=True, default=str).encode()
    return hashlib.sha256(raw).hexdigest()[:16]


def encode(key: list[Any], query_fingerprint: str) -> str:
    raw = json.dumps({"k": key, "q": query_fingerprint}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _key_part(part: Any) -> bool:
    """Keys we issue hold only strings and bigint ids; anything else in a (forged) token would reach SQL."""
    if isinstance(part, str):
        # PostgreSQL text holds neither NUL nor a lone surrogate ("\ud800", which JSON can spell).
        return "\x00" not in part and _is_utf8(part)
    return type(part) is int and -(2**63) <= part < 2**63


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def decode(token: str | None, query_fingerprint: str) -> list[Any] | None:
    if token is None or token == "":
        return None
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        key, fp = data["k"], data["q"]
        if not isinstance(key, list) or not all(_key_part(part) for part in key):
            raise ValueError("key")
    # RecursionError: a deeply nested JSON token must be a 400, not a 500.
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError, RecursionError):
        raise InvalidArgument("Invalid page_token.", {"field": "page_token"}) from None
    if fp != query_fingerprint:
        raise InvalidArgument(
            "page_token belongs to a different query (filters or ordering changed).", {"field": "page_token"}
        )
    return key


def decode_id(token: str | None, query_fingerprint: str) -> int | None:
    """The row id after which a page keyed by id resumes (the common single-key case of ``decode``)."""
    key = decode(token, query_fingerprint)
    if key is None:
        return None
    if len(key) != 1 or not isinstance(key[0], int):
        raise InvalidArgument("Invalid page_token.", {"field": "page_token"})
    return key[0]


def next_id_token(rows: Sequence[Any], limit: int, query_fingerprint: str) -> str | None:
    """The token of the next page, given ``limit + 1`` rows fetched (a token only if there were more)."""
    return encode([rows[limit - 1].id], query_fingerprint) if len(rows) > limit else None
