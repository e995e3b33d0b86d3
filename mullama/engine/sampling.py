"""Sampling options: model defaults, merging, and native llama.cpp sampler chains (the checks
are :func:`mullama.engine.options.validate`)."""

from __future__ import annotations

import ctypes
import dataclasses
import random
import re
from typing import Any, TypeVar

import llama_cpp
import numpy as np

from .api import InvalidRequest, LogitBias, SamplingOptions
from .llm import Model
from .options import DEFAULTS as DEFAULTS  # re-exported: the engine merges over them
from .options import bias_value, logit_bias_problem
from .options import from_parameters as from_parameters

_T = TypeVar("_T")


def merge(*layers: SamplingOptions) -> SamplingOptions:
    """Later layers override earlier ones wherever they set a value."""
    merged: dict[str, Any] = {}
    for layer in layers:
        for f in dataclasses.fields(layer):
            value = getattr(layer, f.name)
            if (
                value is not None
                and not (f.name in ("logprobs", "ignore_eos") and value is False)
                and not (f.name == "top_logprobs" and value == 0)
            ):
                merged[f.name] = value
    return SamplingOptions(**merged)


_TOKEN_ID = re.compile(r"\s*[+-]?[0-9]+")  # what strtol reads whole, as llama-server checks


def resolve_logit_bias(value: LogitBias, model: Model) -> list[tuple[int, float]]:
    """A request's ``logit_bias`` as (token id, bias) pairs, one per token, in first-named order:
    text keys tokenized as llama-server does (no special tokens added or parsed), ids checked
    against the vocabulary, the biases of a token named twice added up, ``False`` as -inf."""
    if (message := logit_bias_problem(value)) is not None:
        raise InvalidRequest(f"logit_bias {message}", param="logit_bias")
    entries: list[tuple[int | str, object]]
    if isinstance(value, dict):  # OpenAI's shape: a key of digits is a token id
        entries = [
            (int(k) if isinstance(k, str) and _TOKEN_ID.fullmatch(k) else k, b)
            for k, b in value.items()
        ]
    else:
        entries = [(k, b) for k, b in value]
    biases: dict[int, float] = {}
    for key, raw in entries:
        bias = bias_value(raw)
        assert bias is not None  # logit_bias_problem checked it
        if isinstance(key, str):
            tokens = list(
                dict.fromkeys(model.tokenize(key, add_special=False, parse_special=False))
            )
        elif 0 <= key < model.n_vocab:
            tokens = [key]
        else:
            raise InvalidRequest(
                f"logit_bias names token {key}, but the model's vocabulary has tokens 0 to "
                f"{model.n_vocab - 1}",
                param="logit_bias",
            )
        for token in tokens:
            biases[token] = biases.get(token, 0.0) + bias
    return list(biases.items())


def bias_pairs(opts: SamplingOptions) -> list[tuple[int, float]]:
    """The resolved biases of options a runner samples with (see :func:`resolve_logit_bias`)."""
    resolved = opts.logit_bias or []
    assert isinstance(resolved, list), "logit_bias is not resolved"
    pairs: list[tuple[int, float]] = []
    for token, bias in resolved:
        assert isinstance(token, int) and not isinstance(bias, bool), "logit_bias is not resolved"
        pairs.append((token, bias))
    return pairs


def seed_for(opts: SamplingOptions) -> int:
    """The request's seed, or a random one."""
    seed = opts.seed if opts.seed is not None and opts.seed >= 0 else random.getrandbits(31)
    return seed & 0xFFFFFFFF


def _merged(value: _T | None) -> _T:
    """An option of merged options: :func:`merge` over :data:`DEFAULTS` leaves none unset."""
    assert value is not None, "the sampling options are not merged"
    return value


def check_grammar(grammar: str, model: Model) -> None:
    """Raise :class:`InvalidRequest` unless llama.cpp parses ``grammar`` (GBNF): checked before
    a request is admitted, so that a bad grammar is answered with a status, not mid-stream."""
    sampler = llama_cpp.llama_sampler_init_grammar(model.vocab, grammar.encode(), b"root")
    if not sampler:
        raise InvalidRequest("the grammar could not be parsed (GBNF syntax error)", param="grammar")
    llama_cpp.llama_sampler_free(sampler)


def build_chain(
    opts: SamplingOptions, model: Model, seed: int | None = None
) -> llama_cpp.llama_sampler_p:
    """A native sampler chain for fully merged options; the caller frees it."""
    chain: llama_cpp.llama_sampler_p = llama_cpp.llama_sampler_chain_init(
        llama_cpp.llama_sampler_chain_default_params()
    )

    def add(sampler: llama_cpp.llama_sampler_p) -> None:
        llama_cpp.llama_sampler_chain_add(chain, sampler)

    seed = seed_for(opts) if seed is None else seed
    if biases := bias_pairs(opts):  # first, as in llama.cpp's common sampler chain
        array = (llama_cpp.llama_logit_bias * len(biases))(
            *(llama_cpp.llama_logit_bias(token, bias) for token, bias in biases)
        )
        add(llama_cpp.llama_sampler_init_logit_bias(model.n_vocab, len(biases), array))
    if opts.grammar:
        grammar = llama_cpp.llama_sampler_init_grammar(model.vocab, opts.grammar.encode(), b"root")
        if not grammar:
            llama_cpp.llama_sampler_free(chain)
            raise InvalidRequest(
                "the grammar could not be parsed (GBNF syntax error)", param="grammar"
            )
        add(grammar)
    if opts.repeat_penalty != 1.0 or opts.presence_penalty or opts.frequency_penalty:
        add(
            llama_cpp.llama_sampler_init_penalties(
                model.n_vocab,
                opts.repeat_last_n,
                opts.repeat_penalty,
                opts.frequency_penalty,
                opts.presence_penalty,
            )
        )
    temperature = _merged(opts.temperature)
    if temperature <= 0:
        add(llama_cpp.llama_sampler_init_greedy())
        return chain
    if opts.mirostat == 1:
        add(llama_cpp.llama_sampler_init_temp(temperature))
        add(
            llama_cpp.llama_sampler_init_mirostat(
                model.n_vocab, seed, opts.mirostat_tau, opts.mirostat_eta, 100
            )
        )
        return chain
    if opts.mirostat == 2:
        add(llama_cpp.llama_sampler_init_temp(temperature))
        add(llama_cpp.llama_sampler_init_mirostat_v2(seed, opts.mirostat_tau, opts.mirostat_eta))
        return chain
    top_k, typical_p = _merged(opts.top_k), _merged(opts.typical_p)
    top_p, min_p = _merged(opts.top_p), _merged(opts.min_p)
    if top_k > 0:
        add(llama_cpp.llama_sampler_init_top_k(top_k))
    if typical_p < 1.0:
        add(llama_cpp.llama_sampler_init_typical(typical_p, 1))
    if top_p < 1.0:
        add(llama_cpp.llama_sampler_init_top_p(top_p, 1))
    if min_p > 0.0:
        add(llama_cpp.llama_sampler_init_min_p(min_p, 1))
    add(llama_cpp.llama_sampler_init_temp(temperature))
    add(llama_cpp.llama_sampler_init_dist(seed))
    return chain


def candidates_of(row: np.ndarray) -> tuple[np.ndarray, llama_cpp.llama_token_data_array]:
    """Every token of a logits row as llama.cpp's candidate array (and the numpy array behind
    it, which must outlive it), the input of ``llama_sampler_apply``."""
    n = len(row)
    data = np.zeros(n, dtype=[("id", "<i4"), ("logit", "<f4"), ("p", "<f4")])
    data["id"], data["logit"] = np.arange(n, dtype=np.int32), row
    return data, llama_cpp.llama_token_data_array(
        data.ctypes.data_as(ctypes.POINTER(llama_cpp.llama_token_data)), n, -1, False
    )


def sample_row(chain: llama_cpp.llama_sampler_p, row: np.ndarray) -> int:
    """``llama_sampler_sample`` on a logits row kept in memory instead of the context's."""
    data, candidates = candidates_of(row)
    llama_cpp.llama_sampler_apply(chain, ctypes.byref(candidates))
    if not 0 <= candidates.selected < candidates.size:
        raise RuntimeError("the sampler chain selected no token")
    token = int(data["id"][candidates.selected])
    llama_cpp.llama_sampler_accept(chain, token)
    return token


def free_chain(chain: llama_cpp.llama_sampler_p | None) -> None:
    if chain:
        llama_cpp.llama_sampler_free(chain)
