"""The engine on the real Gemma 3 270M model: determinism, streaming, stops, limits, usage."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from mullama.config import load_settings
from mullama.engine.api import (
    ChatRequest,
    CompletionRequest,
    ContextOverflow,
    Done,
    InvalidRequest,
    Message,
    ModelNotFound,
    SamplingOptions,
    Started,
    TextDelta,
)
from mullama.engine.local import LocalEngine
from tests.conftest import gemma_modelfile

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
async def eng(tmp_path_factory, test_model_path):
    root = tmp_path_factory.mktemp("engine")
    settings = load_settings(
        env={}, cache_dir=root / "cache", config_dir=root / "config", data_dir=root / "data"
    )
    engine = LocalEngine(settings)
    await engine.create_model("gemma", gemma_modelfile(test_model_path))
    yield engine
    await engine.close()


async def run(engine, prompt: str, **opts) -> tuple[list[str], Done]:
    deltas, done = [], None
    async for event in engine.complete(CompletionRequest("gemma", prompt, SamplingOptions(**opts))):
        if isinstance(event, TextDelta):
            deltas.append(event.text)
        elif isinstance(event, Done):
            done = event
    return deltas, done


def loaded(engine):
    return engine.manager.loaded["gemma:latest"]


async def test_greedy_output_is_deterministic_and_sensible(eng):
    first, done = await run(eng, "1, 2, 3, 4,", max_tokens=12, temperature=0)
    second, again = await run(eng, "1, 2, 3, 4,", max_tokens=12, temperature=0)
    assert "".join(first) == "".join(second)
    assert "".join(first).startswith(" 5, 6, 7")
    assert done.finish_reason == "length"
    assert again.usage.cached_tokens > 0  # the repeat reused the cached prompt...


async def test_greedy_output_does_not_depend_on_the_prompt_cache(eng):
    prompt = "The history of the llama begins in the Andes, where"
    first, done = await run(eng, prompt, max_tokens=40, temperature=0, ignore_eos=True)
    second, again = await run(eng, prompt, max_tokens=40, temperature=0, ignore_eos=True)
    # the whole prompt came from the cache, its first token from the logits kept with it...
    assert done.usage.cached_tokens <= 1 and again.usage.cached_tokens == done.usage.prompt_tokens
    assert "".join(first) == "".join(second)  # ...and still gave the same greedy text


@pytest.mark.parametrize(
    "opts",
    [
        {"temperature": 0, "grammar": 'root ::= [a-z ]+ "."'},  # llama.cpp's own sampler chain
        {"temperature": 0.9, "seed": 11},  # a seeded draw
        {"temperature": 0, "logprobs": True, "top_logprobs": 2},
    ],
)
async def test_a_fully_cached_prompt_replays_its_kept_logits(eng, opts):
    prompt = "My favourite animals, in no particular order, are"
    first, _done = await run(eng, prompt, max_tokens=12, **opts)
    second, again = await run(eng, prompt, max_tokens=12, **opts)
    assert again.usage.cached_tokens == again.usage.prompt_tokens
    assert "".join(first) == "".join(second) and len(first) > 1


async def test_streamed_deltas_concatenate_to_the_generated_tokens(eng):
    deltas, done = await run(eng, "The quick brown fox", max_tokens=30, temperature=0)
    assert len(deltas) > 5  # it really streamed
    generated = done.context[done.usage.prompt_tokens :]
    assert "".join(deltas) == loaded(eng).model.detokenize(generated)


async def test_max_tokens_gives_length_with_exactly_that_many_tokens_and_right_usage(eng):
    _deltas, done = await run(eng, "Once upon a time", max_tokens=7, temperature=0, ignore_eos=True)
    assert done.finish_reason == "length"
    assert done.usage.completion_tokens == 7
    assert done.usage.prompt_tokens == len(loaded(eng).model.tokenize("Once upon a time"))
    assert len(done.context) == done.usage.prompt_tokens + 7


async def test_stop_sequence_ends_generation_and_is_not_emitted(eng):
    deltas, done = await run(eng, "1, 2, 3, 4,", max_tokens=30, temperature=0, stop=[" 8,"])
    assert "".join(deltas) == " 5, 6, 7,"
    assert done.finish_reason == "stop" and done.stop_sequence == " 8,"


async def test_stop_sequence_split_across_tokens_never_leaks_a_partial_match(eng):
    model = loaded(eng).model
    assert len(model.tokenize(" 7, 8", add_special=False)) > 1  # the stop spans several tokens
    deltas, done = await run(eng, "1, 2, 3, 4,", max_tokens=30, temperature=0, stop=["7, 8", "zzz"])
    assert "".join(deltas) == " 5, 6, "
    assert not any("7" in d for d in deltas)
    assert done.stop_sequence == "7, 8"


async def test_several_stops_first_match_wins(eng):
    deltas, done = await run(eng, "1, 2, 3, 4,", max_tokens=30, temperature=0, stop=[" 9", " 6"])
    assert "".join(deltas) == " 5,"
    assert done.stop_sequence == " 6"


async def test_seeded_sampling_is_reproducible(tmp_path, test_model_path):
    # fresh engines, so neither run reuses the other's prompt cache (which changes rounding)
    async def sample(seed: int, sub: str) -> str:
        settings = load_settings(
            env={},
            cache_dir=tmp_path / sub / "c",
            config_dir=tmp_path / sub / "g",
            data_dir=tmp_path / sub / "d",
        )
        engine = LocalEngine(settings)
        try:
            request = CompletionRequest(
                str(test_model_path),
                "My favourite animal is",
                SamplingOptions(max_tokens=20, temperature=1.0, seed=seed),
            )
            return "".join(
                [e.text async for e in engine.complete(request) if isinstance(e, TextDelta)]
            )
        finally:
            await engine.close()

    first = await sample(42, "a")
    assert first == await sample(42, "b")
    others = {await sample(seed, f"s{seed}") for seed in (1, 2, 3)}
    assert len(others | {first}) > 1  # the seed really drives sampling


async def test_concurrent_requests_get_independent_correct_outputs(eng):
    starts = [10, 20, 30, 40]

    async def count(n):
        deltas, done = await run(eng, f"{n}, {n + 1}, {n + 2},", max_tokens=9, temperature=0)
        return "".join(deltas), done

    results = await asyncio.gather(*(count(n) for n in starts))
    for n, (text, done) in zip(starts, results):
        assert text.startswith(f" {n + 3}, {n + 4},"), (n, text)
        assert done.finish_reason == "length"
    assert loaded(eng).runner.busy_slots == 0


async def test_cancelling_a_stream_frees_the_runner(eng):
    request = CompletionRequest(
        "gemma",
        "Tell me a long story.",
        SamplingOptions(max_tokens=2000, temperature=0, ignore_eos=True),
    )
    stream = eng.complete(request)
    seen = 0
    async for event in stream:
        seen += isinstance(event, TextDelta)
        if seen == 3:
            break
    await stream.aclose()
    runner = loaded(eng).runner
    for _ in range(100):
        if runner.busy_slots == 0:
            break
        await asyncio.sleep(0.02)
    assert runner.busy_slots == 0
    generated_before = runner.tokens_generated
    _deltas, done = await run(eng, "1, 2, 3,", max_tokens=3, temperature=0)
    assert done.finish_reason == "length"
    assert runner.tokens_generated - generated_before == 3  # the cancelled one stopped for good


async def test_chat_uses_the_models_template_and_stop(eng):
    request = ChatRequest("gemma", [Message("user", "Hi")], SamplingOptions(max_tokens=5))
    async for event in eng.chat(request):
        if isinstance(event, Done):
            prompt = loaded(eng).model.detokenize(
                event.context[: event.usage.prompt_tokens], special=True
            )
    assert prompt.endswith("<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n")


async def test_prompt_longer_than_the_context_is_an_error_with_both_counts(eng):
    long_prompt = "word " * 3000
    with pytest.raises(ContextOverflow) as err:
        await run(eng, long_prompt, max_tokens=5)
    assert (
        "2048" in err.value.message and str(err.value.details["prompt_tokens"]) in err.value.message
    )


@pytest.mark.parametrize(
    "field,value",
    [
        ("temperature", -1.0),
        ("top_p", 1.5),
        ("top_k", -3),
        ("max_tokens", -7),
        ("mirostat", 5),
        ("temperature", "hot"),
    ],
)
async def test_invalid_sampling_values_name_the_field(eng, field, value):
    with pytest.raises(InvalidRequest) as err:
        await run(eng, "Hello", **{field: value})
    assert err.value.param == field and field in err.value.message


async def test_unknown_model_is_model_not_found(eng):
    with pytest.raises(ModelNotFound):
        async for _ in eng.complete(CompletionRequest("no-such-model", "hi")):
            pass


async def test_usage_reports_prompt_cache_reuse_on_a_second_turn(eng):
    history = [Message("user", "Count: 1, 2, 3"), Message("assistant", "4, 5, 6")]
    first = ChatRequest("gemma", history, SamplingOptions(max_tokens=4))
    async for _ in eng.chat(first):
        pass
    second = ChatRequest(
        "gemma", history + [Message("user", "More")], SamplingOptions(max_tokens=4)
    )
    async for event in eng.chat(second):
        done = event
    assert done.usage.cached_tokens >= 10


async def test_closing_the_engine_twice_is_harmless(tmp_path, test_model_path):
    settings = load_settings(
        env={}, cache_dir=tmp_path / "c", config_dir=tmp_path / "cfg", data_dir=tmp_path / "d"
    )
    engine = LocalEngine(settings)
    await engine.load_model(str(test_model_path))
    await engine.close()
    with contextlib.suppress(Exception):
        await engine.close()
    assert engine.manager.loaded == {}


async def test_ignore_eos_ignores_the_models_stop_strings_but_not_the_requests(
    eng, test_model_path
):
    await eng.create_model("commas", gemma_modelfile(test_model_path, 'PARAMETER stop ","\n'))

    async def text(**opts) -> tuple[str, Done]:
        deltas, done = [], None
        async for event in eng.complete(
            CompletionRequest(
                "commas", "1, 2, 3,", SamplingOptions(temperature=0, max_tokens=8, **opts)
            )
        ):
            if isinstance(event, TextDelta):
                deltas.append(event.text)
            elif isinstance(event, Done):
                done = event
        return "".join(deltas), done

    stopped, done = await text()
    assert "," not in stopped and done.finish_reason == "stop"  # the Modelfile's stop
    counted, done = await text(ignore_eos=True)
    assert counted.count(",") >= 2 and done.usage.completion_tokens == 8
    asked, done = await text(ignore_eos=True, stop=[" 6"])
    assert asked.startswith(" 4, 5,") and " 6" not in asked and done.finish_reason == "stop"


async def stream(engine, prompt: str, **opts) -> tuple[list[TextDelta], Done]:
    deltas, done = [], None
    request = CompletionRequest("gemma", prompt, SamplingOptions(temperature=0, **opts))
    async for event in engine.complete(request):
        if isinstance(event, TextDelta):
            deltas.append(event)
        elif isinstance(event, Done):
            done = event
    return deltas, done


def entry_text(delta: TextDelta) -> str:
    return b"".join(bytes(e["bytes"]) for e in delta.logprobs).decode()


@pytest.mark.parametrize("stop", [[" 7,"], [" 6x"], [" 6x", ", 8"]])
async def test_streamed_logprobs_travel_with_their_text(eng, stop):
    deltas, done = await stream(eng, "1, 2, 3, 4,", max_tokens=14, logprobs=True, stop=stop)
    assert deltas and all(d.text and d.logprobs for d in deltas)
    for d in deltas:  # each delta: the whole text of its tokens, and exactly their entries
        assert entry_text(d) == d.text
    text = "".join(d.text for d in deltas)
    model = loaded(eng).model
    generated = done.context[done.usage.prompt_tokens :]
    sent = [e["token"] for d in deltas for e in d.logprobs]
    assert sent == [model.token_text(t) for t in generated[: len(sent)]]
    if done.stop_sequence:  # the tokens of the stop string dropped their entries
        assert text + done.stop_sequence == model.detokenize(generated)[: len(text) + len(stop[0])]
    assert " 6x" not in text and text.startswith(" 5, 6,")


async def test_a_token_cut_by_a_stop_string_keeps_its_entry_with_the_text_before_the_stop(eng):
    prompt = "The quick brown fox"
    model = loaded(eng).model
    _, done = await stream(eng, prompt, max_tokens=20)
    generated = done.context[done.usage.prompt_tokens :]
    pieces = [model.piece(t).decode() for t in generated]
    i = next(k for k in range(2, len(pieces) - 1) if len(pieces[k].strip()) >= 3)
    stop = pieces[i][2:] + pieces[i + 1]  # starts inside token i
    deltas, done = await stream(eng, prompt, max_tokens=20, logprobs=True, stop=[stop])
    assert done.stop_sequence == stop
    assert "".join(d.text for d in deltas) == "".join(pieces[:i]) + pieces[i][:2]
    for d in deltas[:-1]:
        assert entry_text(d) == d.text
    last = deltas[-1]  # its text ends inside token i: that entry, not token i + 1's
    assert entry_text(last).startswith(last.text) and entry_text(last).endswith(pieces[i])
    assert len([e for d in deltas for e in d.logprobs]) == i + 1


@pytest.mark.parametrize(
    "prompt",
    ["Write 3 < 4 and 5 > 2, then a sentence.", "Repeat exactly: a <tool b <thi c"],
)
async def test_chat_logprobs_survive_the_tool_call_parser_holding_text(eng, prompt):
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    request = ChatRequest(
        "gemma",
        [Message("user", prompt)],
        SamplingOptions(max_tokens=24, logprobs=True, top_logprobs=2),
        tools=[tool],
        think=False,  # a thinking splitter as well as the tool-call parser
    )
    deltas = [e async for e in eng.chat(request) if isinstance(e, TextDelta)]
    assert deltas and all(d.text and d.logprobs is not None for d in deltas)
    assert any("<" in d.text for d in deltas)  # what the parser held back, then let go
    for d in deltas:
        assert entry_text(d) == d.text
    assert all(len(e["top_logprobs"]) == 2 for d in deltas for e in d.logprobs)


async def test_without_logprobs_no_delta_carries_any(eng):
    deltas, _ = await stream(eng, "1, 2, 3, 4,", max_tokens=8, stop=[" 6x"])
    assert all(d.logprobs is None and d.text for d in deltas)


async def test_cached_tokens_are_the_prompt_tokens_the_kv_cache_served_on_the_next_turn(eng):
    from mullama.engine.runner import common_prefix

    async def turn(messages, **opts):
        text, done = "", None
        request = ChatRequest("gemma", messages, SamplingOptions(max_tokens=20, **opts))
        async for event in eng.chat(request):
            if isinstance(event, TextDelta):
                text += event.text
            elif isinstance(event, Done):
                done = event
        return text, done

    history = [Message("user", "Name three colours.")]
    # a grammar that ends makes the model end its turn (this small model rarely does by itself)
    answer, first = await turn(history, grammar='root ::= "Red, green and blue."')
    assert first.finish_reason == "stop"  # ended by the end-of-turn token: its answer is cached
    history += [Message("assistant", answer), Message("user", "And two more?")]
    _, second = await turn(history)
    prompt = second.context[: second.usage.prompt_tokens]
    # the first turn's prompt and answer, as far as the new prompt repeats them
    assert second.usage.cached_tokens == common_prefix(first.context, prompt)
    assert second.usage.cached_tokens > first.usage.prompt_tokens
    assert 0 < second.usage.cached_tokens < second.usage.prompt_tokens


async def test_a_generation_starts_with_started_then_prefills(eng):
    request = ChatRequest("gemma", [Message("user", "Hi")], SamplingOptions(max_tokens=3))
    stream = eng.chat(request)
    first = await stream.__anext__()
    # admitted: the runner has the job (its prompt is prefilled after this event)
    assert isinstance(first, Started) and first.prompt_tokens > 0
    rest = [e async for e in stream]
    assert isinstance(rest[-1], Done) and rest[-1].usage.prompt_tokens == first.prompt_tokens
    assert not any(isinstance(e, Started) for e in rest)


async def test_a_bad_grammar_is_refused_before_the_generation_starts(eng):
    options = SamplingOptions(max_tokens=3, grammar="root ::= (")
    stream = eng.chat(ChatRequest("gemma", [Message("user", "Hi")], options))
    with pytest.raises(InvalidRequest) as err:
        await stream.__anext__()  # the first event would be Started
    assert err.value.param == "grammar"
