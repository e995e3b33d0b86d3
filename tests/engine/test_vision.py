"""Vision through the engine on the tiny random-weight pairs (tests/gguf_fixtures.py): a model
created with VISION_PROJECTOR loads its projector and says ``vision``; images in chats and
completions reach the model (their tokens count in the prompt, their logits are those of
mtmd's own evaluation, for Gemma 3's bidirectional images and Qwen2-VL's M-RoPE positions);
they share the continuous batch with text-only requests without changing anyone's answer; the
prefix cache keeps the same image and never another one; bad images get clear 400s."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ctypes
import io
import threading

import llama_cpp
import numpy as np
import pytest
from llama_cpp import mtmd_cpp as mtmd
from PIL import Image

from mullama.config import load_settings
from mullama.engine.api import (
    ChatRequest,
    CompletionRequest,
    Done,
    InvalidRequest,
    Message,
    SamplingOptions,
    TextDelta,
)
from mullama.engine.llm import Context, ContextParams
from mullama.engine.local import LocalEngine
from mullama.engine.vision import decode_image
from tests.gguf_fixtures import build_mrope_vision, build_vision
from tests.helpers import GEMMA_TEMPLATE

IMAGE_CELLS = 18  # Gemma 3 fixture: 16 image tokens + <start_of_image> and <end_of_image>
QWEN_TEMPLATE = (
    "{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}"
    "<|im_start|>assistant\n"
)


def image_bytes(seed: int = 0, width: int = 40, height: int = 30, fmt: str = "PNG") -> bytes:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(out, fmt)
    return out.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def png(seed: int = 0, width: int = 40, height: int = 30) -> str:
    return b64(image_bytes(seed, width, height))


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    root = tmp_path_factory.mktemp("vision-pairs")
    return build_vision(root / "gemma3"), build_mrope_vision(root / "qwen2vl")


@pytest.fixture(scope="module")
async def eng(tmp_path_factory, pairs):
    (gemma, gemma_proj), (qwen, qwen_proj) = pairs
    root = tmp_path_factory.mktemp("vision-engine")
    settings = load_settings(
        env={},
        cache_dir=root / "c",
        config_dir=root / "k",
        data_dir=root / "d",
        num_parallel=4,
        max_loaded_models=3,
        vision_max_images=3,
        vision_max_image_bytes=200_000,
    )
    engine = LocalEngine(settings)
    params = "PARAMETER temperature 0\nPARAMETER num_ctx 512\n"
    await engine.create_model(
        "tiny-vision",
        f'FROM {gemma}\nVISION_PROJECTOR {gemma_proj}\nTEMPLATE """{GEMMA_TEMPLATE}"""\n{params}',
    )
    await engine.create_model(
        "tiny-text", f'FROM {gemma}\nTEMPLATE """{GEMMA_TEMPLATE}"""\n{params}'
    )
    await engine.create_model(
        "tiny-qwen",
        f'FROM {qwen}\nVISION_PROJECTOR {qwen_proj}\nTEMPLATE """{QWEN_TEMPLATE}"""\n{params}',
    )
    small = params + "PARAMETER num_batch 8\n"  # images split into parts (causal) or not
    await engine.create_model(
        "tiny-qwen-small-batch",
        f'FROM {qwen}\nVISION_PROJECTOR {qwen_proj}\nTEMPLATE """{QWEN_TEMPLATE}"""\n{small}',
    )
    await engine.create_model(
        "tiny-vision-small-batch",
        f'FROM {gemma}\nVISION_PROJECTOR {gemma_proj}\nTEMPLATE """{GEMMA_TEMPLATE}"""\n{small}',
    )
    yield engine
    await engine.close()


async def chat(engine, model: str, images: list[str], text: str = "describe", **options):
    options.setdefault("max_tokens", 4)
    request = ChatRequest(model, [Message("user", text, images=images)], SamplingOptions(**options))
    return await collect(engine.chat(request))


async def collect(events):
    text, logprobs, done = "", [], None
    async for event in events:
        if isinstance(event, TextDelta):
            text += event.text
            logprobs += event.logprobs or []
        elif isinstance(event, Done):
            done = event
    return text, logprobs, done


def loaded(engine, name: str):
    return engine.manager.loaded[f"{name}:latest"]


# ---------------------------------------------------------------- the model


async def test_vision_is_a_capability_exactly_when_there_is_a_projector(eng):
    models = {m.name.removesuffix(":latest"): m for m in await eng.list_models()}
    assert models["tiny-vision"].capabilities["vision"] is True
    assert models["tiny-qwen"].capabilities["vision"] is True
    assert models["tiny-text"].capabilities["vision"] is False
    details = await eng.show_model("tiny-vision")
    assert "VISION_PROJECTOR" in details.modelfile
    assert details.metadata["projector"].endswith("tiny-gemma3-mmproj.gguf")


async def test_the_projector_loads_with_the_model_and_counts_in_its_memory(eng, pairs):
    await eng.load_model("tiny-vision")
    await eng.load_model("tiny-text")
    vision, text = loaded(eng, "tiny-vision"), loaded(eng, "tiny-text")
    assert vision.runner.vision is not None and vision.runner.vision.projector.vision
    assert text.runner.vision is None
    projector_file = pairs[0][1].stat().st_size
    assert vision.estimate - text.estimate >= projector_file


async def test_capability_vision_without_a_projector_is_refused(eng, pairs):
    (gemma, _), _ = pairs
    with pytest.raises(InvalidRequest, match="CAPABILITY vision needs a vision projector"):
        await eng.create_model("bad-vision", f"FROM {gemma}\nCAPABILITY vision true\n")
    with pytest.raises(InvalidRequest, match="not a vision projector"):
        await eng.create_model("bad-proj", f"FROM {gemma}\nVISION_PROJECTOR {gemma}\n")


# ---------------------------------------------------------------- images reach the model


async def test_each_image_adds_its_tokens_to_the_prompt(eng):
    _, _, alone = await chat(eng, "tiny-vision", [])
    _, _, one = await chat(eng, "tiny-vision", [png(1)])
    _, _, two = await chat(eng, "tiny-vision", [png(1), png(2)])
    assert one.usage.prompt_tokens == alone.usage.prompt_tokens + IMAGE_CELLS
    assert two.usage.prompt_tokens == alone.usage.prompt_tokens + 2 * IMAGE_CELLS
    assert one.usage.completion_tokens == 4
    counted = await eng.count_chat_tokens(
        ChatRequest("tiny-vision", [Message("user", "describe", images=[png(1)])])
    )
    assert counted == one.usage.prompt_tokens


async def test_a_generate_with_images_counts_them_too(eng):
    async def generate(images, raw=False):
        request = CompletionRequest(
            "tiny-vision", "describe", SamplingOptions(max_tokens=2), raw=raw, images=images
        )
        return (await collect(eng.complete(request)))[2]

    text_only, with_image = await generate([]), await generate([png(4)])
    assert with_image.usage.prompt_tokens == text_only.usage.prompt_tokens + IMAGE_CELLS
    raw = await generate([png(4)], raw=True)
    assert raw.usage.prompt_tokens == (await generate([], raw=True)).usage.prompt_tokens + 18
    assert all(t >= 0 for t in with_image.context)  # image cells are no tokens to send back


def reference_logprobs(entry, prompt_text: str, images: list[bytes]) -> np.ndarray:
    """The next-token log-probabilities of mtmd's own evaluation (mtmd_helper_eval_chunks)."""
    projector = entry.runner.vision.projector
    ctx = Context(entry.model, ContextParams(n_ctx=512, n_batch=512))
    try:
        decoded = [decode_image(data) for data in images]
        with projector.tokenize(prompt_text, decoded) as prompt:
            n_past = llama_cpp.llama_pos(0)
            rc = mtmd.mtmd_helper_eval_chunks(
                projector.ptr, ctx.ptr, prompt._handle, 0, 0, 512, True, ctypes.byref(n_past)
            )
            assert rc == 0
            logits = ctx.logits_row(-1).astype(np.float64)
    finally:
        ctx.close()
    shifted = logits - logits.max()
    return shifted - np.log(np.exp(shifted).sum())


GEMMA_TURN = "<start_of_turn>user\n{}<end_of_turn>\n<start_of_turn>model\n"
QWEN_TURN = "<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n"


def assert_same_top(logprobs, reference) -> None:
    top = logprobs[0]["top_logprobs"]
    best = np.argsort(-reference)[:5]
    np.testing.assert_allclose([t["logprob"] for t in top], reference[best], atol=2e-3)


@pytest.mark.parametrize(
    ("model", "turn"),
    [
        ("tiny-vision", GEMMA_TURN),
        ("tiny-qwen", QWEN_TURN),
        ("tiny-vision-small-batch", GEMMA_TURN),
        ("tiny-qwen-small-batch", QWEN_TURN),
    ],
    ids=["gemma3-bidirectional", "qwen2vl-mrope", "gemma3-small-batch", "qwen2vl-split-image"],
)
async def test_the_runner_decodes_images_as_mtmd_does(eng, model, turn):
    wide = image_bytes(7, 80, 48)  # Qwen2-VL: 15 tokens over 5 positions
    _, logprobs, done = await chat(
        eng, model, [b64(wide)], max_tokens=1, logprobs=True, top_logprobs=5
    )
    entry = loaded(eng, model)
    vision = entry.runner.vision
    assert vision.projector.mrope == model.startswith("tiny-qwen")
    assert vision.projector.non_causal == model.startswith("tiny-vision")
    marker = vision.projector.marker
    assert_same_top(logprobs, reference_logprobs(entry, turn.format(marker + "describe"), [wide]))
    if model.startswith("tiny-qwen"):
        text_only = (await chat(eng, model, [], max_tokens=1))[2]
        assert done.usage.prompt_tokens == text_only.usage.prompt_tokens + 15 + 2


@pytest.mark.parametrize("model", ["tiny-qwen", "tiny-vision"])
async def test_text_after_a_cached_image_gets_the_right_positions(eng, model):
    """The follow-up decodes only its new text, after the image the slot holds: where M-RoPE
    gave the image fewer positions than cells, the text must still continue from them."""
    turn = QWEN_TURN if model == "tiny-qwen" else GEMMA_TURN
    await eng.unload_model(model)
    wide = image_bytes(8, 80, 48)
    await chat(eng, model, [b64(wide)], "describe", max_tokens=1)
    _, logprobs, done = await chat(
        eng,
        model,
        [b64(wide)],
        "describe it in more words",
        max_tokens=1,
        logprobs=True,
        top_logprobs=5,
    )
    assert done.usage.cached_tokens > 17  # the image and what came before it
    entry = loaded(eng, model)
    marker = entry.runner.vision.projector.marker
    reference = reference_logprobs(entry, turn.format(marker + "describe it in more words"), [wide])
    assert_same_top(logprobs, reference)


# ---------------------------------------------------------------- batching and the cache


async def test_images_and_text_only_requests_batch_without_changing_answers(eng):
    async def ask(images, text):
        result = await chat(eng, "tiny-vision", images, text, max_tokens=6, logprobs=True)
        return result[0], [round(e["logprob"], 3) for e in result[1]]

    cases = [([png(11)], "what is this"), ([], "hello there"), ([png(12)], "and this"), ([], "a")]
    alone = []
    for images, text in cases:
        await eng.unload_model("tiny-vision")  # nothing cached: each one from scratch
        alone.append(await ask(images, text))
    await eng.unload_model("tiny-vision")
    runner = (await eng.load_model("tiny-vision")) and loaded(eng, "tiny-vision").runner
    together = await asyncio.gather(*(ask(images, text) for images, text in cases))
    assert together == alone
    assert runner.vision.images_decoded == 2


async def test_a_follow_up_about_the_same_image_reuses_the_cache(eng):
    await eng.unload_model("tiny-vision")
    first = [Message("user", "describe", images=[png(21)])]
    few = SamplingOptions(max_tokens=4)
    text, _, done = await collect(eng.chat(ChatRequest("tiny-vision", first, few)))
    runner = loaded(eng, "tiny-vision").runner
    encoded = runner.vision.encoder.encoded
    follow_up = first + [Message("assistant", text), Message("user", "and the colours?")]
    _, _, again = await collect(eng.chat(ChatRequest("tiny-vision", follow_up, few)))
    assert again.usage.cached_tokens >= done.usage.prompt_tokens  # the image included
    assert runner.vision.encoder.encoded == encoded  # not encoded again


async def test_a_different_image_never_reuses_the_cached_one(eng):
    await eng.unload_model("tiny-vision")
    _, _, first = await chat(eng, "tiny-vision", [png(31)], "describe")
    _, _, other = await chat(eng, "tiny-vision", [png(32)], "describe")
    runner = loaded(eng, "tiny-vision").runner
    image_start = min(s.start for slot in runner.slots for s in slot.images)
    assert other.usage.cached_tokens <= image_start  # what comes before the image, no more
    assert other.usage.prompt_tokens == first.usage.prompt_tokens
    assert runner.vision.encoder.encoded == 2


async def test_a_repeated_image_in_another_conversation_is_not_encoded_again(eng):
    await eng.unload_model("tiny-vision")
    await chat(eng, "tiny-vision", [png(41)], "one conversation")
    runner = loaded(eng, "tiny-vision").runner
    # the first slot is busy with a long answer while the same image comes in another chat
    long = asyncio.ensure_future(chat(eng, "tiny-vision", [], "x" * 40, max_tokens=200))
    await chat(eng, "tiny-vision", [png(41)], "quite another conversation, longer than that")
    await long
    assert runner.vision.encoder.encoded == 1
    assert runner.vision.images_decoded == 2


# ---------------------------------------------------------------- refusals


async def test_a_model_without_a_projector_refuses_images(eng):
    with pytest.raises(
        InvalidRequest, match=r"tiny-text:latest does not accept images \(no vision projector\)"
    ):
        await chat(eng, "tiny-text", [png(1)])
    with pytest.raises(InvalidRequest, match="tiny-text:latest does not accept images"):
        request = CompletionRequest("tiny-text", "x", images=[png(1)])
        await collect(eng.complete(request))


@pytest.mark.parametrize(
    ("images", "message"),
    [
        ([b64(b"plain text, no image")], "image 1: the data is not an image"),
        ([b64(image_bytes(fmt="BMP"))], "image 1: BMP images are not supported"),
        ([png(1), "!!not base64!!"], "image 2 is not valid base64"),
        ([png(1), b64(image_bytes(fmt="TIFF"))], "image 2: TIFF images are not supported"),
        ([b64(bytes(300_000))], "image 1 is over the limit of 200,000 bytes"),
        ([png(1)] * 4, "the request has 4 images, over the limit of 3"),
    ],
    ids=["text", "bmp", "base64", "tiff", "too-big", "too-many"],
)
async def test_bad_images_are_refused_clearly(eng, images, message):
    with pytest.raises(InvalidRequest, match=message) as caught:
        await chat(eng, "tiny-vision", images)
    assert caught.value.status == 400 and caught.value.param == "images"


async def test_a_data_url_is_taken_as_its_base64(eng):
    _, _, plain = await chat(eng, "tiny-vision", [png(5)])
    _, _, url = await chat(eng, "tiny-vision", ["data:image/png;base64," + png(5)])
    assert url.usage.prompt_tokens == plain.usage.prompt_tokens
    assert url.usage.cached_tokens == url.usage.prompt_tokens  # the same image: all cached


# ---------------------------------------------------------------- the encoder thread


@pytest.fixture
async def slow_encoder(eng):
    """tiny-vision freshly loaded, its projector's encoding held until ``gate`` opens."""
    await eng.unload_model("tiny-vision")
    await eng.load_model("tiny-vision")
    vision = loaded(eng, "tiny-vision").runner.vision
    gate, started = threading.Event(), threading.Event()
    real = vision.projector.encode

    def held(chunk):
        started.set()
        gate.wait(60)
        return real(chunk)

    vision.projector.encode = held
    yield vision, gate, started
    gate.set()
    del vision.projector.encode


async def test_encoding_an_image_never_holds_up_the_other_sequences(eng, slow_encoder):
    vision, gate, started = slow_encoder
    with_image = asyncio.ensure_future(chat(eng, "tiny-vision", [png(51)], max_tokens=3))
    assert await asyncio.to_thread(started.wait, 30)
    _, _, text_only = await chat(eng, "tiny-vision", [], "hello", max_tokens=5)
    assert text_only.usage.completion_tokens == 5  # answered while the image is encoding
    assert not with_image.done()
    gate.set()
    _, _, done = await with_image
    assert done.usage.completion_tokens == 3 and vision.images_decoded == 1


async def test_a_request_cancelled_while_its_image_encodes_leaves_the_runner_well(
    eng, slow_encoder
):
    vision, gate, started = slow_encoder
    abandoned = asyncio.ensure_future(chat(eng, "tiny-vision", [png(52)], max_tokens=3))
    assert await asyncio.to_thread(started.wait, 30)
    abandoned.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await abandoned
    runner = loaded(eng, "tiny-vision").runner
    for _ in range(200):
        if runner.busy_slots == 0:
            break
        await asyncio.sleep(0.05)
    assert runner.busy_slots == 0  # its slot is free before the encoding ends
    gate.set()
    _, _, done = await chat(eng, "tiny-vision", [png(52)], max_tokens=2)
    assert done.usage.completion_tokens == 2
    assert vision.encoder.encoded == 1  # the abandoned encoding was kept, not repeated
