"""`mullama run`: one-shot, piped, --json, errors, and the interactive session (on a pty)."""

from __future__ import annotations

import json
import signal
import time

import httpx
import pytest

from .conftest import mullama
from .pty_session import Pty

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

PROMPT = "Name three colours."


def http_answer(daemon, prompt: str, num_predict: int) -> str:
    body = {
        "model": "gemma",
        "messages": [{"role": "user", "content": prompt}],
        "stream": False,
        "options": {"num_predict": num_predict},
    }
    return httpx.post(f"{daemon.url}/api/chat", json=body, timeout=300).json()["message"]["content"]


def test_run_streams_the_whole_answer(daemon_env, daemon):
    result = mullama(daemon_env, "run", "gemma", PROMPT, "-n", "12")
    assert result.returncode == 0, result.stderr
    assert result.stdout.rstrip("\n") == http_answer(daemon, PROMPT, 12).rstrip("\n")
    assert result.stderr == ""


def test_run_takes_the_prompt_after_its_options(daemon_env, daemon):
    words = PROMPT.split()
    result = mullama(daemon_env, "run", "gemma", "-n", "12", "-t", "0", *words)
    assert result.returncode == 0, result.stderr
    assert result.stdout.rstrip("\n") == http_answer(daemon, PROMPT, 12).rstrip("\n")
    wrong = mullama(daemon_env, "run", "gemma", "-n", "12", "--no-such-flag", "hi")
    assert wrong.returncode == 2 and "unrecognized arguments: --no-such-flag hi" in wrong.stderr


def test_run_reads_a_piped_prompt(daemon_env, daemon):
    piped = mullama(daemon_env, "run", "gemma", "-n", "12", input=PROMPT + "\n")
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout.rstrip("\n") == http_answer(daemon, PROMPT + "\n", 12).rstrip("\n")


def test_run_json(daemon_env):
    result = mullama(
        daemon_env, "run", "gemma", PROMPT, "-n", "6", "-t", "0.5", "--seed", "3", "--json"
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data) == {
        "model",
        "response",
        "thinking",
        "tool_calls",
        "done_reason",
        "usage",
        "timings",
    }
    assert data["model"] == "gemma:latest" and data["response"]
    assert data["done_reason"] in ("length", "stop") and data["usage"]["completion_tokens"] <= 6
    assert data["timings"]["total_ns"] > 0


def test_run_verbose_prints_rates_to_stderr(daemon_env):
    result = mullama(daemon_env, "run", "gemma", PROMPT, "-n", "4", "--verbose")
    assert (
        result.returncode == 0
        and "eval rate:" in result.stderr
        and "eval rate" not in result.stdout
    )


def test_run_errors(daemon_env):
    unknown = mullama(daemon_env, "run", "gema", "hi")
    assert unknown.returncode == 1 and unknown.stdout == ""
    assert unknown.stderr.startswith("Error: model 'gema' not found; did you mean")
    empty = mullama(daemon_env, "run", "gemma", input="")
    assert empty.returncode == 2 and "the prompt is empty" in empty.stderr
    bad = mullama(daemon_env, "run", "gemma", "hi", "-n", "-5")
    assert bad.returncode == 2 and "-n must be" in bad.stderr
    usage = mullama(daemon_env, "run")
    assert usage.returncode == 2 and "usage:" in usage.stderr


def wait_idle(env: dict[str, str], timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if json.loads(mullama(env, "daemon", "status", "--json").stdout)["requests_active"] == 0:
            return True
        time.sleep(0.2)
    return False


def test_interactive_session(daemon_env):
    env = {**daemon_env, "NO_COLOR": "1"}
    session = Pty(env, "run", "gemma")
    try:
        session.expect("Send a message (/? for help)")
        session.expect(">>> ")
        session.send("/set parameter num_predict 5")
        session.expect("Set parameter 'num_predict' to '5'")
        session.expect(">>> ")
        session.send(PROMPT)
        echo, _, reply = session.expect(">>> ").partition("\n")
        assert PROMPT in echo and reply.strip()  # the terminal's echo, then the streamed answer
        session.send("/show modelfile")
        assert "TEMPLATE" in session.expect(">>> ")
        session.send("/show parameters")
        assert "num_predict       5  (this session)" in session.expect(">>> ")
        session.send("/show info")
        shown = session.expect(">>> ")
        assert "architecture" in shown and "gemma3" in shown and "Capabilities" in shown
        session.send("/show")
        assert "Usage: /show info | license | modelfile" in session.expect(">>> ")
        session.send("/clear")
        session.expect("Cleared session context")
        session.send("/set parameter num_predict 400")
        session.expect(">>> ")
        session.send(PROMPT)
        session.expect(PROMPT)
        time.sleep(3)
        session.proc.send_signal(signal.SIGINT)  # Ctrl-C: stop this reply, keep the session
        session.expect(">>> ", timeout=20)
        assert wait_idle(daemon_env)
        session.send("/nonsense")
        session.expect("Unknown command '/nonsense'")
        session.send("/bye")
        assert session.close() == 0
    finally:
        if session.proc.poll() is None:
            session.proc.kill()
