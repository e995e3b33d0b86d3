"""RemoteEngine: the Engine API over the daemon's nng socket.

Every call opens its own Req0 context, so one RemoteEngine can run many calls at
once (a TUI streaming a chat while it refreshes `ps`). A call waits as long as
the daemon works on it, but pings the daemon on another context whenever the
reply is slow: if the daemon died or was replaced, the call raises
:class:`Unavailable` instead of hanging. A call after the connection dropped dials
afresh, so a client fails fast while no daemon runs and recovers once one is back.

It sends the API key, when it has one, with every request, and it talks only to a daemon of
its own user: an ``ipc://`` socket file another user owns, or a connection whose peer process
is another user's (a fake daemon), is refused before anything is sent (:class:`UntrustedSocket`).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import functools
import inspect
import os
from collections.abc import AsyncIterable, AsyncIterator, Callable
from typing import Any

import msgspec
import pynng

from mullama.engine.api import (
    OPERATIONS,
    Engine,
    EngineError,
    Liveness,
    Operation,
    Unavailable,
    error_from_wire,
)
from mullama.safefiles import foreign_owner, my_uid

from .codec import decode_result, decode_value, encode_args
from .protocol import (
    BLOB_CHUNK_BYTES,
    ERROR,
    PROTOCOL_VERSION,
    IpcUnauthorized,
    StreamBatch,
    VersionMismatch,
    decode,
    encode,
    is_unauthorized,
    mismatch_message,
)

SLOW_REPLY_SECONDS = 10.0  # after this, check the daemon is still alive
KEY_HELP = (
    "set MULLAMA_API_KEY (or api_key / api_key_file in settings.toml) to the key the daemon "
    "was started with"
)


class UntrustedSocket(EngineError):
    """The IPC address is served by (or its socket file belongs to) another user."""

    code, status = "untrusted_socket", 403


def _peer_uid(pipe: pynng.Pipe) -> int | None:
    """The uid of the process at the other end of an ``ipc://`` pipe (None: not known)."""
    value = pynng.ffi.new("uint64_t *")
    if pynng.lib.nng_pipe_get_uint64(pipe.pipe, b"ipc:peer-uid", value) != 0:
        return None
    return int(value[0])


def _unauthorized(address: str, sent_key: bool) -> IpcUnauthorized:
    what = "refused the API key this client sent" if sent_key else "requires an API key"
    return IpcUnauthorized(f"the Mullama daemon at {address} {what}: {KEY_HELP}", address=address)


def _remote_method(op: Operation, function: Callable[..., Any]) -> Callable[..., Any]:
    """The RemoteEngine method of ``op``: its arguments as the request, its reply decoded."""
    signature = inspect.signature(function)

    def request(self: RemoteEngine, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        values = {p.name: bound.arguments[p.name] for p in op.params}
        return encode_args(values)

    if op.stream:

        async def stream(self: RemoteEngine, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
            async for event in self._stream(op, request(self, args, kwargs)):
                yield event

        method: Callable[..., Any] = stream
    else:

        async def unary(self: RemoteEngine, *args: Any, **kwargs: Any) -> Any:
            return decode_result(op, await self._call(op.kind, request(self, args, kwargs)))

        method = unary
    functools.update_wrapper(method, function)
    method.__qualname__ = f"RemoteEngine.{function.__name__}"
    method.__isabstractmethod__ = False  # type: ignore[attr-defined]
    return method


def _derive_operations(cls: type[Engine]) -> type[Engine]:
    """Give ``cls`` a method for every declared operation it does not define itself."""
    for op in OPERATIONS.values():
        if op.method not in cls.__dict__:
            setattr(cls, op.method, _remote_method(op, getattr(Engine, op.method)))
    abc.update_abstractmethods(cls)
    return cls


@_derive_operations
class RemoteEngine(Engine):
    """The Engine API over nng; the methods of the declared operations are derived from them."""

    def __init__(self, address: str, *, ping_timeout: float = 5.0, api_key: str = ""):
        self.address = address
        self.ping_timeout = ping_timeout
        self._api_key = api_key
        self._refused: list[int] = []  # uids of peers whose connection was refused
        self._sock: pynng.Req0 | None = None
        self._lost = asyncio.Event()  # set when the connection of self._sock dropped
        self._instance: str | None = None  # which daemon process answered first
        self._next_id = 0

    # ------------------------------------------------------------ transport

    def _socket(self) -> pynng.Req0:
        if self._sock is None:
            self._check_socket_file()
            sock = pynng.Req0(
                resend_time=-1, recv_max_size=0, reconnect_time_min=50, reconnect_time_max=1000
            )
            lost = asyncio.Event()
            loop = asyncio.get_running_loop()
            refused = self._refused = []

            def pipe_added(pipe: pynng.Pipe) -> None:  # on an nng thread, before any use
                uid = _peer_uid(pipe)
                if uid is not None and my_uid() is not None and uid != my_uid():
                    refused.append(uid)
                    pipe.close()  # nothing, the API key least of all, is sent to it

            def pipe_removed(_pipe: pynng.Pipe) -> None:  # on an nng thread
                with contextlib.suppress(RuntimeError):  # the loop may be closed already
                    loop.call_soon_threadsafe(lost.set)

            sock.add_pre_pipe_connect_cb(pipe_added)
            sock.add_post_pipe_remove_cb(pipe_removed)
            try:
                sock.dial(self.address, block=True)
            except pynng.NNGException as exc:
                sock.close()
                raise Unavailable(
                    f"no Mullama daemon answers at {self.address} ({exc})", address=self.address
                ) from None
            self._sock, self._lost = sock, lost
        self._check_peer()
        return self._sock

    def _check_socket_file(self) -> None:
        if not self.address.startswith("ipc://"):
            return
        path = self.address[len("ipc://") :]
        try:
            owner = foreign_owner(os.lstat(path))
        except OSError:
            return  # no file: the dial says nothing answers
        if owner is not None:
            raise UntrustedSocket(
                f"the IPC socket {path} belongs to another user (uid {owner}), so it is not your "
                "daemon: set MULLAMA_SOCKET to a socket of your own (the default lives in your "
                "runtime directory)",
                address=self.address,
            )

    def _check_peer(self) -> None:
        if self._refused:
            uid = self._refused[0]
            self._drop_socket()
            raise UntrustedSocket(
                f"the process listening at {self.address} runs as another user (uid {uid}), "
                "so it is not your daemon; nothing was sent to it",
                address=self.address,
            )

    def _drop_socket(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
            self._instance = None

    async def _exchange(
        self,
        kind: str,
        data: dict[str, Any] | None,
        *,
        liveness: bool = True,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """Send one request and return the reply envelope."""
        if self._sock is not None and self._lost.is_set():
            self._drop_socket()  # the daemon went away since the last call: dial afresh
        sock = self._socket()
        self._next_id += 1
        msg_id = self._next_id
        ctx = sock.new_context()

        async def roundtrip() -> bytes:
            await ctx.asend(encode(kind, data, msg_id, self._api_key))
            raw: bytes = await ctx.arecv()
            return raw

        try:
            recv = asyncio.ensure_future(roundtrip())
            try:
                while True:
                    step = timeout if timeout is not None else SLOW_REPLY_SECONDS
                    done, _ = await asyncio.wait({recv}, timeout=step)
                    if done:
                        break
                    if timeout is not None or not liveness or not await self._still_there():
                        raise Unavailable(
                            f"the Mullama daemon at {self.address} stopped answering ({kind})",
                            address=self.address,
                        )
            finally:
                if not recv.done():
                    recv.cancel()
                    with contextlib.suppress(BaseException):
                        await recv
            raw = recv.result()
        except pynng.NNGException as exc:
            self._drop_socket()
            raise Unavailable(
                f"lost the Mullama daemon at {self.address} ({exc})", address=self.address
            ) from None
        except Unavailable:
            self._drop_socket()
            raise
        finally:
            with contextlib.suppress(pynng.NNGException):
                ctx.close()
        try:
            reply = decode(raw)
        except Exception as exc:
            raise Unavailable(f"unreadable reply from {self.address}: {exc}") from None
        if reply.get("id") != msg_id:
            raise Unavailable(f"reply from {self.address} does not match the request")
        return reply

    async def _still_there(self) -> bool:
        try:
            info = await self.ping(timeout=self.ping_timeout)
        except Unavailable:
            return False
        return info.instance == self._instance or self._instance is None

    def _error(self, error: dict[str, Any]) -> EngineError:
        if is_unauthorized(error):
            return _unauthorized(self.address, bool(self._api_key))
        return error_from_wire(error)

    async def _call(self, kind: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
        reply = await self._exchange(kind, data)
        if reply["type"] == ERROR:
            error = reply["data"]
            if error.get("code") == VersionMismatch.code:
                raise VersionMismatch(
                    error.get("message", "protocol version mismatch"),
                    **(error.get("details") or {}),
                )
            raise self._error(error)
        if reply.get("v") != PROTOCOL_VERSION:
            raise VersionMismatch(mismatch_message(PROTOCOL_VERSION, reply.get("v")))
        result: dict[str, Any] = reply["data"]
        return result

    async def _stream(self, op: Operation, data: dict[str, Any]) -> AsyncIterator[Any]:
        stream_id = decode_value((await self._call(op.kind, data)).get("stream"), str, op.kind)
        after, finished = 0, False
        try:
            while True:
                reply = await self._call("StreamNext", {"stream": stream_id, "after": after})
                batch = decode_value(reply, StreamBatch, "StreamNext reply")
                after = batch.offset
                for wire in batch.events:
                    after += 1
                    yield decode_value(wire, op.result, f"{op.kind} event")
                if batch.end:
                    finished = True
                    if batch.error:
                        raise self._error(batch.error)
                    return
        finally:
            if not finished and self._sock is not None:
                with contextlib.suppress(Exception):
                    await self._exchange("Cancel", {"stream": stream_id}, timeout=self.ping_timeout)

    # ------------------------------------------------------------ the daemon

    async def ping(self, timeout: float | None = None, check_version: bool = True) -> Liveness:
        """Who answers: version, protocol, pid, instance, started (epoch seconds)."""
        reply = await self._exchange(
            "Ping", None, liveness=False, timeout=timeout or self.ping_timeout
        )
        data = reply["data"]
        if reply["type"] == ERROR:
            raise self._error(data)
        if check_version and data.get("protocol") != PROTOCOL_VERSION:
            raise VersionMismatch(
                mismatch_message(PROTOCOL_VERSION, data.get("protocol"), data.get("version", "")),
                daemon_protocol=data.get("protocol"),
                daemon_version=data.get("version"),
            )
        try:
            info: Liveness = msgspec.convert(data, type=Liveness)
        except msgspec.ValidationError as exc:
            raise Unavailable(f"unreadable Ping reply from {self.address}: {exc}") from None
        if self._instance is None:
            self._instance = info.instance
        return info

    async def shutdown(self) -> dict[str, Any]:
        """Ask the daemon to exit; answered whatever protocol version it speaks."""
        reply = await self._exchange("Shutdown", None, liveness=False, timeout=self.ping_timeout)
        data: dict[str, Any] = reply["data"]
        if reply["type"] == ERROR:
            raise self._error(data)
        return data

    async def add_blob(self, digest: str, chunks: AsyncIterable[bytes]) -> str:
        upload = (await self._call("BlobUpload", {"digest": digest}))["upload"]
        committed = False
        try:
            pending = bytearray()
            async for chunk in chunks:
                pending += chunk
                while len(pending) >= BLOB_CHUNK_BYTES:
                    await self._send_chunk(upload, bytes(pending[:BLOB_CHUNK_BYTES]))
                    del pending[:BLOB_CHUNK_BYTES]
            if pending:
                await self._send_chunk(upload, bytes(pending))
            committed = True
            result = await self._call("BlobCommit", {"upload": upload})
            return str(decode_value(result.get("digest"), str, "BlobCommit reply"))
        finally:
            if not committed and self._sock is not None:
                with contextlib.suppress(Exception):
                    await self._exchange("Cancel", {"stream": upload}, timeout=self.ping_timeout)

    async def _send_chunk(self, upload: str, data: bytes) -> None:
        await self._call("BlobChunk", {"upload": upload, "data": msgspec.to_builtins(data)})

    @property
    def mode(self) -> str:
        return "remote"

    async def close(self) -> None:
        self._drop_socket()
