"""logit_bias on the real model: bans, forced tokens, text keys, both samplers, bad values."""

from __future__ import annotations

import math

import pytest

from mullama.config import load_settings
from mullama.engine import sampling
from mullama.engine.api import (
    ChatRequest,
    CompletionRequest,
    Done,
    InvalidRequest,
    Message,
    SamplingOptions,
)
from mullama.engine.local import LocalEngine
from mullama.engine.options import SAMPLING, logit_bias_problem, problem
from tests.conftest import gemma_modelfile

PROMPT = "1, 2, 3, 4,"  # greedy: " 5, 6, 7, …"
NATIVE = "root ::= [^\\x00]*"  # a grammar that allows anything: llama.cpp's own sampler chain


@pytest.fixture(scope="module")
async def eng(tmp_path_factory, test_model_path):
    root = tmp_path_factory.mktemp("bias")
    engine = LocalEngine(
        load_settings(env={}, cache_dir=root / "c", config_dir=root / "g", data_dir=root / "d")
    )
    await engine.create_model("gemma", gemma_modelfile(test_model_path))
    yield engine
    await engine.close()


def model_of(engine):
    return engine.manager.loaded["gemma:latest"].model


async def generated(engine, native: bool = False, **opts) -> list[int]:
    opts.setdefault("max_tokens", 8)
    opts.setdefault("temperature", 0)
    if native:
        opts["grammar"] = NATIVE
    done = None
    async for event in engine.complete(CompletionRequest("gemma", PROMPT, SamplingOptions(**opts))):
        done = event
    assert isinstance(done, Done)
    return done.context[done.usage.prompt_tokens :]


@pytest.mark.slow
@pytest.mark.parametrize("native", [False, True], ids=["fast", "native"])
async def test_a_ban_changes_the_greedy_choice_and_never_lets_the_token_out(eng, native):
    plain = await generated(eng, native)
    banned = plain[1]  # "5"
    for bias in (False, -math.inf, -1000.0):
        out = await generated(eng, native, logit_bias={str(banned): bias})
        assert banned not in out and out != plain, (bias, out)
    # the same as a pair list, and with an int key in-process
    assert await generated(eng, native, logit_bias=[[banned, False]]) == out
    assert await generated(eng, native, logit_bias={banned: False}) == out


@pytest.mark.slow
@pytest.mark.parametrize("native", [False, True], ids=["fast", "native"])
async def test_a_large_positive_bias_forces_a_token(eng, native):
    await generated(eng, native, max_tokens=1)
    model = model_of(eng)
    (llama,) = model.tokenize("llama", add_special=False, parse_special=False)
    out = await generated(eng, native, max_tokens=4, logit_bias={str(llama): 100})
    assert out == [llama] * 4
    # a text key: every token of its tokenization gets the bias
    assert await generated(eng, native, max_tokens=4, logit_bias={"llama": 100}) == out
    assert await generated(eng, native, max_tokens=4, logit_bias=[["llama", 100.0]]) == out


@pytest.mark.slow
async def test_both_samplers_agree_with_biases(eng):
    await generated(eng, max_tokens=1)
    model = model_of(eng)
    biases = {
        "5": -5.0,
        " 6": False,
        ",": -2.5,
        "llama": 3.0,
        str(model.tokenize("7", add_special=False)[0]): 4,
    }
    for opts in (
        {"temperature": 0},
        {"temperature": 0, "repeat_penalty": 1.3, "frequency_penalty": 0.5},
    ):
        fast = await generated(eng, max_tokens=16, logit_bias=biases, **opts)
        native = await generated(eng, True, max_tokens=16, logit_bias=biases, **opts)
        assert fast == native


@pytest.mark.slow
async def test_text_keys_cover_every_token_of_the_text(eng):
    await generated(eng, max_tokens=1)
    model = model_of(eng)
    text = "Hello, World!"
    tokens = model.tokenize(text, add_special=False, parse_special=False)
    assert len(tokens) > 2
    resolved = dict(sampling.resolve_logit_bias({text: -0.5}, model))
    assert resolved == dict.fromkeys(tokens, -0.5)
    # a key of digits is a token id in an object, text in a pair list (as llama-server reads them)
    assert sampling.resolve_logit_bias({"42": 1}, model) == [(42, 1.0)]
    as_text = model.tokenize("42", add_special=False, parse_special=False)
    assert [t for t, _ in sampling.resolve_logit_bias([["42", 1]], model)] == as_text
    # a token named twice gets the sum; false is -inf; special-token text is not parsed
    assert sampling.resolve_logit_bias([[42, 1], [42, 2.5]], model) == [(42, 3.5)]
    assert sampling.resolve_logit_bias([[42, False]], model) == [(42, -math.inf)]
    special = sampling.resolve_logit_bias({"<end_of_turn>": False}, model)
    assert model.eos not in dict(special) and len(special) > 1


@pytest.mark.slow
@pytest.mark.parametrize(
    "bias, words",
    [
        ({"262144": 1.0}, "vocabulary has tokens 0 to"),
        ({"-1": 1.0}, "names token -1"),
        ([[10**9, False]], "names token 1000000000"),
        ({"5": "high"}, "numbers as biases"),
        ({"5": True}, "numbers as biases"),
        ({"5": math.nan}, "numbers as biases"),
        ({"5": math.inf}, "numbers as biases"),
        ([[5]], "list of [token id or string, bias] pairs"),
        ("5", "must be an object"),
        ({"": 1.0}, "empty string"),
    ],
)
async def test_bad_biases_are_invalid_requests_naming_logit_bias(eng, bias, words):
    with pytest.raises(InvalidRequest) as err:
        await generated(eng, logit_bias=bias)
    assert err.value.param == "logit_bias" and "logit_bias" in err.value.message
    assert words in err.value.message, err.value.message


@pytest.mark.slow
async def test_chat_requests_take_logit_bias_too(eng):
    request = ChatRequest(
        "gemma", [Message("user", "Count: 1, 2, 3")], SamplingOptions(max_tokens=6)
    )
    done = [e async for e in eng.chat(request)][-1]
    first = done.context[done.usage.prompt_tokens]
    request.options = SamplingOptions(max_tokens=6, logit_bias={str(first): False})
    done = [e async for e in eng.chat(request)][-1]
    assert first not in done.context[done.usage.prompt_tokens :]


def test_the_options_table_checks_the_shape_for_every_front_end():
    rule = SAMPLING["logit_bias"]
    assert problem(rule, {"15043": 1.0, "Hello": False, "x": -100}) is None
    assert problem(rule, [[15043, 1], ["Hello", False]]) is None
    assert problem(rule, {"a": True}) is not None and problem(rule, [1, 2]) is not None
    assert logit_bias_problem({"a": None}) is not None


def test_both_shapes_cross_the_ipc_codec():
    from mullama.ipc.codec import decode_value, encode_value

    for bias in ({"15043": 2.0, "Hello": False}, [(15043, 2.0), ("Hello", False)]):
        opts = SamplingOptions(logit_bias=bias)
        assert decode_value(encode_value(opts), SamplingOptions) == opts
