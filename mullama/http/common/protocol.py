"""What the dialects' models share: the request base (:class:`Body`), JSON bodies, errors that
name the offending parameter (``messages[2].content``) as an :class:`InvalidRequest`, which
``http.errors`` answers in the dialect of the route, and the base of whole replies
(:class:`Reply`).

Each dialect declares its replies in its ``protocol.py``: whole replies (sent once per request)
as :class:`Reply` models; streamed chunks, sent thousands a second, as TypedDicts — plain
dicts at run time, checked by mypy where the writers build them (a pydantic model would cost
3–10 µs more per chunk than the dict and its JSON encoding together). The shapes both kinds
share (usage, logprobs, content blocks…) are TypedDicts, which pydantic validates too."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    ValidationError,
    model_validator,
)
from pydantic_core import ErrorDetails, InitErrorDetails, PydanticCustomError

from ...engine.api import InvalidRequest
from ...engine.options import SAMPLING, problem

B = TypeVar("B", bound="Body")

_DATA_URL = re.compile(r"^data:[^,;]*(;[^,;]*)*;base64,", re.IGNORECASE)


def is_image_url(url: str) -> bool:
    """A base64 data URL, or an http(s) URL (fetched only where the server allows it)."""
    return bool(_DATA_URL.match(url)) or url[:8].lower().startswith(("http://", "https://"))


def image_payload(url: str) -> str:
    """What ``Message.images`` holds for an image URL: a data URL's base64, or the URL."""
    match = _DATA_URL.match(url)
    return url[match.end() :] if match else url


class Body(BaseModel):
    """A JSON object of a request. Unknown fields are kept (clients send many); ``null`` is the
    same as absent; types are strict (``"5"`` is no integer, ``true`` no number)."""

    model_config = ConfigDict(extra="allow", strict=True, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _null_is_absent(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if v is not None}
        return data


class Reply(BaseModel):
    """A whole JSON reply, fields declared in wire order. A field left unset is left out of
    the JSON, one set to ``None`` is sent as ``null`` (clients tell the two apart), so
    optional fields default to ``None`` and writers set only what they send. Numbers are
    not converted (an ``int`` stays an ``int``): fields typed ``float`` get floats."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    def wire(self) -> dict[str, Any]:
        """The JSON-ready dict, as sent."""
        return self.model_dump(exclude_unset=True)


def sampling_rule(field: str) -> AfterValidator:
    """The engine's rule for a SamplingOptions field (its range), as a field validator."""
    rule = SAMPLING[field]

    def check(value: Any) -> Any:
        if value is not None and (message := problem(rule, value)) is not None:
            raise ValueError(message)
        return value

    return AfterValidator(check)


def _string_list(value: Any) -> Any:
    """A string or a list of strings, as a list."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise ValueError("must be a string or an array of strings")


StringList = Annotated[list[str] | None, BeforeValidator(_string_list)]


def fail(loc: tuple[str | int, ...], message: str, value: Any = None) -> ValidationError:
    """An error at ``loc`` (relative to the model raising it) saying ``<param> <message>``."""
    kind = PydanticCustomError("mullama", message) if message else "missing"
    return ValidationError.from_exception_data(
        "request", [InitErrorDetails(type=kind, loc=loc, input=value)]
    )


def required(*loc: str | int) -> ValidationError:
    return fail(loc, "")


def said(loc: tuple[str | int, ...], message: str, value: Any = None) -> ValidationError:
    """An error at ``loc`` whose ``message`` is the whole text (it names the field itself)."""
    return ValidationError.from_exception_data(
        "request",
        [InitErrorDetails(type=PydanticCustomError("mullama_said", message), loc=loc, input=value)],
    )


# Bodies above this are decoded and validated in a worker thread (a 16 MiB body took the loop
# for long enough to notice); smaller ones are quicker to parse than to hand over.
OFF_LOOP_BYTES = 2**20


def load_json(raw: bytes) -> dict:
    if not raw:
        raise InvalidRequest("the request body is empty; send a JSON object")
    try:
        # decoded strictly first: json.loads(bytes) lets UTF-8-encoded surrogates through
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise InvalidRequest(
            f"the request body is not valid JSON: not valid UTF-8 ({exc})"
        ) from None
    except ValueError as exc:
        raise InvalidRequest(f"the request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise InvalidRequest("the request body nests arrays or objects too deeply") from None
    if not isinstance(data, dict):
        raise InvalidRequest("the request body must be a JSON object")
    if _SURROGATE_ESCAPE.search(raw) and _has_lone_surrogate(data):
        raise InvalidRequest(
            "the request body is not valid Unicode: a string holds a lone UTF-16 surrogate "
            "escape (\\ud800-\\udfff without its pair)"
        )
    return data


# json.loads turns "\ud800" into a lone surrogate, which no UTF-8 encoder (the tokenizer's
# included) accepts; pairs ("\ud83d\ude00") decode to one character and are fine
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _has_lone_surrogate(data: Any) -> bool:
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def parse(model: type[B], data: dict | bytes) -> B:
    """``data`` (a dict or a raw JSON body) as ``model``; else the InvalidRequest naming why."""
    if isinstance(data, bytes):
        data = load_json(data)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise invalid(exc) from None
    except RecursionError:
        raise InvalidRequest("the request body nests arrays or objects too deeply") from None


async def parse_body(model: type[B], raw: bytes) -> B:
    """:func:`parse` of a request body, in a worker thread when the body is large."""
    if len(raw) > OFF_LOOP_BYTES:
        return await asyncio.to_thread(parse, model, raw)
    return parse(model, raw)


# ---------------------------------------------------------------- ValidationError -> words

_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "a boolean",
    "list_type": "an array",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
}
_UNION_TAGS = {"str", "int", "float", "bool", "list", "dict", "none", "any"}


def _is_tag(part: str | int) -> bool:
    """Union members in a location (``str``, ``list[Part]``, ``ImageURL``) are no field names."""
    return isinstance(part, str) and (
        part in _UNION_TAGS or not part[:1].islower() or any(c in part for c in "[-(")
    )


def param_of(loc: tuple[str | int, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif not _is_tag(part):
            text += f".{part}" if text else part
    return text


def describe(value: Any) -> str:
    if value is None:
        return "null"
    for kind, name in ((bool, "boolean"), (str, "string"), (int, "integer"), (float, "number")):
        if isinstance(value, kind):
            return name
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else type(value).__name__


def invalid(exc: ValidationError) -> InvalidRequest:
    """The first field's most specific error, in words, with the parameter it names."""
    errors = exc.errors()
    first_field = errors[0]["loc"][:1]
    group = [e for e in errors if e["loc"][:1] == first_field]
    deepest = max(len([p for p in e["loc"] if not _is_tag(p)]) for e in group)
    group = [e for e in group if len([p for p in e["loc"] if not _is_tag(p)]) == deepest]
    param = param_of(group[0]["loc"])
    return InvalidRequest(_message(param, group), param=param or None)


def _message(param: str, group: list[ErrorDetails]) -> str:
    for error in group:
        if error["type"] == "mullama_said":
            return error["msg"]
        if error["type"] in ("mullama", "value_error"):
            text = error["msg"].removeprefix("Value error, ")
            return f"{param} {text}" if param else text
    if any(e["type"] == "missing" for e in group):
        return f"{param} is required"
    expected = [_EXPECTED[e["type"]] for e in group if e["type"] in _EXPECTED]
    if expected:
        words = " or ".join(dict.fromkeys(expected))
        return f"{param} must be {words}, got {describe(group[0]['input'])}"
    error = group[0]
    ctx = error.get("ctx") or {}
    bounds = {
        "literal_error": f"one of {ctx.get('expected')}",
        "greater_than_equal": f"at least {ctx.get('ge')}",
        "less_than_equal": f"at most {ctx.get('le')}",
        "too_short": "not empty",
    }
    if error["type"] in bounds:
        return f"{param} must be {bounds[error['type']]}, got {error['input']!r}"
    return f"{param}: {error['msg']}"
