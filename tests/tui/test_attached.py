"""The TUI attached to a real daemon over nng: chat streaming, Esc, losing and regaining it."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest
from textual.widgets import Input, Select, Static

from mullama.config import load_settings
from mullama.tui.app import MullamaApp
from mullama.tui.widgets.chat_message import ChatMessage
from tests.helpers import run_daemon, settings_env

from .conftest import SIZE, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def attached_app(env: dict, **kwargs) -> MullamaApp:
    return MullamaApp(load_settings(env=env), **kwargs)


async def test_attached_chat_streams_and_stops(daemon):
    app = attached_app(daemon.env, mode="chat", model="gemma")
    app.prefs.max_tokens = 1000
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.connection == "remote", what="attached")
        picker = app.screen.query_one("#model-picker", Select)
        await wait_for(pilot, lambda: picker.value == "gemma", what="model picked")
        prompt = app.screen.query_one("#prompt", Input)
        prompt.value = "Count from one to a hundred."
        prompt.focus()
        await pilot.press("enter")
        reply = app.screen.query(ChatMessage).last()
        await wait_for(pilot, lambda: len(reply.turn.content) > 5, what="streamed tokens")
        await pilot.press("escape")
        await wait_for(pilot, lambda: reply.turn.stats == "stopped", what="stopped")
        engine = await app.wait_engine()
        status = await engine.status()
        for _ in range(50):
            if status.requests_active == 0:
                break
            await pilot.pause(0.1)
            status = await engine.status()
        assert status.requests_active == 0


async def test_dashboard_shows_the_daemon(daemon):
    app = attached_app(daemon.env)
    async with app.run_test(size=SIZE) as pilot:
        info = app.screen.query_one("#engine-info", Static)
        await wait_for(pilot, lambda: "attached to the daemon" in str(info.render()), what="info")
        assert daemon.url in str(info.render())
        assert "attached to daemon" in str(app.screen.query_one("#connection").render())


async def test_losing_the_daemon_is_shown_and_recovered(tmp_path, test_model_path):
    env = settings_env(tmp_path)
    app = attached_app(env)
    with run_daemon(tmp_path, env=env) as first:
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.connection == "remote", what="attached")
            os.killpg(first.proc.pid, signal.SIGKILL)  # the daemon dies: no goodbye
            await asyncio.to_thread(first.proc.wait, 30)
            await wait_for(pilot, lambda: app.connection == "lost", what="lost shown")
            assert "reconnecting" in str(app.screen.query_one("#connection").render())
            with run_daemon(tmp_path, env=env):
                await wait_for(
                    pilot, lambda: app.connection == "remote", timeout=90, what="reconnected"
                )


async def test_attach_only_without_a_daemon_fails_cleanly(tmp_path):
    app = attached_app(settings_env(tmp_path), attach_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.connection == "failed", what="failure shown")
        assert "no engine" in str(app.screen.query_one("#connection").render())


async def test_serve_with_the_dashboard_runs_and_stops_the_daemon(tmp_path):
    """``mullama serve`` in a terminal: the daemon runs inside the app; quitting stops it."""
    import httpx

    from mullama.daemon import Daemon

    settings = load_settings(env=settings_env(tmp_path))
    daemon = Daemon(settings)
    app = MullamaApp(settings, daemon=daemon)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.connection == "serving", what="serving")
        async with httpx.AsyncClient() as client:
            health = await client.get(f"{settings.http_endpoint}/health")
        assert health.status_code == 200
        info = app.screen.query_one("#engine-info", Static)
        await wait_for(pilot, lambda: settings.http_endpoint in str(info.render()), what="endpoint")
        assert settings.pid_file.exists()
        await pilot.press("ctrl+q")
    assert not settings.pid_file.exists()


async def test_serve_with_the_dashboard_exits_1_when_the_daemon_cannot_start(tmp_path):
    from mullama.daemon import Daemon
    from mullama.engine.api import EngineError

    async def refuse() -> None:
        raise EngineError("a Mullama daemon is already running")

    settings = load_settings(env=settings_env(tmp_path))
    daemon = Daemon(settings)
    daemon.start = refuse
    app = MullamaApp(settings, daemon=daemon)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.return_code is not None, what="exit")
    assert app.return_code == 1


async def test_a_lost_daemon_is_noticed_anywhere_and_screens_recover(tmp_path, test_model_path):
    from tests.helpers import GEMMA_MODELFILE, GEMMA_TEMPLATE

    env = settings_env(tmp_path)
    app = attached_app(env, mode="models")
    with run_daemon(tmp_path, env=env) as first:
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.connection == "remote", what="attached")
            await app.engine.create_model(
                "gemma", GEMMA_MODELFILE.format(path=test_model_path, template=GEMMA_TEMPLATE)
            )
            os.killpg(first.proc.pid, signal.SIGKILL)
            await asyncio.to_thread(first.proc.wait, 30)
            # noticed on Models, without a visit to the Dashboard
            await wait_for(pilot, lambda: app.connection == "lost", what="lost shown")
            await pilot.press("f1", "l")
            await wait_for(
                pilot,
                lambda: any(n.title == "Cannot list models" for n in app._notifications),
                what="load refused with a reason",
            )
            assert app.is_running
            await pilot.press("f3")  # Chat opens while the daemon is away: no models yet
            with run_daemon(tmp_path, env=env):
                await wait_for(pilot, lambda: app.connection == "remote", timeout=90, what="back")
                picker = app.screen.query_one("#model-picker", Select)
                await wait_for(
                    pilot,
                    lambda: ("gemma:latest", "gemma:latest") in picker._options,
                    what="models listed again",
                )
