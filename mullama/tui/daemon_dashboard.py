"""``mullama serve`` in an interactive terminal: the daemon runs inside the TUI's event loop.

:func:`run` is the hook :mod:`mullama.daemon` calls. The Dashboard shows the daemon's own
engine; quitting the app (or an IPC Shutdown, or SIGTERM) stops the daemon gracefully. Logs go
to ``settings.log_file`` so they never draw over the screen.
"""

from __future__ import annotations

import logging


def run(daemon) -> int:
    """Serve with the Dashboard on screen until the user quits; returns the exit status."""
    from .app import MullamaApp

    logging.basicConfig(
        filename=str(daemon.settings.log_file),
        level=logging.INFO,
        force=True,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    app = MullamaApp(daemon.settings, daemon=daemon)
    app.run()
    return app.return_code or 0
