"""`serve`: run the daemon in the foreground (HTTP APIs, IPC socket, optional dashboard).

Here the daemon and the TUI meet: in an interactive terminal without ``--headless`` the
daemon runs inside the TUI's Dashboard (:func:`mullama.tui.daemon_dashboard.run`); the daemon
itself never imports the TUI.
"""

from __future__ import annotations

import sys

from mullama.config import Settings

from .output import CliError, info


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
            "For example: --socket ipc:///run/user/1000/mullama/mullama.sock",
            code=2,
        )


def serve_settings(args) -> Settings:
    """The settings with the options of ``serve`` (a bad one, e.g. a key file others can read,
    is a usage error)."""
    from mullama.daemon import settings_from_args

    try:
        return settings_from_args(args)
    except ValueError as exc:
        raise CliError(str(exc), code=2) from None


def cmd_serve(args, settings: Settings) -> int:
    from mullama.daemon import serve

    check_args(args)
    settings = serve_settings(args)
    if args.api_key:
        info(
            "Note: other users can read --api-key in the process list; "
            "prefer MULLAMA_API_KEY or --api-key-file."
        )
    if not args.headless and sys.stdin.isatty() and sys.stdout.isatty():
        from mullama.tui.daemon_dashboard import run as dashboard

        return serve(settings, args.model, args.verbose, dashboard) or 0
    return serve(settings, args.model, args.verbose) or 0
