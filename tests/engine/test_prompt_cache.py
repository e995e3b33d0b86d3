"""The host-memory prompt cache (issue 13): a slot's KV state saved before another request takes
the slot, restored for a later prompt that starts the same way — on the real model, greedy."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from mullama.engine import sampling
from mullama.engine.api import CompletionRequest, Done, SamplingOptions, TextDelta
from mullama.engine.prompt_cache import Entry, PromptCache, default_limit_mb, limit_bytes
from mullama.engine.runner import Job, Runner, RunnerConfig

MiB = 2**20


# ------------------------------------------------------------ the cache itself (no model)


def entry(key: str, tokens: list[int], nbytes: int) -> Entry:
    return Entry(key, np.asarray(tokens, dtype=np.int32), np.zeros(nbytes, dtype=np.uint8))


def test_the_longest_shared_start_of_the_same_key_is_found():
    cache = PromptCache(10 * MiB)
    cache.put(entry("m", [1, 2, 3, 4, 5], 100))
    cache.put(entry("m", [1, 2, 9, 9, 9, 9], 100))
    cache.put(entry("other", [1, 2, 3, 4, 5, 6, 7], 100))
    found, n = cache.find("m", np.asarray([1, 2, 3, 4, 8], dtype=np.int32))
    assert found is not None and found.tokens.tolist() == [1, 2, 3, 4, 5] and n == 4
    found, n = cache.find("m", np.asarray([7, 2, 3], dtype=np.int32))
    assert found is None and n == 0
    assert cache.find("nobody", np.asarray([1, 2, 3], dtype=np.int32)) == (None, 0)


def test_entries_go_least_recently_used_first_by_size():
    cache = PromptCache(1000 + 3 * 4 * 3)  # three entries of 1000/3 bytes and 3 tokens each
    a, b, c = (entry("m", [i, i, i], 333) for i in (1, 2, 3))
    for e in (a, b, c):
        assert cache.put(e)
    assert cache.entries == 3
    cache.hit(a, 3)  # a is used again: b is now the oldest
    assert cache.put(entry("m", [4, 4, 4], 333))
    assert cache.find("m", np.asarray([2, 2, 2], dtype=np.int32))[0] is None
    assert cache.find("m", np.asarray([1, 1, 1], dtype=np.int32))[0] is a
    assert cache.evictions == 1 and cache.bytes <= cache.limit
    assert not cache.put(entry("m", [5, 5, 5], 2000))  # bigger than the whole limit
    assert cache.entries == 3


def test_an_entry_that_extends_another_replaces_it():
    cache = PromptCache(10 * MiB)
    cache.put(entry("m", [1, 2, 3], 100))
    cache.put(entry("m", [1, 2, 3, 4, 5], 100))
    assert cache.entries == 1
    assert cache.covers("m", np.asarray([1, 2, 3, 4], dtype=np.int32))
    assert not cache.covers("other", np.asarray([1, 2, 3], dtype=np.int32))


class FakeContext:
    """Records restores: all SlotCache asks of a context when it restores."""

    def __init__(self) -> None:
        self.restored: list[int] = []

    def state_seq_set(self, seq: int, state) -> None:
        self.restored.append(seq)


def test_a_restore_must_spare_more_than_its_copy_costs():
    from mullama.engine.prompt_cache import SlotCache
    from mullama.engine.runner_state import Slot

    cache = PromptCache(10 * MiB)
    long = list(range(1, 2001))
    cache.put(entry("m", long, 100))
    ctx = FakeContext()
    slots = SlotCache(cache, "m", ctx)  # type: ignore[arg-type]
    # 40 shared tokens of a 2,000-token entry: evaluating them is cheaper than the copy
    slot = Slot(0)
    assert slots.prepare(slot, long[:40] + [9999] * 10, 0, text_only=True) == 0
    assert ctx.restored == [] and cache.hits == 0
    # 1,000 of them: restored, the slot holds the entry, the prompt keeps what it shares
    assert slots.prepare(slot, long[:1000] + [9999], 0, text_only=True) == 1000
    assert ctx.restored == [0] and slot.tokens == long and cache.hits == 1
    # a prompt with images is never given a state (its cells hold no tokens to compare)
    assert slots.prepare(Slot(1), long[:1000] + [9999], 0, text_only=False) == 0


def test_the_automatic_size_is_8_gib_at_most_and_a_tenth_of_memory():
    assert default_limit_mb(4 * 2**30) == 409
    assert default_limit_mb(512 * 2**30) == 8192
    assert limit_bytes(0) == 0 and limit_bytes(16) == 16 * MiB and limit_bytes(-1) > 0


# ------------------------------------------------------------ a runner on the real model

# each prompt starts with its own word, so that two share no more than the BOS token
WORDS = [
    "Apple",
    "Bread",
    "Cloud",
    "Dragon",
    "Engine",
    "Forest",
    "Garden",
    "Harbor",
    "Island",
    "Jungle",
    "Kettle",
    "Lantern",
    "Meadow",
    "Needle",
    "Ocean",
    "Pepper",
    "Quartz",
    "River",
    "Saddle",
    "Tiger",
    "Umbrella",
    "Valley",
    "Window",
    "Yellow",
    "Zebra",
]
PROMPT = (
    "{word} is the name of the observatory on the ridge. It was built in {y} by amateur "
    "astronomers. Its mirror is {m} centimetres wide, and visitors climb {s} steps to reach the "
    "dome. The library holds {b} books on optics. Question: when was it built, and how many "
    "steps are there?"
)


def text(i: int) -> str:
    word = WORDS[i % len(WORDS)]
    return PROMPT.format(word=word, y=1900 + i, m=40 + i, s=300 + 7 * i, b=2000 + 13 * i)


async def generate(runner: Runner, tokens: list[int], max_tokens: int = 12) -> tuple[list, Done]:
    opts = sampling.merge(
        sampling.DEFAULTS, SamplingOptions(temperature=0, max_tokens=max_tokens, ignore_eos=True)
    )
    job = Job(list(tokens), opts, asyncio.get_running_loop(), asyncio.Queue())
    runner.submit(job)
    while True:
        event = await job.queue.get()
        if isinstance(event, Done):
            assert event.context is not None
            return event.context[len(tokens) :], event
        assert isinstance(event, TextDelta), event


def make_runner(model, cache: PromptCache | None, key: str = "") -> Runner:
    config = RunnerConfig(n_ctx=512, n_parallel=1, n_batch=512, threads=1)
    return Runner(model, config, prompt_cache=cache, cache_key=key)


@pytest.fixture
def fresh(model):
    """A runner without the cache: every prompt is evaluated from its first token."""
    runner = make_runner(model, None)
    yield runner
    runner.stop()


async def reference(fresh: Runner, tokens: list[int], max_tokens: int = 12) -> list[int]:
    def forget() -> None:  # on the runner thread, the only one touching slots
        fresh.ctx.seq_rm(0)
        fresh.slots[0].truncate(0)
        fresh.slots[0].forget_logits()

    await asyncio.wrap_future(fresh.call(forget))
    out, done = await generate(fresh, tokens, max_tokens)
    assert done.usage.cached_tokens == 0
    return out


@pytest.mark.slow
async def test_a_second_turn_is_restored_and_answers_as_with_the_cache_off(model, fresh):
    cache = PromptCache(256 * MiB)
    runner = make_runner(model, cache)
    try:
        first = model.tokenize(text(1))
        reply, _ = await generate(runner, first)
        await generate(runner, model.tokenize(text(2)))  # takes the one slot: turn 1 is saved
        assert cache.saves == 1 and cache.entries == 1 and cache.hits == 0
        second = first + reply + model.tokenize(" And who built it?", add_special=False)
        out, done = await generate(runner, second)
        held = len(first) + len(reply) - 1  # the last reply token was sampled, never decoded
        assert cache.hits == 1 and cache.restored_tokens == held
        assert done.usage.cached_tokens == held
        # the cache off, the same two turns on a slot that kept the first: the restored state
        # is the one the slot had (a prompt evaluated in one go from its first token can round
        # differently: its reply tokens were not decoded one at a time, see the next test)
        await reference(fresh, first)
        assert out == (await generate(fresh, second))[0]
        assert (await generate(runner, second))[0] == out  # the very same prompt: the same
    finally:
        runner.stop()


@pytest.mark.slow
async def test_a_prompt_that_leaves_a_saved_state_midway_keeps_its_shared_start(model, fresh):
    cache = PromptCache(256 * MiB)
    runner = make_runner(model, cache)
    try:
        first = model.tokenize(text(3))
        reply, _ = await generate(runner, first)
        await generate(runner, model.tokenize(text(4)))
        cut = len(first) - 20  # a prompt shorter than the entry, differing after ``cut``
        branch = first[:cut] + model.tokenize(" So, in short:", add_special=False)
        out, done = await generate(runner, branch)
        assert cache.hits == 1 and done.usage.cached_tokens == cut
        assert out == await reference(fresh, branch)
        # the very same prompt again: restored with its logits, so not even its last token is
        # evaluated again, and the answer is the first one's
        await generate(runner, model.tokenize(text(5)))
        repeat, done = await generate(runner, first)
        assert cache.hits == 2 and done.usage.cached_tokens == len(first) and repeat == reply
    finally:
        runner.stop()


@pytest.mark.slow
async def test_the_size_limit_evicts_the_oldest_conversation(model):
    cache = PromptCache(256 * MiB)
    runner = make_runner(model, cache)
    try:
        turns = [model.tokenize(text(10 + i)) for i in range(3)]
        await generate(runner, turns[0])
        await generate(runner, turns[1])  # turn 0's state is saved
        one = cache.bytes
        cache.limit = int(one * 1.5)  # room for one state of this size, not two
        await generate(runner, turns[2])  # turn 1's state goes in, turn 0's out
        assert cache.entries == 1 and cache.evictions == 1 and cache.bytes <= cache.limit
        _, done = await generate(runner, turns[1] + [236743])
        assert cache.hits == 1 and done.usage.cached_tokens == len(turns[1])
        _, done = await generate(runner, turns[0] + [236743])
        assert cache.hits == 1 and done.usage.cached_tokens <= 1  # only BOS was in the slot
    finally:
        runner.stop()


@pytest.mark.slow
async def test_a_state_saved_for_another_model_or_context_is_never_used(model):
    cache = PromptCache(256 * MiB)
    first = make_runner(model, cache, key="model-a")
    prompt = model.tokenize(text(20))
    try:
        await generate(first, prompt)
    finally:
        first.stop()  # saves what its slot holds
    assert cache.entries == 1
    other = make_runner(model, cache, key="model-b")
    try:
        _, done = await generate(other, prompt)
        assert cache.hits == 0 and done.usage.cached_tokens == 0
    finally:
        other.stop()
    same = make_runner(model, cache, key="model-a")
    try:
        _, done = await generate(same, prompt)
        assert cache.hits == 1 and done.usage.cached_tokens == len(prompt)
    finally:
        same.stop()


@pytest.mark.slow
async def test_with_the_cache_off_nothing_is_saved(model):
    off = PromptCache(0)
    runner = make_runner(model, off)
    try:
        assert runner.prompt_cache is None
        await generate(runner, model.tokenize(text(30)))
        await generate(runner, model.tokenize(text(31)))
        assert off.saves == 0 and off.entries == 0
    finally:
        runner.stop()


# ------------------------------------------------------------ through the manager


async def _complete(engine, model: str, prompt: str) -> tuple[str, Done]:
    out, done = "", None
    request = CompletionRequest(model, prompt, SamplingOptions(temperature=0, max_tokens=8))
    async for event in engine.complete(request):
        if isinstance(event, TextDelta):
            out += event.text
        elif isinstance(event, Done):
            done = event
    assert done is not None
    return out, done


def _engine(tmp_path, **settings):
    from mullama.config import load_settings
    from mullama.engine.local import LocalEngine

    root = tmp_path
    return LocalEngine(
        load_settings(
            env={},
            cache_dir=root / "c",
            config_dir=root / "g",
            data_dir=root / "d",
            num_parallel=1,
            **settings,
        )
    )


@pytest.mark.slow
async def test_states_outlive_an_unload_and_serve_the_same_model_loaded_again(
    tmp_path, test_model_path
):
    from mullama.engine.metrics import EngineMetrics

    engine = _engine(tmp_path, context_size=512, prompt_cache_ram_mb=64)
    name = str(test_model_path)
    try:
        cache = engine.manager.prompt_cache
        assert cache is not None and cache.limit == 64 * MiB
        prompt = text(40)
        reply, _ = await _complete(engine, name, prompt)
        await engine.unload_model(name)
        assert cache.entries == 1  # the slot's state, saved as the runner stopped
        _, done = await _complete(engine, name, prompt + reply + " Who built it?")
        assert cache.hits == 1 and done.usage.cached_tokens >= 40
        exposition = EngineMetrics(engine).exposition().decode()
        assert "mullama_prompt_cache_hits_total 1.0" in exposition
        assert "mullama_prompt_cache_entries " in exposition
        assert "mullama_prompt_cache_restored_tokens_total" in exposition
        await engine.unload_model(name)
        # another context size is another state format: nothing of it is used
        engine.manager.settings.context_size = 384
        _, done = await _complete(engine, name, prompt)
        assert cache.hits == 1 and done.usage.cached_tokens == 0
        saves = cache.saves
        await engine.close()  # the daemon stopping: nothing is copied for nobody
        assert cache.saves == saves and cache.entries == 0
    finally:
        await engine.close()


@pytest.mark.slow
async def test_prompt_cache_ram_mb_0_turns_it_off(tmp_path, test_model_path):
    from mullama.engine.metrics import EngineMetrics

    engine = _engine(tmp_path, context_size=512, prompt_cache_ram_mb=0)
    name = str(test_model_path)
    try:
        assert engine.manager.prompt_cache is None
        await _complete(engine, name, text(50))
        await _complete(engine, name, text(51))
        _, done = await _complete(engine, name, text(50))
        assert done.usage.cached_tokens <= 1
        assert "mullama_prompt_cache_saves_total 0.0" in EngineMetrics(engine).exposition().decode()
    finally:
        await engine.close()
