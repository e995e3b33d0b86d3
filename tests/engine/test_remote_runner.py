"""The runner in a child process (what a model on RPC workers gets): the same answers as a
runner in this process, cancellation passed on, embeddings, and a process that dies.

Its layers stay on this machine here (no workers named), so these run on any llama.cpp build;
tests/engine/test_rpc.py puts them on real workers.
"""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from mullama.engine import sampling
from mullama.engine.api import Done, Interrupted, InvalidRequest, SamplingOptions, TextDelta
from mullama.engine.remote_runner import start_remote
from mullama.engine.rpc import Placement
from mullama.engine.runner import Job, Runner, RunnerConfig

pytestmark = pytest.mark.slow

CONFIG = RunnerConfig(n_ctx=512, n_parallel=2, threads=2)


@pytest.fixture(scope="module")
def remote(test_model_path):
    model, runner = start_remote(str(test_model_path), CONFIG, "gemma", [], Placement(()))
    yield runner
    runner.stop()
    model.close()


def start(runner, prompt: str, max_tokens: int = 24) -> Job:
    opts = sampling.merge(
        sampling.DEFAULTS, SamplingOptions(temperature=0, max_tokens=max_tokens, ignore_eos=True)
    )
    job = Job(runner.model.tokenize(prompt), opts, asyncio.get_running_loop(), asyncio.Queue())
    runner.submit(job)
    return job


async def outcome(job: Job, first_text: asyncio.Event | None = None) -> tuple[str, object]:
    text = ""
    while True:
        event = await asyncio.wait_for(job.queue.get(), 300)
        if isinstance(event, TextDelta):
            text += event.text
            if first_text is not None:
                first_text.set()
        else:
            return text, event


async def test_it_answers_as_a_runner_in_this_process(remote, model):
    local = Runner(model, CONFIG)
    try:
        # one at a time: what shares a decode step changes the rounding
        prompts = ["1, 2, 3,", "The capital of France is"]
        here = [await outcome(start(local, p)) for p in prompts]
        there = [await outcome(start(remote, p)) for p in prompts]
    finally:
        local.stop()
    assert [text for text, _ in there] == [text for text, _ in here]
    for _, done in there:
        assert isinstance(done, Done) and done.finish_reason == "length"
        assert done.usage.completion_tokens == 24
    assert remote.requests_total >= 2 and remote.tokens_generated >= 48
    assert remote.model.n_params == model.n_params  # what the child loaded, not the vocabulary


async def test_a_cancelled_request_ends_as_cancelled(remote):
    first = asyncio.Event()
    job = start(remote, "Count to a thousand: 1, 2,", max_tokens=400)
    waiting = asyncio.create_task(outcome(job, first))
    await first.wait()
    job.cancel()
    _, done = await waiting
    assert isinstance(done, Done) and done.finish_reason == "cancelled"
    assert done.usage.completion_tokens < 400


async def test_its_kv_cache_usage_comes_back_with_its_steps(remote):
    """The router gauge of a model in a child process (/metrics' kv_cache_usage_ratio)."""
    first = asyncio.Event()
    job = start(remote, "Count to a thousand: 1, 2,", max_tokens=400)
    waiting = asyncio.create_task(outcome(job, first))
    await first.wait()  # the step that brought the text brought the usage of that moment
    assert 0 < remote.kv_cache_usage < 1
    job.cancel()
    await waiting
    assert remote.kv_cache_usage == 0  # the step that ended it: nothing running


async def test_forced_tokens_reach_the_runner_process(remote):
    """What the engine forces into a generation (closing a thinking budget) is passed on."""
    first = asyncio.Event()
    job = start(remote, "Count to a thousand: 1, 2,", max_tokens=200)
    waiting = asyncio.create_task(outcome(job, first))
    await first.wait()
    job.inject = remote.model.tokenize(" Zebra crossing!", add_special=False)
    text, done = await waiting
    assert " Zebra crossing!" in text
    assert isinstance(done, Done) and done.finish_reason == "length"


async def test_embeddings_come_back(remote, model):
    tokens = model.tokenize("the sea")
    job = remote.submit_embed([tokens])
    vectors = await asyncio.wait_for(asyncio.wrap_future(job.future), 300)
    assert len(vectors) == 1 and len(vectors[0]) == model.n_embd


async def test_an_error_in_the_runner_process_reaches_the_caller_as_itself(remote):
    loop = asyncio.get_running_loop()
    opts = sampling.merge(sampling.DEFAULTS, SamplingOptions(grammar="root ::= (", max_tokens=4))
    job = Job(remote.model.tokenize("hi"), opts, loop, asyncio.Queue())
    remote.submit(job)  # the engine checks grammars first; the runner refuses one too
    _, event = await outcome(job)
    assert isinstance(event, InvalidRequest), event
    assert event.param == "grammar" and "could not be parsed" in event.message


async def test_a_dead_runner_process_ends_its_requests_with_a_clear_error(test_model_path):
    model, runner = start_remote(str(test_model_path), CONFIG, "doomed", [], Placement(()))
    try:
        first = asyncio.Event()
        jobs = [start(runner, "Count: 1, 2,", max_tokens=400) for _ in range(3)]  # one queued
        waiting = [
            asyncio.create_task(outcome(job, first if i == 0 else None))
            for i, job in enumerate(jobs)
        ]
        await first.wait()
        os.kill(runner._proc.pid, signal.SIGKILL)
        for _, event in await asyncio.gather(*waiting):
            assert isinstance(event, Interrupted), event
            assert (
                "the reply was cut off: the process running doomed ended (killed by SIGKILL)"
                in (event.message)
            )
        assert not runner.alive
        with pytest.raises(Interrupted, match="the process running doomed ended"):
            start(runner, "again")
    finally:
        runner.stop()
        model.close()
