"""Token ids from clients, and a decode that fails: one bad request never takes the others down."""

from __future__ import annotations

import asyncio

import pytest

from mullama.config import load_settings
from mullama.engine import sampling
from mullama.engine.api import (
    CompletionRequest,
    Done,
    EmbedRequest,
    EngineError,
    InvalidToken,
    SamplingOptions,
    TextDelta,
)
from mullama.engine.local import LocalEngine
from mullama.engine.runner import Job, Runner, RunnerConfig

pytestmark = pytest.mark.slow

N_VOCAB = 262144  # the test model's
BAD_IDS = [N_VOCAB, 999_999_999, 2**31 - 1, 2**31, 2**32 + 5, -1]


@pytest.fixture(scope="module")
async def eng(tmp_path_factory, test_model_path):
    root = tmp_path_factory.mktemp("bad-tokens")
    engine = LocalEngine(
        load_settings(
            env={},
            cache_dir=root / "c",
            config_dir=root / "g",
            data_dir=root / "d",
            num_parallel=4,
            context_size=256,
        )
    )
    await engine.load_model(str(test_model_path))
    engine.model = str(test_model_path)
    yield engine
    await engine.close()


async def count_from(engine, n: int, max_tokens: int = 24) -> str:
    text = ""
    request = CompletionRequest(
        engine.model,
        f"{n}, {n + 1}, {n + 2},",
        SamplingOptions(temperature=0, max_tokens=max_tokens, ignore_eos=True),
    )
    async for event in engine.complete(request):
        if isinstance(event, TextDelta):
            text += event.text
    return text


@pytest.mark.parametrize("bad", BAD_IDS)
async def test_a_context_token_outside_the_vocabulary_is_refused_before_it_starts(eng, bad):
    request = CompletionRequest(eng.model, "", SamplingOptions(max_tokens=4), context=[2, bad])
    with pytest.raises(InvalidToken) as caught:
        async for _ in eng.complete(request):
            pass
    error = caught.value
    assert error.status == 400
    assert str(bad) in error.message and str(N_VOCAB) in error.message
    assert error.details == {"token": bad, "index": 1, "n_vocab": N_VOCAB}


async def test_a_bad_request_among_running_streams_leaves_them_alone(eng):
    alone = await count_from(eng, 40)

    async def bad():
        await asyncio.sleep(0.2)  # while the others generate
        request = CompletionRequest(
            eng.model, "", SamplingOptions(max_tokens=4), context=[2, 999_999_999]
        )
        with pytest.raises(InvalidToken):
            async for _ in eng.complete(request):
                pass

    texts = await asyncio.gather(count_from(eng, 40), count_from(eng, 40), bad())
    assert texts[:2] == [alone, alone]


@pytest.mark.parametrize("bad", [N_VOCAB, 2**32 + 5, -1])
async def test_embedding_token_ids_outside_the_vocabulary_are_refused(eng, bad):
    with pytest.raises(InvalidToken) as caught:
        await eng.embed(EmbedRequest(eng.model, [[2, 100], [2, bad]]))
    assert caught.value.param == "input" and "input[1]" in caught.value.message
    assert str(bad) in caught.value.message


async def test_detokenize_refuses_ids_outside_the_vocabulary(eng):
    with pytest.raises(InvalidToken) as caught:
        await eng.detokenize(eng.model, [2, 2**32 + 5])
    assert caught.value.param == "tokens[1]" and caught.value.details["n_vocab"] == N_VOCAB


# ---------------------------------------------------------------- a decode that fails


@pytest.fixture
def runner(model):
    r = Runner(model, RunnerConfig(n_ctx=256, n_parallel=4, threads=2))
    yield r
    r.stop()


def options(**values) -> SamplingOptions:
    return sampling.merge(sampling.DEFAULTS, SamplingOptions(temperature=0, **values))


def start(runner: Runner, prompt: str, max_tokens: int = 30) -> Job:
    loop = asyncio.get_running_loop()
    opts = options(max_tokens=max_tokens, ignore_eos=True)
    job = Job(runner.model.tokenize(prompt), opts, loop, asyncio.Queue())
    runner.submit(job)
    return job


async def outcome(job: Job, first_text: asyncio.Event | None = None) -> str | EngineError:
    text = ""
    while True:
        event = await job.queue.get()
        if isinstance(event, TextDelta):
            text += event.text
            if first_text is not None:
                first_text.set()
        elif isinstance(event, Done):
            return text
        else:
            return event


async def test_a_sequence_whose_decode_fails_fails_alone(runner):
    prompts = [f"{n}, {n + 1}, {n + 2}," for n in (3, 40, 61)]
    alone = [await outcome(start(runner, p)) for p in prompts]

    victim_started = asyncio.Event()
    victim = start(runner, "Tell a long story:", max_tokens=200)
    others = [start(runner, p) for p in prompts]
    victim_result = asyncio.ensure_future(outcome(victim, victim_started))
    await victim_started.wait()

    # A real llama_decode failure: the slot now records a token its KV cache lacks, so its
    # next position skips one, which llama.cpp refuses for the whole batch it is in.
    def desync() -> int:
        victim.started_slot.tokens.append(0)
        return sum(1 for s in runner.slots if s.job is not None)

    assert await asyncio.wrap_future(runner.call(desync)) == 4  # all four share each decode
    results = await asyncio.gather(*(outcome(job) for job in others))
    assert results == alone
    failure = await victim_result
    assert isinstance(failure, EngineError) and failure.status == 500
    assert "could not decode" in failure.message
    assert runner.busy_slots == 0
    # the failed slot is usable again
    assert await outcome(start(runner, prompts[0])) == alone[0]
