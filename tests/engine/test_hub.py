"""Pulls from a local fake Hugging Face hub, through the real huggingface_hub client."""

from __future__ import annotations

import hashlib
import threading

import msgspec
import pytest

from mullama.engine.api import Cancelled, EngineError, ModelNotFound, Unavailable
from mullama.engine.hub import (
    CHUNK,
    PROGRESS_BYTES,
    HubAccessError,
    RemoteFile,
    choose_files,
    quant_of,
)
from mullama.engine.store import ModelStore
from tests.fakehub import make_gguf_bytes, sha256_hex, write_user_registry

MB = 1 << 20


@pytest.fixture
def tiny(fake_hub):
    """acme/Tiny-GGUF with Q4_K_M (3 MB), Q8_0 and F16 files and a README."""
    files = {
        "tiny-q4_k_m.gguf": make_gguf_bytes(name="tiny", file_type=15, padding=3 * MB, seed="q4"),
        "tiny-Q8_0.gguf": make_gguf_bytes(name="tiny", file_type=7, padding=200_000, seed="q8"),
        "tiny-f16.gguf": make_gguf_bytes(name="tiny", file_type=1, padding=100_000, seed="f16"),
        "README.md": b"# tiny\n",
    }
    fake_hub.add_repo("acme/Tiny-GGUF", files)
    return files


def blobs(store: ModelStore) -> set[str]:
    return {p.name for p in store.blobs_dir.iterdir()}


def test_pull_hf_default_quant_preference(model_store, tiny, fake_hub):
    events = []
    info = model_store.pull("hf:acme/Tiny-GGUF", progress=events.append)
    digest = sha256_hex(tiny["tiny-q4_k_m.gguf"])
    assert info.name == "hf:acme/Tiny-GGUF"
    assert info.digest == f"sha256:{digest}" and info.quantization == "Q4_K_M"
    assert info.size == len(tiny["tiny-q4_k_m.gguf"]) and info.family == "llama"
    assert model_store.blob_path(digest).read_bytes() == tiny["tiny-q4_k_m.gguf"]
    assert [m.name for m in model_store.list()] == ["hf:acme/Tiny-GGUF"]
    statuses = [e.status for e in events]
    assert statuses[0] == "resolving" and statuses[-1] == "success"
    assert {"downloading", "verifying", "writing"} <= set(statuses)
    # progress at least every 1 MB
    downloading = [e for e in events if e.status == "downloading" and e.file == "tiny-q4_k_m.gguf"]
    assert downloading[-1].completed == downloading[-1].total == info.size
    gaps = [b.completed - a.completed for a, b in zip(downloading, downloading[1:])]
    assert len(downloading) >= 4 and max(gaps) <= PROGRESS_BYTES + CHUNK
    assert all(e.digest == f"sha256:{digest}" for e in downloading)
    # nothing left behind in partial/
    assert not any(model_store.partial_dir.iterdir())
    # the store resolves it
    resolved = model_store.resolve("hf:acme/Tiny-GGUF")
    assert resolved.weights == model_store.blob_path(digest) and resolved.projector is None
    # the settings preference list is honoured
    fresh = ModelStore(
        msgspec.structs.replace(model_store.settings, quant_preference="q8_0,Q4_K_M")
    )
    info8 = fresh.pull("hf.co/acme/Tiny-GGUF:latest")
    assert info8.quantization == "Q8_0" and info8.name == "hf:acme/Tiny-GGUF"


def test_pull_hf_quant_is_case_insensitive(model_store, tiny):
    for text, file in (
        ("hf:acme/Tiny-GGUF:q8_0", "tiny-Q8_0.gguf"),
        ("hf:acme/Tiny-GGUF:Q4_k_M", "tiny-q4_k_m.gguf"),
        ("hf.co/acme/Tiny-GGUF:F16", "tiny-f16.gguf"),
    ):
        info = model_store.pull(text)
        assert info.digest == f"sha256:{sha256_hex(tiny[file])}", text
    assert {m.name for m in model_store.list()} == {
        "hf:acme/Tiny-GGUF:Q8_0",
        "hf:acme/Tiny-GGUF:Q4_K_M",
        "hf:acme/Tiny-GGUF:F16",
    }
    # resolve with any case
    assert model_store.resolve("hf:acme/Tiny-GGUF:Q8_0").info.quantization == "Q8_0"
    assert model_store.resolve("hf:acme/tiny-gguf:q8_0").name == "hf:acme/Tiny-GGUF:Q8_0"


def test_pull_exact_file_and_missing_quant(model_store, tiny):
    info = model_store.pull("hf:acme/Tiny-GGUF:tiny-f16.gguf")
    assert info.digest == f"sha256:{sha256_hex(tiny['tiny-f16.gguf'])}"
    with pytest.raises(ModelNotFound) as err:
        model_store.pull("hf:acme/Tiny-GGUF:Q6_K")
    assert "Q4_K_M" in err.value.message and "Q8_0" in err.value.message
    with pytest.raises(ModelNotFound, match="nope.gguf"):
        model_store.pull("hf:acme/Tiny-GGUF:nope.gguf")


def test_pull_by_alias_pointed_at_the_fake_hub(model_store, tiny, store_settings):
    write_user_registry(
        store_settings,
        """
[models."tiny:1b"]
repo = "acme/Tiny-GGUF"
default_quant = "Q8_0"
family = "tinyfam"
description = "A tiny test model"
tags = ["chat", "tools"]
template = "{{ .Prompt }}"
system = "Be short."
stop = ["</s>"]
params = { temperature = 0.2 }
""",
    )
    info = model_store.pull("tiny:1b")
    assert info.name == "tiny:1b" and info.quantization == "Q8_0" and info.family == "tinyfam"
    assert info.capabilities["tools"] is True and info.source == "tiny:1b"
    resolved = model_store.resolve("tiny:1b")
    assert resolved.spec.template == "{{ .Prompt }}" and resolved.spec.system == "Be short."
    assert resolved.spec.parameters == {"temperature": 0.2, "stop": ["</s>"]}
    details = model_store.show("tiny:1b")
    assert "Be short." in details.modelfile and details.parameters["stop"] == ["</s>"]
    assert details.metadata["general.architecture"] == "llama"
    assert details.metadata["llama.context_length"] == 2048
    assert details.metadata["tokenizer.ggml.tokens"] == "[100 items]"


def test_pinned_revision_downloads_that_revision(model_store, fake_hub):
    old = make_gguf_bytes(name="rev", padding=50_000, seed="old")
    new = make_gguf_bytes(name="rev", padding=50_000, seed="new")
    repo = fake_hub.add_repo("acme/Rev-GGUF", {"rev-Q4_K_M.gguf": old})
    first = repo.refs["main"]
    repo.commit({"rev-Q4_K_M.gguf": new})
    pinned = model_store.pull(f"hf:acme/Rev-GGUF:Q4_K_M@{first}")
    latest = model_store.pull("hf:acme/Rev-GGUF:Q4_K_M")
    short = model_store.pull(f"hf:acme/Rev-GGUF@{first[:7]}")
    assert pinned.digest == f"sha256:{sha256_hex(old)}" == short.digest
    assert latest.digest == f"sha256:{sha256_hex(new)}"
    assert pinned.name == f"hf:acme/Rev-GGUF:Q4_K_M@{first}"
    manifest = model_store.manifests.read(pinned.name)
    assert manifest is not None and manifest.hub and manifest.hub.commit == first
    # every content request named the commit, never the branch
    assert all(first in r["path"] or repo.refs["main"] in r["path"] for r in fake_hub.gets(".gguf"))
    with pytest.raises(ModelNotFound, match="revision"):
        model_store.pull("hf:acme/Rev-GGUF@doesnotexist")


def test_resume_after_a_cut_connection(model_store, tiny, fake_hub):
    fake_hub.cut_next("tiny-q4_k_m.gguf", 1_300_000)
    info = model_store.pull("hf:acme/Tiny-GGUF:Q4_K_M")
    data = tiny["tiny-q4_k_m.gguf"]
    assert info.digest == f"sha256:{sha256_hex(data)}"
    gets = fake_hub.gets("tiny-q4_k_m.gguf")
    assert len(gets) == 2
    assert "Range" not in gets[0]["headers"]
    start = int(gets[1]["headers"]["Range"].removeprefix("bytes=").rstrip("-"))
    assert 0 < start <= 1_300_000  # resumed from what had arrived, not from zero


def test_cancel_then_resume_in_a_later_pull(model_store, tiny, fake_hub):
    fake_hub.delay_per_chunk = 0.01
    cancel = threading.Event()
    seen = []

    def progress(p):
        seen.append(p)
        if p.status == "downloading" and p.completed >= MB:
            cancel.set()

    with pytest.raises(Cancelled):
        model_store.pull("hf:acme/Tiny-GGUF:Q4_K_M", progress=progress, cancel=cancel)
    # no model is visible, the partial download is kept in partial/
    assert model_store.list() == []
    assert blobs(model_store) == set()
    parts = [p for p in model_store.partial_dir.iterdir() if p.suffix == ".part"]
    assert len(parts) == 1 and 0 < parts[0].stat().st_size < len(tiny["tiny-q4_k_m.gguf"])
    kept = parts[0].stat().st_size
    with pytest.raises(ModelNotFound, match="not pulled"):
        model_store.resolve("hf:acme/Tiny-GGUF:Q4_K_M")

    fake_hub.delay_per_chunk = 0
    info = model_store.pull("hf:acme/Tiny-GGUF:Q4_K_M")
    assert info.digest == f"sha256:{sha256_hex(tiny['tiny-q4_k_m.gguf'])}"
    last = fake_hub.gets("tiny-q4_k_m.gguf")[-1]
    assert last["headers"]["Range"] == f"bytes={kept}-"
    assert not any(model_store.partial_dir.iterdir())


def test_checksum_mismatch_fails_cleanly(model_store, tiny, fake_hub):
    fake_hub.advertise_wrong_checksum("acme/Tiny-GGUF", "tiny-Q8_0.gguf")
    with pytest.raises(EngineError, match="checksum mismatch") as err:
        model_store.pull("hf:acme/Tiny-GGUF:Q8_0")
    assert err.value.details["actual"] == f"sha256:{sha256_hex(tiny['tiny-Q8_0.gguf'])}"
    assert model_store.list() == []
    assert blobs(model_store) == set()
    assert not any(model_store.partial_dir.iterdir())


def test_gated_repo_needs_a_token(store_settings, fake_hub, monkeypatch):
    data = make_gguf_bytes(name="gated", padding=10_000)
    fake_hub.add_repo("corp/Gated-GGUF", {"g-Q4_K_M.gguf": data}, gated=True, tokens={"hf_good"})
    store = ModelStore(store_settings)
    with pytest.raises(HubAccessError) as err:
        store.pull("hf:corp/Gated-GGUF")
    assert "gated" in err.value.message and "HF_TOKEN" in err.value.message
    assert store.list() == []
    monkeypatch.setenv("HF_TOKEN", "hf_wrong")
    with pytest.raises(HubAccessError, match="refused|HF_TOKEN"):
        store.pull("hf:corp/Gated-GGUF")
    monkeypatch.delenv("HF_TOKEN")
    store_settings.hf_token = "hf_good"
    info = ModelStore(store_settings).pull("hf:corp/Gated-GGUF")
    assert info.digest == f"sha256:{sha256_hex(data)}"


def test_private_or_missing_repo(model_store, fake_hub):
    fake_hub.add_repo(
        "corp/Private-GGUF", {"p-Q4_K_M.gguf": make_gguf_bytes()}, private=True, tokens={"tok"}
    )
    with pytest.raises(HubAccessError, match="HF_TOKEN"):
        model_store.pull("hf:corp/Private-GGUF")
    with pytest.raises(HubAccessError, match="does not exist"):
        model_store.pull("hf:nobody/Missing-GGUF")


def test_sharded_gguf_downloads_every_shard(model_store, fake_hub):
    shards = {
        f"big/Big-Q4_K_M-{i:05d}-of-00003.gguf": make_gguf_bytes(
            name=f"shard{i}", padding=40_000, seed=str(i)
        )
        for i in (1, 2, 3)
    }
    other = {"Big-Q8_0.gguf": make_gguf_bytes(name="q8", padding=1000)}
    fake_hub.add_repo("acme/Big-GGUF", {**shards, **other})
    info = model_store.pull("hf:acme/Big-GGUF:Q4_K_M")
    assert info.size == sum(len(b) for b in shards.values())
    resolved = model_store.resolve("hf:acme/Big-GGUF:Q4_K_M")
    assert resolved.weights.name == "Big-Q4_K_M-00001-of-00003.gguf"
    for path, data in shards.items():
        sibling = resolved.weights.parent / path.rsplit("/", 1)[1]
        assert sibling.read_bytes() == data
        assert model_store.has_blob(sha256_hex(data))
    # the default preference picks the top-level single file over shards of another quant? no:
    # Q4_K_M comes first in the preference list, so the shards win
    assert model_store.pull("hf:acme/Big-GGUF").size == info.size


def test_alias_with_projector_downloads_it(model_store, store_settings, fake_hub):
    weights = make_gguf_bytes(name="vis", padding=20_000)
    proj = make_gguf_bytes(
        arch="clip", name="proj", padding=5_000, extra={"clip.has_vision_encoder": True}
    )
    fake_hub.add_repo(
        "acme/Vis-GGUF",
        {
            "vis-Q4_K_M.gguf": weights,
            "mmproj-vis-f16.gguf": proj,
            "mmproj-vis-q8_0.gguf": make_gguf_bytes(name="p8"),
        },
    )
    write_user_registry(
        store_settings,
        '[models."vis:1b"]\nrepo = "acme/Vis-GGUF"\n'
        'projector = "mmproj-vis-f16.gguf"\ntags = ["vision"]\n'
        '[models."vis:auto"]\nrepo = "acme/Vis-GGUF"\nprojector = "auto"\n',
    )
    info = model_store.pull("vis:1b")
    assert info.capabilities["vision"] is True
    assert info.size == len(weights) + len(proj)
    resolved = model_store.resolve("vis:1b")
    assert resolved.projector.read_bytes() == proj
    assert resolved.weights.read_bytes() == weights
    # the projector is never chosen as the weights
    assert model_store.pull("vis:auto").digest == f"sha256:{sha256_hex(weights)}"
    assert model_store.resolve("vis:auto").projector.read_bytes() == proj
    # a bare repository takes its projector along; one without has none
    bare = model_store.pull("hf:acme/Vis-GGUF")
    assert bare.capabilities["vision"] is True and bare.size == len(weights) + len(proj)
    assert model_store.resolve("hf:acme/Vis-GGUF").projector.read_bytes() == proj
    fake_hub.add_repo("acme/Plain-GGUF", {"plain-Q4_K_M.gguf": make_gguf_bytes(name="plain")})
    plain = model_store.pull("hf:acme/Plain-GGUF")
    assert plain.capabilities["vision"] is False
    assert model_store.resolve("hf:acme/Plain-GGUF").projector is None


def test_concurrent_pulls_of_the_same_model(model_store, tiny, fake_hub):
    fake_hub.delay_per_chunk = 0.002
    errors, infos = [], []

    def pull():
        try:
            infos.append(ModelStore(model_store.settings).pull("hf:acme/Tiny-GGUF"))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=pull) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert len({i.digest for i in infos}) == 1 and len(infos) == 4
    assert blobs(model_store) == {f"sha256-{sha256_hex(tiny['tiny-q4_k_m.gguf'])}"}
    assert len(fake_hub.gets("tiny-q4_k_m.gguf")) == 1  # downloaded once
    assert [m.name for m in model_store.list()] == ["hf:acme/Tiny-GGUF"]


def test_endpoint_is_read_at_call_time(model_store, tiny, fake_hub, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    with pytest.raises(EngineError):
        model_store.pull("hf:acme/Tiny-GGUF")
    monkeypatch.setenv("HF_ENDPOINT", fake_hub.url)
    assert model_store.pull("hf:acme/Tiny-GGUF").quantization == "Q4_K_M"


def test_choose_files_rules():
    files = [
        RemoteFile(p, 1)
        for p in (
            "m-IQ4_XS.gguf",
            "m-Q4_0.gguf",
            "m-Q4_0_4_4.gguf",
            "m-Q4_K_M.gguf",
            "Q4_K_M/m-Q4_K_M.gguf",
            "m-q5_k_m-00001-of-00002.gguf",
            "m-q5_k_m-00002-of-00002.gguf",
            "m-q6_k-00001-of-00002.gguf",
            "mmproj-m-f16.gguf",
            "README.md",
        )
    ]
    pick = lambda **kw: [f.path for f in choose_files(files, repo="r", **kw)[0]]  # noqa: E731
    assert pick(quant="q4_0") == ["m-Q4_0.gguf"]  # not Q4_0_4_4
    assert pick(quant="Q4_K_M") == ["m-Q4_K_M.gguf"]  # top level first
    assert pick(quant="IQ4_XS") == ["m-IQ4_XS.gguf"]
    assert pick(quant="Q5_K_M") == ["m-q5_k_m-00001-of-00002.gguf", "m-q5_k_m-00002-of-00002.gguf"]
    assert pick(file="m-q5_k_m-00002-of-00002.gguf")[0] == "m-q5_k_m-00001-of-00002.gguf"
    with pytest.raises(ModelNotFound):
        pick(quant="Q6_K")  # incomplete shard set
    with pytest.raises(ModelNotFound):
        pick(quant="F16")  # only a projector has f16
    assert pick(quant_order=["Q8_0", "IQ4_XS"]) == ["m-IQ4_XS.gguf"]
    assert quant_of("x-q4_k_m.gguf") == "Q4_K_M" and quant_of("x.fp16.gguf") == "F16"
    assert quant_of("Phi-3-mini-4k-instruct-q4.gguf") == ""


def test_sha256_helper_matches_hashlib():
    assert sha256_hex(b"abc") == hashlib.sha256(b"abc").hexdigest()


def test_pulls_racing_deletes_never_leave_a_model_without_weights(model_store, tiny):
    model_store.pull("hf:acme/Tiny-GGUF:Q8_0")
    errors = []

    def churn():
        store = ModelStore(model_store.settings)
        try:
            for _ in range(10):
                store.copy("hf:acme/Tiny-GGUF:Q8_0", "other")
                store.delete("other")
        except Exception as exc:  # pragma: no cover
            errors.append(exc)

    def repull():
        store = ModelStore(model_store.settings)
        try:
            for _ in range(5):
                store.delete("hf:acme/Tiny-GGUF:Q8_0") if store.names() else None
                store.pull("hf:acme/Tiny-GGUF:Q8_0")
        except Exception as exc:  # pragma: no cover
            errors.append(exc)

    threads = [threading.Thread(target=churn), threading.Thread(target=repull)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    # copy may legitimately find its source deleted mid-way; nothing else may fail
    assert all(isinstance(e, ModelNotFound) for e in errors), errors
    for info in model_store.list():
        assert model_store.resolve(info.name).weights.exists()
    assert (
        model_store.resolve("hf:acme/Tiny-GGUF:Q8_0").weights.read_bytes() == tiny["tiny-Q8_0.gguf"]
    )


def test_an_unreachable_hub_is_unavailable_naming_the_hub(model_store, monkeypatch):
    from mullama.cli.errors import hint_for
    from tests.helpers import free_port

    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    with pytest.raises(Unavailable) as err:
        model_store.pull("hf:acme/Nowhere-GGUF")
    assert err.value.details["hub"] == endpoint
    hint = hint_for(err.value, model_store.settings, "pull")
    assert endpoint in hint and "daemon" not in hint  # the hub is down, not the daemon


def test_a_pull_typo_is_not_told_to_pull(model_store):
    from mullama.cli.errors import hint_for

    with pytest.raises(ModelNotFound) as err:
        model_store.pull("no-such-alias-at-all")
    hint = hint_for(err.value, model_store.settings, "pull")
    assert "mullama pull" not in hint and "hf:owner/repo" in hint
