"""Vision groundwork on the tiny random-weight Gemma 3 pair (tests/gguf_fixtures.py): images
decode or are refused by name, the projector loads beside the text model, a prompt with images
tokenizes into text and image chunks, an image encodes to one embedding row per image token,
and those rows decode through llama.cpp exactly as mtmd's own helper decodes them."""

from __future__ import annotations

import ctypes
import io

import gguf
import llama_cpp
import numpy as np
import pytest
from llama_cpp import mtmd_cpp as mtmd
from PIL import Image

from mullama.engine.api import InvalidRequest
from mullama.engine.llm import Batch, Context, ContextParams, Model
from mullama.engine.vision import (
    DecodedImage,
    EmbeddingBatch,
    ImageChunk,
    InvalidImage,
    Projector,
    ProjectorError,
    TextChunk,
    decode_embeddings,
    decode_image,
    projector_capabilities,
)
from tests.gguf_fixtures import build_gemma3_mmproj, build_mrope_vision, build_vision

IMAGE_TOKENS = 16  # (64 / 8 / 2)² with the fixture's image, patch and pooling sizes
N_EMBD = 64


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    return build_vision(tmp_path_factory.mktemp("vision"))


@pytest.fixture(scope="module")
def text_model(pair):
    model = Model(str(pair[0]))
    yield model
    model.close()


@pytest.fixture(scope="module")
def projector(pair, text_model):
    with Projector(str(pair[1]), text_model.ptr, threads=2, use_gpu=False) as p:
        yield p


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def noise(width: int = 40, height: int = 30, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), "RGB")


def prompt_for(projector: Projector, n_images: int = 1) -> str:
    return (
        "<start_of_turn>user\n"
        + projector.marker * n_images
        + "describe<end_of_turn>\n<start_of_turn>model\n"
    )


def token(model: Model, text: str) -> int:
    (tid,) = model.tokenize(text, add_special=False)
    return tid


# ---------------------------------------------------------------- the fixture


def test_the_fixture_is_a_gemma3_text_model_and_projector(pair):
    model, mmproj = pair
    text = gguf.GGUFReader(str(model))
    proj = gguf.GGUFReader(str(mmproj))
    assert text.fields["general.architecture"].contents() == "gemma3"
    assert proj.fields["general.architecture"].contents() == "clip"
    assert proj.fields["clip.projector_type"].contents() == "gemma3"
    assert proj.fields["clip.vision.projection_dim"].contents() == N_EMBD
    names = {t.name for t in proj.tensors}
    assert {"v.patch_embd.weight", "mm.input_projection.weight", "mm.soft_emb_norm.weight"} <= names
    assert model.stat().st_size + mmproj.stat().st_size < 1_000_000


def test_the_text_model_generates_plain_text(text_model):
    ctx = Context(text_model, ContextParams(n_ctx=256, n_batch=64))
    batch = Batch(64)
    try:
        prompt = text_model.tokenize("<start_of_turn>user\nhello<end_of_turn>\n")
        assert prompt[0] == text_model.bos
        assert token(text_model, "<start_of_image>") not in prompt
        for i, t in enumerate(prompt):
            batch.add(t, i, 0, i == len(prompt) - 1)
        generated = []
        for step in range(4):
            ctx.decode(batch)
            row = ctx.logits_row(batch.n - 1)
            assert np.isfinite(row).all()
            nxt = int(np.argmax(row))
            generated.append(nxt)
            batch.clear()
            batch.add(nxt, len(prompt) + step, 0, True)
        assert all(0 <= t < text_model.n_vocab for t in generated)
    finally:
        batch.close()
        ctx.close()


# ---------------------------------------------------------------- decoding images


@pytest.mark.parametrize(
    ("fmt", "options"),
    [("PNG", {}), ("JPEG", {"quality": 95}), ("WEBP", {"lossless": True}), ("GIF", {})],
)
def test_each_supported_format_decodes_to_rgb(fmt, options):
    image = decode_image(encoded(noise(), fmt, **options))
    assert (image.format, image.width, image.height) == (fmt, 40, 30)
    assert len(image.rgb) == 40 * 30 * 3
    assert len(image.digest) == 64


def test_lossless_formats_give_the_pixels_and_the_same_digest():
    pixels = noise()
    png, webp = (
        decode_image(encoded(pixels, "PNG")),
        decode_image(encoded(pixels, "WEBP", lossless=True)),
    )
    assert png.rgb == webp.rgb == pixels.tobytes()
    assert png.digest == webp.digest


def test_a_different_image_gets_a_different_digest():
    a = decode_image(encoded(noise(seed=1), "PNG"))
    b = decode_image(encoded(noise(seed=2), "PNG"))
    again = decode_image(encoded(noise(seed=1), "PNG"))
    assert a.digest != b.digest
    assert a.digest == again.digest


def test_an_animation_gives_its_first_frame():
    red, blue = Image.new("RGB", (8, 8), (255, 0, 0)), Image.new("RGB", (8, 8), (0, 0, 255))
    gif = encoded(red, "GIF", save_all=True, append_images=[blue], duration=100, loop=0)
    image = decode_image(gif)
    assert image.rgb[:3] == bytes((255, 0, 0))


def test_a_jpegs_exif_orientation_is_applied():
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to display
    image = decode_image(encoded(noise(40, 30), "JPEG", exif=exif))
    assert (image.width, image.height) == (30, 40)


def test_transparency_becomes_white():
    clear = Image.new("RGBA", (4, 4), (10, 20, 30, 0))
    assert decode_image(encoded(clear, "PNG")).rgb[:3] == bytes((255, 255, 255))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"just some text, no image", "not an image"),
        (encoded(noise(), "BMP"), "BMP images are not supported"),
        (encoded(noise(), "TIFF"), "TIFF images are not supported"),
        (b"%PDF-1.7\n...", "PDF images are not supported"),
        (b'<svg xmlns="http://www.w3.org/2000/svg"/>', "SVG images are not supported"),
        (b"\x00\x00\x00\x1cftypheic" + bytes(20), "HEIC images are not supported"),
        (encoded(noise(), "PNG")[:60], "cannot be"),
    ],
    ids=["empty", "text", "bmp", "tiff", "pdf", "svg", "heic", "truncated-png"],
)
def test_bad_images_are_refused_by_name(data, message):
    with pytest.raises(InvalidImage, match=message) as caught:
        decode_image(data)
    assert caught.value.status == 400
    assert "PNG, JPEG, WebP" in str(caught.value) or message in ("empty", "cannot be")


def test_size_limits_are_checked_before_decoding():
    png = encoded(noise(100, 100), "PNG")
    with pytest.raises(InvalidImage, match="over the limit of 100 bytes"):
        decode_image(png, max_bytes=100)
    with pytest.raises(InvalidImage, match="100x100 pixels, over the limit of 5,000"):
        decode_image(png, max_pixels=5000)
    assert decode_image(png, max_pixels=10_000).width == 100


# ---------------------------------------------------------------- the projector


def test_the_projector_loads_with_gemma3s_capabilities(pair, projector):
    assert projector.vision and not projector.audio
    assert projector.non_causal  # Gemma 3 decodes an image's tokens bidirectionally
    assert not projector.mrope
    assert projector.n_embd == N_EMBD
    assert projector.marker.startswith("<__mullama_media_")
    assert projector_capabilities(str(pair[1])) == (True, False)
    assert projector_capabilities(str(pair[0])) == (False, False)


def test_a_projector_for_another_model_is_refused(tmp_path, pair, text_model):
    wider = build_gemma3_mmproj(tmp_path / "wider.gguf", n_embd_text=48)
    with pytest.raises(ProjectorError, match="could not load the projector"):
        Projector(str(wider), text_model.ptr, threads=1, use_gpu=False)
    with pytest.raises(ProjectorError, match="could not load the projector"):
        Projector(str(pair[0]), text_model.ptr, threads=1, use_gpu=False)  # a text model
    with pytest.raises(ProjectorError, match="does not exist"):
        Projector(str(tmp_path / "missing.gguf"), text_model.ptr)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_a_prompt_with_an_image_tokenizes_into_text_and_image_chunks(fmt, projector, text_model):
    image = decode_image(encoded(noise(), fmt))
    with projector.tokenize(prompt_for(projector), [image]) as prompt:
        before, picture, after = prompt.chunks
        assert isinstance(before, TextChunk) and isinstance(after, TextChunk)
        assert isinstance(picture, ImageChunk)
        assert (picture.n_tokens, picture.n_pos) == (IMAGE_TOKENS, IMAGE_TOKENS)
        assert picture.digest == image.digest
        # mtmd puts Gemma 3's image start and end tokens around the image
        assert before.tokens[0] == text_model.bos
        assert before.tokens[-1] == token(text_model, "<start_of_image>")
        assert after.tokens[0] == token(text_model, "<end_of_image>")
        text_only = text_model.tokenize(prompt_for(projector, 0))
        assert prompt.n_tokens == len(text_only) + 2 + IMAGE_TOKENS
        assert prompt.n_pos == prompt.n_tokens


def test_two_images_give_two_chunks_in_order(projector):
    first, second = (decode_image(encoded(noise(seed=s), "PNG")) for s in (1, 2))
    with projector.tokenize(prompt_for(projector, 2), [first, second]) as prompt:
        assert [c.digest for c in prompt.images] == [first.digest, second.digest]


def test_marker_and_image_counts_must_agree(projector):
    image = decode_image(encoded(noise(), "PNG"))
    with pytest.raises(InvalidRequest, match="1 image places for 2 images"):
        projector.tokenize(prompt_for(projector), [image, image])
    with pytest.raises(InvalidRequest, match="0 image places for 1 images"):
        projector.tokenize("a prompt with <__media__>, mtmd's default marker", [image])


def test_an_image_encodes_to_one_finite_row_per_image_token(projector):
    image = decode_image(encoded(noise(), "JPEG"))
    with projector.tokenize(prompt_for(projector), [image]) as prompt:
        (picture,) = prompt.images
        rows = projector.encode(picture)
        assert rows.shape == (IMAGE_TOKENS, N_EMBD) and rows.dtype == np.float32
        assert np.isfinite(rows).all() and np.abs(rows).sum() > 0
        assert np.array_equal(projector.encode(picture), rows)  # deterministic
        assert projector.positions(picture, 7).tolist() == list(range(7, 7 + IMAGE_TOKENS))
    with pytest.raises(ValueError, match="closed"):
        projector.encode(picture)


def test_a_different_image_encodes_differently(projector):
    def rows(seed: int) -> np.ndarray:
        image = decode_image(encoded(noise(seed=seed), "PNG"))
        with projector.tokenize(prompt_for(projector), [image]) as prompt:
            return projector.encode(prompt.images[0])

    assert not np.allclose(rows(1), rows(2))


# ---------------------------------------------------------------- decoding embeddings


def eval_by_hand(
    projector: Projector, ctx: Context, prompt_chunks: list, seq: int, *, non_causal: bool
) -> np.ndarray:
    """The runner's way: token batches for text, an embedding batch for the image."""
    tokens = Batch(512)
    embeddings = EmbeddingBatch(64, projector.n_embd, mrope=projector.mrope)
    pos = 0
    try:
        for i, chunk in enumerate(prompt_chunks):
            if isinstance(chunk, TextChunk):
                tokens.clear()
                for j, t in enumerate(chunk.tokens):
                    last = i == len(prompt_chunks) - 1 and j == len(chunk.tokens) - 1
                    tokens.add(t, pos + j, seq, last)
                ctx.decode(tokens)
            else:
                embeddings.clear()
                embeddings.add(projector.encode(chunk), projector.positions(chunk, pos), seq)
                assert decode_embeddings(ctx.ptr, embeddings, non_causal=non_causal) == 0
            pos += chunk.n_pos
        return ctx.logits_row(tokens.n - 1).copy()
    finally:
        tokens.close()


def test_image_embeddings_decode_as_mtmds_helper_decodes_them(projector, text_model):
    image = decode_image(encoded(noise(50, 70), "PNG"))
    ctx = Context(text_model, ContextParams(n_ctx=1024, n_batch=512, n_seq_max=3))
    try:
        with projector.tokenize(prompt_for(projector), [image]) as prompt:
            n_past = llama_cpp.llama_pos(0)
            rc = mtmd.mtmd_helper_eval_chunks(
                projector.ptr, ctx.ptr, prompt._handle, 0, 0, 512, True, ctypes.byref(n_past)
            )
            assert (rc, n_past.value) == (0, prompt.n_pos)
            reference = ctx.logits_row(-1).copy()

            by_hand = eval_by_hand(projector, ctx, prompt.chunks, 1, non_causal=True)
            np.testing.assert_allclose(by_hand, reference, rtol=1e-5, atol=1e-5)
            assert ctx.seq_pos_max(1) == ctx.seq_pos_max(0) == prompt.n_pos - 1

            # causal attention over the image gives other logits: the flag matters
            causal = eval_by_hand(projector, ctx, prompt.chunks, 2, non_causal=False)
            assert np.abs(causal - reference).max() > 1e-3
    finally:
        ctx.close()


def test_embedding_batches_over_the_context_limits_are_refused_not_aborted(projector, text_model):
    # llama.cpp aborts the process on these; decode_embeddings checks first
    params = llama_cpp.llama_context_default_params()
    params.n_ctx, params.n_batch, params.n_ubatch = 256, 16, 8
    ctx = llama_cpp.llama_init_from_model(text_model.ptr, params)
    rows = np.zeros((IMAGE_TOKENS + 1, projector.n_embd), np.float32)
    batch = EmbeddingBatch(IMAGE_TOKENS + 1, projector.n_embd)
    try:
        batch.add(rows[:IMAGE_TOKENS], np.arange(IMAGE_TOKENS, dtype=np.int32), 0)
        with pytest.raises(ValueError, match="the context's n_ubatch is 8 .bidirectional"):
            decode_embeddings(ctx, batch, non_causal=True)
        assert decode_embeddings(ctx, batch, non_causal=False) == 0  # causal rows may split
        batch.add(rows[:1], np.array([IMAGE_TOKENS], np.int32), 0)
        with pytest.raises(ValueError, match="17 embeddings .* the context's n_batch is 16$"):
            decode_embeddings(ctx, batch, non_causal=False)
    finally:
        llama_cpp.llama_free(ctx)


# ---------------------------------------------------------------- M-RoPE (Qwen2-VL)


@pytest.fixture(scope="module")
def qwen(tmp_path_factory):
    model_path, mmproj_path = build_mrope_vision(tmp_path_factory.mktemp("qwen2vl"))
    model = Model(str(model_path))
    projector = Projector(str(mmproj_path), model.ptr, threads=2, use_gpu=False)
    yield model, projector
    projector.close()
    model.close()


def qwen_prompt(projector: Projector) -> str:
    return f"<|im_start|>user\n{projector.marker}describe<|im_end|>\n<|im_start|>assistant\n"


def test_an_mrope_image_takes_fewer_positions_than_tokens(qwen):
    model, projector = qwen
    assert projector.mrope and not projector.non_causal
    wide = decode_image(encoded(noise(80, 48), "PNG"))  # 5 × 3 merged patches of 16 pixels
    with projector.tokenize(qwen_prompt(projector), [wide]) as prompt:
        before, picture, after = prompt.chunks
        assert before.tokens[-1] == token(model, "<|vision_start|>")
        assert after.tokens[0] == token(model, "<|vision_end|>")
        assert (picture.n_tokens, picture.n_pos) == (15, 5)
        assert prompt.n_pos == prompt.n_tokens - 15 + 5
        time, rows, columns, unused = projector.positions(picture, 7)
        assert time.tolist() == [7] * 15
        assert rows.tolist() == [7] * 5 + [8] * 5 + [9] * 5
        assert columns.tolist() == [7, 8, 9, 10, 11] * 3
        assert unused.tolist() == [0] * 15


def test_mrope_image_embeddings_decode_as_mtmds_helper_decodes_them(qwen):
    model, projector = qwen
    image = decode_image(encoded(noise(80, 48, seed=3), "JPEG"))
    ctx = Context(model, ContextParams(n_ctx=1024, n_batch=512, n_seq_max=2))
    try:
        with projector.tokenize(qwen_prompt(projector), [image]) as prompt:
            n_past = llama_cpp.llama_pos(0)
            rc = mtmd.mtmd_helper_eval_chunks(
                projector.ptr, ctx.ptr, prompt._handle, 0, 0, 512, True, ctypes.byref(n_past)
            )
            assert (rc, n_past.value) == (0, prompt.n_pos)
            reference = ctx.logits_row(-1).copy()
            by_hand = eval_by_hand(projector, ctx, prompt.chunks, 1, non_causal=False)
            np.testing.assert_allclose(by_hand, reference, rtol=1e-5, atol=1e-5)
            # the text after the image continues at the image's start + its n_pos
            assert ctx.seq_pos_max(1) == ctx.seq_pos_max(0) == prompt.n_pos - 1
    finally:
        ctx.close()


def test_decoded_image_repr_is_short():
    image = decode_image(encoded(noise(), "PNG"))
    assert isinstance(image, DecodedImage)
    assert repr(image) == f"DecodedImage(PNG 40x30 {image.digest[:12]})"


@pytest.mark.slow
async def test_the_fixture_serves_plain_generation_through_the_engine(tmp_path, pair):
    from mullama.config import load_settings
    from mullama.engine.api import CompletionRequest, Done, SamplingOptions
    from mullama.engine.local import LocalEngine
    from tests.helpers import GEMMA_TEMPLATE

    settings = load_settings(
        env={}, cache_dir=tmp_path / "c", config_dir=tmp_path / "k", data_dir=tmp_path / "d"
    )
    engine = LocalEngine(settings)
    try:
        await engine.create_model(
            "tiny-vision",
            f'FROM {pair[0]}\nVISION_PROJECTOR {pair[1]}\nTEMPLATE """{GEMMA_TEMPLATE}"""\n'
            "PARAMETER temperature 0\nPARAMETER num_ctx 512\n",
        )
        request = CompletionRequest("tiny-vision", "hello", SamplingOptions(max_tokens=4))
        events = [event async for event in engine.complete(request)]
        done = events[-1]
        assert isinstance(done, Done)
        assert (done.finish_reason, done.usage.completion_tokens) == ("length", 4)
    finally:
        await engine.close()
