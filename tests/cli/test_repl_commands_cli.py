"""The interactive session's /load, /save, /show info and /set format, driven on a pty against
the session daemon; and the Modelfile /save writes."""

from __future__ import annotations

import json

import pytest

from mullama.cli.save import session_modelfile
from mullama.engine.api import Message
from mullama.modelfile import parse_modelfile

from .conftest import mullama
from .pty_session import Pty

BASE = 'FROM /models/a.gguf\nPARAMETER temperature 0\nPARAMETER num_ctx 2048\nSYSTEM "Be kind."\n'


def test_the_saved_modelfile_is_the_model_plus_the_session():
    preset = BASE + 'MESSAGE user "earlier"\n'
    saved = parse_modelfile(
        session_modelfile(
            preset,
            "Be brief.",
            {"temperature": 0.5, "stop": ["END"]},
            [Message("user", "Hi"), Message("assistant", "Hello!\nHow are you?")],
        )
    )
    assert saved.from_ref == "/models/a.gguf" and saved.system == "Be brief."
    assert saved.parameters == {"temperature": 0.5, "num_ctx": 2048, "stop": ["END"]}
    assert saved.messages == [
        ("user", "earlier"),
        ("user", "Hi"),
        ("assistant", "Hello!\nHow are you?"),
    ]
    kept = parse_modelfile(session_modelfile(BASE, None, {}, []))
    assert kept == parse_modelfile(BASE)  # nothing set in the session: the model as it was


def shown_modelfile(env: dict[str, str], name: str) -> str:
    result = mullama(env, "show", name, "--modelfile")
    assert result.returncode == 0, result.stderr
    return result.stdout


def reply_in(screen: str) -> str:
    """The reply in what a turn printed: after the echoed prompt and the spinner's last frame."""
    return screen.replace("\r\n", "\n").partition("\n")[2].rpartition("\r")[2].strip()


def loaded(env: dict[str, str]) -> list[str]:
    return [m["name"] for m in json.loads(mullama(env, "ps", "--json").stdout)["models"]]


@pytest.mark.slow
@pytest.mark.e2e
def test_load_save_show_and_format_in_the_session(daemon_env):
    env = {**daemon_env, "NO_COLOR": "1"}
    assert mullama(env, "cp", "--force", "gemma", "gemma-other").returncode == 0
    session = Pty(env, "run", "gemma")
    try:
        session.expect(">>> ")
        session.send("/help")
        listing = session.expect(">>> ")
        assert "/load MODEL" in listing and "/save NAME" in listing
        assert "/set format json" in listing and "/show info" in listing
        session.send("/show")
        assert "Usage: /show info | license | modelfile" in session.expect(">>> ")
        session.send("/set system You answer in one word.")
        session.expect(">>> ")
        session.send("/set parameter num_predict 6")
        session.expect(">>> ")
        session.send("Name a colour.")
        first = reply_in(session.expect(">>> "))
        assert first
        session.send("/save repl-saved")
        assert "Created new model 'repl-saved:latest'" in session.expect(">>> ")

        session.send("/load gemma-other")
        assert "Loading model 'gemma-other'" in session.expect(">>> ")
        assert "gemma-other:latest" in loaded(env)  # loaded now, before any message
        session.send("/show info")
        assert "name              gemma-other:latest" in session.expect(">>> ")
        session.send("/load nosuchmodel")
        assert "Error: model 'nosuchmodel' not found" in session.expect(">>> ")
        session.send("/set format json")
        assert "Set format to 'json' mode." in session.expect(">>> ")
        session.send("/set parameter num_predict 300")
        session.expect(">>> ")
        session.send("Describe a cat.")
        reply = reply_in(session.expect(">>> "))
        assert isinstance(json.loads(reply), dict)
        session.send("/save repl-after-load")
        assert "Created new model 'repl-after-load:latest'" in session.expect(">>> ")
        session.send("/set noformat")
        assert "Disabled format." in session.expect(">>> ")
        session.send("/bye")
        assert session.close() == 0
    finally:
        if session.proc.poll() is None:
            session.proc.kill()

    saved = parse_modelfile(shown_modelfile(env, "repl-saved"))
    assert saved.system == "You answer in one word." and saved.parameters["num_predict"] == 6
    assert saved.template == parse_modelfile(shown_modelfile(env, "gemma")).template
    stripped = [(role, content.strip()) for role, content in saved.messages]
    assert stripped == [("user", "Name a colour."), ("assistant", first)]
    after = parse_modelfile(shown_modelfile(env, "repl-after-load"))
    # /load kept nothing of the first conversation, nor its system message
    stripped = [(role, content.strip()) for role, content in after.messages]
    assert stripped == [("user", "Describe a cat."), ("assistant", reply)]
    assert after.system is None and after.parameters["num_predict"] == 300
    run = mullama(env, "run", "repl-saved", "And another?", "-n", "4")
    assert run.returncode == 0 and run.stdout.strip(), run.stderr
    assert mullama(env, "rm", "repl-saved", "repl-after-load", "gemma-other").returncode == 0
