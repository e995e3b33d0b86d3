"""Streaming splitters fed every possible chunking of sample outputs."""

from __future__ import annotations

import itertools
import json

import pytest

from mullama.engine.api import TextDelta, ThinkingDelta, ToolCallDelta
from mullama.engine.output import StopMatcher
from mullama.engine.pipeline import OutputPipeline
from mullama.engine.reasoning import ThinkingConfig, ThinkingSplitter
from mullama.engine.tools import STYLE_MARKERS, ToolCallParser, ToolFormat, parse_call_text


def chunkings(text: str, max_cuts: int = 2):
    """Every way to cut ``text`` at up to ``max_cuts`` points (every split point covered)."""
    for n in range(max_cuts + 1):
        for cuts in itertools.combinations(range(1, len(text)), n):
            bounds = (0, *cuts, len(text))
            yield [text[a:b] for a, b in zip(bounds, bounds[1:])]


def run_pipeline(pipeline: OutputPipeline, pieces: list[str]):
    events = []
    for piece in pieces:
        events += pipeline.feed(TextDelta(piece))
    events += pipeline.flush()
    thinking = "".join(e.text for e in events if isinstance(e, ThinkingDelta))
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    calls = {}
    for e in events:
        if isinstance(e, ToolCallDelta):
            call = calls.setdefault(e.index, {"id": None, "name": None, "arguments": ""})
            call["id"] = call["id"] or e.id
            call["name"] = call["name"] or e.name
            call["arguments"] += e.arguments
    return thinking, text, [calls[i] for i in sorted(calls)]


THINK = ThinkingConfig("<think>", "</think>", True)


@pytest.mark.parametrize(
    "output,thinking,answer",
    [
        (
            "<think>Let me add 2 and 2.</think>\n\nThe answer is 4.",
            "Let me add 2 and 2.",
            "The answer is 4.",
        ),
        ("  <think>hmm</think>4", "hmm", "4"),
        ("No thinking here, <think> stays text.", "", "No thinking here, <think> stays text."),
        ("<think>never closed", "never closed", ""),
        ("<thi", "", "<thi"),
        ("<think></think>Just the answer", "", "Just the answer"),
        (
            "<think>a < b and </thin is not the end</think>ok",
            "a < b and </thin is not the end",
            "ok",
        ),
    ],
)
def test_thinking_splitter_every_chunking(output, thinking, answer):
    for pieces in chunkings(output):
        got = run_pipeline(OutputPipeline(ThinkingSplitter(THINK)), pieces)
        assert got[:2] == (thinking, answer), pieces


def test_thinking_opened_by_the_prompt():
    for pieces in chunkings("I should greet.</think>Hello!"):
        splitter = ThinkingSplitter(THINK, opened_in_prompt=True)
        assert run_pipeline(OutputPipeline(splitter), pieces)[:2] == ("I should greet.", "Hello!")


def test_thinking_can_be_hidden():
    splitter = ThinkingSplitter(THINK, emit_thinking=False)
    assert run_pipeline(OutputPipeline(splitter), ["<think>secret</think>", "shown"])[:2] == (
        "",
        "shown",
    )


def test_custom_thinking_markers():
    config = ThinkingConfig("[REASON]", "[/REASON]", True)
    for pieces in chunkings("[REASON]x[/REASON]y"):
        assert run_pipeline(OutputPipeline(ThinkingSplitter(config)), pieces)[:2] == ("x", "y")


QWEN = ToolFormat(*(("qwen",) + STYLE_MARKERS["qwen"]))


@pytest.mark.parametrize(
    "output,text,calls",
    [
        (
            '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>',
            "",
            [("get_weather", {"city": "Paris"})],
        ),
        (
            'Sure. <tool_call>{"name":"a","arguments":{}}</tool_call><tool_call>{"name":"b","arguments":{"x":1}}'
            "</tool_call>",
            "Sure. ",
            [("a", {}), ("b", {"x": 1})],
        ),
        (
            '<tool_call>{"name": "broken", "arguments": {</tool_call>rest',
            '<tool_call>{"name": "broken", "arguments": {</tool_call>rest',
            [],
        ),
        ("Plain answer with a < sign.", "Plain answer with a < sign.", []),
        (
            '<tool_call>{"name": "nested", "arguments": {"q": {"deep": [1, {"x": "</"}]}}}</tool_call>',
            "",
            [("nested", {"q": {"deep": [1, {"x": "</"}]}})],
        ),
    ],
)
def test_qwen_tool_calls_every_chunking(output, text, calls):
    for pieces in chunkings(output, max_cuts=1 if len(output) > 80 else 2):
        _, got_text, got_calls = run_pipeline(OutputPipeline(tools=ToolCallParser(QWEN)), pieces)
        assert got_text == text, pieces
        assert [(c["name"], json.loads(c["arguments"])) for c in got_calls] == calls
        assert all(c["id"].startswith("call_") for c in got_calls)


def test_llama3_and_mistral_styles():
    llama = ToolFormat(*(("llama3",) + STYLE_MARKERS["llama3"]))
    out = '<|python_tag|>{"name": "search", "parameters": {"q": "llamas"}}'
    for pieces in chunkings(out, 1):
        _, text, calls = run_pipeline(OutputPipeline(tools=ToolCallParser(llama)), pieces)
        assert (
            text == ""
            and calls[0]["name"] == "search"
            and json.loads(calls[0]["arguments"]) == {"q": "llamas"}
        )
    _, text, calls = run_pipeline(OutputPipeline(tools=ToolCallParser(llama)), ["Hello there"])
    assert text == "Hello there" and calls == []
    mistral = ToolFormat(*(("mistral",) + STYLE_MARKERS["mistral"]))
    out = '[TOOL_CALLS][{"name": "a", "arguments": {"n": 1}}, {"name": "b", "arguments": {}}]'
    for pieces in chunkings(out, 1):
        _, text, calls = run_pipeline(OutputPipeline(tools=ToolCallParser(mistral)), pieces)
        assert [c["name"] for c in calls] == ["a", "b"] and text == ""


def test_thinking_then_tool_call():
    pipeline = OutputPipeline(ThinkingSplitter(THINK), ToolCallParser(QWEN))
    out = '<think>need weather</think><tool_call>{"name": "w", "arguments": {"c": "Oslo"}}</tool_call>'
    thinking, text, calls = run_pipeline(pipeline, list(out))  # one character at a time
    assert thinking == "need weather" and text == "" and calls[0]["name"] == "w"


def test_parse_call_text_rejects_shapes_that_are_not_calls():
    assert parse_call_text('{"no_name": 1}') is None
    assert parse_call_text('{"name": "x", "arguments": "not json"}') is None
    assert parse_call_text('{"name": "x", "arguments": "{\\"a\\": 1}"}')[0].arguments == '{"a": 1}'
    assert [
        c.name
        for c in parse_call_text('{"name": "a", "parameters": {}}; {"name": "b", "parameters": {}}')
    ] == ["a", "b"]


@pytest.mark.parametrize(
    "stops,output,expected,matched",
    [
        (["STOP"], "abcSTOPdef", "abc", "STOP"),
        (["STOP"], "abcSTOdef", "abcSTOdef", None),
        (["\n\n", "END"], "one\ntwo\n\nthree", "one\ntwo", "\n\n"),
        (["ab", "b"], "xab", "x", "ab"),
    ],
)
def test_stop_matcher_every_chunking(stops, output, expected, matched):
    for pieces in chunkings(output):
        m = StopMatcher(stops)
        got = "".join(m.feed(p) for p in pieces) + m.flush()
        assert (got, m.matched) == (expected, matched), pieces


def _entry(token: str) -> dict:
    return {"token": token, "logprob": -0.5, "bytes": list(token.encode()), "top_logprobs": []}


def test_pipeline_logprobs_go_with_the_answer_text_not_the_reasoning_or_the_call():
    pipeline = OutputPipeline(
        ThinkingSplitter(ThinkingConfig(enabled=True)), ToolCallParser(ToolFormat())
    )
    pieces = ["<think>", "hmm", "</think>", "\n\nHi", " <", "tool_call>", '{"name": "f"}',
              "</tool_call>", " done"]  # fmt: skip
    events = []
    for piece in pieces:
        events += pipeline.feed(TextDelta(piece, [_entry(piece)]))
    events += pipeline.flush()
    texts = [e for e in events if isinstance(e, TextDelta)]
    assert "".join(e.text for e in events if isinstance(e, ThinkingDelta)) == "hmm"
    assert [e.name for e in events if isinstance(e, ToolCallDelta) and e.name] == ["f"]
    assert all(e.logprobs is not None for e in texts)
    by_text = {e.text: [x["token"] for x in e.logprobs] for e in texts}
    # " <" was held (it may open a call): its entry waits, and goes with the text it became
    assert by_text["Hi"] == ["\n\nHi"] and by_text[" "] == [" <"]
    assert by_text[" done"] == [" done"]  # the call's tokens dropped theirs
    # without logprobs nothing gets any
    plain = OutputPipeline(ThinkingSplitter(ThinkingConfig()), ToolCallParser(ToolFormat()))
    out = [e for p in ("Hi", " <x") for e in plain.feed(TextDelta(p))] + plain.flush()
    assert out and all(e.logprobs is None for e in out if isinstance(e, TextDelta))
