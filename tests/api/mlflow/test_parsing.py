"""Pure parsing, no database: MLflow's filter / order_by syntax into conditions, and request parameters."""
from __future__ import annotations

import pytest
from flask import Flask

from registry.api.mlflow.search import (
    IS_PROMPT_TAG,
    MAX_FILTER_CHARS,
    model_conditions,
    model_order,
    version_conditions,
    version_order,
)
from registry.api.mlflow.wire import Params, params
from registry.errors import InvalidArgument
from registry.db.filters import Condition, SortKey

HIDE_PROMPTS = Condition.lacks_tag(IS_PROMPT_TAG, "true")


@pytest.mark.parametrize("text, expected", [
    ("name = 'a'", [Condition("name", "=", "a")]),
    ("name = 'it''s'", [Condition("name", "=", "it's")]),
    ('name = "say \\"hi\\""', [Condition("name", "=", 'say "hi"')]),
    ("name LIKE 'a\\_%'", [Condition("name", "LIKE", "a\\_%")]),
    ("name ilike 'A%'", [Condition("name", "ILIKE", "A%")]),
    ("name in ('a','b')", [Condition("name", "IN", ("a", "b"))]),
    ("name not in ('a')", [Condition("name", "NOT IN", ("a",))]),
    ("tags.`my key` = 'v'", [Condition("tag", "=", "v", key="my key")]),
    ('tags."my key" = \'v\'', [Condition("tag", "=", "v", key="my key")]),
    ("tag.a.b.c != 'v'", [Condition("tag", "!=", "v", key="a.b.c")]),
    ("  name='a'  AND  tags.t='x'  ", [Condition("name", "=", "a"), Condition("tag", "=", "x", key="t")]),
    ("", []),
    (None, []),
], ids=lambda v: str(v))
def test_model_filter_parses_into_conditions_that_hide_prompts(text, expected):
    assert model_conditions(text) == tuple(expected) + (HIDE_PROMPTS,)


@pytest.mark.parametrize("text", [
    "tags.`mlflow.prompt.is_prompt` = 'true'",
    "tags.`mlflow.prompt.is_prompt` = 'TRUE'",
    "tags.`mlflow.prompt.is_prompt` != 'false'",
])
def test_a_filter_selecting_prompts_keeps_its_prompt_condition(text):
    conditions = model_conditions(text)
    assert HIDE_PROMPTS not in conditions
    assert [c.key for c in conditions] == [IS_PROMPT_TAG]


def test_other_prompt_conditions_are_dropped_and_prompts_hidden():
    assert model_conditions("tags.`mlflow.prompt.is_prompt` != 'true' AND name = 'a'") == (
        Condition("name", "=", "a"), HIDE_PROMPTS)


@pytest.mark.parametrize("text, expected", [
    ("version_number = 3", Condition("version", "=", 3)),
    ("version_number >= '3'", Condition("version", ">=", 3)),
    ("run_id IN ('a', 'b')", Condition("run_id", "IN", ("a", "b"))),
    ("source_path = 's3://x'", Condition("source", "=", "s3://x")),
    ("attribute.name = 'm'", Condition("name", "=", "m")),
])
def test_version_filter_maps_mlflow_attributes(text, expected):
    assert version_conditions(text) == (expected, HIDE_PROMPTS)


@pytest.mark.parametrize("text", [
    "name = 'a' OR name = 'b'", "name = 'a' AND (name = 'b')", "name = 'a' AND AND name = 'b'",
    "name == 'a'", "name <> 'a'", "foo.name = 'a'", "name = `a`", "name = 'a\x00'",
    "version_number = 99999999999", "tags. = 'a'",
], ids=lambda v: repr(v))
def test_malformed_filters_are_invalid_arguments(text):
    with pytest.raises(InvalidArgument):
        version_conditions(text)


@pytest.mark.parametrize("parse", [model_conditions, version_conditions], ids=["models", "versions"])
def test_a_filter_longer_than_the_cap_is_refused_before_parsing(parse):
    at_cap = "name = '" + "x" * (MAX_FILTER_CHARS - 9) + "'"
    assert len(at_cap) == MAX_FILTER_CHARS
    parse(at_cap)
    with pytest.raises(InvalidArgument, match=str(MAX_FILTER_CHARS)) as info:
        # Not even a valid filter: the length alone is refused, before the tokenizer reads it.
        parse("(" * (MAX_FILTER_CHARS + 1))
    assert info.value.details == {"field": "filter"}


@pytest.mark.parametrize("clauses, expected", [
    ([], (SortKey("name"),)),
    (["name DESC"], (SortKey("name", True),)),
    (["timestamp desc"], (SortKey("updated_at", True), SortKey("name"))),
    (["attribute.last_updated_timestamp"], (SortKey("updated_at"), SortKey("name"))),
    (["`creation_timestamp` ASC"], (SortKey("created_at"), SortKey("name"))),
])
def test_model_order_appends_the_name_tie_breaker(clauses, expected):
    assert model_order(clauses) == expected


@pytest.mark.parametrize("clauses, expected", [
    ([], (SortKey("updated_at", True), SortKey("name"), SortKey("version", True))),
    (["version_number"], (SortKey("version"), SortKey("name"))),
    (["name DESC"], (SortKey("name", True), SortKey("version", True))),
])
def test_version_order_defaults_and_tie_breakers(clauses, expected):
    assert version_order(clauses) == expected


# --- request parameters -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def flask_app():
    return Flask(__name__)


def test_get_parameters_come_from_the_query_string_with_repeated_keys(flask_app):
    with flask_app.test_request_context("/?name=m&stages=A&stages=B&max_results=5&flag=TRUE"):
        p = params()
        assert p.required("name") == "m"
        assert p.strings("stages") == ["A", "B"]
        assert p.integer("max_results") == 5
        assert p.boolean("flag") is True


def test_query_string_boolean_other_than_true_or_false_is_invalid(flask_app):
    with flask_app.test_request_context("/?flag=yes"), pytest.raises(InvalidArgument):
        params().boolean("flag")


def test_json_lists_must_hold_strings(flask_app):
    with flask_app.test_request_context("/", method="POST", json={"stages": ["A", 1]}), pytest.raises(InvalidArgument):
        params().strings("stages")


@pytest.mark.parametrize("tags", [[{"value": "v"}], ["k=v"], {"k": "v"}, [{"key": "k", "value": 3}]],
                         ids=["no-key", "not-an-object", "not-a-list", "non-string-value"])
def test_malformed_tags_are_invalid(flask_app, tags):
    with flask_app.test_request_context("/", method="POST", json={"tags": tags}), pytest.raises(InvalidArgument):
        params().tags()


def test_a_wrong_type_too_deeply_nested_to_echo_is_still_invalid(flask_app):
    """The message echoes the value as JSON: a value nested past the recursion limit cannot be written back."""
    value: list = []
    for _ in range(5000):
        value = [value]
    with flask_app.test_request_context("/"), pytest.raises(InvalidArgument, match="parameter 'name'"):
        Params({"name": [value]}, from_query=False).string("name")


def test_a_long_wrong_value_is_echoed_shortened(flask_app):
    with flask_app.test_request_context("/"), pytest.raises(InvalidArgument) as info:
        Params({"name": [["x" * 100_000]]}, from_query=False).string("name")
    assert len(info.value.message) < 1000


def test_delete_reads_the_query_string_when_there_is_no_body(flask_app):
    with flask_app.test_request_context("/?name=m&version=2", method="DELETE"):
        p = params()
        assert (p.required("name"), p.required("version")) == ("m", "2")
