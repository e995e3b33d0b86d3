"""The IPC wire protocol: JSON envelopes over nng Req/Rep.

Every message, request or reply, is one JSON object::

    {"type": "<Kind>", "data": {...}, "id": <any>, "v": PROTOCOL_VERSION}

A reply carries the request's ``id`` and is of type ``Result`` (``data`` is the
answer) or ``Error`` (``data`` is :func:`mullama.engine.api.error_to_wire`).

A request may carry ``"auth": "<the API key>"``. A daemon with an API key answers every
request without the right one, Ping included, with the Error ``unauthorized`` (details
``{"scope": "ipc"}``): a client without a key still learns that a daemon is there and that it
needs the key. A daemon without a key ignores the field, so the protocol version is unchanged.

Streams (ChatCompletion, Completion, Pull) are pulled, not pushed: the request
replies ``{"stream": "<id>"}`` at once, then the client asks
``StreamNext {"stream": id, "after": n}`` where ``n`` counts the events it has
already received. The daemon answers with the events from ``n`` on (waiting up
to :data:`POLL_SECONDS` for at least one), ``"end": true`` with the last batch,
and the stream's error if it failed. Because every batch is a reply to a request
on the client's own context, events arrive complete and in order; because the
cursor acknowledges what arrived, a batch is never lost or doubled.

The kinds are the Engine API's operations (:data:`mullama.engine.api.OPERATIONS`: one
field per method parameter in ``data``, the result in the reply; see ``codec.py``) plus the
transport's own (:data:`TRANSPORT_KINDS`): StreamNext, Cancel, Shutdown, and a blob upload
(BlobUpload opens one, BlobChunk carries its bytes base64-encoded, BlobCommit stores it).
"""

from __future__ import annotations

from typing import Any

import msgspec

from mullama.engine.api import OPERATIONS, EngineError, InvalidRequest, Unauthorized

PROTOCOL_VERSION = 1


# What the transport itself does (the rest are the Engine API's operations, declared in
# mullama.engine.api): each kind's ``data``, validated with msgspec.
class StreamNextArgs(msgspec.Struct, kw_only=True):
    stream: str
    after: int


class CancelArgs(msgspec.Struct, kw_only=True):
    stream: str  # a stream's or a blob upload's id


class NoArgs(msgspec.Struct):
    pass


class BlobUploadArgs(msgspec.Struct, kw_only=True):
    digest: str


class BlobChunkArgs(msgspec.Struct, kw_only=True):
    upload: str
    data: bytes  # base64 on the wire


class BlobCommitArgs(msgspec.Struct, kw_only=True):
    upload: str


class StreamBatch(msgspec.Struct, kw_only=True):
    """The reply to StreamNext."""

    offset: int
    events: list[dict[str, Any]]
    end: bool
    error: dict[str, Any] | None = None


TRANSPORT_KINDS: dict[str, type[msgspec.Struct]] = {
    "StreamNext": StreamNextArgs,
    "Cancel": CancelArgs,
    "Shutdown": NoArgs,
    # Engine.add_blob: open an upload, send its bytes in chunks, commit (checks the digest)
    "BlobUpload": BlobUploadArgs,
    "BlobChunk": BlobChunkArgs,
    "BlobCommit": BlobCommitArgs,
}
REQUEST_KINDS = frozenset(OPERATIONS) | frozenset(TRANSPORT_KINDS)
# answered whatever version the client speaks, so an old daemon can be found and stopped
VERSIONLESS_KINDS = frozenset({"Ping", "Shutdown"})
BLOB_CHUNK_BYTES = 4 * 1024 * 1024

RESULT, ERROR = "Result", "Error"
POLL_SECONDS = 2.0  # longest a StreamNext waits for the next event
MAX_BATCH = 1000  # events per StreamNext reply


class VersionMismatch(EngineError):
    """Client and daemon speak different protocol versions."""

    code, status = "version_mismatch", 505


class IpcUnauthorized(Unauthorized):
    """The daemon requires its API key on the IPC socket, and the request had not the right one."""

    def __init__(self, message: str, **details: Any):
        super().__init__(message, **{"scope": AUTH_SCOPE, **details})


AUTH_SCOPE = "ipc"


def is_unauthorized(error: dict[str, Any]) -> bool:
    """``error`` (an Error reply's data) is the daemon refusing the client's key."""
    details = error.get("details") or {}
    return error.get("code") == Unauthorized.code and details.get("scope") == AUTH_SCOPE


def mismatch_message(client: Any, daemon: Any, daemon_version: str = "") -> str:
    who = f"the daemon (mullama {daemon_version})" if daemon_version else "the daemon"
    return (
        f"IPC protocol mismatch: this mullama speaks protocol v{client}, {who} speaks v{daemon}; "
        "restart the daemon with `mullama daemon restart`"
    )


def encode(
    kind: str, data: dict[str, Any] | None = None, msg_id: Any = None, auth: str = ""
) -> bytes:
    envelope = {"type": kind, "data": data or {}, "id": msg_id, "v": PROTOCOL_VERSION}
    if auth:
        envelope["auth"] = auth
    return _encoder.encode(envelope)


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()


def decode(raw: bytes) -> dict[str, Any]:
    """A parsed envelope; :class:`InvalidRequest` when it is not one."""
    try:
        envelope = _decoder.decode(raw)
    except msgspec.DecodeError as exc:
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
