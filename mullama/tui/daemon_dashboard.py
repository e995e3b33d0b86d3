"""``mullama serve`` in an interactive terminal: the daemon runs inside the TUI's event loop.

:func:`run` is the hook :mod:`mullama.daemon` calls. The Dashboard shows the daemon's own
engine and, in a pane (L toggles it), its log lines as they come; quitting the app (or an IPC
Shutdown, or SIGTERM) stops the daemon gracefully. Logs also go to ``settings.log_file``:
they never draw over the screen.
"""

from __future__ import annotations

import logging


def run(daemon) -> int:
    """Serve with the Dashboard on screen until the user quits; returns the exit status."""
    import os
    import sys

    from ..safefiles import UnsafeFile, append_private, prepare_parent
    from .app import MullamaApp
    from .widgets.log_pane import FORMAT, LogFeed

    settings = daemon.settings
    try:
        prepare_parent(settings.log_file, settings.runtime_dir)
        fd = append_private(settings.log_file, "daemon log")
    except UnsafeFile as exc:
        print(f"mullama serve: {exc}", file=sys.stderr)
        return 1
    log = os.fdopen(fd, "a", encoding="utf-8")
    logging.basicConfig(
        stream=log,
        level=logging.DEBUG if daemon.verbose else logging.INFO,
        force=True,
        format=FORMAT,
    )
    if not daemon.verbose:  # as headless serve does
        for noisy in ("sanic.root", "sanic.server", "httpx", "huggingface_hub"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    feed = LogFeed()
    logging.getLogger().addHandler(feed)
    app = MullamaApp(daemon.settings, daemon=daemon, log_feed=feed)
    try:
        app.run()
    finally:
        logging.getLogger().removeHandler(feed)
    return app.return_code or 0
