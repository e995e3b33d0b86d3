"""Images in every dialect, sent by the official SDKs to a real daemon serving the tiny
random-weight Gemma 3 vision pair (tests/gguf_fixtures.py): each image adds its 18 prompt
tokens (16 image tokens + start and end of image), a follow-up with the same image is served
from the cache, image URLs are fetched only when the server allows it (within a size and a
time limit), and bad images, too many images and a model without a projector are 400s in
the dialect's own error shape."""

from __future__ import annotations

import base64
import contextlib
import http.server
import io
import threading
import time

import anthropic
import httpx
import numpy as np
import ollama
import openai
import pytest
from PIL import Image

from tests.gguf_fixtures import build_vision
from tests.helpers import GEMMA_TEMPLATE, free_port, run_daemon, serve_command, settings_env

pytestmark = pytest.mark.slow

IMAGE_CELLS = 18
MAX_IMAGE_BYTES = 100_000


def image_bytes(seed: int = 0, fmt: str = "PNG") -> bytes:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(out, fmt)
    return out.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def data_url(seed: int = 0) -> str:
    return "data:image/png;base64," + b64(image_bytes(seed))


class Images(http.server.BaseHTTPRequestHandler):
    """/cat.png: an image; /big.png: over the limit; /slow.png: never answers in time."""

    def do_GET(self):
        if self.path == "/slow.png":
            time.sleep(20)
        body = {
            "/cat.png": image_bytes(7),
            "/big.png": bytes(MAX_IMAGE_BYTES + 1),
            "/slow.png": b"",
        }.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError):  # the slow one: the client left
            self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def images_site():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Images)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture(scope="module")
def vision_daemon(tmp_path_factory):
    from mullama.config import load_settings
    from mullama.engine.store import ModelStore

    root = tmp_path_factory.mktemp("vision-http")
    model, mmproj = build_vision(root / "pair")
    env = {
        **settings_env(root),
        "MULLAMA_NUM_PARALLEL": "4",
        "MULLAMA_VISION_FETCH_URLS": "true",
        "MULLAMA_VISION_FETCH_TIMEOUT": "2",
        "MULLAMA_VISION_MAX_IMAGES": "2",
        "MULLAMA_VISION_MAX_IMAGE_BYTES": str(MAX_IMAGE_BYTES),
    }
    store = ModelStore(load_settings(env=env))
    params = f'TEMPLATE """{GEMMA_TEMPLATE}"""\nPARAMETER temperature 0\nPARAMETER num_ctx 2048\n'
    store.create("tiny-vision", f"FROM {model}\nVISION_PROJECTOR {mmproj}\n{params}", None)
    store.create("tiny-text", f"FROM {model}\n{params}", None)
    with run_daemon(root, env=env, command=serve_command()) as daemon:
        daemon.pair = (model, mmproj)
        yield daemon


@pytest.fixture
def oai(vision_daemon):
    with openai.OpenAI(
        base_url=f"{vision_daemon.url}/v1", api_key="unused", max_retries=0
    ) as client:
        yield client


@pytest.fixture
def claude(vision_daemon):
    with anthropic.Anthropic(base_url=vision_daemon.url, api_key="unused", max_retries=0) as c:
        yield c


@pytest.fixture
def oll(vision_daemon):
    with ollama.Client(host=vision_daemon.url, timeout=120) as client:
        yield client


def openai_chat(client, *images: str, text: str = "describe", model: str = "tiny-vision"):
    content = [{"type": "text", "text": text}] + [
        {"type": "image_url", "image_url": {"url": url}} for url in images
    ]
    return client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": content}], max_tokens=3
    )


# ---------------------------------------------------------------- OpenAI


def test_openai_image_url_data_urls_reach_the_model(oai):
    text_only = openai_chat(oai).usage.prompt_tokens
    assert openai_chat(oai, data_url(1)).usage.prompt_tokens == text_only + IMAGE_CELLS
    two = openai_chat(oai, data_url(1), data_url(2))
    assert two.usage.prompt_tokens == text_only + 2 * IMAGE_CELLS


def test_openai_a_follow_up_with_the_same_image_is_served_from_the_cache(oai):
    first = openai_chat(oai, data_url(3), text="what is in this picture")
    again = openai_chat(oai, data_url(3), text="what is in this picture, in short")
    assert again.usage.prompt_tokens_details.cached_tokens >= 8 + IMAGE_CELLS
    other = openai_chat(oai, data_url(4), text="what is in this picture")
    assert other.usage.prompt_tokens == first.usage.prompt_tokens
    assert other.usage.prompt_tokens_details.cached_tokens < 8 + IMAGE_CELLS


def test_openai_streams_with_an_image(oai):
    stream = oai.chat.completions.create(
        model="tiny-vision",
        messages=[
            {
                "role": "user",
                "content": [{"type": "image_url", "image_url": {"url": data_url(5)}}],
            }
        ],
        max_tokens=3,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[-1].usage.prompt_tokens > IMAGE_CELLS


def test_openai_image_urls_are_fetched_when_allowed(oai, images_site):
    fetched = openai_chat(oai, f"{images_site}/cat.png")
    inline = openai_chat(oai, "data:image/png;base64," + b64(image_bytes(7)))
    assert fetched.usage.prompt_tokens == inline.usage.prompt_tokens
    assert inline.usage.prompt_tokens_details.cached_tokens == inline.usage.prompt_tokens


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("/big.png", "over the limit of 100,000 bytes"),
        ("/missing.png", "could not be fetched: HTTP 404"),
        ("/slow.png", "could not be fetched in time"),
    ],
)
def test_openai_image_urls_that_fail_are_400s(oai, images_site, path, words):
    with pytest.raises(openai.BadRequestError) as err:
        openai_chat(oai, f"{images_site}{path}")
    assert words in err.value.message and err.value.param == "images"


def test_image_urls_are_refused_when_the_setting_is_off(api):
    with openai.OpenAI(base_url=f"{api.url}/v1", api_key="unused", max_retries=0) as client:
        with pytest.raises(openai.BadRequestError) as err:
            openai_chat(client, "https://example.com/cat.png", model="gemma")
    assert "vision_fetch_urls setting is off" in err.value.message


@pytest.mark.parametrize(
    ("images", "words"),
    [
        (["data:image/png;base64," + b64(b"not an image at all")], "the data is not an image"),
        (["data:image/bmp;base64," + b64(image_bytes(fmt="BMP"))], "BMP images are not sup"),
        (["data:image/png;base64," + b64(bytes(MAX_IMAGE_BYTES + 10))], "over the limit"),
        ([data_url(1)] * 3, "the request has 3 images, over the limit of 2"),
    ],
    ids=["not-an-image", "bmp", "too-big", "too-many"],
)
def test_openai_bad_images_are_400s(oai, images, words):
    with pytest.raises(openai.BadRequestError) as err:
        openai_chat(oai, *images)
    assert words in err.value.message and err.value.param == "images"


def test_openai_a_model_without_a_projector_refuses_images(oai):
    with pytest.raises(openai.BadRequestError) as err:
        openai_chat(oai, data_url(1), model="tiny-text")
    assert "does not accept images (no vision projector)" in err.value.message


def test_openai_responses_input_image(oai):
    def ask(*images):
        content = [{"type": "input_text", "text": "describe"}] + [
            {"type": "input_image", "image_url": url} for url in images
        ]
        return oai.responses.create(
            model="tiny-vision",
            input=[{"role": "user", "content": content}],
            max_output_tokens=3,
        )

    assert ask(data_url(6)).usage.input_tokens == ask().usage.input_tokens + IMAGE_CELLS


# ---------------------------------------------------------------- Anthropic


def anthropic_image(seed: int) -> dict:
    source = {"type": "base64", "media_type": "image/png", "data": b64(image_bytes(seed))}
    return {"type": "image", "source": source}


def input_tokens(usage) -> int:
    return usage.input_tokens + (usage.cache_read_input_tokens or 0)


def test_anthropic_image_blocks_reach_the_model(claude):
    def ask(*blocks):
        content = [*blocks, {"type": "text", "text": "describe"}]
        return claude.messages.create(
            model="tiny-vision", max_tokens=3, messages=[{"role": "user", "content": content}]
        )

    text_only = input_tokens(ask().usage)
    assert input_tokens(ask(anthropic_image(1)).usage) == text_only + IMAGE_CELLS
    counted = claude.messages.count_tokens(
        model="tiny-vision",
        messages=[{"role": "user", "content": [anthropic_image(1), {"type": "text", "text": "x"}]}],
    )
    plain = claude.messages.count_tokens(
        model="tiny-vision", messages=[{"role": "user", "content": "x"}]
    )
    assert counted.input_tokens == plain.input_tokens + IMAGE_CELLS


def test_anthropic_url_sources_are_fetched_when_allowed(claude, images_site):
    def ask(source):
        content = [{"type": "image", "source": source}, {"type": "text", "text": "describe"}]
        return claude.messages.create(
            model="tiny-vision", max_tokens=3, messages=[{"role": "user", "content": content}]
        )

    fetched = ask({"type": "url", "url": f"{images_site}/cat.png"})
    inline = ask({"type": "base64", "media_type": "image/png", "data": b64(image_bytes(7))})
    assert input_tokens(fetched.usage) == input_tokens(inline.usage)
    assert inline.usage.cache_read_input_tokens == input_tokens(inline.usage)  # the same image


def test_anthropic_a_tool_result_can_hold_an_image(claude):
    def ask(result_content):
        return claude.messages.create(
            model="tiny-vision",
            max_tokens=3,
            tools=[{"name": "screenshot", "input_schema": {"type": "object"}}],
            messages=[
                {"role": "user", "content": "take a screenshot"},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "tool_use", "id": "t1", "name": "screenshot", "input": {}}
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": "t1", "content": result_content}
                    ],
                },
            ],
        )

    text_only = input_tokens(ask([{"type": "text", "text": "done"}]).usage)
    with_image = ask([{"type": "text", "text": "done"}, anthropic_image(2)])
    assert input_tokens(with_image.usage) == text_only + IMAGE_CELLS


def test_anthropic_bad_images_are_its_400s(claude):
    bad = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "!!"}}
    with pytest.raises(anthropic.BadRequestError) as err:
        claude.messages.create(
            model="tiny-vision", max_tokens=3, messages=[{"role": "user", "content": [bad]}]
        )
    assert err.value.body["type"] == "error"
    assert "image 1 is not valid base64" in err.value.body["error"]["message"]
    with pytest.raises(anthropic.BadRequestError) as err:
        claude.messages.create(
            model="tiny-text",
            max_tokens=3,
            messages=[{"role": "user", "content": [anthropic_image(1)]}],
        )
    assert "does not accept images" in err.value.body["error"]["message"]


# ---------------------------------------------------------------- Ollama


def test_ollama_images_in_chat_and_generate(oll, tmp_path):
    picture = tmp_path / "picture.png"
    picture.write_bytes(image_bytes(8))

    def chat(images):
        return oll.chat(
            model="tiny-vision",
            messages=[{"role": "user", "content": "describe", "images": images}],
            options={"num_predict": 3},
        )

    text_only = chat([]).prompt_eval_count
    assert chat([picture]).prompt_eval_count == text_only + IMAGE_CELLS
    assert chat([image_bytes(9)]).prompt_eval_count == text_only + IMAGE_CELLS

    def generate(images):
        return oll.generate(
            model="tiny-vision", prompt="describe", images=images, options={"num_predict": 3}
        )

    assert generate([picture]).prompt_eval_count == generate([]).prompt_eval_count + 18


def test_ollama_show_lists_vision_only_for_the_model_with_a_projector(oll):
    assert "vision" in oll.show("tiny-vision").capabilities
    assert "vision" not in oll.show("tiny-text").capabilities


def test_ollama_bad_images_are_its_400s(vision_daemon):
    reply = httpx.post(
        f"{vision_daemon.url}/api/generate",
        json={"model": "tiny-vision", "prompt": "x", "images": [b64(b"GIF89a-broken")]},
        timeout=60,
    )
    assert reply.status_code == 400
    assert "image 1: " in reply.json()["error"]
    reply = httpx.post(
        f"{vision_daemon.url}/api/chat",
        json={
            "model": "tiny-text",
            "stream": False,
            "messages": [{"role": "user", "content": "x", "images": [b64(image_bytes(1))]}],
        },
        timeout=60,
    )
    assert reply.status_code == 400
    assert "does not accept images (no vision projector)" in reply.json()["error"]


def test_ollama_create_from_uploaded_weights_and_projector(oll, vision_daemon):
    model, mmproj = vision_daemon.pair
    files = {model.name: oll.create_blob(model), mmproj.name: oll.create_blob(mmproj)}
    oll.create(model="uploaded-vision", files=files, template=GEMMA_TEMPLATE)
    assert "vision" in oll.show("uploaded-vision").capabilities
    reply = oll.chat(
        model="uploaded-vision",
        messages=[{"role": "user", "content": "describe", "images": [image_bytes(3)]}],
        options={"num_predict": 2},
    )
    text_only = oll.chat(
        model="uploaded-vision",
        messages=[{"role": "user", "content": "describe"}],
        options={"num_predict": 2},
    )
    assert reply.prompt_eval_count == text_only.prompt_eval_count + IMAGE_CELLS
