"""``mullama serve`` in an interactive terminal: the daemon runs inside the TUI's event loop.

:func:`run` is the hook :mod:`mullama.daemon` calls. The Dashboard shows the daemon's own
engine; quitting the app (or an IPC Shutdown, or SIGTERM) stops the daemon gracefully. Logs go
to ``settings.log_file`` so they never draw over the screen.
"""

from __future__ import annotations

import logging


def run(daemon) -> int:
    """Serve with the Dashboard on screen until the user quits; returns the exit status."""
    import os
    import sys

    from ..safefiles import UnsafeFile, append_private, prepare_parent
    from .app import MullamaApp

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
        level=logging.INFO,
        force=True,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    app = MullamaApp(daemon.settings, daemon=daemon)
    app.run()
    return app.return_code or 0
