"""`worker`: lend this machine's CPU or GPU to another machine's models (llama.cpp RPC).

A daemon started with ``serve --rpc HOST:PORT,...`` (or a model whose Modelfile has an ``RPC``
line) puts the model's layers on the workers it names. The worker is llama.cpp's RPC server,
started through ctypes (:mod:`mullama.engine.rpc`). Its protocol has no authentication and
trusts the client completely: it listens on loopback unless told otherwise.
"""

from __future__ import annotations

import argparse
import ipaddress
import signal
import socket
import threading

from mullama.config import Settings

from .output import CliError, info

DEFAULT_LISTEN = "127.0.0.1:50052"  # llama.cpp's rpc-server port


def add_worker_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument(
        "--listen",
        default=DEFAULT_LISTEN,
        metavar="HOST:PORT",
        help=f"where to listen (default {DEFAULT_LISTEN}; the protocol has no authentication: "
        "listen on another address only inside a network you trust)",
    )
    parser.add_argument(
        "--threads", type=int, metavar="N", help="CPU threads (default: the physical cores)"
    )
    parser.add_argument(
        "--device",
        choices=("cpu", "gpu"),
        help="what to lend: the CPU, or every GPU (default: the GPUs when llama.cpp has them)",
    )
    parser.add_argument(
        "--cache",
        metavar="DIR",
        help="keep large tensors received in DIR, so that loading the same model again sends "
        "only their hashes",
    )
    return parser


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(socket.gethostbyname(host)).is_loopback
    except (OSError, ValueError):
        return False


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from mullama.engine import rpc
    from mullama.modelfile.placement import parse_endpoint

    try:
        host, port = parse_endpoint(args.listen)
    except ValueError as exc:
        raise CliError(f"--listen {exc}", code=2) from None
    if args.threads is not None and args.threads < 1:
        raise CliError(f"--threads must be at least 1, got {args.threads}", code=2)
    from mullama.engine.manager import default_threads

    threads = args.threads or default_threads()
    reason = rpc.missing()
    if reason:
        raise CliError(f"cannot start an RPC worker: {reason}")
    device = args.device
    if device is None:
        try:
            rpc.local_devices("gpu")
            device = "gpu"
        except rpc.RpcError:
            device = "cpu"
    try:
        rpc.local_devices(device)
    except rpc.RpcError as exc:
        raise CliError(str(exc), code=2) from None
    _check_free(host, port)
    endpoint = f"{host}:{port}"
    if not is_loopback(host):
        info(
            f"Warning: listening on {endpoint}. llama.cpp's RPC protocol has no authentication "
            "or encryption: anyone who can reach this port can run computations here and read "
            "what is sent. Use it only inside a network you trust."
        )
    info(
        f"Mullama RPC worker on {endpoint} ({device}, {threads} threads). "
        f"Put a model on it with: mullama serve --rpc {endpoint}"
    )
    failure: list[BaseException] = []

    def run() -> None:
        try:
            rpc.serve(endpoint, threads, device, args.cache)
        except BaseException as exc:  # reported by the main thread
            failure.append(exc)

    # llama.cpp serves in this thread; the main thread stays free to take signals
    server = threading.Thread(target=run, name="rpc-server", daemon=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    server.start()
    try:
        while server.is_alive() and not stop.wait(0.2):
            pass
    except KeyboardInterrupt:
        pass
    if failure:
        raise CliError(str(failure[0]))
    return 0


def _check_free(host: str, port: int) -> None:
    """Fail with a clear message now where llama.cpp would only print "Failed to create server
    socket"."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise CliError(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                "Pick another port with --listen HOST:PORT.",
            ) from None
