"""``python -m mullama.tui``: the TUI on its own (``/ui/`` starts it this way under the web driver)."""

from __future__ import annotations

import argparse

from ..startup import defer_gc


def main(argv: list[str] | None = None) -> None:
    defer_gc()  # the app resumes collection after its first frame
    parser = argparse.ArgumentParser(prog="python -m mullama.tui", description=__doc__)
    parser.add_argument(
        "--mode",
        default="dashboard",
        choices=["dashboard", "models", "chat", "playground", "settings"],
    )
    parser.add_argument("--model", default=None, help="the model Chat starts with")
    parser.add_argument("--socket", default=None, help="the daemon's nng address")
    parser.add_argument(
        "--attach",
        action="store_true",
        help="only attach to a daemon; never run the engine in this process",
    )
    args = parser.parse_args(argv)
    from ..config import load_settings
    from .app import run_app

    settings = load_settings(socket=args.socket)
    run_app(args.mode, args.model, settings=settings, attach_only=args.attach)


if __name__ == "__main__":
    main()
