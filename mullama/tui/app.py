"""MullamaApp: the Textual app, and :func:`run_app`, the entry point the CLI calls."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from functools import partial

from textual import on, work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.reactive import reactive
from textual.screen import Screen

from ..config import Settings, load_settings
from ..engine.api import Engine, EngineError
from ..startup import resume_gc
from .connection import connect
from .messages import (
    ChatRequested,
    DaemonLost,
    DaemonReconnected,
    DefaultModelChanged,
    EngineConnected,
    EngineFailed,
)
from .preferences import Preferences, load_preferences, save_preferences
from .screens.help import HelpScreen, screen_class

DAEMON_CHECK_SECONDS = 2.0

PAGES = [  # mode, title, key
    ("dashboard", "Dashboard", "f1"),
    ("models", "Models", "f2"),
    ("chat", "Chat", "f3"),
    ("playground", "Playground", "f4"),
    ("settings", "Settings", "f5"),
]


def _lazy_screen(mode: str):
    """A factory importing the screen's module on first use: the first frame needs only one."""

    def make() -> Screen:
        return screen_class(mode)()

    return make


class MullamaApp(App[None]):
    """Dashboard, Models, Chat, Playground and Settings over one Engine."""

    CSS_PATH = "mullama.tcss"
    TITLE = "Mullama"
    MODES = {mode: _lazy_screen(mode) for mode, _, _ in PAGES}
    BINDINGS = [
        *(
            Binding(key, f"switch_mode('{mode}')", title, priority=True, show=False)
            for mode, title, key in PAGES
        ),
        Binding("ctrl+q", "quit", "Quit", priority=True),
        # not priority: a focused Input or TextArea types "?" (F9 opens help from there too)
        Binding("question_mark,f9", "help", "Keys"),
    ]

    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]

    # "connecting" | "local" | "remote" | "serving" | "lost" | "failed"
    connection: reactive[str] = reactive("connecting")

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        engine: Engine | None = None,
        mode: str = "dashboard",
        model: str | None = None,
        attach_only: bool = False,
        frozen: bool = False,
        daemon=None,
        log_feed=None,
    ):
        """``frozen`` is for snapshots: no clocks, uptimes or live system numbers on screen.

        ``daemon`` (a :class:`mullama.daemon.Daemon`, not started) makes this app the daemon's
        face: it starts it, shows its engine and stops it on quit. ``log_feed`` (a
        :class:`mullama.tui.widgets.log_pane.LogFeed`) puts a pane of its log lines on the
        Dashboard.
        """
        super().__init__()
        self.settings = settings or load_settings()
        self.prefs: Preferences = load_preferences(self.settings.settings_file)
        self.engine: Engine | None = engine
        self.owns_engine = engine is None and daemon is None
        self.daemon = daemon
        self.log_feed = log_feed
        self.serving = False  # the daemon started and must be stopped on exit
        self.start_mode = mode if mode in self.MODES else "dashboard"
        self.chat_model = model or ""
        self.attach_only = attach_only
        self.frozen = frozen
        self.connection_error = ""
        self._engine_ready = asyncio.Event()

    # ---------------------------------------------------------------- engine

    def on_mount(self) -> None:
        if self.prefs.theme in self.available_themes:
            self.theme = self.prefs.theme
        self.switch_mode(self.start_mode)
        self.screen.call_after_refresh(resume_gc)  # after the first frame
        if not self.frozen:
            self.set_interval(DAEMON_CHECK_SECONDS, self.check_daemon)
        if self.daemon is not None:
            self.call_after_refresh(self.serve)
        elif self.engine is None:
            self.call_after_refresh(self.connect_engine)  # paint first, then import the engine
        else:
            self.post_message(EngineConnected(self.engine, self.engine.mode))

    @work(exclusive=True, group="connect")
    async def connect_engine(self) -> None:
        try:
            engine = await connect(
                self.settings, self.prefs.socket(self.settings), attach_only=self.attach_only
            )
        except EngineError as exc:
            self.post_message(EngineFailed(exc.message))
            return
        self.post_message(EngineConnected(engine, engine.mode))

    @work(exclusive=True, group="connect")
    async def serve(self) -> None:
        """Start the daemon, show its engine, and quit when it is asked to stop."""
        import signal

        try:
            await self.daemon.start()
        except (EngineError, OSError) as exc:
            self.exit(return_code=1, message=f"mullama serve: {getattr(exc, 'message', exc)}")
            return
        self.serving = True
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, self.daemon.request_stop)
        self.post_message(EngineConnected(self.daemon.engine, "serving"))
        await self.daemon.stopped.wait()
        self.exit()

    @work(exclusive=True, group="check-daemon")
    async def check_daemon(self) -> None:
        """While attached, notice a lost daemon (and its return) whatever screen is showing."""
        if self.connection not in ("remote", "lost") or self.engine is None:
            return
        try:
            await self.engine.ping(timeout=DAEMON_CHECK_SECONDS)
        except EngineError:
            self.post_message(DaemonLost())
        else:
            self.post_message(DaemonReconnected())

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity="information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None:
        # notifications carry engine errors and names users typed: never read them as markup
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=False)

    @on(EngineConnected)
    def _engine_connected(self, event: EngineConnected) -> None:
        self.engine = event.engine
        self.connection = event.mode
        self._engine_ready.set()

    @on(EngineFailed)
    def _engine_failed(self, event: EngineFailed) -> None:
        self.connection_error = event.error
        self.connection = "failed"
        self.notify(event.error, title="No engine", severity="error", timeout=10)

    @on(DaemonLost)
    def _daemon_lost(self) -> None:
        if self.connection != "lost":
            self.connection = "lost"
            self.notify(
                "The daemon stopped answering; reconnecting…",
                title="Daemon lost",
                severity="warning",
            )

    @on(DaemonReconnected)
    def _daemon_back(self) -> None:
        if self.connection == "lost":
            self.connection = "remote"
            self.notify("Attached to the daemon again.", title="Reconnected")

    async def wait_engine(self) -> Engine:
        """The engine, once connected (screens call this from their workers)."""
        await self._engine_ready.wait()
        assert self.engine is not None
        return self.engine

    async def save_preferences(self) -> None:
        await asyncio.to_thread(save_preferences, self.settings.settings_file, self.prefs)

    @on(DefaultModelChanged)
    @work(exclusive=True, group="default-model")
    async def _default_model_changed(self, event: DefaultModelChanged) -> None:
        self.prefs.default_model = event.name
        await self.save_preferences()
        engine = await self.wait_engine()
        try:
            await engine.set_default_model(event.name)
        except EngineError as exc:
            self.notify(exc.message, title="Default model not set", severity="error")
            return
        self.notify(f"{event.name} is now the default model")

    # ---------------------------------------------------------------- navigation

    @on(ChatRequested)
    def _chat_requested(self, event: ChatRequested) -> None:
        self.chat_model = event.model
        self.switch_mode("chat")

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            self.screen.dismiss()
            return
        title = next((t for m, t, _ in PAGES if m == self.current_mode), "")
        self.push_screen(HelpScreen(PAGES, title))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        for command in super().get_system_commands(screen):
            if command.title != "Keys":  # Textual's key panel: the help screen lists more
                yield command
        yield SystemCommand(
            "Help: keys of every screen", "Every key of every screen (? or F9)", self.action_help
        )
        for mode, title, key in PAGES:
            yield SystemCommand(
                f"Go to {title}",
                f"Switch to the {title} screen ({key.upper()})",
                lambda mode=mode: self.switch_mode(mode),
            )
        # every action of the screen's footer, so the palette finds it by name
        for binding in screen.BINDINGS:
            if isinstance(binding, Binding) and binding.show and binding.description:
                key = binding.key.split(",")[0]
                yield SystemCommand(
                    binding.description,
                    f"{screen.__class__.__name__[:-6]} ({key})",
                    partial(screen.run_action, binding.action),
                )

    async def action_quit(self) -> None:
        self.exit()

    async def on_unmount(self) -> None:
        if self.serving:
            await self.daemon.stop()
        elif self.owns_engine and self.engine is not None:
            await self.engine.close()


def run_app(
    mode: str = "dashboard",
    model: str | None = None,
    engine: Engine | None = None,
    *,
    settings: Settings | None = None,
    attach_only: bool = False,
) -> None:
    """Run the TUI in this terminal until the user quits.

    ``mode`` is the first screen ("dashboard" or "chat", …), ``model`` the model Chat starts
    with, ``engine`` an engine to use instead of attaching to a daemon or starting one.
    """
    MullamaApp(settings, engine=engine, mode=mode, model=model, attach_only=attach_only).run()
