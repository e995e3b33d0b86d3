"""The Responses API through the official openai SDK against the real daemon: plain, streamed,
tools round trip, structured output, reasoning, previous_response_id, retrieve and delete."""

from __future__ import annotations

import base64
import json

import httpx
import openai
import pytest

from tests.engine.test_reasoning_tools_e2e import PERSON, TOOLS_TEMPLATE, modelfile
from tests.http.test_reasoning_tools_http import THINK_GRAMMAR

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
    "strict": True,
}


@pytest.fixture(scope="module")
def served(daemon, test_model_path):
    specs = {
        "resp-line": modelfile(test_model_path, 'PARAMETER stop "\\n"\n'),
        "resp-thinker": modelfile(test_model_path, "THINKING enabled true\n"),
        "resp-caller": modelfile(
            test_model_path,
            "TOOLFORMAT style qwen\nCAPABILITY tools true\n",
            TOOLS_TEMPLATE,
        ),
    }
    for name, text in specs.items():
        reply = httpx.post(
            f"{daemon.url}/api/create",
            json={"model": name, "modelfile": text, "stream": False},
            timeout=120,
        )
        assert reply.status_code == 200, reply.text
    return daemon


@pytest.fixture(scope="module")
def client(served):
    with openai.OpenAI(
        base_url=f"{served.url}/v1", api_key="unused", max_retries=0, timeout=300
    ) as c:
        yield c


def test_a_plain_response(client):
    reply = client.responses.create(
        model="resp-line", input="Say hi", max_output_tokens=30, instructions="Be kind."
    )
    assert reply.id.startswith("resp_") and reply.object == "response"
    assert reply.status == "completed" and reply.model == "resp-line"
    assert [item.type for item in reply.output] == ["message"]
    assert reply.output[0].content[0].type == "output_text" and reply.output_text
    assert reply.instructions == "Be kind."
    usage = reply.usage
    assert usage.input_tokens > 0 and usage.output_tokens > 0
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    assert usage.output_tokens_details.reasoning_tokens == 0


def test_a_cut_response_is_incomplete(client):
    reply = client.responses.create(model="gemma", input="Tell me a story", max_output_tokens=3)
    assert reply.status == "incomplete"
    assert reply.incomplete_details.reason == "max_output_tokens"
    assert reply.usage.output_tokens == 3


def test_a_streamed_response_parses_event_by_event(client):
    events = list(
        client.responses.create(
            model="resp-line", input="Say hi", max_output_tokens=30, stream=True
        )
    )
    kinds = [e.type for e in events]
    assert kinds[:5] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
    ]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    final = events[-1].response
    assert final.status == "completed" and final.output_text == text
    assert events[0].response.id == final.id and final.usage.output_tokens > 0
    # the SDK's stream helper checks the order of events as it accumulates the response
    with client.responses.stream(model="resp-line", input="Say hi", max_output_tokens=30) as s:
        assert s.get_final_response().output_text == text


def test_the_un_prefixed_route_and_errors_in_openais_shape(served):
    with openai.OpenAI(base_url=served.url, api_key="unused", max_retries=0) as bare:
        reply = bare.responses.create(model="resp-line", input="Hi", max_output_tokens=5)
        assert reply.status in ("completed", "incomplete")
        with pytest.raises(openai.BadRequestError) as err:
            bare.responses.create(model="gemma", input=[{"type": "bogus"}])
    assert err.value.param == "input[0].type" and err.value.code == "invalid_request"
    assert "'bogus' is not supported" in err.value.message
    image = "data:image/png;base64," + base64.b64encode(b"\x89PNG").decode()
    with openai.OpenAI(base_url=f"{served.url}/v1", api_key="unused", max_retries=0) as c:
        with pytest.raises(openai.BadRequestError) as err:
            c.responses.create(
                model="gemma",
                input=[
                    {
                        "role": "user",
                        "content": [
                            {"type": "input_text", "text": "What is this?"},
                            {"type": "input_image", "image_url": image},
                        ],
                    }
                ],
            )
    assert "does not accept images (no vision projector)" in err.value.message
    missing = httpx.get(f"{served.url}/v1/responses/resp_missing")
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "invalid_request_error"


def test_tools_round_trip_with_previous_response_id(client):
    first = client.responses.create(
        model="resp-caller",
        input="Weather in Paris?",
        tools=[WEATHER],
        tool_choice={"type": "function", "name": "get_weather"},
        max_output_tokens=60,
    )
    calls = [item for item in first.output if item.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "get_weather" and calls[0].status == "completed"
    assert calls[0].call_id and isinstance(json.loads(calls[0].arguments)["city"], str)
    output = [{"type": "function_call_output", "call_id": calls[0].call_id, "output": "Sunny"}]
    second = client.responses.create(
        model="resp-caller", previous_response_id=first.id, input=output, max_output_tokens=20
    )
    assert second.previous_response_id == first.id
    assert [item.type for item in second.output] == ["message"]
    # the stored conversation (the question, the call) came before the new input
    alone = client.responses.create(
        model="resp-caller", input=output, max_output_tokens=1, store=False
    )
    assert second.usage.input_tokens > alone.usage.input_tokens
    # streamed, the call's arguments arrive as deltas that add up to the item's
    events = list(
        client.responses.create(
            model="resp-caller",
            input="Weather in Oslo?",
            tools=[WEATHER],
            tool_choice="required",
            max_output_tokens=60,
            stream=True,
            store=False,
        )
    )
    deltas = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    done = [e for e in events if e.type == "response.function_call_arguments.done"]
    item = [e.item for e in events if e.type == "response.output_item.done"][-1]
    assert done[0].arguments == deltas == item.arguments and item.type == "function_call"
    assert events[-1].type == "response.completed"


def test_structured_output_follows_the_schema(client):
    reply = client.responses.create(
        model="gemma",
        input="A person as JSON",
        max_output_tokens=120,
        temperature=1.0,
        extra_body={"seed": 3},
        text={"format": {"type": "json_schema", "name": "person", "schema": PERSON}},
    )
    assert set(json.loads(reply.output_text)) == {"name", "age", "pets"}
    assert reply.text.format.type == "json_schema"
    loose = client.responses.create(
        model="gemma",
        input="Some JSON",
        max_output_tokens=60,
        text={"format": {"type": "json_object"}},
    )
    if loose.status == "completed":
        assert isinstance(json.loads(loose.output_text), dict)


def test_reasoning_items_for_a_thinking_model(client):
    kwargs = dict(
        model="resp-thinker",
        input="Say hello",
        max_output_tokens=60,
        reasoning={"effort": "low"},
        extra_body={"grammar": THINK_GRAMMAR},
    )
    reply = client.responses.create(**kwargs)
    assert [item.type for item in reply.output] == ["reasoning", "message"]
    summary = reply.output[0].summary[0].text
    assert 8 <= len(summary) <= 30 and "<think>" not in reply.output_text
    assert 0 < reply.usage.output_tokens_details.reasoning_tokens < reply.usage.output_tokens
    events = list(client.responses.create(stream=True, **kwargs))
    streamed = "".join(e.delta for e in events if e.type == "response.reasoning_summary_text.delta")
    assert streamed == summary
    kinds = {e.type for e in events}
    assert {
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
    } <= kinds


def test_previous_response_id_retrieve_input_items_and_delete(client):
    first = client.responses.create(
        model="resp-line", input="My name is Ada.", max_output_tokens=10, metadata={"k": "v"}
    )
    second = client.responses.create(
        model="resp-line",
        input=[{"role": "user", "content": "What is my name?"}],
        previous_response_id=first.id,
        max_output_tokens=10,
    )
    assert second.usage.input_tokens > first.usage.input_tokens + first.usage.output_tokens
    got = client.responses.retrieve(first.id)
    assert got.id == first.id and got.output_text == first.output_text
    assert got.metadata == {"k": "v"}
    items = client.responses.input_items.list(second.id)
    assert [i.type for i in items.data] == ["message"] and items.data[0].role == "user"
    assert items.data[0].content[0].text == "What is my name?"
    client.responses.delete(first.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(first.id)
    with pytest.raises(openai.NotFoundError) as err:
        client.responses.create(
            model="resp-line", input="Hi", previous_response_id=first.id, max_output_tokens=5
        )
    assert err.value.param == "previous_response_id"
    unstored = client.responses.create(
        model="resp-line", input="Hi", max_output_tokens=5, store=False
    )
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(unstored.id)
