"""msgspec encoding and validation of what crosses the IPC socket.

Requests and replies are derived from the Engine API's declared operations
(:data:`mullama.engine.api.OPERATIONS`): a request's ``data`` is validated against a msgspec
Struct built from the method's parameters, a reply's against the method's result type.
Dataclass values are tagged with ``"__type__"`` (their class name) so the events of a
stream, a union of dataclasses, decode to the right class.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from typing import Any

import msgspec

from mullama.engine.api import InvalidRequest, Operation, Param

TAG = "__type__"

_PATH = re.compile(r" - at `\$\.?(.*)`$")
_MISSING = re.compile(r"Object missing required field `([^`]+)`")


def encode_value(value: Any) -> Any:
    """``value`` as JSON-ready builtins; dataclasses (and those in a top-level list) tagged."""
    if isinstance(value, list):
        return [encode_value(v) for v in value]
    data = msgspec.to_builtins(value)
    if dataclasses.is_dataclass(value) and isinstance(data, dict):
        data[TAG] = type(value).__name__
    return data


def decode_value(data: Any, kind: Any, what: str = "value") -> Any:
    """``data`` converted to type ``kind``; a union of dataclasses is chosen by its tag."""
    members = typing.get_args(kind) if typing.get_origin(kind) in (typing.Union, _UnionType) else ()
    if members and all(dataclasses.is_dataclass(m) for m in members):
        name = data.get(TAG) if isinstance(data, dict) else None
        chosen = next((m for m in members if m.__name__ == name), None)
        if chosen is None:
            names = ", ".join(m.__name__ for m in members)
            raise InvalidRequest(f"malformed {what}: {TAG} {name!r} is not one of {names}")
        kind = chosen
    try:
        return msgspec.convert(data, type=kind)
    except msgspec.ValidationError as exc:
        raise invalid(what, exc) from None


_UnionType = type(int | str)


def invalid(what: str, exc: msgspec.ValidationError, prefix: str = "") -> InvalidRequest:
    """An InvalidRequest saying what is wrong, with the offending field as ``param``."""
    message = str(exc)
    path = _PATH.search(message)
    param = path.group(1) if path else None
    missing = _MISSING.match(message)
    if missing:
        param = f"{param}.{missing.group(1)}" if param else missing.group(1)
    if param and prefix:
        param = f"{prefix}.{param}"
    return InvalidRequest(f"malformed {what}: {message}", param=param or prefix or None)


# ---------------------------------------------------------------- request arguments

_ARGS: dict[str, type[msgspec.Struct]] = {}


def args_struct(kind: str, params: tuple[Param, ...]) -> type[msgspec.Struct]:
    """The msgspec Struct a request ``data`` of ``kind`` must match (built once per kind)."""
    struct = _ARGS.get(kind)
    if struct is None:
        fields: list[tuple[str, Any] | tuple[str, Any, Any]] = [
            (p.name, p.type) if p.required else (p.name, p.type, p.default) for p in params
        ]
        struct = msgspec.defstruct(f"{kind}Args", fields, kw_only=True)
        _ARGS[kind] = struct
    return struct


def decode_args(kind: str, params: tuple[Param, ...], data: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments a request's ``data`` carries, validated."""
    try:
        args = msgspec.convert(data, type=args_struct(kind, params))
    except msgspec.ValidationError as exc:
        raise invalid(f"{kind} request", exc) from None
    return {p.name: getattr(args, p.name) for p in params}


def encode_args(args: dict[str, Any]) -> dict[str, Any]:
    """A request's ``data``: one JSON-ready field per argument."""
    return {name: msgspec.to_builtins(value) for name, value in args.items()}


# ---------------------------------------------------------------- results


def encode_result(op: Operation, result: Any) -> dict[str, Any]:
    """The reply ``data`` of a unary operation."""
    if op.key is not None:
        return {op.key: encode_value(result)}
    if result is None:
        return {}
    data = encode_value(result)
    if not isinstance(data, dict):
        raise TypeError(f"{op.kind}: a result without a key must be an object, got {data!r}")
    return data


def decode_result(op: Operation, data: dict[str, Any]) -> Any:
    """The result a reply's ``data`` carries, as the operation's result type."""
    if op.key is not None:
        if op.key not in data:
            raise InvalidRequest(f"malformed {op.kind} reply: no {op.key!r}")
        return decode_value(data[op.key], op.result, f"{op.kind} reply")
    if op.result is type(None):
        return None
    return decode_value(data, op.result, f"{op.kind} reply")
