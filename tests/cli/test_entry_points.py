"""Argument handling that needs no daemon: chat/dashboard hand-off, serve option checks."""

from __future__ import annotations

import sys

import pytest

from mullama.cli.main import main


@pytest.fixture
def terminal(monkeypatch):
    monkeypatch.setattr("mullama.cli.tui.interactive", lambda: True)


def test_chat_and_dashboard_open_the_tui(monkeypatch, terminal, isolated_env):
    import mullama.tui.app as app

    calls = []
    monkeypatch.setattr(app, "run_app", lambda **kw: calls.append(kw))
    assert main(["chat", "--model", "llama3.2:1b"]) == 0  # an alias: pulled when first used
    assert main([]) == 0
    assert calls == [{"mode": "chat", "model": "llama3.2:1b"}, {"mode": "dashboard"}]


def test_chat_with_a_model_that_does_not_exist_fails_at_once(
    monkeypatch, terminal, isolated_env, capsys
):
    import mullama.tui.app as app

    calls = []
    monkeypatch.setattr(app, "run_app", lambda **kw: calls.append(kw))
    assert main(["chat", "--model", "lama3.2:1b"]) == 1
    err = capsys.readouterr().err
    assert "'lama3.2:1b' not found" in err and "llama3.2:1b" in err  # with the suggestion
    assert calls == []  # the TUI never opened


def test_the_tui_needs_a_terminal(capsys):
    assert main([]) == 2
    assert capsys.readouterr().err.startswith(
        "Error: the terminal UI needs an interactive terminal"
    )


def test_a_missing_tui_is_reported(monkeypatch, capsys, terminal):
    monkeypatch.setitem(sys.modules, "mullama.tui.app", None)
    assert main(["chat"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("Error: the terminal UI is not available in this installation")
    assert "mullama run MODEL" in err[1]


@pytest.mark.parametrize(
    "argv, words",
    [
        (["serve", "--socket", "/tmp/x.sock"], "--socket must be an ipc:// or tcp:// address"),
        (["serve", "--http-port", "70000"], "--http-port must be between 0 and 65535"),
        (["serve", "--threads", "-2"], "--threads must not be negative"),
    ],
)
def test_serve_rejects_bad_options(argv, words, capsys):
    assert main(argv) == 2
    assert capsys.readouterr().err.startswith(f"Error: {words}")


def test_bad_settings_environment(monkeypatch, capsys):
    monkeypatch.setenv("MULLAMA_SPAWN_TIMEOUT", "soon")
    assert main(["list"]) == 2
    assert "MULLAMA_SPAWN_TIMEOUT must be a number" in capsys.readouterr().err


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["daemon"])
    assert info.value.code == 2
