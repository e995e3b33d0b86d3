"""The OpenAI-compatible API through the official ``openai`` SDK, against a real daemon."""

from __future__ import annotations

import base64
import json
import math
import re
import struct

import httpx
import openai
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

HELLO = [{"role": "user", "content": "Hello"}]


def test_chat_completion_shape_and_usage(oai):
    r = oai.chat.completions.create(model="gemma", messages=HELLO, max_tokens=8)
    assert r.object == "chat.completion" and r.id.startswith("chatcmpl-")
    assert r.model == "gemma" and r.created > 0 and r.system_fingerprint
    choice = r.choices[0]
    assert choice.index == 0 and choice.message.role == "assistant"
    assert choice.message.content
    assert choice.finish_reason == "length"
    assert r.usage.completion_tokens == 8
    assert r.usage.prompt_tokens > 0
    assert r.usage.total_tokens == r.usage.prompt_tokens + 8


def warm(oai, messages, max_tokens=24):
    """Answer once so the prompt prefix is in the KV cache for the calls compared next: a
    prompt evaluated in one batch and one mostly reused from the cache differ in the last
    bits of their logits, which can flip a greedy choice many tokens later."""
    oai.chat.completions.create(model="gemma", messages=messages, max_tokens=max_tokens)


def test_streamed_text_equals_non_streamed(oai):
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Tell me about cats"}]},
    ]
    warm(oai, messages)
    whole = oai.chat.completions.create(model="gemma", messages=messages, max_tokens=24)
    chunks = list(
        oai.chat.completions.create(
            model="gemma",
            messages=messages,
            max_tokens=24,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    finishes = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finishes == ["length"]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 24
    assert chunks[-1].usage.prompt_tokens == whole.usage.prompt_tokens
    assert len({c.id for c in chunks}) == 1


async def test_async_client_streamed_and_not(aoai, oai):
    warm(oai, HELLO, 10)
    whole = await aoai.chat.completions.create(model="gemma", messages=HELLO, max_tokens=10)
    stream = await aoai.chat.completions.create(
        model="gemma", messages=HELLO, max_tokens=10, stream=True
    )
    text = "".join([c.choices[0].delta.content or "" async for c in stream])
    assert text == whole.choices[0].message.content


def test_stop_sequence_ends_with_stop(oai):
    warm(oai, HELLO, 12)
    free = oai.chat.completions.create(model="gemma", messages=HELLO, max_tokens=12)
    text = free.choices[0].message.content
    word = text.split()[1]
    stopped = oai.chat.completions.create(model="gemma", messages=HELLO, max_tokens=12, stop=[word])
    assert stopped.choices[0].finish_reason == "stop"
    assert stopped.choices[0].message.content == text[: text.index(word)]
    single = oai.chat.completions.create(model="gemma", messages=HELLO, max_tokens=12, stop=word)
    assert single.choices[0].message.content == stopped.choices[0].message.content


def test_model_stop_parameter_gives_finish_reason_stop(oai):
    r = oai.chat.completions.create(model="gemma-line", messages=HELLO, max_tokens=40)
    assert r.choices[0].finish_reason == "stop"
    assert "\n" not in r.choices[0].message.content


def test_seed_makes_sampling_reproducible(oai):
    def sample(seed):
        return (
            oai.chat.completions.create(
                model="gemma", messages=HELLO, max_tokens=12, temperature=1.0, top_p=0.95, seed=seed
            )
            .choices[0]
            .message.content
        )

    assert sample(7) == sample(7)


def test_logprobs(oai):
    r = oai.chat.completions.create(
        model="gemma", messages=HELLO, max_tokens=5, logprobs=True, top_logprobs=3
    )
    content = r.choices[0].logprobs.content
    assert len(content) == 5
    assert "".join(t.token for t in content) == r.choices[0].message.content
    for entry in content:
        assert entry.logprob <= 0 and len(entry.top_logprobs) == 3
        assert entry.top_logprobs[0].logprob >= entry.top_logprobs[-1].logprob


def test_penalties_and_max_completion_tokens(oai):
    r = oai.chat.completions.create(
        model="gemma",
        messages=HELLO,
        max_completion_tokens=6,
        presence_penalty=0.5,
        frequency_penalty=0.5,
    )
    assert r.usage.completion_tokens == 6


def test_n_choices_are_sampled_each_in_its_own_sequence(oai):
    r = oai.chat.completions.create(
        model="gemma",
        messages=HELLO,
        n=3,
        max_tokens=12,
        temperature=1.5,
        seed=5,
        extra_body={"ignore_eos": True},
    )
    assert [c.index for c in r.choices] == [0, 1, 2]
    assert all(c.message.content and c.finish_reason == "length" for c in r.choices)
    assert len({c.message.content for c in r.choices}) > 1  # three seeds, three samples
    single = oai.chat.completions.create(model="gemma", messages=HELLO, max_tokens=12)
    assert r.usage.prompt_tokens == single.usage.prompt_tokens  # the prompt counted once
    assert r.usage.completion_tokens == 3 * 12  # every choice's tokens
    stream = oai.chat.completions.create(
        model="gemma",
        messages=HELLO,
        n=2,
        max_tokens=6,
        temperature=1.5,
        seed=5,
        stream=True,
        stream_options={"include_usage": True},
        extra_body={"ignore_eos": True},
    )
    texts, finished, usage = ["", ""], set(), None
    for chunk in stream:
        for choice in chunk.choices:
            texts[choice.index] += choice.delta.content or ""
            if choice.finish_reason:
                finished.add(choice.index)
        usage = chunk.usage or usage
    assert finished == {0, 1} and all(texts)
    assert usage is not None and usage.completion_tokens == 12


def test_logit_bias_bans_and_forces_tokens(oai, api):
    def greedy(**extra):
        return (
            oai.completions.create(
                model="gemma", prompt="1, 2, 3,", max_tokens=3, temperature=0, **extra
            )
            .choices[0]
            .text
        )

    plain = greedy()
    first = httpx.post(f"{api.url}/tokenize", json={"model": "gemma", "content": plain}).json()
    banned = first["tokens"][0]
    changed = greedy(logit_bias={str(banned): -100})
    assert changed != plain
    after = httpx.post(f"{api.url}/tokenize", json={"model": "gemma", "content": changed}).json()
    assert banned not in after["tokens"]
    assert greedy(logit_bias={" banana": 100}).startswith(" banana")  # text: its tokens
    with pytest.raises(openai.BadRequestError) as err:
        greedy(logit_bias={"999999999": 1})
    assert err.value.body["param"] == "logit_bias"


def test_text_completion_choices_per_prompt(oai):
    # choices i*n .. i*n+n-1 belong to prompt i; each prompt has one certain next token
    # (later tokens may differ between two copies: batch placement moves the logits' last bits)
    r = oai.completions.create(
        model="gemma", prompt=["1, 2, 3,", "a, b, c,"], n=2, max_tokens=2, temperature=0
    )
    assert [c.index for c in r.choices] == [0, 1, 2, 3]
    assert [c.text[:2] for c in r.choices] == [" 4", " 4", " d", " d"], r.choices
    assert r.usage.completion_tokens == 8


def test_llama_server_json_schema_field_constrains_the_output(oai):
    schema = {
        "type": "object",
        "properties": {"ok": {"type": "boolean"}},
        "required": ["ok"],
    }
    r = oai.chat.completions.create(
        model="gemma",
        messages=[{"role": "user", "content": "Is water wet? Answer in JSON."}],
        max_tokens=60,
        extra_body={"json_schema": schema},
    )
    assert isinstance(json.loads(r.choices[0].message.content)["ok"], bool)
    r = oai.chat.completions.create(
        model="gemma",
        messages=[{"role": "user", "content": "Is water wet? Answer in JSON."}],
        max_tokens=60,
        response_format={"type": "json_object", "schema": schema},
    )
    assert isinstance(json.loads(r.choices[0].message.content)["ok"], bool)
    text = oai.completions.create(
        model="gemma", prompt="JSON:", max_tokens=60, extra_body={"json_schema": schema}
    )
    assert isinstance(json.loads(text.choices[0].text)["ok"], bool)


def test_a_user_message_without_content_is_a_400(oai):
    with pytest.raises(openai.BadRequestError) as err:
        oai.chat.completions.create(model="gemma", messages=[{"role": "user"}], max_tokens=4)
    assert err.value.body["param"] == "messages[0].content"


def test_unknown_model_is_404(oai):
    with pytest.raises(openai.NotFoundError) as err:
        oai.chat.completions.create(model="no-such-model", messages=HELLO)
    assert err.value.body["code"] == "model_not_found"
    assert err.value.body["type"] == "invalid_request_error"


def test_bad_field_is_400_naming_it(oai):
    with pytest.raises(openai.BadRequestError) as err:
        oai.chat.completions.create(model="gemma", messages=HELLO, top_p=3)
    assert err.value.body["param"] == "top_p"
    with pytest.raises(openai.BadRequestError) as err:
        oai.chat.completions.create(model="gemma", messages=[{"role": "wizard", "content": "x"}])
    assert err.value.body["param"] == "messages[0].role"


def test_context_overflow_is_400_with_token_counts(oai):
    prompt = "word " * 3000
    with pytest.raises(openai.BadRequestError) as err:
        oai.chat.completions.create(
            model="gemma", messages=[{"role": "user", "content": prompt}], stream=True
        )
    assert err.value.body["code"] == "context_length_exceeded"
    assert re.search(
        r"prompt is 30\d\d tokens but the context holds 2048", err.value.body["message"]
    )


def test_completions_string_list_and_stream(oai):
    one = oai.completions.create(model="gemma", prompt="Once upon a time", max_tokens=6)
    assert one.object == "text_completion" and one.choices[0].finish_reason == "length"
    assert one.usage.completion_tokens == 6
    many = oai.completions.create(
        model="gemma", prompt=["Once upon a time", "The cat"], max_tokens=6
    )
    assert [c.index for c in many.choices] == [0, 1]
    assert many.choices[0].text == one.choices[0].text
    assert many.usage.completion_tokens == 12
    streamed = list(
        oai.completions.create(
            model="gemma", prompt=["Once upon a time", "The cat"], max_tokens=6, stream=True
        )
    )
    for i in (0, 1):
        text = "".join(c.choices[0].text for c in streamed if c.choices[0].index == i)
        assert text == many.choices[i].text


def test_completions_echo_and_logprobs(oai):
    r = oai.completions.create(
        model="gemma", prompt="Once upon a time", max_tokens=4, echo=True, logprobs=2
    )
    assert r.choices[0].text.startswith("Once upon a time")
    lp = r.choices[0].logprobs
    assert len(lp.tokens) == 4 and len(lp.top_logprobs[0]) == 2
    assert lp.text_offset[0] == len("Once upon a time")


def test_completions_token_prompt(oai):
    r = oai.completions.create(model="gemma", prompt=[2, 1000, 2000, 3000], max_tokens=3)
    assert r.choices[0].finish_reason == "length"
    assert r.usage.prompt_tokens == 4 and r.usage.completion_tokens == 3


def test_embeddings_float_base64_and_dimensions(oai, api):
    raw = httpx.post(
        f"{api.url}/v1/embeddings", json={"model": "gemma", "input": ["hello", "world"]}
    ).json()
    assert raw["object"] == "list" and [d["index"] for d in raw["data"]] == [0, 1]
    vector = raw["data"][0]["embedding"]
    assert isinstance(vector[0], float)
    assert math.isclose(sum(x * x for x in vector), 1.0, rel_tol=1e-3)
    assert raw["usage"]["prompt_tokens"] > 0
    b64 = httpx.post(
        f"{api.url}/v1/embeddings",
        json={"model": "gemma", "input": "hello", "encoding_format": "base64"},
    ).json()
    decoded = struct.unpack(f"<{len(vector)}f", base64.b64decode(b64["data"][0]["embedding"]))
    assert all(math.isclose(a, b, abs_tol=1e-6) for a, b in zip(decoded, vector))
    sdk = oai.embeddings.create(model="gemma", input="hello")  # the SDK asks for base64 itself
    assert all(math.isclose(a, b, abs_tol=1e-6) for a, b in zip(sdk.data[0].embedding, vector))
    short = oai.embeddings.create(
        model="gemma", input="hello", dimensions=32, encoding_format="float"
    )
    assert len(short.data[0].embedding) == 32
    with pytest.raises(openai.BadRequestError) as err:
        oai.embeddings.create(model="gemma", input="hello", dimensions=100000)
    assert err.value.body["param"] == "dimensions"


def test_embeddings_of_token_ids_are_those_of_the_text_they_spell(oai, api):
    def tokenize(add_special: bool) -> list[int]:
        body = {"model": "gemma", "content": "hello world", "add_special": add_special}
        body["parse_special"] = False
        return httpx.post(f"{api.url}/tokenize", json=body).json()["tokens"]

    with_bos, tokens = tokenize(True), tokenize(False)
    assert len(with_bos) == len(tokens) + 1
    text = oai.embeddings.create(model="gemma", input="hello world").data[0].embedding
    one = httpx.post(f"{api.url}/v1/embeddings", json={"model": "gemma", "input": tokens}).json()
    assert len(one["data"]) == 1 and one["usage"]["prompt_tokens"] == len(tokens)
    # the text is tokenized with a BOS; token ids are embedded as they are
    both = httpx.post(
        f"{api.url}/v1/embeddings", json={"model": "gemma", "input": [with_bos, tokens]}
    ).json()
    assert [d["index"] for d in both["data"]] == [0, 1]
    assert both["data"][0]["embedding"] == pytest.approx(text, abs=1e-5)
    assert both["data"][1]["embedding"] == pytest.approx(one["data"][0]["embedding"])
    assert both["data"][1]["embedding"] != pytest.approx(text, abs=1e-5)
    sdk = oai.embeddings.create(model="gemma", input=[with_bos])  # the SDK's types allow it
    assert sdk.data[0].embedding == pytest.approx(text, abs=1e-5)
    for bad in ([[]], [1.5], [[1, 10**9]], [[-3]]):
        reply = httpx.post(f"{api.url}/v1/embeddings", json={"model": "gemma", "input": bad})
        assert reply.status_code == 400, reply.text
        assert reply.json()["error"]["param"] == "input"


def test_models_list_and_retrieve(oai):
    models = {m.id: m for m in oai.models.list()}
    assert {"gemma:latest", "gemma-line:latest"} <= set(models)
    caps = models["gemma:latest"].model_extra["capabilities"]
    assert {"json", "tools", "thinking", "vision"} <= set(caps)
    assert caps["vision"] is False and caps["json"] is True
    assert oai.models.retrieve("gemma").id == "gemma:latest"
    with pytest.raises(openai.NotFoundError):
        oai.models.retrieve("no-such-model")
