"""The Modelfiles shipped in configs/modelfiles parse, round-trip and declare what they support."""

from pathlib import Path

import pytest

from mullama.modelfile import parse_modelfile, render_prompt, to_modelfile

MODELFILES = sorted(
    (Path(__file__).resolve().parents[2] / "configs" / "modelfiles").glob("*.Modelfile")
)


def test_every_family_is_bundled():
    assert {path.stem for path in MODELFILES} == {
        "qwen2.5",
        "llama3",
        "gemma",
        "phi3",
        "mistral",
        "deepseek-r1",
    }


@pytest.mark.parametrize("path", MODELFILES, ids=lambda path: path.stem)
def test_bundled_modelfile_parses_round_trips_and_renders(path):
    spec = parse_modelfile(path.read_text())
    assert parse_modelfile(to_modelfile(spec)) == spec
    assert spec.template and spec.parameters["stop"]
    prompt = render_prompt(
        spec.template, system=spec.system, messages=[{"role": "user", "content": "ping"}]
    )
    assert "ping" in prompt


def test_thinking_and_tool_settings():
    specs = {path.stem: parse_modelfile(path.read_text()) for path in MODELFILES}
    assert specs["deepseek-r1"].thinking == {"start": "<think>", "end": "</think>", "enabled": True}
    assert specs["deepseek-r1"].capabilities["thinking"] is True
    assert specs["qwen2.5"].toolformat["style"] == "qwen"
    assert specs["qwen2.5"].capabilities["tools"] is True
    assert specs["gemma"].from_ref == "gemma3:270m"
    assert specs["gemma"].parameters["stop"] == ["<end_of_turn>"]
