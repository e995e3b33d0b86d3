"""Loaded models on the real test model: embeddings, several models, keep_alive, memory budget."""

from __future__ import annotations

import asyncio
import math
import subprocess
import sys

import pytest

from mullama.config import load_settings
from mullama.engine.api import (
    ChatRequest,
    CompletionRequest,
    EmbedRequest,
    InsufficientMemory,
    InvalidRequest,
    Message,
    ModelLoadError,
    SamplingOptions,
)
from mullama.engine.durations import parse_keep_alive
from mullama.engine.local import LocalEngine
from tests.conftest import gemma_modelfile


def make_engine(root, **overrides) -> LocalEngine:
    settings = load_settings(
        env={},
        cache_dir=root / "cache",
        config_dir=root / "config",
        data_dir=root / "data",
        **overrides,
    )
    return LocalEngine(settings)


async def generate(engine, model: str, prompt: str = "1, 2, 3,", keep_alive=None) -> str:
    request = CompletionRequest(
        model, prompt, SamplingOptions(max_tokens=3, temperature=0), keep_alive=keep_alive
    )
    return "".join([getattr(e, "text", "") async for e in engine.complete(request)])


def cosine(a, b) -> float:
    return sum(x * y for x, y in zip(a, b))


@pytest.mark.slow
async def test_embeddings_are_unit_vectors_and_capture_meaning(tmp_path, test_model_path):
    engine = make_engine(tmp_path)
    try:
        await engine.create_model("gemma", gemma_modelfile(test_model_path))
        result = await engine.embed(
            EmbedRequest(
                "gemma",
                [
                    "The cat sat on the mat.",
                    "A cat was sitting on the rug.",
                    "Quarterly revenue grew by eight percent.",
                ],
            )
        )
        cat, paraphrase, finance = result.embeddings
        assert len(cat) == 640  # Gemma 3 270M's embedding length
        for vector in result.embeddings:
            assert math.isclose(math.sqrt(sum(v * v for v in vector)), 1.0, rel_tol=1e-5)
        assert cosine(cat, paraphrase) > cosine(cat, finance)
        assert result.prompt_tokens > 15
        short = await engine.embed(EmbedRequest("gemma", ["hello"], dimensions=64))
        assert len(short.embeddings[0]) == 64
        with pytest.raises(InvalidRequest):
            await engine.embed(EmbedRequest("gemma", []))
    finally:
        await engine.close()


@pytest.mark.slow
async def test_token_id_inputs_embed_exactly_those_tokens(tmp_path, test_model_path):
    engine = make_engine(tmp_path)
    try:
        await engine.create_model("gemma", gemma_modelfile(test_model_path))
        text = "The cat sat on the mat."
        ids = await engine.tokenize("gemma", text, parse_special=False)  # with its BOS
        result = await engine.embed(EmbedRequest("gemma", [text, ids, ids[1:]]))
        from_text, from_ids, without_bos = result.embeddings
        assert from_ids == pytest.approx(from_text, abs=1e-5)
        assert without_bos != pytest.approx(from_text, abs=1e-5)  # no BOS added to token ids
        assert result.prompt_tokens == 3 * len(ids) - 1
        for bad in ([[1, 10**9]], [[-1]], [[]], [[1.5]]):
            with pytest.raises(InvalidRequest):
                await engine.embed(EmbedRequest("gemma", bad))
    finally:
        await engine.close()


@pytest.mark.slow
async def test_two_models_loaded_at_once_and_explicit_unload(tmp_path, test_model_path):
    engine = make_engine(tmp_path)
    try:
        await engine.create_model("first", gemma_modelfile(test_model_path))
        await engine.create_model(
            "second", gemma_modelfile(test_model_path, 'SYSTEM "Be brief."\n')
        )
        a, b = await asyncio.gather(generate(engine, "first"), generate(engine, "second"))
        assert a == b and a.startswith(" 4,")
        names = sorted(m.name for m in await engine.running_models())
        assert names == ["first:latest", "second:latest"]
        await engine.unload_model("first")
        assert [m.name for m in await engine.running_models()] == ["second:latest"]
        # the totals count every request since start, of unloaded models too
        assert (await engine.status()).requests_total == 2
        await engine.unload_model("second")
        assert (await engine.status()).requests_total == 2
    finally:
        await engine.close()


@pytest.mark.slow
async def test_keep_alive_expiry_unloads(tmp_path, test_model_path):
    engine = make_engine(tmp_path)
    try:
        await engine.create_model("gemma", gemma_modelfile(test_model_path))
        await generate(engine, "gemma", keep_alive="1s")
        running = await engine.running_models()
        assert running and running[0].expires_at
        for _ in range(60):
            if not await engine.running_models():
                break
            await asyncio.sleep(0.1)
        assert await engine.running_models() == []
        await generate(engine, "gemma", keep_alive=0)  # 0 = unload right after the request
        await asyncio.sleep(0.5)
        assert await engine.running_models() == []
        await generate(engine, "gemma", keep_alive=-1)  # negative = forever
        running = await engine.running_models()
        assert running and running[0].expires_at == ""
    finally:
        await engine.close()


@pytest.mark.slow
async def test_loaded_model_cap_evicts_the_least_recently_used(tmp_path, test_model_path):
    engine = make_engine(tmp_path, max_loaded_models=1)
    try:
        await engine.create_model("first", gemma_modelfile(test_model_path))
        await engine.create_model("second", gemma_modelfile(test_model_path))
        await generate(engine, "first")
        await generate(engine, "second")
        assert [m.name for m in await engine.running_models()] == ["second:latest"]
    finally:
        await engine.close()


async def test_memory_refusal_gives_the_numbers(tmp_path, test_model_path):
    engine = make_engine(tmp_path, memory_headroom_mb=10**8)  # keep 100 TB free: nothing fits
    try:
        await engine.create_model("gemma", gemma_modelfile(test_model_path))
        with pytest.raises(InsufficientMemory) as err:
            await engine.load_model("gemma")
        message = err.value.message
        assert "GiB" in message and "gemma" in message and "needs about" in message
        assert await engine.running_models() == []
    finally:
        await engine.close()


@pytest.mark.slow
async def test_gpu_layers_report_what_the_build_offloads(tmp_path, test_model_path, caplog):
    from mullama.engine.rpc import can_offload

    engine = make_engine(tmp_path, gpu_layers=32)
    try:
        await engine.create_model("gemma", gemma_modelfile(test_model_path))
        loaded = await engine.load_model("gemma")
        if can_offload():  # a GPU (a build with only the RPC backend has none to offload to)
            assert 0 < loaded.gpu_layers <= 32
        else:  # this CPU build: nothing is offloaded, and the log says why
            assert loaded.gpu_layers == 0
            assert "no GPU backend" in caplog.text
        assert [m.gpu_layers for m in await engine.running_models()] == [loaded.gpu_layers]
    finally:
        await engine.close()


async def test_a_file_that_is_not_a_gguf_is_a_clear_error(tmp_path):
    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(b"this is not a model" * 100)
    engine = make_engine(tmp_path)
    try:
        with pytest.raises((ModelLoadError, InvalidRequest)) as err:
            await engine.load_model(str(bogus))
        assert "GGUF" in err.value.message or "gguf" in err.value.message
    finally:
        await engine.close()


@pytest.mark.parametrize(
    "value,seconds",
    [
        (None, 300.0),
        ("5m", 300.0),
        ("1h30m", 5400.0),
        ("300ms", 0.3),
        (42, 42.0),
        ("42", 42.0),
        (0, 0.0),
        ("0", 0.0),
        (-1, None),
        ("-1m", None),
        ("2.5s", 2.5),
    ],
)
def test_keep_alive_values(value, seconds):
    assert parse_keep_alive(value, 300.0) == seconds


@pytest.mark.parametrize("value", ["soon", "5 minutes", True, [1]])
def test_bad_keep_alive_values_are_rejected(value):
    with pytest.raises(InvalidRequest):
        parse_keep_alive(value, 300.0)


def test_engine_imports_no_ui_or_transport_library():
    code = (
        "import sys, mullama.engine, mullama.engine.local, mullama.engine.store; "
        "bad = [m for m in ('sanic', 'textual', 'pynng', 'rich') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_memory_estimate_counts_every_shard_of_a_split_model(tmp_path):
    from mullama.engine.manager import weights_bytes

    for i, size in enumerate((1000, 2000, 3000), start=1):
        (tmp_path / f"big-{i:05d}-of-00003.gguf").write_bytes(b"x" * size)
    assert weights_bytes(str(tmp_path / "big-00001-of-00003.gguf")) == 6000
    (tmp_path / "single.gguf").write_bytes(b"x" * 123)
    assert weights_bytes(str(tmp_path / "single.gguf")) == 123
    (tmp_path / "big-00002-of-00003.gguf").unlink()
    with pytest.raises(ModelLoadError, match="big-00002-of-00003.gguf is missing"):
        weights_bytes(str(tmp_path / "big-00001-of-00003.gguf"))


@pytest.mark.slow
async def test_recreating_a_loaded_model_serves_the_new_definition(tmp_path, test_model_path):
    from tests.helpers import GEMMA_MODELFILE, GEMMA_TEMPLATE

    def definition(template: str, num_ctx: int = 2048) -> str:
        text = GEMMA_MODELFILE.format(path=test_model_path, template=template)
        return text.replace("num_ctx 2048", f"num_ctx {num_ctx}")

    async def prompt_tokens() -> int:
        request = ChatRequest("g", [Message("user", "Hi")], SamplingOptions(max_tokens=1))
        return [e async for e in engine.chat(request)][-1].usage.prompt_tokens

    engine = make_engine(tmp_path)
    try:
        await engine.create_model("g", definition(GEMMA_TEMPLATE))
        before = await prompt_tokens()
        [loaded] = await engine.running_models()
        # a new TEMPLATE: the loaded model stays loaded and the next request renders the new one
        await engine.create_model("g", definition("Preamble words here. " + GEMMA_TEMPLATE))
        assert await prompt_tokens() > before
        [same] = await engine.running_models()
        assert same.loaded_at == loaded.loaded_at
        # a new context size needs a new load: the idle model is loaded again with it
        await engine.create_model("g", definition(GEMMA_TEMPLATE, num_ctx=1024))
        assert await prompt_tokens() == before
        [again] = await engine.running_models()
        assert again.context_length == 1024 and again.loaded_at != loaded.loaded_at
    finally:
        await engine.close()
