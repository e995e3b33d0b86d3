"""How the runner lays sequences out for llama.cpp: slots in runs of consecutive ids, batches in
sequence-id order (llama.cpp makes one compute pass per run of consecutive ids it meets)."""

from __future__ import annotations

import asyncio

import pytest

from mullama.engine import sampling
from mullama.engine.api import SamplingOptions
from mullama.engine.runner import Job, Runner, RunnerConfig
from tests.helpers import job_reply

pytestmark = pytest.mark.slow


@pytest.fixture
def runner(model):
    r = Runner(model, RunnerConfig(n_ctx=256, n_parallel=8, threads=2))
    yield r
    r.stop()


def options(**values) -> SamplingOptions:
    return sampling.merge(
        sampling.DEFAULTS, SamplingOptions(temperature=0, repeat_penalty=1.0, **values)
    )


async def run(runner: Runner, prompt: str, seen: list | None = None, **values) -> tuple[str, Job]:
    loop = asyncio.get_running_loop()
    job = Job(runner.model.tokenize(prompt), options(**values), loop, asyncio.Queue())
    runner.submit(job)
    text, _ = await job_reply(job)
    return text, job


def batch_seq_ids(runner: Runner) -> list[int]:
    raw = runner.batch.raw
    return [raw.seq_id[i][0] for i in range(raw.n_tokens)]


async def watch_batches(runner: Runner, into: list[list[int]]) -> None:
    while True:
        into.append(await asyncio.wrap_future(runner.call(lambda: batch_seq_ids(runner))))
        await asyncio.sleep(0.002)


async def test_concurrent_new_requests_take_consecutive_slots(runner):
    # use every slot, then the odd ones again (a repeated prompt returns to its cached slot):
    # the least recently used are now 0, 2, 4, 6, which LRU alone would hand out
    warm = {}
    for n in range(8):
        warm[n] = (await run(runner, f"{n} is the number of this warm-up.", max_tokens=1))[
            1
        ].slot.id
    assert sorted(warm.values()) == list(range(8))
    for n in range(8):
        if warm[n] % 2:
            assert (await run(runner, f"{n} is the number of this warm-up.", max_tokens=1))[
                1
            ].slot.id == warm[n]
    jobs = await asyncio.gather(
        *(run(runner, f"Count from {n}: {n}, {n + 1},", max_tokens=6) for n in (10, 20, 30))
    )
    ids = sorted(job.slot.id for _, job in jobs)
    assert ids == list(range(ids[0], ids[0] + 3)), ids
    for (text, _), n in zip(jobs, (10, 20, 30)):
        assert text.startswith(f" {n + 2},"), text


async def test_a_cached_prefix_wins_its_slot_and_batches_stay_in_sequence_order(runner):
    stems = [
        f"Story {k}: the llama named {name} climbed the hill and saw the valley below, then it"
        for k, name in enumerate(("Pico", "Nina", "Tomas", "Lupe"))
    ]
    first = await asyncio.gather(*(run(runner, stem, max_tokens=2) for stem in stems))
    slots = {stem: job.slot.id for stem, (_, job) in zip(stems, first)}
    # the same stems again, queued in reverse slot order: each goes back to its cached slot
    order = sorted(stems, key=lambda s: -slots[s])
    seen: list[list[int]] = []
    watcher = asyncio.create_task(watch_batches(runner, seen))
    try:
        again = await asyncio.gather(
            *(run(runner, stem + " walked", max_tokens=12, ignore_eos=True) for stem in order)
        )
    finally:
        watcher.cancel()
    for stem, (_, job) in zip(order, again):
        assert job.slot.id == slots[stem]
        assert job.cached >= len(runner.model.tokenize(stem)) - 1
    multi = [ids for ids in seen if len(set(ids)) > 1]
    assert multi, "no step held more than one sequence"
    assert all(ids == sorted(ids) for ids in seen), [ids for ids in seen if ids != sorted(ids)][:3]


async def test_greedy_text_is_the_same_alone_and_beside_others(runner):
    prompt = "The capital of France is Paris. The capital of Italy is"
    alone, _ = await run(runner, prompt, max_tokens=8)
    crowd = await asyncio.gather(
        run(runner, "1, 2, 3,", max_tokens=20, ignore_eos=True),
        run(runner, prompt, max_tokens=8),
        run(runner, "a b c d", max_tokens=20, ignore_eos=True),
    )
    assert crowd[1][0] == alone
