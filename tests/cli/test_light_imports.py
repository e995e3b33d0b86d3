"""Read-only commands start quickly: they never import llama.cpp, Textual or Sanic."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

HEAVY = [
    "llama_cpp",
    "textual",
    "sanic",
    "numpy",
    "huggingface_hub",
    "jinja2",
    "mullama.engine.local",
]

PROBE = """
import contextlib, io, json, sys
from mullama.cli.main import main
with contextlib.redirect_stdout(io.StringIO()):
    code = main(sys.argv[1:])
heavy = [m for m in {heavy!r} if m in sys.modules]
print(json.dumps({{"code": code, "heavy": heavy}}))
"""


@pytest.mark.parametrize(
    "argv",
    [
        ["list"],
        ["list", "--json"],
        ["ps"],
        ["ps", "--json"],
        ["daemon", "status"],
        ["daemon", "status", "--json"],
    ],
)
def test_read_only_commands_stay_light(daemon_env, argv):
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY), *argv],
        env=daemon_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"code": 0, "heavy": []}
