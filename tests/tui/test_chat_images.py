"""Chat attaches images by path (``/image PATH``), against the real engine with the tiny
random-weight Gemma 3 vision pair: the image goes with the next message, reaches the model,
stays with its turn on disk; a missing file or a model without a projector says why."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from textual.widgets import Input

from mullama.engine.local import LocalEngine
from mullama.tui.app import MullamaApp
from mullama.tui.widgets.image_attach import AttachmentsLabel, attach_path
from tests.gguf_fixtures import build_vision
from tests.helpers import GEMMA_TEMPLATE

from .conftest import SIZE, wait_for
from .test_chat import last_reply, model_picked, send

pytestmark = pytest.mark.slow


def test_the_image_command_is_recognised():
    assert attach_path("/image cat.png") == "cat.png"
    assert attach_path('/image "my cat.png"') == "my cat.png"
    assert attach_path("/image") == ""
    assert attach_path("/images are nice") is None
    assert attach_path("describe /image x") is None


@pytest.fixture
async def vision_engine(settings, tmp_path):
    model, mmproj = build_vision(tmp_path / "pair")
    engine = LocalEngine(settings)
    params = f'TEMPLATE """{GEMMA_TEMPLATE}"""\nPARAMETER temperature 0\nPARAMETER num_ctx 512\n'
    await engine.create_model("tiny-vision", f"FROM {model}\nVISION_PROJECTOR {mmproj}\n{params}")
    await engine.create_model("tiny-text", f"FROM {model}\n{params}")
    yield engine
    await engine.close()


def picture(tmp_path) -> str:
    pixels = np.random.default_rng(1).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    path = tmp_path / "cat.png"
    Image.fromarray(pixels, "RGB").save(path, "PNG")
    return str(path)


async def test_an_attached_image_goes_with_the_next_message(vision_engine, settings, tmp_path):
    app = MullamaApp(settings, engine=vision_engine, mode="chat", model="tiny-vision")
    app.prefs.max_tokens = 3
    async with app.run_test(size=SIZE) as pilot:
        await model_picked(pilot, "tiny-vision")
        await send(pilot, f"/image {picture(tmp_path)}")
        label = app.screen.query_one(AttachmentsLabel)
        assert label.display and "cat.png" in str(label.render())
        assert app.screen.query_one("#prompt", Input).value == ""
        await send(pilot, "describe")
        reply = last_reply(app)
        await wait_for(pilot, lambda: reply.turn.stats, what="reply finished")
        assert "error" not in reply.turn.stats
        assert not label.display
        runner = vision_engine.manager.loaded["tiny-vision:latest"].runner
        assert runner.vision.images_decoded == 1
        await pilot.pause(0.2)
    saved = json.loads(next(settings.conversations_dir.glob("*.json")).read_text())
    user = saved["turns"][0]
    assert user["content"] == "describe" and user["image_names"] == ["cat.png"]
    assert len(user["images"]) == 1


async def test_attaching_fails_clearly(vision_engine, settings, tmp_path):
    app = MullamaApp(settings, engine=vision_engine, mode="chat", model="tiny-text")
    app.prefs.max_tokens = 3
    async with app.run_test(size=SIZE) as pilot:
        await model_picked(pilot, "tiny-text")
        await send(pilot, f"/image {tmp_path / 'missing.png'}")
        await pilot.pause()
        notes = [n.message for n in app._notifications]
        assert any("cannot read" in n and "missing.png" in n for n in notes)
        assert not app.screen.query_one(AttachmentsLabel).display
        await send(pilot, f"/image {picture(tmp_path)}")
        await send(pilot, "describe")
        reply = last_reply(app)
        await wait_for(pilot, lambda: reply.turn.stats, what="reply finished")
        assert "does not accept images (no vision projector)" in reply.turn.stats
