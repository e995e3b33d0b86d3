"""`mullama run --format`: json, a JSON schema file or an inline schema constrain the reply."""

from __future__ import annotations

import json

import pytest

from mullama.cli.formats import parse_format
from mullama.cli.output import CliError

from .conftest import mullama

PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
    "additionalProperties": False,
}


def test_parse_format(tmp_path):
    assert parse_format("json") == "json"
    assert parse_format(' {"type": "object"} ') == {"type": "object"}
    schema = tmp_path / "person.json"
    schema.write_text(json.dumps(PERSON))
    assert parse_format(str(schema)) == PERSON


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("nosuch.json", "--format: 'nosuch.json' is not json and there is no such schema file"),
        ("{bad", "--format: the inline schema is not valid JSON: Expecting property name"),
        ("JSONN", "--format: 'JSONN' is not json and there is no such schema file"),
    ],
)
def test_parse_format_errors(value, message):
    with pytest.raises(CliError) as caught:
        parse_format(value)
    assert caught.value.message.startswith(message) and caught.value.code == 2
    assert "a JSON schema file" in caught.value.hint


def test_a_schema_must_be_an_object(tmp_path):
    listed = tmp_path / "list.json"
    listed.write_text("[1, 2]")
    with pytest.raises(CliError, match="a JSON schema is an object, .*list.json is an array"):
        parse_format(str(listed))


def test_a_bad_format_fails_before_any_daemon_starts(cold_env):
    result = mullama(cold_env, "run", "gemma", "hi", "--format", "nosuch.json")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("Error: --format: 'nosuch.json' is not json")


@pytest.mark.slow
@pytest.mark.e2e
def test_format_json_makes_the_reply_json(daemon_env):
    prompt = "Describe a cat."
    free = mullama(daemon_env, "run", "gemma", prompt, "-n", "40")
    with pytest.raises(json.JSONDecodeError):  # the model does not answer JSON by itself
        json.loads(free.stdout)
    result = mullama(daemon_env, "run", "gemma", prompt, "--format", "json", "-n", "300")
    assert result.returncode == 0, result.stderr
    assert isinstance(json.loads(result.stdout), dict)


@pytest.mark.slow
@pytest.mark.e2e
def test_a_schema_file_or_inline_schema_constrains_the_keys(daemon_env, tmp_path):
    schema = tmp_path / "person.json"
    schema.write_text(json.dumps(PERSON))
    prompt = "Describe a cat."
    result = mullama(daemon_env, "run", "gemma", prompt, "--format", str(schema), "-n", "300")
    assert result.returncode == 0, result.stderr
    person = json.loads(result.stdout)
    assert set(person) == {"name", "age"}
    assert isinstance(person["name"], str) and isinstance(person["age"], int)
    colour = {"type": "object", "properties": {"colour": {"type": "string"}}}
    colour["required"], colour["additionalProperties"] = ["colour"], False
    inline = mullama(
        daemon_env, "run", "gemma", "Name a colour.", "--format", json.dumps(colour), "-n", "300"
    )
    assert inline.returncode == 0, inline.stderr
    assert list(json.loads(inline.stdout)) == ["colour"]


@pytest.mark.slow
@pytest.mark.e2e
def test_a_schema_the_engine_cannot_enforce_is_an_error(daemon_env):
    unsupported = json.dumps({"type": "object", "patternProperties": {"^a": {"type": "string"}}})
    result = mullama(daemon_env, "run", "gemma", "hi", "--format", unsupported)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith(
        "Error: the JSON schema uses features that cannot be enforced: patternProperties at #"
    )
