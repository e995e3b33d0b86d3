"""`serve`: run the daemon in the foreground (HTTP APIs, IPC socket, optional dashboard)."""

from __future__ import annotations

from mullama.config import Settings

from .output import CliError


def check_args(args) -> None:
    if args.http_port is not None and not 0 <= args.http_port < 65536:
        raise CliError(f"--http-port must be between 0 and 65535, got {args.http_port}", code=2)
    for name in ("context_size", "threads"):
        value = getattr(args, name)
        if value is not None and value < 0:
            raise CliError(f"--{name.replace('_', '-')} must not be negative, got {value}", code=2)
    if args.socket is not None and not args.socket.startswith(("ipc://", "tcp://")):
        raise CliError(
            f"--socket must be an ipc:// or tcp:// address, got {args.socket!r}",
            "For example: --socket ipc:///tmp/mullama.sock",
            code=2,
        )


def cmd_serve(args, settings: Settings) -> int:
    from mullama.daemon import serve, settings_from_args

    check_args(args)
    return serve(settings_from_args(args), args.model, args.headless, args.verbose) or 0
