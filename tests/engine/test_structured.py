"""Structured output's grammars: what a JSON string may hold."""

from __future__ import annotations

import json

import pytest

from mullama.engine.api import CompletionRequest, Done, SamplingOptions, TextDelta
from mullama.engine.structured import json_grammar, schema_to_grammar


def char_rule(grammar: str) -> str:
    (rule,) = [line for line in grammar.splitlines() if line.startswith("char ::= ")]
    return rule


@pytest.mark.parametrize(
    "grammar",
    [
        json_grammar(),
        schema_to_grammar({"type": "object", "properties": {"a": {"type": "string"}}}),
        schema_to_grammar({"type": "array", "items": {"type": "string", "maxLength": 4}}),
    ],
)
def test_json_strings_exclude_raw_control_characters(grammar):
    # JSON allows no unescaped U+0000-U+001F in a string; they come escaped (\n, \u0001…)
    assert char_rule(grammar).startswith(r'char ::= [^"\\\x7F\x00-\x1F] | "\\" (')


@pytest.mark.slow
async def test_format_json_never_puts_a_raw_newline_in_a_string(engine):
    """The prompt LiteLLM's ``ollama/`` route sends made the model write a newline inside a
    JSON string (``{ ":{" :":<tex>$10$</tex>\\n…``), which no JSON parser takes."""
    text, done = "", None
    request = CompletionRequest(
        "gemma", "### User:\nhi\n\n", SamplingOptions(max_tokens=30), raw=False, format="json"
    )
    async for event in engine.complete(request):
        if isinstance(event, TextDelta):
            text += event.text
        elif isinstance(event, Done):
            done = event
    assert text.startswith("{") and not any(c < " " for c in text), repr(text)
    if done is not None and done.finish_reason == "stop":
        json.loads(text)
