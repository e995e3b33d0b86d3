"""The model library through the Engine API: the alias registry, a Hugging Face search and a
repository's quantizations, against the local fake hub through the real huggingface_hub."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import msgspec
import pytest

from mullama.engine.api import InvalidRequest, ModelNotFound, Unauthorized, Unavailable
from mullama.engine.local import LocalEngine
from tests.fakehub import make_gguf_bytes, sha256_hex, write_user_registry

MB = 1 << 20


@pytest.fixture
async def engine(store_settings):
    """A LocalEngine over an empty store (no model needed to browse)."""
    eng = LocalEngine(store_settings)
    yield eng
    await eng.close()


@pytest.fixture
def repos(fake_hub):
    fake_hub.add_repo(
        "acme/Tiny-GGUF",
        {
            "tiny-Q8_0.gguf": make_gguf_bytes(padding=2 * MB, seed="q8"),
            "tiny-q4_k_m.gguf": make_gguf_bytes(padding=MB, seed="q4"),
            "tiny-f16.gguf": make_gguf_bytes(padding=4 * MB, seed="f16"),
            "mmproj-tiny-f16.gguf": make_gguf_bytes(padding=1000, seed="proj"),
            "README.md": b"# tiny\n",
        },
        downloads=500,
        likes=7,
    )
    fake_hub.add_repo(
        "acme/Split-GGUF",
        {
            "big-Q4_K_M-00001-of-00002.gguf": make_gguf_bytes(padding=3000, seed="a"),
            "big-Q4_K_M-00002-of-00002.gguf": make_gguf_bytes(padding=3000, seed="b"),
            "sub/big-Q4_K_M.gguf": make_gguf_bytes(padding=100, seed="c"),
        },
        downloads=9000,
    )
    fake_hub.add_repo("other/Tiny-GGUF", {"x.Q4_0.gguf": b"GGUF"}, downloads=20, gated=True)
    fake_hub.add_repo("acme/secret-tiny-GGUF", {"s.Q4_0.gguf": b"GGUF"}, private=True)
    fake_hub.add_repo("acme/tiny-safetensors", {"model.safetensors": b"x"}, downloads=10**6)
    fake_hub.repo("acme/tiny-safetensors").tags = ["safetensors"]
    return fake_hub


async def test_search_lists_gguf_repos_most_downloaded_first(engine, repos):
    found = await engine.search_models("tiny")
    assert [m.repo for m in found] == ["acme/Tiny-GGUF", "other/Tiny-GGUF"]
    tiny, other = found
    assert (tiny.downloads, tiny.likes, tiny.gated, other.gated) == (500, 7, False, True)
    assert tiny.pipeline_tag == "text-generation" and tiny.created_at.startswith("2025-01-01")
    # what huggingface_hub asked the hub: the gguf filter, by downloads, the limit
    (search,) = [r for r in repos.requests if urlsplit(r["path"]).path == "/api/models"]
    query = parse_qs(urlsplit(search["path"]).query)
    assert query == {"search": ["tiny"], "filter": ["gguf"], "sort": ["downloads"], "limit": ["20"]}

    assert [m.repo for m in await engine.search_models("", limit=2)] == [
        "acme/Split-GGUF",
        "acme/Tiny-GGUF",
    ]
    assert await engine.search_models("no-such-thing") == []
    with pytest.raises(InvalidRequest, match="limit") as err:
        await engine.search_models("tiny", limit=0)
    assert err.value.param == "limit"


async def test_search_errors_say_which_hub_and_why(engine, repos, monkeypatch):
    repos.search_status = 500
    with pytest.raises(Unavailable, match="HTTP 500") as err:
        await engine.search_models("tiny")
    assert err.value.details["hub"] == repos.url and repos.url in err.value.message
    searches = [r for r in repos.requests if urlsplit(r["path"]).path == "/api/models"]
    assert len(searches) == 1  # asked once: someone is waiting for the answer

    from tests.helpers import free_port

    nowhere = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    monkeypatch.setenv("HF_ENDPOINT", nowhere)
    with pytest.raises(Unavailable, match=f"cannot search {nowhere} for 'tiny'") as err:
        await engine.search_models("tiny")
    assert err.value.details["hub"] == nowhere

    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(Unavailable, match="offline mode is on"):
        await engine.search_models("tiny")


async def test_quants_list_sizes_shards_and_the_preferred_pick(engine, repos):
    tiny = await engine.list_quants("acme/Tiny-GGUF")
    assert [(q.quant, q.ref, q.files) for q in tiny] == [  # smallest first, no projector
        ("Q4_K_M", "hf:acme/Tiny-GGUF:Q4_K_M", ["tiny-q4_k_m.gguf"]),
        ("Q8_0", "hf:acme/Tiny-GGUF:Q8_0", ["tiny-Q8_0.gguf"]),
        ("F16", "hf:acme/Tiny-GGUF:F16", ["tiny-f16.gguf"]),
    ]
    files = repos.repo("acme/Tiny-GGUF").commits[repos.repo("acme/Tiny-GGUF").refs["main"]]
    # what a pull downloads: the weights and the repository's projector, taken along
    projector = len(files["mmproj-tiny-f16.gguf"])
    assert [q.size for q in tiny] == [len(files[q.files[0]]) + projector for q in tiny]
    assert [q.preferred for q in tiny] == [True, False, False]  # Q4_K_M leads the preference

    split = await engine.list_quants("hf:acme/Split-GGUF")
    assert [(q.ref, len(q.files)) for q in split] == [
        ("hf:acme/Split-GGUF:sub/big-Q4_K_M.gguf", 1),  # the same quant: named by its file
        ("hf:acme/Split-GGUF:Q4_K_M", 2),  # the pick of :Q4_K_M (top level)
    ]
    split_files = repos.repo("acme/Split-GGUF").commits[repos.repo("acme/Split-GGUF").refs["main"]]
    assert split[1].size == sum(len(split_files[f]) for f in split[1].files)
    assert [q.preferred for q in split] == [False, True]


async def test_the_preferred_quant_follows_the_settings(store_settings, repos):
    settings = msgspec.structs.replace(store_settings, quant_preference="Q8_0,Q4_K_M")
    engine = LocalEngine(settings)
    try:
        quants = await engine.list_quants("acme/Tiny-GGUF")
        assert [q.quant for q in quants if q.preferred] == ["Q8_0"]
    finally:
        await engine.close()


async def test_a_listed_quant_pulls_that_file(engine, repos):
    q8 = next(q for q in await engine.list_quants("acme/Tiny-GGUF") if q.quant == "Q8_0")
    async for _ in engine.pull_model(q8.ref):
        pass
    (info,) = await engine.list_models()
    files = repos.repo("acme/Tiny-GGUF").commits[repos.repo("acme/Tiny-GGUF").refs["main"]]
    assert info.digest == "sha256:" + sha256_hex(files["tiny-Q8_0.gguf"])
    assert info.size == q8.size


async def test_quants_of_a_bad_missing_or_empty_repo_are_clear_errors(engine, repos):
    for bad in ("acme", "acme/Tiny-GGUF:Q8_0", "a/b/c", ""):
        with pytest.raises(InvalidRequest, match="owner/name") as err:
            await engine.list_quants(bad)
        assert err.value.param == "repo"
    with pytest.raises(Unauthorized, match="acme/Nothing-GGUF"):  # the hub's 401 for unknown
        await engine.list_quants("acme/Nothing-GGUF")
    with pytest.raises(ModelNotFound, match="no GGUF files in acme/tiny-safetensors"):
        await engine.list_quants("acme/tiny-safetensors")


async def test_unreachable_hub_for_quants_names_it(engine, monkeypatch):
    from tests.helpers import free_port

    nowhere = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("HF_ENDPOINT", nowhere)
    with pytest.raises(Unavailable) as err:
        await engine.list_quants("acme/Tiny-GGUF")
    assert err.value.details["hub"] == nowhere


async def test_aliases_merge_the_bundled_list_with_the_users(engine, store_settings):
    bundled = {a.name: a for a in await engine.list_aliases()}
    assert bundled["llama3.2:1b"].repo == "meta-llama/Llama-3.2-1B-Instruct-GGUF"
    assert bundled["llama3.2:1b"].description and bundled["llama3.2:1b"].quant == "Q4_K_M"
    assert bundled["phi3:mini"].file.endswith(".gguf") and bundled["phi3:mini"].quant == ""
    assert bundled["nomic-embed-text:v1.5"].capabilities["embedding"] is True
    write_user_registry(
        store_settings,
        '[models."tiny:1m"]\nrepo = "acme/Tiny-GGUF"\ndefault_quant = "q8_0"\n'
        'description = "A tiny test model"\nsize = 2_100_000\n'
        '[models."llama3.2:1b"]\ndescription = "mine now"\n'
        '[models."odd:1"]\nrepo = "a/b"\nsize = "big"\n',
    )
    aliases = {a.name: a for a in await engine.list_aliases()}
    tiny = aliases["tiny:1m"]
    assert (tiny.origin, tiny.quant, tiny.size, tiny.description) == (
        "user",
        "Q8_0",
        2_100_000,
        "A tiny test model",
    )
    assert aliases["llama3.2:1b"].description == "mine now"
    assert aliases["llama3.2:1b"].origin == "both"
    assert aliases["odd:1"].size == 0  # a size that is not a number is not shown


def test_the_bundled_test_models_size_is_its_packaged_file(test_model_path):
    from mullama.engine.registry import Registry

    assert Registry().get("gemma3:270m").size == test_model_path.stat().st_size
