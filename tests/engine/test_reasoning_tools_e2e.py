"""Thinking, tool calls and JSON output on the real model, shapes forced by grammars."""

from __future__ import annotations

import json

import pytest

from mullama.config import load_settings
from mullama.engine.api import (
    ChatRequest,
    Done,
    InvalidRequest,
    Message,
    SamplingOptions,
    TextDelta,
    ThinkingDelta,
    ToolCallDelta,
)
from mullama.engine.local import LocalEngine
from tests.helpers import GEMMA_TEMPLATE

pytestmark = pytest.mark.slow

TOOLS_TEMPLATE = (
    "{{- if .Tools }}<start_of_turn>user\nTools: {{ range .Tools }}{{ .Function.Name }} {{ end }}"
    "<end_of_turn>\n{{ end }}" + GEMMA_TEMPLATE
)
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
TIME = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}},
    },
}


def modelfile(path, extra: str, template: str = GEMMA_TEMPLATE) -> str:
    return (
        f'FROM {path}\nTEMPLATE """{template}"""\nPARAMETER stop "<end_of_turn>"\n'
        f"PARAMETER temperature 0\nPARAMETER num_ctx 1024\n{extra}"
    )


@pytest.fixture(scope="module")
async def eng(tmp_path_factory, test_model_path):
    root = tmp_path_factory.mktemp("reasoning")
    engine = LocalEngine(
        load_settings(env={}, cache_dir=root / "c", config_dir=root / "g", data_dir=root / "d")
    )
    await engine.create_model("thinker", modelfile(test_model_path, "THINKING enabled true\n"))
    await engine.create_model(
        "opener", modelfile(test_model_path, "THINKING enabled true\n", GEMMA_TEMPLATE + "<think>")
    )
    await engine.create_model(
        "caller",
        modelfile(
            test_model_path, "TOOLFORMAT style qwen\nCAPABILITY tools true\n", TOOLS_TEMPLATE
        ),
    )
    await engine.create_model("plain", modelfile(test_model_path, ""))
    await engine.create_model("refuser", modelfile(test_model_path, "CAPABILITY tools false\n"))
    await engine.create_model(
        "untemplated-caller",
        modelfile(  # a template with no .Tools
            test_model_path, "TOOLFORMAT style qwen\nCAPABILITY tools true\n"
        ),
    )
    yield engine
    await engine.close()


async def collect(engine, request: ChatRequest):
    events = [e async for e in engine.chat(request)]
    thinking = "".join(e.text for e in events if isinstance(e, ThinkingDelta))
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    calls: dict[int, dict] = {}
    for e in events:
        if isinstance(e, ToolCallDelta):
            c = calls.setdefault(e.index, {"id": e.id, "name": e.name, "arguments": ""})
            c["arguments"] += e.arguments
    done = events[-1]
    assert isinstance(done, Done)
    return thinking, text, [calls[i] for i in sorted(calls)], done


async def test_thinking_is_split_from_the_answer(eng):
    grammar = 'root ::= "<think>" [a-z ]{8,30} "</think>" "\\n" [A-Z] [a-z ]{3,20} "."'
    thinking, text, _, done = await collect(
        eng,
        ChatRequest(
            "thinker",
            [Message("user", "Say hello")],
            SamplingOptions(grammar=grammar, max_tokens=60),
        ),
    )
    assert 8 <= len(thinking) <= 30 and "<think>" not in text and "</think>" not in text
    assert text[0].isupper() and text.endswith(".")
    # the tokens up to the last thinking one count as reasoning, the answer's are the rest:
    # "<think>" and 8+ letters before, a capital, 3+ more characters and "." after
    usage = done.usage
    assert 3 <= usage.reasoning_tokens <= usage.completion_tokens - 3
    hidden = await collect(
        eng,
        ChatRequest(
            "thinker",
            [Message("user", "Say hello")],
            SamplingOptions(grammar=grammar, max_tokens=60),
            think=False,
        ),
    )
    assert hidden[0] == "" and hidden[1] == text  # reasoning never leaks into content
    assert hidden[3].usage.reasoning_tokens == usage.reasoning_tokens  # hidden, still spent


async def test_thinking_budget_forces_the_answer(eng):
    request = ChatRequest(
        "opener",
        [Message("user", "Tell me a story.")],
        SamplingOptions(max_tokens=80, ignore_eos=True),
        think_budget=5,
    )
    thinking, text, _, _done = await collect(eng, request)
    assert thinking  # the template opened the thinking block, so the model starts inside it
    assert text.strip()  # and the forced </think> moved it on to an answer


async def test_think_on_a_model_without_thinking_is_ignored(eng):
    def ask(think):
        return ChatRequest(
            "plain", [Message("user", "Say hello")], SamplingOptions(max_tokens=12), think=think
        )

    thinking, text, _, done = await collect(eng, ask(True))
    assert thinking == "" and text.strip() and done.finish_reason in ("stop", "length")
    for effort in ("high", None):  # an effort is a switch too; the same answer as no request
        assert (await collect(eng, ask(effort)))[1] == text


async def test_named_tool_choice_forces_a_parsable_call(eng):
    request = ChatRequest(
        "caller",
        [Message("user", "Weather in Paris?")],
        SamplingOptions(max_tokens=60),
        tools=[WEATHER, TIME],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    _, text, calls, done = await collect(eng, request)
    assert done.finish_reason == "tool_calls" and text == ""
    assert calls[0]["name"] == "get_weather" and calls[0]["id"].startswith("call_")
    assert isinstance(json.loads(calls[0]["arguments"])["city"], str)


async def test_required_tool_choice_calls_one_of_the_tools(eng):
    request = ChatRequest(
        "caller",
        [Message("user", "What time is it?")],
        SamplingOptions(max_tokens=60),
        tools=[WEATHER, TIME],
        tool_choice="required",
    )
    _, _, calls, done = await collect(eng, request)
    assert calls and calls[0]["name"] in ("get_weather", "get_time")
    assert done.finish_reason == "tool_calls"


async def test_capability_tools_false_refuses_tools_with_a_clear_error(eng):
    with pytest.raises(InvalidRequest) as err:
        await collect(eng, ChatRequest("refuser", [Message("user", "hi")], tools=[WEATHER]))
    assert "does not support tools" in err.value.message and err.value.param == "tools"
    assert "CAPABILITY tools false" in err.value.message
    # without tools (or with tool_choice none) the model answers
    _, text, _, _ = await collect(
        eng,
        ChatRequest(
            "refuser",
            [Message("user", "hi")],
            SamplingOptions(max_tokens=3),
            tools=[WEATHER],
            tool_choice="none",
        ),
    )
    assert text


async def test_tools_work_on_a_chat_model_whose_template_has_no_tools_section(eng):
    # the test Modelfile's TEMPLATE has no .Tools and no TOOLFORMAT or CAPABILITY
    request = ChatRequest(
        "plain", [Message("user", "Paris?")], SamplingOptions(max_tokens=4), tools=[WEATHER]
    )
    *_, done = await collect(eng, request)
    prompt = prompt_of(eng, "plain:latest", done)
    assert prompt.index('"name": "get_weather"') < prompt.index("Paris?")
    assert "<tool_call>" in prompt and "Weather for a city" in prompt


async def test_a_call_on_a_model_without_a_tools_template_is_parsed_as_a_tool_call(eng):
    # the model's text forced into the generic call format by a GBNF grammar, tool_choice auto
    grammar = (
        'root ::= "<tool_call>\\n{\\"name\\": \\"get_weather\\", '
        '\\"arguments\\": {\\"city\\": \\"" [A-Z] [a-z]{2,8} "\\"}}\\n</tool_call>"'
    )
    request = ChatRequest(
        "plain",
        [Message("user", "Weather in Paris?")],
        SamplingOptions(max_tokens=40, grammar=grammar),
        tools=[WEATHER, TIME],
    )
    _, text, calls, done = await collect(eng, request)
    assert text == "" and done.finish_reason == "tool_calls"
    assert [c["name"] for c in calls] == ["get_weather"] and calls[0]["id"].startswith("call_")
    assert json.loads(calls[0]["arguments"])["city"][0].isupper()
    # and tool_choice required builds that grammar itself
    request = ChatRequest(
        "plain",
        [Message("user", "What time is it?")],
        SamplingOptions(max_tokens=60),
        tools=[WEATHER, TIME],
        tool_choice="required",
    )
    _, _, calls, done = await collect(eng, request)
    assert calls and calls[0]["name"] in ("get_weather", "get_time")
    assert done.finish_reason == "tool_calls"


async def test_tool_results_reach_the_prompt(eng):
    history = [
        Message("user", "Weather in Paris?"),
        Message("assistant", "", tool_calls=[]),
        Message("tool", "18 degrees and sunny", tool_call_id="call_1"),
    ]
    _, _, _, done = await collect(
        eng, ChatRequest("caller", history, SamplingOptions(max_tokens=3), tools=[WEATHER])
    )
    prompt = eng.manager.loaded["caller:latest"].model.detokenize(
        done.context[: done.usage.prompt_tokens]
    )
    assert (
        "<tool_response>18 degrees and sunny</tool_response>" in prompt
    )  # TOOLFORMAT result markers


def prompt_of(eng, name: str, done: Done) -> str:
    return eng.manager.loaded[name].model.detokenize(done.context[: done.usage.prompt_tokens])


async def test_tools_reach_a_prompt_whose_template_has_no_place_for_them(eng):
    request = ChatRequest(
        "untemplated-caller",
        [Message("system", "Be brief."), Message("user", "Paris?")],
        SamplingOptions(max_tokens=2),
        tools=[WEATHER],
    )
    *_, done = await collect(eng, request)
    prompt = prompt_of(eng, "untemplated-caller:latest", done)
    assert (
        prompt.index("Be brief.") < prompt.index('"name": "get_weather"') < prompt.index("Paris?")
    )
    assert "<tool_call>" in prompt  # how to call, in the TOOLFORMAT's markers
    # a template that shows .Tools itself gets no second copy
    *_, done = await collect(
        eng,
        ChatRequest(
            "caller", [Message("user", "Paris?")], SamplingOptions(max_tokens=2), tools=[WEATHER]
        ),
    )
    prompt = prompt_of(eng, "caller:latest", done)
    assert "Tools: get_weather" in prompt and "# Tools" not in prompt


PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 20},
        "age": {"type": "integer"},
        "pets": {
            "type": "array",
            "items": {"type": "string", "enum": ["cat", "dog", "llama"]},
            "maxItems": 3,
        },
    },
    "required": ["name", "age", "pets"],
    "additionalProperties": False,
}


async def test_json_schema_output_validates_for_20_seeds(eng):
    for seed in range(20):
        request = ChatRequest(
            "plain",
            [Message("user", "Describe a person as JSON.")],
            SamplingOptions(temperature=1.0, seed=seed, max_tokens=120),
            format=PERSON,
        )
        _, text, _, _done = await collect(eng, request)
        value = json.loads(text)
        assert set(value) == {"name", "age", "pets"}, text
        assert isinstance(value["name"], str) and len(value["name"]) <= 20
        assert isinstance(value["age"], int) and not isinstance(value["age"], bool)
        assert all(p in ("cat", "dog", "llama") for p in value["pets"]) and len(value["pets"]) <= 3


async def test_json_mode_and_unsupported_schema_features(eng):
    # sampled with seeds: greedy, this small model repeats one key until max_tokens
    for seed in range(3):
        request = ChatRequest(
            "plain",
            [Message("user", "Give me a JSON object describing a cat.")],
            SamplingOptions(max_tokens=300, temperature=1.0, seed=seed),
            format="json",
        )
        _, text, _, done = await collect(eng, request)
        assert done.finish_reason == "stop"  # the grammar let it close the object by itself
        assert isinstance(json.loads(text), dict)
    with pytest.raises(InvalidRequest) as err:
        await collect(
            eng,
            ChatRequest(
                "plain",
                [Message("user", "x")],
                format={"type": "object", "not": {"required": ["a"]}},
            ),
        )
    assert "not at #" in err.value.message
    with pytest.raises(InvalidRequest) as err:  # numeric bounds cannot be enforced by the grammar
        await collect(
            eng,
            ChatRequest(
                "plain",
                [Message("user", "x")],
                format={"type": "object", "properties": {"age": {"type": "integer", "minimum": 0}}},
            ),
        )
    assert "minimum at #/properties/age" in err.value.message
