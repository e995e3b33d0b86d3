"""Dedicated embedding and reranking models on the tiny random-weight fixtures
(tests/gguf_fixtures.py): the kind a GGUF declares, capabilities, vectors and their pooling,
normalisation, batching (one request's inputs and concurrent requests in one decode),
over-long inputs refused or truncated, rerank order, top_n and prompt format, the Qwen3
reranker path, the errors, and the memory an embedding model is counted for. The weights are
random: the numbers are checked against llama.cpp itself, never for meaning."""

from __future__ import annotations

import asyncio
import threading

import llama_cpp
import numpy as np
import pytest

from mullama.engine.api import (
    ChatRequest,
    CompletionRequest,
    ContextOverflow,
    EmbedRequest,
    EngineError,
    InsufficientMemory,
    InvalidRequest,
    Message,
    ModelNotFound,
    RerankRequest,
)
from mullama.engine.embedder import Embedder, memory_estimate
from mullama.engine.gguf_info import EMBEDDING, GENERATION, RERANK, model_kind, read_header
from mullama.engine.llm import Batch, Context, ContextParams, Model
from tests.gguf_fixtures import build_bert, build_qwen3_reranker

N_EMBD = 32
WORDS = "the cat sat on the mat and the dog sat on the cat"  # 13 tokens + [CLS] and [SEP]
DOCS = ["the cat sat on the mat", "paris is the capital of france", "hello world", "a dog"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("encoders")
    return {
        "mean": build_bert(d / "mean.gguf", pooling="mean"),
        "cls": build_bert(d / "cls.gguf", pooling="cls"),
        "last": build_bert(d / "last.gguf", pooling="last"),
        "rerank": build_bert(d / "rerank.gguf", reranker=True),
        "qwen3": build_qwen3_reranker(d / "qwen3-reranker.gguf"),
    }


@pytest.fixture
async def eng(settings, files):
    from mullama.engine.local import LocalEngine

    engine = LocalEngine(settings)
    for name, path in files.items():
        await engine.create_model(name, f"FROM {path}\n")
    await engine.create_model("short", f"FROM {files['mean']}\nPARAMETER num_ctx 16\n")
    await engine.create_model("short-rerank", f"FROM {files['rerank']}\nPARAMETER num_ctx 16\n")
    yield engine
    await engine.close()


def unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


def token_vectors(path, tokens: list[int]) -> np.ndarray:
    """Every token's output embedding, from a context that pools nothing."""
    model = Model(str(path))
    ctx = Context(model, ContextParams(n_ctx=64, n_batch=64, embeddings=True, pooling=0))
    batch = Batch(64)
    try:
        for pos, token in enumerate(tokens):
            batch.add(token, pos, 0, True)
        ctx.decode(batch)
        rows = [llama_cpp.llama_get_embeddings_ith(ctx.ptr, i)[:N_EMBD] for i in range(len(tokens))]
        return np.array(rows)
    finally:
        batch.close()
        ctx.close()
        model.close()


# ---------------------------------------------------------------- what a model is


def test_the_kind_comes_from_the_architecture_the_pooling_and_a_classifier_head():
    assert model_kind({"general.architecture": "bert"}) == EMBEDDING
    assert model_kind({"general.architecture": "nomic-bert", "nomic-bert.pooling_type": 1}) == (
        EMBEDDING
    )
    assert model_kind({"general.architecture": "bert", "bert.pooling_type": 4}) == RERANK
    labels = {"general.architecture": "bert", "bert.classifier.output_labels": ["LABEL_0"]}
    assert model_kind(labels) == RERANK
    assert model_kind({"general.architecture": "jina-bert-v2"}, ["cls.output.weight"]) == RERANK
    assert model_kind({"general.architecture": "qwen3", "qwen3.pooling_type": 4}) == RERANK
    assert model_kind({"general.architecture": "qwen3", "qwen3.pooling_type": 3}) == EMBEDDING
    assert model_kind({"general.architecture": "qwen3"}, ["cls.output.weight"]) == GENERATION
    assert model_kind({"general.architecture": "gemma3"}) == GENERATION


def test_the_fixture_files_read_as_their_kind(files):
    kinds = {name: read_header(path).summary()["model_kind"] for name, path in files.items()}
    assert kinds == {
        "mean": EMBEDDING,
        "cls": EMBEDDING,
        "last": EMBEDDING,
        "rerank": RERANK,
        "qwen3": RERANK,
    }


async def test_capabilities_say_embedding_or_rerank_and_never_completion(eng):
    caps = {m.name: m.capabilities for m in await eng.list_models()}
    for name in ("mean", "cls", "last"):
        assert caps[f"{name}:latest"]["embedding"] is True
        assert caps[f"{name}:latest"]["completion"] is False
        assert caps[f"{name}:latest"]["rerank"] is False
    for name in ("rerank", "qwen3"):
        assert caps[f"{name}:latest"]["rerank"] is True
        assert caps[f"{name}:latest"]["completion"] is False
        assert caps[f"{name}:latest"]["embedding"] is False
    shown = await eng.show_model("rerank")
    assert shown.info.capabilities["rerank"] is True


# ---------------------------------------------------------------- embeddings


async def test_one_unit_vector_per_input_counting_every_token(eng):
    result = await eng.embed(EmbedRequest("mean", ["the cat", "hello world", ""]))
    assert result.model == "mean:latest"
    assert [len(v) for v in result.embeddings] == [N_EMBD] * 3
    for v in result.embeddings:
        assert np.linalg.norm(v) == pytest.approx(1.0, abs=1e-5)
    tokens = [
        await eng.tokenize("mean", t, parse_special=False) for t in ["the cat", "hello world", ""]
    ]
    assert result.prompt_tokens == sum(len(t) for t in tokens) == 4 + 4 + 2


@pytest.mark.parametrize("pooling", ["mean", "cls", "last"])
async def test_the_pooling_the_gguf_declares_is_used(eng, files, pooling):
    tokens = await eng.tokenize(pooling, WORDS, parse_special=False)
    rows = token_vectors(files[pooling], tokens)
    expected = {"mean": rows.mean(axis=0), "cls": rows[0], "last": rows[-1]}[pooling]
    result = await eng.embed(EmbedRequest(pooling, [WORDS]))
    assert np.allclose(result.embeddings[0], unit(expected), atol=1e-4)


async def test_token_ids_are_embedded_as_given_and_dimensions_shorten(eng):
    ids = await eng.tokenize("mean", "the cat", parse_special=False)
    by_ids = await eng.embed(EmbedRequest("mean", [ids]))
    by_text = await eng.embed(EmbedRequest("mean", ["the cat"]))
    assert np.allclose(by_ids.embeddings[0], by_text.embeddings[0], atol=1e-6)
    short = await eng.embed(EmbedRequest("mean", ["the cat"], dimensions=8))
    assert len(short.embeddings[0]) == 8
    assert np.allclose(short.embeddings[0], unit(by_text.embeddings[0][:8]), atol=1e-5)


async def test_one_requests_inputs_go_through_one_decode_and_match_alone(eng):
    texts = ["the cat sat", "hello world", "paris is the capital of france", "a", "the dog"]
    entry = eng.manager.loaded.get("mean:latest") or await eng.manager.acquire("mean")
    eng.manager.release(entry)
    embedder = entry.runner
    assert isinstance(embedder, Embedder)
    before = embedder.decodes
    together = await eng.embed(EmbedRequest("mean", texts))
    assert embedder.decodes == before + 1
    assert embedder.last_batch_size == together.prompt_tokens
    for text, vector in zip(texts, together.embeddings, strict=True):
        alone = await eng.embed(EmbedRequest("mean", [text]))
        assert np.allclose(alone.embeddings[0], vector, atol=1e-5)


async def test_concurrent_requests_are_embedded_together(eng):
    await eng.load_model("mean")
    embedder = eng.manager.loaded["mean:latest"].runner
    gate = threading.Event()
    embedder.call(gate.wait)  # holds the thread between decodes while both requests queue
    first = asyncio.ensure_future(eng.embed(EmbedRequest("mean", ["the cat", "a dog"])))
    second = asyncio.ensure_future(eng.embed(EmbedRequest("mean", ["hello world"])))
    while embedder.queued < 2:
        await asyncio.sleep(0.01)
    before = embedder.decodes
    gate.set()
    a, b = await asyncio.gather(first, second)
    assert embedder.decodes == before + 1
    assert embedder.last_batch_size == a.prompt_tokens + b.prompt_tokens
    assert len(a.embeddings) == 2 and len(b.embeddings) == 1


async def test_more_sequences_than_a_decode_holds_take_several(settings, files):
    from mullama.engine.local import LocalEngine

    settings.embed_model_sequences = 3
    engine = LocalEngine(settings)
    try:
        await engine.create_model("m", f"FROM {files['mean']}\n")
        result = await engine.embed(EmbedRequest("m", [f"the {w}" for w in DOCS * 2]))
        embedder = engine.manager.loaded["m:latest"].runner
        assert len(result.embeddings) == 8
        assert embedder.decodes == 3  # 3 + 3 + 2
        assert engine.manager.loaded["m:latest"].info().num_parallel == 3
    finally:
        await engine.close()


async def test_an_over_long_input_is_refused_with_both_counts_or_cut_keeping_its_end(eng):
    long = WORDS + " and the cat sat"  # 17 words: 19 tokens
    with pytest.raises(ContextOverflow) as info:
        await eng.embed(EmbedRequest("short", [long], truncate=False))
    assert "input[0] is 19 tokens but short:latest embeds at most 16" in info.value.message
    assert info.value.details == {"prompt_tokens": 19, "context_length": 16}
    cut = await eng.embed(EmbedRequest("short", [long], truncate=True))
    assert cut.prompt_tokens == 16
    ids = await eng.tokenize("short", long, parse_special=False)
    same = await eng.embed(EmbedRequest("short", [ids[:15] + ids[-1:]]))
    assert np.allclose(cut.embeddings[0], same.embeddings[0], atol=1e-6)


# ---------------------------------------------------------------- rerank


def pair_tokens(model: Model, query: str, doc: str) -> list[int]:
    """[CLS] query [SEP] [SEP] document [SEP]: BOS query EOS SEP document EOS, as llama-server's
    format_prompt_rerank builds it for this vocabulary (it adds BOS, EOS and SEP)."""
    q = model.tokenize(query, add_special=False, parse_special=False)
    d = model.tokenize(doc, add_special=False, parse_special=False)
    return [model.bos, *q, model.eos, llama_cpp.llama_vocab_sep(model.vocab), *d, model.eos]


def direct_score(path, tokens: list[int]) -> float:
    model = Model(str(path))
    ctx = Context(model, ContextParams(n_ctx=64, n_batch=64, embeddings=True, pooling=4))
    batch = Batch(64)
    try:
        for pos, token in enumerate(tokens):
            batch.add(token, pos, 0, True)
        ctx.decode(batch)
        return float(llama_cpp.llama_get_embeddings_seq(ctx.ptr, 0)[0])
    finally:
        batch.close()
        ctx.close()
        model.close()


async def test_documents_come_back_best_first_with_llama_cpps_raw_scores(eng, files):
    result = await eng.rerank(RerankRequest("rerank", "where is the cat", DOCS))
    assert result.model == "rerank:latest"
    assert sorted(r.index for r in result.results) == [0, 1, 2, 3]
    scores = [r.relevance_score for r in result.results]
    assert scores == sorted(scores, reverse=True)
    model = Model(str(files["rerank"]))
    try:
        pairs = [pair_tokens(model, "where is the cat", d) for d in DOCS]
    finally:
        model.close()
    for r in result.results:
        assert r.relevance_score == pytest.approx(
            direct_score(files["rerank"], pairs[r.index]), abs=1e-4
        )
    assert result.prompt_tokens == sum(len(p) for p in pairs)


async def test_top_n_keeps_the_best(eng):
    every = await eng.rerank(RerankRequest("rerank", "the cat", DOCS))
    best = await eng.rerank(RerankRequest("rerank", "the cat", DOCS, top_n=2))
    assert best.results == every.results[:2]
    assert (await eng.rerank(RerankRequest("rerank", "the cat", DOCS, top_n=99))).results == (
        every.results
    )


async def test_one_requests_documents_are_scored_in_one_decode(eng):
    await eng.load_model("rerank")
    embedder = eng.manager.loaded["rerank:latest"].runner
    before = embedder.decodes
    result = await eng.rerank(RerankRequest("rerank", "the cat", DOCS))
    assert embedder.decodes == before + 1
    assert embedder.last_batch_size == result.prompt_tokens


async def test_the_qwen3_reranker_scores_through_its_template_as_probabilities(eng, files):
    result = await eng.rerank(RerankRequest("qwen3", "where is the cat", DOCS))
    assert len(result.results) == 4
    assert all(0.0 < r.relevance_score < 1.0 for r in result.results)  # softmax over yes/no
    embedder = eng.manager.loaded["qwen3:latest"].runner
    model = embedder.model
    q = embedder._text("where is the cat", "{query}")
    d = embedder._text(DOCS[0], "{document}")
    # the space the template puts before a text is tokenized with it, as in the whole prompt
    assert d == model.tokenize(" " + DOCS[0], add_special=False, parse_special=False)
    assert d != model.tokenize(" ", add_special=False) + model.tokenize(DOCS[0], add_special=False)
    tokens = embedder._pair(q, d)
    assert result.prompt_tokens == sum(
        len(embedder._pair(q, embedder._text(doc, "{document}"))) for doc in DOCS
    )
    text = model.detokenize(tokens, special=True)
    assert text.startswith("<|im_start|>system\nJudge whether")
    assert "<Query>: where is the cat\n<Document>: the cat sat on the mat<|im_end|>" in text
    assert text.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")
    assert tokens.count(model.tokenize("<|im_start|>", add_special=False)[0]) == 3


async def test_a_long_document_is_cut_or_refused_and_a_long_query_refused(eng):
    long = WORDS + " and the cat sat on the mat"
    cut = await eng.rerank(RerankRequest("short-rerank", "the cat", [long, "a dog"]))
    assert (
        cut.prompt_tokens == 16 + 8
    )  # the long pair cut to fit; [CLS] the cat [SEP] [SEP] a dog [SEP]
    with pytest.raises(ContextOverflow) as info:
        await eng.rerank(RerankRequest("short-rerank", "the cat", ["a dog", long], truncate=False))
    assert info.value.param == "documents[1]"
    assert (
        "documents[1] with the query is 26 tokens but short-rerank:latest scores at most 16"
        in info.value.message
    )
    assert info.value.details == {"prompt_tokens": 26, "context_length": 16}
    with pytest.raises(ContextOverflow) as info:
        await eng.rerank(RerankRequest("short-rerank", long, ["a dog"]))
    assert info.value.param == "query"


@pytest.mark.parametrize(
    ("request_", "param", "words"),
    [
        (RerankRequest("rerank", "q", []), "documents", "documents must not be empty"),
        (RerankRequest("rerank", "  ", ["a"]), "query", "query must not be empty"),
        (RerankRequest("rerank", "q", ["a"], top_n=0), "top_n", "top_n must be at least 1"),
        (RerankRequest("mean", "q", ["a"]), "model", "mean:latest is an embedding model"),
    ],
)
async def test_bad_rerank_requests_are_refused_naming_the_parameter(eng, request_, param, words):
    with pytest.raises(InvalidRequest) as info:
        await eng.rerank(request_)
    assert info.value.param == param and words in info.value.message


async def test_an_unknown_model_is_not_found(eng):
    with pytest.raises(ModelNotFound):
        await eng.rerank(RerankRequest("nope", "q", ["a"]))


# ---------------------------------------------------------------- what they cannot do


async def test_an_embedding_model_cannot_chat_or_generate(eng):
    chat = ChatRequest("mean", [Message("user", "hi")])
    with pytest.raises(InvalidRequest, match="mean:latest is an embedding model: it cannot chat"):
        async for _ in eng.chat(chat):
            pass
    with pytest.raises(InvalidRequest, match="it cannot generate text; use /v1/embeddings"):
        async for _ in eng.complete(CompletionRequest("mean", "hi")):
            pass
    with pytest.raises(InvalidRequest, match="embedding model"):
        await eng.count_chat_tokens(chat)


async def test_a_reranker_cannot_chat_or_embed(eng):
    with pytest.raises(InvalidRequest, match="rerank:latest is a reranking model: it cannot chat"):
        async for _ in eng.chat(ChatRequest("rerank", [Message("user", "hi")])):
            pass
    with pytest.raises(InvalidRequest, match="is a reranking model: it cannot embed") as info:
        await eng.embed(EmbedRequest("rerank", ["hi"]))
    assert info.value.param == "model"


# ---------------------------------------------------------------- memory


async def test_the_memory_estimate_counts_the_embedding_context(eng, files):
    loaded = await eng.load_model("mean")
    meta = read_header(files["mean"], with_tensors=False).metadata
    config = eng.manager.loaded["mean:latest"].runner.config
    extra = memory_estimate(meta, config, 0)
    assert loaded.size == files["mean"].stat().st_size + extra
    assert extra > config.n_ctx * N_EMBD * 4  # at least every token's output
    assert loaded.context_length == 512  # the fixture's trained context, under the default
    short = await eng.load_model("short")
    assert short.context_length == 16 and short.size < loaded.size


async def test_a_model_that_does_not_fit_is_refused_with_its_estimate(settings, files):
    import psutil

    from mullama.engine.local import LocalEngine

    settings.memory_headroom_mb = psutil.virtual_memory().available // 2**20 + 1024
    engine = LocalEngine(settings)
    try:
        await engine.create_model("m", f"FROM {files['mean']}\n")
        with pytest.raises(InsufficientMemory) as info:
            await engine.embed(EmbedRequest("m", ["hi"]))
        assert info.value.details["needed"] > files["mean"].stat().st_size
    finally:
        await engine.close()


def test_flash_attention_off_counts_the_attention_scores():
    from mullama.engine.embedder import EmbedderConfig

    meta = {"general.architecture": "bert", "bert.embedding_length": 384}
    meta |= {"bert.attention.head_count": 12, "bert.feed_forward_length": 1536}
    auto = memory_estimate(meta, EmbedderConfig(n_ctx=2048), 0)
    off = memory_estimate(meta, EmbedderConfig(n_ctx=2048, flash_attention=False), 0)
    assert off - auto == 2048 * 2048 * 12 * 4
    decoder = {k.replace("bert.", "qwen3."): v for k, v in meta.items()}
    decoder["general.architecture"] = "qwen3"
    assert memory_estimate(decoder, EmbedderConfig(n_ctx=2048), 1000) == auto + 1000  # its KV


async def test_a_request_whose_client_left_is_not_decoded(eng):
    await eng.load_model("mean")
    embedder = eng.manager.loaded["mean:latest"].runner
    gate = threading.Event()
    embedder.call(gate.wait)
    task = asyncio.ensure_future(eng.embed(EmbedRequest("mean", ["the cat", "a dog"])))
    while embedder.queued < 1:
        await asyncio.sleep(0.01)
    before = embedder.decodes
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    gate.set()
    await asyncio.wrap_future(embedder.call(lambda: None))  # the thread has passed its queue
    assert embedder.decodes == before and embedder.queued == 0
    assert len((await eng.embed(EmbedRequest("mean", ["hello"]))).embeddings) == 1


async def test_a_decode_that_breaks_fails_its_requests_and_the_thread_lives_on(eng, monkeypatch):
    await eng.load_model("mean")
    embedder = eng.manager.loaded["mean:latest"].runner

    def broken(seq):
        raise RuntimeError("no vector")

    monkeypatch.setattr(embedder, "_output", broken)
    with pytest.raises(EngineError, match="mean:latest: no vector"):
        await eng.embed(EmbedRequest("mean", ["the cat"]))
    monkeypatch.undo()
    assert len((await eng.embed(EmbedRequest("mean", ["the cat"]))).embeddings) == 1
