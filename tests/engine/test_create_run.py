"""A created model's SYSTEM, MESSAGE, TEMPLATE and PARAMETERs take effect on the real model."""

from __future__ import annotations

import shutil

import pytest

from mullama.config import load_settings
from mullama.engine.api import (
    ChatRequest,
    Done,
    InvalidRequest,
    Message,
    ModelLoadError,
    SamplingOptions,
    TextDelta,
)
from mullama.engine.local import LocalEngine

pytestmark = pytest.mark.slow

TEMPLATE = (
    "{{ if .System }}[SYS] {{ .System }}\n{{ end }}{{ range .Messages }}"
    '{{ if eq .Role "user" }}Q: {{ .Content }}\n{{ else if eq .Role "assistant" }}A: {{ .Content }}\n'
    "{{ end }}{{ end }}A:"
)


def modelfile(path, extra: str = "") -> str:
    return f'''FROM {path}
TEMPLATE """{TEMPLATE}"""
SYSTEM """Answer briefly."""
MESSAGE user "What is two plus two?"
MESSAGE assistant "Four."
PARAMETER temperature 0
PARAMETER num_predict 6
PARAMETER stop "Q:"
{extra}'''


async def chat(engine, model: str, text: str, **options):
    events = [
        e
        async for e in engine.chat(
            ChatRequest(model, [Message("user", text)], SamplingOptions(**options))
        )
    ]
    done = events[-1]
    assert isinstance(done, Done)
    return "".join(e.text for e in events if isinstance(e, TextDelta)), done


async def test_created_model_applies_its_modelfile(tmp_path, test_model_path):
    engine = LocalEngine(
        load_settings(
            env={}, cache_dir=tmp_path / "c", config_dir=tmp_path / "g", data_dir=tmp_path / "d"
        )
    )
    try:
        await engine.create_model("brief", modelfile(test_model_path))
        text, done = await chat(engine, "brief", "What is the capital of France?", ignore_eos=True)
        model = engine.manager.loaded["brief:latest"].model
        prompt = model.detokenize(done.context[: done.usage.prompt_tokens])
        assert prompt == (
            "[SYS] Answer briefly.\nQ: What is two plus two?\nA: Four.\n"
            "Q: What is the capital of France?\nA:"
        )  # SYSTEM, MESSAGE, TEMPLATE
        assert done.usage.completion_tokens <= 6  # PARAMETER num_predict
        assert "Q:" not in text  # PARAMETER stop
        again, _ = await chat(engine, "brief", "What is the capital of France?", ignore_eos=True)
        assert again == text  # PARAMETER temperature 0
        _, short = await chat(engine, "brief", "Hello", max_tokens=2, ignore_eos=True)
        assert short.usage.completion_tokens == 2  # the request overrides the Modelfile
        own_system = [Message("system", "Be rude."), Message("user", "Hi")]
        events = [
            e
            async for e in engine.chat(
                ChatRequest("brief", own_system, SamplingOptions(max_tokens=1))
            )
        ]
        prompt = model.detokenize(events[-1].context[: events[-1].usage.prompt_tokens])
        assert prompt.startswith("[SYS] Be rude.\n") and "Answer briefly" not in prompt

        await engine.create_model("derived", "FROM brief\nPARAMETER num_predict 3\n")
        _, done = await chat(engine, "derived", "Hi", ignore_eos=True)
        assert done.usage.completion_tokens == 3  # inherits TEMPLATE/SYSTEM, overrides num_predict
        prompt = engine.manager.loaded["derived:latest"].model.detokenize(
            done.context[: done.usage.prompt_tokens]
        )
        assert prompt.startswith("[SYS] Answer briefly.\nQ: What is two plus two?")
    finally:
        await engine.close()


async def test_digest_is_checked_at_create_and_at_every_load(tmp_path, test_model_path):
    engine = LocalEngine(
        load_settings(
            env={}, cache_dir=tmp_path / "c", config_dir=tmp_path / "g", data_dir=tmp_path / "d"
        )
    )
    right = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
    try:
        with pytest.raises(InvalidRequest) as err:
            await engine.create_model(
                "pinned", modelfile(test_model_path, "DIGEST sha256:" + "0" * 64)
            )
        assert "0" * 64 in err.value.message and right in err.value.message
        copy = tmp_path / "copy.gguf"
        shutil.copyfile(test_model_path, copy)
        await engine.create_model("pinned", modelfile(copy, f"DIGEST sha256:{right}"))
        with open(copy, "ab") as f:  # the file changes after create
            f.write(b"tampered")
        with pytest.raises(ModelLoadError) as err:
            await engine.load_model("pinned")
        assert right in err.value.message and await engine.running_models() == []
    finally:
        await engine.close()
