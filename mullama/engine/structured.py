"""Structured output: GBNF grammars from "json" or a JSON schema, so output always parses."""

from __future__ import annotations

import json
import re
from typing import Any

from .api import InvalidRequest

SUPPORTED_KEYWORDS = {
    "type",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "prefixItems",
    "minItems",
    "maxItems",
    "enum",
    "const",
    "anyOf",
    "oneOf",
    "allOf",
    "$ref",
    "$defs",
    "definitions",
    "pattern",
    "format",
    "minLength",
    "maxLength",
    "title",
    "description",
    "default",
    "examples",
    "$schema",
    "$id",
    "$comment",
    "nullable",
    "strict",
    "readOnly",
    "writeOnly",
    "deprecated",
}
SUPPORTED_FORMATS = {"date", "time", "date-time", "uuid"}
# not here, because llama.cpp's converter would ignore them: minimum, maximum, exclusive*,
# multipleOf, not, if/then/else, patternProperties, uniqueItems, contains, ...
_SCHEMA_MAPS = ("properties", "$defs", "definitions")
_SCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
# A character in a JSON string. llama-cpp-python's converter writes ``[^"\\]``, which lets
# raw control characters (a newline…) into strings: invalid JSON that every parser refuses
# (seen with LiteLLM's ollama/ prompt). JSON allows none of U+0000-U+001F unescaped; as
# llama.cpp's own converter does, DEL is left out too.
_CHAR_RULE = re.compile(r"^char ::= .*$", re.MULTILINE)
_JSON_CHAR = (
    r'char ::= [^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F] [0-9a-fA-F] '
    r"[0-9a-fA-F] [0-9a-fA-F])"
)


def unsupported_features(schema: object, path: str = "#") -> list[str]:
    """JSON-schema keywords the grammar converter would silently ignore, with where they are."""
    if not isinstance(schema, dict):
        return [] if isinstance(schema, bool) else [f"{path} (not a schema object)"]
    found = [f"{key} at {path}" for key in schema if key not in SUPPORTED_KEYWORDS]
    fmt = schema.get("format")
    if fmt is not None and fmt not in SUPPORTED_FORMATS and schema.get("type") == "string":
        found.append(f'format "{fmt}" at {path}')
    for key in _SCHEMA_MAPS:
        for name, sub in (schema.get(key) or {}).items():
            found += unsupported_features(sub, f"{path}/{key}/{name}")
    for key in _SCHEMA_LISTS:
        for i, sub in enumerate(schema.get(key) or []):
            found += unsupported_features(sub, f"{path}/{key}/{i}")
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            found += unsupported_features(schema[key], f"{path}/{key}")
    return found


def schema_to_grammar(schema: dict[str, Any], param: str = "format") -> str:
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    problems = unsupported_features(schema)
    if problems:
        raise InvalidRequest(
            "the JSON schema uses features that cannot be enforced: " + ", ".join(problems),
            param=param,
        )
    try:
        grammar: str = json_schema_to_gbnf(json.dumps(schema))
    except (ValueError, KeyError, TypeError, AssertionError) as exc:
        raise InvalidRequest(
            f"the JSON schema cannot be turned into a grammar: {exc}", param=param
        ) from None
    return _CHAR_RULE.sub(lambda _: _JSON_CHAR, grammar)


def json_grammar() -> str:
    """Any JSON object (what OpenAI's json_object and Ollama's format "json" promise)."""
    return schema_to_grammar({"type": "object"})


def format_grammar(fmt: object, param: str = "format") -> str | None:
    """The grammar for a request's ``format`` ("json", a schema, or nothing)."""
    if fmt is None or fmt == "":
        return None
    if fmt == "json":
        return json_grammar()
    if isinstance(fmt, dict):
        return schema_to_grammar(fmt, param)
    raise InvalidRequest(f'format must be "json" or a JSON schema object, got {fmt!r}', param=param)
