"""`mullama` (the Dashboard) and `mullama chat` (the Chat screen): the Textual app."""

from __future__ import annotations

import asyncio
import sys

from mullama.config import Settings

from .output import CliError


def interactive() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


def _run_app(**kwargs) -> int:
    if not interactive():
        raise CliError(
            "the terminal UI needs an interactive terminal",
            "Run `mullama --help` for the commands scripts can use.",
            code=2,
        )
    try:
        from mullama.tui.app import run_app
    except ModuleNotFoundError as exc:
        if exc.name not in ("mullama.tui.app", "mullama.tui"):
            raise
        raise CliError(
            f"the terminal UI is not available in this installation ({exc})",
            "Use the command line meanwhile: `mullama run MODEL`, `mullama --help`.",
        ) from None
    run_app(**kwargs)
    return 0


def cmd_dashboard(args, settings: Settings) -> int:
    return _run_app(mode="dashboard")


def cmd_chat(args, settings: Settings) -> int:
    if args.model:
        asyncio.run(_check_model(args.model, settings))  # a typo fails now, not at message one
    return _run_app(mode="chat", model=args.model)


async def _check_model(name: str, settings: Settings) -> None:
    """``name`` is a local model or one that can be pulled; else ModelNotFound (suggestions).
    Asked of the daemon when one answers, else of the store this TUI would use itself."""
    from mullama.engine.api import ModelNotFound

    from .daemonctl import connect, ping

    try:
        if await ping(settings) is not None:
            engine = await connect(settings, spawn_daemon=False)
            try:
                await engine.show_model(name)
            finally:
                await engine.close()
        else:
            from mullama.engine.store import ModelStore

            await asyncio.to_thread(ModelStore(settings).show, name)
    except ModelNotFound as exc:
        if not exc.details.get("pullable"):
            raise
