"""Embedding and reranking throughput (issue 17): Mullama against llama.cpp's llama-server on the
same model, the same context per input, sequences per decode and threads, in one run.

The model is a random-weight BERT built with the gguf package (``tests/gguf_fixtures.py``), big
enough for the numbers to mean something (384 dimensions, 6 layers, 12 heads, as
all-MiniLM-L6-v2 or bge-small), once as an embedding model (mean pooling) and once as a
reranker (rank pooling, a classification head). Mullama serves both from one daemon;
llama-server serves one model per process (``--embedding``, ``--reranking``).

Levels, each run on every server interleaved (level by level, target by target) for ``--reps``
repetitions, so drift in background load hits all alike:

- ``rerank``: requests of ``--docs`` documents (about 50 tokens each) at concurrency 1 and 4:
  documents reranked per second;
- ``embed-batch``: ``/v1/embeddings`` requests of ``--docs`` inputs at concurrency 1 and 4:
  embeddings per second;
- ``embed-single``: one input per request at concurrency 16 (batching across requests):
  embeddings per second.

The report gives each level's median over the repetitions, the spread (min-max) and the ratio
Mullama / llama-server, with the machine's load average before and after.

    scripts/build_llama_server.sh            # once: llama-server into ~/.cache/mullama-bench
    .venv/bin/python bench/bench_embed.py    # --reps 3 --docs 32 --threads 2
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_serving import CACHE, ROOT, Server, free_port, mullama_env, set_autogroup_nice

from tests.gguf_fixtures import WORDS, build_bert

SHAPE = {"n_embd": 384, "n_layer": 6, "n_head": 12, "n_ff": 1536, "n_ctx": 512}
CTX = 512  # tokens of one input, both servers
SEQUENCES = 16  # sequences one decode takes (Mullama) / slots (llama-server)


def documents(n: int, rng: random.Random, words: int = 48) -> list[str]:
    return [" ".join(rng.choice(WORDS) for _ in range(words)) for _ in range(n)]


def mullama_server(work: Path, models: Path, args) -> Server:
    port = free_port()
    env = mullama_env(
        work / "mullama-home",
        MULLAMA_THREADS=str(args.threads),
        MULLAMA_EMBED_MODEL_CTX=str(CTX),
        MULLAMA_EMBED_MODEL_SEQUENCES=str(SEQUENCES),
        MULLAMA_ALLOWED_MODEL_DIRS=str(models),
        MULLAMA_MAX_QUEUE="256",
    )
    argv = [sys.executable, "-m", "mullama", "serve", "--headless", "--http-port", str(port)]
    return Server("mullama", argv, env, port, work / "mullama.log", ROOT)


def llama_server(kind: str, model: Path, work: Path, args) -> Server:
    binary = args.llama_server or str(CACHE / "llama-server")
    if not os.access(binary, os.X_OK):
        raise RuntimeError(f"{binary} missing: run scripts/build_llama_server.sh first")
    port = free_port()
    argv = [binary, "-m", str(model), "-c", str(CTX * SEQUENCES), "-np", str(SEQUENCES)]
    argv += ["-b", str(CTX), "-ub", str(CTX), "-t", str(args.threads), "-tb", str(args.threads)]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--no-webui"]
    argv += ["--reranking"] if kind == "rerank" else ["--embedding", "--pooling", "mean"]
    argv += args.llama_server_args
    env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost"}
    return Server(
        f"llama-server-{kind}", argv, env, port, work / f"llama-{kind}.log", work, str(model),
        ready_path="/health",
    )  # fmt: skip


async def run_level(base: str, model: str, level: str, concurrency: int, args, seed: int) -> dict:
    """``args.requests`` requests of the level, ``concurrency`` at a time: items/s."""
    rng = random.Random(seed)
    per = 1 if level == "embed-single" else args.docs
    bodies = []
    for _ in range(args.requests if level != "embed-single" else args.requests * 8):
        docs = documents(per, rng)
        if level == "rerank":
            bodies.append(
                ("/v1/rerank", {"model": model, "query": docs[0][:60], "documents": docs})
            )
        else:
            bodies.append(("/v1/embeddings", {"model": model, "input": docs}))
    queue = list(bodies)
    errors = 0

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal errors
        while queue:
            path, body = queue.pop()
            r = await client.post(base + path, json=body)
            if r.status_code != 200:
                errors += 1

    limits = httpx.Limits(max_connections=concurrency + 2)
    async with httpx.AsyncClient(timeout=600, limits=limits, trust_env=False) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    items = len(bodies) * per
    return {"items_per_s": items / elapsed, "items": items, "seconds": elapsed, "errors": errors}


LEVELS = [
    ("rerank", 1),
    ("rerank", 4),
    ("embed-batch", 1),
    ("embed-batch", 4),
    ("embed-single", 16),
]


async def bench(targets: dict[str, dict[str, tuple[str, str]]], args) -> list[dict]:
    rows = []
    for rep in range(args.reps):
        for level, concurrency in LEVELS:
            kind = "rerank" if level == "rerank" else "embed"
            for name, routes in targets.items():
                base, model = routes[kind]
                row = await run_level(base, model, level, concurrency, args, seed=rep * 100)
                row.update(target=name, level=level, concurrency=concurrency, rep=rep)
                print(
                    f"rep {rep} {level:12} c={concurrency:<2} {name:12} "
                    f"{row['items_per_s']:8.1f}/s  errors {row['errors']}",
                    flush=True,
                )
                rows.append(row)
    return rows


def report(rows: list[dict]) -> str:
    lines = [f"{'level':14}{'c':>3}  {'mullama':>22}  {'llama-server':>22}  ratio"]
    for level, concurrency in LEVELS:
        cells, medians = [], {}
        for name in ("mullama", "llama-server"):
            values = [
                r["items_per_s"]
                for r in rows
                if r["target"] == name and r["level"] == level and r["concurrency"] == concurrency
            ]
            medians[name] = statistics.median(values)
            cells.append(f"{medians[name]:7.1f} ({min(values):.0f}-{max(values):.0f})")
        ratio = medians["mullama"] / medians["llama-server"]
        lines.append(f"{level:14}{concurrency:>3}  {cells[0]:>22}  {cells[1]:>22}  {ratio:5.2f}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--docs", type=int, default=32, help="documents (inputs) per request")
    parser.add_argument("--requests", type=int, default=12, help="requests per level")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--llama-server", help="the llama-server binary")
    parser.add_argument(
        "--llama-server-args", type=str.split, default=[], help="more llama-server arguments"
    )
    parser.add_argument("--out", help="write the rows and the summary as JSON here")
    args = parser.parse_args()
    set_autogroup_nice(-5)
    with tempfile.TemporaryDirectory(prefix="mullama-bench-embed-") as tmp:
        work = Path(tmp)
        models = work / "models"
        models.mkdir()
        embed = build_bert(models / "embed.gguf", pooling="mean", **SHAPE, name="bench-embed")
        rerank = build_bert(models / "rerank.gguf", reranker=True, **SHAPE, name="bench-rerank")
        servers = [
            mullama_server(work, models, args),
            llama_server("embed", embed, work, args),
            llama_server("rerank", rerank, work, args),
        ]
        load_before = os.getloadavg()
        try:
            for server in servers:
                server.start(120)
            mullama = servers[0].base
            for name, path in (("embed", embed), ("rerank", rerank)):
                r = httpx.post(
                    f"{mullama}/api/create",
                    json={"model": name, "modelfile": f"FROM {path}", "stream": False},
                    timeout=120,
                )
                r.raise_for_status()
            targets = {
                "mullama": {"embed": (mullama, "embed"), "rerank": (mullama, "rerank")},
                "llama-server": {
                    "embed": (servers[1].base, "embed"),
                    "rerank": (servers[2].base, "rerank"),
                },
            }
            for routes in targets.values():  # warm up: load, first decode
                for kind, (base, model) in routes.items():
                    asyncio.run(run_level(base, model, "rerank" if kind == "rerank" else "embed-batch", 1, argparse.Namespace(docs=4, requests=1), 0))  # fmt: skip
            rows = asyncio.run(bench(targets, args))
        finally:
            for server in servers:
                server.stop()
        load_after = os.getloadavg()
    shape = ", ".join(f"{k} {v}" for k, v in SHAPE.items())
    print(f"\nmodel: random-weight BERT ({shape}); {args.docs} documents of ~50 tokens per request")
    print(f"threads {args.threads}, {CTX}-token inputs, {SEQUENCES} sequences per decode / slots")
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f}")
    print("documents reranked or embeddings per second, median of the reps (min-max):")
    text = report(rows)
    print(text)
    if args.out:
        Path(args.out).write_text(json.dumps({"rows": rows, "report": text}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
