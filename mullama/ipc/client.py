"""RemoteEngine: the Engine API over the daemon's nng socket.

Every call opens its own Req0 context, so one RemoteEngine can run many calls at
once (a TUI streaming a chat while it refreshes `ps`). A call waits as long as
the daemon works on it, but pings the daemon on another context whenever the
reply is slow: if the daemon died or was replaced, the call raises
:class:`Unavailable` instead of hanging. A call after the connection dropped dials
afresh, so a client fails fast while no daemon runs and recovers once one is back.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pynng

from mullama.engine.api import (
    ChatRequest,
    CompletionRequest,
    EmbedRequest,
    EmbedResult,
    Engine,
    EngineStatus,
    Event,
    LoadedModel,
    ModelDetails,
    ModelInfo,
    PullProgress,
    Unavailable,
    error_from_wire,
    from_wire,
    to_wire,
)

from .protocol import ERROR, PROTOCOL_VERSION, VersionMismatch, decode, encode, mismatch_message

SLOW_REPLY_SECONDS = 10.0  # after this, check the daemon is still alive


class RemoteEngine(Engine):
    def __init__(self, address: str, *, ping_timeout: float = 5.0):
        self.address = address
        self.ping_timeout = ping_timeout
        self._sock: pynng.Req0 | None = None
        self._lost = asyncio.Event()  # set when the connection of self._sock dropped
        self._instance: str | None = None  # which daemon process answered first
        self._next_id = 0

    # ------------------------------------------------------------ transport

    def _socket(self) -> pynng.Req0:
        if self._sock is None:
            sock = pynng.Req0(
                resend_time=-1, recv_max_size=0, reconnect_time_min=50, reconnect_time_max=1000
            )
            lost = asyncio.Event()
            loop = asyncio.get_running_loop()

            def pipe_removed(_pipe: pynng.Pipe) -> None:  # on an nng thread
                with contextlib.suppress(RuntimeError):  # the loop may be closed already
                    loop.call_soon_threadsafe(lost.set)

            sock.add_post_pipe_remove_cb(pipe_removed)
            try:
                sock.dial(self.address, block=True)
            except pynng.NNGException as exc:
                sock.close()
                raise Unavailable(
                    f"no Mullama daemon answers at {self.address} ({exc})", address=self.address
                ) from None
            self._sock, self._lost = sock, lost
        return self._sock

    def _drop_socket(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
            self._instance = None

    async def _exchange(
        self, kind: str, data: dict | None, *, liveness: bool = True, timeout: float | None = None
    ) -> dict:
        """Send one request and return the reply envelope."""
        if self._sock is not None and self._lost.is_set():
            self._drop_socket()  # the daemon went away since the last call: dial afresh
        sock = self._socket()
        self._next_id += 1
        msg_id = self._next_id
        ctx = sock.new_context()

        async def roundtrip() -> bytes:
            await ctx.asend(encode(kind, data, msg_id))
            return await ctx.arecv()

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
        return info["instance"] == self._instance or self._instance is None

    async def _call(self, kind: str, data: dict | None = None) -> Any:
        reply = await self._exchange(kind, data)
        if reply["type"] == ERROR:
            error = reply["data"]
            if error.get("code") == VersionMismatch.code:
                raise VersionMismatch(
                    error.get("message", "protocol version mismatch"),
                    **(error.get("details") or {}),
                )
            raise error_from_wire(error)
        if reply.get("v") != PROTOCOL_VERSION:
            raise VersionMismatch(mismatch_message(PROTOCOL_VERSION, reply.get("v")))
        return reply["data"]

    async def _stream(self, kind: str, data: dict) -> AsyncIterator[Any]:
        stream_id = (await self._call(kind, data))["stream"]
        after, finished = 0, False
        try:
            while True:
                batch = await self._call("StreamNext", {"stream": stream_id, "after": after})
                after = batch["offset"]
                for wire in batch["events"]:
                    after += 1
                    yield from_wire(wire)
                if batch["end"]:
                    finished = True
                    if batch.get("error"):
                        raise error_from_wire(batch["error"])
                    return
        finally:
            if not finished and self._sock is not None:
                with contextlib.suppress(Exception):
                    await self._exchange("Cancel", {"stream": stream_id}, timeout=self.ping_timeout)

    # ------------------------------------------------------------ the daemon

    async def ping(self, timeout: float | None = None, check_version: bool = True) -> dict:
        """Who answers: version, protocol, pid, instance, started (epoch seconds)."""
        reply = await self._exchange(
            "Ping", None, liveness=False, timeout=timeout or self.ping_timeout
        )
        info = reply["data"]
        if check_version and info.get("protocol") != PROTOCOL_VERSION:
            raise VersionMismatch(
                mismatch_message(PROTOCOL_VERSION, info.get("protocol"), info.get("version", "")),
                daemon_protocol=info.get("protocol"),
                daemon_version=info.get("version"),
            )
        if self._instance is None:
            self._instance = info.get("instance")
        return info

    async def shutdown(self) -> dict:
        """Ask the daemon to exit; answered whatever protocol version it speaks."""
        reply = await self._exchange("Shutdown", None, liveness=False, timeout=self.ping_timeout)
        return reply["data"]

    async def status(self) -> EngineStatus:
        return from_wire(await self._call("Status"))

    async def set_default_model(self, name: str) -> None:
        await self._call("SetDefaultModel", {"name": name})

    async def metrics_snapshot(self) -> dict[str, Any]:
        return await self._call("Metrics")

    async def close(self) -> None:
        self._drop_socket()

    # ------------------------------------------------------------ the store

    async def list_models(self) -> list[ModelInfo]:
        return [from_wire(m) for m in (await self._call("ListModels"))["models"]]

    async def show_model(self, name: str) -> ModelDetails:
        return from_wire(await self._call("Show", {"name": name}))

    async def pull_model(self, ref: str) -> AsyncIterator[PullProgress]:
        async for progress in self._stream("Pull", {"ref": ref}):
            yield progress

    async def create_model(
        self, name: str, modelfile: str, base_dir: str | None = None
    ) -> ModelInfo:
        return from_wire(
            await self._call("Create", {"name": name, "modelfile": modelfile, "base_dir": base_dir})
        )

    async def copy_model(self, source: str, destination: str) -> ModelInfo:
        return from_wire(await self._call("Copy", {"source": source, "destination": destination}))

    async def delete_model(self, name: str) -> None:
        await self._call("Delete", {"name": name})

    # ------------------------------------------------------------ loaded models

    async def load_model(self, name: str, keep_alive: Any = None) -> LoadedModel:
        return from_wire(await self._call("LoadModel", {"name": name, "keep_alive": keep_alive}))

    async def unload_model(self, name: str) -> None:
        await self._call("UnloadModel", {"name": name})

    async def running_models(self) -> list[LoadedModel]:
        return [from_wire(m) for m in (await self._call("Ps"))["models"]]

    # ------------------------------------------------------------ inference

    async def chat(self, request: ChatRequest) -> AsyncIterator[Event]:
        async for event in self._stream("ChatCompletion", {"request": _plain(request)}):
            yield event

    async def complete(self, request: CompletionRequest) -> AsyncIterator[Event]:
        async for event in self._stream("Completion", {"request": _plain(request)}):
            yield event

    async def embed(self, request: EmbedRequest) -> EmbedResult:
        return from_wire(await self._call("Embeddings", {"request": _plain(request)}))

    async def tokenize(self, model: str, text: str, special: bool = True) -> list[int]:
        return (await self._call("Tokenize", {"model": model, "text": text, "special": special}))[
            "tokens"
        ]

    async def count_chat_tokens(self, request: ChatRequest) -> int:
        return (await self._call("CountTokens", {"request": _plain(request)}))["count"]


def _plain(obj: Any) -> dict:
    data = to_wire(obj)
    data.pop("__type__", None)
    return data
