"""Ollama request parsing and answer shapes, without a model."""

from __future__ import annotations

import logging

import pytest

from mullama.engine.api import InvalidRequest, LoadedModel, ModelDetails, ModelInfo, PullProgress
from mullama.http.common.protocol import parse
from mullama.http.ollama import convert, models, protocol
from mullama.http.ollama.wire import pull_status


def sampling_options(body: dict):
    return convert.sampling_options(parse(protocol.GenerateBody, {"model": "m", **body}))


def chat_request(body: dict):
    return convert.chat_request(parse(protocol.ChatBody, body))


def generate_request(body: dict):
    return convert.generate_request(parse(protocol.GenerateBody, body))


def embed_request(body: dict, legacy: bool = False):
    model = protocol.EmbeddingsBody if legacy else protocol.EmbedBody
    return convert.embed_request(parse(model, body))


def test_options_become_sampling_options():
    opts = sampling_options(
        {
            "options": {
                "temperature": 0.2,
                "top_k": "7",
                "num_predict": 12,
                "stop": "END",
                "seed": 42,
                "repeat_penalty": 1.3,
                "mirostat": 2,
            },
            "logprobs": True,
            "top_logprobs": 3,
        }
    )
    assert (opts.temperature, opts.top_k, opts.max_tokens, opts.stop, opts.seed) == (
        0.2,
        7,
        12,
        ["END"],
        42,
    )
    assert (opts.repeat_penalty, opts.mirostat, opts.logprobs, opts.top_logprobs) == (
        1.3,
        2,
        True,
        3,
    )


def test_fill_context_num_predict_means_no_limit():
    assert sampling_options({"options": {"num_predict": -2}}).max_tokens == -1


@pytest.mark.parametrize(
    "options, field",
    [
        ({"temperature": "hot"}, "options.temperature"),
        ({"num_ctx": "big"}, "options.num_ctx"),
        ({"stop": [1]}, "options.stop"),
        ({"mirostat": 3}, "options.mirostat"),
    ],
)
def test_bad_option_values_are_400s_naming_them(options, field):
    with pytest.raises(InvalidRequest) as err:
        sampling_options({"options": options})
    assert err.value.param == field


def test_load_time_options_are_ignored_with_one_log_line(caplog):
    caplog.set_level(logging.INFO, logger="mullama.http.ollama")
    for _ in range(3):
        opts = convert.sampling_options(
            parse(
                protocol.GenerateBody,
                {
                    "model": "unique-model",
                    "options": {"num_ctx": 8192, "num_gpu": 99, "penalize_newline": True},
                },
            )
        )
    assert opts.max_tokens is None and opts.temperature is None
    notes = [r.getMessage() for r in caplog.records if "unique-model" in r.getMessage()]
    assert len(notes) == 2  # num_ctx and num_gpu, once each
    assert any("options.num_ctx=8192 ignored" in n for n in notes)


@pytest.mark.parametrize(
    "keep_alive, unloads",
    [
        (0, True),
        ("0", True),
        ("0s", True),
        ("0m", True),
        (0.0, True),
        (None, False),
        ("5m", False),
        (-1, False),
        ("-1m", False),
        (300, False),
    ],
)
def test_keep_alive_zero_unloads(keep_alive, unloads):
    assert convert.unloads(keep_alive) is unloads


def test_bad_keep_alive_is_a_400():
    with pytest.raises(InvalidRequest):
        convert.unloads("soon")


def test_chat_request_fields():
    req = chat_request(
        {
            "model": "gemma",
            "messages": [
                {"role": "system", "content": "Be brief"},
                {
                    "role": "assistant",
                    "content": "",
                    "thinking": "hmm",
                    "tool_calls": [{"function": {"name": "f", "arguments": {"a": 1}}}],
                },
                {"role": "tool", "content": "2", "tool_name": "f"},
            ],
            "format": {"type": "object"},
            "think": "high",
            "keep_alive": "10m",
            "tools": [{"type": "function", "function": {"name": "f"}}],
        }
    )
    assert [m.role for m in req.messages] == ["system", "assistant", "tool"]
    assert req.messages[1].thinking == "hmm"
    assert req.messages[1].tool_calls[0].arguments == '{"a": 1}'
    assert req.messages[2].name == "f"
    assert (req.format, req.think, req.keep_alive) == ({"type": "object"}, "high", "10m")


@pytest.mark.parametrize(
    "body, field",
    [
        ({"messages": []}, "model"),
        ({"model": "m", "messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
        (
            {"model": "m", "messages": [{"role": "user", "content": "x", "images": [1]}]},
            "messages[0].images[0]",
        ),
        ({"model": "m", "format": "yaml"}, "format"),
        ({"model": "m", "think": "very"}, "think"),
        ({"model": "m", "tools": ["f"]}, "tools[0]"),
    ],
)
def test_bad_chat_fields_are_400s_naming_them(body, field):
    with pytest.raises(InvalidRequest) as err:
        chat_request(body)
    assert err.value.param == field


def test_images_go_to_the_engine_request():
    assert generate_request({"model": "m", "prompt": "x", "images": ["aGk="]}).images == ["aGk="]
    chat = chat_request(
        {"model": "m", "messages": [{"role": "user", "content": "x", "images": ["aGk="]}]}
    )
    assert chat.messages[0].images == ["aGk="]


def test_generate_request_fields():
    req = generate_request(
        {
            "name": "gemma",
            "prompt": "p",
            "system": "s",
            "template": "t",
            "suffix": "end",
            "context": [1, 2],
            "format": "json",
        }
    )
    assert (req.model, req.prompt, req.system, req.template, req.suffix) == (
        "gemma",
        "p",
        "s",
        "t",
        "end",
    )
    assert req.raw is False and req.context == [1, 2] and req.format == "json"
    with pytest.raises(InvalidRequest):
        generate_request({"model": "m", "context": ["a"]})


def test_embed_inputs():
    assert embed_request({"model": "m", "input": "a"}).inputs == ["a"]
    assert (
        embed_request(
            {"model": "m", "input": ["a", "b"], "truncate": False, "dimensions": 8}
        ).dimensions
        == 8
    )
    assert embed_request({"model": "m", "input": ""}).inputs == []
    assert embed_request({"model": "m", "prompt": "x"}, legacy=True).inputs == ["x"]
    with pytest.raises(InvalidRequest):
        embed_request({"model": "m", "input": [1]})


@pytest.mark.parametrize(
    "store_name, shown",
    [
        ("gemma:latest", "gemma:latest"),
        ("hf:owner/repo:Q4_K_M", "hf.co/owner/repo:Q4_K_M"),
        ("hf:owner/repo", "hf.co/owner/repo:latest"),
        ("hf:owner/repo:Q8_0@abc1234", "hf.co/owner/repo:Q8_0@abc1234"),
    ],
)
def test_hf_models_are_named_as_ollama_names_them(store_name, shown):
    from mullama.engine.refs import parse_ref

    assert models.ollama_name(store_name) == shown
    assert parse_ref(shown).key == parse_ref(store_name).key


INFO = ModelInfo(
    name="pirate:latest",
    size=10,
    digest="sha256:" + "ab" * 32,
    modified_at="2025-01-01T00:00:00+00:00",
    kind="created",
    family="gemma3",
    families=["gemma3"],
    parameter_size="268M",
    quantization="Q4_K_M",
    source="gemma:latest",
    capabilities={"completion": True, "tools": True, "json": True, "vision": False},
)


def test_tag_entry():
    entry = models.tag(INFO).wire()
    assert entry["name"] == entry["model"] == "pirate:latest"
    assert entry["digest"] == "ab" * 32
    assert entry["details"] == {
        "parent_model": "gemma:latest",
        "format": "gguf",
        "family": "gemma3",
        "families": ["gemma3"],
        "parameter_size": "268M",
        "quantization_level": "Q4_K_M",
    }


def test_running_entry_kept_forever_expires_far_in_the_future():
    loaded = LoadedModel(name="pirate:latest", size=100, context_length=2048, expires_at="")
    entry = models.running(loaded, INFO).wire()
    assert entry["expires_at"] > "2300"
    assert (entry["size"], entry["size_vram"], entry["context_length"]) == (100, 0, 2048)
    assert entry["digest"] == "ab" * 32


def test_show_body():
    details = ModelDetails(
        info=INFO,
        modelfile="FROM gemma:latest\n",
        parameters={"temperature": 0.0, "stop": ["<end>", "x"]},
        template="{{ .Prompt }}",
        system="Arr",
        metadata={
            "general.architecture": "gemma3",
            "gemma3.context_length": 32768,
            "tokenizer.ggml.tokens": "[262144 items]",
            "projector": "/p",
        },
    )
    body = models.show(details).wire()
    assert body["capabilities"] == ["completion", "tools"]
    assert body["model_info"] == {
        "general.architecture": "gemma3",
        "gemma3.context_length": 32768,
        "tokenizer.ggml.tokens": [],
    }
    assert body["parameters"].splitlines() == [
        "temperature                    0.0",
        'stop                           "<end>"',
        'stop                           "x"',
    ]
    assert body["modelfile"].startswith("# Modelfile generated")
    assert "FROM gemma:latest" in body["modelfile"]
    assert (body["system"], body["template"]) == ("Arr", "{{ .Prompt }}")


def test_pull_progress_lines():
    digest = "sha256:" + "cd" * 32
    assert pull_status(PullProgress("resolving")) == {"status": "pulling manifest"}
    assert pull_status(
        PullProgress("downloading", file="m.gguf", digest=digest, completed=5, total=10)
    ) == {"status": "pulling " + "cd" * 6, "digest": digest, "total": 10, "completed": 5}
    assert pull_status(PullProgress("verifying")) == {"status": "verifying sha256 digest"}
    assert pull_status(PullProgress("writing")) == {"status": "writing manifest"}
    assert pull_status(PullProgress("success")) == {"status": "success"}
