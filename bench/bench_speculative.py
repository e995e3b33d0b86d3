"""Speculative decoding on a copy-heavy workload (issue 13): a ~300-token Python file and
"rewrite it with the function renamed", greedy, up to 256 tokens, on /v1/completions.

Three targets in one run, levels and targets interleaved, every prompt unique to its repetition
and stream (no cache of either server helps): Mullama as it starts (drafting on), the same
Mullama daemon with ``draft_max: 0`` in each request, and llama-server started as its README
starts it (``-m``, slots, context, threads: no speculative flags; built by
scripts/build_llama_server.sh from the same llama.cpp). Reported per level: decode tokens/s
(single stream: after the first token; concurrent: all tokens over the level's wall time),
medians of the repetitions with [min-max], the ratios, how many replies were identical to
Mullama's without drafting, and the share of draft tokens kept (from /metrics).

    .venv/bin/python bench/bench_speculative.py            # ~10 min on 2 cores
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_serving import CACHE, make_server, spread, stream_one, test_model

CODE = '''import json
from pathlib import Path


def parse_config(path):
    """Read a config file of key = value lines into a dict."""
    result = {}
    with open(path) as handle:
        for number, line in enumerate(handle, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if "=" not in line:
                raise ValueError(f"line {number}: expected key = value")
            key, value = line.split("=", 1)
            result[key.strip()] = value.strip()
    return result


def load_settings(path, defaults):
    """The defaults, overridden by the file's values."""
    settings = dict(defaults)
    settings.update(parse_config(path))
    return settings


def save_settings(path, settings):
    lines = [f"{key} = {value}" for key, value in sorted(settings.items())]
    Path(path).write_text("\\n".join(lines) + "\\n")


def main(argv):
    settings = load_settings(argv[1], {"mode": "fast", "level": "3"})
    print(json.dumps(settings, indent=2))
    return 0
'''


def prompt(tag: str) -> str:
    return (
        "<start_of_turn>user\n"
        f"Here is a Python file ({tag}):\n\n```python\n{CODE}```\n\n"
        "Rewrite it with the function parse_config renamed to read_config. "
        "Reply with the whole file and nothing else.<end_of_turn>\n<start_of_turn>model\n"
    )


def body(model: str, text: str, max_tokens: int, extra: dict) -> dict:
    return {
        "model": model,
        "prompt": text,
        "max_tokens": max_tokens,
        "temperature": 0,
        "repeat_penalty": 1.0,
        "stream": True,
        "stream_options": {"include_usage": True},
        **extra,
    }


async def draft_counts(client: httpx.AsyncClient, base: str) -> tuple[float, float]:
    text = (await client.get(base + "/metrics")).text

    def total(name: str) -> float:
        return sum(float(v) for v in re.findall(rf"^{name}_total{{[^}}]*}} (\S+)$", text, re.M))

    return total("mullama_draft_tokens"), total("mullama_draft_accepted_tokens")


async def run_level(server, extra: dict, tags: list[str], args) -> dict:
    concurrency = len(tags)
    async with httpx.AsyncClient(timeout=600, trust_env=False) as client:
        started = time.perf_counter()
        results = await asyncio.gather(
            *(
                stream_one(
                    client,
                    server.base,
                    "completions",
                    body(server.model_id, prompt(tag), args.max_tokens, extra),
                )
                for tag in tags
            )
        )
        wall = time.perf_counter() - started
    bad = [r.error for r in results if not r.ok]
    if bad:
        raise RuntimeError(f"{server.name}: {bad[0]}")
    tokens = sum(r.tokens for r in results)
    if concurrency == 1:
        r = results[0]
        assert r.t_first is not None and r.t_end is not None
        rate = (r.tokens - 1) / (r.t_end - r.t_first)
    else:
        rate = tokens / wall
    return {"rate": rate, "tokens": tokens, "texts": [r.text for r in results]}


async def bench(args) -> list[dict]:
    model = args.model or test_model()
    work = Path(tempfile.mkdtemp(prefix="mullama-spec-"))
    servers = {name: make_server(name, model, args, work) for name in ("mullama", "llama-server")}
    targets = [
        ("mullama", servers["mullama"], {}),
        ("mullama-no-draft", servers["mullama"], {"draft_max": 0}),
        ("llama-server", servers["llama-server"], {}),
    ]
    rows = []
    try:
        for server in servers.values():
            server.start(args.start_timeout)
        for name, server, extra in targets:  # first requests build the servers' graphs
            await run_level(server, extra, [f"warm-up {name}"], args)
        async with httpx.AsyncClient(timeout=600, trust_env=False) as client:
            for rep in range(args.reps):
                for concurrency in args.concurrency:
                    order = targets[rep % 3 :] + targets[: rep % 3]
                    for name, server, extra in order:
                        tags = [f"{rep}.{i} {name}" for i in range(concurrency)]
                        before = await draft_counts(client, servers["mullama"].base)
                        result = await run_level(server, extra, tags, args)
                        after = await draft_counts(client, servers["mullama"].base)
                        if name == "mullama":  # the same prompts again, without drafting
                            again = await run_level(server, {"draft_max": 0}, tags, args)
                            result["undrafted"] = again["texts"]
                        result.update(
                            target=name,
                            concurrency=concurrency,
                            rep=rep,
                            drafted=after[0] - before[0],
                            kept=after[1] - before[1],
                        )
                        rows.append(result)
                        print(
                            f"rep {rep} c={concurrency} {name}: {result['rate']:.1f} tok/s",
                            flush=True,
                        )
    finally:
        for server in servers.values():
            server.stop()
    return rows


def report(rows: list[dict], levels: list[int]) -> str:
    lines = [
        "| c | Mullama tok/s | no draft | llama-server | Mullama / llama-server | "
        "Mullama / no draft | identical replies | drafts kept |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in levels:

        def rates(name: str, c: int = c) -> list[float]:
            return [r["rate"] for r in rows if r["target"] == name and r["concurrency"] == c]

        mine, off, theirs = rates("mullama"), rates("mullama-no-draft"), rates("llama-server")
        drafted = [r for r in rows if r["target"] == "mullama" and r["concurrency"] == c]
        pairs = [pair for r in drafted for pair in zip(r["texts"], r["undrafted"], strict=True)]
        same, total = sum(a == b for a, b in pairs), len(pairs)
        kept = sum(r["kept"] for r in drafted) / max(sum(r["drafted"] for r in drafted), 1)
        m, o, t = (statistics.median(x) for x in (mine, off, theirs))
        lines.append(
            f"| {c} | {spread(mine)} | {spread(off)} | {spread(theirs)} "
            f"| {m / t:.2f} | {m / o:.2f} | {same} of {total} | {kept:.0%} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", help="a GGUF file (default: the bundled test model)")
    parser.add_argument("--concurrency", default="1,8")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--ctx", type=int, default=2048, help="context per sequence")
    parser.add_argument("--parallel", type=int, default=8, help="slots")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--llama-server", help="path of llama-server (default: the cache dir's)")
    parser.add_argument("--start-timeout", type=float, default=180.0)
    parser.add_argument("--out", help="JSON result file (default: the cache dir's results/)")
    args = parser.parse_args()
    args.concurrency = [int(c) for c in args.concurrency.split(",") if c]
    args.llama_server_args, args.mullama_args, args.stock_args = [], [], []
    rows = asyncio.run(bench(args))
    out = Path(args.out or CACHE / "results" / f"speculative-{int(time.time())}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=1))
    print(report(rows, args.concurrency))
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
