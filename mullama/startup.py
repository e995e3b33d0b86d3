"""Faster start-up: no cyclic garbage collection until a command has started.

Importing Textual (or Sanic) and building the first screen allocates a few hundred thousand
long-lived objects; with collection on, Python scans them again and again while they are
being created, which costs about a tenth of the time to the TUI's first frame. Entry points
call :func:`defer_gc` first and :func:`resume_gc` once started (the TUI: after its first
frame). Both are no-ops when the process did not defer, so library use and tests are unaffected.
"""

from __future__ import annotations

import gc

_deferred = False


def defer_gc() -> None:
    global _deferred
    if gc.isenabled():
        gc.disable()
        _deferred = True


def resume_gc() -> None:
    global _deferred
    if _deferred:
        _deferred = False
        gc.enable()
