"""Embeddings within bounds: a bounded context computed a chunk at a time (the same vectors as
one pass), over-long inputs refused or truncated, the cost in the memory estimate, the context
freed, and streams on the model served while an embedding runs."""

from __future__ import annotations

import asyncio

import numpy as np
import psutil
import pytest

from mullama.config import load_settings
from mullama.engine import sampling
from mullama.engine.api import (
    ContextOverflow,
    Done,
    EmbedRequest,
    SamplingOptions,
    TextDelta,
)
from mullama.engine.embedding import (
    POOLING_CLS,
    POOLING_LAST,
    POOLING_MEAN,
    Embedder,
    EmbedJob,
    EmbedShape,
)
from mullama.engine.local import LocalEngine
from mullama.engine.manager import kv_cache_bytes, vocab_size
from mullama.engine.runner import Job, Runner, RunnerConfig

pytestmark = pytest.mark.slow

TEXT = "The quick brown fox jumps over the lazy dog, and the dog does not mind at all. "


def engine_with(root, **settings) -> LocalEngine:
    settings = {"context_size": 256, "num_parallel": 2, **settings}
    return LocalEngine(
        load_settings(
            env={}, cache_dir=root / "c", config_dir=root / "g", data_dir=root / "d", **settings
        )
    )


@pytest.fixture(scope="module")
async def eng(tmp_path_factory, test_model_path):
    engine = engine_with(tmp_path_factory.mktemp("embed-limits"), embed_max_tokens=96)
    await engine.load_model(str(test_model_path))
    engine.model = str(test_model_path)
    yield engine
    await engine.close()


async def test_an_over_long_input_is_refused_with_both_lengths_unless_truncation_is_asked(eng):
    long_text = TEXT * 20  # several hundred tokens
    n = len(await eng.tokenize(eng.model, long_text, parse_special=False))
    with pytest.raises(ContextOverflow) as caught:
        await eng.embed(EmbedRequest(eng.model, ["short", long_text], truncate=False))
    error = caught.value
    assert error.status == 400 and error.param == "input"
    assert f"input[1] is {n} tokens" in error.message and "holds 96" in error.message
    cut = await eng.embed(EmbedRequest(eng.model, [long_text], truncate=True))
    assert cut.prompt_tokens == 96
    ids = await eng.tokenize(eng.model, long_text, parse_special=False)
    same = await eng.embed(EmbedRequest(eng.model, [ids[:96]], truncate=False))
    assert same.embeddings[0] == pytest.approx(cut.embeddings[0], abs=1e-6)
    with pytest.raises(ContextOverflow):
        await eng.embed(EmbedRequest(eng.model, [ids], truncate=False))


# ---------------------------------------------------------------- chunks give the same vectors


# one token's embedding (last, CLS) varies more with how the input is split than a mean does
@pytest.mark.parametrize(
    ("pooling", "close"), [(POOLING_MEAN, 0.9999), (POOLING_LAST, 0.998), (POOLING_CLS, 0.998)]
)
def test_chunked_embedding_matches_one_pass_over_the_whole_input(model, pooling, close):
    tokens = model.tokenize(TEXT * 20, parse_special=False)[:200]
    assert len(tokens) == 200  # three chunks of 64 and a shorter one

    def embed(shape: EmbedShape) -> np.ndarray:
        embedder = Embedder(model, shape, threads=2)
        job = EmbedJob([tokens, tokens[:10]])
        try:
            while not embedder.advance(job):
                pass
        finally:
            embedder.close()
        return np.array(job.future.result())

    chunked = embed(EmbedShape(256, 64, True, pooling))
    whole = embed(EmbedShape(256, 256, False, pooling))  # pooled by llama.cpp, in one pass
    for a, b in zip(chunked, whole):
        assert float(a @ b) > close
    if pooling != POOLING_CLS:  # (a causal model's first token does not see the rest)
        assert float(chunked[0] @ chunked[1]) < 0.999  # the two inputs are told apart


# ---------------------------------------------------------------- memory


async def test_the_embedding_context_is_counted_and_its_real_cost_fits_the_estimate(
    tmp_path, test_model_path
):
    from mullama.engine.embedding import embed_context_bytes, embed_shape
    from mullama.engine.local import _read_metadata

    meta = _read_metadata(str(test_model_path))
    assert vocab_size(meta) == 262144
    small, large = [
        engine_with(tmp_path / str(n), embed_max_tokens=n, context_size=1024) for n in (64, 1024)
    ]
    try:
        small_info = await small.load_model(str(test_model_path))
        await small.close()
        large_info = await large.load_model(str(test_model_path))
        shape = embed_shape(meta, 1024, 1024, 262144)
        cost = embed_context_bytes(meta, shape, 262144, kv_cache_bytes(meta, shape.n_ctx))
        # the longer embedding context is in the estimate
        assert large_info.size - small_info.size == cost - embed_context_bytes(
            meta,
            embed_shape(meta, 1024, 64, 262144),
            262144,
            kv_cache_bytes(meta, 64),
        )
        process = psutil.Process()
        before = process.memory_info().rss
        tokens = large.manager.loaded[large_info.name].model.tokenize(TEXT * 60)[:1024]
        result = await large.embed(EmbedRequest(str(test_model_path), [tokens]))
        assert result.prompt_tokens == 1024
        # one pass over 1,024 tokens took 2.2 GB (2 MiB of logits a token); chunks stay within
        assert process.memory_info().rss - before < cost
    finally:
        await large.close()


async def test_unloading_frees_the_embedding_context(tmp_path, test_model_path):
    engine = engine_with(tmp_path)
    try:
        await engine.load_model(str(test_model_path))
        runner = next(iter(engine.manager.loaded.values())).runner
        await engine.embed(EmbedRequest(str(test_model_path), ["hello"]))
        embedder = runner._embedder
        assert embedder is not None and embedder.ctx.ptr is not None
        await engine.unload_model(str(test_model_path))
        assert embedder.ctx.ptr is None and embedder.batch.raw is None
    finally:
        await engine.close()


# ---------------------------------------------------------------- sharing the runner


@pytest.fixture
def runner(model):
    r = Runner(model, RunnerConfig(n_ctx=512, n_parallel=2, threads=2, embed_max_tokens=512))
    yield r
    r.stop()


async def test_a_stream_keeps_generating_while_a_long_embedding_runs(runner):
    tokens = runner.model.tokenize(TEXT * 30, parse_special=False)[:512]
    assert runner.embed_shape.n_ubatch == 64  # so the embedding takes 8 chunks
    loop = asyncio.get_running_loop()
    opts = sampling.merge(
        sampling.DEFAULTS, SamplingOptions(temperature=0, max_tokens=400, ignore_eos=True)
    )
    job = Job(runner.model.tokenize("Once upon a time"), opts, loop, asyncio.Queue())
    runner.submit(job)
    assert isinstance(await job.queue.get(), TextDelta)  # generating
    embedding = asyncio.wrap_future(runner.submit_embed([tokens]).future)
    during = 0
    while not embedding.done():
        getter = asyncio.ensure_future(job.queue.get())
        await asyncio.wait([getter, embedding], return_when=asyncio.FIRST_COMPLETED)
        if getter.done():
            during += isinstance(getter.result(), TextDelta)
        else:
            getter.cancel()
    assert len((await embedding)[0]) == runner.model.n_embd
    # a decode step between every two chunks (the runner used to embed all of it at once)
    assert during >= 7
    job.cancel()
    while not isinstance(await job.queue.get(), Done):
        pass


async def test_an_abandoned_embedding_is_dropped(runner):
    tokens = runner.model.tokenize(TEXT * 30, parse_special=False)[:512]
    job = runner.submit_embed([tokens])
    job.cancel()
    for _ in range(100):  # each call runs between two iterations of the runner's loop
        if await asyncio.wrap_future(runner.call(lambda: len(runner._embeds))) == 0:
            break
    assert runner._embeds == type(runner._embeds)()
    assert job.future.exception() is not None
