"""Every curl example (tests/http/curl_examples.sh, and the README's once it has them) runs
against a real daemon and gets a 200."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = Path(__file__).with_name("curl_examples.sh")
BASE = "http://localhost:8080"


def complete(command: str) -> bool:
    if command.rstrip().endswith("\\"):
        return False
    try:
        shlex.split(command)
    except ValueError:  # an open quote: the command goes on
        return False
    return True


def commands(text: str) -> list[str]:
    """The ``curl`` commands of a shell text (continuations and multi-line quotes joined)."""
    found, current = [], ""
    for line in text.splitlines():
        if current or line.startswith("curl "):
            current += line + "\n"
            if complete(current):
                found.append(current)
                current = ""
    return [c for c in found if BASE in c]


def readme_commands() -> list[str]:
    readme = ROOT / "README.md"
    if not readme.exists():
        return []
    blocks = re.findall(r"```(?:bash|sh|shell)\n(.*?)```", readme.read_text(), re.S)
    return [c for block in blocks for c in commands(block)]


EXAMPLE_COMMANDS = commands(EXAMPLES.read_text()) + readme_commands()


def test_examples_are_found():
    assert len(commands(EXAMPLES.read_text())) >= 18


def localise(command: str, url: str) -> str:
    """The command against the test daemon: the test model stands in for the README's models,
    and pulls fetch ``gemma3:270m`` (it resolves offline from its installed package)."""
    command = command.replace(BASE, url)
    if "/pull" in command:
        return command.replace("llama3.2:1b", "gemma3:270m")
    return command.replace("llama3.2:1b", "gemma").replace("gemma3:270m", "gemma")


@pytest.mark.parametrize("command", EXAMPLE_COMMANDS, ids=lambda c: " ".join(c.split()[:3])[:60])
def test_curl_example(api, test_model_path, command):
    """``my-model`` is created first so that its deletion succeeds."""
    from mullama.config import load_settings
    from mullama.engine.store import ModelStore
    from tests.conftest import gemma_modelfile

    if "my-model" in command:
        ModelStore(load_settings(env=api.env)).create(
            "my-model", gemma_modelfile(test_model_path), None
        )
    # our options go first: an example may end with a # comment
    script = localise(command, api.url).replace(
        "curl ", "curl -sS -o /dev/null -w '%{http_code}' --max-time 300 ", 1
    )
    done = subprocess.run(
        ["bash", "-c", script],
        capture_output=True,
        text=True,
        env={**api.env, "PATH": "/usr/bin:/bin", "MULLAMA_API_KEY": ""},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "200", f"{command}\n-> HTTP {done.stdout}"
