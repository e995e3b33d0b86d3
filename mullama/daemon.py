"""``mullama serve``: the daemon process (engine + HTTP APIs + IPC socket).

One asyncio loop runs Sanic (single process), the IPC server and the engine. SIGINT/SIGTERM
shut down gracefully: new requests get 503, in-flight generations end with their final event
(finish reason ``cancelled`` in the engine), connections drain, the IPC socket and the pid file
are removed. A second signal exits at once.

Also runnable as ``python -m mullama.daemon [serve options]``; the CLI reuses
:func:`add_serve_arguments` and :func:`settings_from_args` for ``mullama serve``.

The daemon never imports the TUI. :func:`serve` takes an optional ``dashboard(daemon) -> int``:
``mullama serve`` in an interactive terminal without ``--headless`` passes the TUI's
(:mod:`mullama.cli.serve` wires the two), which then owns the terminal and calls
``await daemon.stop()`` when it quits; without one the daemon logs to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__, pidfile, safefiles
from .config import Settings, load_settings
from .engine.api import EngineError

if TYPE_CHECKING:
    from sanic import Sanic
    from sanic.server.async_server import AsyncioServer

    from .engine.local import LocalEngine
    from .ipc.server import IpcServer

log = logging.getLogger("mullama.daemon")

DRAIN_TIMEOUT = 10.0


class Daemon:
    """The running daemon; :meth:`start` and :meth:`stop` may be driven by any asyncio app."""

    def __init__(self, settings: Settings, models: list[str] | None = None, verbose: bool = False):
        self.settings = settings
        self.models = list(models or [])
        self.verbose = verbose
        # set by start(), in this order
        self.engine: LocalEngine | None = None
        self.app: Sanic[Any, Any] | None = None
        self.server: AsyncioServer | None = None
        self.ipc: IpcServer | None = None
        self.stopped = asyncio.Event()
        self.serving = False  # start() has completed
        self._stopping = False

    async def _prune(self, engine: LocalEngine) -> None:
        pruned = await engine.prune_store()
        if pruned.removed:
            log.info(
                "removed %d unreferenced blob(s) or stale partial file(s), %d bytes "
                "(MULLAMA_NOPRUNE=1 keeps them)",
                pruned.removed,
                pruned.freed,
            )

    async def start(self) -> None:
        from .engine.local import LocalEngine
        from .http import readiness
        from .http.app import create_app
        from .ipc.server import IpcServer

        settings = self.settings
        holder = pidfile.running_daemon(settings.pid_file)
        if holder is not None:
            raise EngineError(
                f"a Mullama daemon is already running (pid {holder.pid}, {holder.http or '?'}); "
                "stop it first (`mullama daemon stop`)"
            )
        self.engine = engine = LocalEngine(settings)
        try:
            _prepare_runtime_files(settings)
            # the IPC address first: a second daemon on a socket in use stops here, before
            # it loads a model or serves HTTP
            self.ipc = IpcServer(
                engine, settings.socket, on_shutdown=self.request_stop, api_key=settings.api_key
            )
            self.ipc.bind()
            _write_pid_file(settings, http="")  # a CLI meanwhile waits instead of spawning
            # then HTTP, so that /health/ready says "starting" and "loading" (503) to a probe
            # or a router while the store is pruned and the models load
            self.app = app = create_app(engine, settings)
            app.ctx.readiness.state = readiness.STARTING
            if self.verbose:
                from .http import access

                access.install(app)  # one line a request on mullama.access
            # port 0 means any free port; Sanic would read it as its default, 8000
            bound = (
                socket.create_server((settings.http_addr, 0)) if settings.http_port == 0 else None
            )
            self.server = server = await app.create_server(
                host=None if bound else settings.http_addr,
                port=None if bound else settings.http_port,
                sock=bound,
                return_asyncio_server=True,
                asyncio_server_kwargs={"start_serving": False},
            )
            listener = _listener(server) if server is not None else None
            if server is None or listener is None:  # create_server returns one, awaited
                raise RuntimeError("Sanic created no listening server")
            settings.http_port = listener.sockets[0].getsockname()[1]
            await server.startup()
            await server.before_start()
            await server.start_serving()
            await server.after_start()
            if not settings.noprune:
                await self._prune(engine)
            if self.models:
                app.ctx.readiness.state = readiness.LOADING
            for name in self.models:
                log.info("loading %s", name)
                await engine.load_model(name, keep_alive=-1)  # resident until unloaded
                if not await engine.default_model():
                    await engine.set_default_model(name)
            engine.endpoints = {"http": settings.http_endpoint, "socket": settings.socket}
            await self.ipc.start()
            _write_pid_file(settings, http=settings.http_endpoint)
        except BaseException:
            await asyncio.shield(self._close())
            raise
        self.serving = True
        app.ctx.readiness.state = readiness.READY
        log.info(
            "Mullama %s serving HTTP on %s%s",
            __version__,
            settings.http_endpoint,
            f" and IPC on {settings.socket}" if self.ipc else "",
        )

    def request_stop(self) -> None:
        """Ask for a graceful stop (signal handlers, IPC Shutdown); :meth:`run` performs it."""
        self.stopped.set()

    async def run(self) -> None:
        """Start, serve until :meth:`request_stop`, then stop gracefully."""
        await self.start()
        try:
            await self.stopped.wait()
        finally:
            await self.stop()

    async def stop(self) -> None:
        if self._stopping:
            return
        self._stopping = True
        log.info("shutting down")
        if self.app is not None:
            self.app.ctx.draining = True
        if self.server is not None:
            self.server.close()
            await self.server.before_stop()
        # Unloading ends every in-flight generation with its final event, then the
        # handlers finish their responses and the connections go idle.
        if self.engine is not None:
            await self.engine.close()
        await self._drain_connections()
        await self._close()
        log.info("stopped")

    async def _drain_connections(self) -> None:
        if self.server is None:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DRAIN_TIMEOUT
        while self.server.connections and loop.time() < deadline:
            for conn in list(self.server.connections):
                conn.close_if_idle()
            await asyncio.sleep(0.05)
        for conn in list(self.server.connections):
            conn.abort()

    async def _close(self) -> None:
        if self.ipc is not None:
            with contextlib.suppress(Exception):
                await self.ipc.stop()
        if self.engine is not None:
            await self.engine.close()  # also anything an IPC client loaded meanwhile
        if self.server is not None and _listener(self.server) is not None:
            self.server.close()  # (again, after stop(): harmless) a failed start never closed it
            await self.server.wait_closed()
            if self.app is not None and self.app.state.is_started:
                await self.server.after_stop()
        pidfile.remove(self.settings.pid_file)
        self.stopped.set()


def _prepare_runtime_files(settings: Settings) -> None:
    """The folders of the PID file and socket, the runtime dir checked private (0700, ours)."""
    paths = [settings.pid_file]
    if settings.socket.startswith("ipc://"):
        paths.append(Path(settings.socket[len("ipc://") :]))
    try:
        for path in paths:
            safefiles.prepare_parent(path, settings.runtime_dir)
    except safefiles.UnsafeFile as exc:
        raise EngineError(str(exc)) from None


def _write_pid_file(settings: Settings, http: str) -> None:
    try:
        pidfile.write(settings.pid_file, http=http, socket=settings.socket, version=__version__)
    except OSError as exc:  # e.g. another user's file in /tmp: serve anyway, found by socket
        log.warning(
            "cannot write the PID file %s (%s); `mullama daemon stop` finds the daemon "
            "through its socket",
            settings.pid_file,
            exc.strerror or exc,
        )


def _listener(server: AsyncioServer) -> asyncio.Server | None:
    """The asyncio server inside Sanic's wrapper: set once the wrapper is awaited (which
    ``create_server`` does). Sanic's own annotations infer that attribute as always None."""
    listener: asyncio.Server | None = server.server
    return listener


# ---------------------------------------------------------------- entry points


def _log_to_stdout(verbose: bool) -> None:
    logging.basicConfig(
        stream=sys.stdout,
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    if not verbose:
        for noisy in ("sanic.root", "sanic.server", "httpx", "huggingface_hub"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


class StartInterrupted(Exception):
    """A signal arrived before the daemon had started: it stopped what it had started."""


async def _serve_until_signalled(daemon: Daemon) -> None:
    loop = asyncio.get_running_loop()
    signals = {"count": 0}
    running = asyncio.current_task()

    def on_signal(signum: int) -> None:
        signals["count"] += 1
        if signals["count"] > 1:
            log.warning("second %s: exiting now", signal.Signals(signum).name)
            os._exit(128 + signum)
        if not daemon.serving and running is not None:  # still starting: stop starting
            log.info("%s received while starting: stopping", signal.Signals(signum).name)
            running.cancel()
            return
        log.info(
            "%s received: finishing in-flight requests (again to force)",
            signal.Signals(signum).name,
        )
        daemon.request_stop()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        await daemon.run()
    except asyncio.CancelledError:
        if signals["count"] and not daemon.serving:
            raise StartInterrupted() from None
        raise


def serve(
    settings: Settings,
    models: list[str],
    verbose: bool,
    dashboard: Callable[[Daemon], int] | None = None,
) -> int:
    """Run the daemon in the foreground until SIGINT/SIGTERM (or, with ``dashboard``, until
    that returns: it runs the daemon inside its own event loop); returns the exit status."""
    daemon = Daemon(settings, models, verbose)
    if dashboard is not None:
        return dashboard(daemon)
    _log_to_stdout(verbose)
    try:
        asyncio.run(_serve_until_signalled(daemon))
    except StartInterrupted:
        return 130
    except EngineError as exc:
        log.error("%s", exc.message)
        return 1
    except OSError as exc:
        log.error("cannot serve on %s: %s", settings.http_endpoint, exc)
        return 1
    return 0


def add_serve_arguments(
    parser: argparse.ArgumentParser, background: bool = False
) -> argparse.ArgumentParser:
    """The options of ``mullama serve`` (shared with the CLI; ``background``: for ``daemon
    start``, which always runs headless)."""
    parser.add_argument(
        "--model",
        "-m",
        action="append",
        default=[],
        metavar="NAME",
        help="load this model at start (repeatable; the first becomes the default)",
    )
    parser.add_argument(
        "--socket", help="IPC socket address (default ipc://RUNTIME_DIR/mullama.sock)"
    )
    parser.add_argument("--http-port", "-p", type=int, help="HTTP port (default 8080)")
    parser.add_argument("--http-addr", help="HTTP address (default 127.0.0.1; 0.0.0.0 for all)")
    parser.add_argument("--gpu-layers", "-g", type=int, help="layers to offload to the GPU")
    parser.add_argument("--context-size", type=int, help="context size per sequence")
    parser.add_argument("--threads", type=int, help="CPU threads for inference")
    parser.add_argument(
        "--num-parallel",
        "--parallel",
        type=int,
        metavar="N",
        help="sequences each model decodes together (default: automatic, 4 when memory allows)",
    )
    parser.add_argument(
        "--api-key",
        help="require this key over HTTP (Authorization: Bearer or x-api-key) and IPC; other "
        "users can read a command line: prefer MULLAMA_API_KEY or --api-key-file",
    )
    parser.add_argument(
        "--api-key-file",
        metavar="PATH",
        help="read the API key from this file (only you may read it: chmod 600)",
    )
    parser.add_argument(
        "--rpc",
        dest="rpc_servers",
        metavar="HOST:PORT,...",
        help="put every model's layers on these llama.cpp RPC workers (`mullama worker`); "
        "a Modelfile's RPC line overrides it",
    )
    parser.add_argument(
        "--tensor-split",
        metavar="N,N,...",
        help="proportions of the layers per RPC worker (default: by their free memory)",
    )
    parser.add_argument("--verbose", "-v", action="store_true", help="debug logging and access log")
    if not background:
        parser.add_argument("--headless", action="store_true", help="no TUI; log to stdout")
    return parser


SERVE_OPTIONS = {
    "socket": "--socket",
    "http_port": "--http-port",
    "http_addr": "--http-addr",
    "gpu_layers": "--gpu-layers",
    "context_size": "--context-size",
    "threads": "--threads",
    "num_parallel": "--num-parallel",
    "rpc_servers": "--rpc",
    "tensor_split": "--tensor-split",
}


def serve_argv(args: argparse.Namespace) -> list[str]:
    """The ``mullama serve`` options given in ``args``, as a command line again: all but the
    API key, which a daemon the CLI starts gets in its environment (others read command lines)."""
    argv = [part for name in args.model for part in ("--model", name)]
    for attr, flag in SERVE_OPTIONS.items():
        value = getattr(args, attr, None)
        if value is not None:
            argv += [flag, str(value)]
    return argv + (["--verbose"] if getattr(args, "verbose", False) else [])


def settings_from_args(args: argparse.Namespace) -> Settings:
    return load_settings(
        socket=args.socket,
        http_port=args.http_port,
        http_addr=args.http_addr,
        gpu_layers=args.gpu_layers,
        context_size=args.context_size,
        threads=args.threads,
        api_key=args.api_key,
        api_key_file=getattr(args, "api_key_file", None),
        num_parallel=getattr(args, "num_parallel", None),
        rpc_servers=getattr(args, "rpc_servers", None),
        tensor_split=getattr(args, "tensor_split", None),
    )


def main(argv: list[str] | None = None) -> int:
    parser = add_serve_arguments(
        argparse.ArgumentParser(
            prog="python -m mullama.daemon",
            description="Run the Mullama daemon in the foreground (headless; `mullama serve` "
            "shows the dashboard in a terminal).",
        )
    )
    args = parser.parse_args(argv)
    try:
        settings = settings_from_args(args)
    except ValueError as exc:
        parser.error(str(exc))
    return serve(settings, args.model, args.verbose)


if __name__ == "__main__":
    raise SystemExit(main())
