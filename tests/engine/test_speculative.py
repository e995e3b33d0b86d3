"""Speculative decoding on the real model: drafting never changes what comes out.

The runners here compute one token per pass (``n_ubatch=1``): llama.cpp's CPU kernels round
differently for a pass of four or more tokens than for one (tinyBLAS, repacked weights), so a
batched verification can part from one-token decoding where two tokens are nearly tied, as a
request sharing a step with others can. With one-token passes the numbers are the same either
way, and what is checked is the drafting itself: positions, verification, the cells cut after
a rejected draft, sampler state, stops, grammars and limits. Drafting is forced
(``draft_min``), so it does not depend on how fast this machine decodes.
"""

from __future__ import annotations

import asyncio

import pytest

from mullama.engine import sampling
from mullama.engine.api import Done, SamplingOptions
from mullama.engine.runner import Job, Runner, RunnerConfig
from tests.helpers import job_reply

pytestmark = pytest.mark.slow

CODE = '''def parse_config(path):
    """Read a config file of key = value lines into a dict."""
    result = {}
    with open(path) as handle:
        for number, line in enumerate(handle, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            key, value = line.split("=", 1)
            result[key.strip()] = value.strip()
    return result
'''
COPY = (
    f"Here is a Python file:\n\n{CODE}\nThe same file with parse_config renamed to read_config:\n\n"
)
STORY = "Once upon a time, in a valley high in the Andes, there lived"
RECORDS = '{"name": "Ada", "age": 36}\n{"name": "Bob", "age": 41}\n{"name": "Cyd", "age": 29}\n'
FORCED = {"draft_max": 6, "draft_min": 6}
OFF = {"draft_max": 0}


@pytest.fixture(scope="module")
def runner(model):
    r = Runner(model, RunnerConfig(n_ctx=1024, n_parallel=2, n_ubatch=1, threads=2))
    yield r
    r.stop()


async def generate(runner: Runner, tokens: list[int], **options) -> tuple[str, Done]:
    options.setdefault("temperature", 0)
    options.setdefault("max_tokens", 60)
    opts = sampling.merge(sampling.DEFAULTS, SamplingOptions(**options))
    job = Job(tokens, opts, asyncio.get_running_loop(), asyncio.Queue())
    runner.submit(job)
    text, done = await job_reply(job)
    assert isinstance(done, Done)
    return text, done


async def same_with_and_without(
    runner: Runner, prompt: str, forced: dict | None = None, **options
) -> Done:
    tokens = runner.model.tokenize(prompt)
    plain, plain_done = await generate(runner, tokens, **options, **OFF)
    drafted, done = await generate(runner, tokens, **options, **(forced or FORCED))
    assert drafted == plain
    assert done.context == plain_done.context
    assert done.finish_reason == plain_done.finish_reason
    assert done.usage.completion_tokens == plain_done.usage.completion_tokens
    assert plain_done.usage.draft_tokens == 0
    return done


@pytest.mark.parametrize(
    ("prompt", "forced"),
    [(COPY, FORCED), (STORY, {"draft_max": 2, "draft_min": 2}), (RECORDS, FORCED)],
    ids=["code", "story", "records"],
)
async def test_greedy_output_is_the_same_with_drafts(runner, prompt, forced):
    done = await same_with_and_without(runner, prompt, forced, max_tokens=70)
    assert done.usage.draft_tokens > 0
    if prompt is COPY:  # the model copies the file: most drafts are kept
        assert done.usage.draft_accepted > done.usage.draft_tokens // 2


async def test_a_stop_string_inside_kept_draft_tokens(runner):
    tokens = runner.model.tokenize(COPY)
    text, _ = await generate(runner, tokens, max_tokens=70, **OFF)
    stop = "line.strip()"
    assert stop in text
    done = await same_with_and_without(runner, COPY, max_tokens=70, stop=[stop])
    assert done.finish_reason == "stop" and done.stop_sequence == stop
    assert done.usage.draft_accepted > 0


@pytest.mark.parametrize("limit", [1, 5, 13])
async def test_max_tokens_reached_in_the_middle_of_a_draft(runner, limit):
    done = await same_with_and_without(runner, COPY, max_tokens=limit)
    assert done.usage.completion_tokens == limit and done.finish_reason == "length"


async def test_a_grammar_with_drafts(runner):
    grammar = r"""root ::= record record record
record ::= "{\"name\": \"" [A-Z] [a-z]+ "\", \"age\": " [0-9] [0-9] "}\n"
"""
    done = await same_with_and_without(runner, RECORDS, grammar=grammar, max_tokens=80)
    assert done.finish_reason == "stop"
    assert done.usage.draft_tokens > 0


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_a_sampled_reply_is_the_same_for_its_seed(runner, seed):
    """The same random draws in the same order, from the same distribution at each position:
    so drafting keeps the distribution of sampled replies, seed for seed."""
    done = await same_with_and_without(
        runner, COPY, temperature=0.9, top_k=40, seed=seed, max_tokens=40
    )
    assert done.usage.draft_tokens > 0


@pytest.mark.parametrize("seed", [5])
async def test_a_sampled_reply_of_llama_cpps_own_chain(runner, seed):
    # typical_p is sampled by the native chain, not the numpy fast sampler
    await same_with_and_without(
        runner, COPY, temperature=0.7, typical_p=0.95, seed=seed, max_tokens=40
    )


async def test_the_cache_after_cut_drafts_holds_exactly_the_reply(runner, model):
    """After drafts were cut, the next turn reuses the slot's cells: its reply is that of a
    fresh evaluation of the whole conversation."""
    _, done = await generate(runner, model.tokenize(RECORDS), max_tokens=60, **FORCED)
    assert done.usage.draft_tokens > done.usage.draft_accepted  # some drafts were cut
    follow = done.context + model.tokenize(" Then one day,", add_special=False)
    reused, reused_done = await generate(runner, follow, max_tokens=40, **OFF)
    assert reused_done.usage.cached_tokens >= len(done.context) - 1
    fresh_runner = Runner(model, RunnerConfig(n_ctx=1024, n_parallel=1, n_ubatch=1, threads=2))
    try:
        fresh, fresh_done = await generate(fresh_runner, follow, max_tokens=40, **OFF)
    finally:
        fresh_runner.stop()
    assert fresh_done.usage.cached_tokens == 0
    assert reused == fresh


async def test_two_drafting_streams_in_one_step(runner, model):
    plain = await asyncio.gather(
        generate(runner, model.tokenize(COPY), max_tokens=40, **OFF),
        generate(runner, model.tokenize(RECORDS), max_tokens=40, **OFF),
    )
    drafted = await asyncio.gather(
        generate(runner, model.tokenize(COPY), max_tokens=40, **FORCED),
        generate(runner, model.tokenize(RECORDS), max_tokens=40, **FORCED),
    )
    assert [text for text, _ in drafted] == [text for text, _ in plain]
    assert all(done.usage.draft_tokens > 0 for _, done in drafted)
    assert runner.draft_accepted > 0 and runner.draft_tokens >= runner.draft_accepted
