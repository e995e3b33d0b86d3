"""One pull in progress on the Models screen: its name, a progress bar, the rate and a cancel
button of its own."""

from __future__ import annotations

from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, Label, ProgressBar

from ...engine.api import PullProgress
from ..format import human_size


class PullRow(Vertical):
    """Several pulls run at once, each in a row of its own."""

    @dataclass
    class CancelRequested(Message):
        """The row's ✕ was pressed: stop this one pull."""

        ref: str

    def __init__(self, ref: str):
        super().__init__(classes="pull-row")
        self.ref = ref

    def compose(self) -> ComposeResult:
        yield Label(self.ref, classes="pull-status", markup=False)
        with Horizontal():
            yield ProgressBar(classes="pull-bar", show_eta=False)
            yield Label("", classes="pull-rate")
            yield Button("✕", classes="pull-cancel", compact=True, tooltip="Cancel this pull")

    def on_mount(self) -> None:
        self.query_one(ProgressBar).update(total=None, progress=0)

    def show(self, step: PullProgress) -> None:
        bar = self.query_one(ProgressBar)
        what = f"{self.ref}: {step.status} {step.file}".strip()
        if step.total:
            bar.update(total=step.total, progress=step.completed)
            what += f" — {human_size(step.completed)} / {human_size(step.total)}"
        self.query_one(".pull-status", Label).update(what)
        self.query_one(".pull-rate", Label).update(
            f"{human_size(step.rate)}/s" if step.rate else ""
        )

    @on(Button.Pressed, ".pull-cancel")
    def _cancel(self, event: Button.Pressed) -> None:
        event.stop()
        self.post_message(self.CancelRequested(self.ref))
