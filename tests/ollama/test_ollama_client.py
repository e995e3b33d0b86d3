"""The official ``ollama`` Python client against a real daemon serving the Gemma test model
(created as ``gemma``: Gemma template, temperature 0, stop ``<end_of_turn>``)."""

from __future__ import annotations

import datetime as dt
import json
import math
import time

import ollama
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

HELLO = [{"role": "user", "content": "Say hello."}]


def loaded_gemma(client: ollama.Client):
    """The ``/api/ps`` entry of the test model, or None when it is not loaded."""
    return next((m for m in client.ps().models if m.model == "gemma:latest"), None)


def test_list_describes_the_model(client):
    [gemma] = [m for m in client.list().models if m.model == "gemma:latest"]
    assert len(gemma.digest) == 64 and gemma.size > 100_000_000
    assert isinstance(gemma.modified_at, dt.datetime)
    d = gemma.details
    assert (d.format, d.family, d.quantization_level) == ("gguf", "gemma3", "Q4_K_M")
    assert d.families == ["gemma3"] and d.parameter_size.endswith("M")


def test_show(client):
    shown = client.show("gemma")
    assert "completion" in shown.capabilities
    assert shown.modelinfo["general.architecture"] == "gemma3"
    assert shown.modelinfo["gemma3.context_length"] > 0
    assert "<start_of_turn>" in shown.template
    assert "temperature" in shown.parameters and '"<end_of_turn>"' in shown.parameters
    assert "FROM " in shown.modelfile and "PARAMETER num_ctx 2048" in shown.modelfile
    assert shown.details.family == "gemma3"


def test_chat_whole(client):
    reply = client.chat(model="gemma", messages=HELLO, options={"num_predict": 6})
    assert reply.model == "gemma" and reply.done
    assert reply.message.role == "assistant" and reply.message.content
    assert reply.done_reason in ("stop", "length")
    assert 0 < reply.eval_count <= 6 and reply.prompt_eval_count > 5
    assert reply.eval_duration > 0 and reply.prompt_eval_duration > 0
    assert reply.total_duration >= reply.eval_duration + reply.prompt_eval_duration


def test_chat_streamed_equals_whole_at_temperature_0(client):
    whole = client.chat(model="gemma", messages=HELLO, options={"num_predict": 6})
    parts = list(
        client.chat(model="gemma", messages=HELLO, options={"num_predict": 6}, stream=True)
    )
    assert "".join(p.message.content for p in parts) == whole.message.content
    assert [p.done for p in parts] == [False] * (len(parts) - 1) + [True]
    last = parts[-1]
    assert last.done_reason == whole.done_reason and last.eval_count == whole.eval_count
    assert last.message.content == ""


def test_generate_whole_and_streamed(client):
    whole = client.generate(
        model="gemma", prompt="The capital of France is", options={"num_predict": 4}
    )
    assert whole.response and whole.done and whole.context
    assert whole.done_reason in ("stop", "length")
    parts = list(
        client.generate(
            model="gemma",
            prompt="The capital of France is",
            options={"num_predict": 4},
            stream=True,
        )
    )
    assert "".join(p.response for p in parts) == whole.response
    assert parts[-1].done and parts[-1].context == whole.context


def test_generate_options_and_raw(client):
    reply = client.generate(
        model="gemma",
        prompt="1, 2, 3,",
        raw=True,
        options={"num_predict": 3, "temperature": 0, "seed": 1},
    )
    assert reply.eval_count == 3 and reply.done_reason == "length"
    assert reply.context is None
    assert reply.prompt_eval_count == 9  # BOS and "1, 2, 3," alone: no chat template


def test_generate_format_constrains_the_output(client):
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    r = client.generate(
        model="gemma", prompt="Is water wet?", format=schema, options={"num_predict": 60}
    )
    assert isinstance(json.loads(r.response)["ok"], bool)
    r = client.generate(
        model="gemma", prompt="Is water wet?", format="json", options={"num_predict": 60}
    )
    assert isinstance(json.loads(r.response), (dict, list))


def test_generate_continues_from_context(client):
    first = client.generate(model="gemma", prompt="My name is Ada.", options={"num_predict": 2})
    follow = client.generate(
        model="gemma", prompt="What is my name?", context=first.context, options={"num_predict": 2}
    )
    assert follow.prompt_eval_count > len(first.context)


def test_per_request_num_ctx_never_reloads(client):
    client.generate(model="gemma")  # loaded with the Modelfile's num_ctx 2048
    before = loaded_gemma(client).expires_at
    reply = client.chat(model="gemma", messages=HELLO, options={"num_ctx": 8192, "num_predict": 2})
    assert reply.load_duration == 0
    model = loaded_gemma(client)
    assert model.context_length == 2048 and model.expires_at >= before


def test_load_and_unload_with_keep_alive(client):
    unloaded = client.generate(model="gemma", keep_alive=0)
    assert unloaded.done and unloaded.done_reason == "unload" and unloaded.response == ""
    assert loaded_gemma(client) is None
    loaded = client.generate(model="gemma", keep_alive="10m")
    assert loaded.done_reason == "load"
    model = loaded_gemma(client)
    assert model.name == "gemma:latest" and model.context_length == 2048 and model.size > 0
    remaining = model.expires_at - dt.datetime.now(dt.UTC)
    assert dt.timedelta(minutes=9) < remaining <= dt.timedelta(minutes=10)
    assert client.chat(model="gemma", messages=[], keep_alive=0).done_reason == "unload"
    assert loaded_gemma(client) is None
    assert client.chat(model="gemma", messages=[], keep_alive=-1).done_reason == "load"
    assert loaded_gemma(client).expires_at.year > 2200  # kept loaded forever


def test_generate_with_keep_alive_0_unloads_after_answering(client):
    reply = client.generate(model="gemma", prompt="Hi", keep_alive=0, options={"num_predict": 2})
    assert reply.response
    for _ in range(50):
        if loaded_gemma(client) is None:
            break
        time.sleep(0.1)
    assert loaded_gemma(client) is None


def test_embed(client):
    reply = client.embed(model="gemma", input=["hello", "the weather is nice"])
    assert len(reply.embeddings) == 2 and len(reply.embeddings[0]) == len(reply.embeddings[1])
    assert math.isclose(math.hypot(*reply.embeddings[0]), 1.0, rel_tol=1e-3)
    assert reply.prompt_eval_count > 0 and reply.total_duration > 0
    short = client.embed(model="gemma", input="hello", dimensions=16)
    assert len(short.embeddings) == 1 and len(short.embeddings[0]) == 16
    legacy = client.embeddings(model="gemma", prompt="hello")
    assert len(legacy.embedding) == len(reply.embeddings[0])


def test_create_copy_delete(client):
    done = client.create(
        model="pirate",
        from_="gemma",
        system="You are a pirate.",
        parameters={"num_predict": 3, "stop": ["<end_of_turn>", "Arr"]},
        messages=[{"role": "user", "content": "Ahoy"}, {"role": "assistant", "content": "Arr!"}],
    )
    assert done.status == "success"
    shown = client.show("pirate")
    assert 'SYSTEM "You are a pirate."' in shown.modelfile
    assert "MESSAGE assistant Arr!" in shown.modelfile
    assert "num_predict" in shown.parameters
    assert shown.details.parent_model == "gemma:latest"
    assert client.chat(model="pirate", messages=HELLO).eval_count <= 3
    assert client.copy("pirate", "pirate-copy").status == "success"
    names = [m.model for m in client.list().models]
    assert {"pirate:latest", "pirate-copy:latest", "gemma:latest"} <= set(names)
    assert client.delete("pirate").status == "success"
    assert client.delete("pirate-copy:latest").status == "success"
    assert "pirate:latest" not in [m.model for m in client.list().models]
    assert client.show("gemma").details.family == "gemma3"  # shared weights untouched


def test_create_streams_progress(client):
    steps = [
        s.status
        for s in client.create(model="brief", from_="gemma:latest", system="Be brief.", stream=True)
    ]
    assert steps[0].startswith("using existing layer sha256:")
    assert steps[-2:] == ["writing manifest", "success"]
    client.delete("brief")


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.chat(model="nope", messages=HELLO),
        lambda c: c.generate(model="nope", prompt="x"),
        lambda c: list(c.generate(model="nope", prompt="x", stream=True)),
        lambda c: c.show("nope"),
        lambda c: c.delete("nope"),
        lambda c: c.copy("nope", "other"),
        lambda c: c.embed(model="nope", input="x"),
    ],
)
def test_unknown_model_is_404(client, call):
    with pytest.raises(ollama.ResponseError) as err:
        call(client)
    assert err.value.status_code == 404 and "nope" in err.value.error


@pytest.mark.parametrize(
    "call, words",
    [
        (
            lambda c: c.generate(model="gemma", prompt="x", options={"temperature": "hot"}),
            "temperature",
        ),
        (
            lambda c: c.chat(
                model="gemma", messages=[{"role": "user", "content": "x", "images": [b"\x89PNG"]}]
            ),
            "does not accept images (no vision projector)",
        ),
        (lambda c: c.create(model="x", from_="gemma", quantize="q4_K_M"), "quantize"),
        (lambda c: c.create(model="x", from_="gemma", parameters={"temprature": 1}), "temprature"),
        (lambda c: c.generate(model="gemma", prompt="x", keep_alive="soon"), "keep_alive"),
    ],
)
def test_bad_requests_are_400(client, call, words):
    with pytest.raises(ollama.ResponseError) as err:
        call(client)
    assert err.value.status_code == 400 and words in err.value.error


async def test_async_client_streams(daemon):
    client = ollama.AsyncClient(host=daemon.url, timeout=300)
    parts = [
        p
        async for p in await client.chat(
            model="gemma", messages=HELLO, stream=True, options={"num_predict": 3}
        )
    ]
    assert parts[-1].done and parts[-1].eval_count <= 3
    assert "".join(p.message.content for p in parts)
