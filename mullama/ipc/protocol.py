"""The IPC wire protocol: JSON envelopes over nng Req/Rep.

Every message, request or reply, is one JSON object::

    {"type": "<Kind>", "data": {...}, "id": <any>, "v": PROTOCOL_VERSION}

A reply carries the request's ``id`` and is of type ``Result`` (``data`` is the
answer) or ``Error`` (``data`` is :func:`mullama.engine.api.error_to_wire`).

Streams (ChatCompletion, Completion, Pull) are pulled, not pushed: the request
replies ``{"stream": "<id>"}`` at once, then the client asks
``StreamNext {"stream": id, "after": n}`` where ``n`` counts the events it has
already received. The daemon answers with the events from ``n`` on (waiting up
to :data:`POLL_SECONDS` for at least one), ``"end": true`` with the last batch,
and the stream's error if it failed. Because every batch is a reply to a request
on the client's own context, events arrive complete and in order; because the
cursor acknowledges what arrived, a batch is never lost or doubled.
"""

from __future__ import annotations

import json
from typing import Any

from mullama.engine.api import EngineError, InvalidRequest

PROTOCOL_VERSION = 1

# the guide's request kinds, then what the CLI and TUI need
REQUEST_KINDS = frozenset(
    {
        "Ping",
        "Status",
        "ListModels",
        "LoadModel",
        "UnloadModel",
        "SetDefaultModel",
        "ChatCompletion",
        "Completion",
        "Embeddings",
        "Tokenize",
        "Cancel",
        "Shutdown",
        "Pull",
        "Create",
        "Copy",
        "Delete",
        "Show",
        "Ps",
        "CountTokens",
        "Metrics",
        "StreamNext",
    }
)
STREAM_KINDS = frozenset({"ChatCompletion", "Completion", "Pull"})
# answered whatever version the client speaks, so an old daemon can be found and stopped
VERSIONLESS_KINDS = frozenset({"Ping", "Shutdown"})

RESULT, ERROR = "Result", "Error"
POLL_SECONDS = 2.0  # longest a StreamNext waits for the next event
MAX_BATCH = 1000  # events per StreamNext reply


class VersionMismatch(EngineError):
    """Client and daemon speak different protocol versions."""

    code, status = "version_mismatch", 505


def mismatch_message(client: Any, daemon: Any, daemon_version: str = "") -> str:
    who = f"the daemon (mullama {daemon_version})" if daemon_version else "the daemon"
    return (
        f"IPC protocol mismatch: this mullama speaks protocol v{client}, {who} speaks v{daemon}; "
        "restart the daemon with `mullama daemon restart`"
    )


def encode(kind: str, data: dict | None = None, msg_id: Any = None) -> bytes:
    envelope = {"type": kind, "data": data or {}, "id": msg_id, "v": PROTOCOL_VERSION}
    return json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode()


def decode(raw: bytes) -> dict:
    """A parsed envelope; :class:`InvalidRequest` when it is not one."""
    try:
        envelope = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidRequest(f"malformed IPC message: not UTF-8 JSON ({exc})") from None
    if not isinstance(envelope, dict):
        raise InvalidRequest("malformed IPC message: expected a JSON object envelope")
    kind = envelope.get("type")
    if not isinstance(kind, str) or not kind:
        raise InvalidRequest('malformed IPC message: missing "type"', param="type")
    data = envelope.setdefault("data", {})
    if data is None:
        envelope["data"] = {}
    elif not isinstance(data, dict):
        raise InvalidRequest('malformed IPC message: "data" must be an object', param="data")
    return envelope


def field(data: dict, name: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
    """``data[name]`` checked against ``kind``; InvalidRequest names what is wrong."""
    if name not in data or data[name] is None:
        if default is ...:
            raise InvalidRequest(f"missing field {name!r}", param=name)
        return default
    value = data[name]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        names = "/".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise InvalidRequest(
            f"field {name!r} must be {names}, got {type(value).__name__}", param=name
        )
    return value
