"""Help: every key of the app and of every screen, read from their BINDINGS (so it stays true)."""

from __future__ import annotations

from importlib import import_module

from textual.app import App, ComposeResult
from textual.binding import Binding, BindingsMap
from textual.containers import Grid, VerticalScroll
from textual.keys import format_key
from textual.markup import escape
from textual.screen import ModalScreen, Screen
from textual.widgets import Label, Static


def screen_class(mode: str) -> type[Screen]:
    """The Screen class of a page: ``<Mode>Screen`` in ``tui/screens/<mode>.py``."""
    module = import_module(f"mullama.tui.screens.{mode}")
    return getattr(module, f"{mode.capitalize()}Screen")


def key_text(key: str) -> str:
    """``ctrl+q``, ``?``, ``F2``, ``Esc``: a key as a person reads it."""
    *modifiers, name = key.split("+")
    name = format_key(name)
    if len(name) > 1:
        name = name[0].upper() + name[1:]  # f2 -> F2, escape -> Escape
    return "+".join([*modifiers, name])


def described(bindings: BindingsMap, skip: BindingsMap | None = None) -> list[tuple[str, str]]:
    """(keys, what they do) for each action, its keys together, in declaration order."""
    skipped = {(k, b.action) for k, b in skip} if skip is not None else set()
    by_action: dict[str, tuple[list[str], str]] = {}
    for key, binding in bindings:
        if binding.system or (key, binding.action) in skipped:
            continue
        what = binding.description or binding.action.split("(")[0].replace("_", " ").capitalize()
        keys, _ = by_action.setdefault(binding.action, ([], what))
        keys.append(key_text(key))
    return [(" / ".join(keys), what) for keys, what in by_action.values()]


def sections(app: App, pages: list[tuple[str, str, str]]) -> list[tuple[str, list]]:
    """(title, keys) for the whole app, then for each page."""
    every_screen = Screen._merge_bindings()
    found = [("Everywhere", described(app._bindings) + described(every_screen))]
    for mode, title, _ in pages:
        found.append((title, described(screen_class(mode)._merge_bindings(), every_screen)))
    return found


class HelpScreen(ModalScreen[None]):
    """The keys of every screen; the one it was opened on comes first."""

    BINDINGS = [Binding("escape,q,question_mark,f9", "dismiss", "Close")]

    def __init__(self, pages: list[tuple[str, str, str]], current: str = ""):
        super().__init__(classes="dialog-screen")
        self.pages = pages
        self.current = current

    def compose(self) -> ComposeResult:
        found = sections(self.app, self.pages)
        found.sort(key=lambda s: s[0] != self.current)  # stable: the rest keep their order
        with VerticalScroll(classes="dialog wide", id="help"):
            yield Label("Keys of every screen", classes="dialog-question")
            with Grid(id="help-sections"):
                for title, keys in found:
                    width = max((len(k) for k, _ in keys), default=0)
                    lines = [f"[b]{escape(k.ljust(width))}[/]  {escape(what)}" for k, what in keys]
                    section = Static("\n".join(lines) or "[dim]no keys[/]", classes="help-keys")
                    section.border_title = title + (
                        " (this screen)" if title == self.current else ""
                    )
                    yield section
            yield Label(
                "[dim]Esc or ? closes · ctrl+p (the palette) runs any action by name[/]",
                classes="dialog-hint",
            )
