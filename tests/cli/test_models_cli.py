"""list, show, create, cp, rm, ps, daemon status against the session daemon."""

from __future__ import annotations

import json

import pytest

from .conftest import mullama

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def test_list_table(daemon_env):
    result = mullama(daemon_env, "list")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["NAME", "ID", "SIZE", "MODIFIED"]
    assert any(line.startswith("gemma:latest") and "MB" in line for line in lines[1:])
    assert "\x1b[" not in result.stdout  # no colour codes when not a terminal
    assert result.stderr == ""


def test_list_json_and_verbose(daemon_env):
    data = json.loads(mullama(daemon_env, "list", "--json").stdout)
    gemma = next(m for m in data["models"] if m["name"] == "gemma:latest")
    assert gemma["kind"] == "created" and gemma["family"] == "gemma3"
    assert gemma["digest"].startswith("sha256:") and gemma["size"] > 100_000_000
    assert "__type__" not in gemma
    verbose = mullama(daemon_env, "ls", "--verbose").stdout.splitlines()
    assert verbose[0].split()[4:] == ["KIND", "FAMILY", "PARAMS", "QUANT", "SOURCE"]
    assert "created" in verbose[1] and "Q4_K_M" in verbose[1]


def test_show(daemon_env):
    out = mullama(daemon_env, "show", "gemma").stdout
    assert "  Model" in out and "architecture      gemma3" in out and "  Parameters" in out
    modelfile = mullama(daemon_env, "show", "gemma", "--modelfile").stdout
    assert modelfile.startswith("FROM ") and "TEMPLATE" in modelfile and "num_ctx 2048" in modelfile
    data = json.loads(mullama(daemon_env, "show", "gemma", "--json").stdout)
    assert data["info"]["name"] == "gemma:latest" and data["parameters"]["num_ctx"] == 2048


def test_show_unknown_model_suggests_and_fails(daemon_env):
    result = mullama(daemon_env, "show", "gema")
    assert result.returncode == 1 and result.stdout == ""
    first = result.stderr.splitlines()[0]
    assert first.startswith("Error: model 'gema' not found; did you mean")
    assert "mullama list" in result.stderr


def test_create_cp_rm(daemon_env, tmp_path):
    modelfile = tmp_path / "Modelfile"
    modelfile.write_text('FROM gemma\nSYSTEM "You answer in one word."\nPARAMETER num_predict 4\n')
    created = mullama(daemon_env, "create", "terse", "-f", str(modelfile))
    assert created.returncode == 0, created.stderr
    assert created.stdout.startswith("created 'terse:latest'")
    assert mullama(daemon_env, "show", "terse", "--system").stdout == "You answer in one word.\n"
    copied = mullama(daemon_env, "cp", "terse", "terse2")
    assert copied.stdout == "copied 'terse' to 'terse2:latest'\n"
    names = [m["name"] for m in json.loads(mullama(daemon_env, "list", "--json").stdout)["models"]]
    assert {"terse:latest", "terse2:latest"} <= set(names)
    again = mullama(daemon_env, "cp", "terse", "terse2")
    assert again.returncode == 1 and "exists already" in again.stderr
    forced = mullama(daemon_env, "cp", "--force", "terse", "terse2")
    assert forced.returncode == 0
    removed = mullama(daemon_env, "rm", "terse", "terse2")
    assert removed.returncode == 0 and removed.stdout == "deleted 'terse'\ndeleted 'terse2'\n"
    again = mullama(daemon_env, "rm", "terse")
    assert again.returncode == 1 and again.stderr.startswith("Error: model 'terse' not found")


def test_create_errors(daemon_env, tmp_path):
    missing = mullama(daemon_env, "create", "x", "-f", str(tmp_path / "nope"))
    assert missing.returncode == 1
    assert missing.stderr.splitlines() == [
        f"Error: no such file: {tmp_path / 'nope'}",
        "Give the Modelfile with `-f FILE` (default: ./Modelfile).",
    ]
    bad = tmp_path / "Bad"
    bad.write_text("FROM gemma\nBOGUS x\n")
    result = mullama(daemon_env, "create", "x", "-f", str(bad))
    assert result.returncode == 1
    assert result.stderr.startswith(f'Error: {bad} line 2, column 1: unknown directive "BOGUS"')


def test_ps_after_a_run(daemon_env):
    assert mullama(daemon_env, "run", "gemma", "Hi", "-n", "2").returncode == 0
    data = json.loads(mullama(daemon_env, "ps", "--json").stdout)
    gemma = next(m for m in data["models"] if m["name"] == "gemma:latest")
    assert gemma["context_length"] == 2048 and gemma["size"] > 0
    table = mullama(daemon_env, "ps").stdout.splitlines()
    assert table[0].split()[:4] == ["NAME", "ID", "SIZE", "PROCESSOR"]
    assert table[1].startswith("gemma:latest") and "100% CPU" in table[1]


def test_daemon_status(daemon_env, daemon):
    out = mullama(daemon_env, "daemon", "status").stdout
    assert out.startswith("Mullama daemon v") and f"(pid {daemon.proc.pid}," in out
    assert daemon.socket in out and daemon.url in out
    data = json.loads(mullama(daemon_env, "daemon", "status", "--json").stdout)
    assert data["running"] is True and data["pid"] == daemon.proc.pid
    assert data["endpoints"]["socket"] == daemon.socket and data["endpoints"]["http"] == daemon.url
    assert data["uptime_secs"] > 0 and isinstance(data["loaded"], list)
