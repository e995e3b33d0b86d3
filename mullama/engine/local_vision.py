"""LocalEngine's prompts with images: the model's projector (or the 400 of a model without
one), each image's marker placed in its message, and the images decoded, checked and
tokenized with the prompt into the runner's cells."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from ..config import Settings
from .api import InvalidRequest, Message
from .local_embed import generating_runner
from .manager import Loaded
from .runner import Runner
from .vision_prompt import ImageLimits, ImagePrompt, decode_request_images

if TYPE_CHECKING:
    from .vision import Projector


def projector(entry: Loaded) -> Projector:
    """The projector of a model asked with images, or the 400 of a model without one."""
    vision = generating_runner(entry, "take images").vision
    if vision is None or not vision.projector.vision:
        raise InvalidRequest(
            f"{entry.name} does not accept images (no vision projector)", param="images"
        )
    return vision.projector


def with_markers(messages: list[Message], marker: str) -> list[Message]:
    """Each message's images placed before its text, one ``marker`` each (as Ollama does)."""
    return [
        dataclasses.replace(m, content=marker * len(m.images) + m.content) if m.images else m
        for m in messages
    ]


def tokenize_images(
    settings: Settings,
    entry: Loaded,
    text: str,
    encoded: list[str],
    *,
    add_special: bool,
    prefix: list[int] | None = None,
) -> ImagePrompt:
    """The prompt ``text`` (holding the projector's marker once per image) with its
    images decoded and checked, tokenized into cells."""
    limits = ImageLimits(
        settings.vision_max_image_bytes,
        settings.vision_max_image_pixels,
        settings.vision_max_images,
    )
    images = decode_request_images(encoded, limits)
    model_projector = projector(entry)
    placed = text.count(model_projector.marker)
    if placed != len(images):
        raise InvalidRequest(
            f"the chat template placed {placed} of the request's {len(images)} images "
            "(it drops the messages holding the others)",
            param="images",
        )
    chunked = model_projector.tokenize(text, images, add_special=add_special)
    media = ImagePrompt.of(chunked, prefix or [])
    try:
        runner = generating_runner(entry, "take images")
        assert isinstance(runner, Runner)  # a RemoteRunner has no projector: refused above
        runner.check_images(media)
    except BaseException:
        media.close()
        raise
    return media
