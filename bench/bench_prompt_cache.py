"""The host-memory prompt cache (issue 13): many two-turn conversations on a few slots.

``--conversations`` (32) conversations each send turn 1 — a distinct system prompt of about 800
tokens and a question, ``/v1/completions``, 32 tokens greedy — then, once every turn 1 is done,
turn 2 in the same order (round-robin): turn 1's text, its reply and a new question. With 4
slots, when conversation 0's turn 2 comes, its slot has long since served conversations 28-31:
only a cache outside the slots (Mullama's ``prompt_cache_ram_mb``, llama-server's
``--cache-ram``) spares evaluating turn 1 again. Three targets, each started by this script on a
free loopback port with the same model, context per slot, slots and threads:

- ``mullama``: ``mullama serve --headless``, the prompt cache at its default size;
- ``mullama-cache-off``: the same with ``MULLAMA_PROMPT_CACHE_RAM_MB=0``;
- ``llama-server``: as bench_serving.py starts it (its README's ``-m``, plus ``-np``, ``-c``
  slots x context, ``-t``/``-tb``, ``--chat-template chatml`` and ``--no-webui``), so its
  ``--cache-ram`` has its default (8192 MiB); no speculative decoding.

The ``--reps`` repetitions are interleaved (each repetition runs every target, in a rotated
order), and every prompt carries a tag of its repetition, so no repetition finds another's
states in any cache. The report gives, per target, turn 2's time to first token, p50 over the
conversations: the median over the repetitions and their spread (min-max), and the goals:
cache on at least 3x quicker than cache off, and not slower than llama-server.

    scripts/build_llama_server.sh       # once: llama-server into ~/.cache/mullama-bench
    .venv/bin/python bench/bench_prompt_cache.py                   # 32 conversations, 3 reps
    .venv/bin/python bench/bench_prompt_cache.py --conversations 8 --reps 1   # a quick look
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from bench_serving import (  # the bench folder, on the path as this script's own
    CACHE,
    SYSTEM_FACTS,
    Result,
    Server,
    body_for,
    make_server,
    pct,
    stream_one,
    test_model,
    wait_quiet,
    warm_up,
)

TARGETS = ("mullama", "mullama-cache-off", "llama-server")
QUESTIONS = ("When was the observatory built, and by whom?", "How many steps lead to the dome?")


def turn1_prompt(tag: str, conversation: int, repeat: int) -> str:
    k = conversation
    facts = [
        f.format(n=1700 + 7 * k + j, m=40 + k + j, s=300 + 11 * k + j, b=2000 + 13 * k + j)
        for j, f in enumerate(SYSTEM_FACTS)
    ]
    system = f"[{tag} conversation {k}] You are the guide. " + " ".join(facts * repeat)
    return f"System: {system}\nUser: {QUESTIONS[0]}\nGuide:"


async def one_turn(
    server: Server, prompts: list[str], concurrency: int, args
) -> list[Result | None]:
    """``prompts`` in order through ``concurrency`` workers; each one's result, by index."""
    results: list[Result | None] = [None] * len(prompts)
    order = iter(range(len(prompts)))
    limits = httpx.Limits(max_connections=concurrency + 2)
    timeout = httpx.Timeout(connect=10, read=600, write=10, pool=600)

    async def worker(client: httpx.AsyncClient) -> None:
        for i in order:
            body = body_for(server, "completions", prompts[i], args.max_tokens, args)
            results[i] = await stream_one(client, server.base, "completions", body)

    async with httpx.AsyncClient(trust_env=False, limits=limits, timeout=timeout) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return results


def ttft_ms(results: list[Result | None]) -> list[float]:
    return [1000 * (r.t_first - r.t_send) for r in results if r and r.ok and r.t_first]


async def scenario(server: Server, rep: int, args) -> dict:
    tag = f"r{rep}"
    first = [turn1_prompt(tag, k, args.system_repeat) for k in range(args.conversations)]
    t1 = await one_turn(server, first, args.concurrency, args)
    second = [
        f"{p}{r.text if r and r.ok else ''}\nUser: {QUESTIONS[1]}\nGuide:"
        for p, r in zip(first, t1, strict=True)
    ]
    t2 = await one_turn(server, second, args.concurrency, args)
    a, b = ttft_ms(t1), ttft_ms(t2)
    errors = [r.error if r else "not sent" for r in t1 + t2 if not (r and r.ok)]
    cached = [r.cached_tokens for r in t2 if r and r.ok and r.cached_tokens is not None]
    prompt = [r.prompt_tokens for r in t2 if r and r.ok and r.prompt_tokens]
    return {
        "target": server.name,
        "rep": rep,
        "turn1_ttft_p50_ms": round(pct(a, 0.5), 1) if a else None,
        "turn2_ttft_p50_ms": round(pct(b, 0.5), 1) if b else None,
        "turn2_ttft_p95_ms": round(pct(b, 0.95), 1) if b else None,
        "turn2_prompt_tokens_p50": statistics.median(prompt) if prompt else None,
        "turn2_cached_tokens_p50": statistics.median(cached) if cached else None,
        "errors": len(errors),
        "error_samples": sorted(set(errors))[:3],
    }


async def bench(servers: list[Server], args) -> list[dict]:
    rows = []
    for server in servers:
        await warm_up(server, args)
    for rep in range(args.reps):
        print(f"repetition {rep + 1} of {args.reps}", flush=True)
        for i in range(len(servers)):
            server = servers[(i + rep) % len(servers)]  # a rotated order each repetition
            await wait_quiet(servers)
            row = await scenario(server, rep, args)
            rows.append(row)
            print(
                f"  {server.name:18} turn 1 ttft p50 {row['turn1_ttft_p50_ms']} ms, turn 2 p50 "
                f"{row['turn2_ttft_p50_ms']} ms (p95 {row['turn2_ttft_p95_ms']}), turn 2 cached "
                f"{row['turn2_cached_tokens_p50']} of {row['turn2_prompt_tokens_p50']} tokens, "
                f"errors {row['errors']} {row['error_samples'] or ''}",
                flush=True,
            )
    return rows


def spread(values: list[float]) -> str:
    if not values:
        return "n/a"
    return f"{statistics.median(values):.1f} [{min(values):.1f}-{max(values):.1f}]"


def report(rows: list[dict], targets: list[str]) -> tuple[str, dict]:
    def of(target: str, key: str) -> list[float]:
        return [r[key] for r in rows if r["target"] == target and r[key] is not None]

    lines = [
        f"{'target':18} {'turn 2 TTFT p50 ms':>26} {'turn 1 TTFT p50 ms':>26} {'cached/prompt':>14}"
    ]
    for t in targets:
        cached, prompt = of(t, "turn2_cached_tokens_p50"), of(t, "turn2_prompt_tokens_p50")
        share = f"{statistics.median(cached):.0f}/{statistics.median(prompt):.0f}" if cached else ""
        lines.append(
            f"{t:18} {spread(of(t, 'turn2_ttft_p50_ms')):>26} "
            f"{spread(of(t, 'turn1_ttft_p50_ms')):>26} {share:>14}"
        )
    medians = {t: statistics.median(v) for t in targets if (v := of(t, "turn2_ttft_p50_ms"))}
    goals: dict = {}
    on, off, ls = (medians.get(t) for t in TARGETS)
    if on and off:
        goals["cache_on_vs_off_speedup"] = round(off / on, 2)
        goals["speedup_at_least_3x"] = off / on >= 3
    if on and ls:
        goals["mullama_vs_llama_server"] = round(on / ls, 2)
        goals["not_slower_than_llama_server"] = on <= ls
    lines.append("goals: " + json.dumps(goals))
    return "\n".join(lines), goals


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", help="a GGUF file (default: the bundled Gemma 3 270M model)")
    parser.add_argument("--targets", default=",".join(TARGETS), help=f"some of {TARGETS}")
    parser.add_argument("--conversations", type=int, default=32)
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=32, help="tokens of each reply")
    parser.add_argument(
        "--system-repeat", type=int, default=6, help="system prompt = the facts x N (~800 tokens)"
    )
    parser.add_argument("--ctx", type=int, default=2048, help="context per slot")
    parser.add_argument("--parallel", type=int, default=4, help="slots")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeat-penalty", type=float, default=1.0)
    parser.add_argument("--llama-server", help="path of llama-server (default: the cache dir's)")
    parser.add_argument("--llama-server-args", default="", help="extra arguments, space separated")
    parser.add_argument("--mullama-args", default="", help="extra arguments for mullama serve")
    parser.add_argument("--start-timeout", type=float, default=180.0)
    parser.add_argument("--out", help="JSON result file (default: the cache dir's results/)")
    args = parser.parse_args()
    args.targets = [t for t in args.targets.split(",") if t]
    for t in args.targets:
        if t not in TARGETS:
            parser.error(f"unknown target {t!r} (one of {', '.join(TARGETS)})")
    args.llama_server_args = args.llama_server_args.split()
    args.mullama_args = args.mullama_args.split()
    args.endpoints = ["completions"]  # what warm_up sends
    model = args.model or test_model()
    work = Path(tempfile.mkdtemp(prefix="mullama-bench-cache-"))
    print(
        f"model {os.path.basename(model)}, {args.conversations} conversations, {args.parallel} "
        f"slots of {args.ctx} tokens, {args.threads} threads, concurrency {args.concurrency}, "
        f"{args.reps} repetitions, logs in {work}",
        flush=True,
    )
    servers: list[Server] = []
    rows: list[dict] = []
    try:
        for name in args.targets:
            folder = work / name
            folder.mkdir()
            server = make_server(
                "llama-server" if name == "llama-server" else "mullama", model, args, folder
            )
            server.name = name
            if name == "mullama-cache-off":
                server.env["MULLAMA_PROMPT_CACHE_RAM_MB"] = "0"
            print(f"starting {name}: {' '.join(server.argv)}", flush=True)
            server.start(args.start_timeout)
            servers.append(server)
        rows = asyncio.run(bench(servers, args))
    finally:
        for server in servers:
            server.stop()
    text, goals = report(rows, [s.name for s in servers])
    print(
        "\nturn 2 time to first token, p50 over the conversations: median of the repetitions "
        "[min-max]\n" + text
    )
    out = (
        Path(args.out) if args.out else CACHE / "results" / f"prompt-cache-{int(time.time())}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"args": vars(args), "rows": rows, "goals": goals}, indent=1))
    print(f"results in {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
