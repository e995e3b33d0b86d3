"""The physical limit for a serving level: a bare ``llama_decode`` loop with the batch shape of
that level (``concurrency`` sequences, one token each per step, logits for every one), on the
same GGUF, context per sequence, slot count and threads as the servers, with no server,
sampling or I/O. ``python bench/decode_floor.py --concurrency 16`` prints tokens/s."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mullama.engine.llm import Batch, Context, ContextParams, Model

PROMPT = (
    "Write a long story about a llama who learns to fly. Once upon a time, in a valley high "
    "in the Andes, there lived a young llama named Pico who watched the condors every morning."
)

_models: dict[str, Model] = {}


def decode_floor(
    model_path: str, concurrency: int, steps: int, ctx: int, parallel: int, threads: int
) -> float:
    """Generated tokens/s of ``steps`` decode steps of ``concurrency`` sequences."""
    model = _models.get(model_path) or _models.setdefault(model_path, Model(model_path))
    context = Context(
        model, ContextParams(n_ctx=ctx * parallel, n_batch=512, n_seq_max=parallel, threads=threads)
    )
    batch = Batch(max(512, concurrency))
    try:
        prompt = model.tokenize(PROMPT)
        for seq in range(concurrency):
            batch.clear()
            for pos, token in enumerate(prompt):
                batch.add(token, pos, seq, pos == len(prompt) - 1)
            context.decode(batch)
        started = time.perf_counter()
        for step in range(steps):
            batch.clear()
            for seq in range(concurrency):
                batch.add(prompt[(step + seq) % len(prompt)], len(prompt) + step, seq, True)
            context.decode(batch)
        return concurrency * steps / (time.perf_counter() - started)
    finally:
        batch.close()
        context.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", help="a GGUF (default: the bundled Gemma 3 270M test model)")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--steps", type=int, default=64)
    parser.add_argument("--ctx", type=int, default=2048)
    parser.add_argument("--parallel", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if args.model is None:
        from bench_serving import test_model

        args.model = test_model()
    rate = decode_floor(
        args.model,
        args.concurrency,
        args.steps,
        args.ctx,
        args.parallel or args.concurrency,
        args.threads,
    )
    print(f"bare llama_decode, {args.concurrency} sequences: {rate:.1f} tokens/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
