"""The footer every screen shows: Textual's, made to fit a narrow terminal.

Below 100 columns it is compact, the command palette's key gives way to the help key, and the
screen's keys that do not fit are left out, last first (the help screen lists them all); the
help and quit keys always show.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.events import Resize
from textual.widgets import Footer as TextualFooter
from textual.widgets._footer import FooterKey

NARROW_BELOW = 100  # columns; the app's -narrow breakpoint
PINNED = ("help", "quit")  # app actions shown whatever else is left out, in this order
PALETTE_WIDTH = 14  # " ^p palette " with its border and padding


class Footer(TextualFooter):
    def __init__(self) -> None:
        super().__init__()
        self._width = 0

    def on_mount(self) -> None:  # Textual's own on_mount runs too (handlers of every class do)
        self._fit_to(self.app.size.width)

    def on_resize(self, event: Resize) -> None:
        if self._fit_to(event.size.width):
            self.call_after_refresh(self.recompose)

    def _fit_to(self, width: int) -> bool:
        """Take this width's style; True when the width changed."""
        if width == self._width:
            return False
        self._width = width
        narrow = width < NARROW_BELOW
        self.compact = narrow
        self.show_command_palette = not narrow
        return True

    def compose(self) -> ComposeResult:
        if not self._bindings_ready:
            return
        by_action: dict[str, tuple] = {}
        for _, binding, enabled, tooltip in self.screen.active_bindings.values():
            if binding.show:
                by_action.setdefault(binding.action, (binding, enabled, tooltip))
        pinned = [by_action.pop(action) for action in PINNED if action in by_action]
        room = (self._width or self.app.size.width) - sum(map(self._width_of, pinned))
        if self.show_command_palette:
            room -= PALETTE_WIDTH
        shown = []
        for item in by_action.values():
            room -= self._width_of(item)
            if room < 0:
                break
            shown.append(item)
        for binding, enabled, tooltip in shown + pinned:
            yield FooterKey(
                binding.key,
                self.app.get_key_display(binding),
                binding.description,
                binding.action,
                disabled=not enabled,
                tooltip=tooltip,
            ).data_bind(compact=TextualFooter.compact)
        yield from self._palette_key()

    def _width_of(self, item: tuple) -> int:
        binding = item[0]
        text = len(self.app.get_key_display(binding)) + 1 + len(binding.description)
        return text + (1 if self.compact else 2)  # compact: a margin; else padding both sides

    def _palette_key(self) -> ComposeResult:
        if not (self.show_command_palette and self.app.ENABLE_COMMAND_PALETTE):
            return
        try:
            _, binding, enabled, _ = self.screen.active_bindings[self.app.COMMAND_PALETTE_BINDING]
        except KeyError:
            return
        yield FooterKey(
            binding.key,
            self.app.get_key_display(binding),
            binding.description,
            binding.action,
            classes="-command-palette",
            disabled=not enabled,
            tooltip=binding.tooltip or binding.description,
        )
