"""`mullama run MODEL PROMPT --image FILE` (repeatable) against the session daemon, with the
tiny random-weight Gemma 3 vision pair created through `mullama create`."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from tests.gguf_fixtures import build_vision
from tests.helpers import GEMMA_TEMPLATE

from .conftest import mullama

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

IMAGE_CELLS = 18  # 16 image tokens + start and end of image


def write_image(path, seed: int) -> str:
    pixels = np.random.default_rng(seed).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    Image.fromarray(pixels, "RGB").save(path, "PNG")
    return str(path)


def prompt_tokens(env, *args: str) -> int:
    result = mullama(env, "run", "cli-vision", "describe", "-n", "2", "--json", *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["usage"]["prompt_tokens"]


def test_run_sends_each_image(daemon_env, tmp_path):
    model, mmproj = build_vision(tmp_path / "pair")
    modelfile = tmp_path / "Modelfile"
    modelfile.write_text(
        f'FROM {model}\nVISION_PROJECTOR {mmproj}\nTEMPLATE """{GEMMA_TEMPLATE}"""\n'
        "PARAMETER temperature 0\nPARAMETER num_ctx 512\n"
    )
    created = mullama(daemon_env, "create", "cli-vision", "-f", str(modelfile))
    assert created.returncode == 0, created.stderr
    a, b = write_image(tmp_path / "a.png", 1), write_image(tmp_path / "b.png", 2)
    text_only = prompt_tokens(daemon_env)
    assert prompt_tokens(daemon_env, "--image", a) == text_only + IMAGE_CELLS
    assert prompt_tokens(daemon_env, "--image", a, "--image", b) == text_only + 2 * IMAGE_CELLS


def test_run_image_errors(daemon_env, tmp_path):
    missing = mullama(daemon_env, "run", "gemma", "describe", "--image", str(tmp_path / "no.png"))
    assert missing.returncode == 2 and "cannot read the image" in missing.stderr
    text = tmp_path / "notes.txt"
    text.write_text("not a picture")
    refused = mullama(daemon_env, "run", "gemma", "describe", "--image", str(text))
    assert refused.returncode == 1
    assert "does not accept images (no vision projector)" in refused.stderr
