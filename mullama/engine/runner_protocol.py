"""What the daemon and a model's runner process say to each other (msgpack, through msgspec).

The daemon (:mod:`.remote_runner`) sends a :class:`Load`, then requests (:class:`Submit`,
:class:`Embed`) and what happens to them (:class:`Cancel`, :class:`Inject`); the runner process
(:mod:`.runner_process`) answers :class:`Loaded` (or :class:`LoadFailed`), then one
:class:`Step` per decode step with the events of every request and the runner's counters.
"""

from __future__ import annotations

from typing import Any

import msgspec

from .api import Done, SamplingOptions, TextDelta


class Load(msgspec.Struct, tag=True):
    path: str
    name: str
    config: dict[str, Any]  # RunnerConfig's fields
    servers: list[str]
    tensor_split: list[float]
    adapters: list[str]
    verbose: bool = False


class Submit(msgspec.Struct, tag=True):
    id: int
    prompt: list[int]
    opts: SamplingOptions


class Cancel(msgspec.Struct, tag=True):
    id: int


class Inject(msgspec.Struct, tag=True):
    id: int
    tokens: list[int]


class Embed(msgspec.Struct, tag=True):
    id: int
    inputs: list[list[int]]


class Stop(msgspec.Struct, tag=True):
    pass


ToRunner = Load | Submit | Cancel | Inject | Embed | Stop


class Loaded(msgspec.Struct, tag=True):
    n_ctx: int
    n_params: int
    size: int
    gpu_layers: int
    devices: list[str]
    embed_shape: dict[str, Any]  # EmbedShape's fields


class LoadFailed(msgspec.Struct, tag=True):
    message: str


class Stats(msgspec.Struct):
    busy_slots: int = 0
    queued: int = 0
    requests_total: int = 0
    tokens_generated: int = 0
    prompt_tokens: int = 0
    cache_hit_tokens: int = 0
    last_batch_size: int = 0
    kv_cache_usage: float = 0.0
    draft_tokens: int = 0
    draft_accepted: int = 0


class Event(msgspec.Struct, array_like=True):
    """One event of request ``id``: text, its Done, or its error (``api.error_to_wire``)."""

    id: int
    text: TextDelta | None = None
    done: Done | None = None
    error: dict[str, Any] | None = None


class Step(msgspec.Struct, tag=True):
    events: list[Event]
    stats: Stats


class Embedded(msgspec.Struct, tag=True):
    id: int
    vectors: list[list[float]] | None = None
    error: dict[str, Any] | None = None


FromRunner = Loaded | LoadFailed | Step | Embedded

_encoder = msgspec.msgpack.Encoder()
to_runner = msgspec.msgpack.Decoder(ToRunner)
from_runner = msgspec.msgpack.Decoder(FromRunner)


def encode(message: ToRunner | FromRunner) -> bytes:
    return _encoder.encode(message)
