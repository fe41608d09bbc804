"""Pure validation of names, aliases, tags, free text, version numbers and tag filters."""
from __future__ import annotations

import pytest

from registry import names
from registry.errors import InvalidArgument


# --- model names ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "name",
    ["m", "fraud-detector", "my model v2", "модель", "模型", "modèle_ü", "😀 emoji", "x" * 256],
    ids=["single", "dashes", "spaces", "cyrillic", "cjk", "accents", "emoji", "256-chars"],
)
def test_model_name_accepts_valid_names(name):
    assert names.model_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "", "   ", "\t", "x" * 257, "a/b", "a:b", "/", ":",
        "a\x00b", "a\nb", "a\tb", "a\x1fb", "a\x7fb", "bad\n",
        " leading", "trailing ", "\u3000wide-space",
        ".", "..",
        None, 3, ["m"],
    ],
    ids=[
        "empty", "whitespace-only", "tab-only", "257-chars", "slash", "colon", "only-slash", "only-colon",
        "nul", "newline", "tab", "unit-separator", "del", "trailing-newline",
        "leading-space", "trailing-space", "ideographic-space",
        "dot", "dot-dot",
        "none", "int", "list",
    ],
)
def test_model_name_rejects_invalid_names(name):
    with pytest.raises(InvalidArgument) as info:
        names.model_name(name)
    assert info.value.details == {"field": "name"}


def test_model_name_error_names_the_given_field():
    with pytest.raises(InvalidArgument) as info:
        names.model_name("", field="new_name")
    assert info.value.details == {"field": "new_name"}
    assert "new_name" in info.value.message


# --- aliases -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("alias", ["v", "va1", "v1a", "champion", "a-b_c", "Champion2", "x" * 255])
def test_alias_name_accepts_valid_aliases_for_write(alias):
    assert names.alias_name(alias, for_write=True) == alias


@pytest.mark.parametrize("alias", ["latest", "LATEST", "Latest", "lAtEsT"])
def test_alias_name_rejects_latest_in_any_case_for_write(alias):
    with pytest.raises(InvalidArgument, match="reserved"):
        names.alias_name(alias, for_write=True)


@pytest.mark.parametrize("alias", ["v1", "V12", "v0", "v007"])
def test_alias_name_rejects_version_aliases_for_write(alias):
    with pytest.raises(InvalidArgument, match="reserved"):
        names.alias_name(alias, for_write=True)


@pytest.mark.parametrize("alias", ["latest", "LATEST", "v1", "V12"])
def test_alias_name_accepts_reserved_aliases_for_read(alias):
    assert names.alias_name(alias, for_write=False) == alias


@pytest.mark.parametrize("for_write", [True, False])
@pytest.mark.parametrize(
    "alias",
    ["a b", "", "x" * 256, "a.b", "a/b", "a:b", "champion\n", "a\x00", None, 7],
    ids=["space", "empty", "256-chars", "dot", "slash", "colon", "trailing-newline", "nul", "none", "int"],
)
def test_alias_name_rejects_malformed_aliases(alias, for_write):
    with pytest.raises(InvalidArgument) as info:
        names.alias_name(alias, for_write=for_write)
    assert info.value.details == {"field": "alias"}


@pytest.mark.parametrize(("alias", "expected"), [("latest", True), ("LaTeSt", True), ("latest1", False)])
def test_is_latest_alias_is_case_insensitive(alias, expected):
    assert names.is_latest_alias(alias) is expected


# --- tags ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("key", ["k", "a.b", "team/owner", "a b", "ns:key", "a-b_c", "x" * 250])
def test_tag_key_accepts_valid_keys(key):
    assert names.tag_key(key) == key


@pytest.mark.parametrize(
    "key",
    ["", "x" * 251, "..", "a..b", "a\x00b", "k\n", "a\tb", "a=b", "a,b", None, 1, b"k"],
    ids=["empty", "251-chars", "dotdot", "inner-dotdot", "nul", "trailing-newline", "tab", "equals", "comma",
         "none", "int", "bytes"],
)
def test_tag_key_rejects_invalid_keys(key):
    with pytest.raises(InvalidArgument) as info:
        names.tag_key(key)
    assert info.value.details == {"field": "key"}


@pytest.mark.parametrize("value", ["", "v", "multi\nline", "..", "x" * 100_000])
def test_tag_value_accepts_strings_up_to_the_limit(value):
    assert names.tag_value(value) == value


def test_tag_value_none_becomes_empty_string():
    assert names.tag_value(None) == ""


@pytest.mark.parametrize("value", ["x" * 100_001, "a\x00b", 3, 1.5, True, ["v"], {"v": 1}])
def test_tag_value_rejects_long_nul_and_non_string_values(value):
    with pytest.raises(InvalidArgument) as info:
        names.tag_value(value)
    assert info.value.details == {"field": "value"}


def test_tags_validates_every_pair():
    assert names.tags({"a": "1", "b": None}) == {"a": "1", "b": ""}
    assert names.tags(None) == {}
    with pytest.raises(InvalidArgument):
        names.tags({"ok": "1", "..": "2"})


# --- bounded text --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["", "hello", "x" * 10, "ab\ncd ü"])
def test_bounded_text_accepts_text_within_the_limit(value):
    assert names.bounded_text(value, "description", 10) == value


def test_bounded_text_keeps_none_as_none_when_optional():
    assert names.bounded_text(None, "description", 10) is None


@pytest.mark.parametrize("value", [None, ""])
def test_bounded_text_rejects_missing_required_value(value):
    with pytest.raises(InvalidArgument, match="source") as info:
        names.bounded_text(value, "source", 10, required=True)
    assert info.value.details == {"field": "source"}


@pytest.mark.parametrize("value", ["x" * 11, "a\x00b", 5, ["x"]], ids=["too-long", "nul", "int", "list"])
def test_bounded_text_rejects_long_nul_and_non_string_values(value):
    with pytest.raises(InvalidArgument) as info:
        names.bounded_text(value, "description", 10)
    assert info.value.details == {"field": "description"}


# --- version numbers -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("raw", "expected"),
    [(1, 1), (3, 3), ("3", 3), (" 3 ", 3), ("007", 7), (2**31 - 1, 2**31 - 1), (str(2**31 - 1), 2**31 - 1),
     (0, 0), ("0", 0), (-1, -1), ("-1", -1), ("+3", 3), (2**31, 2**31), (str(2**31), 2**31)],
)
def test_version_number_reads_any_integer_as_mlflow_does(raw, expected):
    """MLflow reads a version with int(): one no version can have (0, negative, too large) is then not found
    (404), not malformed (400)."""
    assert names.version_number(raw) == expected


@pytest.mark.parametrize(
    "raw",
    ["abc", True, False, "1.5", 1.5, 3.0, "", " ", None, "²", "٣", "1_000", "- 1", "9" * 19],
    ids=["letters", "true", "false", "decimal-str", "float", "integral-float", "empty", "blank", "none",
         "superscript-two", "arabic-indic-three", "underscore", "sign-apart", "past-int64"],
)
def test_version_number_rejects_non_integer_values(raw):
    with pytest.raises(InvalidArgument) as info:
        names.version_number(raw)
    assert info.value.details == {"field": "version"}


# --- tag filters ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (["k=v"], (("k", "v"),)),
        (["k="], (("k", ""),)),
        (["k=a=b"], (("k", "a=b"),)),
        (["a=1", "b=2"], (("a", "1"), ("b", "2"))),
        ([], ()),
    ],
)
def test_tag_filters_parse_key_value_pairs(raw, expected):
    assert names.tag_filters(raw) == expected


@pytest.mark.parametrize("raw", [["k"], [""], ["=v"], ["a=1", "b"], ["..=v"], ["k=a\x00b"]],
                         ids=["no-equals", "empty", "empty-key", "second-bad", "invalid-key", "nul-in-value"])
def test_tag_filters_reject_malformed_filters(raw):
    with pytest.raises(InvalidArgument):
        names.tag_filters(raw)
