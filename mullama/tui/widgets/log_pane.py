"""The daemon's log, live on the ``serve`` Dashboard: a logging handler and the pane it feeds."""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable

from rich.text import Text
from textual.widgets import RichLog

MAX_LINES = 1000
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class LogFeed(logging.Handler):
    """Keeps the last ``max_lines`` formatted records and hands each new one to the listener,
    on its event loop, from whatever thread logged it.

    It schedules rather than waits (``call_soon_threadsafe``, not ``App.call_from_thread``): a
    runner thread that logs while the app is closing must not block on a screen that is gone.
    """

    def __init__(self, max_lines: int = MAX_LINES, level: int = logging.NOTSET):
        super().__init__(level)
        self.setFormatter(logging.Formatter(FORMAT, datefmt="%H:%M:%S"))
        self.lines: collections.deque[str] = collections.deque(maxlen=max_lines)
        self._listener: Callable[[str], object] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def emit(self, record: logging.LogRecord) -> None:  # called under self.lock
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        self.lines.append(line)
        if self._listener is not None and self._loop is not None:
            try:
                self._loop.call_soon_threadsafe(self._listener, line)
            except RuntimeError:  # the loop is closed: the pane is gone
                self._listener = None

    def listen(self, listener: Callable[[str], object] | None) -> list[str]:
        """Send each new line to ``listener`` (None: stop) on the running loop; returns the
        lines kept so far, so that none is missed or shown twice."""
        self.acquire()
        try:
            self._listener = listener
            self._loop = asyncio.get_running_loop() if listener is not None else None
            return list(self.lines)
        finally:
            self.release()


class LogPane(RichLog):
    """The lines of a :class:`LogFeed`, wrapped to the pane (an 80-column terminal shows them
    whole), the latest at the bottom; it follows new lines while it is scrolled to the end."""

    def __init__(self, feed: LogFeed, **kwargs) -> None:
        super().__init__(
            max_lines=feed.lines.maxlen, wrap=True, markup=False, min_width=20, **kwargs
        )
        self.feed = feed
        self._catching_up = False  # a scroll to the end is due after the next refresh
        self._wrap_width = 0  # the last width shown: lines logged while hidden wrap to it

    def on_mount(self) -> None:
        self._add(self.feed.listen(self._add_line))

    def on_unmount(self) -> None:
        self.feed.listen(None)

    def _add_line(self, line: str) -> None:
        self._add([line])

    def _add(self, lines: list[str]) -> None:
        if not self.is_attached:
            return
        follow = self._catching_up or self.is_vertical_scroll_end
        width = self.scrollable_content_region.width or self._wrap_width
        self._wrap_width = width
        for line in lines:  # Text: a log line is never markup
            self.write(Text(line), width=width or None, scroll_end=False)
        # scrolled once the layout has the new height (scrolling at once falls short when
        # the scrollbar first appears, and would then stop following)
        if follow and not self._catching_up:
            self._catching_up = True
            self.call_after_refresh(self._to_end)

    def _to_end(self) -> None:
        self._catching_up = False
        self.scroll_end(animate=False, immediate=True, x_axis=False)

    @property
    def text(self) -> str:
        """What the pane shows, one wrapped row a line."""
        return "\n".join(strip.text.rstrip() for strip in self.lines)
