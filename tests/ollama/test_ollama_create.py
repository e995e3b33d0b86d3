"""``/api/create`` bodies: the model that checks them and the Modelfile they become, in-process
(a stub engine answers the blob look-ups)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from mullama.engine.api import InvalidRequest
from mullama.http.common.protocol import parse
from mullama.http.errors import OLLAMA, engine_error_body
from mullama.http.ollama import create
from mullama.http.ollama.protocol import CreateBody

DIGEST = "sha256:" + "a" * 64
STORED = {DIGEST: "/blobs/sha256-aaaa"}


def stub_request() -> SimpleNamespace:
    async def blob_path(digest: str) -> str | None:
        return STORED.get(digest)

    engine = SimpleNamespace(blob_path=blob_path)
    return SimpleNamespace(app=SimpleNamespace(ctx=SimpleNamespace(engine=engine)))


def modelfile(body: dict) -> str:
    return asyncio.run(create.modelfile(stub_request(), parse(CreateBody, body)))


@pytest.mark.parametrize(
    "body, words",
    [
        ({"from": "gemma"}, "model is required"),
        ({"model": "x"}, "neither 'from' nor 'files' was specified"),
        ({"model": "x", "from": ""}, "neither 'from' nor 'files'"),
        ({"model": "x", "path": "/tmp/Modelfile"}, "path is not supported"),
        ({"model": "x", "from": "a", "modelfile": "FROM b"}, "give only one of from, files"),
        ({"model": "x", "from": 3}, "from must be a string, got integer"),
        ({"model": "x", "from": "a", "quantize": "q4_K_M"}, "quantize is not supported"),
        ({"model": "x", "files": "m.gguf"}, "files must be an object, got string"),
        ({"model": "x", "files": {"m.gguf": 1}}, "files['m.gguf'] must be a sha256 digest"),
        ({"model": "x", "files": {"m.safetensors": DIGEST}}, "m.safetensors is not a GGUF"),
        ({"model": "x", "files": {"a.gguf": DIGEST, "b.gguf": DIGEST}}, "give one GGUF file"),
        ({"model": "x", "from": "a", "adapters": {"l.bin": DIGEST}}, "adapters: l.bin is not"),
        ({"model": "x", "from": "a", "system": 1}, "system must be a string, got integer"),
        ({"model": "x", "from": "a", "license": 1}, "license must be a string or an array"),
        ({"model": "x", "from": "a", "parameters": []}, "parameters must be an object"),
        (
            {"model": "x", "from": "a", "parameters": {"temprature": 1}},
            'parameters: unknown parameter "temprature"; did you mean "temperature"?',
        ),
        (
            {"model": "x", "from": "a", "parameters": {"Num-Ctx": 1}},
            'unknown parameter "Num-Ctx"',
        ),
        (
            {"model": "x", "from": "a", "parameters": {"num_ctx": "big"}},
            "parameters: parameter num_ctx expects an integer",
        ),
        ({"model": "x", "from": "a", "messages": {}}, "messages must be an array, got object"),
        ({"model": "x", "from": "a", "messages": ["hi"]}, "messages[0] must be an object"),
        ({"model": "x", "from": "a", "messages": [{}]}, "messages[0].role is required"),
        (
            {"model": "x", "from": "a", "messages": [{"role": "tool"}]},
            "messages[0].role must be system, user or assistant",
        ),
        (
            {"model": "x", "from": "a", "messages": [{"role": "user", "content": 2}]},
            "messages[0].content must be a string, got integer",
        ),
        ({"model": "x", "modelfile": "PARAMETER"}, "modelfile: "),
        (
            {"model": "x", "files": {"m.gguf": "sha256:" + "1" * 64}},
            "upload it first with POST /api/blobs/sha256:111",
        ),
    ],
)
def test_bad_create_bodies_are_ollama_400s_naming_the_field(body, words):
    with pytest.raises(InvalidRequest) as err:
        modelfile(body)
    assert words in err.value.message
    assert engine_error_body(OLLAMA, err.value) == {"error": err.value.message}


def test_from_a_model_with_overrides():
    text = modelfile(
        {
            "name": "pirate",  # the legacy spelling of model
            "from": "gemma",
            "system": "You are a pirate.",
            "template": "{{ .Prompt }}",
            "license": ["MIT", "Apache-2.0"],
            "parameters": {"num_predict": "3", "stop": ["<end_of_turn>", "Arr"]},
            "messages": [{"role": "user", "content": "Ahoy"}, {"role": "assistant"}],
            "quantize": "",  # empty: not asked for
            "path": None,
            "unknown": 1,  # clients send more than Mullama reads
        }
    )
    assert text.startswith("FROM gemma\n")
    assert 'SYSTEM "You are a pirate."' in text and "TEMPLATE" in text
    assert "PARAMETER num_predict 3" in text and "PARAMETER stop Arr" in text
    assert "MESSAGE user Ahoy" in text and "MIT" in text and "Apache-2.0" in text


def test_from_uploaded_files_and_modelfile_text():
    text = modelfile({"model": "x", "files": {"M.GGUF": DIGEST}, "adapters": {"l.gguf": DIGEST}})
    assert text.startswith(f"FROM {STORED[DIGEST]}\n") and f"ADAPTER {STORED[DIGEST]}" in text
    vision = {"model": "x", "files": {"model.gguf": DIGEST, "mmproj-model-f16.gguf": DIGEST}}
    text = modelfile(vision)
    assert f"FROM {STORED[DIGEST]}\n" in text and f"VISION_PROJECTOR {STORED[DIGEST]}" in text
    text = modelfile({"model": "x", "modelfile": "FROM gemma\nSYSTEM hi\n", "system": "bye"})
    assert text.startswith("FROM gemma\n") and "bye" in text and "hi" not in text
    assert parse(CreateBody, {"model": "x", "from": "a"}).stream is True
