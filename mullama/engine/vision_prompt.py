"""Prompts with images: a request's images decoded and checked, and a tokenized prompt laid out
as the runner's KV cells.

The runner keeps a sequence's cells as a list of ints (its prefix cache compares such lists).
An image's cells hold negative ids derived from the image's pixel digest (no text token is
negative), so the same image at the same place matches and another image does not; the
:class:`ImageSpan` list beside the ids says where each image is, so that a reused prefix never
ends inside an image and positions stay right where an image advances fewer positions than it
takes cells (M-RoPE).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass

from .vision import ChunkedPrompt, DecodedImage, ImageChunk, InvalidImage, TextChunk, decode_image

_DATA_URL = re.compile(r"^data:[^,;]*(;[^,;]*)*;base64,", re.IGNORECASE)
_SPACE = re.compile(rb"\s+")


@dataclass(frozen=True)
class ImageLimits:
    max_bytes: int
    max_pixels: int
    max_images: int


def decode_base64_image(text: str, index: int, limits: ImageLimits) -> DecodedImage:
    """Image ``index`` of a request (base64, or a base64 data URL) decoded and checked."""
    where = f"image {index + 1}"
    body = _DATA_URL.sub("", text.strip(), count=1)
    # a base64 text of n characters holds at most 3n/4 bytes: refuse before decoding
    if len(body) * 3 // 4 > limits.max_bytes + 3:
        raise InvalidImage(
            f"{where} is over the limit of {limits.max_bytes:,} bytes",
            param="images",
            limit=limits.max_bytes,
        )
    try:
        data = base64.b64decode(_SPACE.sub(b"", body.encode("ascii")), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise InvalidImage(f"{where} is not valid base64", param="images") from None
    try:
        return decode_image(data, max_bytes=limits.max_bytes, max_pixels=limits.max_pixels)
    except InvalidImage as exc:
        raise InvalidImage(f"{where}: {exc.message}", param="images", **exc.details) from None


def decode_request_images(encoded: Sequence[str], limits: ImageLimits) -> list[DecodedImage]:
    if len(encoded) > limits.max_images:
        raise InvalidImage(
            f"the request has {len(encoded)} images, over the limit of {limits.max_images}",
            param="images",
            count=len(encoded),
            limit=limits.max_images,
        )
    return [decode_base64_image(text, i, limits) for i, text in enumerate(encoded)]


# ---------------------------------------------------------------- cells


@dataclass(frozen=True)
class ImageSpan:
    """An image's cells in a sequence: ``n_tokens`` cells from ``start``, advancing
    ``n_pos`` positions."""

    start: int
    n_tokens: int
    n_pos: int
    digest: str

    @property
    def end(self) -> int:
        return self.start + self.n_tokens


@dataclass
class PromptImage:
    span: ImageSpan
    chunk: ImageChunk  # what the projector encodes (its prompt owns it)


def image_cells(digest: str, n: int) -> list[int]:
    base = int(digest[:8] or "0", 16)
    return [-1 - ((base + i) & 0x7FFFFFFF) for i in range(n)]


@dataclass
class ImagePrompt:
    """A tokenized prompt with images as the runner's cells: text token ids and image cells in
    order, where each image is, and the mtmd chunks they came from (closed with it)."""

    cells: list[int]
    images: list[PromptImage]
    chunked: ChunkedPrompt

    @classmethod
    def of(cls, chunked: ChunkedPrompt, prefix: Sequence[int] = ()) -> ImagePrompt:
        cells = list(prefix)
        images = []
        for chunk in chunked.chunks:
            if isinstance(chunk, TextChunk):
                cells.extend(chunk.tokens)
            else:
                span = ImageSpan(len(cells), chunk.n_tokens, chunk.n_pos, chunk.digest)
                images.append(PromptImage(span, chunk))
                cells.extend(image_cells(chunk.digest, chunk.n_tokens))
        return cls(cells, images, chunked)

    @property
    def spans(self) -> list[ImageSpan]:
        return [image.span for image in self.images]

    def text_tokens(self) -> list[int]:
        """The text tokens only (what a vocabulary check looks at)."""
        return without_images(self.cells, self.spans)

    def close(self) -> None:
        self.chunked.close()


def without_images(cells: list[int], spans: Sequence[ImageSpan]) -> list[int]:
    out, at = [], 0
    for span in spans:
        out.extend(cells[at : span.start])
        at = span.end
    out.extend(cells[at:])
    return out


def position_of(index: int, spans: Sequence[ImageSpan]) -> int:
    """The decoder position of cell ``index`` of a sequence (past whole images only)."""
    return index - sum(s.n_tokens - s.n_pos for s in spans if s.end <= index)


def image_safe_prefix(
    n: int, held: Sequence[ImageSpan], wanted: Sequence[ImageSpan], limit: int
) -> int:
    """How much of a common prefix of ``n`` cells (at most ``limit``) can be kept: it ends
    before or after each image, never inside one, and only the same image (by digest) counts
    as the same cells."""
    n = min(n, limit)
    by_start = {s.start: s for s in wanted}
    for span in held:
        if span.start >= n:
            break
        same = by_start.get(span.start)
        if span.end > n or same is None or same.digest != span.digest:
            return span.start
    for span in wanted:  # the limit may cut the request's own image
        if span.start < n < span.end:
            return span.start
    return n
