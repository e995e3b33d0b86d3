"""The model library on the Models screen (b), against the real engine and the fake hub: browse
the alias registry, search Hugging Face, pick a quantization, several pulls at once, errors."""

from __future__ import annotations

import pytest
from textual.widgets import DataTable, Input, Label, ProgressBar

from mullama.humanize import human_size
from mullama.tui.app import MullamaApp
from mullama.tui.widgets.dialogs import ConfirmDialog
from mullama.tui.widgets.pull_row import PullRow
from mullama.tui.widgets.quant_picker import QuantPicker
from tests.fakehub import make_gguf_bytes, write_user_registry

from .conftest import wait_for

pytestmark = pytest.mark.slow

SIZES = [(80, 24), (120, 40)]
TINY = make_gguf_bytes(name="tiny", padding=600_000, seed="tiny")
OTHER_Q4 = make_gguf_bytes(name="other", padding=300_000, seed="q4")
OTHER_Q8 = make_gguf_bytes(name="other", padding=900_000, seed="q8")


@pytest.fixture
def hub(fake_hub, settings):
    fake_hub.add_repo("acme/Tiny-GGUF", {"tiny.Q4_K_M.gguf": TINY}, downloads=10)
    fake_hub.add_repo(
        "acme/Other-GGUF",
        {"other.Q4_K_M.gguf": OTHER_Q4, "other.Q8_0.gguf": OTHER_Q8, "README.md": b"hi"},
        downloads=99,
        likes=3,
    )
    write_user_registry(
        settings,
        '[models."tiny:1m"]\nrepo = "acme/Tiny-GGUF"\ndefault_quant = "Q4_K_M"\n'
        f'description = "A tiny test model"\nsize = {len(TINY)}\n',
    )
    return fake_hub


def rows(table: DataTable) -> list[list[str]]:
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


def library(app) -> DataTable:
    return app.screen.query_one("#library", DataTable)


def status(app) -> str:
    return str(app.screen.query_one("#library-status", Label).render())


async def open_library(app, pilot) -> None:
    await wait_for(pilot, lambda: app.screen.query("#models"), what="models screen")
    await pilot.press("b")
    await wait_for(
        pilot, lambda: any(r[1] == "tiny:1m" for r in rows(library(app))), what="aliases listed"
    )


def row_of(table: DataTable, column: int, value: str) -> int:
    return next(i for i, r in enumerate(rows(table)) if r[column] == value)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_browse_search_pick_a_quant_and_pull_two_at_once(engine, settings, hub, size):
    hub.hold("other.Q8_0.gguf")
    hub.hold("tiny.Q4_K_M.gguf")
    app = MullamaApp(settings, engine=engine, mode="models")
    async with app.run_test(size=size) as pilot:
        await open_library(app, pilot)
        # browse: the user's alias with its description and size, beside the bundled ones
        table = library(app)
        tiny = rows(table)[row_of(table, 1, "tiny:1m")]
        assert tiny[2] == human_size(len(TINY)) and tiny[-1] == "A tiny test model"
        assert tiny[0] == ""  # not pulled yet
        llama = rows(table)[row_of(table, 1, "llama3.2:1b")]
        assert llama[2] == "—" and llama[-1].startswith("Meta Llama 3.2 1B")  # size not known
        assert rows(table)[row_of(table, 1, "gemma3:270m")][2] == "253.1 MB"
        assert all(len(str(c)) < size[0] for r in rows(table) for c in r)  # nothing runs off
        await pilot.press("d")  # the local models' keys do nothing here
        await pilot.pause(0.2)
        assert not isinstance(app.screen, ConfirmDialog)

        # search the hub: most downloaded first
        await pilot.press("slash")
        assert app.screen.query_one("#library-search", Input).has_focus
        await pilot.press(*"acme", "enter")
        await wait_for(
            pilot,
            lambda: [r[0] for r in rows(library(app))] == ["acme/Other-GGUF", "acme/Tiny-GGUF"],
            what="search results",
        )
        assert library(app).has_focus

        # pick a quantization: the preference's pick is under the cursor, Q8_0 is one down
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, QuantPicker), what="quant picker")
        quants = app.screen.query_one("#quants", DataTable)
        await wait_for(pilot, lambda: quants.row_count == 2, what="quants listed")
        assert [(r[0], r[1]) for r in rows(quants)] == [("★", "Q4_K_M"), ("", "Q8_0")]
        assert rows(quants)[1][2] == human_size(len(OTHER_Q8)) and quants.cursor_row == 0
        await pilot.press("down", "enter")
        await wait_for(
            pilot,
            lambda: [r.ref for r in app.screen.query(PullRow)] == ["hf:acme/Other-GGUF:Q8_0"],
            what="first pull",
        )

        # back to the registry; the alias pulls beside the first, each in its own row
        await pilot.press("escape")
        await wait_for(pilot, lambda: rows(library(app))[0][1] != "", what="registry again")
        library(app).move_cursor(row=row_of(library(app), 1, "tiny:1m"))
        await pilot.press("enter")
        await wait_for(pilot, lambda: len(app.screen.query(PullRow)) == 2, what="second pull")

        def bar_totals() -> dict[str, float | None]:
            return {r.ref: r.query_one(ProgressBar).total for r in app.screen.query(PullRow)}

        expected = {"hf:acme/Other-GGUF:Q8_0": len(OTHER_Q8), "tiny:1m": len(TINY)}
        await wait_for(pilot, lambda: bar_totals() == expected, what="each its own progress")
        hub.release_all()
        await wait_for(pilot, lambda: not app.screen.query(PullRow), what="both done")
        assert not any(n.severity == "error" for n in app._notifications)
        await wait_for(
            pilot,
            lambda: rows(library(app))[row_of(library(app), 1, "tiny:1m")][0] == "✓",
            what="the alias marked pulled",
        )
        assert library(app).cursor_row == row_of(library(app), 1, "tiny:1m")  # kept on reload
        # b goes back to the local models, which list both
        await pilot.press("b")
        local = app.screen.query_one("#models", DataTable)
        await wait_for(pilot, lambda: local.has_focus, what="local models")
        await wait_for(
            pilot,
            lambda: {"tiny:1m", "hf:acme/Other-GGUF:Q8_0"} <= {r[0] for r in rows(local)},
            what="both listed",
        )
    names = {m.name: m for m in await engine.list_models()}
    assert names["hf:acme/Other-GGUF:Q8_0"].size == len(OTHER_Q8)
    assert names["tiny:1m"].size == len(TINY)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_one_pull_cancels_alone_and_hub_errors_show_in_the_screen(
    engine, settings, hub, size
):
    tiny_gate = hub.hold("tiny.Q4_K_M.gguf")
    hub.hold("other.Q4_K_M.gguf")
    app = MullamaApp(settings, engine=engine, mode="models")
    async with app.run_test(size=size) as pilot:
        await open_library(app, pilot)
        library(app).move_cursor(row=row_of(library(app), 1, "tiny:1m"))
        # q on an alias lists its repository's quantizations, the alias's default first
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, QuantPicker), what="quant picker")
        await wait_for(pilot, lambda: app.screen.query_one("#quants").row_count == 1, what="rows")
        await pilot.press("escape")  # nothing pulled
        await wait_for(pilot, lambda: not isinstance(app.screen, QuantPicker), what="closed")
        assert not app.screen.query(PullRow)

        await pilot.press("enter")  # pulls the alias
        await pilot.press("slash", *"other", "enter")
        await wait_for(pilot, lambda: rows(library(app))[0][0] == "acme/Other-GGUF", what="found")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, QuantPicker), what="quant picker")
        await wait_for(pilot, lambda: app.screen.query_one("#quants").row_count == 2, what="rows")
        await pilot.press("enter")  # the preferred Q4_K_M
        await wait_for(pilot, lambda: len(app.screen.query(PullRow)) == 2, what="two pulls")

        first = next(r for r in app.screen.query(PullRow) if r.ref == "tiny:1m")
        first.query_one(".pull-cancel").press()
        await pilot.pause(0.2)  # the pull has seen its cancel before its bytes flow
        tiny_gate.set()
        await wait_for(
            pilot,
            lambda: [r.ref for r in app.screen.query(PullRow)] == ["hf:acme/Other-GGUF:Q4_K_M"],
            what="only the cancelled one gone",
        )
        assert any("tiny:1m cancelled" in str(n.message) for n in app._notifications)

        # a hub that fails says so in the library, naming the hub
        hub.search_status = 503
        await pilot.press("slash", *"acme", "enter")
        await wait_for(pilot, lambda: "HTTP 503" in status(app), what="search error")
        assert hub.url in status(app)
        assert app.screen.query_one("#library-status").has_class("-error")
        await pilot.press("escape")  # back to the registry
        await wait_for(pilot, lambda: "Enter pulls" in status(app), what="registry hint")

        # a repository the hub refuses: the picker says why
        library(app).move_cursor(row=row_of(library(app), 1, "llama3.2:1b"))
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, QuantPicker), what="quant picker")
        error = app.screen.query_one("#quant-status", Label)
        await wait_for(
            pilot,
            lambda: (
                "meta-llama/Llama-3.2-1B-Instruct-GGUF" in str(error.render())
                and "HTTP 401" in str(error.render())
            ),
            what="the hub's refusal",
        )
        await pilot.press("escape")
        hub.release_all()
        await wait_for(pilot, lambda: not app.screen.query(PullRow), what="the other pull done")
    assert [m.name for m in await engine.list_models() if m.name != "gemma:latest"] == [
        "hf:acme/Other-GGUF:Q4_K_M"
    ]
