"""Effective defaults from the real test model's Modelfile (the FakeEngine versions:
test_help_and_footer.py; the serve Dashboard's log pane with a real daemon on a terminal:
tests/cli/test_serve_dashboard.py)."""

from __future__ import annotations

import pytest
from textual.widgets import Input

from mullama.tui.app import MullamaApp
from mullama.tui.widgets.conversation_options import ConversationOptions

from .conftest import wait_for

pytestmark = pytest.mark.slow

SIZES = [(80, 24), (120, 40)]


@pytest.mark.parametrize("size", SIZES)
async def test_options_show_the_real_models_parameters_and_the_engines_defaults(
    engine, settings, size
):
    # the test model's Modelfile: PARAMETER temperature 0, nothing for top_p or num_predict
    app = MullamaApp(settings, engine=engine, mode="chat", model="gemma:latest")
    async with app.run_test(size=size) as pilot:
        await wait_for(pilot, lambda: app.screen.current.model == "gemma:latest", what="model")
        await pilot.press("ctrl+o")
        await wait_for(pilot, lambda: isinstance(app.screen, ConversationOptions), what="dialog")
        fields = {n: app.screen.query_one(f"#opt-{n}", Input) for n in ("temperature", "top_p")}
        await wait_for(pilot, lambda: "(" in fields["temperature"].placeholder, what="shown")
        assert fields["temperature"].placeholder == "0 (model default)"
        assert fields["top_p"].placeholder == "0.9 (engine default)"
        max_tokens = app.screen.query_one("#opt-max_tokens", Input).placeholder
        assert max_tokens == "no limit (engine default)"
        await pilot.press("escape")


async def test_settings_show_the_default_models_real_parameters(engine, settings):
    app = MullamaApp(settings, engine=engine, mode="settings")
    app.prefs.default_model = "gemma:latest"
    async with app.run_test(size=(80, 24)) as pilot:
        temperature = app.screen.query_one("#set-temperature", Input)
        await wait_for(pilot, lambda: "(" in temperature.placeholder, what="shown")
        assert temperature.placeholder == "0 (model default)"
        assert app.screen.query_one("#set-top_k", Input).placeholder == "40 (engine default)"
