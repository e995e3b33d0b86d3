"""What each IPC request kind does, derived from the Engine API's declared operations.

Every operation of :data:`mullama.engine.api.OPERATIONS` is handled the same way: its
``data`` is validated against the method's parameters, the method is called, its result
encoded (a streaming method opens a :class:`~.streams.Stream` instead). Only the transport's
own kinds (streams, blob uploads, Shutdown) and Ping's protocol number are written here.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import msgspec

from mullama.engine.api import OPERATIONS, Engine, InvalidRequest, Operation

from .codec import decode_args, encode_result, encode_value, invalid
from .protocol import (
    PROTOCOL_VERSION,
    TRANSPORT_KINDS,
    BlobChunkArgs,
    BlobCommitArgs,
    BlobUploadArgs,
    CancelArgs,
    StreamNextArgs,
)
from .streams import Streams

Handler = Callable[[dict[str, Any], "int | None"], Awaitable[dict[str, Any]]]

S = TypeVar("S", bound=msgspec.Struct)

UPLOAD_QUEUE = 4  # chunks buffered per blob upload before BlobChunk waits


class Upload:
    """One blob upload: chunks handed to ``Engine.add_blob`` as they arrive."""

    def __init__(self, engine: Engine, digest: str, pipe: int | None):
        self.id = secrets.token_hex(8)
        self.pipe = pipe
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue(UPLOAD_QUEUE)
        self.task = asyncio.create_task(engine.add_blob(digest, self._chunks()))

    async def _chunks(self) -> AsyncIterator[bytes]:
        while (chunk := await self.queue.get()) is not None:
            yield chunk

    async def write(self, data: bytes) -> None:
        put = asyncio.ensure_future(self.queue.put(data))
        done, _ = await asyncio.wait({put, self.task}, return_when=asyncio.FIRST_COMPLETED)
        if put not in done:  # add_blob ended early (an error): report it
            put.cancel()
            await self.task

    async def commit(self) -> str:
        if not self.task.done():
            await self.queue.put(None)
        return await self.task

    async def cancel(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


class Handlers:
    def __init__(self, engine: Engine, streams: Streams):
        self.engine = engine
        self.streams = streams
        self.uploads: dict[str, Upload] = {}
        transport: dict[str, Handler] = {
            "StreamNext": self.stream_next,
            "Cancel": self.cancel,
            "Shutdown": self.shutdown,
            "BlobUpload": self.blob_upload,
            "BlobChunk": self.blob_chunk,
            "BlobCommit": self.blob_commit,
        }
        assert set(transport) == set(TRANSPORT_KINDS)
        self.table: dict[str, Handler] = {
            kind: self._operation(op) for kind, op in OPERATIONS.items()
        } | transport
        self.table["Ping"] = self.ping

    def _operation(self, op: Operation) -> Handler:
        method = getattr(self.engine, op.method)

        async def handle(data: dict[str, Any], pipe: int | None) -> dict[str, Any]:
            args = decode_args(op.kind, op.params, data)
            if op.stream:
                return {"stream": self.streams.open(method(**args), pipe).id}
            return encode_result(op, await method(**args))

        return handle

    async def ping(self, data: dict[str, Any], pipe: int | None) -> dict[str, Any]:
        liveness = dataclasses.replace(await self.engine.ping(), protocol=PROTOCOL_VERSION)
        data = encode_value(liveness)
        assert isinstance(data, dict)
        data.pop("__type__", None)
        return data

    async def shutdown(self, data: dict[str, Any], pipe: int | None) -> dict[str, Any]:
        return {"stopping": True, "pid": os.getpid()}

    # streams
    async def stream_next(self, data: dict[str, Any], pipe: int | None) -> dict[str, Any]:
        args = _args(StreamNextArgs, "StreamNext", data)
        return await self.streams.next_batch(args.stream, args.after)

    async def cancel(self, data: dict[str, Any], pipe: int | None) -> dict[str, Any]:
        stream_id = _args(CancelArgs, "Cancel", data).stream
        upload = self.uploads.pop(stream_id, None)
        if upload is not None:
            await upload.cancel()
            return {"cancelled": True}
        return {"cancelled": await self.streams.cancel(stream_id)}

    # blob uploads
    async def blob_upload(self, data: dict[str, Any], pipe: int | None) -> dict[str, Any]:
        upload = Upload(self.engine, _args(BlobUploadArgs, "BlobUpload", data).digest, pipe)
        self.uploads[upload.id] = upload
        return {"upload": upload.id}

    async def blob_chunk(self, data: dict[str, Any], pipe: int | None) -> dict[str, Any]:
        args = _args(BlobChunkArgs, "BlobChunk", data)
        upload = self._upload(args.upload)
        try:
            await upload.write(args.data)
        except BaseException:
            self.uploads.pop(upload.id, None)
            raise
        return {}

    async def blob_commit(self, data: dict[str, Any], pipe: int | None) -> dict[str, Any]:
        upload = self._upload(_args(BlobCommitArgs, "BlobCommit", data).upload)
        self.uploads.pop(upload.id, None)
        return {"digest": await upload.commit()}

    def _upload(self, upload_id: str) -> Upload:
        upload = self.uploads.get(upload_id)
        if upload is None:
            raise InvalidRequest(
                f"unknown blob upload {upload_id!r}: it was committed, failed or cancelled",
                param="upload",
            )
        return upload

    async def cancel_pipe(self, pipe: int) -> None:
        """The client on ``pipe`` disconnected: drop its unfinished uploads."""
        for upload in [u for u in self.uploads.values() if u.pipe == pipe]:
            self.uploads.pop(upload.id, None)
            with contextlib.suppress(Exception):
                await upload.cancel()

    async def close(self) -> None:
        for upload in list(self.uploads.values()):
            await upload.cancel()
        self.uploads.clear()


def _args(cls: type[S], kind: str, data: dict[str, Any]) -> S:
    try:
        return msgspec.convert(data, type=cls)
    except msgspec.ValidationError as exc:
        raise invalid(f"{kind} request", exc) from None
