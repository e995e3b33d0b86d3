"""The daemon's IPC server: pynng Rep0 with an elastic pool of contexts.

Each context handles one request at a time; whenever the last idle context picks a
request up, another is opened, so a slow request (a model load, a long-polled
stream) never makes another client wait. Surplus idle contexts close again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from collections.abc import Callable
from typing import Any

import pynng

from mullama import __version__
from mullama.engine.api import Engine, EngineError, InvalidRequest, error_to_wire

from .handlers import Handlers
from .protocol import (
    ERROR,
    PROTOCOL_VERSION,
    REQUEST_KINDS,
    RESULT,
    VERSIONLESS_KINDS,
    VersionMismatch,
    decode,
    encode,
    mismatch_message,
)
from .streams import Streams

log = logging.getLogger("mullama.ipc")

MIN_IDLE = 4
MAX_CONTEXTS = 512


def ipc_path(address: str) -> str | None:
    """The socket file of an ``ipc://`` address (None for other transports)."""
    return address[len("ipc://") :] if address.startswith("ipc://") else None


def _sigterm_self() -> None:
    os.kill(os.getpid(), signal.SIGTERM)


class IpcServer:
    def __init__(
        self,
        engine: Engine,
        address: str,
        *,
        on_shutdown: Callable[[], Any] | None = None,
        max_message_mb: int = 64,
    ):
        self.engine = engine
        self.address = address
        self.on_shutdown = on_shutdown or _sigterm_self
        self.max_message_mb = max_message_mb
        self.streams = Streams()
        self.handlers = Handlers(engine, self.streams)
        self._sock: pynng.Rep0 | None = None
        self._workers: set[asyncio.Task[None]] = set()
        self._idle = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        path = ipc_path(self.address)
        if path:
            _claim_socket_path(path)
        sock = pynng.Rep0(recv_max_size=self.max_message_mb * 1024 * 1024)
        sock.add_post_pipe_remove_cb(self._pipe_removed)
        old_umask = os.umask(0o177) if path else None
        try:
            sock.listen(self.address)
        except pynng.NNGException as exc:
            sock.close()
            raise EngineError(f"cannot listen on {self.address}: {exc}") from None
        finally:
            if old_umask is not None:
                os.umask(old_umask)
        if path:
            os.chmod(path, 0o600)
        self._sock = sock
        for _ in range(MIN_IDLE):
            self._spawn_worker()
        log.info("IPC listening on %s (protocol v%d)", self.address, PROTOCOL_VERSION)

    async def stop(self) -> None:
        if self._sock is None:
            return
        await self.streams.close()
        await self.handlers.close()
        sock, self._sock = self._sock, None
        for task in list(self._workers):
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        sock.close()
        path = ipc_path(self.address)
        if path:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    # ------------------------------------------------------------ contexts

    def _spawn_worker(self) -> None:
        task = asyncio.create_task(self._worker(), name="ipc-context")
        self._workers.add(task)
        task.add_done_callback(self._workers.discard)

    async def _worker(self) -> None:
        if self._sock is None:
            return
        ctx = self._sock.new_context()
        self._idle += 1
        busy = False
        try:
            while True:
                try:
                    msg = await ctx.arecv_msg()
                except pynng.Closed:
                    return
                busy = True
                self._idle -= 1
                if self._idle == 0 and len(self._workers) < MAX_CONTEXTS:
                    self._spawn_worker()
                pipe = getattr(msg.pipe, "id", None)
                reply, kind = await self._handle(msg.bytes, pipe)
                try:
                    await ctx.asend(reply)
                except pynng.Closed:
                    return
                except pynng.NNGException as exc:
                    log.info("could not reply to %s: %s", kind, exc)
                if kind == "Shutdown" and self._loop is not None:
                    log.info("Shutdown requested over IPC")
                    self._loop.call_later(0.05, self.on_shutdown)
                busy = False
                self._idle += 1
                if self._idle > MIN_IDLE:
                    return
        finally:
            if not busy:
                self._idle -= 1
            with contextlib.suppress(pynng.NNGException):
                ctx.close()

    def _pipe_removed(self, pipe: pynng.Pipe) -> None:
        # called on an nng thread
        if self._loop is not None and not self._loop.is_closed():
            pipe_id = pipe.id
            self._loop.call_soon_threadsafe(
                lambda: asyncio.ensure_future(self._disconnected(pipe_id))
            )

    async def _disconnected(self, pipe: int) -> None:
        await self.streams.cancel_pipe(pipe)
        await self.handlers.cancel_pipe(pipe)

    # ------------------------------------------------------------ requests

    async def _handle(self, raw: bytes, pipe: int | None) -> tuple[bytes, str]:
        """The encoded reply to one request, and the request's kind ("" if unreadable)."""
        msg_id, kind = None, ""
        try:
            envelope = decode(raw)
            msg_id, kind = envelope.get("id"), envelope["type"]
            if kind not in REQUEST_KINDS:
                raise InvalidRequest(
                    f"unknown request type {kind!r}; this daemon understands: "
                    + ", ".join(sorted(REQUEST_KINDS)),
                    param="type",
                )
            version = envelope.get("v")
            if version != PROTOCOL_VERSION and kind not in VERSIONLESS_KINDS:
                raise VersionMismatch(
                    mismatch_message(version, PROTOCOL_VERSION, __version__),
                    daemon_protocol=PROTOCOL_VERSION,
                    daemon_version=__version__,
                )
            data = await self.handlers.table[kind](envelope["data"], pipe)
            return encode(RESULT, data, msg_id), kind
        except EngineError as exc:
            return encode(ERROR, error_to_wire(exc), msg_id), kind
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("IPC %s failed", kind or "request")
            return encode(
                ERROR,
                {
                    "code": "internal",
                    "message": f"internal error: {exc}",
                    "param": None,
                    "details": {},
                },
                msg_id,
            ), kind


def _claim_socket_path(path: str) -> None:
    """Refuse a socket another daemon is serving; remove one a dead daemon left behind."""
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    if not os.path.exists(path):
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except (ConnectionRefusedError, FileNotFoundError):
        log.info("removing stale IPC socket %s", path)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        return
    except OSError:
        return  # not a socket we can probe: let listen() report it
    finally:
        probe.close()
    raise EngineError(
        f"another Mullama daemon is already listening on ipc://{path}; "
        "stop it with `mullama daemon stop` or choose another --socket"
    )
