"""Raw HTTP the way Ollama front ends drive a server: Open WebUI and oterm, plus blob uploads
and error shapes, against the real daemon."""

from __future__ import annotations

import hashlib
import json

import pytest

from tests.fakehub import make_gguf

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def lines(response) -> list[dict]:
    return [json.loads(line) for line in response.text.splitlines() if line.strip()]


def test_root_and_version(http):
    assert http.get("/").text == "Mullama is running"
    assert http.head("/").status_code == 200
    version = http.get("/api/version").json()["version"]
    # Open WebUI compares the version with the Ollama release a feature needs.
    assert tuple(int(p) for p in version.split(".")) >= (0, 5, 0)


def test_open_webui_chat_flow(http):
    models = http.get("/api/tags").json()["models"]
    names = [m["name"] for m in models]
    assert "gemma:latest" in names
    # Open WebUI adds ":latest" to a bare name; both spellings reach the same model.
    body = {
        "model": "gemma:latest",
        "messages": [{"role": "user", "content": "Hi"}],
        "options": {"num_predict": 4, "num_ctx": 2048},
        "keep_alive": "5m",
    }
    r = http.post("/api/chat", json=body)
    assert r.status_code == 200 and r.headers["content-type"] == "application/x-ndjson"
    chunks = lines(r)
    assert all(c["model"] == "gemma:latest" for c in chunks)
    assert all(c["created_at"].endswith("Z") for c in chunks)
    final = chunks[-1]
    assert final["done"] is True and final["done_reason"] in ("stop", "length")
    for key in (
        "total_duration",
        "load_duration",
        "prompt_eval_count",
        "prompt_eval_duration",
        "eval_count",
        "eval_duration",
    ):
        assert isinstance(final[key], int), key
    text = "".join(c["message"]["content"] for c in chunks)
    whole = http.post("/api/chat", json={**body, "model": "gemma", "stream": False}).json()
    assert whole["message"]["content"] == text and whole["model"] == "gemma"
    # Open WebUI's "unload model": an empty generate with keep_alive 0.
    r = http.post("/api/generate", json={"model": "gemma:latest", "prompt": "", "keep_alive": 0})
    assert r.json()["done_reason"] == "unload"
    assert "gemma:latest" not in [m["model"] for m in http.get("/api/ps").json()["models"]]


def test_oterm_model_picker_flow(http):
    models = http.get("/api/tags").json()["models"]
    assert "gemma:latest" in [m["model"] for m in models]
    for model in models:
        shown = http.post("/api/show", json={"model": model["model"]}).json()
        assert "completion" in shown["capabilities"]
        arch = shown["model_info"]["general.architecture"]
        assert shown["model_info"][f"{arch}.context_length"] > 0
        assert shown["details"] == model["details"]
    # oterm offers tools and thinking only to models whose capabilities list them; the plain
    # test model declares neither (other tests may add models that do)
    shown = http.post("/api/show", json={"model": "gemma:latest"}).json()
    assert "tools" not in shown["capabilities"] and "thinking" not in shown["capabilities"]


def test_legacy_name_field(http):
    r = http.post("/api/show", json={"name": "gemma"})
    assert r.status_code == 200 and r.json()["details"]["family"] == "gemma3"


@pytest.mark.parametrize(
    "method, path, body, status, words",
    [
        ("POST", "/api/chat", b"{not json", 400, "not valid JSON"),
        ("POST", "/api/chat", b'{"messages": []}', 400, "model is required"),
        (
            "POST",
            "/api/generate",
            b'{"model": "gemma", "prompt": "x", "options": {"top_k": "many"}}',
            400,
            "top_k",
        ),
        (
            "POST",
            "/api/generate",
            b'{"model": "no-such-model", "prompt": "x"}',
            404,
            "no-such-model",
        ),
        ("DELETE", "/api/delete", b'{"model": "no-such-model"}', 404, "no-such-model"),
        ("POST", "/api/create", b'{"model": "x"}', 400, "from"),
        ("POST", "/api/pull", b'{"model": "no-such-alias"}', 404, "no-such-alias"),
    ],
)
def test_errors_are_ollama_shaped(http, method, path, body, status, words):
    r = http.request(method, path, content=body)
    assert r.status_code == status
    assert set(r.json()) == {"error"} and words in r.json()["error"]


def test_blob_upload_and_create_from_files(http, tmp_path):
    data = make_gguf(tmp_path / "tiny.gguf", name="tiny").read_bytes()
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    assert http.head(f"/api/blobs/{digest}").status_code == 404
    wrong = "sha256:" + "0" * 64
    r = http.post(f"/api/blobs/{wrong}", content=data)
    assert r.status_code == 400 and "digest mismatch" in r.json()["error"]
    assert http.post(f"/api/blobs/{digest}", content=data).status_code == 201
    assert http.head(f"/api/blobs/{digest}").status_code == 200
    r = http.post(
        "/api/create",
        json={"model": "tiny", "files": {"tiny.gguf": digest}, "system": "Tiny.", "stream": False},
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "success"}
    shown = http.post("/api/show", json={"model": "tiny"}).json()
    assert shown["details"]["family"] == "llama" and shown["system"] == "Tiny."
    assert http.request("DELETE", "/api/delete", json={"model": "tiny"}).status_code == 200
    missing = "sha256:" + "1" * 64
    r = http.post("/api/create", json={"model": "tiny2", "files": {"m.gguf": missing}})
    assert r.status_code == 400 and "upload it first" in r.json()["error"]


def test_uploads_larger_than_the_body_limit_stream_to_the_store(client, test_model_path):
    # The test model (about 250 MB) is far over the 32 MB JSON body limit.
    digest = client.create_blob(test_model_path)
    assert (
        client.create(
            model="gemma-upload", files={"model.gguf": digest}, template="{{ .Prompt }}"
        ).status
        == "success"
    )
    assert client.show("gemma-upload").details.family == "gemma3"
    client.delete("gemma-upload")
