"""Continuous batching on the real model: many sequences in one decode, each kept apart."""

from __future__ import annotations

import asyncio

import pytest

from mullama.config import load_settings
from mullama.engine.api import CompletionRequest, ContextOverflow, Done, SamplingOptions, TextDelta
from mullama.engine.local import LocalEngine

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
async def eng(tmp_path_factory, test_model_path):
    root = tmp_path_factory.mktemp("batching")
    engine = LocalEngine(
        load_settings(
            env={},
            cache_dir=root / "c",
            config_dir=root / "g",
            data_dir=root / "d",
            num_parallel=8,
            context_size=256,
        )
    )
    await engine.load_model(str(test_model_path))
    engine.model = str(test_model_path)
    yield engine
    await engine.close()


async def complete(engine, prompt: str, **options) -> tuple[str, Done]:
    text, done = "", None
    request = CompletionRequest(engine.model, prompt, SamplingOptions(temperature=0, **options))
    async for event in engine.complete(request):
        if isinstance(event, TextDelta):
            text += event.text
        else:
            done = event
    return text, done


def runner(engine):
    return next(iter(engine.manager.loaded.values())).runner


async def test_eight_simultaneous_counts_each_get_their_own_answer(eng):
    starts = [3, 17, 25, 40, 52, 61, 77, 88]
    results = await asyncio.gather(
        *(complete(eng, f"{n}, {n + 1}, {n + 2},", max_tokens=6) for n in starts)
    )
    for n, (text, _done) in zip(starts, results):
        assert text.startswith(f" {n + 3},"), (n, text)
    assert runner(eng).busy_slots == 0


async def test_batch_sizes_above_one_really_happen(eng):
    seen = []

    async def watch():
        for _ in range(400):
            seen.append(runner(eng).last_batch_size)
            await asyncio.sleep(0.005)

    watcher = asyncio.create_task(watch())
    await asyncio.gather(
        *(complete(eng, f"{n}, {n + 1},", max_tokens=12, ignore_eos=True) for n in range(4))
    )
    watcher.cancel()
    assert max(seen) >= 2  # several sequences shared one llama_decode


async def test_per_request_parameters_hold_side_by_side(eng):
    stop, short, grammar, plain = await asyncio.gather(
        complete(eng, "1, 2, 3, 4,", max_tokens=20, stop=[" 7,"]),
        complete(eng, "10, 11, 12,", max_tokens=2, ignore_eos=True),
        complete(eng, "The answer is", max_tokens=10, grammar='root ::= " yes" | " no"'),
        complete(eng, "20, 21, 22,", max_tokens=9),
    )
    assert stop[0] == " 5, 6," and stop[1].stop_sequence == " 7,"
    assert short[1].usage.completion_tokens == 2 and short[1].finish_reason == "length"
    assert grammar[0] in (" yes", " no")
    assert plain[0].startswith(" 23, 24,")


async def test_cancel_one_the_others_continue_and_a_late_joiner_is_served(eng):
    async def cancelled():
        stream = eng.complete(
            CompletionRequest(
                eng.model,
                "Tell a long story:",
                SamplingOptions(max_tokens=200, ignore_eos=True, temperature=0),
            )
        )
        n = 0
        async for event in stream:
            n += isinstance(event, TextDelta)
            if n == 3:
                break
        await stream.aclose()
        return n

    async def late():
        await asyncio.sleep(0.3)  # joins while the others are generating
        return await complete(eng, "30, 31, 32,", max_tokens=9)

    long_a, cut, long_b, joined = await asyncio.gather(
        complete(eng, "40, 41, 42,", max_tokens=24, ignore_eos=True),
        cancelled(),
        complete(eng, "50, 51, 52,", max_tokens=24, ignore_eos=True),
        late(),
    )
    assert cut == 3
    assert long_a[0].startswith(" 43, 44,") and long_a[1].usage.completion_tokens == 24
    assert long_b[0].startswith(" 53, 54,") and long_b[1].usage.completion_tokens == 24
    assert joined[0].startswith(" 33, 34,")


async def test_second_turn_reuses_the_cached_prefix(eng):
    prefix = "A list of fruits: apple, banana, cherry, date, elderberry, fig, grape,"
    _, first = await complete(eng, prefix, max_tokens=3)
    _, second = await complete(eng, prefix + " honeydew, kiwi,", max_tokens=3)
    assert second.usage.cached_tokens >= first.usage.prompt_tokens - 1


async def test_a_full_context_ends_one_sequence_without_hurting_the_others(eng):
    async def overflow():
        with pytest.raises(ContextOverflow):
            await complete(eng, "word " * 300, max_tokens=5)
        return True

    async def runs_past_the_context():
        return await complete(eng, "Count: 1, 2, 3,", max_tokens=1000, ignore_eos=True)

    ok, (_text, done), (other, _) = await asyncio.gather(
        overflow(), runs_past_the_context(), complete(eng, "60, 61, 62,", max_tokens=9)
    )
    assert ok and done.finish_reason == "length"
    assert (
        done.usage.prompt_tokens + done.usage.completion_tokens <= 256
    )  # stopped at its slot's context
    assert other.startswith(" 63, 64,")
    assert runner(eng).busy_slots == 0
