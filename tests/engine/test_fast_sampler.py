"""The numpy sampler against llama.cpp's own sampler chain, on the real model's logits."""

from __future__ import annotations

import ctypes

import llama_cpp
import numpy as np
import pytest

from mullama.engine import sampling
from mullama.engine.api import SamplingOptions
from mullama.engine.fast_sampler import FastSampler, handles
from mullama.engine.llm import Batch, Context, ContextParams

pytestmark = pytest.mark.slow

PROMPT = "The the the cat sat on the mat. The the cat sat on the mat. The"
OPEN_PROMPT = "Here is a list of my favourite words:"  # many plausible next tokens


@pytest.fixture
def ctx(model):
    c = Context(model, ContextParams(n_ctx=512, n_batch=512, threads=2))
    batch = Batch(512)
    yield c, batch
    batch.close()
    c.close()


def opts(**values) -> SamplingOptions:
    return sampling.merge(sampling.DEFAULTS, SamplingOptions(**values))


def decode(ctx, batch, tokens: list[int], start: int) -> None:
    batch.clear()
    for k, token in enumerate(tokens):
        batch.add(token, start + k, 0, k == len(tokens) - 1)
    ctx.decode(batch)


def native_candidates(chain, logits: np.ndarray) -> tuple[list[int], np.ndarray]:
    """What llama.cpp's chain keeps of ``logits`` (its final probabilities)."""
    data, array = sampling.candidates_of(logits)
    llama_cpp.llama_sampler_apply(chain, ctypes.byref(array))
    kept = np.sort(data[: array.size], order="logit")[::-1]
    values = kept["logit"].astype(np.float64)
    weights = np.exp(values - values[0])
    return [int(t) for t in kept["id"]], weights / weights.sum()


@pytest.mark.parametrize(
    "penalties",
    [
        {"repeat_penalty": 1.0},
        {"repeat_penalty": 1.3, "repeat_last_n": 16},
        {
            "repeat_penalty": 1.1,
            "frequency_penalty": 0.6,
            "presence_penalty": 0.4,
            "repeat_last_n": 64,
        },
    ],
)
def test_greedy_picks_what_the_native_chain_picks_token_for_token(model, ctx, penalties):
    c, batch = ctx
    o = opts(temperature=0, **penalties)
    assert handles(o)
    chain = sampling.build_chain(o, model, 1)
    fast = FastSampler(o, 1)
    tokens = model.tokenize(PROMPT)
    decode(c, batch, tokens, 0)
    pos, produced, differs_from_plain = len(tokens), [], False
    try:
        for _ in range(40):
            row = c.logits_row(batch.n - 1)
            plain = int(row.argmax())
            mine = fast.sample(row.copy())
            theirs = llama_cpp.llama_sampler_sample(chain, c.ptr, batch.n - 1)
            assert mine == theirs, (produced, mine, theirs)
            differs_from_plain |= mine != plain
            produced.append(mine)
            decode(c, batch, [mine], pos)
            pos += 1
    finally:
        sampling.free_chain(chain)
    # the repetitive prompt makes penalties change the choice at some point
    assert differs_from_plain == (penalties["repeat_penalty"] != 1.0)


@pytest.mark.parametrize(
    "values",
    [
        {"temperature": 0.8, "top_k": 40, "top_p": 0.9},
        {"temperature": 1.5, "top_k": 200, "top_p": 1.0, "min_p": 0.02},
        {"temperature": 0.7, "top_k": 1024, "top_p": 0.95, "min_p": 0.05, "repeat_penalty": 1.2},
        {"temperature": 2.0, "top_k": 5, "top_p": 0.97},
    ],
)
def test_candidates_and_probabilities_match_the_native_chain(model, ctx, values):
    c, batch = ctx
    o = opts(**values)
    assert handles(o)
    decode(c, batch, model.tokenize(OPEN_PROMPT), 0)
    logits = c.logits_row(batch.n - 1).copy()
    # the native chain without its final random draw
    chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
    try:
        llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_top_k(o.top_k))
        llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_top_p(o.top_p, 1))
        if o.min_p > 0:
            llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_min_p(o.min_p, 1))
        llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_temp(o.temperature))
        ids, probs = native_candidates(chain, logits)
    finally:
        llama_cpp.llama_sampler_free(chain)
    mine_ids, mine_probs = FastSampler(o, 1).candidates(logits.copy())
    assert list(mine_ids) == ids
    np.testing.assert_allclose(mine_probs, probs, rtol=1e-4, atol=1e-7)
    assert len(ids) > 1


def test_draws_follow_the_candidate_probabilities_and_a_seed_repeats_them(model, ctx):
    c, batch = ctx
    o = opts(temperature=1.2, top_k=8, top_p=1.0, repeat_penalty=1.0)
    decode(c, batch, model.tokenize(OPEN_PROMPT), 0)
    logits = c.logits_row(batch.n - 1).copy()
    ids, probs = FastSampler(o, 7).candidates(logits.copy())
    sampler = FastSampler(o, 7)
    draws = [sampler.sample(logits.copy()) for _ in range(6000)]
    again = FastSampler(o, 7)
    assert [again.sample(logits.copy()) for _ in range(200)] == draws[:200]
    counts = np.array([draws.count(int(t)) for t in ids])
    assert counts.sum() == len(draws)  # nothing outside the candidates
    expected = probs * len(draws)
    sigma = np.sqrt(expected * (1 - probs))
    assert np.all(np.abs(counts - expected) <= 5 * sigma + 1), (counts, expected)


@pytest.mark.parametrize(
    "values, native",
    [
        ({"temperature": 0}, False),
        ({"temperature": 0.8}, False),
        ({"temperature": 0.8, "grammar": 'root ::= "a"'}, True),
        ({"temperature": 0, "logprobs": True}, True),
        ({"temperature": 0.8, "mirostat": 2}, True),
        ({"temperature": 0.8, "typical_p": 0.5}, True),
        ({"temperature": 0.8, "top_k": 0}, True),
        ({"temperature": 0.8, "top_k": 5000}, True),
    ],
)
def test_unusual_options_keep_the_native_chain(values, native):
    assert handles(opts(**values)) is not native


def biased(model, **values) -> SamplingOptions:
    """Options with a logit_bias resolved as the engine resolves it."""
    o = opts(**values)
    o.logit_bias = sampling.resolve_logit_bias(o.logit_bias, model)
    return o


BIASES = {" the": False, " cat": -3.0, " mat": 2.5, " dog": 4.0, ".": -1.5}


@pytest.mark.parametrize("penalties", [{"repeat_penalty": 1.0}, {"repeat_penalty": 1.3}])
def test_greedy_with_logit_bias_picks_what_the_native_chain_picks(model, ctx, penalties):
    c, batch = ctx
    o = biased(model, temperature=0, logit_bias=BIASES, **penalties)
    assert handles(o)
    chain = sampling.build_chain(o, model, 1)
    fast = FastSampler(o, 1)
    (the,) = model.tokenize(" the", add_special=False)
    tokens = model.tokenize(PROMPT)
    decode(c, batch, tokens, 0)
    pos, produced = len(tokens), []
    try:
        for _ in range(30):
            row = c.logits_row(batch.n - 1)
            mine = fast.sample(row.copy())
            theirs = llama_cpp.llama_sampler_sample(chain, c.ptr, batch.n - 1)
            assert mine == theirs, (produced, mine, theirs)
            produced.append(mine)
            decode(c, batch, [mine], pos)
            pos += 1
    finally:
        sampling.free_chain(chain)
    assert the not in produced  # the prompt's most likely continuation, banned


def test_candidates_with_logit_bias_match_the_native_chain(model, ctx):
    c, batch = ctx
    o = biased(model, temperature=0.9, top_k=40, top_p=0.95, logit_bias={**BIASES, "\n": False})
    decode(c, batch, model.tokenize(OPEN_PROMPT), 0)
    logits = c.logits_row(batch.n - 1).copy()
    pairs = sampling.bias_pairs(o)
    array = (llama_cpp.llama_logit_bias * len(pairs))(
        *(llama_cpp.llama_logit_bias(t, b) for t, b in pairs)
    )
    chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
    try:
        for sampler in (
            llama_cpp.llama_sampler_init_logit_bias(model.n_vocab, len(pairs), array),
            llama_cpp.llama_sampler_init_top_k(o.top_k),
            llama_cpp.llama_sampler_init_top_p(o.top_p, 1),
            llama_cpp.llama_sampler_init_temp(o.temperature),
        ):
            llama_cpp.llama_sampler_chain_add(chain, sampler)
        ids, probs = native_candidates(chain, logits)
    finally:
        llama_cpp.llama_sampler_free(chain)
    fast = FastSampler(o, 1)
    row = logits.copy()
    row[fast.bias_ids] += fast.biases  # what sample() does first
    mine_ids, mine_probs = fast.candidates(row)
    assert list(mine_ids) == ids
    np.testing.assert_allclose(mine_probs, probs, rtol=1e-4, atol=1e-7)
    unbiased, _ = FastSampler(opts(temperature=0.9, top_k=40, top_p=0.95), 1).candidates(logits)
    assert len(ids) > 1 and set(ids) != set(unbiased)  # the biases made a difference
