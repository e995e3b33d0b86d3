"""A runner in a child process: what the daemon holds for a model on RPC workers.

llama.cpp aborts the process whose RPC worker cannot be reached or goes away. So a model
placed on workers (:class:`.rpc.Placement`) is loaded and run by a child process
(:mod:`.runner_process`), and the daemon keeps :class:`RemoteRunner`, which has the
:class:`.runner.Runner` interface the engine uses (``submit``, ``submit_embed``, ``stop``, the
counters) and forwards over a connection (:mod:`.runner_protocol`). The daemon also loads the
model's vocabulary alone (no weights) for templates, tokenization and grammars. When the child
dies, the requests on the model end with :class:`.api.Interrupted` saying why, the runner is
dead (``alive`` is False) and the manager loads the model again at its next request; the
daemon and its other models carry on.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import itertools
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from multiprocessing.connection import Connection
from typing import Any

from . import rpc
from .api import (
    ContextOverflow,
    Interrupted,
    ModelLoadError,
    QueueFull,
    error_from_wire,
)
from .embedding import EmbedJob, EmbedShape
from .llm import Model
from .runner import Job, RunnerConfig, RunnerEvent
from .runner_protocol import (
    Cancel,
    Embed,
    Embedded,
    Inject,
    Load,
    Loaded,
    LoadFailed,
    Stats,
    Step,
    Stop,
    Submit,
    ToRunner,
    encode,
    from_runner,
)
from .token_ids import check_token_ids

log = logging.getLogger("mullama.remote_runner")

# how often cancellations and injected tokens are passed on while no step reports back
FORWARD_EVERY = 0.05
_ABORT_LINE = re.compile(r"\.(?:c|cpp):\d+: (.+)$")


class RemoteRunner:
    """The :class:`.runner.Runner` of a model whose llama context lives in a child process."""

    def __init__(
        self,
        model: Model,
        config: RunnerConfig,
        name: str,
        proc: subprocess.Popen[bytes],
        conn: Connection,
        loaded: Loaded,
        stderr: _StderrTail,
        servers: tuple[str, ...],
    ) -> None:
        self.model = model
        self.config = config
        self.name = name
        self.n_ctx = loaded.n_ctx
        self.devices = loaded.devices
        self.servers = servers
        self.embed_shape = EmbedShape(**loaded.embed_shape)
        self.vision = None  # no projector on RPC workers (yet): images are refused by name
        self._proc = proc
        self._conn = conn
        self._stderr = stderr
        self._send_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._jobs: dict[int, Job] = {}
        self._embeds: dict[int, EmbedJob] = {}
        self._cancel_sent: set[int] = set()
        self._stats = Stats()
        self._stopping = False
        self._lock = threading.Lock()
        self.failure: str | None = None  # why the runner process ended, once it has
        self._reader = threading.Thread(target=self._read, name=f"remote:{name}", daemon=True)
        self._reader.start()

    # ------------------------------------------------------------ the Runner interface

    @property
    def alive(self) -> bool:
        return self.failure is None and not self._stopping

    @property
    def busy_slots(self) -> int:
        return self._stats.busy_slots

    @property
    def queued(self) -> int:
        return self._stats.queued

    @property
    def active(self) -> int:
        return self.busy_slots + self.queued

    @property
    def requests_total(self) -> int:
        return self._stats.requests_total

    @property
    def tokens_generated(self) -> int:
        return self._stats.tokens_generated

    @property
    def prompt_tokens(self) -> int:
        return self._stats.prompt_tokens

    @property
    def cache_hit_tokens(self) -> int:
        return self._stats.cache_hit_tokens

    @property
    def draft_tokens(self) -> int:
        return self._stats.draft_tokens

    @property
    def draft_accepted(self) -> int:
        return self._stats.draft_accepted

    @property
    def last_batch_size(self) -> int:
        return self._stats.last_batch_size

    @property
    def kv_cache_usage(self) -> float:
        return self._stats.kv_cache_usage

    def submit(self, job: Job) -> None:
        self._check_alive()
        check_token_ids(job.prompt, self.model.n_vocab)
        if len(job.prompt) >= self.n_ctx:
            raise ContextOverflow(
                f"the prompt is {len(job.prompt)} tokens but the context holds {self.n_ctx} "
                f"(and needs room to answer); shorten the prompt or raise num_ctx",
                prompt_tokens=len(job.prompt),
                context_length=self.n_ctx,
            )
        waiting = len(self._jobs) - self.config.n_parallel
        if waiting >= self.config.max_queue:
            raise QueueFull(
                f"{self.name} already has {waiting} requests waiting; retry shortly",
                retry_after=1,
            )
        id = next(self._ids)
        with self._lock:  # the job is registered before the process can be found dead
            self._check_alive()
            self._jobs[id] = job
        try:
            self._send(Submit(id, job.prompt, job.opts))
        except OSError:
            self._jobs.pop(id, None)
            raise Interrupted(
                f"{self.name} cannot take requests: its runner process ended"
            ) from None

    def submit_embed(self, inputs: list[list[int]]) -> EmbedJob:
        self._check_alive()
        job = EmbedJob(inputs)
        id = next(self._ids)
        with self._lock:
            self._check_alive()
            self._embeds[id] = job
        try:
            self._send(Embed(id, inputs))
        except OSError:
            self._embeds.pop(id, None)
            raise Interrupted(
                f"{self.name} cannot take requests: its runner process ended"
            ) from None
        return job

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the runner process: its requests end as interrupted (as a runner's do)."""
        self._stopping = True
        with contextlib.suppress(OSError, ValueError):
            self._send(Stop())
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(5)
        self._reader.join(timeout)
        self._conn.close()

    # ------------------------------------------------------------ internals

    def _check_alive(self) -> None:
        if self.failure is not None:
            raise Interrupted(self.failure)

    def _send(self, message: ToRunner) -> None:
        data = encode(message)
        with self._send_lock:
            self._conn.send_bytes(data)

    def _read(self) -> None:
        try:
            while True:
                if self._conn.poll(FORWARD_EVERY):
                    message = from_runner.decode(self._conn.recv_bytes())
                    if isinstance(message, Step):
                        self._stats = message.stats
                        self._deliver(message)
                    elif isinstance(message, Embedded):
                        self._embedded(message)
                self._forward()
        except (EOFError, OSError):
            pass
        except Exception:  # a garbled message: nothing it says can be trusted any more
            log.exception("%s: the runner process sent what cannot be read; stopping it", self.name)
            self._proc.kill()
        self._ended()

    def _deliver(self, step: Step) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Job, RunnerEvent]]] = {}
        for event in step.events:
            job = self._jobs.get(event.id)
            if job is None:
                continue
            item: RunnerEvent
            if event.text is not None:
                item = event.text
            elif event.done is not None:
                item = event.done
            else:
                item = error_from_wire(event.error or {})
            if event.text is None:  # a Done or an error: the request is over
                self._finished(event.id)
            by_loop.setdefault(job.loop, []).append((job, item))
        for loop, items in by_loop.items():
            _hand_over(loop, items)

    def _finished(self, id: int) -> None:
        self._jobs.pop(id, None)
        self._cancel_sent.discard(id)

    def _embedded(self, message: Embedded) -> None:
        job = self._embeds.pop(message.id, None)
        self._cancel_sent.discard(message.id)
        if job is None or not job.claim():
            return
        if message.error is not None:
            job.future.set_exception(error_from_wire(message.error))
        else:
            job.future.set_result(message.vectors or [])

    def _forward(self) -> None:
        """Pass on what the engine did to its jobs: cancel one, force tokens into one."""
        for id, job in list(self._jobs.items()):
            if job.cancelled.is_set() and id not in self._cancel_sent:
                self._cancel_sent.add(id)
                self._send(Cancel(id))
            if job.inject:
                tokens, job.inject = job.inject, None
                self._send(Inject(id, tokens))
        for id, embed in list(self._embeds.items()):
            if embed.cancelled.is_set() and id not in self._cancel_sent:
                self._cancel_sent.add(id)
                self._send(Cancel(id))

    def _ended(self) -> None:
        """The connection closed: the process stopped (asked to) or died (a worker failed)."""
        try:
            code = self._proc.wait(10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            code = self._proc.wait(5)
        if self._stopping:
            why = f"{self.name} was unloaded (the daemon is stopping, or the model was unloaded)"
        else:
            why = (
                f"the process running {self.name} ended ({_exit_text(code)})"
                f"{self._stderr.abort_reason()}; an RPC worker it uses "
                f"({', '.join(self.servers)}) probably went away or failed, and the model "
                "loads again at its next request"
            )
            log.error("%s", why)
        with self._lock:  # from now on nothing is registered: submit raises
            self.failure = why
        error = Interrupted(f"the reply was cut off: {why}")
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Job, RunnerEvent]]] = {}
        for id, job in list(self._jobs.items()):
            self._finished(id)
            by_loop.setdefault(job.loop, []).append((job, error))
        for loop, items in by_loop.items():
            _hand_over(loop, items)
        for id, embed in list(self._embeds.items()):
            self._embeds.pop(id, None)
            embed.fail(Interrupted(f"the embedding was cut off: {why}"))


def _hand_over(loop: asyncio.AbstractEventLoop, items: list[tuple[Job, RunnerEvent]]) -> None:
    def deliver() -> None:
        for job, event in items:
            job.queue.put_nowait(event)

    with contextlib.suppress(RuntimeError):  # that loop is closed: nobody is listening
        loop.call_soon_threadsafe(deliver)


def _exit_text(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
        return f"killed by signal {-code}"
    return f"exit status {code}"


class _StderrTail:
    """The child's stderr, logged line by line; the last lines are kept for error messages."""

    def __init__(self, stream: Any, name: str) -> None:
        self.lines: collections.deque[str] = collections.deque(maxlen=50)
        self._name = name
        self._thread = threading.Thread(
            target=self._pump, args=(stream,), name=f"stderr:{name}", daemon=True
        )
        self._thread.start()

    def _pump(self, stream: Any) -> None:
        with contextlib.suppress(ValueError, OSError):
            for raw in stream:
                line = raw.decode("utf-8", "replace").rstrip()
                if line:
                    self.lines.append(line)
                    log.debug("%s: %s", self._name, line)

    def wait(self, timeout: float = 2.0) -> None:
        self._thread.join(timeout)

    def abort_reason(self) -> str:
        """``: <what llama.cpp said when it aborted>``, or nothing."""
        self.wait()
        for line in reversed(self.lines):
            found = _ABORT_LINE.search(line)
            if found:
                return f": llama.cpp said {found.group(1).strip()!r}"
        return ""

    def last(self, n: int = 5) -> str:
        self.wait()
        return " | ".join(list(self.lines)[-n:])


def start_remote(
    path: str,
    config: RunnerConfig,
    name: str,
    adapters: list[str],
    placement: rpc.Placement,
    verbose: bool = False,
) -> tuple[Model, RemoteRunner]:
    """Load ``path`` in a runner process with its layers on ``placement``'s workers (blocks
    until loaded). Raises :class:`.api.ModelLoadError` saying why it could not."""
    reason = rpc.missing() if placement.servers else None
    if reason:
        raise ModelLoadError(f"cannot load {name} on RPC workers: {reason}")
    rpc.check_placement(placement)
    for endpoint in placement.servers:  # a clear error now, not an abort in the child
        try:
            rpc.probe(endpoint)
        except rpc.RpcError as exc:
            raise ModelLoadError(f"cannot load {name}: {exc}") from None
    model = Model(path, vocab_only=True)
    try:
        proc, conn, stderr = _spawn()
        try:
            conn.send_bytes(
                encode(
                    Load(
                        path,
                        name,
                        dataclasses.asdict(config),
                        list(placement.servers),
                        list(placement.tensor_split),
                        adapters,
                        verbose,
                    )
                )
            )
            reply = from_runner.decode(conn.recv_bytes())
        except (EOFError, OSError):
            code = proc.wait(10)
            conn.close()
            raise ModelLoadError(
                f"cannot load {name}: its runner process ended ({_exit_text(code)})"
                f"{stderr.abort_reason() or ': ' + stderr.last()}"
            ) from None
        if isinstance(reply, LoadFailed):
            proc.wait(10)
            conn.close()
            raise ModelLoadError(f"cannot load {name}: {reply.message}")
        assert isinstance(reply, Loaded), reply
    except BaseException:
        model.close()
        raise
    # the vocabulary-only model reports no weights: show what the runner process loaded
    model.n_params, model.size, model.gpu_layers = reply.n_params, reply.size, reply.gpu_layers
    return model, RemoteRunner(model, config, name, proc, conn, reply, stderr, placement.servers)


def _spawn() -> tuple[subprocess.Popen[bytes], Connection, _StderrTail]:
    ours, theirs = socket.socketpair()
    env = {**os.environ, "GGML_NO_BACKTRACE": "1"}  # an abort must not start a debugger
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mullama.engine.runner_process", str(theirs.fileno())],
            pass_fds=(theirs.fileno(),),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
        )
    finally:
        theirs.close()
    return proc, Connection(ours.detach()), _StderrTail(proc.stderr, "runner")
