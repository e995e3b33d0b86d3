"""Anthropic's Claude Code (npm ``@anthropic-ai/claude-code``, installed by
``scripts/setup.sh --test`` into ``.cache/npm``) completing turns against Mullama's Messages API.

Claude Code sends what it sends to Anthropic: ``POST /v1/messages?beta=true``, streamed, with
``anthropic-beta`` flags, ``max_tokens: 32000``, ``thinking: {"type": "adaptive"}``,
``output_config.effort``, ``context_management``, ``cache_control`` blocks and its tools. Its
default prompt is about 17k tokens (minutes of prefill on two cores), so these runs keep it small
with the options Claude Code has for that (``--bare``, ``--system-prompt``, ``--tools``); the
request's shape is the same. This judges the plumbing, not the answers: the test model is a 270M
model, kept short by stop strings (the turn ends with ``end_turn``), and the tool round trip is
driven by a template that tells it what to say."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.helpers import GEMMA_TEMPLATE, run_daemon, serve_command, settings_env

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

CLAUDE = Path(__file__).resolve().parents[2] / ".cache" / "npm" / "node_modules" / ".bin" / "claude"
SMALL_PROMPT = [
    "--bare",
    "--system-prompt",
    "You are a helpful assistant.",
    "--strict-mcp-config",
    "--no-session-persistence",
]
# turn 1 (the user asks): the model is told to call Read; turn 2 (the tool result): to say Done
TOOL_TEMPLATE = """\
{{- range .Messages }}
{{- if eq .Role "assistant" }}<start_of_turn>model
{{ .Content }}<end_of_turn>
{{ else if eq .Role "tool" }}<start_of_turn>user
The file says: {{ .Content }}
Repeat exactly: Done<end_of_turn>
{{ else if eq .Role "user" }}<start_of_turn>user
Repeat exactly: <tool_call>{"name": "Read", "arguments": {"file_path": "FILE"}}</tool_call><end_of_turn>
{{ end }}
{{- end }}<start_of_turn>model
"""
# Claude Code's context is about 17k tokens with its default prompt: the models have 32k
PARAMETERS = (
    'PARAMETER stop "<end_of_turn>"\nPARAMETER stop "\\n"\nPARAMETER temperature 0\n'
    "PARAMETER num_ctx 32768\nPARAMETER num_parallel 1\nPARAMETER num_predict 64\n"
)


@pytest.fixture(scope="module")
def served(tmp_path_factory, test_model_path):
    """A daemon with the access log on, ``cc-gemma`` (Gemma's turns) and ``cc-tools`` (told to
    read ``hello.txt`` in the work directory), and that directory."""
    if not CLAUDE.exists():
        pytest.skip("Claude Code is not installed (scripts/setup.sh --test installs it)")
    root = tmp_path_factory.mktemp("claude-code")
    work = root / "work"
    work.mkdir()
    (work / "hello.txt").write_text("The secret word is pineapple.\n")
    models = {
        "cc-gemma": f'TEMPLATE """{GEMMA_TEMPLATE}"""\n{PARAMETERS}PARAMETER stop "."\n',
        "cc-tools": f'TEMPLATE """{TOOL_TEMPLATE.replace("FILE", str(work / "hello.txt"))}"""\n'
        f"{PARAMETERS}TOOLFORMAT style qwen\nCAPABILITY tools true\n",
    }
    env = {
        **settings_env(root / "daemon"),
        "MULLAMA_ALLOWED_MODEL_DIRS": str(test_model_path.parent),
    }
    with run_daemon(root / "daemon", "--verbose", env=env, command=serve_command()) as daemon:
        for name, text in models.items():
            reply = httpx.post(
                f"{daemon.url}/api/create",
                json={
                    "model": name,
                    "modelfile": f"FROM {test_model_path}\n{text}",
                    "stream": False,
                },
                timeout=120,
            )
            assert reply.status_code == 200, reply.text
        yield daemon, work


def claude(
    served, model: str, prompt: str, *args: str, small: bool = True
) -> subprocess.CompletedProcess[str]:
    daemon, work = served
    home = work.parent / f"home-{model}"
    home.mkdir(exist_ok=True)
    env = {
        **os.environ,
        "HOME": str(home),
        "CLAUDE_CONFIG_DIR": str(home / ".claude"),
        "ANTHROPIC_BASE_URL": daemon.url,
        "ANTHROPIC_API_KEY": "unused",
        "ANTHROPIC_MODEL": model,
        "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "DISABLE_AUTOUPDATER": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "NO_COLOR": "1",
    }
    return subprocess.run(
        [str(CLAUDE), "-p", prompt, "--model", model, *(SMALL_PROMPT if small else []), *args],
        cwd=work,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
    )


ACCESS = re.compile(r"mullama\.access: (\S+) (\S+) (\d{3}) ")


def failures(log: str) -> list[str]:
    """The daemon's log lines of requests answered 4xx/5xx, warnings and errors; the log must
    hold access lines at all (else the check would pass on nothing)."""
    lines = log.splitlines()
    assert any(ACCESS.search(line) for line in lines), "no access lines in the daemon log"
    return [
        line
        for line in lines
        if ((m := ACCESS.search(line)) and m[3][0] in "45")
        or re.search(r"\b(WARNING|ERROR|CRITICAL)\b|Traceback", line)
    ]


def test_claude_code_completes_a_turn(served):
    daemon, _ = served
    before = len(daemon.log())
    result = claude(served, "cc-gemma", "Say hi", "--tools", "", "--output-format", "json")
    report = f"stdout:\n{result.stdout}\nstderr:\n{result.stderr[-4000:]}"
    assert result.returncode == 0, report
    reply = json.loads(result.stdout)
    assert reply["type"] == "result" and reply["subtype"] == "success", report
    assert reply["is_error"] is False and reply["api_error_status"] is None, report
    assert reply["stop_reason"] == "end_turn" and reply["num_turns"] == 1
    assert isinstance(reply["result"], str)
    assert reply["usage"]["input_tokens"] + reply["usage"]["cache_read_input_tokens"] > 30
    assert failures(daemon.log()[before:]) == []


def test_claude_code_drives_a_tool_round_trip(served):
    """Turn 1 answers with a ``tool_use`` of Read; Claude Code reads the file and sends its
    ``tool_result``; turn 2 answers with text and ends the conversation."""
    daemon, work = served
    before = len(daemon.log())
    result = claude(
        served,
        "cc-tools",
        "Read hello.txt",
        "--tools",
        "Read",
        "--allowedTools",
        "Read",
        "--max-turns",
        "3",
        "--output-format",
        "stream-json",
        "--verbose",
    )
    report = f"work: {work}\nstdout:\n{result.stdout[-8000:]}\nstderr:\n{result.stderr[-4000:]}"
    assert result.returncode == 0, report
    events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    blocks = [
        (e["type"], block)
        for e in events
        if e["type"] in ("assistant", "user")
        for block in e["message"]["content"]
        if isinstance(block, dict)
    ]
    calls = [b for kind, b in blocks if kind == "assistant" and b["type"] == "tool_use"]
    assert [(c["name"], c["input"]) for c in calls] == [
        ("Read", {"file_path": str(work / "hello.txt")})
    ], report
    results = [b for kind, b in blocks if kind == "user" and b["type"] == "tool_result"]
    assert [r["tool_use_id"] for r in results] == [calls[0]["id"]], report
    assert "pineapple" in json.dumps(results[0]["content"]) and not results[0].get("is_error")
    final = events[-1]
    assert final["type"] == "result" and final["subtype"] == "success", report
    assert final["is_error"] is False and final["num_turns"] == 2, report
    assert failures(daemon.log()[before:]) == []


@pytest.mark.skipif(
    not os.environ.get("MULLAMA_TEST_CLAUDE_FULL"),
    reason="about 3 minutes of prefill on two cores: set MULLAMA_TEST_CLAUDE_FULL=1 to run",
)
def test_claude_code_with_its_default_prompt(served):
    """Claude Code as people run it: its whole system prompt, a dozen tools and a system turn
    in the messages, about 12,000 tokens in Gemma's template."""
    daemon, _ = served
    before = len(daemon.log())
    result = claude(served, "cc-gemma", "Say hi", "--output-format", "json", small=False)
    report = f"stdout:\n{result.stdout}\nstderr:\n{result.stderr[-4000:]}"
    assert result.returncode == 0, report
    reply = json.loads(result.stdout)
    assert reply["subtype"] == "success" and reply["is_error"] is False, report
    assert reply["usage"]["input_tokens"] + reply["usage"]["cache_read_input_tokens"] > 5000
    assert failures(daemon.log()[before:]) == []
