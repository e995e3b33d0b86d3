"""A model's runner in a process of its own (``python -m mullama.engine.runner_process FD``).

The daemon starts one for each model on RPC workers (:mod:`.remote_runner`): when a worker
cannot be reached or goes away, llama.cpp aborts the process it runs in, and that must be this
one, not the daemon. It loads the model onto the workers, runs the ordinary :class:`Runner`, and
talks to the daemon over the connection on file descriptor ``FD``
(:mod:`.runner_protocol`): requests in, each decode step's events out in one message.
"""

from __future__ import annotations

import logging
import sys
import threading
from multiprocessing.connection import Connection
from typing import Any, cast

from . import rpc
from .api import Done, EngineError, error_to_wire
from .embedding import EmbedJob
from .llm import LlamaError, Model, init_backend, load_lora
from .runner import Job, Runner, RunnerConfig, RunnerEvent
from .runner_protocol import (
    Cancel,
    Embed,
    Embedded,
    Event,
    FromRunner,
    Inject,
    Load,
    Loaded,
    LoadFailed,
    Stats,
    Step,
    Stop,
    Submit,
    encode,
    to_runner,
)

log = logging.getLogger("mullama.runner_process")


class _JobQueue:
    """Stands in for a job's asyncio queue: names the request its events belong to."""

    def __init__(self, id: int) -> None:
        self.id = id


class Host:
    """The runner's side of the connection: requests to the runner, its events back."""

    def __init__(self, conn: Connection, runner: Runner) -> None:
        self.conn = conn
        self.runner = runner
        self._send_lock = threading.Lock()
        self.jobs: dict[int, Job] = {}
        self.embeds: dict[int, EmbedJob] = {}

    def send(self, message: FromRunner) -> None:
        data = encode(message)
        with self._send_lock:
            self.conn.send_bytes(data)

    def stats(self) -> Stats:
        r = self.runner
        return Stats(
            r.busy_slots,
            r.queued,
            r.requests_total,
            r.tokens_generated,
            r.prompt_tokens,
            r.cache_hit_tokens,
            r.last_batch_size,
            r.kv_cache_usage,
            r.draft_tokens,
            r.draft_accepted,
        )

    # the runner hands each step's events to a job's "loop" (Runner._flush): this is that loop
    def call_soon_threadsafe(self, _deliver: object, items: list[tuple[Any, RunnerEvent]]) -> None:
        events = []
        for queue, event in items:
            id = queue.id
            if isinstance(event, EngineError):
                events.append(Event(id, error=error_to_wire(event)))
                self.jobs.pop(id, None)
            elif isinstance(event, Done):
                events.append(Event(id, done=event))
                self.jobs.pop(id, None)
            else:
                events.append(Event(id, text=event))
        self.send(Step(events, self.stats()))

    def serve(self) -> None:
        """Take requests until the daemon says stop or goes away."""
        while True:
            try:
                message = to_runner.decode(self.conn.recv_bytes())
            except (EOFError, OSError):
                return
            if isinstance(message, Stop):
                return
            if isinstance(message, Submit):
                self.submit(message)
            elif isinstance(message, Cancel):
                job = self.jobs.get(message.id)
                if job is not None:
                    job.cancel()
                embed = self.embeds.get(message.id)
                if embed is not None:
                    embed.cancel()
            elif isinstance(message, Inject):
                job = self.jobs.get(message.id)
                if job is not None:
                    job.inject = message.tokens
            elif isinstance(message, Embed):
                self.embed(message)

    def submit(self, message: Submit) -> None:
        loop = cast(Any, self)
        job = Job(message.prompt, message.opts, loop, cast(Any, _JobQueue(message.id)))
        self.jobs[message.id] = job
        try:
            self.runner.submit(job)
        except EngineError as exc:
            self.jobs.pop(message.id, None)
            self.send(Step([Event(message.id, error=error_to_wire(exc))], self.stats()))

    def embed(self, message: Embed) -> None:
        try:
            job = self.runner.submit_embed(message.inputs)
        except EngineError as exc:
            self.send(Embedded(message.id, error=error_to_wire(exc)))
            return
        self.embeds[message.id] = job

        def done(future: Any) -> None:
            self.embeds.pop(message.id, None)
            if future.cancelled():
                return
            exc = future.exception()
            if exc is None:
                self.send(Embedded(message.id, vectors=future.result()))
            else:
                wire = error_to_wire(exc if isinstance(exc, EngineError) else EngineError(str(exc)))
                self.send(Embedded(message.id, error=wire))

        job.future.add_done_callback(done)


def load(message: Load) -> tuple[Model, Runner, Loaded]:
    init_backend(message.verbose)
    devices = rpc.add_servers(message.servers) if message.servers else []
    model = Model(
        message.path,
        gpu_layers=-1 if message.servers else 0,
        tensor_split=message.tensor_split,
    )
    try:
        lora = [load_lora(model, a) for a in message.adapters]
        runner = Runner(model, RunnerConfig(**message.config), name=message.name, lora=lora)
    except BaseException:
        model.close()
        raise
    shape = runner.embed_shape
    return (
        model,
        runner,
        Loaded(
            n_ctx=runner.n_ctx,
            n_params=model.n_params,
            size=model.size,
            gpu_layers=model.gpu_layers,
            devices=devices,
            embed_shape={
                "n_ctx": shape.n_ctx,
                "n_ubatch": shape.n_ubatch,
                "chunked": shape.chunked,
                "pooling": shape.pooling,
            },
        ),
    )


def main(argv: list[str]) -> int:
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # an abort leaves no core file
    except (ImportError, ValueError, OSError):
        pass
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s: %(message)s")
    conn = Connection(int(argv[1]))
    message = to_runner.decode(conn.recv_bytes())
    if not isinstance(message, Load):
        return 2
    try:
        model, runner, loaded = load(message)
    except (LlamaError, rpc.RpcError, EngineError) as exc:
        conn.send_bytes(encode(LoadFailed(str(exc))))
        return 1
    host = Host(conn, runner)
    host.send(loaded)
    try:
        host.serve()
    finally:
        runner.stop()
        model.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
