"""MLflow's registry search syntax: the ``filter`` grammar and ``order_by`` clauses, parsed into the
service's condition model (``db/filters.py``). Behaviour follows ``mlflow/utils/search_utils.py``
(SearchModelUtils / SearchModelVersionUtils) and the SQL store:

* comparisons joined by ``AND`` only (``OR``, ``NOT`` and parentheses are refused);
* identifiers ``name`` / ``attribute.name``, ``tags.<key>`` / ``tag.<key>``, keys in backticks or quotes
  when they hold special characters (``tags.`my key```), dotted keys as is (``tags.mlflow.prompt.is_prompt``);
* strings in single or double quotes, lists ``('a', 'b')`` for ``IN`` / ``NOT IN``;
* registered models: ``name`` with ``= != LIKE ILIKE IN NOT IN``; tags with ``= != LIKE ILIKE``;
* model versions: ``name`` and ``run_id`` with ``= != LIKE ILIKE IN NOT IN``, ``source_path`` with
  ``= != LIKE ILIKE``, ``version_number`` with ``= != < <= > >=`` and an integer (quoted or not); tags.

Where MLflow fails with a 500 (``IS NULL``, a duplicate ``order_by`` key) this answers a 400, and so it does
for a filter longer than ``MAX_FILTER_CHARS`` or over the caps of ``db/filters.py``, which MLflow would run.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ...errors import InvalidArgument
from ...db.filters import Condition, SortKey

IS_PROMPT_TAG = "mlflow.prompt.is_prompt"
# Refused before the tokenizer reads it. A filter in a query string is already cut at about 4 KB by the
# request-line limit (gunicorn's default, ours and MLflow's server's); twice that leaves room for a filter
# sent in a GET's JSON body (long run-id lists) while a 1 MiB body never reaches the parser. The number of
# conditions is capped where every dialect's conditions pass (db/filters.py).
MAX_FILTER_CHARS = 8192

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>'(?:''|\\.|[^'\\])*'|"(?:""|\\.|[^"\\])*")
  | (?P<backtick>`[^`]*`)
  | (?P<number>[+-]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?)
  | (?P<op>!=|<>|<=|>=|==|=|<|>)
  | (?P<lparen>\()
  | (?P<rparen>\))
  | (?P<comma>,)
  | (?P<dot>\.)
  | (?P<word>[^\s'"`().,=!<>]+)
    """,
    re.VERBOSE,
)
_KEYWORDS = {"AND", "OR", "NOT", "IN", "LIKE", "ILIKE", "IS", "NULL"}


def _bad(message: str, field: str = "filter") -> InvalidArgument:
    return InvalidArgument(message, {"field": field})


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str

    @property
    def keyword(self) -> str | None:
        return self.text.upper() if self.kind == "word" and self.text.upper() in _KEYWORDS else None


def _tokenize(text: str) -> list[_Token]:
    tokens, pos = [], 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise _bad(f"Error on parsing filter '{text}': unterminated quote or unexpected character "
                       f"at position {pos}.")
        if match.lastgroup != "ws":
            tokens.append(_Token(match.lastgroup, match.group()))
        pos = match.end()
    return tokens


def _unquote(token: _Token) -> str:
    quote, inner = token.text[0], token.text[1:-1]
    return inner.replace(quote * 2, quote).replace("\\" + quote, quote)


@dataclass(frozen=True)
class _Comparison:
    entity: str  # "attribute" or "tag"
    key: str
    op: str
    value: str | int | float | tuple[str, ...]
    quoted: bool  # the value was a quoted string (or a list of them)


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens = _tokenize(text)
        self.pos = 0

    def peek(self) -> _Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> _Token | None:
        token = self.peek()
        self.pos += token is not None
        return token

    def invalid_clause(self) -> InvalidArgument:
        rest = " ".join(t.text for t in self.tokens[self.pos:]) or self.text
        return _bad(f"Invalid clause(s) in filter string: {rest}. Only comparisons joined by AND are supported.")

    def parse(self) -> list[_Comparison]:
        comparisons = [self.comparison()]
        while self.peek() is not None:
            if self.take().keyword != "AND":
                self.pos -= 1
                raise self.invalid_clause()
            comparisons.append(self.comparison())
        return comparisons

    def identifier(self) -> tuple[str, str]:
        parts: list[tuple[_Token, str]] = []
        while True:
            token = self.peek()
            if token is None or token.kind not in ("word", "backtick", "string") or token.keyword:
                break
            self.take()
            parts.append((token, token.text if token.kind == "word" else _unquote(token)))
            if self.peek() is None or self.peek().kind != "dot":
                break
            self.take()
        if not parts:
            raise self.invalid_clause()
        if len(parts) == 1:
            return "attribute", parts[0][1]
        head_token, head = parts[0]
        if head_token.kind != "word" or head not in ("attribute", "tag", "tags"):
            raise _bad(f"Invalid entity type '{head}'. Valid entity types are ('attribute', 'tag', 'tags').")
        key = ".".join(text for _, text in parts[1:])
        return ("tag" if head in ("tag", "tags") else "attribute"), key

    def operator(self) -> str:
        token = self.take()
        if token is None:
            raise _bad(f"Invalid comparison clause in filter '{self.text}': a comparator and a value are missing.")
        if token.kind == "op":
            return token.text
        keyword = token.keyword
        if keyword in ("LIKE", "ILIKE", "IN"):
            return keyword
        if keyword == "NOT" and self.peek() is not None and self.peek().keyword == "IN":
            self.take()
            return "NOT IN"
        if keyword == "IS":
            raise _bad("IS NULL / IS NOT NULL is not supported in registry searches; "
                       "compare with a quoted string instead.")
        self.pos -= 1
        raise self.invalid_clause()

    def value(self) -> tuple[str | int | float | tuple[str, ...], bool]:
        token = self.take()
        if token is None:
            raise _bad(f"Invalid comparison clause in filter '{self.text}': the value is missing.")
        if token.kind == "string":
            return _unquote(token), True
        if token.kind == "number":
            number = float(token.text) if re.search(r"[.eE]", token.text) else int(token.text)
            return number, False
        if token.kind == "lparen":
            return self.list_value(), True
        raise _bad(f"Parameter value is either not quoted or unidentified quote types used for string value "
                   f"{token.text}. Use either single or double quotes.")

    def list_value(self) -> tuple[str, ...]:
        items: list[str] = []
        while True:
            token = self.take()
            if token is None:
                raise _bad("While parsing a list in the query, expected a non-empty list of string values, "
                           "but got ill-formed list.")
            if token.kind == "rparen" and not items:
                raise _bad("While parsing a list in the query, expected a non-empty list of string values, "
                           "but got empty list.")
            if token.kind != "string":
                raise _bad("While parsing a list in the query, expected string value, punctuation, "
                           f"or whitespace, but got {token.text!r}.")
            items.append(_unquote(token))
            separator = self.take()
            if separator is not None and separator.kind == "rparen":
                return tuple(items)
            if separator is None or separator.kind != "comma":
                raise _bad("While parsing a list in the query, expected a non-empty list of string values, "
                           "but got ill-formed list.")

    def comparison(self) -> _Comparison:
        token = self.peek()
        if token is None or token.keyword or token.kind in ("lparen", "rparen", "op", "comma", "number"):
            raise self.invalid_clause()
        entity, key = self.identifier()
        op = self.operator()
        value, quoted = self.value()
        return _Comparison(entity, key, op, value, quoted)


def _parse(text: str | None) -> list[_Comparison]:
    if text is None or not text.strip():
        return []
    if len(text) > MAX_FILTER_CHARS:
        raise _bad(f"The filter is {len(text)} characters long; at most {MAX_FILTER_CHARS} are allowed.")
    if "\x00" in text:
        raise _bad("The filter contains a NUL character.")
    return _Parser(text).parse()


# --- Entity rules -------------------------------------------------------------------------------------

_STRING_OPS = ("=", "!=", "LIKE", "ILIKE")
_LIST_OPS = ("IN", "NOT IN")
_NUMBER_OPS = ("=", "!=", "<", "<=", ">", ">=")


def _tag_condition(c: _Comparison) -> Condition:
    if c.op not in _STRING_OPS:
        raise _bad(f"Invalid comparator for tag: {c.op}. Use one of {', '.join(_STRING_OPS)}.")
    if not c.quoted or isinstance(c.value, tuple):
        raise _bad(f"Expected a quoted string value for tag (e.g. 'my-value'). Got value {c.value}")
    return Condition("tag", c.op, c.value, key=c.key)


def _string_condition(c: _Comparison, field: str, list_ok: bool) -> Condition:
    allowed = _STRING_OPS + (_LIST_OPS if list_ok else ())
    if c.op not in allowed:
        raise _bad(f"Invalid comparator for attribute {c.key}: {c.op}. Use one of {', '.join(allowed)}.")
    if not c.quoted:
        raise _bad(f"Expected a quoted string value for attribute {c.key}. Got value {c.value}")
    if (c.op in _LIST_OPS) != isinstance(c.value, tuple):
        raise _bad(f"{c.op} needs a parenthesised list of quoted strings." if c.op in _LIST_OPS
                   else f"Comparator {c.op} cannot take a list; use IN or NOT IN.")
    return Condition(field, c.op, c.value)


def _version_number_condition(c: _Comparison) -> Condition:
    if c.op not in _NUMBER_OPS:
        raise _bad(f"Invalid comparator for attribute version_number: {c.op}. Use one of {', '.join(_NUMBER_OPS)}.")
    value = c.value
    if isinstance(value, str) and re.fullmatch(r"[+-]?\d{1,10}", value.strip()):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not -(2**31) <= value < 2**31:
        raise _bad(f"Invalid value for numeric attribute 'version_number': {c.value!r}")
    return Condition("version", c.op, value)


def _prompt_rule(comparisons: list[_Comparison], conditions: list[Condition]) -> list[Condition]:
    """MLflow hides prompts (models tagged ``mlflow.prompt.is_prompt = 'true'``) unless the filter selects
    them (``= 'true'`` or ``!= 'false'``, judged by the first such clause); otherwise every is_prompt clause
    is dropped, since plain models do not carry the tag at all, and prompts are excluded."""
    for c in comparisons:
        if c.entity == "tag" and c.key == IS_PROMPT_TAG:
            value = str(c.value).lower()
            if (c.op == "=" and value == "true") or (c.op == "!=" and value == "false"):
                return conditions
            break
    kept = [c for c in conditions if not (c.field == "tag" and c.key == IS_PROMPT_TAG)]
    return kept + [Condition.lacks_tag(IS_PROMPT_TAG, "true")]


def model_conditions(text: str | None) -> tuple[Condition, ...]:
    comparisons = _parse(text)
    conditions = []
    for c in comparisons:
        if c.entity == "tag":
            conditions.append(_tag_condition(c))
        elif c.key == "name":
            if not c.quoted:
                raise _bad(f"Expected a quoted string value or a list of quoted string values for attributes. "
                           f"Got value {c.value}")
            conditions.append(_string_condition(c, "name", list_ok=True))
        else:
            raise _bad(f"Invalid attribute key '{c.key}' specified. Valid keys are '{{'name'}}'")
    return tuple(_prompt_rule(comparisons, conditions))


_VERSION_ATTRIBUTES = ("name", "version_number", "run_id", "source_path")


def version_conditions(text: str | None) -> tuple[Condition, ...]:
    comparisons = _parse(text)
    conditions = []
    for c in comparisons:
        if c.entity == "tag":
            conditions.append(_tag_condition(c))
        elif c.key == "version_number":
            conditions.append(_version_number_condition(c))
        elif c.key in ("name", "run_id", "source_path"):
            if not c.quoted:
                raise _bad("Only the 'version_number' attribute supports comparison with numeric values.")
            field = "source" if c.key == "source_path" else c.key
            conditions.append(_string_condition(c, field, list_ok=c.key != "source_path"))
        else:
            raise _bad(f"Invalid attribute key '{c.key}' specified. Valid keys are '{set(_VERSION_ATTRIBUTES)}'")
    return tuple(_prompt_rule(comparisons, conditions))


# --- order_by ----------------------------------------------------------------------------------------

MODEL_ORDER_KEYS = {
    "name": "name",
    "timestamp": "updated_at",
    "last_updated_timestamp": "updated_at",
    # MLflow's SQL store refuses creation_timestamp for models although its grammar lists it; allowing it
    # costs nothing.
    "creation_timestamp": "created_at",
}
VERSION_ORDER_KEYS = {
    "name": "name",
    "version_number": "version",
    "creation_timestamp": "created_at",
    "last_updated_timestamp": "updated_at",
}


def _order_clause(clause: object, keys: dict[str, str]) -> SortKey:
    if not isinstance(clause, str) or not clause.strip():
        raise _bad(f"Invalid order_by clause {clause!r}.", "order_by")
    match = re.fullmatch(r"\s*(`[^`]+`|\"[^\"]+\"|[^\s`\"]+)(?:\s+(\w+))?\s*", clause)
    if match is None:
        raise _bad(f"Invalid order_by clause '{clause}'. Could not be parsed.", "order_by")
    key, direction = match.group(1), match.group(2)
    if key[0] in "`\"":
        key = key[1:-1]
    key = key.removeprefix("attribute.").strip("`\"")
    if direction is not None and direction.lower() not in ("asc", "desc"):
        raise _bad(f"Invalid ordering key in order_by clause '{clause}'.", "order_by")
    if key not in keys:
        raise _bad(f"Invalid order by key '{key}' specified. Valid keys are {sorted(keys)}.", "order_by")
    return SortKey(keys[key], descending=direction is not None and direction.lower() == "desc")


def _order(clauses: list[str], keys: dict[str, str]) -> list[SortKey]:
    sort = [_order_clause(c, keys) for c in clauses]
    fields = [s.field for s in sort]
    duplicates = sorted({f for f in fields if fields.count(f) > 1})
    if duplicates:
        raise _bad(f"`order_by` contains duplicate fields: {clauses}", "order_by")
    return sort


def model_order(clauses: list[str]) -> tuple[SortKey, ...]:
    sort = _order(clauses, MODEL_ORDER_KEYS)
    if not any(s.field == "name" for s in sort):
        sort.append(SortKey("name"))
    return tuple(sort)


def version_order(clauses: list[str]) -> tuple[SortKey, ...]:
    if not clauses:
        return (SortKey("updated_at", True), SortKey("name"), SortKey("version", True))
    sort = _order(clauses, VERSION_ORDER_KEYS)
    if not any(s.field == "name" for s in sort):
        sort.append(SortKey("name"))
    if not any(s.field == "version" for s in sort):
        sort.append(SortKey("version", True))
    return tuple(sort)
