"""The runner's image side: a vision model's projector, its encoder thread, and the image
decodes of each step.

A llama_batch carries tokens or embeddings, not both, so a step is zero or more embedding
decodes (the images that sequences have reached, several sequences' images in one batch where
they fit), then the token decode of :class:`~.runner.Runner`. An image goes in whole within one
step: where the projector needs bidirectional attention over an image (Gemma 3) in one decode
no larger than the context's micro-batch, else (causal models) in decodes of at most
``n_batch`` rows. Image rows never ask for logits; the text after an image follows it in a
later token decode (the same step's, since images come first).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import llama_cpp

from .api import EngineError, InvalidRequest
from .image_encoder import CACHE_BYTES, ImageEncoder, Rows
from .vision import DecodedImage, EmbeddingBatch, Projector, decode_embeddings
from .vision_prompt import PromptImage

if TYPE_CHECKING:
    from .llm import Model
    from .runner_state import Job

log = logging.getLogger("mullama.runner")

UBATCH = 512  # the micro-batch a context has when images do not need a larger one


def projector_bytes(path: str, meta: Mapping[str, Any]) -> int:
    """Memory a loaded projector takes, estimated from its file and GGUF metadata: its weights,
    its compute buffer (one encoder layer over an image's patches: the feed-forward
    activations and one head's attention scores per head) and the cache of encoded images."""

    def get(key: str, default: int) -> int:
        return int(float(meta.get(f"clip.vision.{key}", default) or default))

    patches = (get("image_size", 336) // max(get("patch_size", 14), 1)) ** 2
    width = max(get("feed_forward_length", 4096), 4 * get("embedding_length", 1024))
    compute = 4 * (2 * patches * width + get("attention.head_count", 16) * patches * patches)
    return os.path.getsize(path) + compute + CACHE_BYTES


def probe_image_tokens(projector: Projector) -> int:
    """The image tokens a large image takes with this projector (what the context's
    micro-batch must hold when an image is decoded bidirectionally)."""
    side = 1024
    probe = DecodedImage(side, side, bytes(side * side * 3), "PNG", "0" * 64)
    with projector.tokenize(projector.marker, [probe], add_special=False) as prompt:
        return max((c.n_tokens for c in prompt.images), default=0)


def load_vision(
    path: str, model: Model, threads: int, wake: Callable[[], None], name: str
) -> RunnerVision:
    """The projector at ``path`` loaded for ``model``, with its encoder thread."""
    assert model.ptr is not None, "the model is closed"
    projector = Projector(path, model.ptr, threads=threads, use_gpu=model.gpu_layers != 0)
    try:
        return RunnerVision(projector, wake, name)
    except BaseException:
        projector.close()
        raise


@dataclass
class ImageWork:
    job: Job
    image: PromptImage
    rows: Rows


class RunnerVision:
    def __init__(self, projector: Projector, wake: Callable[[], None], name: str) -> None:
        self.projector = projector
        self.encoder = ImageEncoder(projector, wake, name=name)
        self.image_tokens = probe_image_tokens(projector) if projector.non_causal else 0
        self._batch: EmbeddingBatch | None = None
        # the most tokens one image may take: a bidirectional image goes in one micro-batch
        self.max_tokens = 0
        self.images_decoded = 0

    def ubatch(self, n_batch: int) -> int:
        """The micro-batch the context needs (0: the default)."""
        if not self.projector.non_causal:
            return 0
        self.max_tokens = max(min(n_batch, UBATCH), self.image_tokens)
        return self.max_tokens

    def close(self) -> None:
        self.encoder.close()
        self.projector.close()

    # ------------------------------------------------------------ per job

    def start(self, job: Job, keep: int) -> None:
        """Ask for the embeddings of the job's images that its slot does not hold."""
        for image in job.images:
            if image.span.start >= keep:
                job.encodes[image.span.start] = self.encoder.submit(image.chunk, job.cancelled)

    def next_image(self, job: Job, at: int) -> PromptImage | None:
        for image in job.images:
            if image.span.start >= at:
                return image
        return None

    def waiting(self, job: Job) -> bool:
        """Whether the job is at an image whose rows are not encoded yet."""
        slot = job.started_slot
        image = self.next_image(job, len(slot.tokens))
        if image is None or image.span.start != len(slot.tokens):
            return False
        future = job.encodes.get(image.span.start)
        return future is not None and not future.done()

    def release(self, job: Job) -> None:
        for future in job.encodes.values():
            future.cancel()
        job.encodes = {}
        if job.media is not None:
            self.encoder.dispose(job.media.chunked)
            job.media = None

    # ------------------------------------------------------------ a step's image decodes

    def ready(
        self, jobs: list[Job], budget: int
    ) -> tuple[list[ImageWork], list[tuple[Job, EngineError]]]:
        """The images sequences are at and whose rows are there, first come first served,
        up to about ``budget`` rows (one image at least); and the jobs whose encoding failed."""
        work: list[ImageWork] = []
        failed: list[tuple[Job, EngineError]] = []
        rows_taken = 0
        for job in jobs:
            slot = job.started_slot
            if not job.prefilling or job.replay is not None or not job.pending:
                continue
            image = self.next_image(job, len(slot.tokens))
            if image is None or image.span.start != len(slot.tokens):
                continue
            future: Future[Rows] | None = job.encodes.get(image.span.start)
            if future is None or not future.done():
                continue
            try:
                rows = future.result()
            except EngineError as exc:
                failed.append((job, exc))
                continue
            except Exception as exc:  # a cancelled future: the job is going anyway
                failed.append((job, EngineError(f"the image could not be encoded: {exc}")))
                continue
            work.append(ImageWork(job, image, rows))
            rows_taken += image.span.n_tokens
            if rows_taken >= budget:
                break
        return work, failed

    def decode(
        self, ctx: llama_cpp.llama_context_p, work: list[ImageWork]
    ) -> list[tuple[Job, EngineError]]:
        """Decode the images of ``work``; returns the jobs that failed (each alone)."""
        n_batch: int = llama_cpp.llama_n_batch(ctx)
        limit = n_batch
        if self.projector.non_causal:
            limit = min(limit, llama_cpp.llama_n_ubatch(ctx))
        batch = self._embedding_batch(n_batch)
        failed: list[tuple[Job, EngineError]] = []
        if self.projector.non_causal:
            groups: list[list[ImageWork]] = []
            size = 0
            for item in work:
                if item.image.span.n_tokens > limit:
                    failed.append((item.job, self._too_big(item, limit)))
                    continue
                if not groups or size + item.image.span.n_tokens > limit:
                    groups.append([])
                    size = 0
                groups[-1].append(item)
                size += item.image.span.n_tokens
            for group in groups:
                failed += self._decode_group(ctx, batch, group)
        else:
            for item in work:
                failed += self._decode_group(ctx, batch, [item])
        return failed

    def _decode_group(
        self, ctx: llama_cpp.llama_context_p, batch: EmbeddingBatch, group: list[ImageWork]
    ) -> list[tuple[Job, EngineError]]:
        """One decode of whole images (non-causal), or one image in parts of ``n_batch``."""
        non_causal = self.projector.non_causal
        if non_causal:
            batch.clear()
            for item in group:
                slot = item.job.started_slot
                batch.add(
                    item.rows, self.projector.positions(item.image.chunk, slot.next_pos), slot.id
                )
            rc = decode_embeddings(ctx, batch, non_causal=True)
        else:
            (item,) = group
            slot = item.job.started_slot
            positions = self.projector.positions(item.image.chunk, slot.next_pos)
            rc = 0
            for at in range(0, len(item.rows), batch.capacity):
                part = slice(at, at + batch.capacity)
                batch.clear()
                batch.add(item.rows[part], positions[..., part], slot.id)
                rc = decode_embeddings(ctx, batch, non_causal=False)
                if rc != 0:
                    break
        if rc != 0:
            for item in group:  # take back whatever a failed decode stored
                slot = item.job.started_slot
                llama_cpp.llama_memory_seq_rm(
                    llama_cpp.llama_get_memory(ctx), slot.id, slot.next_pos, -1
                )
            if len(group) > 1:
                failed = []
                for item in group:
                    failed += self._decode_group(ctx, batch, [item])
                return failed
            log.error("decoding an image failed (llama_decode %d)", rc)
            return [
                (
                    group[0].job,
                    EngineError(
                        f"llama.cpp could not decode the image (llama_decode {rc}); other "
                        "requests were not affected"
                    ),
                )
            ]
        for item in group:
            job, span = item.job, item.image.span
            slot = job.started_slot
            slot.tokens.extend(job.pending[: span.n_tokens])
            del job.pending[: span.n_tokens]
            slot.images.append(span)
            job.encodes.pop(span.start, None)
            self.images_decoded += 1
        return []

    def _embedding_batch(self, n_batch: int) -> EmbeddingBatch:
        if self._batch is None:
            self._batch = EmbeddingBatch(n_batch, self.projector.n_embd, mrope=self.projector.mrope)
        return self._batch

    @staticmethod
    def _too_big(item: ImageWork, limit: int) -> EngineError:
        return InvalidRequest(
            f"the image takes {item.image.span.n_tokens} tokens, more than the {limit} this "
            "model's context decodes at once; raise num_batch",
            param="images",
        )
