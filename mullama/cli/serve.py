"""`serve`: run the daemon in the foreground (HTTP APIs, IPC socket, optional dashboard).

Here the daemon and the TUI meet: in an interactive terminal without ``--headless`` the
daemon runs inside the TUI's Dashboard (:func:`mullama.tui.daemon_dashboard.run`); the daemon
itself never imports the TUI.
"""

from __future__ import annotations

import sys

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
    settings = settings_from_args(args)
    if not args.headless and sys.stdin.isatty() and sys.stdout.isatty():
        from mullama.tui.daemon_dashboard import run as dashboard

        return serve(settings, args.model, args.verbose, dashboard) or 0
    return serve(settings, args.model, args.verbose) or 0
