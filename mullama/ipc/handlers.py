"""What each IPC request kind does: a thin translation onto the Engine API."""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

from mullama import __version__
from mullama.engine.api import (
    ChatRequest,
    CompletionRequest,
    EmbedRequest,
    Engine,
    InvalidRequest,
    from_wire,
    to_wire,
)

from .protocol import PROTOCOL_VERSION, field
from .streams import Streams

Handler = Callable[[dict, "int | None"], Awaitable[dict]]


def _request(data: dict, cls: type) -> Any:
    raw = field(data, "request", dict)
    try:
        request = from_wire({**raw, "__type__": cls.__name__})
    except (TypeError, KeyError, AttributeError, ValueError) as exc:
        raise InvalidRequest(f"malformed {cls.__name__}: {exc}", param="request") from None
    if not isinstance(getattr(request, "model", None), str):
        raise InvalidRequest(f"malformed {cls.__name__}: 'model' must be a string", param="model")
    return request


class Handlers:
    def __init__(self, engine: Engine, streams: Streams):
        self.engine = engine
        self.streams = streams
        self.instance = os.urandom(8).hex()
        self.started = time.time()
        self.table: dict[str, Handler] = {
            "Ping": self.ping,
            "Status": self.status,
            "Metrics": self.metrics,
            "ListModels": self.list_models,
            "Show": self.show,
            "Create": self.create,
            "Copy": self.copy,
            "Delete": self.delete,
            "Pull": self.pull,
            "LoadModel": self.load,
            "UnloadModel": self.unload,
            "Ps": self.ps,
            "SetDefaultModel": self.set_default,
            "ChatCompletion": self.chat,
            "Completion": self.complete,
            "Embeddings": self.embed,
            "Tokenize": self.tokenize,
            "CountTokens": self.count_tokens,
            "StreamNext": self.stream_next,
            "Cancel": self.cancel,
            "Shutdown": self.shutdown,
        }

    # the daemon
    async def ping(self, data: dict, pipe: int | None) -> dict:
        return {
            "pong": True,
            "version": __version__,
            "protocol": PROTOCOL_VERSION,
            "pid": os.getpid(),
            "instance": self.instance,
            "started": self.started,
        }

    async def status(self, data: dict, pipe: int | None) -> dict:
        return to_wire(await self.engine.status())

    async def metrics(self, data: dict, pipe: int | None) -> dict:
        return await self.engine.metrics_snapshot()

    async def shutdown(self, data: dict, pipe: int | None) -> dict:
        return {"stopping": True, "pid": os.getpid()}

    # the store
    async def list_models(self, data: dict, pipe: int | None) -> dict:
        return {"models": [to_wire(m) for m in await self.engine.list_models()]}

    async def show(self, data: dict, pipe: int | None) -> dict:
        return to_wire(await self.engine.show_model(field(data, "name", str)))

    async def create(self, data: dict, pipe: int | None) -> dict:
        info = await self.engine.create_model(
            field(data, "name", str),
            field(data, "modelfile", str),
            field(data, "base_dir", str, None),
        )
        return to_wire(info)

    async def copy(self, data: dict, pipe: int | None) -> dict:
        return to_wire(
            await self.engine.copy_model(
                field(data, "source", str), field(data, "destination", str)
            )
        )

    async def delete(self, data: dict, pipe: int | None) -> dict:
        await self.engine.delete_model(field(data, "name", str))
        return {}

    async def pull(self, data: dict, pipe: int | None) -> dict:
        return {
            "stream": self.streams.open(self.engine.pull_model(field(data, "ref", str)), pipe).id
        }

    # loaded models
    async def load(self, data: dict, pipe: int | None) -> dict:
        return to_wire(
            await self.engine.load_model(field(data, "name", str), data.get("keep_alive"))
        )

    async def unload(self, data: dict, pipe: int | None) -> dict:
        await self.engine.unload_model(field(data, "name", str))
        return {}

    async def ps(self, data: dict, pipe: int | None) -> dict:
        return {"models": [to_wire(m) for m in await self.engine.running_models()]}

    async def set_default(self, data: dict, pipe: int | None) -> dict:
        await self.engine.set_default_model(field(data, "name", str))
        return {}

    # inference
    async def chat(self, data: dict, pipe: int | None) -> dict:
        return {"stream": self.streams.open(self.engine.chat(_request(data, ChatRequest)), pipe).id}

    async def complete(self, data: dict, pipe: int | None) -> dict:
        request = _request(data, CompletionRequest)
        return {"stream": self.streams.open(self.engine.complete(request), pipe).id}

    async def embed(self, data: dict, pipe: int | None) -> dict:
        return to_wire(await self.engine.embed(_request(data, EmbedRequest)))

    async def tokenize(self, data: dict, pipe: int | None) -> dict:
        tokens = await self.engine.tokenize(
            field(data, "model", str), field(data, "text", str), field(data, "special", bool, True)
        )
        return {"tokens": tokens}

    async def count_tokens(self, data: dict, pipe: int | None) -> dict:
        return {"count": await self.engine.count_chat_tokens(_request(data, ChatRequest))}

    # streams
    async def stream_next(self, data: dict, pipe: int | None) -> dict:
        return await self.streams.next_batch(field(data, "stream", str), field(data, "after", int))

    async def cancel(self, data: dict, pipe: int | None) -> dict:
        return {"cancelled": await self.streams.cancel(field(data, "stream", str))}
