"""The reply format of `run --format` and the session's `/set format`: "json" (any JSON object),
a JSON schema file, or an inline schema. The engine constrains decoding to it (ChatRequest.format).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .output import CliError

_JSON_TYPES = {list: "an array", str: "a string", int: "a number", float: "a number"}
HINT = 'Give json, a JSON schema file, or an inline schema such as \'{"type": "object"}\'.'


def parse_format(value: str, what: str = "--format") -> str | dict[str, Any]:
    """ "json" or the schema ``value`` gives; a CliError (usage, code 2) otherwise."""
    text = value.strip()
    if text == "json":
        return "json"
    if text.startswith("{"):
        where = "the inline schema"
        raw = text
    else:
        path = Path(text).expanduser()
        where = str(path)
        try:
            raw = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise CliError(
                f"{what}: {text!r} is not json and there is no such schema file", HINT, code=2
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise CliError(f"{what}: cannot read {path}: {exc}", HINT, code=2) from None
    try:
        schema = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise CliError(f"{what}: {where} is not valid JSON: {exc}", HINT, code=2) from None
    if not isinstance(schema, dict):
        raise CliError(
            f"{what}: a JSON schema is an object, {where} is "
            + _JSON_TYPES.get(type(schema), json.dumps(schema)),
            HINT,
            code=2,
        )
    return schema
