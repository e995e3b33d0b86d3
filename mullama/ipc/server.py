"""The daemon's IPC server: pynng Rep0 with an elastic pool of contexts.

Each context handles one request at a time; whenever the last idle context picks a
request up, another is opened, so a slow request (a model load, a long-polled
stream) never makes another client wait. Surplus idle contexts close again.

With an API key, every request must carry it (``auth`` in the envelope; see ``protocol.py``).
:meth:`IpcServer.bind` claims the address before the daemon starts anything else, so a
second daemon on a socket in use fails at once; :meth:`IpcServer.start` then serves it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import ipaddress
import logging
import os
import signal
import socket
import stat
from collections.abc import Callable
from typing import Any

import pynng

from mullama import __version__
from mullama.engine.api import Engine, EngineError, InvalidRequest, error_to_wire
from mullama.safefiles import foreign_owner

from .handlers import Handlers
from .protocol import (
    ERROR,
    PROTOCOL_VERSION,
    REQUEST_KINDS,
    RESULT,
    VERSIONLESS_KINDS,
    IpcUnauthorized,
    VersionMismatch,
    decode,
    encode,
    mismatch_message,
)
from .streams import Streams

log = logging.getLogger("mullama.ipc")

MIN_IDLE = 4
MAX_CONTEXTS = 512
PROBE_SECONDS = 2.0  # how long a socket in use may take to accept a probe connection


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
        api_key: str = "",
    ):
        self.engine = engine
        self.address = address
        self._key_digest = _digest(api_key) if api_key else None
        self.on_shutdown = on_shutdown or _sigterm_self
        self.max_message_mb = max_message_mb
        self.streams = Streams()
        self.handlers = Handlers(engine, self.streams)
        self._sock: pynng.Rep0 | None = None
        self._workers: set[asyncio.Task[None]] = set()
        self._idle = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self) -> None:
        """Listen on the address (a socket file 0600), or raise EngineError saying why not:
        it is in use, someone else's, or a network address without an API key."""
        if self._sock is not None:
            return
        check_exposure(self.address, self._key_digest is not None)
        path = ipc_path(self.address)
        if path:
            _claim_socket_path(path)
        sock = pynng.Rep0(recv_max_size=self.max_message_mb * 1024 * 1024)
        sock.add_post_pipe_remove_cb(self._pipe_removed)
        old_umask = os.umask(0o177) if path else None
        try:
            sock.listen(self.address)
        except pynng.AddressInUse:
            sock.close()
            raise EngineError(
                f"another program (a Mullama daemon?) already listens on {self.address}; "
                "stop it with `mullama daemon stop` or choose another --socket"
            ) from None
        except pynng.NNGException as exc:
            sock.close()
            raise EngineError(f"cannot listen on {self.address}: {exc}") from None
        finally:
            if old_umask is not None:
                os.umask(old_umask)
        if path:
            st = os.lstat(path)  # created 0600 under the umask; chmod never through a symlink
            if stat.S_ISSOCK(st.st_mode) and foreign_owner(st) is None:
                os.chmod(path, 0o600)
        self._sock = sock
        if self._key_digest is None and not path:
            log.warning(
                "IPC on %s has no API key: any local user can use it (set MULLAMA_API_KEY)",
                self.address,
            )

    async def start(self) -> None:
        """Serve requests (binding first if :meth:`bind` was not called)."""
        self._loop = asyncio.get_running_loop()
        self.bind()
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
                reply, kind, ok = await self._handle(msg.bytes, pipe)
                try:
                    await ctx.asend(reply)
                except pynng.Closed:
                    return
                except pynng.NNGException as exc:
                    log.info("could not reply to %s: %s", kind, exc)
                if kind == "Shutdown" and ok and self._loop is not None:
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

    async def _handle(self, raw: bytes, pipe: int | None) -> tuple[bytes, str, bool]:
        """The encoded reply to one request, the request's kind ("" if unreadable), and
        whether it was carried out (a refused Shutdown must not stop the daemon)."""
        msg_id, kind = None, ""
        try:
            envelope = decode(raw)
            msg_id, kind = envelope.get("id"), envelope["type"]
            self._check_key(envelope.get("auth"))
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
            return encode(RESULT, data, msg_id), kind, True
        except EngineError as exc:
            return encode(ERROR, error_to_wire(exc), msg_id), kind, False
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("IPC %s failed", kind or "request")
            return (
                encode(
                    ERROR,
                    {
                        "code": "internal",
                        "message": f"internal error: {exc}",
                        "param": None,
                        "details": {},
                    },
                    msg_id,
                ),
                kind,
                False,
            )

    def _check_key(self, given: Any) -> None:
        if self._key_digest is None:
            return
        if (
            isinstance(given, str)
            and given
            and hmac.compare_digest(_digest(given), self._key_digest)
        ):
            return
        why = "a wrong API key was sent" if given else "no API key was sent"
        log.info("refused an IPC request: %s", why)
        raise IpcUnauthorized(f"this Mullama daemon requires its API key on IPC and {why}")


def _digest(key: str) -> bytes:
    # compared as digests: equal lengths, so the comparison time says nothing of the key
    return hashlib.sha256(key.encode("utf-8")).digest()


def check_exposure(address: str, has_key: bool) -> None:
    """Refuse an IPC address other machines can reach when there is no API key."""
    if has_key or not address.startswith(("tcp", "ws")):
        return
    netloc = address.split("://", 1)[1].split("/", 1)[0]
    host = netloc.rsplit(":", 1)[0].strip("[]") if ":" in netloc else netloc
    if host == "localhost" or _loopback(host):
        return
    raise EngineError(
        f"the IPC socket {address} is reachable from other machines, and this daemon has no "
        "API key: anyone could list, delete and create models or stop it. Set one "
        "(MULLAMA_API_KEY, api_key_file, or `--api-key-file PATH`) or listen on "
        "tcp://127.0.0.1:PORT"
    )


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name, "*" or empty: possibly every interface


def _claim_socket_path(path: str) -> None:
    """Refuse a socket file another daemon is serving, or that is not ours to replace; remove
    one a dead daemon of ours left behind."""
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    address = f"ipc://{path}"
    if not stat.S_ISSOCK(st.st_mode):
        raise EngineError(
            f"{path} exists and is not a socket: remove it or choose another --socket"
        )
    owner = foreign_owner(st)
    if owner is not None:
        raise EngineError(
            f"the IPC socket {path} belongs to another user (uid {owner}); choose another --socket"
        )
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(PROBE_SECONDS)  # a listener that never accepts must not hang the start
    try:
        probe.connect(path)
    except (ConnectionRefusedError, FileNotFoundError):
        log.info("removing stale IPC socket %s", path)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        return
    except (TimeoutError, BlockingIOError):  # its backlog is full: nobody accepts
        raise EngineError(
            f"something listens on {address} but does not accept connections (a daemon that "
            "hangs?); stop it, or choose another --socket"
        ) from None
    except OSError as exc:
        raise EngineError(f"cannot use the IPC socket {path}: {exc.strerror or exc}") from None
    finally:
        probe.close()
    raise EngineError(
        f"another Mullama daemon is already listening on {address}; "
        "stop it with `mullama daemon stop` or choose another --socket"
    )
