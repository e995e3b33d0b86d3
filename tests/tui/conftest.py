"""TUI test helpers: SVG snapshots under snapshots/ at the repo root, apps over an engine."""

from __future__ import annotations

from pathlib import Path

from pytest_textual_snapshot import SVGImageExtension

SNAPSHOTS = Path(__file__).resolve().parents[2] / "snapshots"


def _snapshot_dir(cls, *, test_location) -> str:
    return str(SNAPSHOTS / test_location.basename)


# pytest-textual-snapshot keeps SVGs next to the tests; the project keeps them in snapshots/.
SVGImageExtension.dirname = classmethod(_snapshot_dir)

SIZE = (120, 36)


async def wait_for_default(pilot, engine, name: str, timeout: float = 60.0) -> None:
    """Let the app run until ``engine`` reports ``name`` as its default model."""
    import asyncio

    deadline = asyncio.get_running_loop().time() + timeout
    while await engine.default_model() != name:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("timed out waiting for the engine default")
        await pilot.pause(0.05)


async def wait_for(pilot, predicate, timeout: float = 60.0, what: str = "condition"):
    """Let the app run until ``predicate()`` is true."""
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)
