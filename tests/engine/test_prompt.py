"""Jinja chat templates and system messages in the middle of a conversation (Claude Code sends
them): a turn of their own where the template has system turns, else merged, in order, into the
system message at the start."""

from __future__ import annotations

from mullama.engine.api import Message
from mullama.engine.prompt import render_chat

# Gemma 3's chat template (the GGUF's): no system turn, the system text prefixes the first user
# turn, and roles must alternate
GEMMA3 = """{{ bos_token }}
{%- if messages[0]['role'] == 'system' -%}
    {%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}
    {%- set loop_messages = messages[1:] -%}
{%- else -%}
    {%- set first_user_prefix = "" -%}
    {%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
        {{ raise_exception("Conversation roles must alternate user/assistant/user/assistant/...") }}
    {%- endif -%}
    {%- if (message['role'] == 'assistant') -%}
        {%- set role = "model" -%}
    {%- else -%}
        {%- set role = message['role'] -%}
    {%- endif -%}
    {{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else "") }}
    {{- message['content'] | trim }}
    {{- '<end_of_turn>\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{'<start_of_turn>model\n'}}
{%- endif -%}"""

CONVERSATION = [
    Message("system", "Be brief."),
    Message("user", "Hi"),
    Message("system", "Reminder: no emoji."),
    Message("assistant", "Hello"),
    Message("user", "Bye"),
]


def _render(template: str | None, messages: list[Message]) -> str:
    return render_chat(
        go_template=None,
        jinja_template=template,
        messages=messages,
        tools=None,
        bos_token="<bos>",
        eos_token="<eos>",
    ).text


def test_a_template_without_system_turns_gets_them_merged_into_the_system_prompt():
    assert _render(GEMMA3, CONVERSATION) == (
        "<bos><start_of_turn>user\nBe brief.\n\nReminder: no emoji.\n\nHi<end_of_turn>\n"
        "<start_of_turn>model\nHello<end_of_turn>\n<start_of_turn>user\nBye<end_of_turn>\n"
        "<start_of_turn>model\n"
    )


def test_a_later_system_message_without_a_first_one_becomes_the_system_prompt():
    text = _render(GEMMA3, [Message("user", "Hi"), Message("system", "Env")])
    assert text == "<bos><start_of_turn>user\nEnv\n\nHi<end_of_turn>\n<start_of_turn>model\n"


def test_a_template_with_system_turns_keeps_them_in_place():
    assert _render(None, CONVERSATION) == (  # ChatML
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>system\nReminder: no emoji.<|im_end|>\n"
        "<|im_start|>assistant\nHello<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def test_conversations_without_later_system_messages_are_unchanged():
    plain = [Message("system", "S"), Message("user", "Hi")]
    assert _render(GEMMA3, plain) == (
        "<bos><start_of_turn>user\nS\n\nHi<end_of_turn>\n<start_of_turn>model\n"
    )
