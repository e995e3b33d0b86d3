"""Garbage collection is deferred while an entry point starts, and always resumed."""

from __future__ import annotations

import gc

import pytest

from mullama import startup
from mullama.cli.main import main
from mullama.tui.app import MullamaApp

from .conftest import SIZE, wait_for


@pytest.fixture(autouse=True)
def collection_restored():
    yield
    startup.resume_gc()
    gc.enable()


def test_resume_only_undoes_its_own_deferral():
    startup.defer_gc()
    assert not gc.isenabled()
    startup.resume_gc()
    assert gc.isenabled()
    gc.disable()  # someone else's choice: left alone
    startup.defer_gc()
    startup.resume_gc()
    assert not gc.isenabled()


def test_cli_commands_run_with_collection_on(isolated_env, capsys, monkeypatch):
    from mullama.cli import lifecycle

    seen = []

    async def status(args, settings):
        seen.append(gc.isenabled())
        return 1

    monkeypatch.setattr(lifecycle, "_status", status)
    assert main(["daemon", "status"]) == 1
    assert seen == [True] and gc.isenabled()
    with pytest.raises(SystemExit):
        main(["--bogus-flag"])
    assert gc.isenabled()


async def test_tui_resumes_collection_after_its_first_frame(engine, settings):
    startup.defer_gc()
    app = MullamaApp(settings, engine=engine)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, gc.isenabled, what="collection resumed")
        assert app.screen.query_one("#engine-info").border_title == "Engine"
