"""Chat prompt rendering with real templates of common model families (exact strings)."""

from pathlib import Path

import pytest

from mullama.modelfile import parse_modelfile, render_prompt

MODELFILES = Path(__file__).resolve().parents[2] / "configs" / "modelfiles"

CONVERSATION = [
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello!"},
    {"role": "user", "content": "Bye"},
]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get weather",
            "parameters": {
                "type": "object",
                "required": ["city"],
                "properties": {"city": {"type": "string", "description": "City name"}},
            },
        },
    }
]
TOOL_EXCHANGE = [
    {"role": "user", "content": "Weather in Paris?"},
    {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {
                "id": "c1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            },
        ],
    },
    {"role": "tool", "content": '{"temp": 21}'},
]
TOOL_JSON = (
    '{"name":"get_weather","description":"Get weather","parameters":{"type":"object",'
    '"required":["city"],"properties":{"city":{"type":"string","description":"City name"}}}}'
)

LLAMA3_LEGACY = (
    "{{ if .System }}<|start_header_id|>system<|end_header_id|>\n\n{{ .System }}<|eot_id|>{{ end }}"
    "{{ if .Prompt }}<|start_header_id|>user<|end_header_id|>\n\n{{ .Prompt }}<|eot_id|>{{ end }}"
    "<|start_header_id|>assistant<|end_header_id|>\n\n{{ .Response }}<|eot_id|>"
)
PHI3_LEGACY = (
    "{{ if .System }}<|system|>\n{{ .System }}<|end|>\n{{ end }}{{ if .Prompt }}<|user|>\n"
    "{{ .Prompt }}<|end|>\n{{ end }}<|assistant|>\n{{ .Response }}<|end|>\n"
)


def bundled_template(name: str) -> str:
    return parse_modelfile((MODELFILES / f"{name}.Modelfile").read_text()).template


def test_qwen_chatml_multi_turn_with_system():
    assert render_prompt(
        bundled_template("qwen2.5"), system="Be brief.", messages=CONVERSATION
    ) == (
        "<|im_start|>system\nBe brief.<|im_end|>\n"
        "<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\nHello!<|im_end|>\n"
        "<|im_start|>user\nBye<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def test_qwen_tools_calls_and_results():
    prompt = render_prompt(
        bundled_template("qwen2.5"), system="Be brief.", messages=TOOL_EXCHANGE, tools=TOOLS
    )
    assert prompt == (
        "<|im_start|>system\nBe brief.\n\n# Tools\n\n"
        "You may call one or more functions to assist with the user query.\n\n"
        "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n"
        '{"type": "function", "function": ' + TOOL_JSON + "}\n</tools>\n\n"
        "For each function call, return a json object with function name and arguments within "
        "<tool_call></tool_call> XML tags:\n<tool_call>\n"
        '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call><|im_end|>\n'
        "<|im_start|>user\nWeather in Paris?<|im_end|>\n"
        '<|im_start|>assistant\n<tool_call>\n{"name": "get_weather", "arguments": {"city":"Paris"}}\n'
        "</tool_call><|im_end|>\n"
        '<|im_start|>user\n<tool_response>\n{"temp": 21}\n</tool_response><|im_end|>\n'
        "<|im_start|>assistant\n"
    )


def test_qwen_without_system_or_tools_has_no_system_block():
    assert render_prompt(bundled_template("qwen2.5"), system=None, messages=CONVERSATION[:1]) == (
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    )


def test_llama3_multi_turn():
    assert render_prompt(bundled_template("llama3"), system="Be brief.", messages=CONVERSATION) == (
        "<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n\n"
        "Be brief.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )


def test_llama3_tools_in_last_user_turn():
    messages = [{"role": "user", "content": "Weather in Paris?"}]
    assert render_prompt(
        bundled_template("llama3"), system=None, messages=messages, tools=TOOLS
    ) == (
        "<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n\n"
        "When you receive a tool call response, use the output to format an answer to the original user "
        "question.\n\nYou are a helpful assistant with tool calling capabilities.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\n"
        "Given the following functions, please respond with a JSON for a function call with its proper "
        "arguments that best answers the given prompt.\n\n"
        'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.'
        " Do not use variables.\n\n"
        '{"type":"function","function":' + TOOL_JSON + "}\n\n"
        "Weather in Paris?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
    )


def test_llama3_tool_call_and_ipython_result():
    prompt = render_prompt(
        bundled_template("llama3"), system=None, messages=TOOL_EXCHANGE, tools=TOOLS
    )
    assert prompt.endswith(
        "<|start_header_id|>user<|end_header_id|>\n\nWeather in Paris?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
        '{"name": "get_weather", "parameters": {"city":"Paris"}}<|eot_id|>'
        '<|start_header_id|>ipython<|end_header_id|>\n\n{"temp": 21}<|eot_id|>'
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )


def test_gemma_turns_with_system_as_user_turn():
    assert render_prompt(bundled_template("gemma"), system="Be brief.", messages=CONVERSATION) == (
        "<start_of_turn>user\nBe brief.<end_of_turn>\n"
        "<start_of_turn>user\nHi<end_of_turn>\n"
        "<start_of_turn>model\nHello!<end_of_turn>\n"
        "<start_of_turn>user\nBye<end_of_turn>\n"
        "<start_of_turn>model\n"
    )


def test_gemma_single_turn_matches_design_test_template():
    messages = [{"role": "user", "content": "Why is the sky blue?"}]
    assert render_prompt(bundled_template("gemma"), system=None, messages=messages) == (
        "<start_of_turn>user\nWhy is the sky blue?<end_of_turn>\n<start_of_turn>model\n"
    )


def test_phi3_messages_template():
    assert render_prompt(bundled_template("phi3"), system="Be brief.", messages=CONVERSATION) == (
        "<|system|>\nBe brief.<|end|>\n<|user|>\nHi<|end|>\n<|assistant|>\nHello!<|end|>\n"
        "<|user|>\nBye<|end|>\n<|assistant|>\n"
    )


def test_mistral_system_goes_into_last_user_turn():
    assert render_prompt(
        bundled_template("mistral"), system="Be brief.", messages=CONVERSATION
    ) == ("[INST] Hi[/INST] Hello!</s>[INST] Be brief.\n\nBye[/INST] ")


def test_mistral_available_tools_and_tool_calls():
    messages = [{"role": "user", "content": "Weather in Paris?"}]
    assert render_prompt(
        bundled_template("mistral"), system=None, messages=messages, tools=TOOLS
    ) == (
        '[AVAILABLE_TOOLS] [{"type":"function","function":' + TOOL_JSON + "}][/AVAILABLE_TOOLS]"
        "[INST] Weather in Paris?[/INST] "
    )
    assert render_prompt(
        bundled_template("mistral"), system=None, messages=TOOL_EXCHANGE, tools=TOOLS
    ) == (
        '[INST] Weather in Paris?[/INST][TOOL_CALLS] [{"name": "get_weather", "arguments": {"city":"Paris"}}]</s>'
        '[TOOL_RESULTS] {"content": {"temp": 21}} [/TOOL_RESULTS] '
    )


def test_deepseek_r1():
    assert render_prompt(
        bundled_template("deepseek-r1"), system="Be brief.", messages=CONVERSATION
    ) == (
        "Be brief.<｜User｜>Hi<｜Assistant｜>Hello!<｜end▁of▁sentence｜><｜User｜>Bye<｜Assistant｜>"
    )


def test_legacy_llama3_rounds_and_cut_after_response():
    messages = [{"role": "system", "content": "S"}, *CONVERSATION]
    assert render_prompt(
        LLAMA3_LEGACY, system="ignored: conversation has its own", messages=messages
    ) == (
        "<|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )


def test_legacy_phi3_from_the_guide_with_system_parameter():
    assert render_prompt(PHI3_LEGACY, system="Be brief.", messages=CONVERSATION) == (
        "<|system|>\nBe brief.<|end|>\n<|user|>\nHi<|end|>\n<|assistant|>\nHello!<|end|>\n"
        "<|user|>\nBye<|end|>\n<|assistant|>\n"
    )


def test_legacy_last_assistant_message_is_continued():
    messages = [{"role": "user", "content": "Count"}, {"role": "assistant", "content": "1, 2,"}]
    assert render_prompt(PHI3_LEGACY, system=None, messages=messages, response=" 3") == (
        "<|user|>\nCount<|end|>\n<|assistant|>\n1, 2, 3"
    )


def test_legacy_system_message_mid_conversation_starts_a_new_round():
    messages = [
        {"role": "user", "content": "A"},
        {"role": "system", "content": "S2"},
        {"role": "user", "content": "B"},
    ]
    assert render_prompt(PHI3_LEGACY, system=None, messages=messages) == (
        "<|user|>\nA<|end|>\n<|assistant|>\n<|end|>\n"
        "<|system|>\nS2<|end|>\n<|user|>\nB<|end|>\n<|assistant|>\n"
    )


def test_messages_are_collated_and_system_joined():
    template = "[{{ .System }}]{{ range .Messages }}({{ .Role }}:{{ .Content }}){{ end }}"
    messages = [
        {"role": "system", "content": "s1"},
        {"role": "system", "content": "s2"},
        {"role": "user", "content": "a"},
        {"role": "user", "content": "b"},
        {"role": "tool", "content": "t1"},
        {"role": "tool", "content": "t2"},
    ]
    assert render_prompt(template, system="unused", messages=messages) == (
        "[s1\n\ns2](system:s1\n\ns2)(user:a\n\nb)(tool:t1)(tool:t2)"
    )


def test_messages_template_is_cut_after_response():
    template = "{{ range .Messages }}{{ .Content }}|{{ end }}{{ .Response }}<END>"
    assert (
        render_prompt(template, system=None, messages=CONVERSATION, response="Sure")
        == "Hi|Hello!|Bye|Sure"
    )


def test_tool_call_arguments_json_is_go_encoded():
    template = "{{ range .Messages }}{{ range .ToolCalls }}{{ .Function.Arguments }} {{ json .Function }}{{ end }}{{ end }}"
    messages = [
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"function": {"name": "f", "arguments": {"b": 1, "a": "<x>"}}}],
        }
    ]
    assert render_prompt(template, system=None, messages=messages) == (
        '{"a":"\\u003cx\\u003e","b":1} {"name":"f","arguments":{"a":"\\u003cx\\u003e","b":1}}'
    )


@pytest.mark.parametrize(("think", "expected"), [(None, "Q"), (True, "on:Q"), (False, "off:Q")])
def test_think_switch(think, expected):
    template = (
        "{{ if .IsThinkSet }}{{ if .Think }}on{{ else }}off{{ end }}:{{ end }}"
        "{{ range .Messages }}{{ .Content }}{{ end }}"
    )
    assert (
        render_prompt(
            template, system=None, messages=[{"role": "user", "content": "Q"}], think=think
        )
        == expected
    )
