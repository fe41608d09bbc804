"""Cursor tokens: they round-trip, refuse garbage and refuse replay against another query."""
from __future__ import annotations

import base64
import json

import pytest

from registry import pagination
from registry.errors import InvalidArgument

QUERY = {"filter": "name ILIKE 'a%'", "order_by": ["name ASC"]}
FP = pagination.fingerprint(QUERY)


def _raw_token(payload: bytes) -> str:
    return base64.urlsafe_b64encode(payload).decode().rstrip("=")


@pytest.mark.parametrize(
    "key",
    [["fraud", 17], [], ["ünïcödé", -1], ["2024-01-01T00:00:00+00:00", 2**63 - 1]],
    ids=["name-id", "empty", "unicode", "timestamp-max-bigint"],
)
def test_token_round_trips_the_sort_key(key):
    assert pagination.decode(pagination.encode(key, FP), FP) == key


# Keys are only strings and bigint ids; any other part can only come from a forged token.
@pytest.mark.parametrize(
    "part", [None, 1.5, True, [1], {"a": 1}, "a\x00b", "\ud800", "a\udfffb", 2**63, -(2**63) - 1],
    ids=["null", "float", "bool", "list", "object", "nul-string", "lone-surrogate", "inner-lone-surrogate",
         "bigint-overflow", "bigint-underflow"],
)
def test_token_with_a_non_key_part_is_refused(part):
    with pytest.raises(InvalidArgument) as info:
        pagination.decode(pagination.encode(["fraud", part], FP), FP)
    assert info.value.details == {"field": "page_token"}


def test_token_is_url_safe_without_padding():
    token = pagination.encode(["a?b&c/d+e", 1], FP)
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


@pytest.mark.parametrize("token", [None, ""])
def test_missing_token_means_first_page(token):
    assert pagination.decode(token, FP) is None


def test_fingerprint_ignores_dict_key_order():
    assert pagination.fingerprint({"a": 1, "b": 2}) == pagination.fingerprint({"b": 2, "a": 1})


def test_token_from_a_different_query_is_refused():
    other = pagination.fingerprint({**QUERY, "order_by": ["name DESC"]})
    assert other != FP
    token = pagination.encode(["fraud", 17], other)
    with pytest.raises(InvalidArgument, match="different query") as info:
        pagination.decode(token, FP)
    assert info.value.details == {"field": "page_token"}


GOOD = pagination.encode(["fraud", 17], FP)

GARBAGE = {
    "not-base64": "!!!!",
    "random-text": "hello world",
    "truncated": GOOD[: len(GOOD) // 2],
    "extra-chars": GOOD + "AAAA",
    "bad-padding": "A",
    "non-ascii": "ééé",
    "json-list": _raw_token(b"[1,2]"),
    "json-string": _raw_token(b'"k"'),
    "json-null": _raw_token(b"null"),
    "json-number": _raw_token(b"42"),
    "missing-key": _raw_token(json.dumps({"q": FP}).encode()),
    "missing-fingerprint": _raw_token(json.dumps({"k": []}).encode()),
    "key-not-a-list": _raw_token(json.dumps({"k": "fraud", "q": FP}).encode()),
    "key-is-object": _raw_token(json.dumps({"k": {"a": 1}, "q": FP}).encode()),
    "invalid-utf8": _raw_token(b"\xff\xfe\xfd"),
    "deeply-nested": _raw_token(b"[" * 100_000),
}


@pytest.mark.parametrize("token", list(GARBAGE.values()), ids=list(GARBAGE))
def test_garbage_token_is_invalid_argument(token):
    with pytest.raises(InvalidArgument) as info:
        pagination.decode(token, FP)
    assert info.value.details == {"field": "page_token"}


def test_tampered_fingerprint_is_refused():
    payload = json.loads(base64.urlsafe_b64decode(GOOD + "=" * (-len(GOOD) % 4)))
    payload["q"] = "0" * 16
    with pytest.raises(InvalidArgument):
        pagination.decode(_raw_token(json.dumps(payload).encode()), FP)


def test_page_size_none_is_the_default():
    assert pagination.page_size(None) == pagination.DEFAULT_PAGE_SIZE
    assert pagination.page_size(None, default=7) == 7


@pytest.mark.parametrize("raw", [1, 50, pagination.MAX_PAGE_SIZE])
def test_page_size_accepts_values_within_bounds(raw):
    assert pagination.page_size(raw) == raw


@pytest.mark.parametrize("raw", [0, -1, 1001, True, False, "5", 5.0, [5]],
                         ids=["zero", "negative", "1001", "true", "false", "string", "float", "list"])
def test_page_size_rejects_out_of_range_or_non_integer_values(raw):
    with pytest.raises(InvalidArgument, match="1000") as info:
        pagination.page_size(raw)
    assert info.value.details == {"field": "max_results"}


def test_page_size_respects_a_custom_maximum():
    assert pagination.page_size(10, maximum=10) == 10
    with pytest.raises(InvalidArgument):
        pagination.page_size(11, maximum=10)
