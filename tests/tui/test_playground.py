"""Playground against a real daemon's HTTP APIs (OpenAI, Anthropic, Ollama dialects)."""

from __future__ import annotations

import json

import pytest
from textual.widgets import Label, Log, Select, Static, Switch, TextArea

from mullama.config import load_settings
from mullama.tui.app import MullamaApp

from .conftest import SIZE, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def set_body(app, **changes) -> None:
    area = app.screen.query_one("#pg-json", TextArea)
    body = json.loads(area.text)
    body.update(changes)
    area.text = json.dumps(body, indent=2)


@pytest.mark.parametrize(
    "api, marker",
    [("openai", "data: "), ("ollama", '"done"'), ("anthropic", "event: message_stop")],
)
async def test_playground_streams_a_raw_response(daemon, api, marker):
    app = MullamaApp(load_settings(env=daemon.env), mode="playground")
    async with app.run_test(size=SIZE) as pilot:
        model = app.screen.query_one("#pg-model", Select)
        await wait_for(pilot, lambda: isinstance(model.value, str), what="models listed")
        model.value = "gemma:latest"
        app.screen.query_one("#pg-api", Select).value = api
        await pilot.pause(0.2)
        tokens_field = "max_tokens" if api != "ollama" else "options"
        set_body(app, **{tokens_field: 8 if api != "ollama" else {"num_predict": 8}})
        curl = str(app.screen.query_one("#pg-curl", Static).render())
        assert daemon.url in curl and '"stream": true' in curl
        await pilot.press("ctrl+r")
        status = app.screen.query_one("#pg-status", Label)
        await wait_for(
            pilot,
            lambda: " s" in str(status.render()).split("·")[-1],
            timeout=120,
            what="response finished",
        )
        assert "200 OK" in str(status.render())
        log = app.screen.query_one("#pg-log", Log)
        assert marker in "".join(log.lines)  # (long lines are folded: join without breaks)
        assert max(len(line) for line in log.lines) <= log.scrollable_content_region.width


async def test_playground_non_streaming_and_bad_json(daemon):
    app = MullamaApp(load_settings(env=daemon.env), mode="playground")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(
            pilot,
            lambda: isinstance(app.screen.query_one("#pg-model", Select).value, str),
            what="models listed",
        )
        app.screen.query_one("#pg-endpoint", Select).value = "/v1/models"
        await pilot.pause(0.1)
        await pilot.press("ctrl+r")
        status = app.screen.query_one("#pg-status", Label)
        await wait_for(pilot, lambda: "200 OK" in str(status.render()), what="models answered")
        await wait_for(
            pilot, lambda: app.screen.query_one("#pg-log", Log).line_count > 3, what="body shown"
        )
        assert '"object": "list"' in "".join(app.screen.query_one("#pg-log", Log).lines)
        app.screen.query_one("#pg-endpoint", Select).value = "/v1/chat/completions"
        app.screen.query_one("#pg-stream", Switch).value = False
        await pilot.pause(0.1)
        app.screen.query_one("#pg-json", TextArea).text = "{not json"
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: "not valid JSON" in str(status.render()), what="JSON error")


async def test_the_api_picker_shows_anthropic_on_one_line(daemon):
    app = MullamaApp(load_settings(env=daemon.env), mode="playground")
    async with app.run_test(size=(80, 24)) as pilot:
        picker = app.screen.query_one("#pg-api", Select)
        picker.value = "anthropic"
        await pilot.pause(0.2)
        label = picker.query_one("SelectCurrent #label")
        assert label.size.width >= len("Anthropic")  # not "Anthropi" / "c"
