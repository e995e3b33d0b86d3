"""Images for vision models: decoding, and llama.cpp's mtmd (a projector beside a text model).

:func:`decode_image` turns request bytes into RGB pixels (Pillow: PNG, JPEG, WebP, GIF's first
frame), refusing other formats by name and anything over the size limits. A :class:`Projector`
wraps an ``mtmd_context`` for a loaded text model: :meth:`Projector.tokenize` splits a prompt
holding :attr:`Projector.marker` once per image into text and image chunks,
:meth:`Projector.encode` turns an image chunk into its embeddings (one row per image token),
and :class:`EmbeddingBatch` + :func:`decode_embeddings` feed them to ``llama_decode``. Only the
runner thread of the model calls a projector; everything here blocks.
"""

from __future__ import annotations

import ctypes
import hashlib
import io
import logging
import os
import secrets
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING

import llama_cpp
import numpy as np
import numpy.typing as npt
from llama_cpp import mtmd_cpp as mtmd

from .api import InvalidRequest, ModelLoadError
from .llm import GGML_LOG_LEVEL_ERROR

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

log = logging.getLogger("mullama.mtmd")

IMAGE_FORMATS = ("PNG", "JPEG", "WEBP", "GIF")  # Pillow's names
MAX_IMAGE_BYTES = 20 * 1024 * 1024  # encoded, as OpenAI's per-image limit
MAX_IMAGE_PIXELS = 40_000_000  # width × height; decoding holds 3 bytes a pixel

# formats Pillow cannot open, recognised by their first bytes so the error can name them
_SIGNATURES = (
    (b"%PDF", "PDF"),
    (b"<svg", "SVG"),
    (b"<?xml", "SVG or XML"),
    (b"\x00\x00\x00\x0cjP  ", "JPEG 2000"),
)
_ISO_BRANDS = {b"heic": "HEIC", b"heix": "HEIC", b"mif1": "HEIF", b"avif": "AVIF", b"avis": "AVIF"}


class InvalidImage(InvalidRequest):
    """An image a request carries cannot be used: not an image, unsupported, too large."""


class ProjectorError(ModelLoadError):
    """The vision projector (mmproj) could not be loaded for the model."""


@dataclass(frozen=True)
class DecodedImage:
    width: int
    height: int
    rgb: bytes  # width × height × 3, row by row
    format: str  # Pillow's name: PNG, JPEG, WEBP, GIF
    digest: str  # SHA-256 of the size and pixels: equal pixels, equal digest

    def __repr__(self) -> str:
        return f"DecodedImage({self.format} {self.width}x{self.height} {self.digest[:12]})"


def _unknown_format(data: bytes) -> str | None:
    head = data[:32].lstrip()
    for magic, name in _SIGNATURES:
        if head.startswith(magic):
            return name
    if data[4:8] == b"ftyp":
        return _ISO_BRANDS.get(data[8:12], "ISO media (video or HEIF)")
    return None


def decode_image(
    data: bytes,
    *,
    max_bytes: int = MAX_IMAGE_BYTES,
    max_pixels: int = MAX_IMAGE_PIXELS,
) -> DecodedImage:
    """Decode an image to RGB: transparency over white, JPEG's EXIF orientation applied, an
    animation's first frame. The size is checked from the header, before any decoding."""
    # imported here: only requests with images pay for Pillow's import
    from PIL import Image, ImageOps, UnidentifiedImageError

    if not data:
        raise InvalidImage("the image is empty")
    if len(data) > max_bytes:
        raise InvalidImage(
            f"the image is {len(data):,} bytes, over the limit of {max_bytes:,} bytes",
            size=len(data),
            limit=max_bytes,
        )
    try:
        image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError:  # Pillow's own limit, far above the default one
        raise InvalidImage(
            f"the image has too many pixels (over the limit of {max_pixels:,})", limit=max_pixels
        ) from None
    except UnidentifiedImageError:
        name = _unknown_format(data)
        if name:
            raise InvalidImage(
                f"{name} images are not supported: send PNG, JPEG, WebP or GIF", format=name
            ) from None
        raise InvalidImage("the data is not an image (PNG, JPEG, WebP or GIF expected)") from None
    except Exception as e:  # a truncated or malformed header: Pillow raises many kinds
        raise InvalidImage(f"the image cannot be read: {e}") from None
    with image:
        if image.format not in IMAGE_FORMATS:
            raise InvalidImage(
                f"{image.format} images are not supported: send PNG, JPEG, WebP or GIF",
                format=image.format,
            )
        width, height = image.size
        if width < 1 or height < 1:
            raise InvalidImage(f"the image has no pixels ({width}x{height})")
        if width * height > max_pixels:
            raise InvalidImage(
                f"the image is {width}x{height} pixels, over the limit of {max_pixels:,} pixels",
                pixels=width * height,
                limit=max_pixels,
            )
        fmt = image.format
        try:
            image.seek(0)  # an animation's first frame
            frame = ImageOps.exif_transpose(image) if fmt == "JPEG" else image
            frame.load()
            rgb_image = _to_rgb(frame)
            width, height = rgb_image.size
            rgb = rgb_image.tobytes()
        except Exception as e:  # truncated or corrupt pixel data
            raise InvalidImage(f"the {fmt} image cannot be decoded: {e}") from None
    digest = hashlib.sha256(b"%dx%d:" % (width, height) + rgb).hexdigest()
    return DecodedImage(width, height, rgb, fmt or "", digest)


def _to_rgb(image: PILImage) -> PILImage:
    from PIL import Image

    if image.mode == "RGB":
        return image
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    if not has_alpha:
        return image.convert("RGB")
    rgba = image.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


# ---------------------------------------------------------------- mtmd


def _log(level: int, text: bytes, user_data: int | None) -> None:
    # mtmd prints every tensor it loads: errors through, the rest at debug
    message = text.decode("utf-8", "replace").rstrip()
    if message:
        log.log(logging.ERROR if level == GGML_LOG_LEVEL_ERROR else logging.DEBUG, "%s", message)


# a module global, so the C callback outlives every call mtmd makes through it
_log_callback = llama_cpp.llama_log_callback(_log)
_log_lock = threading.Lock()
_log_routed = False


def _route_log() -> None:
    global _log_routed
    with _log_lock:
        if not _log_routed:
            mtmd.mtmd_helper_log_set(_log_callback, ctypes.c_void_p(0))  # also sets mtmd's
            _log_routed = True


def projector_capabilities(path: str) -> tuple[bool, bool]:
    """(vision, audio) of a projector file, read from its metadata without loading it."""
    _route_log()
    caps = mtmd.mtmd_get_cap_from_file(path.encode())
    return bool(caps.inp_vision), bool(caps.inp_audio)


@dataclass
class TextChunk:
    tokens: list[int]

    @property
    def n_tokens(self) -> int:
        return len(self.tokens)

    @property
    def n_pos(self) -> int:
        return len(self.tokens)


@dataclass
class ImageChunk:
    n_tokens: int  # embeddings (KV cells) the image takes
    n_pos: int  # positions it advances: differs from n_tokens under M-RoPE
    digest: str  # the image's DecodedImage.digest, also the mtmd chunk's id
    handle: int  # the mtmd_input_chunk, owned by its ChunkedPrompt


class ChunkedPrompt:
    """A tokenized prompt: text and image chunks in order. Owns mtmd's chunk list."""

    def __init__(self, handle: int, chunks: list[TextChunk | ImageChunk]) -> None:
        self._handle: int | None = handle
        self.chunks = chunks

    @property
    def n_tokens(self) -> int:
        return sum(c.n_tokens for c in self.chunks)

    @property
    def n_pos(self) -> int:
        return sum(c.n_pos for c in self.chunks)

    @property
    def images(self) -> list[ImageChunk]:
        return [c for c in self.chunks if isinstance(c, ImageChunk)]

    def close(self) -> None:
        if self._handle:
            mtmd.mtmd_input_chunks_free(self._handle)
            self._handle = None
            for chunk in self.images:
                chunk.handle = 0

    def __enter__(self) -> ChunkedPrompt:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()


class Projector:
    """A vision (or audio) projector loaded beside a text model."""

    def __init__(
        self,
        path: str,
        model: llama_cpp.llama_model_p,
        *,
        threads: int = 0,
        use_gpu: bool = True,
    ) -> None:
        _route_log()
        self.path = path
        self.ptr: int | None = None
        if not os.path.isfile(path):
            raise ProjectorError(f"the projector file {path} does not exist")
        # a marker no user text can contain by chance: a prompt's text never turns into images
        self.marker = f"<__mullama_media_{secrets.token_hex(8)}__>"
        self._marker = self.marker.encode()  # alive while mtmd_init_from_file reads it
        params = mtmd.mtmd_context_params_default()
        params.use_gpu = use_gpu
        params.print_timings = False
        if threads > 0:
            params.n_threads = threads
        params.media_marker = self._marker
        self.ptr = mtmd.mtmd_init_from_file(path.encode(), model, params)
        if not self.ptr:
            raise ProjectorError(
                f"llama.cpp could not load the projector {path} for this model (not an mmproj "
                "GGUF, an unsupported projector type, or one made for another model)"
            )
        self.vision = bool(mtmd.mtmd_support_vision(self.ptr))
        self.audio = bool(mtmd.mtmd_support_audio(self.ptr))
        self.non_causal = bool(mtmd.mtmd_decode_use_non_causal(self.ptr, None))
        self.mrope = bool(mtmd.mtmd_decode_use_mrope(self.ptr))
        self.n_embd: int = llama_cpp.llama_model_n_embd_inp(model)

    def close(self) -> None:
        if self.ptr:
            mtmd.mtmd_free(self.ptr)
            self.ptr = None

    def __enter__(self) -> Projector:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def tokenize(
        self,
        prompt: str,
        images: Sequence[DecodedImage],
        *,
        add_special: bool = True,
        parse_special: bool = True,
    ) -> ChunkedPrompt:
        """Split ``prompt`` at each :attr:`marker` into text tokens and one image chunk per
        image, in order (the model's image start and end tokens are added around each)."""
        assert self.ptr is not None, "the projector is closed"
        n_markers = prompt.count(self.marker)
        if n_markers != len(images):
            raise InvalidRequest(
                f"the prompt has {n_markers} image places for {len(images)} images"
            )
        if images and not self.vision:
            raise InvalidRequest("this model's projector takes no images")
        bitmaps = [self._bitmap(image) for image in images]
        handle = mtmd.mtmd_input_chunks_init()
        try:
            text = prompt.encode("utf-8")
            inp = mtmd.mtmd_input_text(text, len(text), add_special, parse_special)
            array = (mtmd.mtmd_bitmap_p_ctypes * max(1, len(bitmaps)))(*bitmaps)
            rc = mtmd.mtmd_tokenize(self.ptr, handle, ctypes.byref(inp), array, len(bitmaps))
            if rc != 0:
                raise InvalidRequest(f"the prompt and its images cannot be tokenized (mtmd {rc})")
            chunks = self._chunks(handle)
        except BaseException:
            mtmd.mtmd_input_chunks_free(handle)
            raise
        finally:
            for bitmap in bitmaps:
                mtmd.mtmd_bitmap_free(bitmap)
        return ChunkedPrompt(handle, chunks)

    def _bitmap(self, image: DecodedImage) -> int:
        pixels = (ctypes.c_uint8 * len(image.rgb)).from_buffer_copy(image.rgb)
        bitmap: int = mtmd.mtmd_bitmap_init(image.width, image.height, pixels)
        # the chunk carries the digest as its id: the prefix cache's key for its embeddings
        mtmd.mtmd_bitmap_set_id(bitmap, image.digest.encode())
        return bitmap

    @staticmethod
    def _chunks(handle: int) -> list[TextChunk | ImageChunk]:
        out: list[TextChunk | ImageChunk] = []
        for i in range(mtmd.mtmd_input_chunks_size(handle)):
            chunk = mtmd.mtmd_input_chunks_get(handle, i)
            kind = mtmd.mtmd_input_chunk_get_type(chunk)
            if kind == mtmd.MTMD_INPUT_CHUNK_TYPE_TEXT:
                n = ctypes.c_size_t()
                tokens = mtmd.mtmd_input_chunk_get_tokens_text(chunk, ctypes.byref(n))
                out.append(TextChunk(list(tokens[: n.value])))
            else:
                chunk_id = mtmd.mtmd_input_chunk_get_id(chunk) or b""
                out.append(
                    ImageChunk(
                        n_tokens=mtmd.mtmd_input_chunk_get_n_tokens(chunk),
                        n_pos=mtmd.mtmd_input_chunk_get_n_pos(chunk),
                        digest=chunk_id.decode(),
                        handle=chunk,
                    )
                )
        return out

    def encode(self, chunk: ImageChunk) -> npt.NDArray[np.float32]:
        """The image's embeddings, n_tokens × n_embd float32 (a copy: mtmd reuses its buffer)."""
        assert self.ptr is not None, "the projector is closed"
        if not chunk.handle:
            raise ValueError("the image chunk's prompt is closed")
        if mtmd.mtmd_encode_chunk(self.ptr, chunk.handle) != 0:
            raise InvalidRequest("the projector could not encode the image")
        out = mtmd.mtmd_get_output_embd(self.ptr)
        count = chunk.n_tokens * self.n_embd
        rows: npt.NDArray[np.float32] = np.ctypeslib.as_array(out, shape=(count,)).copy()
        return rows.reshape(chunk.n_tokens, self.n_embd)

    def positions(self, chunk: ImageChunk, pos0: int) -> npt.NDArray[np.int32]:
        """The decoder positions of the image's embeddings when it starts at ``pos0``: one row
        (pos0, pos0 + 1, …) or, under M-RoPE, four (time, row, column, unused)."""
        if not self.mrope:
            return np.arange(pos0, pos0 + chunk.n_tokens, dtype=np.int32)
        image = mtmd.mtmd_input_chunk_get_tokens_image(chunk.handle)
        out = (mtmd.mtmd_decoder_pos * chunk.n_tokens)()
        mtmd.mtmd_helper_image_get_decoder_pos(image, pos0, out)
        rows = np.array([(p.t, p.y, p.x, p.z) for p in out], dtype=np.int32)
        return np.ascontiguousarray(rows.T)


class EmbeddingBatch:
    """A ``llama_batch`` of embeddings instead of tokens (llama.cpp takes one or the other in
    a batch): image rows of one or more sequences, none asking for logits."""

    def __init__(self, capacity: int, n_embd: int, *, mrope: bool = False) -> None:
        self.capacity = capacity
        self.n_embd = n_embd
        self.n_pos_per_embd = 4 if mrope else 1
        self.embd = np.zeros((capacity, n_embd), dtype=np.float32)
        self._pos = np.zeros((self.n_pos_per_embd, capacity), dtype=np.int32)
        self._packed = np.zeros(self.n_pos_per_embd * capacity, dtype=np.int32)
        self._seq = np.zeros(capacity, dtype=np.int32)
        self._n_seq_id = np.ones(capacity, dtype=np.int32)
        self._logits = np.zeros(capacity, dtype=np.int8)
        self._seq_ptrs = (ctypes.POINTER(llama_cpp.llama_seq_id) * capacity)()
        base = self._seq.ctypes.data
        for i in range(capacity):
            self._seq_ptrs[i] = ctypes.cast(base + 4 * i, ctypes.POINTER(llama_cpp.llama_seq_id))
        self.n = 0

    def clear(self) -> None:
        self.n = 0

    @property
    def free(self) -> int:
        return self.capacity - self.n

    def add(
        self, rows: npt.NDArray[np.float32], positions: npt.NDArray[np.int32], seq: int
    ) -> None:
        """Append embeddings (n × n_embd) at ``positions`` (n, or 4 × n under M-RoPE)."""
        n = len(rows)
        if n > self.free:
            raise ValueError(f"{n} embeddings do not fit in the {self.free} left in the batch")
        positions = positions.reshape(self.n_pos_per_embd, n)
        self.embd[self.n : self.n + n] = rows
        self._pos[:, self.n : self.n + n] = positions
        self._seq[self.n : self.n + n] = seq
        self.n += n

    @property
    def raw(self) -> llama_cpp.llama_batch:
        """The batch for ``llama_decode``; valid until the next ``add`` or ``clear``."""
        n = self.n
        # M-RoPE positions are section-major over the batch's own length: all t, then all y…
        self._packed[: self.n_pos_per_embd * n] = self._pos[:, :n].reshape(-1)
        return llama_cpp.llama_batch(
            n_tokens=n,
            token=None,
            embd=self.embd.ctypes.data_as(ctypes.POINTER(ctypes.c_float)),
            pos=self._packed.ctypes.data_as(ctypes.POINTER(llama_cpp.llama_pos)),
            n_seq_id=self._n_seq_id.ctypes.data_as(ctypes.POINTER(ctypes.c_int32)),
            seq_id=self._seq_ptrs,
            logits=self._logits.ctypes.data_as(ctypes.POINTER(ctypes.c_int8)),
        )


def decode_embeddings(
    ctx: llama_cpp.llama_context_p, batch: EmbeddingBatch, *, non_causal: bool
) -> int:
    """``llama_decode`` of an embedding batch, returning its status. llama.cpp aborts the
    process on an embedding batch over ``n_batch``, and with ``non_causal`` (Gemma 3: an
    image's rows attend to each other both ways) on one over ``n_ubatch``: such batches are
    refused here instead."""
    limit, name = llama_cpp.llama_n_batch(ctx), "n_batch"
    if non_causal:
        n_ubatch = llama_cpp.llama_n_ubatch(ctx)
        if n_ubatch < limit:
            limit, name = n_ubatch, "n_ubatch"
    if batch.n > limit:
        raise ValueError(
            f"{batch.n} embeddings do not fit in one decode: the context's {name} is {limit}"
            + (" (bidirectional attention needs them in one micro-batch)" if non_causal else "")
        )
    if non_causal:
        llama_cpp.llama_set_causal_attn(ctx, False)
    try:
        rc: int = llama_cpp.llama_decode(ctx, batch.raw)
    finally:
        if non_causal:
            llama_cpp.llama_set_causal_attn(ctx, True)
    return rc
