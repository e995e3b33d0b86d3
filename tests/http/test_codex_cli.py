"""OpenAI's Codex CLI (npm ``@openai/codex``, installed by ``scripts/setup.sh --test`` into
``.cache/npm``) completing a turn against Mullama's Responses API.

Codex sends what it sends to OpenAI: a 40 kB request with developer messages, a dozen function
tools plus ``namespace`` and ``web_search`` tools, ``reasoning``, ``include``, ``store: false``,
``prompt_cache_key``… This judges the plumbing, not the answer: the test model is a 270M base
model, kept short by stop strings (a turn cut by ``max_output_tokens`` is an error to Codex)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.engine.test_reasoning_tools_e2e import TOOLS_TEMPLATE

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

CODEX = Path(__file__).resolve().parents[2] / ".cache" / "npm" / "node_modules" / ".bin" / "codex"
CONFIG = """\
model_provider = "mullama"
model = "codex-gemma"

[model_providers.mullama]
name = "Mullama"
base_url = "{url}/v1"
wire_api = "responses"
env_key = "MULLAMA_API_KEY"
"""


@pytest.fixture(scope="module")
def served(daemon, test_model_path):
    text = (
        f'FROM {test_model_path}\nTEMPLATE """{TOOLS_TEMPLATE}"""\n'
        'PARAMETER stop "<end_of_turn>"\nPARAMETER stop "\\n"\nPARAMETER stop "."\n'
        "PARAMETER temperature 0\nPARAMETER num_ctx 8192\nPARAMETER num_predict 48\n"
        "TOOLFORMAT style qwen\nCAPABILITY tools true\n"
    )
    reply = httpx.post(
        f"{daemon.url}/api/create",
        json={"model": "codex-gemma", "modelfile": text, "stream": False},
        timeout=120,
    )
    assert reply.status_code == 200, reply.text
    return daemon


def run_codex(tmp_path: Path, config: str, env: dict[str, str], *options: str):
    """``codex exec`` with its home in ``tmp_path`` (nothing of the user's, no login)."""
    if not CODEX.exists():
        pytest.skip("the Codex CLI is not installed (scripts/setup.sh --test installs it)")
    home, work = tmp_path / "codex-home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    (home / "config.toml").write_text(config)
    env = {**os.environ, "CODEX_HOME": str(home), "NO_COLOR": "1", **env}
    last = tmp_path / "last-message.txt"
    result = subprocess.run(
        [
            str(CODEX),
            "exec",
            *options,
            "--json",
            "--skip-git-repo-check",
            "--ephemeral",
            "--dangerously-bypass-approvals-and-sandbox",
            "--color",
            "never",
            "--output-last-message",
            str(last),
            "Say hi",
        ],
        cwd=work,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return result, last


def assert_completed_turn(result, last: Path) -> None:
    report = f"stdout:\n{result.stdout}\nstderr:\n{result.stderr[-4000:]}"
    assert result.returncode == 0, report
    events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    kinds = [e["type"] for e in events]
    assert "turn.completed" in kinds and "turn.failed" not in kinds, report
    messages = [
        e["item"]["text"]
        for e in events
        if e["type"] == "item.completed" and e["item"]["type"] == "agent_message"
    ]
    assert messages and messages[-1].strip(), report
    assert last.read_text().strip() == messages[-1].strip()
    usage = [e for e in events if e["type"] == "turn.completed"][-1]["usage"]
    assert usage["input_tokens"] > 1000 and usage["output_tokens"] > 0  # Codex's whole prompt
    errors = [
        e["item"]["message"]
        for e in events
        if e["type"] == "item.completed" and e["item"]["type"] == "error"
    ]
    # the one error item expected is Codex not knowing the model's metadata (context size…)
    assert all("metadata" in message for message in errors), report


def test_codex_exec_completes_a_turn(served, tmp_path):
    result, last = run_codex(tmp_path, CONFIG.format(url=served.url), {"MULLAMA_API_KEY": "unused"})
    assert_completed_turn(result, last)


def test_codex_oss_mode_accepts_the_ollama_version_and_completes_a_turn(served, tmp_path):
    """``--oss`` treats the daemon as an Ollama: it reads /api/version (and refuses one older
    than 0.13.4), lists the models to pull a missing one, then speaks /v1/responses."""
    result, last = run_codex(
        tmp_path,
        "",
        {"CODEX_OSS_BASE_URL": f"{served.url}/v1"},
        "--oss",
        "--local-provider",
        "ollama",
        "-m",
        "codex-gemma:latest",  # as /v1/models lists it (a name it does not list, it pulls)
    )
    assert "too old" not in result.stderr, result.stderr[-4000:]
    assert_completed_turn(result, last)
